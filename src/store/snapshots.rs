//! Snapshots (each session as last listed), once-per-subject records, and the Devin messages
//! read for waiting events; [`Commit`], what one page changes at once.
//!
//! A snapshot is the item's JSON text exactly as the API sent it: an unchanged session is
//! recognised by comparing those bytes with the listed ones (an exact fingerprint), without
//! rewriting it. Once-per-subject events ([`crate::event::EventType::once_per_subject`]) are
//! remembered with the pull request's last known state (empty for other events), so that a
//! subject that vanishes from a listing and comes back is not announced twice. A waiting
//! event's Devin message is cached until the commit that records the event, so a retried poll
//! reads the messages at most once.

use super::history::{DeliveryLogEntry, EventLogEntry};
use super::{
    decode, on_engine, Backend, DeadLetter, Delivery, Engine, Held, Store, StoreError, Waiting,
};
use crate::model::Session;

/// Where a session's snapshot is kept: its creation time, then its id. `created_at` never
/// changes for a session upstream, so the key is stable; a session whose `created_at` did
/// change would be taken as a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotKey {
    pub created_at: i64,
    pub session_id: String,
}

impl SnapshotKey {
    /// The key of a session.
    pub fn of(session: &Session) -> SnapshotKey {
        SnapshotKey {
            created_at: session.created_at,
            session_id: session.session_id.clone(),
        }
    }
}

impl std::fmt::Display for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sessions/{}/{}", self.created_at, self.session_id)
    }
}

/// What one page changes, written at once.
#[derive(Debug, Default)]
pub struct Commit {
    /// Session id -> its wait (`None`: it no longer waits).
    pub waiting: Vec<(String, Option<Waiting>)>,
    /// The new snapshots (each item's JSON text).
    pub snapshots: Vec<(SnapshotKey, Vec<u8>)>,
    pub deliveries: Vec<Delivery>,
    pub dead: Vec<DeadLetter>,
    pub meta: Vec<(&'static str, Vec<u8>)>,
    /// Once-per-subject events detected, with what the store keeps for each.
    pub announced: Vec<(String, String)>,
    /// Event ids whose cached Devin message is no longer needed (their event is recorded).
    pub uncache: Vec<String>,
    /// The events detected, for the event log.
    pub events: Vec<EventLogEntry>,
    /// Delivery log entries of outcomes decided at detection (the dead letters of payloads
    /// that could not be rendered).
    pub logged: Vec<DeliveryLogEntry>,
    /// The activity history these changes add, for digests ([`super::activity`]).
    pub activity: Vec<crate::digest::Activity>,
    /// Named values of the meta tree or table with names made at run time (a digest's last
    /// period end, written with the digest's deliveries).
    pub marks: Vec<(String, Vec<u8>)>,
    /// Deliveries of muted rules, held instead of queued ([`super::held`]).
    pub held: Vec<Held>,
    /// Held deliveries (by number) released by this commit: they leave the held set as
    /// `deliveries` enter the outbox; the commit fails, writing nothing, if one is no longer
    /// held.
    pub unhold: Vec<u64>,
}

impl Commit {
    /// Keeps a delivery that could not be rendered in the dead letters, with its delivery log
    /// entry. Its body is empty: `dead-letters retry` renders `event` again with the templates
    /// then in force (never sends raw data to a chat).
    pub fn bury_unrendered(
        &mut self,
        delivery: Delivery,
        reason: String,
        at_ms: u64,
        event: serde_json::Value,
    ) {
        self.logged.push(DeliveryLogEntry::new(
            &delivery,
            super::Outcome::Dead,
            None,
            Some(reason.as_str()),
        ));
        self.dead.push(DeadLetter {
            delivery,
            reason,
            status: None,
            response_body: String::new(),
            failed_at_ms: at_ms,
            event: Some(event),
        });
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
            && self.deliveries.is_empty()
            && self.dead.is_empty()
            && self.meta.is_empty()
            && self.waiting.is_empty()
            && self.announced.is_empty()
            && self.uncache.is_empty()
            && self.events.is_empty()
            && self.logged.is_empty()
            && self.activity.is_empty()
            && self.marks.is_empty()
            && self.held.is_empty()
            && self.unhold.is_empty()
    }

    /// True when the commit holds snapshots only (a baseline page, a page of quiet changes).
    pub fn only_snapshots(&self) -> bool {
        self.activity.is_empty() && self.only_snapshots_and_history()
    }

    /// True when the commit holds snapshots and activity history only (a page of sessions
    /// that consumed ACUs and changed nothing else that matters).
    pub fn only_snapshots_and_history(&self) -> bool {
        self.deliveries.is_empty()
            && self.dead.is_empty()
            && self.meta.is_empty()
            && self.waiting.is_empty()
            && self.announced.is_empty()
            && self.uncache.is_empty()
            && self.events.is_empty()
            && self.logged.is_empty()
            && self.marks.is_empty()
            && self.held.is_empty()
            && self.unhold.is_empty()
    }
}

impl Store {
    /// The stored bytes of each session, in the order of `keys` (`None`: never seen).
    pub async fn snapshots(
        &self,
        keys: &[SnapshotKey],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        on_engine!(self.snapshots(keys))
    }

    /// The snapshot of a session, decoded.
    pub async fn snapshot(&self, key: &SnapshotKey) -> Result<Option<Session>, StoreError> {
        let found = self.snapshots(std::slice::from_ref(key)).await?;
        match found.into_iter().next().flatten() {
            Some(bytes) => decode(&key.to_string(), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// What is kept for each once-per-subject event id, in the order of `ids` (`None`: never
    /// announced).
    pub async fn announced(&self, ids: &[&str]) -> Result<Vec<Option<String>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        on_engine!(self.announced(ids))
    }

    /// The message cached for an event: `None` when never read, `Some(None)` when the session
    /// had no Devin message.
    pub async fn cached_message(
        &self,
        event_id: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        on_engine!(self.cached_message(event_id))
    }

    /// Caches the message read for an event.
    pub async fn cache_message(
        &self,
        event_id: &str,
        message: &Option<String>,
    ) -> Result<(), StoreError> {
        on_engine!(self.cache_message(event_id, message))
    }
}
