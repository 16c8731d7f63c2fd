//! The sled engine: one embedded database, a tree per record kind.
//!
//! - `session_blocks`: the snapshots (each session's JSON text) under [`session_key`] (creation
//!   time, then id), neighbours together, up to 1.5 KiB to a value ([`blocks`]). Keys start
//!   with the creation time so that a listing, which runs newest first, writes the tree in
//!   order (see [`session_key`]).
//! - `messages`: event id -> the latest Devin message read for it.
//! - `waiting`: session id -> its [`Waiting`].
//! - `announced`: event id -> the pull request's last known state (empty for other events).
//! - `outbox`: sequence number (u64, big-endian, so sled's order is detection order) -> a
//!   [`Delivery`]; `dead`: the same key -> a [`DeadLetter`]; `quarantine`: outbox rows that
//!   could not be read.
//! - `held`: sequence number (as the outbox's) -> a [`Held`] delivery of a muted rule.
//! - `threads`: `sink\0session_id` -> a [`SlackThread`].
//! - `meta`: named values, and `paused/<sink>` -> [`Paused`].
//! - `delivery_log`, `event_log`: entry id (u64, big-endian) -> the entry ([`journal`]).
//!
//! sled fsyncs every 500 ms on its own; [`Engine::flush`] makes a write durable at once, and
//! outbox rows written since the last flush are held back from the delivery loop
//! ([`Engine::durable_below`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

mod activity;
pub(crate) mod blocks;
mod journal;

use super::engine::Engine;
use super::history::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Log};
use super::import::Export;
use super::queue::Row;
use super::{
    decode, encode, Commit, DeadLetter, Delivery, Held, Paused, Settle, SlackThread, SnapshotKey,
    StoreError, Waiting,
};

/// Meta key prefix of paused sinks.
const PAUSED_PREFIX: &str = "paused/";

pub(super) fn sled_err(what: impl Into<String>) -> impl FnOnce(sled::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Sled { what, source }
}

/// Where a session's snapshot is kept: its `created_at` (sign bit flipped, big-endian, so that
/// sled's byte order is creation order), then its id.
///
/// Session ids are random, so keys by id alone make a listing of N sessions write all over the
/// tree: once the tree outgrows sled's cache, almost every insert reads a node back from disk
/// and rewrites it. Listings run newest first, so keys by creation time arrive in order and
/// sled's working set stays a few nodes (a full sync of 100k sessions inserts about 3x faster:
/// BENCHMARKS.md).
pub fn session_key(created_at: i64, session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + session_id.len());
    key.extend_from_slice(&((created_at as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(session_id.as_bytes());
    key
}

fn snapshot_key(key: &SnapshotKey) -> Vec<u8> {
    session_key(key.created_at, &key.session_id)
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn thread_key(sink: &str, session_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(sink.len() + 1 + session_id.len());
    k.extend_from_slice(sink.as_bytes());
    k.push(0);
    k.extend_from_slice(session_id.as_bytes());
    k
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            what: "outbox".into(),
            message: format!("a key of {} bytes", key.len()),
        })
}

/// A transaction's failure as a store error about `what`.
fn tx_err(what: String) -> impl FnOnce(TransactionError<()>) -> StoreError {
    move |e| match e {
        TransactionError::Storage(source) => StoreError::Sled { what, source },
        TransactionError::Abort(()) => StoreError::Corrupt {
            what,
            message: "transaction aborted".into(),
        },
    }
}

/// A whole commit's failure: its one abort is `hold` finding a delivery to release no longer
/// held.
fn commit_err(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Abort(()) => StoreError::Conflict {
            what: "held".into(),
            message:
                "a held delivery to release is no longer held (released already?): nothing written"
                    .into(),
        },
        e => tx_err("commit".into())(e),
    }
}

/// The sled database and its trees. Cheap to clone.
#[derive(Clone)]
pub struct SledEngine {
    /// Outbox rows at or above this sequence number are not flushed to disk yet: they must not
    /// be sent (u64::MAX when everything written is durable).
    durable_below: Arc<AtomicU64>,
    pub(super) db: sled::Db,
    /// The snapshots, in blocks.
    pub(super) blocks: blocks::Blocks,
    messages: sled::Tree,
    pub(super) waiting: sled::Tree,
    announced: sled::Tree,
    outbox: sled::Tree,
    dead: sled::Tree,
    meta: sled::Tree,
    threads: sled::Tree,
    pub(super) delivery_log: sled::Tree,
    pub(super) event_log: sled::Tree,
    activity: sled::Tree,
    pub(super) held: sled::Tree,
}

