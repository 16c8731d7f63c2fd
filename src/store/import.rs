//! Moving a sled store into PostgreSQL (`devin-notify store import --sled PATH`): every record
//! (snapshots, once-per-subject records, cached messages, waits, outbox and dead letters with
//! their numbers, marks and meta, paused sinks, Slack threads, held deliveries, the activity
//! history) copied in one transaction, so
//! that switching engines announces nothing again and sends nothing twice under new ids.

use std::path::Path;

use super::postgres::{json_text, no_nul, PgEngine};
use super::sled::SledEngine;
use super::{
    Commit, DeadLetter, Delivery, Held, Paused, SlackThread, SnapshotKey, Store, StoreError,
    Waiting,
};

/// Everything a store holds.
#[derive(Debug, Default)]
pub struct Export {
    pub sessions: Vec<(SnapshotKey, Vec<u8>)>,
    pub messages: Vec<(String, Option<String>)>,
    pub waiting: Vec<(String, Waiting)>,
    pub announced: Vec<(String, String)>,
    pub outbox: Vec<(u64, Delivery)>,
    pub dead: Vec<(u64, DeadLetter)>,
    pub meta: Vec<(String, Vec<u8>)>,
    pub paused: Vec<(String, Paused)>,
    /// (sink, session id, thread).
    pub threads: Vec<(String, String, SlackThread)>,
    /// The activity history digests read.
    pub activity: Vec<crate::digest::Activity>,
    /// Deliveries held while their rule is muted, by number.
    pub held: Vec<(u64, Held)>,
}

impl Export {
    /// One line saying what was copied.
    pub fn summary(&self) -> String {
        format!(
            "{} session(s), {} queued deliveries, {} dead letter(s), {} wait(s), {} once-per-subject record(s), {} Slack thread(s), {} paused sink(s), {} meta value(s), {} held deliveries, {} history record(s)",
            self.sessions.len(),
            self.outbox.len(),
            self.dead.len(),
            self.waiting.len(),
            self.announced.len(),
            self.threads.len(),
            self.paused.len(),
            self.meta.len(),
            self.held.len(),
            self.activity.len(),
        )
    }
}

/// Copies the sled store at `path` into `into`, which must be an empty PostgreSQL store.
/// Returns what was copied.
pub async fn import_sled(path: &Path, into: &Store) -> Result<Export, StoreError> {
    let Some(pg) = into.postgres() else {
        return Err(StoreError::Postgres {
            what: "store.backend".into(),
            message: "import copies into a PostgreSQL store: set backend = \"postgres\"".into(),
        });
    };
    if !path.is_dir() {
        return Err(StoreError::Postgres {
            what: "--sled".into(),
            message: format!("{} is not a sled store's directory", path.display()),
        });
    }
    let export = SledEngine::open(path, 16 * 1024 * 1024)?.export()?;
    pg.import(&export).await?;
    Ok(export)
}

impl PgEngine {
    /// Copies an export into this (empty) store, in one transaction.
    pub async fn import(&self, data: &Export) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(self.err("import"))?;
        // No process may lead (poll, record a baseline) while the store is filled: the lease
        // row stays locked until the import commits.
        let lease = tx
            .query_one(
                "SELECT holder, expires_at > clock_timestamp() FROM leader WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(self.err("leader"))?;
        if lease.get::<_, bool>(1) {
            return Err(StoreError::Postgres {
                what: self.place.to_string(),
                message: format!(
                    "a devin-notify process leads this store ({}): stop it before importing",
                    lease.get::<_, String>(0)
                ),
            });
        }
        let held = tx
            .query_one(
                "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM outbox) \
                 + (SELECT count(*) FROM dead) + (SELECT count(*) FROM meta) \
                 + (SELECT count(*) FROM held) + (SELECT count(*) FROM activity)",
                &[],
            )
            .await
            .map_err(self.err("import"))?;
        if held.get::<_, i64>(0) > 0 {
            return Err(StoreError::Postgres {
                what: self.place.to_string(),
                message: "the schema already holds a store: import into an empty schema (a new store.schema)".into(),
            });
        }
        for chunk in data.sessions.chunks(1000) {
            let commit = Commit {
                snapshots: chunk.to_vec(),
                ..Commit::default()
            };
            self.write_state(&tx, &commit).await?;
        }
        let rest = Commit {
            waiting: data
                .waiting
                .iter()
                .map(|(id, w)| (id.clone(), Some(w.clone())))
                .collect(),
            announced: data.announced.clone(),
            ..Commit::default()
        };
        self.write_state(&tx, &rest).await?;
        for chunk in data.activity.chunks(1000) {
            self.write_activity(&tx, chunk).await?;
        }
        self.import_rows(&tx, data).await?;
        tx.commit().await.map_err(self.err("import"))
    }

    /// The numbered rows and small tables of an import.
    async fn import_rows(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        data: &Export,
    ) -> Result<(), StoreError> {
        for (seq, d) in &data.outbox {
            tx.execute(
                "INSERT INTO outbox (seq, sink, session_id, record) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&(*seq as i64), &d.sink, &d.session_id, &json_text(d)],
            )
            .await
            .map_err(self.err(&format!("outbox/{seq}")))?;
        }
        for (seq, letter) in &data.dead {
            tx.execute(
                "INSERT INTO dead (seq, record) VALUES ($1, $2::text::jsonb)",
                &[&(*seq as i64), &json_text(letter)],
            )
            .await
            .map_err(self.err(&format!("dead/{seq}")))?;
        }
        for (seq, h) in &data.held {
            tx.execute(
                "INSERT INTO held (seq, sink, rule, record) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[
                    &(*seq as i64),
                    &h.delivery.sink,
                    &h.delivery.rule,
                    &json_text(h),
                ],
            )
            .await
            .map_err(self.err(&format!("held/{seq}")))?;
        }
        let highest = data
            .outbox
            .iter()
            .map(|(s, _)| *s)
            .chain(data.dead.iter().map(|(s, _)| *s))
            .chain(data.held.iter().map(|(s, _)| *s))
            .max();
        if let Some(highest) = highest {
            tx.execute("SELECT setval('delivery_seq', $1)", &[&(highest as i64)])
                .await
                .map_err(self.err("delivery_seq"))?;
        }
        for (id, message) in &data.messages {
            tx.execute(
                "INSERT INTO messages (event_id, message) VALUES ($1, $2)",
                &[id, &message.as_deref().map(no_nul)],
            )
            .await
            .map_err(self.err(&format!("messages/{id}")))?;
        }
        for (name, value) in &data.meta {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2)",
                &[name, value],
            )
            .await
            .map_err(self.err(&format!("meta/{name}")))?;
        }
        for (sink, paused) in &data.paused {
            tx.execute(
                "INSERT INTO paused_sinks (sink, record) VALUES ($1, $2::text::jsonb)",
                &[sink, &json_text(paused)],
            )
            .await
            .map_err(self.err(&format!("paused/{sink}")))?;
        }
        for (sink, session, thread) in &data.threads {
            tx.execute(
                "INSERT INTO threads (sink, session_id, record) VALUES ($1, $2, $3::text::jsonb)",
                &[sink, session, &json_text(thread)],
            )
            .await
            .map_err(self.err(&format!("threads/{sink}/{session}")))?;
        }
        Ok(())
    }
}
