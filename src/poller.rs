//! The poller: lists every page, diffs it against the snapshot, routes and renders the events,
//! and commits each page (snapshots + deliveries) in one transaction before anything is sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::app::Active;
use crate::config::Baseline;
use crate::devin::{ApiError, Client, ListBounds, Page, Session};
use crate::diff::diff;
use crate::event::{stable_id, Event};
use crate::rules::routes;
use crate::store::{now_ms, Commit, DeadLetter, Delivery, Store, StoreError, META_BASELINE};

/// Why a poll stopped early. Pages committed before the failure stay committed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PollError {
    /// How long the API asked us to wait before the next try.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Api(e) => e.retry_after(),
            PollError::Store(_) => None,
        }
    }
}

/// What one poll saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollStats {
    pub pages: usize,
    pub sessions: usize,
    /// Sessions whose snapshot was rewritten.
    pub changed: usize,
    pub events: usize,
    pub deliveries: usize,
    /// Whether this poll recorded the baseline.
    pub baseline: bool,
    pub duration: Duration,
}

/// How a page is turned into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normal operation: every difference is an event.
    Diff,
    /// The first listing: record; with `Baseline::Notify`, announce sessions not yet recorded.
    Baseline(Baseline),
}

/// Diffs one page against the store and builds what to commit. Sessions whose stored form is
/// byte-for-byte the new one are skipped without a write.
pub fn process_page(
    store: &Store,
    active: &Active,
    page: &Page,
    mode: Mode,
) -> Result<(Commit, usize), StoreError> {
    let mut commit = Commit::default();
    let mut events_seen = 0;
    // A session listed twice in one page diffs against its first appearance.
    let mut pending: HashMap<&str, usize> = HashMap::new();
    let detected_at_ms = now_ms();
    for session in &page.items {
        let new_bytes = serde_json::to_vec(session).map_err(|e| StoreError::Corrupt {
            what: format!("snapshots/{}", session.session_id),
            message: e.to_string(),
        })?;
        let old_bytes = match pending.get(session.session_id.as_str()) {
            Some(&i) => Some(commit.snapshots[i].1.clone()),
            None => store.snapshot_raw(&session.session_id)?.map(|v| v.to_vec()),
        };
        if old_bytes.as_deref() == Some(new_bytes.as_slice()) {
            continue;
        }
        let old: Option<Session> = match &old_bytes {
            None => None,
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    // Replace an unreadable snapshot without inventing events from it.
                    tracing::warn!(session_id = %session.session_id, error = %e, "unreadable snapshot replaced; no events for this change");
                    push_snapshot(&mut commit, &mut pending, session, new_bytes);
                    continue;
                }
            },
        };
        let events = match mode {
            Mode::Diff => diff(old.as_ref(), session),
            Mode::Baseline(Baseline::Notify) if old.is_none() => diff(None, session),
            Mode::Baseline(_) => Vec::new(),
        };
        events_seen += events.len();
        for event in &events {
            route_event(active, event, detected_at_ms, &mut commit);
        }
        push_snapshot(&mut commit, &mut pending, session, new_bytes);
    }
    Ok((commit, events_seen))
}

fn push_snapshot<'a>(
    commit: &mut Commit,
    pending: &mut HashMap<&'a str, usize>,
    session: &'a Session,
    bytes: Vec<u8>,
) {
    match pending.get(session.session_id.as_str()) {
        Some(&i) => commit.snapshots[i].1 = bytes,
        None => {
            pending.insert(&session.session_id, commit.snapshots.len());
            commit.snapshots.push((session.session_id.clone(), bytes));
        }
    }
}

/// Renders an event for every (rule, sink) it matches: a delivery each, or a dead letter
/// carrying the event when its template fails (so nothing is lost; a retry renders again).
pub fn route_event(active: &Active, event: &Event, detected_at_ms: u64, commit: &mut Commit) {
    for route in routes(&active.config.rules, event) {
        let Some(sink) = active.config.sinks.get(route.sink) else {
            continue;
        };
        let delivery = |body: String| Delivery {
            id: stable_id("msg_", &[&event.id, &route.rule.name, route.sink]),
            sink: route.sink.to_owned(),
            rule: route.rule.name.clone(),
            session_id: event.session.session_id.clone(),
            event_id: event.id.clone(),
            event_type: event.kind.as_str().to_owned(),
            body,
            detected_at_ms,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        };
        match active.templates.render(
            sink.kind(),
            route.rule.template.as_deref(),
            event,
            &route.rule.name,
            route.sink,
        ) {
            Ok(body) => commit.deliveries.push(delivery(body)),
            Err(e) => {
                tracing::error!(rule = %route.rule.name, sink = route.sink, event_id = %event.id, error = %e, "cannot render; the event is kept in the dead letters");
                commit.dead.push(DeadLetter {
                    delivery: delivery(String::new()),
                    reason: e.to_string(),
                    status: None,
                    response_body: String::new(),
                    failed_at_ms: detected_at_ms,
                    event: Some(Store::event_json(event)),
                });
            }
        }
    }
}

/// One full listing: every page, each committed (and flushed, when it queued deliveries) before
/// the next is read. `wake` is notified after each flush that queued deliveries.
pub async fn poll(
    client: &Client,
    store: &Store,
    active: &Active,
    wake: &Arc<Notify>,
) -> Result<PollStats, PollError> {
    let started = Instant::now();
    let baseline = !store.baseline_done()?;
    let mode = if baseline {
        Mode::Baseline(active.config.store.baseline)
    } else {
        Mode::Diff
    };
    let bounds = ListBounds::default();
    let mut stats = PollStats {
        baseline,
        ..PollStats::default()
    };
    let mut cursors = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = client.list_page(&bounds, after.as_deref()).await?;
        stats.pages += 1;
        stats.sessions += page.items.len();
        let (mut commit, events) = process_page(store, active, &page, mode)?;
        stats.events += events;
        stats.changed += commit.snapshots.len();
        stats.deliveries += commit.deliveries.len();
        let last_page = !page.has_next_page;
        if last_page && baseline {
            commit.meta.push((META_BASELINE, b"done".to_vec()));
        }
        let queued = !commit.deliveries.is_empty() || !commit.dead.is_empty();
        store.commit(&commit)?;
        if queued {
            store.flush().await?;
            wake.notify_one();
        }
        if last_page {
            break;
        }
        let cursor = page
            .end_cursor
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::Decode {
                url: format!(
                    "{}{}",
                    crate::devin::strip_userinfo(client.base_url()),
                    client.list_path()
                ),
                message: "has_next_page is true but end_cursor is missing".into(),
            })?;
        if !cursors.insert(cursor.clone()) || after.as_deref() == Some(cursor.as_str()) {
            return Err(ApiError::CursorLoop {
                url: format!(
                    "{}{}",
                    crate::devin::strip_userinfo(client.base_url()),
                    client.list_path()
                ),
                cursor,
            }
            .into());
        }
        after = Some(cursor);
    }
    stats.duration = started.elapsed();
    Ok(stats)
}