impl SledEngine {
    /// Opens (creating when missing) the database at `path`, and moves the records of an
    /// earlier version to the current layout.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<SledEngine, StoreError> {
        let open_err = |source: sled::Error| {
            let locked = matches!(&source, sled::Error::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                || source.to_string().contains("lock");
            if locked {
                StoreError::Locked {
                    path: path.display().to_string(),
                }
            } else {
                StoreError::Open {
                    path: path.display().to_string(),
                    source,
                }
            }
        };
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity)
            .open()
            .map_err(open_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(open_err);
        let engine = SledEngine {
            durable_below: Arc::new(AtomicU64::new(u64::MAX)),
            blocks: blocks::Blocks::new(tree(blocks::TREE)?),
            messages: tree("messages")?,
            waiting: tree("waiting")?,
            announced: tree("announced")?,
            outbox: tree("outbox")?,
            dead: tree("dead")?,
            meta: tree("meta")?,
            threads: tree("threads")?,
            delivery_log: tree("delivery_log")?,
            event_log: tree("event_log")?,
            activity: tree("activity")?,
            held: tree("held")?,
            db,
        };
        super::migrate::id_keyed_snapshots(&engine)?;
        super::migrate::snapshots_into_blocks(&engine)?;
        Ok(engine)
    }

    /// Every wait record; an unreadable one is logged and dropped.
    pub(super) fn read_waits(&self) -> Result<Vec<(String, Waiting)>, StoreError> {
        let mut out = Vec::new();
        for item in self.waiting.iter() {
            let (k, v) = item.map_err(sled_err("waiting"))?;
            let id = String::from_utf8_lossy(&k).into_owned();
            match decode(&format!("waiting/{id}"), &v) {
                Ok(w) => out.push((id, w)),
                Err(e) => {
                    tracing::error!(error = %e, "dropping an unreadable wait record");
                    self.waiting
                        .remove(&k)
                        .map_err(sled_err(format!("waiting/{id}")))?;
                }
            }
        }
        Ok(out)
    }

