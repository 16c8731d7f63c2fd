//! The delivery log and the event log: what happened recently, for the admin console and the
//! `deliveries` and `events` commands.
//!
//! - The delivery log has an entry per outcome of a delivery: delivered, a failed attempt that
//!   will be retried, dead-lettered (a permanent failure, out of attempts, or a payload that
//!   could not be rendered), and put back in the outbox by an admin. Each entry is written in
//!   the same transaction as the outcome itself (the outbox row removed, rescheduled, buried or
//!   requeued), so the log never tells of an outcome the store did not record, nor misses one.
//! - The event log has an entry per event the poller detected, with the (rule, sink) pairs it
//!   was routed to (none: unrouted), written in the page's [`Commit`](super::Commit).
//!
//! Both keep the last `server.history` entries ([`Store::keep_history`]): reads never show
//! more, and older entries are trimmed every so often (a tenth of the history's writes, at most
//! [`MAX_SLACK`]), so the store holds at most that many more.
//!
//! Entry ids grow with every entry (newest first is highest id first); `before_id` pages
//! further back.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::{now_ms, on_engine, Backend, Delivery, Engine, SnapshotKey, Store, StoreError};
use crate::model::Session;

pub use crate::config::{DEFAULT_HISTORY, MAX_HISTORY};
/// The most entries written between two trims.
pub const MAX_SLACK: usize = 1000;
/// The longest excerpt of an error an entry keeps, in characters.
pub const EXCERPT_CHARS: usize = 300;

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The receiver answered 2xx: out of the outbox.
    Delivered,
    /// An attempt failed; the delivery is retried later.
    Retry,
    /// Given up: in the dead letters.
    Dead,
    /// Put back in the outbox from the dead letters by an admin.
    Requeued,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 4] = [
        Outcome::Delivered,
        Outcome::Retry,
        Outcome::Dead,
        Outcome::Requeued,
    ];

    /// The outcome's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Dead => "dead",
            Outcome::Requeued => "requeued",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Outcome, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                format!("`{text}` is not an outcome ({})", names.join(", "))
            })
    }
}

/// One entry of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLogEntry {
    /// Grows with every entry (given by the store when written).
    pub id: u64,
    /// When the outcome was recorded (Unix ms).
    pub at_ms: u64,
    /// `msg_...`: the delivery's `webhook-id`.
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub session_id: String,
    #[serde(default)]
    pub session_title: Option<String>,
    pub sink: String,
    pub rule: String,
    pub outcome: Outcome,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Attempts made so far.
    pub attempts: u32,
    /// What went wrong, on one line, at most [`EXCERPT_CHARS`] characters, URLs redacted.
    pub excerpt: Option<String>,
    /// From the event's detection to this outcome, in ms.
    pub latency_ms: u64,
}

impl DeliveryLogEntry {
    /// The entry of an outcome of `delivery`, now (its id is given when written).
    pub fn new(
        delivery: &Delivery,
        outcome: Outcome,
        status: Option<u16>,
        excerpt: Option<&str>,
    ) -> DeliveryLogEntry {
        let at_ms = now_ms();
        DeliveryLogEntry {
            id: 0,
            at_ms,
            delivery_id: delivery.id.clone(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            session_id: delivery.session_id.clone(),
            session_title: delivery.session_title.clone(),
            sink: delivery.sink.clone(),
            rule: delivery.rule.clone(),
            outcome,
            status,
            attempts: delivery.attempts,
            excerpt: excerpt.map(|text| crate::redact::excerpt(text, EXCERPT_CHARS)),
            latency_ms: at_ms.saturating_sub(delivery.detected_at_ms),
        }
    }
}

/// Which delivery log entries to read: newest first, those matching every filter given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub sink: Option<String>,
    pub outcome: Option<Outcome>,
    pub session_id: Option<String>,
    /// At most this many (capped at the history kept).
    pub limit: usize,
    /// Only entries older than this one (paging).
    pub before_id: Option<u64>,
}

impl DeliveryFilter {
    /// Whether an entry passes the filters (the limit aside).
    pub fn matches(&self, entry: &DeliveryLogEntry) -> bool {
        self.sink.as_ref().is_none_or(|s| *s == entry.sink)
            && self.outcome.is_none_or(|o| o == entry.outcome)
            && self
                .session_id
                .as_ref()
                .is_none_or(|s| *s == entry.session_id)
            && self.before_id.is_none_or(|b| entry.id < b)
    }
}

/// A (rule, sink) an event was routed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRoute {
    pub rule: String,
    pub sink: String,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLogEntry {
    /// Grows with every entry (given by the store when written).
    pub id: u64,
    pub event_id: String,
    pub event_type: String,
    pub session_id: String,
    #[serde(default)]
    pub session_title: Option<String>,
    /// The session's `created_at`: with its id, where its snapshot is (absent in entries
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_created_at: Option<i64>,
    /// When the poller detected it (Unix ms).
    pub detected_at_ms: u64,
    /// Where it went; empty: unrouted (no rule matched it).
    pub routes: Vec<EventRoute>,
}

