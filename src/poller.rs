//! The poller: lists every page, diffs it against the snapshot, routes and renders the events,
//! and commits each page (snapshots + deliveries) in one transaction before anything is sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::active::Active;
use crate::config::Baseline;
use crate::devin::{ApiError, Client, ListBounds};
use crate::diff::{
    acus_crossings, diff, is_waiting, pr_opened_id, pr_state_changed, reminder, reminders_due,
};
use crate::event::{stable_id, truncate_chars, Change, Event, EventType};
use crate::model::{Page, Session};
use crate::rules::routes;
use crate::store::{
    fingerprint, now_ms, session_key, Commit, DeadLetter, Delivery, Store, StoreError, Waiting,
    META_BASELINE, META_HIGH_WATER, META_LAST_FULL, META_SCOPE,
};

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
    /// Whether this poll listed only recently updated sessions.
    pub incremental: bool,
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

/// Diffs one page against the store and builds what to commit. A session listed exactly as
/// its snapshot holds it is skipped without writing anything.
pub fn process_page(
    store: &Store,
    page: &Page,
    mode: Mode,
    acus_thresholds: &[f64],
) -> Result<(Commit, Vec<Event>), StoreError> {
    let mut commit = Commit::default();
    let mut all_events = Vec::new();
    // A session listed twice in one page diffs against its first appearance.
    let mut pending: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, session) in page.items.iter().enumerate() {
        // The snapshot is the item as the API sent it (re-encoded when the page was built in
        // code). Those bytes are their own fingerprint: equal bytes, same session.
        let new_bytes = match page.raw.get(i) {
            Some(raw) => raw.as_bytes().to_vec(),
            None => serde_json::to_vec(session).map_err(|e| StoreError::Corrupt {
                what: format!("sessions/{}", session.session_id),
                message: e.to_string(),
            })?,
        };
        let key = session_key(session.created_at, &session.session_id);
        if mode == Mode::Baseline(Baseline::Silent) {
            // Nothing to compare with: record the session as it is.
            track_wait(&mut commit, None, session);
            push_snapshot(&mut commit, &mut pending, key, new_bytes);
            continue;
        }
        let old_bytes = match pending.get(&key) {
            Some(&i) => Some(sled::IVec::from(commit.snapshots[i].1.as_slice())),
            None => store.snapshot_raw(&key)?,
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
                    push_snapshot(&mut commit, &mut pending, key, new_bytes);
                    continue;
                }
            },
        };
        let mut events = match mode {
            Mode::Diff => diff(old.as_ref(), session),
            Mode::Baseline(Baseline::Notify) if old.is_none() => diff(None, session),
            Mode::Baseline(_) => Vec::new(),
        };
        if mode == Mode::Diff {
            events.extend(acus_crossings(old.as_ref(), session, acus_thresholds));
        }
        track_wait(&mut commit, old.as_ref(), session);
        for event in events {
            all_events.extend(once_per_subject(store, &mut commit, old.as_ref(), event)?);
        }
        push_snapshot(&mut commit, &mut pending, key, new_bytes);
    }
    Ok((commit, all_events))
}

