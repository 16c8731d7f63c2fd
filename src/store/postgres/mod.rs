//! The PostgreSQL engine: the same records as the sled engine, one table per kind, in the
//! schema `store.schema` (created when missing). Several processes may share it; one of them
//! leads ([`crate::leader`]) and its writes are fenced by the leader's token.
//!
//! - Schema migrations are embedded (`migrations/`, refinery) and applied at start under an
//!   advisory lock, so one process at a time applies them.
//! - A page's changes are one transaction of set-based statements (`UNNEST` arrays), never a
//!   statement per session. A commit made while this process leads first takes a share lock
//!   on the leader row and checks the token: a process that lost the leadership cannot
//!   commit, and a new leader cannot take over in the middle of a commit.
//! - Commits are durable when they return: nothing is held back from the delivery loop.
//! - A delivery's outcome and its delivery log entry are one statement ([`journal`]).
//!
//! Errors name `store.url` without its password.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::engine::Engine;
use super::history::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Log};
use super::queue::Row;
use super::{
    decode, encode, Commit, DeadLetter, Delivery, Held, Paused, Settle, SlackThread, SnapshotKey,
    StoreError, Waiting,
};
mod activity;
mod connect;
mod journal;

pub use self::connect::{connect, pg_config, place_of, schema_version};
use self::connect::{migrate, pg_err, POOL_SIZE};
use crate::config::StoreConfig;
use crate::redact::error_chain;

/// The PostgreSQL engine. Cheap to clone.
#[derive(Clone)]
pub struct PgEngine {
    pool: Pool,
    /// `store.url` as printed in messages: no password.
    pub(super) place: Arc<str>,
    /// The leader's fencing token this process commits under (0: unfenced, for admin
    /// commands and imports).
    fence: Arc<AtomicU64>,
}

impl PgEngine {
    /// Connects, creates the schema when missing and applies the embedded migrations (one
    /// process at a time), then opens the pool.
    pub async fn open(config: &StoreConfig) -> Result<PgEngine, StoreError> {
        let url = config.url.as_ref().map(|u| u.expose()).unwrap_or_default();
        let place = place_of(url);
        migrate(config, &place).await?;
        Self::pool(config, place)
    }

    /// Opens a store that must exist already, changing nothing: for admin commands, so that a
    /// mistyped schema is an error, not a new empty store.
    pub async fn open_existing(config: &StoreConfig) -> Result<PgEngine, StoreError> {
        let url = config.url.as_ref().map(|u| u.expose()).unwrap_or_default();
        let place = place_of(url);
        if schema_version(config).await?.is_none() {
            return Err(StoreError::Postgres {
                what: place,
                message: format!(
                    "schema {} holds no devin-notify store (check store.schema; `run` creates it)",
                    config.schema
                ),
            });
        }
        Self::pool(config, place)
    }

    /// The pool over `[store]`'s database.
    fn pool(config: &StoreConfig, place: String) -> Result<PgEngine, StoreError> {
        let manager = Manager::from_config(
            pg_config(config)?,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Postgres {
                what: place.clone(),
                message: e.to_string(),
            })?;
        Ok(PgEngine {
            pool,
            place: place.into(),
            fence: Arc::new(AtomicU64::new(0)),
        })
    }

