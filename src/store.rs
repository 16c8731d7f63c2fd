//! The store: sled trees for snapshots, the outbox, dead letters and meta.
//!
//! - `sessions`: [`session_key`] (creation time, then id) -> the session as last listed: the
//!   item's JSON text exactly as the API sent it. An unchanged session is recognised by
//!   comparing those bytes with the listed ones (an exact fingerprint), without rewriting it.
//!   Keys start with the creation time so that a listing, which runs newest first, writes the
//!   tree in order (see [`session_key`]).
//! - `messages`: event id -> the latest Devin message read for it, so a waiting event costs at
//!   most one messages listing even when its poll is retried; removed by the commit that
//!   records the event.
//! - `waiting`: session id -> since when it waits on a person and the reminders sent ([`Waiting`]).
//! - `announced`: event id -> the pull request's last known state (empty for other events),
//!   for events that happen once per subject ([`crate::event::EventType::once_per_subject`]):
//!   a pull request that vanishes from a listing and comes back is not announced twice, and
//!   its state then is compared with the last one known.
//! - `outbox`: sequence number (u64, big-endian, so sled's order is detection order) -> a
//!   [`Delivery`] with its rendered payload.
//! - `dead`: the same key -> a [`DeadLetter`].
//! - `threads`: `sink\0session_id` -> the [`SlackThread`] a Slack app sink posts that
//!   session's messages in (see [`crate::slack_app`]).
//! - `meta`: small named values (`baseline` done, the incremental high-water mark, the time
//!   of the last full listing).
//!
//! A page's snapshot updates and the deliveries they cause are written in one transaction
//! ([`Store::commit`]) and flushed before anything is sent.
//!
//! Stores written by earlier versions (a `snapshots` tree keyed by id, and `fingerprints`) are
//! moved to this layout when opened ([`Store::open`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Session;

/// A failure of the store, naming the tree and key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("store at {path} is in use by another devin-notify process (sled allows one); stop `run` first, or use the admin endpoints of its [server]")]
    Locked { path: String },
    #[error("store ({what}): {source}")]
    Sled { what: String, source: sled::Error },
    #[error("store ({what}): corrupt record: {message}")]
    Corrupt { what: String, message: String },
}

fn sled_err(what: impl Into<String>) -> impl FnOnce(sled::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Sled { what, source }
}

/// One queued send: a rendered payload for one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_...`: the `webhook-id`, stable across retries and restarts.
    pub id: String,
    pub sink: String,
    pub rule: String,
    pub session_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The exact payload, rendered at detection time.
    pub body: String,
    /// When the change was detected (Unix milliseconds).
    pub detected_at_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (Unix milliseconds); 0 means now.
    pub next_attempt_ms: u64,
    /// The last failure, for `sinks list` and logs.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A delivery that will not be retried without an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub delivery: Delivery,
    /// Why it was given up: the last error.
    pub reason: String,
    /// The receiver's last HTTP status, if it answered.
    pub status: Option<u16>,
    /// The first 2 KiB of the receiver's last answer.
    pub response_body: String,
    /// When it was given up (Unix milliseconds).
    pub failed_at_ms: u64,
    /// The event, when the payload could not be rendered (a retry renders it again).
    #[serde(default)]
    pub event: Option<serde_json::Value>,
}

/// A session that waits on a person: since when, and the reminders sent per rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// When the wait began (Unix ms).
    pub since_ms: i64,
    /// The session's `created_at`: with its id, where its snapshot is ([`session_key`]).
    #[serde(default)]
    pub created_at: i64,
    pub status_detail: Option<String>,
    /// Rule name -> the number of the last reminder sent for this wait.
    #[serde(default)]
    pub sent: std::collections::BTreeMap<String, u32>,
}

