//! `/api/v1/dead-letters`: list (`?sink=`), one, retry, purge; and the bulk forms the
//! `dead-letters` command uses (`{"ids": [...]}`, `{"all": true}` or `{"sink": "NAME"}`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::sinks::Retried;
use super::{body, ApiError, ApiResult, Ctx, Which};
use crate::admin::view::{self, secrets_of, DeadLetterView};
use crate::admin::{self, purge_text, Selection};

/// The answer of `GET /api/v1/dead-letters`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetterView>,
}

/// The answer of a purge.
#[derive(Debug, Serialize)]
pub struct Purged {
    pub purged: usize,
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Filter {
    sink: Option<String>,
}

pub(super) async fn list(
    State(ctx): State<Ctx>,
    Query(filter): Query<Filter>,
) -> ApiResult<DeadLetters> {
    let active = ctx.active();
    let sink = filter.sink.as_deref().filter(|s| !s.is_empty());
    let dead_letters = view::dead_letters(&ctx.store, &active.config, sink).await?;
    Ok(Json(DeadLetters { dead_letters }))
}

pub(super) async fn one(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> ApiResult<DeadLetterView> {
    let active = ctx.active();
    let (seq, letter) = ctx
        .store
        .find_dead(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter with id {id}")))?;
    Ok(Json(view::dead_letter(
        seq,
        &letter,
        &secrets_of(&active.config),
    )))
}

async fn retry_selected(ctx: &Ctx, which: Selection) -> ApiResult<Retried> {
    let active = ctx.active();
    let (requeued, still_dead) = admin::retry_dead_letters(&ctx.store, &active, &which).await?;
    ctx.wake.notify_one();
    tracing::info!(requeued, "admin API: dead letters retried");
    Ok(Json(Retried::new(requeued, still_dead)))
}

async fn purge_selected(ctx: &Ctx, which: Selection) -> ApiResult<Purged> {
    let purged = admin::purge_dead_letters(&ctx.store, &which).await?;
    tracing::info!(purged, "admin API: dead letters purged");
    Ok(Json(Purged {
        purged,
        message: purge_text(purged),
    }))
}

pub(super) async fn retry(State(ctx): State<Ctx>, Path(id): Path<String>) -> ApiResult<Retried> {
    retry_selected(&ctx, Selection::Ids(vec![id])).await
}

pub(super) async fn purge(State(ctx): State<Ctx>, Path(id): Path<String>) -> ApiResult<Purged> {
    purge_selected(&ctx, Selection::Ids(vec![id])).await
}

fn which(bytes: &[u8]) -> Result<Selection, ApiError> {
    let which: Option<Which> = body(bytes)?;
    match which.map(Which::selection) {
        Some(Selection::Ids(ids)) if ids.is_empty() => None,
        selection => selection,
    }
    .ok_or_else(|| {
        ApiError::bad_request("the request body must name the dead letters: {\"ids\": [...]}, {\"all\": true} or {\"sink\": \"NAME\"}")
    })
}

pub(super) async fn retry_many(State(ctx): State<Ctx>, bytes: Bytes) -> ApiResult<Retried> {
    retry_selected(&ctx, which(&bytes)?).await
}

pub(super) async fn purge_many(State(ctx): State<Ctx>, bytes: Bytes) -> ApiResult<Purged> {
    purge_selected(&ctx, which(&bytes)?).await
}
