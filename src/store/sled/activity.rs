//! The sled engine's activity history: tree `activity`, keyed by the time the record was seen
//! (Unix ms, big-endian) then a fresh id (big-endian), so that sled's order is time order and
//! a period is one range.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::{sled_err, SledEngine};
use crate::digest::Activity;
use crate::store::{decode, encode, StoreError};

fn activity_key(at_ms: u64, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&at_ms.to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Appends a record under a fresh id.
pub(super) fn append(
    tree: &TransactionalTree,
    record: &Activity,
) -> Result<(), ConflictableTransactionError<()>> {
    let id = tree.generate_id()?;
    tree.insert(&activity_key(record.at_ms, id), encode(record))?;
    Ok(())
}

impl SledEngine {
    pub(super) fn read_activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Activity>, StoreError> {
        let lo = activity_key(start_ms.saturating_add(1), 0);
        let hi = activity_key(end_ms, u64::MAX);
        let mut out = Vec::new();
        for item in self.activity.range(lo..=hi) {
            let (_, v) = item.map_err(sled_err("activity"))?;
            match decode::<Activity>("activity", &v) {
                Ok(record) => out.push(record),
                Err(e) => tracing::warn!(error = %e, "unreadable activity record skipped"),
            }
        }
        Ok(out)
    }

    pub(super) fn prune(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in self
            .activity
            .range(..activity_key(before_ms, 0))
            .keys()
            .take(limit)
        {
            batch.remove(k.map_err(sled_err("activity"))?);
            n += 1;
        }
        if n > 0 {
            self.activity
                .apply_batch(batch)
                .map_err(sled_err("activity"))?;
        }
        Ok(n)
    }
}
