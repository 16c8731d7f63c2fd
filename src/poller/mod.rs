//! The poller: lists every page, diffs it against the snapshots, routes and renders the events,
//! and commits each page (snapshots + deliveries) in one transaction before anything is sent.
//!
//! A poll is a pipeline: plan the listing ([`listing::Plan`]: scope, mode, bounds), then for
//! each page: diff it against the store and keep once-per-subject events once ([`page`]), add
//! Devin's question to waiting events, route and render ([`route`]), commit; then finish (the
//! high-water mark and meta on the last page, then [`reminders`]).

pub mod account;
pub mod digests;
pub mod listing;
pub mod page;
pub mod reminders;
pub mod route;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use self::listing::{Fetched, Listing, Pages, Plan};
pub use self::page::{process_page, Mode};
pub use self::reminders::due_reminders;
pub use self::route::{enrich, route_event};
use crate::active::Active;
use crate::devin::{ApiError, Client};
use crate::model::Page;
use crate::store::{
    now_ms, Commit, Store, StoreError, META_BASELINE, META_HIGH_WATER, META_LAST_FULL, META_SCOPE,
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

/// How often a long poll flushes the deliveries it queued.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

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
    // Digests are due on the clock, whether or not the listing went through.
    let digests = digests::run(store, active, now_ms()).await;
    match &digests {
        Ok(n) if *n > 0 => flusher.dirty = true,
        Ok(_) => {}
        // Logged here: a failed listing (or flush) returns its own error first. A digest
        // committed before the one that failed is flushed all the same.
        Err(e) => {
            flusher.dirty = true;
            tracing::error!(error = %e, "cannot look at the digests; trying again after the next poll")
        }
    }
    // Whatever happened, what was committed is made durable (and so sendable) now.
    flusher.flush_if_dirty().await?;
    digests::prune(store, active).await;
    let stats = result?;
    digests?;
    Ok(stats)
}

/// The pipeline of one listing.
async fn list_all(
    client: &Client,
    store: &Store,
    active: &Active,
    flusher: &mut Flusher<'_>,
) -> Result<PollStats, PollError> {
    let started = Instant::now();
    let plan = Plan::make(client, store, active).await?;
    let mut stats = PollStats {
        baseline: plan.baseline,
        incremental: plan.listing != Listing::Full,
        ..PollStats::default()
    };
    let mut mark = plan.old_mark.map_or(i64::MIN, |m| m as i64);
    let mut pages = Pages::start(client, &plan.bounds);
    loop {
        let Fetched {
            mut page,
            last,
            following,
        } = pages.next().await?;
        stats.pages = pages.count;
        mark = page.items.iter().map(|s| s.updated_at).fold(mark, i64::max);
        let mut commit = handle_page(client, store, active, &plan, &mut page, &mut stats).await?;
        if last {
            finish(&plan, mark, &mut commit);
        }
        commit_page(store, flusher, &commit).await?;
        if last {
            break;
        }
        following?;
    }
    let (commit, reminders) = due_reminders(store, active, now_ms(), !plan.baseline).await?;
    stats.events += reminders;
    stats.deliveries += commit.deliveries.len();
    commit_page(store, flusher, &commit).await?;
    stats.duration = started.elapsed();
    Ok(stats)
}

/// One page: diff and once-per-subject, Devin's question for the waiting events that will be
/// sent, then each event routed and rendered into the page's commit.
async fn handle_page(
    client: &Client,
    store: &Store,
    active: &Active,
    plan: &Plan,
    page: &mut Page,
    stats: &mut PollStats,
) -> Result<Commit, StoreError> {
    let (mut commit, mut events) = process_page(store, page, plan.mode, &plan.thresholds).await?;
    // The messages read for these events are in them now, and the commit records them.
    let read_for = enrich(client, store, active, &mut events).await?;
    commit.uncache.extend(read_for);
    let detected_at_ms = now_ms();
    if plan.mode == Mode::Diff {
        // What digests will count, with the snapshots it comes from.
        let facts = crate::digest::activity_of(&events, detected_at_ms);
        commit.activity.extend(facts);
    }
    for event in &events {
        crate::metrics::EVENTS.count(&[("type", event.kind.as_str())], 1.0);
        tracing::info!(session_id = %event.session.session_id, event_id = %event.id, event_type = %event.kind, "event detected");
        route_event(active, event, detected_at_ms, &mut commit);
    }
    stats.sessions += page.items.len();
    stats.events += events.len();
    stats.changed += commit.snapshots.len();
    stats.deliveries += commit.deliveries.len();
    Ok(commit)
}

/// What the last page of a complete listing records: the baseline, the scope, the high-water
/// mark, and when the last full listing was.
fn finish(plan: &Plan, mark: i64, commit: &mut Commit) {
    if plan.baseline {
        commit.meta.push((META_BASELINE, b"done".to_vec()));
    }
    if plan.stored_scope != Some(plan.scope) {
        commit
            .meta
            .push((META_SCOPE, plan.scope.to_be_bytes().to_vec()));
    }
    // A mark from the future (a bad clock upstream) would hide every later change until the
    // next full listing: cap it at our clock plus a minute. Capping only ever makes later
    // listings larger, never misses a change.
    let now_secs = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let mark = u64::try_from(mark.min(now_secs.saturating_add(60))).unwrap_or(0);
    if plan.old_mark != Some(mark) {
        commit
            .meta
            .push((META_HIGH_WATER, mark.to_be_bytes().to_vec()));
    }
    if plan.listing == Listing::Full {
        commit
            .meta
            .push((META_LAST_FULL, now_ms().to_be_bytes().to_vec()));
    }
}

/// Writes a page's commit (nothing when empty) and flushes per [`Flusher`].
async fn commit_page(
    store: &Store,
    flusher: &mut Flusher<'_>,
    commit: &Commit,
) -> Result<(), StoreError> {
    store.commit(commit).await?;
    flusher
        .committed(!commit.deliveries.is_empty() || !commit.dead.is_empty())
        .await
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
