//! Digests on their schedule, and the history they need kept in bounds.
//!
//! After each poll, the leader looks at every `[[digests]]` entry: a digest seen for the first
//! time records the moment (its first period starts then, nothing is sent); a digest due
//! ([`crate::digest::due`]) is computed from the store, rendered for each of its sinks, and
//! queued in the outbox with the end of its period, in one commit: a restart never sends one
//! period twice, and runs missed while down become one digest covering the gap. Then one step
//! of pruning drops history older than `store.history_retention`.

use std::collections::HashMap;

use jiff::tz::TimeZone;

use crate::active::Active;
use crate::config::DigestConfig;
use crate::digest::{
    compute, due, parse_schedule, parse_timezone, Digest, Due, Inputs, Period, WaitingNow,
};
use crate::event::{delivery_id, stable_id};
use crate::model::Session;
use crate::store::activity::{digest_mark, PRUNE_BATCH};
use crate::store::{
    now_ms, Commit, Delivery, EventLogEntry, EventRoute, SnapshotKey, Store, StoreError,
};

/// The `event_type` of digest deliveries (in the logs, the outbox and `sinks list`).
pub const DIGEST_EVENT: &str = "digest";
/// The most prune steps after one poll (each at most [`PRUNE_BATCH`] records).
const PRUNE_STEPS: usize = 8;
/// Snapshots read per query when a digest looks up its sessions.
const SNAPSHOT_CHUNK: usize = 1000;

/// Sends the digests due at `now_ms`; returns how many deliveries it queued.
pub async fn run(store: &Store, active: &Active, now_ms: u64) -> Result<usize, StoreError> {
    let mut queued = 0;
    for d in &active.config.digests {
        // Validated when the configuration was loaded.
        let (Ok(cron), Ok(tz)) = (parse_schedule(&d.schedule), parse_timezone(&d.timezone)) else {
            continue;
        };
        let mark = store.digest_mark(&d.name).await?;
        let mut commit = Commit::default();
        match due(&cron, &tz, mark, now_ms) {
            Due::NotYet => continue,
            Due::First { mark_ms } => {
                tracing::info!(digest = %d.name, "new digest: its first period starts now");
                commit
                    .marks
                    .push((digest_mark(&d.name), mark_ms.to_be_bytes().to_vec()));
            }
            Due::Run(period) => {
                let digest = build(store, d, &tz, period, now_ms).await?;
                enqueue(active, d, &digest, now_ms, &mut commit);
                commit
                    .marks
                    .push((digest_mark(&d.name), period.end_ms.to_be_bytes().to_vec()));
                tracing::info!(digest = %d.name, start_ms = period.start_ms, end_ms = period.end_ms, deliveries = commit.deliveries.len(), "digest queued");
            }
        }
        store.commit(&commit).await?;
        queued += commit.deliveries.len();
    }
    Ok(queued)
}

/// The period `preview --digest` shows now: from the end of the last one sent (or, for a
/// digest never sent, `store.history_retention` ago) to now.
pub async fn preview_period(
    store: &Store,
    active: &Active,
    name: &str,
    now_ms: u64,
) -> Result<Period, StoreError> {
    let retention =
        u64::try_from(active.config.store.history_retention.as_millis()).unwrap_or(u64::MAX);
    let start_ms = match store.digest_mark(name).await? {
        Some(mark) => mark.min(now_ms),
        None => now_ms.saturating_sub(retention),
    };
    Ok(Period {
        start_ms,
        end_ms: now_ms,
    })
}