/// What one page changes, written at once.
#[derive(Debug, Default)]
pub struct Commit {
    /// Session id -> its wait (`None`: it no longer waits).
    pub waiting: Vec<(String, Option<Waiting>)>,
    /// [`session_key`] -> the new snapshot (the item's JSON text).
    pub snapshots: Vec<(Vec<u8>, Vec<u8>)>,
    pub deliveries: Vec<Delivery>,
    pub dead: Vec<DeadLetter>,
    pub meta: Vec<(&'static str, Vec<u8>)>,
    /// Once-per-subject events detected, with what the store keeps for each (see the
    /// `announced` tree).
    pub announced: Vec<(String, String)>,
    /// Event ids whose cached Devin message is no longer needed (their event is recorded).
    pub uncache: Vec<String>,
}

impl Commit {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
            && self.deliveries.is_empty()
            && self.dead.is_empty()
            && self.meta.is_empty()
            && self.waiting.is_empty()
            && self.announced.is_empty()
            && self.uncache.is_empty()
    }
}

/// The Slack thread of one (sink, session): the parent message and the last delivery posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackThread {
    /// The sink's `channel` when the thread was started (an id or a name); a thread started
    /// in another channel is not replied to.
    pub configured_channel: String,
    /// The channel id Slack answered (`chat.update` takes ids only).
    pub channel: String,
    /// The parent message's `ts`.
    pub ts: String,
    /// The id of the last delivery posted in the thread (the parent or a reply), so that its
    /// redelivery after a crash is recognised and not posted twice.
    pub last_delivery: String,
}

/// Meta key: set once the first full listing has been recorded.
pub const META_BASELINE: &str = "baseline";
/// Meta key: the highest `updated_at` of the last complete listing (i64, big-endian).
pub const META_HIGH_WATER: &str = "high_water";
/// Meta key: a fingerprint of the listing's endpoint and filters (u64, big-endian).
pub const META_SCOPE: &str = "scope";
/// Meta key: when the last full listing completed (Unix ms, u64, big-endian).
pub const META_LAST_FULL: &str = "last_full_sync";

/// Meta key prefix of paused sinks.
pub const PAUSED_PREFIX: &str = "paused/";

/// Why and since when a sink is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paused {
    pub reason: String,
    pub since_ms: u64,
}