/// Passes an event on, unless it happens once per subject and was detected before (e.g. a pull
/// request the API left out of one listing, now back). A pull request back in another state
/// than the last one known yields that change instead. Records what the store keeps: the
/// ids announced, and each pull request's last known state.
fn once_per_subject(
    store: &Store,
    commit: &mut Commit,
    old: Option<&Session>,
    event: Event,
) -> Result<Option<Event>, StoreError> {
    let pr = match &event.change {
        Change::PullRequest {
            pr_url, pr_state, ..
        } => Some((pr_url.clone(), pr_state.clone())),
        _ => None,
    };
    let session = &event.session;
    if let (EventType::PullRequestStateChanged, Some((url, state))) = (event.kind, &pr) {
        let opened = pr_opened_id(&session.session_id, url);
        commit.announced.push((opened, state.clone()));
    }
    if !event.kind.once_per_subject() {
        return Ok(Some(event));
    }
    let known = match commit
        .announced
        .iter()
        .rev()
        .find(|(id, _)| *id == event.id)
    {
        Some((_, last)) => Some(last.clone()),
        None => store.announced(&event.id)?,
    };
    let Some(last) = known else {
        let kept = pr.map(|(_, state)| state).unwrap_or_default();
        commit.announced.push((event.id.clone(), kept));
        return Ok(Some(event));
    };
    tracing::info!(session_id = %session.session_id, event_id = %event.id, event_type = %event.kind, "seen before: not announced again");
    let listed = pr.and_then(|(url, _)| session.pull_requests.iter().find(|p| p.pr_url == url));
    Ok(match listed {
        Some(listed) if !last.is_empty() && listed.pr_state != last => {
            commit
                .announced
                .push((event.id.clone(), listed.pr_state.clone()));
            Some(pr_state_changed(old, session, listed, &last))
        }
        _ => None,
    })
}

/// Adds the latest Devin message to the events of sessions that start waiting, reading each
/// event's messages at most once (the result is cached by event id). A failure to read is
/// logged and the event goes out without the quote.
pub async fn enrich(
    client: &Client,
    store: &Store,
    active: &Active,
    events: &mut [Event],
) -> Result<(), StoreError> {
    let devin = &active.config.devin;
    if !devin.fetch_messages {
        return Ok(());
    }
    for event in events.iter_mut().filter(|e| e.starts_waiting()) {
        let message = match store.cached_message(&event.id)? {
            Some(cached) => cached,
            None => match client.last_devin_message(&event.session.session_id).await {
                Ok(found) => {
                    let found =
                        found.map(|m| truncate_chars(m.trim(), devin.last_message_max_chars));
                    store.cache_message(&event.id, &found)?;
                    found
                }
                Err(e) => {
                    tracing::warn!(session_id = %event.session.session_id, event_id = %event.id, error = %e, "cannot read the session's messages; notifying without Devin's question");
                    // Remembered, so a retried poll does not wait on the endpoint again.
                    store.cache_message(&event.id, &None)?;
                    None
                }
            },
        };
        event.last_devin_message = message;
    }
    Ok(())
}

/// Records when a session starts waiting on a person (a new wait when the detail changes), and
/// forgets the wait when it moves on.
fn track_wait(commit: &mut Commit, old: Option<&Session>, new: &Session) {
    let was = old.filter(|o| is_waiting(o)).map(|o| &o.status_detail);
    if is_waiting(new) {
        if was != Some(&new.status_detail) {
            let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
            let began = new.updated_at.saturating_mul(1000);
            let since_ms = if began > 0 { began.min(now) } else { now };
            commit.waiting.push((
                new.session_id.clone(),
                Some(Waiting {
                    since_ms,
                    created_at: new.created_at,
                    status_detail: new.status_detail.clone(),
                    sent: Default::default(),
                }),
            ));
        }
    } else if was.is_some() {
        commit.waiting.push((new.session_id.clone(), None));
    }
}