    /// Writes a commit's snapshots through `write`, given the block writes that store them.
    fn with_blocks<T>(
        &self,
        commit: &Commit,
        write: impl FnOnce(&[(Vec<u8>, Vec<u8>)]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if commit.snapshots.is_empty() {
            // No block to plan or write: the blocks' lock and the last read's blocks stay.
            return write(&[]);
        }
        let snapshots: Vec<(Vec<u8>, &[u8])> = commit
            .snapshots
            .iter()
            .map(|(k, bytes)| (snapshot_key(k), bytes.as_slice()))
            .collect();
        self.blocks.write(&snapshots, write)
    }

    /// Writes snapshots alone as one batch: atomic like a transaction, and cheaper.
    fn commit_snapshots(&self, commit: &Commit) -> Result<(), StoreError> {
        self.with_blocks(commit, |writes| {
            let mut batch = sled::Batch::default();
            for (key, bytes) in writes {
                batch.insert(key.as_slice(), bytes.as_slice());
            }
            let tree = &self.blocks.tree;
            tree.apply_batch(batch).map_err(sled_err(blocks::TREE))
        })
    }

    /// Writes snapshots and activity history alone, in one transaction over those two trees.
    fn commit_history(&self, commit: &Commit) -> Result<(), StoreError> {
        let records = crate::digest::coalesce(&commit.activity);
        self.with_blocks(commit, |writes| {
            let trees = (&self.blocks.tree, &self.activity);
            let result = trees.transaction(|(sessions, history)| {
                for (key, bytes) in writes {
                    sessions.insert(key.as_slice(), bytes.as_slice())?;
                }
                for record in &records {
                    activity::append(history, record)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            });
            result.map_err(tx_err("commit".into()))
        })
    }

    /// Writes a whole commit in one transaction across the trees it touches.
    fn commit_all(&self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        self.with_blocks(commit, |writes| self.commit_all_with(commit, writes))
    }

    /// [`Self::commit_all`], given the block writes of its snapshots.
    fn commit_all_with(
        &self,
        commit: &Commit,
        writes: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Vec<u64>, StoreError> {
        let records = crate::digest::coalesce(&commit.activity);
        let trees = (
            &self.blocks.tree,
            &self.outbox,
            &self.dead,
            &self.meta,
            &self.waiting,
            &self.announced,
            &self.messages,
            &self.delivery_log,
            &self.event_log,
            &self.activity,
            &self.held,
        );
        let result = trees.transaction(
            |(
                sessions,
                outbox,
                dead,
                meta,
                waiting,
                announced,
                messages,
                logs,
                events,
                history,
                held,
            )| {
                hold(held, commit)?;
                for (key, bytes) in writes {
                    sessions.insert(key.as_slice(), bytes.as_slice())?;
                }
                let mut seqs = Vec::with_capacity(commit.deliveries.len());
                for d in &commit.deliveries {
                    let seq = outbox.generate_id()?;
                    outbox.insert(&key(seq), encode(d))?;
                    seqs.push(seq);
                }
                for letter in &commit.dead {
                    let seq = dead.generate_id()?;
                    dead.insert(&key(seq), encode(letter))?;
                }
                for (name, value) in &commit.meta {
                    meta.insert(*name, value.as_slice())?;
                }
                for (name, value) in &commit.marks {
                    meta.insert(name.as_bytes(), value.as_slice())?;
                }
                for record in &records {
                    activity::append(history, record)?;
                }
                for (id, wait) in &commit.waiting {
                    match wait {
                        Some(w) => waiting.insert(id.as_bytes(), encode(w))?,
                        None => waiting.remove(id.as_bytes())?,
                    };
                }
                for (id, value) in &commit.announced {
                    announced.insert(id.as_bytes(), value.as_bytes())?;
                }
                for id in &commit.uncache {
                    messages.remove(id.as_bytes())?;
                }
                for entry in &commit.logged {
                    journal::append(logs, entry)?;
                }
                for entry in &commit.events {
                    journal::append_event(events, entry)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(seqs)
            },
        );
        result.map_err(commit_err)
    }

    /// Sets an unreadable outbox row aside (tree `quarantine`), out of the outbox.
    fn quarantine(&self, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let quarantine = self
            .db
            .open_tree("quarantine")
            .map_err(sled_err("quarantine"))?;
        quarantine
            .insert(key(seq), bytes)
            .map_err(sled_err("quarantine"))?;
        self.outbox
            .remove(key(seq))
            .map(|_| ())
            .map_err(sled_err("outbox"))
    }

    /// Reads a whole tree of JSON records keyed by sequence number.
    fn by_seq<T: for<'de> serde::Deserialize<'de>>(
        tree: &sled::Tree,
        name: &str,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let mut rows = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(sled_err(name))?;
            let seq = seq_of(&k)?;
            rows.push((seq, decode(&format!("{name}/{seq}"), &v)?));
        }
        Ok(rows)
    }
}

impl SledEngine {
    /// Everything the store holds, for an import into another engine. An unreadable record
    /// stops the export (naming it): an import must not lose anything silently.
    pub fn export(&self) -> Result<Export, StoreError> {
        let mut out = Export {
            waiting: self.read_waits()?,
            outbox: Self::by_seq(&self.outbox, "outbox")?,
            dead: Self::by_seq(&self.dead, "dead")?,
            activity: self.export_activity()?,
            held: Self::by_seq(&self.held, "held")?,
            ..Export::default()
        };
        for (k, v) in blocks::all(&self.blocks.tree)? {
            out.sessions.push((key_of_session(&k)?, v));
        }
        for item in self.messages.iter() {
            let (k, v) = item.map_err(sled_err("messages"))?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let message = decode(&format!("messages/{id}"), &v)?;
            out.messages.push((id, message));
        }
        for item in self.announced.iter() {
            let (k, v) = item.map_err(sled_err("announced"))?;
            out.announced.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        for item in self.meta.iter() {
            let (k, v) = item.map_err(sled_err("meta"))?;
            let name = String::from_utf8_lossy(&k).into_owned();
            match name.strip_prefix(PAUSED_PREFIX) {
                Some(sink) => out
                    .paused
                    .push((sink.to_owned(), decode(&format!("meta/{name}"), &v)?)),
                None => out.meta.push((name, v.to_vec())),
            }
        }
        for item in self.threads.iter() {
            let (k, v) = item.map_err(sled_err("threads"))?;
            let Some(split) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let sink = String::from_utf8_lossy(&k[..split]).into_owned();
            let session = String::from_utf8_lossy(&k[split + 1..]).into_owned();
            let thread = decode(&format!("threads/{sink}/{session}"), &v)?;
            out.threads.push((sink, session, thread));
        }
        Ok(out)
    }
}

/// The snapshot key a `sessions` tree key encodes ([`session_key`]).
fn key_of_session(key: &[u8]) -> Result<SnapshotKey, StoreError> {
    let created =
        <[u8; 8]>::try_from(key.get(..8).unwrap_or_default()).map_err(|_| StoreError::Corrupt {
            what: "sessions".into(),
            message: format!("a key of {} bytes", key.len()),
        })?;
    Ok(SnapshotKey {
        created_at: (u64::from_be_bytes(created) ^ (1 << 63)) as i64,
        session_id: String::from_utf8_lossy(&key[8..]).into_owned(),
    })
}

impl Engine for SledEngine {
    async fn snapshots(&self, keys: &[SnapshotKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.blocks.get_many(keys.iter().map(snapshot_key))
    }

    async fn announced(&self, ids: &[&str]) -> Result<Vec<Option<String>>, StoreError> {
        ids.iter()
            .map(|id| {
                self.announced
                    .get(id)
                    .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    .map_err(sled_err(format!("announced/{id}")))
            })
            .collect()
    }

    async fn cached_message(&self, event_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let what = format!("messages/{event_id}");
        match self
            .messages
            .get(event_id)
            .map_err(sled_err(what.clone()))?
        {
            // An unreadable entry is a miss: the messages are read again.
            Some(bytes) => Ok(decode(&what, &bytes).ok()),
            None => Ok(None),
        }
    }

    async fn cache_message(
        &self,
        event_id: &str,
        message: &Option<String>,
    ) -> Result<(), StoreError> {
        self.messages
            .insert(event_id, encode(message))
            .map(|_| ())
            .map_err(sled_err(format!("messages/{event_id}")))
    }

    async fn commit(&self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        if commit.only_snapshots() {
            self.commit_snapshots(commit)?;
            return Ok(Vec::new());
        }
        if commit.only_snapshots_and_history() {
            self.commit_history(commit)?;
            return Ok(Vec::new());
        }
        if !commit.deliveries.is_empty() {
            // Every id generated from here on is above this one: hold those rows back from the
            // delivery loop until the next flush has made them durable.
            let floor = self.db.generate_id().map_err(sled_err("commit"))?;
            self.durable_below.fetch_min(floor, Ordering::SeqCst);
        }
        self.commit_all(commit)
    }

    async fn flush(&self) -> Result<usize, StoreError> {
        // Rows committed before this point become sendable once the flush returns.
        let written = self.db.generate_id().map_err(sled_err("flush"))?;
        let bytes = self.db.flush_async().await.map_err(sled_err("flush"))?;
        let _ = self
            .durable_below
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |floor| {
                (floor <= written).then_some(u64::MAX)
            });
        Ok(bytes)
    }

    fn durable_below(&self) -> u64 {
        self.durable_below.load(Ordering::SeqCst)
    }

    async fn waiting(&self) -> Result<Vec<(String, Waiting)>, StoreError> {
        self.read_waits()
    }

    async fn held(&self) -> Result<Vec<(u64, Held)>, StoreError> {
        let mut rows = Vec::new();
        for item in self.held.iter() {
            let (k, v) = item.map_err(sled_err("held"))?;
            let seq = seq_of(&k)?;
            if let Some(held) = super::held::readable(seq, decode(&format!("held/{seq}"), &v)) {
                rows.push((seq, held));
            }
        }
        Ok(rows)
    }

    async fn outbox(&self) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let mut rows = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(sled_err("outbox"))?;
            let decoded =
                seq_of(&k).and_then(|seq| Ok((seq, decode(&format!("outbox/{seq}"), &v)?)));
            match decoded {
                Ok(row) => rows.push(row),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox row moved to the quarantine tree");
                    self.quarantine(seq_of(&k).unwrap_or(0), &v)?;
                    self.outbox.remove(&k).map_err(sled_err("outbox"))?;
                }
            }
        }
        Ok(rows)
    }

    async fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self.outbox.len())
    }

    async fn outbox_rows(&self) -> Result<Vec<Row>, StoreError> {
        Ok(Engine::outbox(self)
            .await?
            .into_iter()
            .map(|(seq, d)| Row {
                seq,
                sink: d.sink,
                session_id: d.session_id,
                due_ms: d.next_attempt_ms,
            })
            .collect())
    }

    async fn deliveries(&self, seqs: &[u64]) -> Result<Vec<Option<Delivery>>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let what = format!("outbox/{seq}");
            let Some(bytes) = self.outbox.get(key(seq)).map_err(sled_err(what.clone()))? else {
                out.push(None);
                continue;
            };
            match decode(&what, &bytes) {
                Ok(d) => out.push(Some(d)),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox row moved to the quarantine tree");
                    self.quarantine(seq, &bytes)?;
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    async fn settle(&self, batch: &[Settle]) -> Result<(), StoreError> {
        self.settle_logged(batch)
    }

    async fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        Self::by_seq(&self.dead, "dead")
    }

    async fn dead_len(&self) -> Result<usize, StoreError> {
        Ok(self.dead.len())
    }

    async fn requeue(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        self.requeue_logged(seq, delivery, log)
    }

    async fn update_dead(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        self.dead
            .insert(key(seq), encode(letter))
            .map(|_| ())
            .map_err(sled_err(format!("dead/{seq}")))
    }

    async fn purge_dead(&self, seq: u64) -> Result<(), StoreError> {
        self.dead
            .remove(key(seq))
            .map(|_| ())
            .map_err(sled_err(format!("dead/{seq}")))
    }

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta
            .get(name)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(sled_err(format!("meta/{name}")))
    }

    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta
            .insert(name, value)
            .map(|_| ())
            .map_err(sled_err(format!("meta/{name}")))
    }

    async fn pause_sink(&self, sink: &str, paused: &Paused) -> Result<(), StoreError> {
        self.meta
            .insert(format!("{PAUSED_PREFIX}{sink}"), encode(paused))
            .map(|_| ())
            .map_err(sled_err(format!("meta/{PAUSED_PREFIX}{sink}")))
    }

    async fn resume_sink(&self, sink: &str) -> Result<bool, StoreError> {
        self.meta
            .remove(format!("{PAUSED_PREFIX}{sink}"))
            .map(|old| old.is_some())
            .map_err(sled_err(format!("meta/{PAUSED_PREFIX}{sink}")))
    }

    async fn paused_sinks(&self) -> Result<Vec<(String, Paused)>, StoreError> {
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(PAUSED_PREFIX) {
            let (k, v) = item.map_err(sled_err("meta/paused"))?;
            let name = String::from_utf8_lossy(&k[PAUSED_PREFIX.len()..]).into_owned();
            let paused = decode(&format!("meta/{PAUSED_PREFIX}{name}"), &v)?;
            out.push((name, paused));
        }
        Ok(out)
    }

    async fn slack_thread(
        &self,
        sink: &str,
        session_id: &str,
    ) -> Result<Option<SlackThread>, StoreError> {
        let what = format!("threads/{sink}/{session_id}");
        match self
            .threads
            .get(thread_key(sink, session_id))
            .map_err(sled_err(what.clone()))?
        {
            Some(bytes) => decode(&what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn set_slack_thread(
        &self,
        sink: &str,
        session_id: &str,
        thread: &SlackThread,
    ) -> Result<(), StoreError> {
        self.threads
            .insert(thread_key(sink, session_id), encode(thread))
            .map(|_| ())
            .map_err(sled_err(format!("threads/{sink}/{session_id}")))
    }

    async fn recent_deliveries(
        &self,
        filter: &DeliveryFilter,
        history: usize,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        self.read_deliveries(filter, history)
    }

    async fn recent_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
        history: usize,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        self.read_events(limit, before_id, history)
    }

    async fn activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<crate::digest::Activity>, StoreError> {
        self.read_activity(start_ms, end_ms)
    }

    async fn prune_activity(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        self.prune(before_ms, limit)
    }

    async fn trim_log(&self, log: Log, keep: usize) -> Result<(), StoreError> {
        self.trim(log, keep)
    }
}

/// A commit's changes to the held set: the deliveries it releases leave it (the transaction
/// aborts, writing nothing, if one is no longer there: never queued twice), the ones it holds
/// enter it in order.
fn hold(
    held: &sled::transaction::TransactionalTree,
    commit: &Commit,
) -> Result<(), ConflictableTransactionError<()>> {
    for seq in &commit.unhold {
        if held.remove(&key(*seq))?.is_none() {
            return Err(ConflictableTransactionError::Abort(()));
        }
    }
    for h in &commit.held {
        let seq = held.generate_id()?;
        held.insert(&key(seq), encode(h))?;
    }
    Ok(())
}
