//! The admin endpoints `dead-letters` and `sinks` used before `/api/v1` (text answers), served
//! on loopback addresses only, behind the same access rules as `/api/v1`. Deprecated: kept
//! for one release, for a CLI of the previous release talking to this service.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{Ctx, Which};
use crate::admin::{self, AdminOp};

/// `/admin/...`.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/admin/sinks", get(sinks_list))
        .route("/admin/sinks/{name}/resume", post(sink_resume))
        .route("/admin/dead-letters", get(dead_list))
        .route("/admin/dead-letters/retry", post(dead_retry))
        .route("/admin/dead-letters/purge", post(dead_purge))
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            super::auth::require_api,
        ))
        .with_state(ctx)
}

/// Runs an admin operation on the service's store and wakes the delivery loop (a retried or
/// resumed delivery may be due now).
async fn run(ctx: &Ctx, op: AdminOp) -> Response {
    let active = ctx.active();
    let result = admin::execute(&ctx.store, &active, &op).await;
    ctx.wake.notify_one();
    match result {
        Ok(text) => (StatusCode::OK, text + "\n").into_response(),
        Err(e) if e.is_not_found() => (StatusCode::NOT_FOUND, e.to_string() + "\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string() + "\n").into_response(),
    }
}

async fn sinks_list(State(ctx): State<Ctx>) -> Response {
    run(&ctx, AdminOp::Sinks).await
}

async fn sink_resume(State(ctx): State<Ctx>, Path(name): Path<String>) -> Response {
    run(&ctx, AdminOp::Resume(name)).await
}

async fn dead_list(State(ctx): State<Ctx>) -> Response {
    run(&ctx, AdminOp::DeadLetters).await
}

async fn dead_retry(State(ctx): State<Ctx>, Json(which): Json<Which>) -> Response {
    run(&ctx, AdminOp::RetryDead(which.selection())).await
}

async fn dead_purge(State(ctx): State<Ctx>, Json(which): Json<Which>) -> Response {
    run(&ctx, AdminOp::PurgeDead(which.selection())).await
}
