//! `/api/v1/sinks`: each sink's state and queues; resume a paused sink; retry all of a sink's
//! dead letters.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::{ApiResult, Ctx};
use crate::admin::view::{self, SinkView};
use crate::admin::{self, resume_text, retry_text};

/// The answer of `GET /api/v1/sinks`.
#[derive(Debug, Serialize)]
pub struct Sinks {
    pub sinks: Vec<SinkView>,
}

/// The answer of `POST /api/v1/sinks/{name}/resume`.
#[derive(Debug, Serialize)]
pub struct Resumed {
    pub sink: String,
    pub was_paused: bool,
    pub message: String,
}

/// The answer of a retry: how many went back to the outbox, and those still dead (a payload
/// that still fails to render), each with why.
#[derive(Debug, Serialize)]
pub struct Retried {
    pub requeued: usize,
    pub still_dead: Vec<String>,
    pub message: String,
}

impl Retried {
    pub fn new(requeued: usize, still_dead: Vec<String>) -> Retried {
        Retried {
            message: retry_text(requeued, &still_dead),
            requeued,
            still_dead,
        }
    }
}

pub(super) async fn list(State(ctx): State<Ctx>) -> ApiResult<Sinks> {
    let active = ctx.active();
    let sinks = view::sinks(&ctx.store, &active.config).await?;
    Ok(Json(Sinks { sinks }))
}

pub(super) async fn resume(State(ctx): State<Ctx>, Path(name): Path<String>) -> ApiResult<Resumed> {
    let active = ctx.active();
    let was_paused = admin::resume_sink(&ctx.store, &active.config, &name).await?;
    ctx.wake.notify_one();
    tracing::info!(sink = %name, was_paused, "admin API: sink resumed");
    Ok(Json(Resumed {
        message: resume_text(&name, was_paused),
        sink: name,
        was_paused,
    }))
}

pub(super) async fn retry_dead(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> ApiResult<Retried> {
    let active = ctx.active();
    let (requeued, still_dead) = admin::retry_sink_dead_letters(&ctx.store, &active, &name).await?;
    ctx.wake.notify_one();
    tracing::info!(sink = %name, requeued, "admin API: the sink's dead letters retried");
    Ok(Json(Retried::new(requeued, still_dead)))
}
