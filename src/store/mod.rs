//! The store: everything devin-notify remembers, behind one [`Store`] type.
//!
//! One file per concern, each defining its records and the [`Store`] operations on them:
//! - [`snapshots`]: each session as last listed, the once-per-subject events announced, the
//!   Devin messages read for waiting events, and [`Commit`], what one page changes at once.
//! - [`waits`]: the sessions that wait on a person, for reminders.
//! - [`outbox`]: queued deliveries in detection order, and the dead letters.
//! - [`held`]: deliveries held while their rule is muted (quiet hours), moved to the outbox
//!   when it no longer is.
//! - [`meta`]: small named values (baseline, high-water mark, scope) and paused sinks.
//! - [`threads`]: the Slack thread of each (Slack app sink, session).
//! - [`people`]: who a session's creator is in Slack, per Slack app sink (a cache with a time
//!   to live), kept among the named values.
//! - [`history`]: the delivery log (each delivery's outcomes) and the event log (each event
//!   detected and where it went), the last `server.history` entries of each.
//!
//! The storage engine sits behind a narrow seam, [`engine::Engine`]: the operations the poller,
//! the delivery loop and the admin commands need, nothing engine-specific above it. The engine
//! today is sled ([`sled`], with [`migrate`] moving stores of earlier versions to its layout).
//!
//! A page's snapshot updates and the deliveries they cause are written in one transaction
//! ([`Store::commit`]); deliveries become sendable once that write is durable
//! ([`Store::durable_below`], [`Store::flush`]).

pub mod activity;
pub mod engine;
pub mod held;
pub mod history;
pub mod import;
pub mod meta;
mod migrate;
pub mod outbox;
pub mod people;
pub mod postgres;
pub mod queue;
pub mod sled;
pub mod snapshots;
pub mod threads;
pub mod waits;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use crate::config::{StoreBackend, StoreConfig};

use serde::{Deserialize, Serialize};

use self::engine::Engine;
pub use self::held::Held;
pub use self::history::{
    DeliveryFilter, DeliveryLogEntry, EventLogEntry, EventRoute, Outcome, DEFAULT_HISTORY,
    MAX_HISTORY,
};
pub use self::meta::{Paused, META_BASELINE, META_HIGH_WATER, META_LAST_FULL, META_SCOPE};
pub use self::outbox::{Change, DeadLetter, Delivery, Settle};
pub use self::people::CachedPerson;
pub use self::snapshots::{Commit, SnapshotKey};
pub use self::threads::SlackThread;
pub use self::waits::Waiting;

/// A failure of the store, naming the record it was about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Open { path: String, source: ::sled::Error },
    #[error("store at {path} is in use by another devin-notify process (sled allows one); stop `run` first, or give it a [server] listen: the commands then go through its admin API")]
    Locked { path: String },
    #[error("store ({what}): {source}")]
    Sled { what: String, source: ::sled::Error },
    #[error("store ({what}): corrupt record: {message}")]
    Corrupt { what: String, message: String },
    /// A write refused because what it changes changed first; nothing was written.
    #[error("store ({what}): {message}")]
    Conflict { what: String, message: String },
    #[error("{what}: {message}")]
    Postgres { what: String, message: String },
    #[error("store: this process no longer leads (its token {token}, the leader's {current}): nothing written")]
    Fenced { token: u64, current: u64 },
}

/// The engines a store can run on.
enum Backend {
    Sled(self::sled::SledEngine),
    Postgres(self::postgres::PgEngine),
}

/// Calls one [`Engine`] operation on whichever engine the store runs on.
macro_rules! on_engine {
    ($store:ident . $op:ident ( $($arg:expr),* )) => {
        match &*$store.backend {
            Backend::Sled(engine) => Engine::$op(engine, $($arg),*).await,
            Backend::Postgres(engine) => Engine::$op(engine, $($arg),*).await,
        }
    };
}
use on_engine;

/// The store. Cheap to clone: clones share the engine.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    /// The outbox's index, built at its first use ([`outbox`]).
    queue: Arc<tokio::sync::Mutex<Option<self::queue::QueueIndex>>>,
    /// How much of the logs is kept ([`history`]).
    keeping: Arc<self::history::Keeping>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when missing) the sled store at `path`, moving the records of an
    /// earlier version to the current layout.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Store, StoreError> {
        let engine = self::sled::SledEngine::open(path, cache_capacity)?;
        Ok(Store::on(Backend::Sled(engine)))
    }

    /// Opens the store `[store]` names: the sled directory, or the PostgreSQL schema (created
    /// and migrated when needed).
    pub async fn from_config(config: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match config.backend {
            StoreBackend::Sled => Backend::Sled(self::sled::SledEngine::open(
                &config.path,
                config.cache_capacity,
            )?),
            StoreBackend::Postgres => {
                Backend::Postgres(self::postgres::PgEngine::open(config).await?)
            }
        };
        Ok(Store::on(backend))
    }

    fn on(backend: Backend) -> Store {
        Store {
            backend: Arc::new(backend),
            queue: Default::default(),
            keeping: Default::default(),
        }
    }

    /// As [`Store::from_config`], but a PostgreSQL store must exist already (nothing is
    /// created or migrated): for admin commands.
    pub async fn open_existing(config: &StoreConfig) -> Result<Store, StoreError> {
        match config.backend {
            StoreBackend::Sled => Store::from_config(config).await,
            StoreBackend::Postgres => Ok(Store::on(Backend::Postgres(
                self::postgres::PgEngine::open_existing(config).await?,
            ))),
        }
    }

    /// Whether several processes may share this store (one of them leading).
    pub fn shared(&self) -> bool {
        matches!(&*self.backend, Backend::Postgres(_))
    }

    /// The PostgreSQL engine, when the store runs on one.
    pub fn postgres(&self) -> Option<&self::postgres::PgEngine> {
        match &*self.backend {
            Backend::Postgres(engine) => Some(engine),
            Backend::Sled(_) => None,
        }
    }

    /// Writes a page's changes in one transaction; returns the outbox sequence numbers given to
    /// its deliveries. They are sent once durable: the caller flushes ([`Store::flush`]).
    pub async fn commit(&self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        if commit.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = on_engine!(self.commit(commit))?;
        if !seqs.is_empty() {
            self.note_queued(seqs.iter().zip(&commit.deliveries).map(|(seq, d)| {
                self::queue::Row {
                    seq: *seq,
                    sink: d.sink.clone(),
                    session_id: d.session_id.clone(),
                    due_ms: d.next_attempt_ms,
                }
            }))
            .await;
        }
        self.logged(self::history::Log::Events, commit.events.len())
            .await;
        self.logged(self::history::Log::Deliveries, commit.logged.len())
            .await;
        Ok(seqs)
    }

    /// Makes everything written so far durable; returns the bytes written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        on_engine!(self.flush())
    }

    /// Outbox rows at or above this sequence number are not durable yet: they must not be sent
    /// (`u64::MAX` when everything written is durable).
    pub fn durable_below(&self) -> u64 {
        match &*self.backend {
            Backend::Sled(engine) => engine.durable_below(),
            Backend::Postgres(engine) => engine.durable_below(),
        }
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Decodes a JSON record; `what` names it in the error.
fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// Encodes a record as JSON.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail: they hold no maps with non-string keys.
    serde_json::to_vec(value).unwrap_or_default()
}
