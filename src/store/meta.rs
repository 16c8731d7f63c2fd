//! Marks and meta: small named values (the baseline done, the incremental high-water mark, the
//! listing's scope, the last full listing), and the sinks paused because their endpoint is gone.

use serde::{Deserialize, Serialize};

use super::{now_ms, on_engine, Backend, Engine, Store, StoreError};

/// Meta key: set once the first full listing has been recorded.
pub const META_BASELINE: &str = "baseline";
/// Meta key: the highest `updated_at` of the last complete listing (i64, big-endian).
pub const META_HIGH_WATER: &str = "high_water";
/// Meta key: a fingerprint of the listing's endpoint and filters (u64, big-endian).
pub const META_SCOPE: &str = "scope";
/// Meta key: when the last full listing completed (Unix ms, u64, big-endian).
pub const META_LAST_FULL: &str = "last_full_sync";

/// Why and since when a sink is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paused {
    pub reason: String,
    pub since_ms: u64,
}

impl Store {
    /// A meta value.
    pub async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on_engine!(self.meta(name))
    }

    /// A meta value holding a big-endian 64-bit number.
    pub async fn meta_u64(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta(name)
            .await?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// Whether the baseline listing has been recorded.
    pub async fn baseline_done(&self) -> Result<bool, StoreError> {
        Ok(self.meta(META_BASELINE).await?.is_some())
    }

    /// Pauses a sink: its deliveries stay queued, unsent, until it is resumed.
    pub async fn pause_sink(&self, sink: &str, reason: &str) -> Result<(), StoreError> {
        let paused = Paused {
            reason: reason.to_owned(),
            since_ms: now_ms(),
        };
        on_engine!(self.pause_sink(sink, &paused))
    }

    /// Resumes a paused sink; false when it was not paused.
    pub async fn resume_sink(&self, sink: &str) -> Result<bool, StoreError> {
        on_engine!(self.resume_sink(sink))
    }

    /// Every paused sink, with why.
    pub async fn paused_sinks(&self) -> Result<Vec<(String, Paused)>, StoreError> {
        on_engine!(self.paused_sinks())
    }
}