impl EventLogEntry {
    /// Whether no rule sent the event anywhere.
    pub fn unrouted(&self) -> bool {
        self.routes.is_empty()
    }
}

/// One of the two logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    Deliveries,
    Events,
}

impl Log {
    /// Its name in messages (the sled tree's and the PostgreSQL table's).
    pub fn name(self) -> &'static str {
        match self {
            Log::Deliveries => "delivery_log",
            Log::Events => "event_log",
        }
    }
}

/// How many entries the logs keep, and how many this process wrote (to trim every so often).
#[derive(Debug)]
pub(super) struct Keeping {
    history: AtomicUsize,
    written: [AtomicU64; 2],
}

impl Default for Keeping {
    fn default() -> Keeping {
        Keeping {
            history: AtomicUsize::new(DEFAULT_HISTORY),
            written: Default::default(),
        }
    }
}

/// Entries written between two trims of a log that keeps `history`.
fn slack(history: usize) -> u64 {
    (history / 10).clamp(1, MAX_SLACK) as u64
}

impl Store {
    /// Keeps the last `history` entries of each log (`server.history`, between 1 and
    /// [`MAX_HISTORY`]).
    pub fn keep_history(&self, history: usize) {
        self.keeping
            .history
            .store(history.clamp(1, MAX_HISTORY), Ordering::Relaxed);
    }

    /// How many entries of each log are kept.
    pub fn history(&self) -> usize {
        self.keeping.history.load(Ordering::Relaxed)
    }

    /// The delivery log, newest first, filtered.
    pub async fn recent_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        let history = self.history();
        let filter = DeliveryFilter {
            limit: filter.limit.min(history),
            ..filter.clone()
        };
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        on_engine!(self.recent_deliveries(&filter, history))
    }

    /// The event log, newest first: up to `limit` entries older than `before_id`.
    pub async fn recent_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        let history = self.history();
        let limit = limit.min(history);
        if limit == 0 {
            return Ok(Vec::new());
        }
        on_engine!(self.recent_events(limit, before_id, history))
    }

    /// The sessions of the event log, newest event first, each once: (the newest entry of
    /// each, in the log's order), at most `limit`. Entries that are not about a session (a
    /// digest, an account signal) or that do not say where its snapshot is are left out.
    pub async fn recent_sessions(&self, limit: usize) -> Result<Vec<EventLogEntry>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let mut sessions = Vec::new();
        if limit == 0 {
            return Ok(sessions);
        }
        self.scan_events(|entry| {
            if entry.session_created_at.is_some() && seen.insert(entry.session_id.clone()) {
                sessions.push(entry);
            }
            sessions.len() < limit
        })
        .await?;
        Ok(sessions)
    }

    /// A session of the event log as its snapshot has it now (`None`: not in the log, or
    /// logged before the log kept where its snapshot is).
    pub async fn recent_session(&self, session_id: &str) -> Result<Option<Session>, StoreError> {
        let mut created_at = None;
        self.scan_events(|entry| {
            if entry.session_id == session_id {
                created_at = entry.session_created_at;
            }
            created_at.is_none()
        })
        .await?;
        let Some(created_at) = created_at else {
            return Ok(None);
        };
        self.snapshot(&SnapshotKey {
            created_at,
            session_id: session_id.to_owned(),
        })
        .await
    }

    /// Hands the event log to `keep_going`, newest first, a page at a time, until it answers
    /// false or the log ends.
    async fn scan_events(
        &self,
        mut keep_going: impl FnMut(EventLogEntry) -> bool,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 200;
        let mut before = None;
        loop {
            let page = self.recent_events(PAGE, before).await?;
            let full = page.len() == PAGE;
            for entry in page {
                before = Some(entry.id);
                if !keep_going(entry) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Notes `n` entries written to `log`, and trims it when due: at this process's first write
    /// (what earlier runs left, under a history since lowered), then every [`slack`] entries. A
    /// trim that fails is logged; the next one catches up.
    pub(super) async fn logged(&self, log: Log, n: usize) {
        if n == 0 {
            return;
        }
        let history = self.history();
        let every = slack(history);
        let before = self.keeping.written[log as usize].fetch_add(n as u64, Ordering::Relaxed);
        if before != 0 && before / every == (before + n as u64) / every {
            return;
        }
        if let Err(e) = on_engine!(self.trim_log(log, history)) {
            tracing::warn!(log = log.name(), error = %e, "cannot trim the log; retried later");
        }
    }
}