    /// From now on, commits are made under this fencing token (0: unfenced).
    pub fn fence(&self, token: u64) {
        self.fence.store(token, Ordering::SeqCst);
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Postgres {
            what: self.place.to_string(),
            message: error_chain(&e),
        })
    }

    pub(super) fn err(&self, what: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        pg_err(format!("{}: {what}", self.place))
    }

    /// Fails unless this process still holds the leader's token (when it commits under one).
    async fn check_fence(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
        let mine = self.fence.load(Ordering::SeqCst);
        if mine == 0 {
            return Ok(());
        }
        let row = tx
            .query_one("SELECT token FROM leader WHERE id = 1 FOR SHARE", &[])
            .await
            .map_err(self.err("leader"))?;
        let current = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        if current != mine {
            return Err(StoreError::Fenced {
                token: mine,
                current,
            });
        }
        Ok(())
    }

    /// `n` fresh delivery sequence numbers, in increasing order.
    async fn next_seqs(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let rows = tx
            .query(
                "SELECT nextval('delivery_seq') FROM generate_series(1, $1::bigint)",
                &[&(n as i64)],
            )
            .await
            .map_err(self.err("delivery_seq"))?;
        let mut seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Writes a commit's snapshots, meta, waits, announced ids and uncached messages.
    pub(super) async fn write_state(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        if !commit.snapshots.is_empty() {
            let (created, ids, bodies) = snapshot_columns(commit);
            tx.execute(
                "INSERT INTO sessions (created_at, session_id, body) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[]) \
                 ON CONFLICT (created_at, session_id) DO UPDATE SET body = EXCLUDED.body",
                &[&created, &ids, &bodies],
            )
            .await
            .map_err(self.err("sessions"))?;
        }
        // Fixed names and names made at run time (a digest's last period end) alike.
        let meta: BTreeMap<std::borrow::Cow<'_, str>, &[u8]> = commit
            .meta
            .iter()
            .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), v.as_slice()))
            .chain(commit.marks.iter().map(|(k, v)| (no_nul(k), v.as_slice())))
            .collect();
        if !meta.is_empty() {
            let names: Vec<&str> = meta.keys().map(|k| k.as_ref()).collect();
            let values: Vec<&[u8]> = meta.values().copied().collect();
            tx.execute(
                "INSERT INTO meta (name, value) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&names, &values],
            )
            .await
            .map_err(self.err("meta"))?;
        }
        self.write_waits(tx, commit).await?;
        let announced: BTreeMap<&str, std::borrow::Cow<'_, str>> = commit
            .announced
            .iter()
            .map(|(k, v)| (k.as_str(), no_nul(v)))
            .collect();
        if !announced.is_empty() {
            let ids: Vec<&str> = announced.keys().copied().collect();
            let states: Vec<&str> = announced.values().map(|s| s.as_ref()).collect();
            tx.execute(
                "INSERT INTO announced (event_id, state) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                 ON CONFLICT (event_id) DO UPDATE SET state = EXCLUDED.state",
                &[&ids, &states],
            )
            .await
            .map_err(self.err("announced"))?;
        }
        if !commit.uncache.is_empty() {
            tx.execute(
                "DELETE FROM messages WHERE event_id = ANY($1::text[])",
                &[&commit.uncache],
            )
            .await
            .map_err(self.err("messages"))?;
        }
        Ok(())
    }

    /// Writes a commit's waits: the last word on each session wins.
    async fn write_waits(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let last: BTreeMap<&str, &Option<Waiting>> = commit
            .waiting
            .iter()
            .map(|(id, w)| (id.as_str(), w))
            .collect();
        let (set, unset): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, w)| w.is_some());
        if !unset.is_empty() {
            let ids: Vec<&str> = unset.iter().map(|(id, _)| *id).collect();
            tx.execute(
                "DELETE FROM waiting WHERE session_id = ANY($1::text[])",
                &[&ids],
            )
            .await
            .map_err(self.err("waiting"))?;
        }
        if !set.is_empty() {
            let ids: Vec<&str> = set.iter().map(|(id, _)| *id).collect();
            let records: Vec<String> = set
                .iter()
                .map(|(_, w)| String::from_utf8_lossy(&encode(w)).into_owned())
                .collect();
            tx.execute(
                "INSERT INTO waiting (session_id, record) \
                 SELECT u.id, u.rec::jsonb FROM UNNEST($1::text[], $2::text[]) AS u(id, rec) \
                 ON CONFLICT (session_id) DO UPDATE SET record = EXCLUDED.record",
                &[&ids, &records],
            )
            .await
            .map_err(self.err("waiting"))?;
        }
        Ok(())
    }

    /// Queues a commit's deliveries and dead letters; returns the deliveries' numbers.
    async fn write_queue(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<Vec<u64>, StoreError> {
        let seqs = self.next_seqs(tx, commit.deliveries.len()).await?;
        if !seqs.is_empty() {
            let sinks: Vec<&str> = commit.deliveries.iter().map(|d| d.sink.as_str()).collect();
            let sessions: Vec<&str> = commit
                .deliveries
                .iter()
                .map(|d| d.session_id.as_str())
                .collect();
            let records: Vec<String> = commit.deliveries.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO outbox (seq, sink, session_id, record) \
                 SELECT u.seq, u.sink, u.sid, u.rec::jsonb \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(seq, sink, sid, rec)",
                &[&seqs, &sinks, &sessions, &records],
            )
            .await
            .map_err(self.err("outbox"))?;
        }
        let dead_seqs = self.next_seqs(tx, commit.dead.len()).await?;
        if !dead_seqs.is_empty() {
            let records: Vec<String> = commit.dead.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO dead (seq, record) \
                 SELECT u.seq, u.rec::jsonb FROM UNNEST($1::bigint[], $2::text[]) AS u(seq, rec)",
                &[&dead_seqs, &records],
            )
            .await
            .map_err(self.err("dead"))?;
        }
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }

    /// Releases a commit's `unhold` rows (all of them, or the commit fails) and holds its
    /// `held` deliveries.
    async fn write_held(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        if !commit.unhold.is_empty() {
            let seqs: Vec<i64> = commit.unhold.iter().map(|s| *s as i64).collect();
            let gone = tx
                .execute("DELETE FROM held WHERE seq = ANY($1::bigint[])", &[&seqs])
                .await
                .map_err(self.err("held"))?;
            if gone != seqs.len() as u64 {
                return Err(StoreError::Postgres {
                    what: format!("{}: held", self.place),
                    message: format!(
                        "{} of the {} held deliveries to release are no longer held (released by another process?): nothing written",
                        seqs.len() as u64 - gone,
                        seqs.len()
                    ),
                });
            }
        }
        let seqs = self.next_seqs(tx, commit.held.len()).await?;
        if !seqs.is_empty() {
            let sinks: Vec<&str> = commit
                .held
                .iter()
                .map(|h| h.delivery.sink.as_str())
                .collect();
            let rules: Vec<&str> = commit
                .held
                .iter()
                .map(|h| h.delivery.rule.as_str())
                .collect();
            let records: Vec<String> = commit.held.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO held (seq, sink, rule, record) \
                 SELECT u.seq, u.sink, u.rule, u.rec::jsonb \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(seq, sink, rule, rec)",
                &[&seqs, &sinks, &rules, &records],
            )
            .await
            .map_err(self.err("held"))?;
        }
        Ok(())
    }

    /// Sets an unreadable outbox row aside (table `quarantine`), out of the outbox.
    async fn quarantine(
        &self,
        client: &deadpool_postgres::Object,
        seq: i64,
    ) -> Result<(), StoreError> {
        client
            .execute(
                "WITH moved AS (DELETE FROM outbox WHERE seq = $1 RETURNING seq, record) \
                 INSERT INTO quarantine (seq, record) SELECT seq, record::text FROM moved \
                 ON CONFLICT (seq) DO NOTHING",
                &[&seq],
            )
            .await
            .map(|_| ())
            .map_err(self.err("quarantine"))
    }

    /// Rows of `(seq, record)` decoded; `what` names the table.
    fn decode_rows<T: for<'de> serde::Deserialize<'de>>(
        rows: &[tokio_postgres::Row],
        what: &str,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        rows.iter()
            .map(|row| {
                let seq = row.get::<_, i64>(0) as u64;
                let text: String = row.get(1);
                Ok((seq, decode(&format!("{what}/{seq}"), text.as_bytes())?))
            })
            .collect()
    }
}