/// Where a session's snapshot is kept: its `created_at` (sign bit flipped, big-endian, so that
/// sled's byte order is creation order), then its id.
///
/// Session ids are random, so keys by id alone make a listing of N sessions write all over the
/// tree: once the tree outgrows sled's cache, almost every insert reads a node back from disk
/// and rewrites it. Listings run newest first, so keys by creation time arrive in order and
/// sled's working set stays a few nodes (a full sync of 100k sessions inserts about 3x faster:
/// BENCHMARKS.md). `created_at` never changes for a session upstream, so the key is stable; a
/// session whose `created_at` did change would be taken as a new one.
pub fn session_key(created_at: i64, session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + session_id.len());
    key.extend_from_slice(&((created_at as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(session_id.as_bytes());
    key
}

/// `sessions/<created_at>/<session id>`, naming a [`session_key`] in messages.
pub fn session_key_label(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key.get(..8).unwrap_or_default()) {
        Ok(created) => format!(
            "sessions/{}/{}",
            (u64::from_be_bytes(created) ^ (1 << 63)) as i64,
            String::from_utf8_lossy(&key[8..])
        ),
        Err(_) => format!("sessions/{}", String::from_utf8_lossy(key)),
    }
}

/// A stable 64-bit FNV-1a hash (of a listing's scope).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The sled database and its trees. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Outbox rows at or above this sequence number are not flushed to disk yet: they must not
    /// be sent (u64::MAX when everything written is durable).
    durable_below: std::sync::Arc<std::sync::atomic::AtomicU64>,
    db: sled::Db,
    sessions: sled::Tree,
    messages: sled::Tree,
    waiting: sled::Tree,
    announced: sled::Tree,
    outbox: sled::Tree,
    dead: sled::Tree,
    meta: sled::Tree,
    threads: sled::Tree,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
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

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail: they hold no maps with non-string keys.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating when missing) the store at `path`.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Store, StoreError> {
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
        let store = Store {
            durable_below: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
            sessions: tree("sessions")?,
            messages: tree("messages")?,
            waiting: tree("waiting")?,
            announced: tree("announced")?,
            outbox: tree("outbox")?,
            dead: tree("dead")?,
            meta: tree("meta")?,
            threads: tree("threads")?,
            db,
        };
        store.migrate_id_keyed_snapshots()?;
        Ok(store)
    }

    /// Moves the snapshots of a store written by an earlier version (tree `snapshots`, keyed
    /// by session id, beside `fingerprints`) to the `sessions` tree, and gives each wait
    /// record its session's `created_at`. Safe to interrupt: the old tree is dropped last, so
    /// an interrupted move runs again, whole, at the next open.
    fn migrate_id_keyed_snapshots(&self) -> Result<(), StoreError> {
        const OLD: &[u8] = b"snapshots";
        if !self.db.tree_names().iter().any(|name| name == OLD) {
            return Ok(());
        }
        let old = self.db.open_tree(OLD).map_err(sled_err("snapshots"))?;
        // Read leniently: a snapshot that no longer decodes as a session keeps its creation
        // time when it has one.
        let created_at = |bytes: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| v.get("created_at").and_then(serde_json::Value::as_i64))
                .unwrap_or(0)
        };
        let mut moved = 0usize;
        let mut batch = sled::Batch::default();
        for item in old.iter() {
            let (id, bytes) = item.map_err(sled_err("snapshots"))?;
            let id = String::from_utf8_lossy(&id).into_owned();
            batch.insert(session_key(created_at(&bytes), &id), bytes);
            moved += 1;
            if moved.is_multiple_of(1000) {
                self.sessions
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(sled_err("sessions"))?;
            }
        }
        self.sessions
            .apply_batch(batch)
            .map_err(sled_err("sessions"))?;
        for (id, mut wait) in self.waiting()? {
            let Some(bytes) = old.get(id.as_bytes()).map_err(sled_err("snapshots"))? else {
                continue;
            };
            wait.created_at = created_at(&bytes);
            self.waiting
                .insert(id.as_bytes(), encode(&wait))
                .map_err(sled_err(format!("waiting/{id}")))?;
        }
        self.db.flush().map_err(sled_err("sessions"))?;
        self.db
            .drop_tree("fingerprints")
            .map_err(sled_err("fingerprints"))?;
        self.db.drop_tree(OLD).map_err(sled_err("snapshots"))?;
        self.db.flush().map_err(sled_err("sessions"))?;
        tracing::info!(
            sessions = moved,
            "store: moved the snapshots of an earlier version to the sessions tree"
        );
        Ok(())
    }

    /// The raw snapshot at a [`session_key`].
    pub fn snapshot_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.sessions.get(key).map_err(|source| StoreError::Sled {
            what: session_key_label(key),
            source,
        })
    }

    /// The message cached for an event: `None` when never read, `Some(None)` when the session
    /// had no Devin message.
    pub fn cached_message(&self, event_id: &str) -> Result<Option<Option<String>>, StoreError> {
        match self
            .messages
            .get(event_id)
            .map_err(sled_err(format!("messages/{event_id}")))?
        {
            // An unreadable entry is a miss: the messages are read again.
            Some(bytes) => Ok(decode(&format!("messages/{event_id}"), &bytes).ok()),
            None => Ok(None),
        }
    }

    /// Caches the message read for an event.
    pub fn cache_message(
        &self,
        event_id: &str,
        message: &Option<String>,
    ) -> Result<(), StoreError> {
        self.messages
            .insert(event_id, encode(message))
            .map(|_| ())
            .map_err(sled_err(format!("messages/{event_id}")))
    }

    /// Every session that waits on a person. An unreadable record is logged and dropped (the
    /// wait is recorded again when the session next changes).
    pub fn waiting(&self) -> Result<Vec<(String, Waiting)>, StoreError> {
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

    /// What is kept for a once-per-subject event detected before (`None`: never detected).
    pub fn announced(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .announced
            .get(event_id)
            .map_err(sled_err(format!("announced/{event_id}")))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A meta value holding a big-endian 64-bit number.
    pub fn meta_u64(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta(name)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// The snapshot of a session, decoded.
    pub fn snapshot(
        &self,
        created_at: i64,
        session_id: &str,
    ) -> Result<Option<Session>, StoreError> {
        let key = session_key(created_at, session_id);
        match self.snapshot_raw(&key)? {
            Some(bytes) => decode(&session_key_label(&key), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A meta value.
    pub fn meta(&self, name: &str) -> Result<Option<sled::IVec>, StoreError> {
        self.meta
            .get(name)
            .map_err(sled_err(format!("meta/{name}")))
    }

    /// Whether the baseline listing has been recorded.
    pub fn baseline_done(&self) -> Result<bool, StoreError> {
        Ok(self.meta(META_BASELINE)?.is_some())
    }

    /// Writes a page's changes in one transaction; returns the outbox sequence numbers given to
    /// its deliveries. The caller flushes ([`Store::flush`]) before sending.
    pub fn commit(&self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        if commit.is_empty() {
            return Ok(Vec::new());
        }
        if commit.deliveries.is_empty()
            && commit.dead.is_empty()
            && commit.meta.is_empty()
            && commit.waiting.is_empty()
            && commit.announced.is_empty()
            && commit.uncache.is_empty()
        {
            // Only snapshots (a baseline page, a page of quiet changes): one batch, atomic
            // like the transaction below and cheaper.
            let mut snapshots = sled::Batch::default();
            for (key, bytes) in &commit.snapshots {
                snapshots.insert(key.as_slice(), bytes.as_slice());
            }
            self.sessions
                .apply_batch(snapshots)
                .map_err(sled_err("sessions"))?;
            return Ok(Vec::new());
        }
        if !commit.deliveries.is_empty() {
            // Every id generated from here on is above this one: hold those rows back from the
            // delivery loop until the next flush has made them durable.
            let floor = self.db.generate_id().map_err(sled_err("commit"))?;
            self.durable_below
                .fetch_min(floor, std::sync::atomic::Ordering::SeqCst);
        }
        let trees = (
            &self.sessions,
            &self.outbox,
            &self.dead,
            &self.meta,
            &self.waiting,
            &self.announced,
            &self.messages,
        );
        let result = trees.transaction(
            |(sessions, outbox, dead, meta, waiting, announced, messages)| {
                for (key, bytes) in &commit.snapshots {
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
                Ok::<_, ConflictableTransactionError<()>>(seqs)
            },
        );
        match result {
            Ok(seqs) => Ok(seqs),
            Err(TransactionError::Storage(source)) => Err(StoreError::Sled {
                what: "commit".into(),
                source,
            }),
            Err(TransactionError::Abort(())) => Err(StoreError::Corrupt {
                what: "commit".into(),
                message: "transaction aborted".into(),
            }),
        }
    }

    /// Makes everything written so far durable; returns the bytes written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        // Rows committed before this point become sendable once the flush returns.
        let written = self.db.generate_id().map_err(sled_err("flush"))?;
        let bytes = self.db.flush_async().await.map_err(sled_err("flush"))?;
        let _ = self.durable_below.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |floor| (floor <= written).then_some(u64::MAX),
        );
        Ok(bytes)
    }

    /// Outbox rows at or above this sequence number are not durable yet.
    pub fn durable_below(&self) -> u64 {
        self.durable_below.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// As [`Store::flush`], blocking (for commands that run without a runtime).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(sled_err("flush"))
    }

    /// Every queued delivery, in detection order. An unreadable row is moved to the
    /// `quarantine` tree (and logged) so that it cannot stop the others.
    pub fn outbox_rows(&self) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let mut rows = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(sled_err("outbox"))?;
            let decoded =
                seq_of(&k).and_then(|seq| Ok((seq, decode(&format!("outbox/{seq}"), &v)?)));
            match decoded {
                Ok(row) => rows.push(row),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox row moved to the quarantine tree");
                    let quarantine = self
                        .db
                        .open_tree("quarantine")
                        .map_err(sled_err("quarantine"))?;
                    quarantine.insert(&k, v).map_err(sled_err("quarantine"))?;
                    self.outbox.remove(&k).map_err(sled_err("outbox"))?;
                }
            }
        }
        Ok(rows)
    }

    /// Every queued delivery, in detection order.
    pub fn outbox(&self) -> impl Iterator<Item = Result<(u64, Delivery), StoreError>> + '_ {
        self.outbox.iter().map(|item| {
            let (k, v) = item.map_err(sled_err("outbox"))?;
            let seq = seq_of(&k)?;
            Ok((seq, decode(&format!("outbox/{seq}"), &v)?))
        })
    }

    /// How many deliveries are queued.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Rewrites a queued delivery (after a failed attempt).
    pub fn update_delivery(&self, seq: u64, delivery: &Delivery) -> Result<(), StoreError> {
        // Only rewrite a delivery that is still queued (an admin may have purged it meanwhile).
        let k = key(seq);
        let new = encode(delivery);
        loop {
            let Some(current) = self
                .outbox
                .get(k)
                .map_err(sled_err(format!("outbox/{seq}")))?
            else {
                return Ok(());
            };
            match self
                .outbox
                .compare_and_swap(k, Some(current), Some(new.as_slice()))
                .map_err(sled_err(format!("outbox/{seq}")))?
            {
                Ok(()) => return Ok(()),
                Err(_) => continue,
            }
        }
    }

    /// Removes a delivered delivery.
    pub fn remove_delivery(&self, seq: u64) -> Result<(), StoreError> {
        self.outbox
            .remove(key(seq))
            .map(|_| ())
            .map_err(sled_err(format!("outbox/{seq}")))
    }

    /// Moves a queued delivery to the dead letters, in one transaction.
    pub fn bury(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let result = (&self.outbox, &self.dead).transaction(|(outbox, dead)| {
            outbox.remove(&key(seq))?;
            dead.insert(&key(seq), encode(letter))?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(source)) => Err(StoreError::Sled {
                what: format!("dead/{seq}"),
                source,
            }),
            Err(TransactionError::Abort(())) => Ok(()),
        }
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> impl Iterator<Item = Result<(u64, DeadLetter), StoreError>> + '_ {
        self.dead.iter().map(|item| {
            let (k, v) = item.map_err(sled_err("dead"))?;
            let seq = seq_of(&k)?;
            Ok((seq, decode(&format!("dead/{seq}"), &v)?))
        })
    }

    /// How many dead letters there are.
    pub fn dead_len(&self) -> usize {
        self.dead.len()
    }

    /// Finds a dead letter by its delivery id (`msg_...`) or its sequence number.
    pub fn find_dead(&self, id: &str) -> Result<Option<(u64, DeadLetter)>, StoreError> {
        for item in self.dead_letters() {
            let (seq, letter) = item?;
            if letter.delivery.id == id || seq.to_string() == id {
                return Ok(Some((seq, letter)));
            }
        }
        Ok(None)
    }

    /// Puts a dead letter's delivery back in the outbox, at its original place in the order,
    /// with fresh attempts.
    pub fn requeue(&self, seq: u64, delivery: &Delivery) -> Result<(), StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let mut fresh = delivery.clone();
        fresh.attempts = 0;
        fresh.next_attempt_ms = 0;
        let result = (&self.outbox, &self.dead).transaction(|(outbox, dead)| {
            dead.remove(&key(seq))?;
            outbox.insert(&key(seq), encode(&fresh))?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        result.map_err(|e| match e {
            TransactionError::Storage(source) => StoreError::Sled {
                what: format!("dead/{seq}"),
                source,
            },
            TransactionError::Abort(()) => StoreError::Corrupt {
                what: format!("dead/{seq}"),
                message: "aborted".into(),
            },
        })
    }

    /// Replaces a dead letter (after a failed re-render).
    pub fn update_dead(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        self.dead
            .insert(key(seq), encode(letter))
            .map(|_| ())
            .map_err(sled_err(format!("dead/{seq}")))
    }

    /// Deletes a dead letter.
    pub fn purge_dead(&self, seq: u64) -> Result<(), StoreError> {
        self.dead
            .remove(key(seq))
            .map(|_| ())
            .map_err(sled_err(format!("dead/{seq}")))
    }

    /// Pauses a sink: its deliveries stay queued, unsent, until it is resumed.
    pub fn pause_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError> {
        let paused = Paused {
            reason: reason.to_owned(),
            since_ms: now_ms(),
        };
        self.meta
            .insert(format!("{PAUSED_PREFIX}{sink}"), encode(&paused))
            .map(|_| ())
            .map_err(sled_err(format!("meta/{PAUSED_PREFIX}{sink}")))
    }

    /// Resumes a paused sink; false when it was not paused.
    pub fn resume_sink(&self, sink: &str) -> Result<bool, StoreError> {
        self.meta
            .remove(format!("{PAUSED_PREFIX}{sink}"))
            .map(|old| old.is_some())
            .map_err(sled_err(format!("meta/{PAUSED_PREFIX}{sink}")))
    }

    /// Every paused sink, with why.
    pub fn paused_sinks(&self) -> Result<Vec<(String, Paused)>, StoreError> {
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(PAUSED_PREFIX) {
            let (k, v) = item.map_err(sled_err("meta/paused"))?;
            let name = String::from_utf8_lossy(&k[PAUSED_PREFIX.len()..]).into_owned();
            out.push((
                name.clone(),
                decode(&format!("meta/{PAUSED_PREFIX}{name}"), &v)?,
            ));
        }
        Ok(out)
    }

    /// The Slack thread of a (sink, session), if one was started.
    pub fn slack_thread(
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

    /// Records the Slack thread of a (sink, session). The caller flushes before the delivery
    /// that posted it leaves the outbox.
    pub fn set_slack_thread(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u32) -> Delivery {
        Delivery {
            id: format!("msg_{n}"),
            sink: "s".into(),
            rule: "r".into(),
            session_id: "sess".into(),
            event_id: format!("evt_{n}"),
            event_type: "session.created".into(),
            body: "{}".into(),
            detected_at_ms: 1,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        }
    }

    #[test]
    fn commit_is_atomic_and_ordered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let commit = Commit {
            snapshots: vec![(
                session_key(5, "a"),
                br#"{"session_id":"a","status":"new","created_at":5}"#.to_vec(),
            )],
            deliveries: (0..5).map(delivery).collect(),
            dead: vec![],
            meta: vec![(META_BASELINE, b"1".to_vec())],
            waiting: vec![],
            announced: vec![("evt_a".into(), "open".into())],
            uncache: vec!["evt_waiting".into()],
        };
        store
            .cache_message("evt_waiting", &Some("May I?".into()))
            .expect("cache");
        assert_eq!(store.announced("evt_a").expect("get"), None);
        let seqs = store.commit(&commit).expect("commit");
        assert_eq!(store.announced("evt_a").expect("get"), Some("open".into()));
        assert_eq!(store.announced("evt_b").expect("get"), None);
        assert_eq!(store.cached_message("evt_waiting").expect("get"), None);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        let ids: Vec<String> = store.outbox().map(|r| r.expect("ok").1.id).collect();
        assert_eq!(ids, ["msg_0", "msg_1", "msg_2", "msg_3", "msg_4"]);
        assert!(store.baseline_done().expect("meta"));
        assert_eq!(
            store.snapshot(5, "a").expect("get").map(|s| s.status),
            Some("new".into())
        );

        let mut d = delivery(2);
        d.attempts = 3;
        store.update_delivery(seqs[2], &d).expect("update");
        store.remove_delivery(seqs[0]).expect("remove");
        store
            .bury(
                seqs[1],
                &DeadLetter {
                    delivery: delivery(1),
                    reason: "HTTP 400".into(),
                    status: Some(400),
                    response_body: "bad".into(),
                    failed_at_ms: 2,
                    event: None,
                },
            )
            .expect("bury");
        let left: Vec<(String, u32)> = store
            .outbox()
            .map(|r| r.expect("ok").1)
            .map(|d| (d.id, d.attempts))
            .collect();
        assert_eq!(
            left,
            [
                ("msg_2".into(), 3),
                ("msg_3".into(), 0),
                ("msg_4".into(), 0)
            ]
        );
        assert_eq!(store.dead_len(), 1);
        // Updating a delivery that is gone does not resurrect it.
        store.update_delivery(seqs[0], &delivery(0)).expect("noop");
        assert_eq!(store.outbox_len(), 3);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 1 << 20).expect("open");
            store
                .commit(&Commit {
                    deliveries: vec![delivery(7)],
                    ..Commit::default()
                })
                .expect("commit");
            futures_flush(&store);
        }
        let store = Store::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(store.outbox().count(), 1);
    }

    #[test]
    fn deliveries_are_held_back_until_flushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        assert_eq!(store.durable_below(), u64::MAX, "nothing pending");
        // Snapshot-only commits hold nothing back.
        store
            .commit(&Commit {
                snapshots: vec![(session_key(0, "a"), b"{}".to_vec())],
                ..Commit::default()
            })
            .expect("commit");
        assert_eq!(store.durable_below(), u64::MAX);
        let seqs = store
            .commit(&Commit {
                deliveries: vec![delivery(1), delivery(2)],
                ..Commit::default()
            })
            .expect("commit");
        assert!(
            seqs.iter().all(|s| *s >= store.durable_below()),
            "unflushed rows are held back"
        );
        futures_flush(&store);
        assert_eq!(store.durable_below(), u64::MAX, "sendable once flushed");
    }

    #[test]
    fn fingerprint_is_fnv1a() {
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fingerprint(b"{\"a\":1}"), fingerprint(b"{\"a\":2}"));
    }

    #[test]
    fn session_keys_sort_by_creation_time_then_id() {
        let keys = [
            session_key(i64::MIN, "a"),
            session_key(-5, "z"),
            session_key(0, "a"),
            session_key(0, "b"),
            session_key(1_795_000_000, "devin-1"),
            session_key(i64::MAX, "a"),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(
            session_key_label(&session_key(-5, "devin-x")),
            "sessions/-5/devin-x"
        );
        assert_eq!(
            session_key_label(&session_key(1_795_000_000, "devin-x")),
            "sessions/1795000000/devin-x"
        );
        assert_eq!(session_key_label(b"short"), "sessions/short");
    }

    #[test]
    fn opening_a_store_of_an_earlier_version_moves_its_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = br#"{"session_id":"devin-a","status":"running","created_at":100}"#;
        let b = br#"{"session_id":"devin-b","status":"exit","created_at":null}"#;
        {
            // The layout before `sessions`: snapshots and fingerprints keyed by id.
            let db = sled::Config::new().path(dir.path()).open().expect("open");
            let snapshots = db.open_tree("snapshots").expect("tree");
            snapshots.insert("devin-a", &a[..]).expect("insert");
            snapshots.insert("devin-b", &b[..]).expect("insert");
            snapshots
                .insert("devin-c", &b"not json"[..])
                .expect("insert");
            let fingerprints = db.open_tree("fingerprints").expect("tree");
            fingerprints
                .insert("devin-a", &7u64.to_be_bytes())
                .expect("insert");
            db.open_tree("waiting")
                .expect("tree")
                .insert(
                    "devin-a",
                    &br#"{"since_ms":5,"status_detail":"waiting_for_user"}"#[..],
                )
                .expect("insert");
            db.flush().expect("flush");
        }
        for _ in 0..2 {
            // The second open finds nothing left to move.
            let store = Store::open(dir.path(), 1 << 20).expect("open");
            assert_eq!(
                store
                    .snapshot_raw(&session_key(100, "devin-a"))
                    .expect("get")
                    .as_deref(),
                Some(&a[..])
            );
            assert_eq!(
                store.snapshot(0, "devin-b").expect("get").map(|s| s.status),
                Some("exit".into())
            );
            // An unreadable snapshot with no readable created_at moves too, under created_at 0.
            assert!(store
                .snapshot_raw(&session_key(0, "devin-c"))
                .expect("get")
                .is_some());
            let names = store.db.tree_names();
            assert!(!names
                .iter()
                .any(|n| n == b"snapshots" || n == b"fingerprints"));
            let waits = store.waiting().expect("waiting");
            assert_eq!(waits.len(), 1);
            assert_eq!(waits[0].1.created_at, 100, "the wait finds its snapshot");
            assert_eq!(waits[0].1.since_ms, 5);
            // The next listing of the same sessions finds them unchanged: nothing to write.
            let body = format!(
                r#"{{"items":[{},{}],"has_next_page":false}}"#,
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
            let page = crate::model::Page::decode(body.as_bytes()).expect("page");
            let (commit, events) =
                crate::poller::process_page(&store, &page, crate::poller::Mode::Diff, &[])
                    .expect("diff");
            assert!(commit.is_empty() && events.is_empty(), "{commit:?}");
        }
    }

    fn futures_flush(store: &Store) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(store.flush()).expect("flush");
    }
}
