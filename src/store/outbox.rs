//! The outbox (queued deliveries, keyed by a sequence number in detection order) and the dead
//! letters (deliveries given up, kept with why until an admin retries or purges them).

use serde::{Deserialize, Serialize};

use super::history::{DeliveryLogEntry, Log, Outcome};
use super::queue::{QueueIndex, Row};
use super::{on_engine, Backend, Engine, Store, StoreError};

/// One queued send: a rendered payload for one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_...`: the `webhook-id`, stable across retries and restarts.
    pub id: String,
    pub sink: String,
    pub rule: String,
    pub session_id: String,
    /// The session's title when the event was detected (absent in rows of earlier versions).
    #[serde(default)]
    pub session_title: Option<String>,
    pub event_id: String,
    pub event_type: String,
    /// The exact payload, rendered at detection time.
    pub body: String,
    /// When the change was detected (Unix milliseconds).
    pub detected_at_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (Unix milliseconds); 0 means now.
    pub next_attempt_ms: u64,
    /// The last failure, for `sinks list` and logs.
    #[serde(default)]
    pub last_error: Option<String>,
    /// For a Slack app sink with `to = "creator"`: the Devin user who started the session
    /// (`user_id`), whose direct messages it goes to. Absent for every other delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
}

/// A delivery that will not be retried without an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub delivery: Delivery,
    /// Why it was given up: the last error.
    pub reason: String,
    /// The receiver's last HTTP status, if it answered.
    pub status: Option<u16>,
    /// The first 2 KiB of the receiver's last answer.
    pub response_body: String,
    /// When it was given up (Unix milliseconds).
    pub failed_at_ms: u64,
    /// The event, when the payload could not be rendered (a retry renders it again).
    #[serde(default)]
    pub event: Option<serde_json::Value>,
}

/// What an outcome does to a queued delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Delivered: it leaves the outbox.
    Delivered,
    /// An attempt failed: it stays, rewritten (attempts, next attempt, last error); one no
    /// longer queued (settled meanwhile by another process) is not resurrected.
    Retry(Delivery),
    /// Given up: it moves to the dead letters.
    Dead(DeadLetter),
}

/// The outcome of a queued delivery (sequence number `seq`) and its delivery log entry,
/// written at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub seq: u64,
    pub change: Change,
    pub log: DeliveryLogEntry,
}

impl Store {
    /// Every queued delivery, in detection order. An unreadable row is set aside (quarantined
    /// and logged) so that it cannot stop the others.
    pub async fn outbox(&self) -> Result<Vec<(u64, Delivery)>, StoreError> {
        on_engine!(self.outbox())
    }

    /// How many deliveries are queued.
    pub async fn outbox_len(&self) -> Result<usize, StoreError> {
        if let Some(q) = self.queue.lock().await.as_ref() {
            return Ok(q.len());
        }
        on_engine!(self.outbox_len())
    }