/// A record's JSON text.
pub(super) fn json_text<T: serde::Serialize>(value: &T) -> String {
    let text = String::from_utf8_lossy(&encode(value)).into_owned();
    if !text.contains("\\u0000") {
        return text;
    }
    // PostgreSQL refuses U+0000 in text and jsonb: it becomes U+FFFD, which nothing needs to
    // tell apart (a receiver's answer, a session title).
    match serde_json::to_value(value) {
        Ok(mut v) => {
            scrub(&mut v);
            v.to_string()
        }
        Err(_) => text,
    }
}

/// Replaces U+0000 in every string (and key) of a JSON value.
fn scrub(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => *s = no_nul(s).into_owned(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                scrub(&mut v);
                map.insert(no_nul(&k).into_owned(), v);
            }
        }
        _ => {}
    }
}

/// The text without U+0000 (PostgreSQL refuses it in text values).
pub(super) fn no_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The snapshots of a commit as three columns.
fn snapshot_columns(commit: &Commit) -> (Vec<i64>, Vec<&str>, Vec<String>) {
    let mut created = Vec::with_capacity(commit.snapshots.len());
    let mut ids = Vec::with_capacity(commit.snapshots.len());
    let mut bodies = Vec::with_capacity(commit.snapshots.len());
    for (key, bytes) in &commit.snapshots {
        created.push(key.created_at);
        ids.push(key.session_id.as_str());
        bodies.push(String::from_utf8_lossy(bytes).into_owned());
    }
    (created, ids, bodies)
}

