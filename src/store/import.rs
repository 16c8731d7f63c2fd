//! Moving a sled store into PostgreSQL (`devin-notify store import --sled PATH`): every record
//! (snapshots, once-per-subject records, cached messages, waits, outbox and dead letters with
//! their numbers, marks and meta, paused sinks, Slack threads) copied in one transaction, so
//! that switching engines announces nothing again and sends nothing twice under new ids.

use std::path::Path;

use super::sled::SledEngine;
use super::{DeadLetter, Delivery, Paused, SlackThread, SnapshotKey, Store, StoreError, Waiting};

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
}

impl Export {
    /// One line saying what was copied.
    pub fn summary(&self) -> String {
        format!(
            "{} session(s), {} queued deliveries, {} dead letter(s), {} wait(s), {} once-per-subject record(s), {} Slack thread(s), {} paused sink(s), {} meta value(s)",
            self.sessions.len(),
            self.outbox.len(),
            self.dead.len(),
            self.waiting.len(),
            self.announced.len(),
            self.threads.len(),
            self.paused.len(),
            self.meta.len(),
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
