//! `/api/v1/deliveries` (`?sink=&outcome=&session=&limit=&before=`) and `/api/v1/events`
//! (`?limit=&before=`): the delivery log and the event log, newest first; `/api/v1/sessions`
//! (`?limit=`): the sessions of the event log, each once, newest event first (what a rule's
//! preview can be made for). Entries carry their
//! `id`; `before` = the last id of a page reads the next one. Error excerpts are scrubbed of
//! every configured secret.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiResult, Ctx};
use crate::admin::logs::{self, default_limit, LogQuery};
use crate::store::{DeliveryLogEntry, EventLogEntry};

/// The answer of `GET /api/v1/deliveries`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub deliveries: Vec<DeliveryLogEntry>,
    /// How many entries the log keeps (`server.history`).
    pub history: usize,
}

/// The answer of `GET /api/v1/events`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventLog {
    pub events: Vec<EventLogEntry>,
    /// How many entries the log keeps (`server.history`).
    pub history: usize,
}

/// The query of `GET /api/v1/events`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventsQuery {
    #[serde(default = "default_limit")]
    pub limit: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

pub(super) async fn deliveries(
    State(ctx): State<Ctx>,
    Query(query): Query<LogQuery>,
) -> ApiResult<DeliveryLog> {
    let active = ctx.active();
    let deliveries = logs::deliveries(&ctx.store, &active.config, &query).await?;
    Ok(Json(DeliveryLog {
        deliveries,
        history: ctx.store.history(),
    }))
}

pub(super) async fn events(
    State(ctx): State<Ctx>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<EventLog> {
    let events = ctx.store.recent_events(query.limit, query.before).await?;
    Ok(Json(EventLog {
        events,
        history: ctx.store.history(),
    }))
}

/// The answer of `GET /api/v1/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecentSessions {
    pub sessions: Vec<RecentSession>,
}

/// A session of the event log: its newest event.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecentSession {
    pub session_id: String,
    pub title: Option<String>,
    pub last_event_type: String,
    pub detected_at_ms: u64,
}

/// The query of `GET /api/v1/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionsQuery {
    #[serde(default = "default_sessions")]
    pub limit: usize,
}

fn default_sessions() -> usize {
    20
}

pub(super) async fn sessions(
    State(ctx): State<Ctx>,
    Query(query): Query<SessionsQuery>,
) -> ApiResult<RecentSessions> {
    let entries = ctx.store.recent_sessions(query.limit.min(200)).await?;
    let sessions = entries
        .into_iter()
        .map(|e| RecentSession {
            session_id: e.session_id,
            title: e.session_title,
            last_event_type: e.event_type,
            detected_at_ms: e.detected_at_ms,
        })
        .collect();
    Ok(Json(RecentSessions { sessions }))
}
