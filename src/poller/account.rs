//! Account signals beyond sessions (SPEC section 13): the queue (`[devin.queue]`) and the
//! daily ACU consumption (`[devin.consumption]`), each read every `every`, turned into events,
//! routed, and committed with their deliveries in one transaction, as a page of sessions is.
//!
//! - The queue's status is stored (meta `queue_status`) with the deliveries its change causes:
//!   the first observation is a silent baseline, and a restart does not announce it again.
//! - A (billing day, threshold) crossing is remembered among the once-per-subject ids in the
//!   commit that queues its deliveries: announced once, across restarts.
//! - A 403 turns that feature alone off ([`crate::features`]); other failures are logged and
//!   tried again at the next `every`. Session polling never waits on them.

use crate::config::MAX_EVERY;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{route_event, PollError};
use crate::active::Active;
use crate::devin::{ApiError, Client};
use crate::diff::{billing_day_start, consumption_crossings, queue_change};
use crate::event::Event;
use crate::features::{self, Feature};
use crate::store::{now_ms, Commit, Store};

/// Meta key: the queue's status as last observed (UTF-8).
pub const META_QUEUE_STATUS: &str = "queue_status";

/// When each account signal is next due (`None`: at once).
#[derive(Debug, Default)]
pub struct Schedule {
    queue: Option<Instant>,
    consumption: Option<Instant>,
}

/// What one round of account signals queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SignalStats {
    pub events: usize,
    pub deliveries: usize,
}

fn now_secs() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}

/// Reads every configured (and not refused) signal that is due, commits what it causes, wakes
/// the delivery loop when deliveries were queued. Returns what was queued and when the next
/// signal is due (`None`: none is configured).
pub async fn poll_due(
    client: &Client,
    store: &Store,
    active: &Active,
    wake: &Arc<Notify>,
    schedule: &mut Schedule,
) -> (SignalStats, Option<Instant>) {
    let devin = &active.config.devin;
    let mut stats = SignalStats::default();
    let now = Instant::now();
    if let Some(queue) = devin.queue.as_ref().filter(|_| enabled(Feature::Queue)) {
        if schedule.queue.is_none_or(|at| at <= now) {
            let polled = poll_queue(client, store, active).await;
            settle(Feature::Queue, polled, &mut stats);
            schedule.queue = Some(now + queue.every.min(MAX_EVERY));
        }
    }
    let consumption = devin.consumption.as_ref();
    if let Some(config) = consumption.filter(|_| enabled(Feature::Consumption)) {
        if schedule.consumption.is_none_or(|at| at <= now) {
            let thresholds = &config.daily_acus_over;
            let polled = poll_consumption(client, store, active, thresholds).await;
            settle(Feature::Consumption, polled, &mut stats);
            schedule.consumption = Some(now + config.every.min(MAX_EVERY));
        }
    }
    if stats.deliveries > 0 {
        if let Err(e) = store.flush().await {
            tracing::error!(error = %e, "cannot flush the account signals' deliveries");
        }
        wake.notify_one();
    }
    let next = [
        schedule
            .queue
            .filter(|_| devin.queue.is_some() && enabled(Feature::Queue)),
        schedule
            .consumption
            .filter(|_| devin.consumption.is_some() && enabled(Feature::Consumption)),
    ]
    .into_iter()
    .flatten()
    .min();
    (stats, next)
}

/// Whether a feature may be used; records it as configured (its gauge at 1) if so.
fn enabled(feature: Feature) -> bool {
    features::configured(feature);
    features::enabled(feature)
}

/// Logs a round's outcome: a 403 turns the feature off, other failures wait for the next.
fn settle(feature: Feature, polled: Result<SignalStats, PollError>, stats: &mut SignalStats) {
    match polled {
        Ok(s) => {
            stats.events += s.events;
            stats.deliveries += s.deliveries;
        }
        Err(PollError::Api(e)) if e.forbidden() => features::refused(feature, &e.to_string()),
        Err(e) => {
            tracing::warn!(feature = feature.as_str(), error = %e, "cannot read an account signal; trying again at its next `every`")
        }
    }
}

/// Reads the queue: its status stored, and `queue.status_changed` when it differs from the
/// stored one (none the first time: a silent baseline).
pub async fn poll_queue(
    client: &Client,
    store: &Store,
    active: &Active,
) -> Result<SignalStats, PollError> {
    let info = client.queue().await?;
    let stored = store
        .meta(META_QUEUE_STATUS)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let mut commit = Commit::default();
    if stored.as_deref() != Some(info.status.as_str()) {
        commit
            .meta
            .push((META_QUEUE_STATUS, info.status.clone().into_bytes()));
    }
    let events: Vec<Event> = queue_change(
        stored.as_deref(),
        &info,
        i64::try_from(now_ms()).unwrap_or(i64::MAX),
    )
    .into_iter()
    .collect();
    if stored.is_none() {
        tracing::info!(status = %info.status, queue_size = info.queue_size, "queue baseline recorded (not announced)");
    }
    commit_events(store, active, events, commit).await
}

/// Reads the daily consumption of the current and the previous billing day, and announces each
/// (day, threshold) crossed that was not announced before.
pub async fn poll_consumption(
    client: &Client,
    store: &Store,
    active: &Active,
    thresholds: &[f64],
) -> Result<SignalStats, PollError> {
    let now = now_secs();
    let after = billing_day_start(now) - 86_400;
    let answer = client.daily_consumption(after, now).await?;
    let events = consumption_crossings(&answer, thresholds, now);
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let known = store.announced(&ids).await?;
    let mut commit = Commit::default();
    let mut fresh = Vec::new();
    for (event, known) in events.iter().zip(known) {
        if known.is_none() {
            commit.announced.push((event.id.clone(), String::new()));
            fresh.push(event.clone());
        }
    }
    commit_events(store, active, fresh, commit).await
}

/// Routes the events into `commit` and writes it (the marks and the deliveries at once).
async fn commit_events(
    store: &Store,
    active: &Active,
    events: Vec<Event>,
    mut commit: Commit,
) -> Result<SignalStats, PollError> {
    let detected_at_ms = now_ms();
    for event in &events {
        crate::metrics::EVENTS.count(&[("type", event.kind.as_str())], 1.0);
        tracing::info!(subject = %event.subject(), event_id = %event.id, event_type = %event.kind, "event detected");
        route_event(active, event, detected_at_ms, &mut commit);
    }
    store.commit(&commit).await?;
    Ok(SignalStats {
        events: events.len(),
        deliveries: commit.deliveries.len(),
    })
}

/// How long to sleep before the next round: until the next signal is due, or a minute when none
/// is configured (a reload may add one).
pub fn sleep_for(next: Option<Instant>) -> Duration {
    next.map_or(Duration::from_secs(60), |at| {
        at.saturating_duration_since(Instant::now())
    })
}

/// The error of a failed read, for `check`: a 403 names the permission.
pub fn describe(feature: Feature, e: &ApiError) -> String {
    if e.forbidden() {
        format!(
            "{}: HTTP 403: the service user lacks the {} permission; the {} feature would be off",
            feature.endpoint(),
            feature.permission(),
            feature.as_str()
        )
    } else {
        e.to_string()
    }
}
