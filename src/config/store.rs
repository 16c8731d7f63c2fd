//! `[store]`: where devin-notify keeps its state.

use std::path::PathBuf;

use serde::Deserialize;

use crate::de::Problem;

/// `[store]`: the sled database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The sled directory, created when missing.
    pub path: PathBuf,
    /// What the first run does with the sessions it finds.
    pub baseline: Baseline,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("data/devin-notify"),
            baseline: Baseline::Silent,
            cache_capacity: 16 * 1024 * 1024,
        }
    }
}

/// `store.baseline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
    }
}
