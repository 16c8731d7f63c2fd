//! The HTTP server of `[server] listen`: `/healthz`, `/readyz`, `/metrics`, and admin endpoints
//! (only on a loopback address) so that `dead-letters`, `sinks`, `deliveries` and `events`
//! work while `run` holds the store.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::active::Active;
use crate::admin::{self, AdminOp, Selection};
use crate::leader::Role;
use crate::store::{now_ms, Store};

/// What readiness is judged on, updated by the service's loops.
#[derive(Debug, Default)]
pub struct Health {
    /// When the last poll succeeded (Unix ms; 0: never).
    pub last_poll_ok_ms: AtomicU64,
    /// Whether the last write to the store succeeded.
    pub store_ok: AtomicBool,
}

impl Health {
    /// A fresh health record: no poll yet, store fine.
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            last_poll_ok_ms: AtomicU64::new(0),
            store_ok: AtomicBool::new(true),
        })
    }

    /// Records a successful poll.
    pub fn poll_ok(&self) {
        let now = now_ms();
        self.last_poll_ok_ms.store(now, Ordering::Relaxed);
        self.store_ok.store(true, Ordering::Relaxed);
        crate::metrics::LAST_SUCCESSFUL_POLL.set(&[], (now / 1000) as f64);
    }

    /// Why the service is not ready, if it is not: the last poll must have succeeded within
    /// three poll intervals, and the store must be writable.
    pub fn unready(&self, poll_interval: Duration) -> Option<String> {
        if !self.store_ok.load(Ordering::Relaxed) {
            return Some("the store failed its last write".into());
        }
        let last = self.last_poll_ok_ms.load(Ordering::Relaxed);
        if last == 0 {
            return Some("no poll has succeeded yet".into());
        }
        let age = Duration::from_millis(now_ms().saturating_sub(last));
        (age > poll_interval * 3)
            .then(|| format!("the last successful poll was {}s ago", age.as_secs()))
    }
}

#[derive(Clone)]
struct Shared {
    health: Arc<Health>,
    active: watch::Receiver<Arc<Active>>,
    store: Store,
    wake: Arc<tokio::sync::Notify>,
    role: watch::Receiver<Role>,
}

/// Body of `POST /admin/dead-letters/{retry,purge}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Which {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

impl Which {
    fn selection(self) -> Selection {
        if self.all {
            Selection::All
        } else {
            Selection::Ids(self.ids)
        }
    }
}

/// Binds `listen` and serves until the process ends. Returns the bound address.
pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    active: watch::Receiver<Arc<Active>>,
    store: Store,
    wake: Arc<tokio::sync::Notify>,
    role: watch::Receiver<Role>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Shared {
        health,
        active,
        store,
        wake,
        role,
    };
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if addr.ip().is_loopback() {
        router = router
            .route("/admin/sinks", get(sinks_list))
            .route("/admin/sinks/{name}/resume", post(sink_resume))
            .route("/admin/dead-letters", get(dead_list))
            .route("/admin/dead-letters/retry", post(dead_retry))
            .route("/admin/dead-letters/purge", post(dead_purge))
            .route("/admin/deliveries", get(deliveries_log))
            .route("/admin/events", get(events_log));
    } else {
        tracing::info!(%addr, "admin endpoints are served on loopback addresses only");
    }
    let router = router.with_state(shared);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    Ok(addr)
}

/// 200 on a leader whose polls succeed and on a standby, with the role in the body.
async fn readyz(State(s): State<Shared>) -> Response {
    let role = *s.role.borrow();
    if !role.is_leader() {
        return "ready: standby\n".into_response();
    }
    let interval = s.active.borrow().config.devin.poll_interval;
    match s.health.unready(interval) {
        None => "ready: leader\n".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// Runs an admin operation on the service's store and wakes the delivery loop (a retried or
/// resumed delivery may be due now).
async fn admin(s: &Shared, op: AdminOp) -> Response {
    let active = s.active.borrow().clone();
    let result = admin::execute(&s.store, &active, &op).await;
    s.wake.notify_one();
    match result {
        Ok(text) => (StatusCode::OK, text + "\n").into_response(),
        Err(e @ (admin::AdminError::NoSuchDeadLetter(_) | admin::AdminError::NoSuchSink(..))) => {
            (StatusCode::NOT_FOUND, e.to_string() + "\n").into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string() + "\n").into_response(),
    }
}

async fn sinks_list(State(s): State<Shared>) -> Response {
    admin(&s, AdminOp::Sinks).await
}

async fn sink_resume(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    admin(&s, AdminOp::Resume(name)).await
}

async fn dead_list(State(s): State<Shared>) -> Response {
    admin(&s, AdminOp::DeadLetters).await
}

async fn dead_retry(State(s): State<Shared>, Json(which): Json<Which>) -> Response {
    admin(&s, AdminOp::RetryDead(which.selection())).await
}

async fn dead_purge(State(s): State<Shared>, Json(which): Json<Which>) -> Response {
    admin(&s, AdminOp::PurgeDead(which.selection())).await
}

async fn deliveries_log(State(s): State<Shared>, Query(query): Query<admin::LogQuery>) -> Response {
    admin(&s, AdminOp::Deliveries(query)).await
}

/// Query of `GET /admin/events`.
#[derive(Debug, Deserialize)]
struct EventsQuery {
    limit: usize,
}

async fn events_log(State(s): State<Shared>, Query(query): Query<EventsQuery>) -> Response {
    admin(&s, AdminOp::Events(query.limit)).await
}