impl Engine for PgEngine {
    async fn snapshots(&self, keys: &[SnapshotKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(out);
        }
        let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.session_id.as_str()).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT k.i, s.body FROM UNNEST($1::bigint[], $2::text[]) WITH ORDINALITY AS k(created_at, session_id, i) \
                 JOIN sessions s ON s.created_at = k.created_at AND s.session_id = k.session_id",
                &[&created, &ids],
            )
            .await
            .map_err(self.err("sessions"))?;
        for row in rows {
            let i = row.get::<_, i64>(0) as usize;
            if let Some(slot) = i.checked_sub(1).and_then(|i| out.get_mut(i)) {
                *slot = Some(row.get::<_, String>(1).into_bytes());
            }
        }
        Ok(out)
    }

    async fn announced(&self, ids: &[&str]) -> Result<Vec<Option<String>>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT event_id, state FROM announced WHERE event_id = ANY($1::text[])",
                &[&ids],
            )
            .await
            .map_err(self.err("announced"))?;
        let found: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(ids.iter().map(|id| found.get(*id).cloned()).collect())
    }

    async fn cached_message(&self, event_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT message FROM messages WHERE event_id = $1",
                &[&event_id],
            )
            .await
            .map_err(self.err("messages"))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn cache_message(
        &self,
        event_id: &str,
        message: &Option<String>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO messages (event_id, message) VALUES ($1, $2) \
                 ON CONFLICT (event_id) DO UPDATE SET message = EXCLUDED.message",
                &[&event_id, &message.as_deref().map(no_nul)],
            )
            .await
            .map(|_| ())
            .map_err(self.err("messages"))
    }

    async fn commit(&self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(self.err("commit"))?;
        self.check_fence(&tx).await?;
        self.write_state(&tx, commit).await?;
        self.write_held(&tx, commit).await?;
        let seqs = self.write_queue(&tx, commit).await?;
        self.write_logs(&tx, commit).await?;
        self.write_activity(&tx, &commit.activity).await?;
        tx.commit().await.map_err(self.err("commit"))?;
        Ok(seqs)
    }

    async fn flush(&self) -> Result<usize, StoreError> {
        // Every write is durable when it returns.
        Ok(0)
    }

    fn durable_below(&self) -> u64 {
        u64::MAX
    }

    async fn waiting(&self) -> Result<Vec<(String, Waiting)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT session_id, record::text FROM waiting", &[])
            .await
            .map_err(self.err("waiting"))?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.get(0);
            let text: String = row.get(1);
            match decode(&format!("waiting/{id}"), text.as_bytes()) {
                Ok(w) => out.push((id, w)),
                Err(e) => {
                    tracing::error!(error = %e, "dropping an unreadable wait record");
                    client
                        .execute("DELETE FROM waiting WHERE session_id = $1", &[&id])
                        .await
                        .map_err(self.err("waiting"))?;
                }
            }
        }
        Ok(out)
    }

    async fn outbox(&self) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT seq, record::text FROM outbox ORDER BY seq", &[])
            .await
            .map_err(self.err("outbox"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.get(0);
            let text: String = row.get(1);
            match decode(&format!("outbox/{seq}"), text.as_bytes()) {
                Ok(d) => out.push((seq as u64, d)),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox row moved to the quarantine table");
                    self.quarantine(&client, seq).await?;
                }
            }
        }
        Ok(out)
    }

    async fn held(&self) -> Result<Vec<(u64, Held)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT seq, record::text FROM held ORDER BY seq", &[])
            .await
            .map_err(self.err("held"))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let seq = row.get::<_, i64>(0) as u64;
                let text: String = row.get(1);
                super::held::readable(seq, decode(&format!("held/{seq}"), text.as_bytes()))
                    .map(|held| (seq, held))
            })
            .collect())
    }

    async fn outbox_len(&self) -> Result<usize, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .map_err(self.err("outbox"))?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    async fn outbox_rows(&self) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT seq, sink, session_id, CASE WHEN jsonb_typeof(record->'next_attempt_ms') = 'number' \
                 THEN least(greatest((record->>'next_attempt_ms')::numeric, 0), 9223372036854775807)::bigint \
                 ELSE 0 END FROM outbox ORDER BY seq",
                &[],
            )
            .await
            .map_err(self.err("outbox"))?;
        Ok(rows
            .iter()
            .map(|r| Row {
                seq: r.get::<_, i64>(0) as u64,
                sink: r.get(1),
                session_id: r.get(2),
                due_ms: r.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    async fn deliveries(&self, seqs: &[u64]) -> Result<Vec<Option<Delivery>>, StoreError> {
        let wanted: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, record::text FROM outbox WHERE seq = ANY($1::bigint[])",
                &[&wanted],
            )
            .await
            .map_err(self.err("outbox"))?;
        let mut found: HashMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in wanted {
            let Some(text) = found.remove(&seq) else {
                out.push(None);
                continue;
            };
            match decode(&format!("outbox/{seq}"), text.as_bytes()) {
                Ok(d) => out.push(Some(d)),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable outbox row moved to the quarantine table");
                    self.quarantine(&client, seq).await?;
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    async fn settle(&self, batch: &[Settle]) -> Result<(), StoreError> {
        self.settle_logged(batch).await
    }

    async fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT seq, record::text FROM dead ORDER BY seq", &[])
            .await
            .map_err(self.err("dead"))?;
        Self::decode_rows(&rows, "dead")
    }

    async fn dead_len(&self) -> Result<usize, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM dead", &[])
            .await
            .map_err(self.err("dead"))?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    async fn requeue(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        self.requeue_logged(seq, delivery, log).await
    }

    async fn update_dead(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE dead SET record = $2::text::jsonb WHERE seq = $1",
                &[&(seq as i64), &json_text(letter)],
            )
            .await
            .map(|_| ())
            .map_err(self.err(&format!("dead/{seq}")))
    }

    async fn purge_dead(&self, seq: u64) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute("DELETE FROM dead WHERE seq = $1", &[&(seq as i64)])
            .await
            .map(|_| ())
            .map_err(self.err(&format!("dead/{seq}")))
    }

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT value FROM meta WHERE name = $1", &[&name])
            .await
            .map_err(self.err(&format!("meta/{name}")))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &value],
            )
            .await
            .map(|_| ())
            .map_err(self.err(&format!("meta/{name}")))
    }

    async fn pause_sink(&self, sink: &str, paused: &Paused) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO paused_sinks (sink, record) VALUES ($1, $2::text::jsonb) \
                 ON CONFLICT (sink) DO UPDATE SET record = EXCLUDED.record",
                &[&sink, &json_text(paused)],
            )
            .await
            .map(|_| ())
            .map_err(self.err(&format!("paused/{sink}")))
    }

    async fn resume_sink(&self, sink: &str) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute("DELETE FROM paused_sinks WHERE sink = $1", &[&sink])
            .await
            .map(|n| n > 0)
            .map_err(self.err(&format!("paused/{sink}")))
    }

    async fn paused_sinks(&self) -> Result<Vec<(String, Paused)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT sink, record::text FROM paused_sinks ORDER BY sink",
                &[],
            )
            .await
            .map_err(self.err("paused_sinks"))?;
        rows.iter()
            .map(|row| {
                let sink: String = row.get(0);
                let text: String = row.get(1);
                let paused = decode(&format!("paused/{sink}"), text.as_bytes())?;
                Ok((sink, paused))
            })
            .collect()
    }

    async fn slack_thread(
        &self,
        sink: &str,
        session_id: &str,
    ) -> Result<Option<SlackThread>, StoreError> {
        let what = format!("threads/{sink}/{session_id}");
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT record::text FROM threads WHERE sink = $1 AND session_id = $2",
                &[&sink, &session_id],
            )
            .await
            .map_err(self.err(&what))?;
        match row {
            Some(row) => decode(&what, row.get::<_, String>(0).as_bytes()).map(Some),
            None => Ok(None),
        }
    }

    async fn set_slack_thread(
        &self,
        sink: &str,
        session_id: &str,
        thread: &SlackThread,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO threads (sink, session_id, record) VALUES ($1, $2, $3::text::jsonb) \
                 ON CONFLICT (sink, session_id) DO UPDATE SET record = EXCLUDED.record",
                &[&sink, &session_id, &json_text(thread)],
            )
            .await
            .map(|_| ())
            .map_err(self.err(&format!("threads/{sink}/{session_id}")))
    }

    async fn recent_deliveries(
        &self,
        filter: &DeliveryFilter,
        history: usize,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        self.read_deliveries(filter, history).await
    }

    async fn recent_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
        history: usize,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        self.read_events(limit, before_id, history).await
    }

    async fn activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<crate::digest::Activity>, StoreError> {
        self.read_activity(start_ms, end_ms).await
    }

    async fn prune_activity(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        self.prune(before_ms, limit).await
    }

    async fn trim_log(&self, log: Log, keep: usize) -> Result<(), StoreError> {
        self.trim(log, keep).await
    }
}
