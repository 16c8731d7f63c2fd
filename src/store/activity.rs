//! The activity history digests summarise ([`crate::digest::Activity`]): written by the
//! poller in each page's [`Commit`](super::Commit), with the snapshots it comes from (a crash
//! never loses or doubles a fact), kept `store.history_retention` and pruned in small steps
//! ([`Store::prune_activity`], at most [`PRUNE_BATCH`] records a step, so a prune never holds
//! the store for long). A digest's last period end is a meta value ([`digest_mark`]), written
//! in the same commit as the digest's deliveries.
//!
//! `acus` records are not appended: each engine keeps one per session and hour
//! ([`crate::digest::acus_bucket`], stamped with the hour's end) and a commit adds its ACUs to
//! it inside its transaction, so the history grows with sessions x hours, not with polls.

use super::{on_engine, Backend, Engine, Store, StoreError};
use crate::digest::Activity;

/// The most records one prune step deletes.
pub const PRUNE_BATCH: usize = 500;

/// The meta name of a digest's last period end (Unix ms, u64 big-endian).
pub fn digest_mark(name: &str) -> String {
    format!("digest/{name}")
}

impl Store {
    /// The records seen in `(start_ms, end_ms]`, oldest first. An unreadable record is logged
    /// and skipped.
    pub async fn activity(&self, start_ms: u64, end_ms: u64) -> Result<Vec<Activity>, StoreError> {
        if end_ms <= start_ms {
            return Ok(Vec::new());
        }
        on_engine!(self.activity(start_ms, end_ms))
    }

    /// Deletes up to `limit` of the oldest records seen before `before_ms`; returns how many
    /// it deleted (fewer than `limit`: nothing older is left).
    pub async fn prune_activity(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        on_engine!(self.prune_activity(before_ms, limit))
    }

    /// The end of the last period a digest sent (or when it was first seen); `None`: never
    /// seen.
    pub async fn digest_mark(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.meta_u64(&digest_mark(name)).await
    }
}
