//! The HTTP server of `[server] listen`: `/healthz`, `/readyz` and `/metrics` (open), the admin
//! console `/ui` ([`crate::console`]) and API `/api/v1` ([`crate::api`]), and, on a loopback
//! address only, the deprecated `/admin/...` endpoints ([`crate::api::legacy`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::active::Active;
use crate::api::auth::Auth;
use crate::api::Ctx;
use crate::health::Health;
use crate::leader::Role;
use crate::store::Store;

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
    let ctx = Ctx {
        health,
        active,
        store,
        wake,
        role,
        auth: Arc::new(Auth::new(addr)),
    };
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx.clone())
        .merge(crate::api::router(ctx.clone()))
        .merge(crate::console::router(ctx.clone()));
    if addr.ip().is_loopback() {
        router = router.merge(crate::api::legacy::router(ctx.clone()));
    }
    let token = ctx.active().config.server.admin_token.clone();
    match ctx.auth.forbidden(token.as_ref()) {
        Some(why) => tracing::warn!(%addr, "{why}"),
        None if token.is_none() => {
            tracing::info!(%addr, "/ui and /api are open to this machine: no server.admin_token is set")
        }
        None => {}
    }
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%addr, "serving /healthz, /readyz, /metrics, /ui and /api/v1");
    Ok(addr)
}

/// 200 on a leader whose polls succeed and on a standby, with the role in the body.
async fn readyz(State(ctx): State<Ctx>) -> Response {
    let role = *ctx.role.borrow();
    match ctx.unready() {
        None => format!("ready: {}\n", role.as_str()).into_response(),
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
