//! The admin API, `/api/v1` (SPEC 11): the service's status, sinks, dead letters and rules as
//! JSON, and the actions on them (resume a sink, retry or purge dead letters, preview a rule).
//! The console ([`crate::console`]) and the `dead-letters` and `sinks` commands ([`client`])
//! use it.
//!
//! - [`auth`]: who may call it: `server.admin_token` as a bearer token or the console's
//!   session cookie; state-changing requests from another origin refused; 403 without a token
//!   on a non-loopback address.
//! - one file per resource: [`status`], [`sinks`], [`dead`], [`history`] (the delivery log
//!   and the event log), [`rules`]; [`legacy`], the
//!   deprecated `/admin/...` endpoints.
//!
//! Errors are `{"error": "..."}` with their status: 400 a bad request, 401 no or a wrong token,
//! 403 refused, 404 no such sink, dead letter or rule, 429 too many failed sign-ins, 500 the
//! store failed. No answer holds a secret: sinks show their host only, and texts that come from
//! receivers and errors are scrubbed of every configured secret.

pub mod auth;
pub mod client;
mod dead;
pub mod history;
pub mod legacy;
mod rules;
mod sinks;
mod status;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::active::Active;
use crate::admin::{AdminError, Selection};
use crate::health::Health;
use crate::leader::Role;
use crate::store::{Store, StoreError};

use self::auth::Auth;

/// What the server's handlers share.
#[derive(Clone)]
pub struct Ctx {
    pub health: Arc<Health>,
    pub active: watch::Receiver<Arc<Active>>,
    pub store: Store,
    /// Wakes the delivery loop (a resumed sink or a retried delivery may be due now).
    pub wake: Arc<Notify>,
    pub role: watch::Receiver<Role>,
    pub auth: Arc<Auth>,
}

impl Ctx {
    /// The configuration in force.
    pub fn active(&self) -> Arc<Active> {
        self.active.borrow().clone()
    }

    /// Why this process is not ready, if it is not (a standby is ready).
    pub fn unready(&self) -> Option<String> {
        if !self.role.borrow().is_leader() {
            return None;
        }
        let interval = self.active.borrow().config.devin.poll_interval;
        self.health.unready(interval)
    }
}

/// An API error: `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let status = if e.is_not_found() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Which dead letters a bulk request acts on: `{"ids": [...]}`, `{"all": true}` or
/// `{"sink": "NAME"}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Which {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub sink: Option<String>,
}

impl Which {
    /// The selection this names.
    pub fn selection(self) -> Selection {
        match (self.all, self.sink) {
            (true, _) => Selection::All,
            (false, Some(sink)) => Selection::Sink(sink),
            (false, None) => Selection::Ids(self.ids),
        }
    }

    /// The body that names `selection`.
    pub fn of(selection: &Selection) -> Which {
        match selection {
            Selection::All => Which {
                all: true,
                ..Which::default()
            },
            Selection::Sink(sink) => Which {
                sink: Some(sink.clone()),
                ..Which::default()
            },
            Selection::Ids(ids) => Which {
                ids: ids.clone(),
                ..Which::default()
            },
        }
    }
}

/// A JSON request body; `None` when empty.
pub(crate) fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<Option<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("the request body: {e}")))
}

/// `/api/v1/...`, behind [`auth::require_api`].
pub fn router(ctx: Ctx) -> Router {
    let api = Router::new()
        .route("/status", get(status::get_status))
        .route("/sinks", get(sinks::list))
        .route("/sinks/{name}/resume", post(sinks::resume))
        .route("/sinks/{name}/retry-dead", post(sinks::retry_dead))
        .route("/dead-letters", get(dead::list))
        .route("/dead-letters/retry", post(dead::retry_many))
        .route("/dead-letters/purge", post(dead::purge_many))
        .route("/dead-letters/{id}", get(dead::one).delete(dead::purge))
        .route("/dead-letters/{id}/retry", post(dead::retry))
        .route("/deliveries", get(history::deliveries))
        .route("/events", get(history::events))
        .route("/sessions", get(history::sessions))
        .route("/rules", get(rules::list))
        .route("/rules/{name}/preview", post(rules::preview))
        .route("/digests/{name}/preview", post(rules::preview_digest))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_api,
        ))
        .with_state(ctx);
    Router::new().nest("/api/v1", api)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (the README's \"Admin console and API\" lists them)")
}