/// Reminders due now for the sessions that wait on a person: one event per (session, rule)
/// whose `remind_after` (then `repeat_every`) has passed since the last one, routed to that
/// rule only. The waits live in the store, so reminders survive restarts. With `fire` false
/// (the baseline) the reminders due are recorded as sent, not sent: waits that began before
/// the first run are reminded about from their next `repeat_every` on.
pub fn due_reminders(
    store: &Store,
    active: &Active,
    now: u64,
    fire: bool,
) -> Result<(Commit, usize), StoreError> {
    let mut commit = Commit::default();
    let mut fired = 0;
    let rules: Vec<&crate::rules::Rule> =
        active.config.rules.iter().filter(|r| r.reminds()).collect();
    if rules.is_empty() {
        return Ok((commit, 0));
    }
    for (session_id, mut wait) in store.waiting()? {
        let waited =
            Duration::from_millis(now.saturating_sub(u64::try_from(wait.since_ms).unwrap_or(0)));
        let mut changed = false;
        for rule in &rules {
            let Some(after) = rule.remind_after else {
                continue;
            };
            let due = reminders_due(waited, after, rule.repeat_every);
            if due <= wait.sent.get(&rule.name).copied().unwrap_or(0) {
                continue;
            }
            wait.sent.insert(rule.name.clone(), due);
            changed = true;
            if !fire {
                continue;
            }
            let session = match store.snapshot(wait.created_at, &session_id) {
                Ok(Some(session)) => session,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(session_id = %session_id, error = %e, "unreadable snapshot: no reminder");
                    continue;
                }
            };
            let event = reminder(&session, &rule.name, wait.since_ms, now, due);
            let before = commit.deliveries.len() + commit.dead.len();
            route_event(active, &event, now, &mut commit);
            if commit.deliveries.len() + commit.dead.len() > before {
                crate::metrics::EVENTS.count(&[("type", event.kind.as_str())], 1.0);
                tracing::info!(session_id = %session_id, event_id = %event.id, rule = %rule.name, reminder = due, "reminder due");
                fired += 1;
            }
        }
        if changed {
            commit.waiting.push((session_id, Some(wait)));
        }
    }
    Ok((commit, fired))
}

fn push_snapshot(
    commit: &mut Commit,
    pending: &mut HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
    bytes: Vec<u8>,
) {
    match pending.get(&key) {
        Some(&i) => commit.snapshots[i].1 = bytes,
        None => {
            pending.insert(key.clone(), commit.snapshots.len());
            commit.snapshots.push((key, bytes));
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
                    event: Some(crate::render::default_webhook_body(event)),
                });
            }
        }
    }
}

/// Pages one listing may have at most (20 million sessions at 200 a page).
pub const MAX_PAGES: usize = 100_000;

/// A fingerprint of what a listing covers: its path and filters.
fn scope_of(client: &Client) -> u64 {
    let mut text = client.list_path();
    for (k, v) in client.filters() {
        text.push('&');
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    fingerprint(text.as_bytes())
}

/// Which listing a poll makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every session the filters select.
    Full,
    /// Sessions updated after this epoch second (the high-water mark minus the overlap).
    Since(i64),
}

/// Chooses the listing: full for the baseline, when no mark is stored, or when the last full
/// listing is older than `devin.full_resync_every`; otherwise incremental.
pub fn choose_listing(
    store: &Store,
    active: &Active,
    baseline: bool,
) -> Result<Listing, StoreError> {
    let devin = &active.config.devin;
    if baseline || devin.full_resync_every.is_zero() {
        return Ok(Listing::Full);
    }
    let (Some(mark), Some(last_full)) = (
        store.meta_u64(META_HIGH_WATER)?,
        store.meta_u64(META_LAST_FULL)?,
    ) else {
        return Ok(Listing::Full);
    };
    let since_full = Duration::from_millis(now_ms().saturating_sub(last_full));
    if since_full >= devin.full_resync_every {
        return Ok(Listing::Full);
    }
    Ok(Listing::Since(
        (mark as i64).saturating_sub(devin.overlap_secs()),
    ))
}

/// One listing (full or incremental): every page, each committed (and flushed, when it queued
/// deliveries) before the next is read. `wake` is notified after each flush that queued
/// deliveries. The high-water mark advances only when the whole listing was read.
pub async fn poll(
    client: &Client,
    store: &Store,
    active: &Active,
    wake: &Arc<Notify>,
) -> Result<PollStats, PollError> {
    let mut flusher = Flusher {
        store,
        wake,
        dirty: false,
        last: Instant::now(),
    };
    let result = list_all(client, store, active, &mut flusher).await;
    // Whatever happened, what was committed is made durable (and so sendable) now.
    flusher.flush_if_dirty().await?;
    result
}

