//! Held deliveries: what a rule matched while one of its `mute_during` intervals was on (or
//! none of its `active_during`), kept rendered, in detection order, outside the outbox, so that
//! they block nothing else on their sink. A page's commit holds them ([`super::Commit::held`]); a
//! release moves them into the outbox ([`super::Commit::unhold`] with [`super::Commit::deliveries`]) in one
//! transaction: never dropped, never queued twice. `crate::quiet` decides when.

use serde::{Deserialize, Serialize};

use super::{on_engine, Backend, Delivery, Engine, Store, StoreError};

/// One held delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The delivery as it will be queued (same id, same payload).
    pub delivery: Delivery,
    /// What a summary shows for it: the event's headline ("Devin needs your input").
    #[serde(default)]
    pub headline: Option<String>,
    /// The link a summary shows: the pull request of a pull-request event, else the session.
    #[serde(default)]
    pub link: Option<String>,
    /// When it was held (Unix milliseconds).
    pub held_at_ms: u64,
}

/// A held record as read: an unreadable one is logged and left where it is (never deleted:
/// `store import` still refuses it, naming it), so that it blocks no other release.
pub(super) fn readable(seq: u64, decoded: Result<Held, StoreError>) -> Option<Held> {
    match decoded {
        Ok(held) => Some(held),
        Err(e) => {
            tracing::error!(held = seq, error = %e, "an unreadable held delivery is left in the store; the others are released");
            None
        }
    }
}

impl Store {
    /// Every held delivery, in detection order, with its number (for [`super::Commit::unhold`]).
    pub async fn held(&self) -> Result<Vec<(u64, Held)>, StoreError> {
        on_engine!(self.held())
    }
}
