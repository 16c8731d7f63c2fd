//! `[store]`: where devin-notify keeps its state: an embedded sled database (the default), or
//! a PostgreSQL schema that several processes share (one leads, the others stand by).

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{duration, lenient_string, write_duration, Problem};
use crate::secret::Secret;

use super::devin::secret_opt;

/// `[store]`: where devin-notify keeps its state.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The storage engine.
    pub backend: StoreBackend,
    /// sled: the directory, created when missing.
    pub path: PathBuf,
    /// What the first run does with the sessions it finds.
    pub baseline: Baseline,
    /// sled: the page cache, in bytes.
    #[schemars(range(min = 1048576))]
    pub cache_capacity: u64,
    /// postgres: `postgres://user:password@host:5432/database` (a secret: it may hold the
    /// password).
    #[serde(deserialize_with = "secret_opt")]
    #[schemars(with = "Secret")]
    pub url: Option<Secret>,
    /// postgres: the schema, created when missing.
    #[serde(deserialize_with = "lenient_string")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub schema: String,
    /// postgres: how long a leader that stopped answering keeps the role.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub lease: Duration,
    /// How long the activity history that digests summarise is kept (pruned in small steps).
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub history_retention: Duration,
}

/// `store.history_retention`'s default: 35 days.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(35 * 24 * 3600);

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Sled,
            path: PathBuf::from("data/devin-notify"),
            baseline: Baseline::Silent,
            cache_capacity: 16 * 1024 * 1024,
            url: None,
            schema: "devin_notify".into(),
            lease: Duration::from_secs(15),
            history_retention: DEFAULT_HISTORY_RETENTION,
        }
    }
}

/// `store.backend`: the storage engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(transform = crate::de::schema::or_variable)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// An embedded database in `store.path`: one process.
    #[default]
    Sled,
    /// A PostgreSQL schema: several processes, one leader.
    Postgres,
}

/// `store.baseline`: what the first run does with the sessions it finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(transform = crate::de::schema::or_variable)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// Record the sessions that exist, send nothing.
    #[default]
    Silent,
    /// Announce every existing session with `session.created`.
    Notify,
}

impl StoreConfig {
    /// Checks `[store]`.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.cache_capacity < 1024 * 1024 {
            p.push(Problem::new(
                "store.cache_capacity",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        match (self.backend, &self.url) {
            (StoreBackend::Postgres, None) => p.push(Problem::new(
                "store.url",
                "is required by backend = \"postgres\" (postgres://user:password@host:5432/database)",
            )),
            (StoreBackend::Postgres, Some(url)) => {
                let url = url.expose();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    // The value may be a password-bearing key=value string: not echoed.
                    p.push(Problem::new(
                        "store.url",
                        "is not a postgres:// URL (postgres://user:password@host:5432/database)",
                    ));
                }
            }
            (StoreBackend::Sled, Some(_)) => p.push(Problem::new(
                "store.url",
                "applies to backend = \"postgres\" only",
            )),
            (StoreBackend::Sled, None) => {}
        }
        let s = &self.schema;
        let identifier = s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !identifier {
            p.push(Problem::new(
                "store.schema",
                format!("`{s}` is not a schema name (lowercase letters, digits and _, at most 63)"),
            ));
        }
        if self.lease < Duration::from_secs(1) {
            p.push(Problem::new("store.lease", "must be at least 1s"));
        }
        if self.history_retention < Duration::from_secs(60) {
            p.push(Problem::new(
                "store.history_retention",
                "must be at least 1m (digests summarise what it keeps)",
            ));
        }
    }
}
