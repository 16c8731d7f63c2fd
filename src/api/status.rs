//! `GET /api/v1/status`: the role, the last poll and its outcome, the next poll, the last
//! error, when the configuration was reloaded, and the queues.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::{ApiResult, Ctx};
use crate::admin::view::{rfc3339, secrets_of};
use crate::redact::scrub;

/// The answer of `GET /api/v1/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// `leader` or `standby`.
    pub role: &'static str,
    pub version: &'static str,
    /// `sled` or `postgres`.
    pub store: &'static str,
    pub started_at: String,
    pub ready: bool,
    pub not_ready_because: Option<String>,
    pub poll_interval_ms: u64,
    /// Since when a poll is in progress, if one is.
    pub polling_since: Option<String>,
    pub last_poll: Option<LastPoll>,
    pub last_successful_poll: Option<String>,
    pub next_poll: Option<String>,
    pub last_error: Option<LastError>,
    pub config_reloaded_at: Option<String>,
    pub queued: usize,
    pub dead_letters: usize,
    pub paused_sinks: usize,
}

/// How the last poll ended.
#[derive(Debug, Serialize)]
pub struct LastPoll {
    pub at: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub events: usize,
    pub deliveries: usize,
}

/// The last error a loop reported.
#[derive(Debug, Serialize)]
pub struct LastError {
    pub at: String,
    /// `poll` or `reload`.
    pub what: &'static str,
    pub message: String,
}

pub(super) async fn get_status(State(ctx): State<Ctx>) -> ApiResult<Status> {
    let active = ctx.active();
    let secrets = secrets_of(&active.config);
    let record = ctx.health.record();
    let last_ok = ctx
        .health
        .last_poll_ok_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let not_ready_because = ctx.unready();
    let role = *ctx.role.borrow();
    Ok(Json(Status {
        role: role.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        store: if ctx.store.shared() {
            "postgres"
        } else {
            "sled"
        },
        started_at: rfc3339(record.started_at_ms),
        ready: not_ready_because.is_none(),
        not_ready_because,
        poll_interval_ms: active.config.devin.poll_interval.as_millis() as u64,
        polling_since: record.polling_since_ms.map(rfc3339),
        last_poll: record.last_poll.map(|p| LastPoll {
            at: rfc3339(p.at_ms),
            outcome: if p.error.is_some() { "error" } else { "ok" },
            error: p.error.map(|e| scrub(&e, &secrets)),
            duration_ms: p.duration_ms,
            events: p.events,
            deliveries: p.deliveries,
        }),
        last_successful_poll: (last_ok > 0).then(|| rfc3339(last_ok)),
        next_poll: record.next_poll_ms.map(rfc3339),
        last_error: record.last_error.map(|e| LastError {
            at: rfc3339(e.at_ms),
            what: e.what,
            message: scrub(&e.message, &secrets),
        }),
        config_reloaded_at: record.reloaded_at_ms.map(rfc3339),
        queued: ctx.store.outbox_len().await?,
        dead_letters: ctx.store.dead_len().await?,
        paused_sinks: ctx.store.paused_sinks().await?.len(),
    }))
}
