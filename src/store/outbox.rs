//! The outbox (queued deliveries, keyed by a sequence number in detection order) and the dead
//! letters (deliveries given up, kept with why until an admin retries or purges them).

use serde::{Deserialize, Serialize};

use super::{on_engine, Backend, Engine, Store, StoreError};

/// One queued send: a rendered payload for one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_...`: the `webhook-id`, stable across retries and restarts.
    pub id: String,
    pub sink: String,
    pub rule: String,
    pub session_id: String,
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

impl Store {
    /// Every queued delivery, in detection order. An unreadable row is set aside (quarantined
    /// and logged) so that it cannot stop the others.
    pub async fn outbox(&self) -> Result<Vec<(u64, Delivery)>, StoreError> {
        on_engine!(self.outbox())
    }

    /// How many deliveries are queued.
    pub async fn outbox_len(&self) -> Result<usize, StoreError> {
        on_engine!(self.outbox_len())
    }

    /// Rewrites a queued delivery (after a failed attempt); one no longer queued (an admin may
    /// have purged it meanwhile) is not resurrected.
    pub async fn update_delivery(&self, seq: u64, delivery: &Delivery) -> Result<(), StoreError> {
        on_engine!(self.update_delivery(seq, delivery))
    }

    /// Removes a delivered delivery.
    pub async fn remove_delivery(&self, seq: u64) -> Result<(), StoreError> {
        on_engine!(self.remove_delivery(seq))
    }

    /// Moves a queued delivery to the dead letters, at once.
    pub async fn bury(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError> {
        on_engine!(self.bury(seq, letter))
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
    /// with fresh attempts.
    pub async fn requeue(&self, seq: u64, delivery: &Delivery) -> Result<(), StoreError> {
        let fresh = Delivery {
            attempts: 0,
            next_attempt_ms: 0,
            ..delivery.clone()
        };
        on_engine!(self.requeue(seq, &fresh))
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