    /// Takes up to `n` deliveries of `sink` that are due at `now`, the oldest queued of each
    /// of its lanes that has nothing in flight, and marks those lanes as sending until the
    /// delivery's outcome is recorded ([`Store::settle`], or [`Store::release`]). Reads only the deliveries it takes.
    pub async fn claim_due(
        &self,
        sink: &str,
        now: u64,
        n: usize,
    ) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let durable_below = self.durable_below();
        let seqs = self
            .with_queue(|q| q.claim_due(sink, now, durable_below, n))
            .await?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let found = match on_engine!(self.deliveries(&seqs)) {
            Ok(found) => found,
            Err(e) => {
                // Nothing was sent: the lanes are free again.
                self.note(|q| seqs.iter().for_each(|seq| q.release(*seq)))
                    .await;
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(seqs.len());
        for (seq, delivery) in seqs.into_iter().zip(found) {
            match delivery {
                Some(d) => out.push((seq, d)),
                // Gone meanwhile (or set aside as unreadable): out of the index too.
                None => self.note(|q| q.remove(seq)).await,
            }
        }
        Ok(out)
    }

    /// Gives a claimed lane back without recording anything (the delivery was not sent).
    pub async fn release(&self, seq: u64) {
        self.note(|q| q.release(seq)).await;
    }

    /// When the next delivery of one of `sinks` falls due (Unix ms), if any is queued.
    pub async fn next_due_ms(&self, sinks: &[&str]) -> Result<Option<u64>, StoreError> {
        let durable_below = self.durable_below();
        self.with_queue(|q| q.next_due(sinks.iter().copied(), durable_below))
            .await
    }

    /// The sinks that have queued deliveries.
    pub async fn queued_sinks(&self) -> Result<Vec<String>, StoreError> {
        self.with_queue(|q| {
            let mut sinks: Vec<String> = q.sinks().map(str::to_owned).collect();
            sinks.sort();
            sinks.dedup();
            sinks
        })
        .await
    }

    /// Reads the outbox's index again from the engine, keeping the lanes being sent: for a
    /// shared store, whose outbox other processes may change (an admin's `dead-letters retry`).
    pub async fn refresh_queue(&self) -> Result<(), StoreError> {
        let mut guard = self.queue.lock().await;
        let rows = on_engine!(self.outbox_rows())?;
        let fresh = match guard.as_ref() {
            Some(q) => q.rebuilt(rows),
            None => QueueIndex::from_rows(rows),
        };
        *guard = Some(fresh);
        Ok(())
    }

    /// Forgets the outbox's index (and so every claim): read again at its next use. For a
    /// delivery loop that starts, when an earlier one of this process may have been aborted
    /// with sends in flight.
    pub async fn reset_queue(&self) {
        *self.queue.lock().await = None;
    }

    /// Runs `f` on the outbox's index, building it from the engine at its first use.
    async fn with_queue<R>(&self, f: impl FnOnce(&mut QueueIndex) -> R) -> Result<R, StoreError> {
        let mut guard = self.queue.lock().await;
        if guard.is_none() {
            // Held while reading: a commit made meanwhile waits, then adds its rows.
            let rows = on_engine!(self.outbox_rows())?;
            *guard = Some(QueueIndex::from_rows(rows));
        }
        Ok(f(guard.get_or_insert_with(QueueIndex::default)))
    }

    /// Applies a change to the index, when it is built (else it is read whole when first used).
    pub(super) async fn note(&self, f: impl FnOnce(&mut QueueIndex)) {
        if let Some(q) = self.queue.lock().await.as_mut() {
            f(q);
        }
    }

    /// Adds queued rows to the index, when it is built.
    pub(super) async fn note_queued(&self, rows: impl IntoIterator<Item = Row>) {
        self.note(|q| rows.into_iter().for_each(|row| q.add(row)))
            .await;
    }

    /// Records outcomes of deliveries, each with its delivery log entry, all at once (one
    /// transaction): under a burst of outcomes the cost of a write is shared.
    pub async fn settle(&self, batch: &[Settle]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        on_engine!(self.settle(batch))?;
        self.note(|q| {
            for s in batch {
                match &s.change {
                    Change::Retry(d) => q.reschedule(s.seq, d.next_attempt_ms),
                    Change::Delivered | Change::Dead(_) => q.remove(s.seq),
                }
            }
        })
        .await;
        self.logged(Log::Deliveries, batch.len()).await;
        Ok(())
    }

    // One outcome at a time, for the store's tests; the delivery loop settles in batches.

    /// Rewrites a queued delivery after a failed attempt, and logs it (`log`), at once; one no
    /// longer queued (another process may have settled it meanwhile) is not resurrected.
    #[cfg(test)]
    pub async fn update_delivery(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        self.settle_one(seq, Change::Retry(delivery.clone()), log)
            .await
    }

    /// Removes a delivered delivery and logs it (`log`), at once.
    #[cfg(test)]
    pub async fn remove_delivery(
        &self,
        seq: u64,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        self.settle_one(seq, Change::Delivered, log).await
    }

    /// Moves a queued delivery to the dead letters and logs it (`log`), at once.
    #[cfg(test)]
    pub async fn bury(
        &self,
        seq: u64,
        letter: &DeadLetter,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        self.settle_one(seq, Change::Dead(letter.clone()), log)
            .await
    }

    #[cfg(test)]
    async fn settle_one(
        &self,
        seq: u64,
        change: Change,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        let settle = Settle {
            seq,
            change,
            log: log.clone(),
        };
        self.settle(std::slice::from_ref(&settle)).await
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        on_engine!(self.dead_letters())
    }

    /// How many dead letters there are.
    pub async fn dead_len(&self) -> Result<usize, StoreError> {
        on_engine!(self.dead_len())
    }

    /// Finds a dead letter by its delivery id (`msg_...`) or its sequence number.
    pub async fn find_dead(&self, id: &str) -> Result<Option<(u64, DeadLetter)>, StoreError> {
        Ok(self
            .dead_letters()
            .await?
            .into_iter()
            .find(|(seq, letter)| letter.delivery.id == id || seq.to_string() == id))
    }

    /// Puts a dead letter's delivery back in the outbox, at its original place in the order,
    /// with fresh attempts, and logs it, at once.
    pub async fn requeue(&self, seq: u64, delivery: &Delivery) -> Result<(), StoreError> {
        let log = DeliveryLogEntry::new(delivery, Outcome::Requeued, None, None);
        let fresh = Delivery {
            attempts: 0,
            next_attempt_ms: 0,
            ..delivery.clone()
        };
        on_engine!(self.requeue(seq, &fresh, &log))?;
        let row = Row {
            seq,
            sink: fresh.sink,
            session_id: fresh.session_id,
            due_ms: 0,
        };
        self.note_queued([row]).await;
        self.logged(Log::Deliveries, 1).await;
        Ok(())
    }

    /// Replaces a dead letter (after a failed re-render).
    pub async fn update_dead(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        on_engine!(self.update_dead(seq, letter))
    }

    /// Deletes a dead letter.
    pub async fn purge_dead(&self, seq: u64) -> Result<(), StoreError> {
        on_engine!(self.purge_dead(seq))
    }
}
