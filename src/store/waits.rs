//! Waits: the sessions that wait on a person (`waiting_for_user`, `waiting_for_approval`),
//! since when, and the reminders sent for each rule, so that reminders survive restarts.

use serde::{Deserialize, Serialize};

use super::{on_engine, Backend, Engine, SnapshotKey, Store, StoreError};

/// A session that waits on a person: since when, and the reminders sent per rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// When the wait began (Unix ms).
    pub since_ms: i64,
    /// The session's `created_at`: with its id, where its snapshot is ([`SnapshotKey`]).
    #[serde(default)]
    pub created_at: i64,
    pub status_detail: Option<String>,
    /// Rule name -> the number of the last reminder sent for this wait.
    #[serde(default)]
    pub sent: std::collections::BTreeMap<String, u32>,
}

impl Waiting {
    /// The key of the waiting session's snapshot.
    pub fn snapshot_key(&self, session_id: &str) -> SnapshotKey {
        SnapshotKey {
            created_at: self.created_at,
            session_id: session_id.to_owned(),
        }
    }
}

impl Store {
    /// Every session that waits on a person. An unreadable record is logged and dropped (the
    /// wait is recorded again when the session next changes).
    pub async fn waiting(&self) -> Result<Vec<(String, Waiting)>, StoreError> {
        on_engine!(self.waiting())
    }
}
