//! The sled engine's outcomes of deliveries, written with their delivery log entries in one
//! transaction, and its two logs: trees `delivery_log` and `event_log`, keyed by the entry's id
//! (u64, big-endian: sled's order is the order written), holding the entry's JSON.

use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};

use super::{key, sled_err, tx_err, SledEngine};
use crate::store::history::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Log};
use crate::store::{decode, encode, Change, Delivery, Settle, StoreError};

type TxResult<T> = Result<T, ConflictableTransactionError<()>>;

/// Appends a delivery log entry under a fresh id.
pub(super) fn append(tree: &TransactionalTree, entry: &DeliveryLogEntry) -> TxResult<()> {
    let id = tree.generate_id()?;
    let entry = DeliveryLogEntry {
        id,
        ..entry.clone()
    };
    tree.insert(&key(id), encode(&entry))?;
    Ok(())
}

/// Appends an event log entry under a fresh id.
pub(super) fn append_event(tree: &TransactionalTree, entry: &EventLogEntry) -> TxResult<()> {
    let id = tree.generate_id()?;
    let entry = EventLogEntry {
        id,
        ..entry.clone()
    };
    tree.insert(&key(id), encode(&entry))?;
    Ok(())
}

impl SledEngine {
    fn log_tree(&self, log: Log) -> &sled::Tree {
        match log {
            Log::Deliveries => &self.delivery_log,
            Log::Events => &self.event_log,
        }
    }

    /// Records outcomes with their log entries in one transaction across the outbox, the dead
    /// letters and the delivery log.
    pub(super) fn settle_logged(&self, batch: &[Settle]) -> Result<(), StoreError> {
        let encoded: Vec<Option<Vec<u8>>> = batch
            .iter()
            .map(|s| match &s.change {
                Change::Delivered => None,
                Change::Retry(delivery) => Some(encode(delivery)),
                Change::Dead(letter) => Some(encode(letter)),
            })
            .collect();
        let trees = (&self.outbox, &self.dead, &self.delivery_log);
        let result = trees.transaction(|(outbox, dead, logs)| {
            for (s, value) in batch.iter().zip(&encoded) {
                let k = key(s.seq);
                match (&s.change, value) {
                    (Change::Retry(_), Some(value)) => {
                        // A delivery settled meanwhile (by another process) is not resurrected.
                        if outbox.get(k)?.is_some() {
                            outbox.insert(&k, value.as_slice())?;
                        }
                    }
                    (Change::Dead(_), Some(value)) => {
                        outbox.remove(&k)?;
                        dead.insert(&k, value.as_slice())?;
                    }
                    _ => {
                        outbox.remove(&k)?;
                    }
                }
                append(logs, &s.log)?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        let first = batch.first().map_or(0, |s| s.seq);
        result.map_err(tx_err(format!("outbox/{first}")))
    }

    pub(super) fn requeue_logged(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        let delivery = encode(delivery);
        let trees = (&self.outbox, &self.dead, &self.delivery_log);
        let result = trees.transaction(|(outbox, dead, logs)| {
            dead.remove(&key(seq))?;
            outbox.insert(&key(seq), delivery.as_slice())?;
            append(logs, log)
        });
        result.map_err(tx_err(format!("dead/{seq}")))
    }

    /// The newest `history` entries of a log, newest first, decoded; those `keep` accepts, up
    /// to `limit`. An unreadable entry is logged and skipped.
    fn newest<T: for<'de> serde::Deserialize<'de>>(
        &self,
        log: Log,
        history: usize,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.log_tree(log).iter().rev().take(history) {
            let (k, v) = item.map_err(sled_err(log.name()))?;
            let what = format!("{}/{}", log.name(), super::seq_of(&k).unwrap_or(0));
            match decode::<T>(&what, &v) {
                Ok(entry) if keep(&entry) => out.push(entry),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable log entry skipped"),
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub(super) fn read_deliveries(
        &self,
        filter: &DeliveryFilter,
        history: usize,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        self.newest(Log::Deliveries, history, filter.limit, |e| {
            filter.matches(e)
        })
    }

    pub(super) fn read_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
        history: usize,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        self.newest(Log::Events, history, limit, |e: &EventLogEntry| {
            before_id.is_none_or(|b| e.id < b)
        })
    }

    /// Deletes all but the newest `keep` entries of a log, in one batch (measured faster than
    /// one removal at a time).
    pub(super) fn trim(&self, log: Log, keep: usize) -> Result<(), StoreError> {
        let tree = self.log_tree(log);
        let Some(oldest_kept) = tree.iter().keys().rev().nth(keep.saturating_sub(1)) else {
            return Ok(());
        };
        let oldest_kept = oldest_kept.map_err(sled_err(log.name()))?;
        let mut batch = sled::Batch::default();
        for k in tree.range(..oldest_kept).keys() {
            batch.remove(k.map_err(sled_err(log.name()))?);
        }
        tree.apply_batch(batch).map_err(sled_err(log.name()))
    }
}