/// Computes a digest of `period` from the store: its history records, the sessions they are
/// about (and those waiting now) as listed last.
pub async fn build(
    store: &Store,
    d: &DigestConfig,
    tz: &TimeZone,
    period: Period,
    now_ms: u64,
) -> Result<Digest, StoreError> {
    let records = store.activity(period.start_ms, period.end_ms).await?;
    let waits = store.waiting().await?;
    let mut keys: Vec<SnapshotKey> = records
        .iter()
        .map(|r| SnapshotKey {
            created_at: r.created_at,
            session_id: r.session_id.clone(),
        })
        .chain(waits.iter().map(|(id, w)| w.snapshot_key(id)))
        .collect();
    keys.sort();
    keys.dedup();
    let mut sessions: HashMap<String, Session> = HashMap::new();
    for chunk in keys.chunks(SNAPSHOT_CHUNK) {
        for (key, bytes) in chunk.iter().zip(store.snapshots(chunk).await?) {
            let Some(bytes) = bytes else { continue };
            match serde_json::from_slice::<Session>(&bytes) {
                Ok(s) => {
                    sessions.insert(s.session_id.clone(), s);
                }
                Err(e) => {
                    tracing::warn!(snapshot = %key, error = %e, "unreadable snapshot: the digest uses the history's title and link")
                }
            }
        }
    }
    let waiting: Vec<WaitingNow> = waits
        .into_iter()
        .map(|(session_id, w)| WaitingNow {
            session_id,
            since_ms: u64::try_from(w.since_ms).unwrap_or(0),
            status_detail: w.status_detail,
        })
        .collect();
    Ok(compute(Inputs {
        name: &d.name,
        period,
        now_ms,
        timezone: tz,
        records: &records,
        sessions: &sessions,
        waiting: &waiting,
        when: &d.when,
    }))
}

/// The id of a digest's period: the same (name, period) always yields the same id.
pub fn digest_id(name: &str, period: Period) -> String {
    stable_id(
        "dgst_",
        &[
            name,
            &period.start_ms.to_string(),
            &period.end_ms.to_string(),
        ],
    )
}

/// Renders the digest for each of its sinks into the commit: a delivery each, or a dead
/// letter (with the digest's data as its body) when its template fails.
pub fn enqueue(
    active: &Active,
    d: &DigestConfig,
    digest: &Digest,
    now_ms: u64,
    commit: &mut Commit,
) {
    let period = Period {
        start_ms: digest.period.start_ms,
        end_ms: digest.period.end_ms,
    };
    let event_id = digest_id(&d.name, period);
    let rule = format!("digest:{}", d.name);
    // A lane (and a Slack thread) of its own per period: each digest is a new message.
    let lane = format!("digest:{}:{}", d.name, period.end_ms);
    let mut routes = Vec::new();
    for sink in &d.sinks {
        if !active.config.sinks.contains_key(sink) {
            continue;
        }
        routes.push(EventRoute {
            rule: rule.clone(),
            sink: sink.clone(),
        });
        let delivery = |body: String| Delivery {
            id: delivery_id(&event_id, &rule, sink),
            sink: sink.clone(),
            rule: rule.clone(),
            session_id: lane.clone(),
            session_title: Some(format!("digest {}", d.name)),
            event_id: event_id.clone(),
            event_type: DIGEST_EVENT.to_owned(),
            body,
            detected_at_ms: now_ms,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            creator: None,
        };
        match active.digest_payload(d, sink, digest, &event_id) {
            Ok(body) => commit.deliveries.push(delivery(body)),
            Err(e) => {
                tracing::error!(digest = %d.name, sink = %sink, error = %e, "cannot render the digest; it is kept in the dead letters");
                commit.bury_unrendered(
                    delivery(String::new()),
                    e.to_string(),
                    now_ms,
                    digest.webhook_body(),
                );
            }
        }
    }
    commit.events.push(EventLogEntry {
        id: 0,
        event_id,
        event_type: DIGEST_EVENT.to_owned(),
        session_id: lane,
        session_title: Some(digest.headline()),
        session_created_at: None,
        detected_at_ms: now_ms,
        routes,
    });
}

/// Drops history older than `store.history_retention`, a bounded batch at a time (at most
/// [`PRUNE_STEPS`] batches now; the next poll goes on). A failure is logged: the next poll
/// tries again.
pub async fn prune(store: &Store, active: &Active) {
    let retention =
        u64::try_from(active.config.store.history_retention.as_millis()).unwrap_or(u64::MAX);
    let before = now_ms().saturating_sub(retention);
    for _ in 0..PRUNE_STEPS {
        match store.prune_activity(before, PRUNE_BATCH).await {
            Ok(n) if n < PRUNE_BATCH => return,
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune the activity history; retried after the next poll");
                return;
            }
        }
    }
}
