//! The sled engine's activity history: tree `activity`, keyed by the time the record was seen
//! (Unix ms, big-endian) then a fresh id (big-endian), so that sled's order is time order and
//! a period is one range. An `acus` record is keyed by its bucket (the end of its hour, its
//! `at_ms`), eight 0xFF bytes and the session's id instead: the one record of that session and
//! hour, which each commit reads and adds to ([`crate::digest::acus_bucket`]).

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

/// The key of a session's `acus` record of a bucket: after every appended record of the same
/// millisecond (ids from `generate_id` never reach `u64::MAX`), and before the next one's.
fn acus_key(bucket_ms: u64, session_id: &str) -> Vec<u8> {
    let mut k = activity_key(bucket_ms, u64::MAX).to_vec();
    k.extend_from_slice(session_id.as_bytes());
    k
}

/// Appends a record under a fresh id; an `acus` record is added to its session's record of
/// the same bucket (read in the transaction: a retry adds to what the store holds then).
pub(super) fn append(
    tree: &TransactionalTree,
    record: &Activity,
) -> Result<(), ConflictableTransactionError<()>> {
    if !record.is_bucketed() {
        let id = tree.generate_id()?;
        tree.insert(&activity_key(record.at_ms, id), encode(record))?;
        return Ok(());
    }
    let key = acus_key(record.at_ms, &record.session_id);
    let merged = match tree.get(&key)? {
        Some(bytes) => match decode::<Activity>("activity", &bytes) {
            Ok(mut known) => {
                known.absorb(record);
                known
            }
            // Unreadable: replaced (no log here: the closure may run again). The digest reads
            // have logged it.
            Err(_) => record.clone(),
        },
        None => record.clone(),
    };
    tree.insert(key, encode(&merged))?;
    Ok(())
}

impl SledEngine {
    pub(super) fn read_activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Activity>, StoreError> {
        let lo = activity_key(start_ms.saturating_add(1), 0);
        // Up to the next millisecond's first key: the `acus` keys of `end_ms` are longer than
        // `activity_key(end_ms, u64::MAX)`.
        let range = match end_ms.checked_add(1) {
            Some(next) => self.activity.range(lo..activity_key(next, 0)),
            None => self.activity.range(lo..),
        };
        let mut out = Vec::new();
        for item in range {
            let (_, v) = item.map_err(sled_err("activity"))?;
            match decode::<Activity>("activity", &v) {
                Ok(record) => out.push(record),
                Err(e) => tracing::warn!(error = %e, "unreadable activity record skipped"),
            }
        }
        Ok(out)
    }

    /// Every activity record, for an export: an unreadable one stops it, named.
    pub(super) fn export_activity(&self) -> Result<Vec<Activity>, StoreError> {
        self.activity
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sled_err("activity"))?;
                decode(&format!("activity/{:02x?}", &k[..]), &v)
            })
            .collect()
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