/// Flushes committed deliveries to disk at most once a second during a poll, and once at its
/// end, then wakes the delivery loop. (The delivery loop sends only flushed rows.)
struct Flusher<'a> {
    store: &'a Store,
    wake: &'a Arc<Notify>,
    dirty: bool,
    last: Instant,
}

impl Flusher<'_> {
    async fn committed(&mut self, queued: bool) -> Result<(), StoreError> {
        self.dirty |= queued;
        if self.dirty && self.last.elapsed() >= FLUSH_EVERY {
            self.flush_if_dirty().await?;
        }
        Ok(())
    }

    async fn flush_if_dirty(&mut self) -> Result<(), StoreError> {
        if self.dirty {
            self.store.flush().await?;
            self.dirty = false;
            self.last = Instant::now();
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// The cursor of the page after `page`: present, and not seen before in this listing.
fn next_cursor(
    client: &Client,
    page: &Page,
    seen: &mut std::collections::HashSet<String>,
) -> Result<String, ApiError> {
    let cursor = page
        .end_cursor
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::Decode {
            url: client.listing_url(),
            message: "has_next_page is true but end_cursor is missing".into(),
        })?;
    if !seen.insert(cursor.clone()) {
        return Err(ApiError::CursorLoop {
            url: client.listing_url(),
            cursor,
        });
    }
    Ok(cursor)
}

/// A listing page being requested and decoded by a task of its own; the request is cancelled
/// when this is dropped (a poll that fails or is cancelled leaves nothing running).
struct Prefetch(tokio::task::JoinHandle<Result<Page, ApiError>>);

impl Prefetch {
    fn start(client: &Client, bounds: &ListBounds, after: Option<String>) -> Prefetch {
        let (client, bounds) = (client.clone(), bounds.clone());
        Prefetch(tokio::spawn(async move {
            client.list_page(&bounds, after.as_deref()).await
        }))
    }

    async fn page(&mut self, client: &Client) -> Result<Page, ApiError> {
        match (&mut self.0).await {
            Ok(page) => page,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ApiError::Transport {
                url: client.listing_url(),
                message: format!("the page's request did not finish: {e}"),
            }),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a long poll flushes the deliveries it queued.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

async fn list_all(
    client: &Client,
    store: &Store,
    active: &Active,
    flusher: &mut Flusher<'_>,
) -> Result<PollStats, PollError> {
    let started = Instant::now();
    // The listing's scope (endpoint and filters). When it changes, the sessions it brings in
    // are not new: this listing is a silent baseline for them.
    let scope = scope_of(client);
    let stored_scope = store.meta_u64(META_SCOPE)?;
    let rescoped = stored_scope.is_some_and(|s| s != scope) && store.baseline_done()?;
    if rescoped {
        tracing::info!("the listing's endpoint or filters changed: recording the sessions now in scope silently");
    }
    let baseline = !store.baseline_done()? || rescoped;
    let mode = if rescoped {
        Mode::Baseline(Baseline::Silent)
    } else if baseline {
        Mode::Baseline(active.config.store.baseline)
    } else {
        Mode::Diff
    };
    let listing = choose_listing(store, active, baseline)?;
    let bounds = ListBounds {
        updated_after: match listing {
            Listing::Full => None,
            Listing::Since(t) => Some(t),
        },
    };
    let old_mark = store.meta_u64(META_HIGH_WATER)?;
    let mut mark = old_mark.map_or(i64::MIN, |m| m as i64);
    let mut stats = PollStats {
        baseline,
        incremental: listing != Listing::Full,
        ..PollStats::default()
    };
    let thresholds: Arc<[f64]> = active
        .config
        .rules
        .iter()
        .filter_map(|r| r.acus_threshold())
        .collect();
    let mut cursors = std::collections::HashSet::new();
    let mut next = Prefetch::start(client, &bounds, None);
    loop {
        let page = next.page(client).await?;
        stats.pages += 1;
        for why in &page.skipped {
            crate::metrics::API_REQUESTS.count(&[("status", "item_skipped")], 1.0);
            tracing::warn!(
                page = stats.pages,
                "skipped an item that is not a session: {why}"
            );
        }
        // An empty page that announces more is treated as the end (a listing cannot progress
        // on empty pages), and so is a listing past MAX_PAGES.
        let last_page = !page.has_next_page || page.items.is_empty() && page.skipped.is_empty();
        if page.has_next_page && last_page {
            tracing::warn!(
                page = stats.pages,
                "an empty page announces more; taking it as the end of the listing"
            );
        }
        if stats.pages >= MAX_PAGES && !last_page {
            return Err(ApiError::Decode {
                url: client.listing_url(),
                message: format!("the listing goes on past {MAX_PAGES} pages; stopping"),
            }
            .into());
        }
        // The next page is requested (and decoded, on another worker thread) while this one is
        // diffed and committed; listing requests stay one at a time and in order (this page's
        // messages requests may overlap the next page's). A bad cursor ends the listing once
        // this page is committed.
        let mut following = Ok(());
        if !last_page {
            match next_cursor(client, &page, &mut cursors) {
                Ok(cursor) => {
                    next = Prefetch::start(client, &bounds, Some(cursor));
                    // Let the fetch send its request now. (On a runtime worker, a task spawned
                    // from a task runs on that worker, next: without this it would wait for this
                    // page's store work, which does not yield. Its answer is then read and
                    // decoded on another worker.)
                    tokio::task::yield_now().await;
                }
                Err(e) => following = Err(e),
            }
        }
        stats.sessions += page.items.len();
        mark = page.items.iter().map(|s| s.updated_at).fold(mark, i64::max);
        let (mut commit, mut events) = process_page(store, &page, mode, &thresholds)?;
        enrich(client, store, active, &mut events).await?;
        if active.config.devin.fetch_messages {
            // The messages read for these events are in them now, and the commit records them.
            commit.uncache.extend(
                events
                    .iter()
                    .filter(|e| e.starts_waiting())
                    .map(|e| e.id.clone()),
            );
        }
        let detected_at_ms = now_ms();
        for event in &events {
            crate::metrics::EVENTS.count(&[("type", event.kind.as_str())], 1.0);
            tracing::info!(session_id = %event.session.session_id, event_id = %event.id, event_type = %event.kind, "event detected");
            route_event(active, event, detected_at_ms, &mut commit);
        }
        stats.events += events.len();
        stats.changed += commit.snapshots.len();
        stats.deliveries += commit.deliveries.len();
        if last_page {
            if baseline {
                commit.meta.push((META_BASELINE, b"done".to_vec()));
            }
            if stored_scope != Some(scope) {
                commit.meta.push((META_SCOPE, scope.to_be_bytes().to_vec()));
            }
            // A mark from the future (a bad clock upstream) would hide every later change until
            // the next full listing: cap it at our clock plus a minute. Capping only ever
            // makes later listings larger, never misses a change.
            let now_secs = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
            let mark = u64::try_from(mark.min(now_secs.saturating_add(60))).unwrap_or(0);
            if old_mark != Some(mark) {
                commit
                    .meta
                    .push((META_HIGH_WATER, mark.to_be_bytes().to_vec()));
            }
            if listing == Listing::Full {
                commit
                    .meta
                    .push((META_LAST_FULL, now_ms().to_be_bytes().to_vec()));
            }
        }
        let queued = !commit.deliveries.is_empty() || !commit.dead.is_empty();
        store.commit(&commit)?;
        flusher.committed(queued).await?;
        if last_page {
            break;
        }
        following?;
    }
    let (commit, reminders) = due_reminders(store, active, now_ms(), !baseline)?;
    if !commit.is_empty() {
        stats.events += reminders;
        stats.deliveries += commit.deliveries.len();
        store.commit(&commit)?;
        flusher
            .committed(!commit.deliveries.is_empty() || !commit.dead.is_empty())
            .await?;
    }
    stats.duration = started.elapsed();
    Ok(stats)
}
