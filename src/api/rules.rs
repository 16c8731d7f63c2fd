//! `/api/v1/rules`: the rules in force, and `POST /api/v1/rules/{name}/preview`: the exact
//! payload each of a rule's sinks would receive, sending nothing.
//!
//! The preview's body is optional: none (or `{}`) previews sample sessions; a session object
//! (or a webhook body as devin-notify sends it) previews the events it produces as a session
//! seen for the first time; `{"session": ..., "previous": ...}` the events of the change from
//! `previous` to `session`. `"event": "TYPE"` in the body, or `?event=TYPE`, picks one event
//! type of the rule. `?session_id=ID` previews a recent session (one of the event log, see
//! `GET /api/v1/sessions`) as the store has it now, with each of the rule's changes applied.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{body, ApiError, ApiResult, Ctx};
use crate::admin::{preview_recent, preview_sessions, session_of, PreviewError, PreviewItem};
use crate::model::Session;
use crate::rules::When;

/// The answer of `GET /api/v1/rules`.
#[derive(Debug, Serialize)]
pub struct Rules {
    pub rules: Vec<RuleView>,
}

/// A rule as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct RuleView {
    pub name: String,
    pub events: Vec<String>,
    pub sinks: Vec<String>,
    pub template: Option<String>,
    pub when: When,
    pub remind_after: Option<String>,
    pub repeat_every: Option<String>,
    /// Quiet hours: the intervals that mute the rule, or outside which it is muted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mute_during: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_during: Vec<String>,
    pub collapse_held: bool,
    /// Whether the rule's deliveries are held now.
    pub muted_now: bool,
}

/// The answer of a preview.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub rule: String,
    pub items: Vec<PreviewView>,
}

/// One payload of a preview.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreviewView {
    pub sink: String,
    pub sink_type: String,
    pub event_type: String,
    /// The payload (JSON when it is JSON).
    pub payload: Value,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PreviewParams {
    event: Option<String>,
    /// A recent session to preview, by id.
    session_id: Option<String>,
}

pub(super) async fn list(State(ctx): State<Ctx>) -> ApiResult<Rules> {
    let active = ctx.active();
    let text =
        |d: Option<std::time::Duration>| d.map(|d| humantime::format_duration(d).to_string());
    let rules = active
        .config
        .rules
        .iter()
        .map(|r| RuleView {
            name: r.name.clone(),
            events: r.events.clone(),
            sinks: r.sinks.clone(),
            template: r.template.clone(),
            when: r.when.clone(),
            remind_after: text(r.remind_after),
            repeat_every: text(r.repeat_every),
            mute_during: r.mute_during.clone(),
            active_during: r.active_during.clone(),
            collapse_held: r.collapse_held,
            muted_now: active.holds(r, crate::store::now_ms()),
        })
        .collect();
    Ok(Json(Rules { rules }))
}

/// What a preview's body asks for: (event type, (session, previous)).
type Asked = (Option<String>, Option<(Session, Option<Session>)>);

fn asked(bytes: &[u8]) -> Result<Asked, ApiError> {
    let Some(value) = body::<Value>(bytes)? else {
        return Ok((None, None));
    };
    let Value::Object(mut object) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object: a session, or {\"session\": ..., \"previous\": ..., \"event\": ...}",
        ));
    };
    let event = match object.get("event") {
        Some(Value::String(e)) if !object.contains_key("session_id") => Some(e.clone()),
        _ => None,
    };
    let session = |v: Value, key: &str| {
        session_of(v).map_err(|e| ApiError::bad_request(format!("`{key}`: {e}")))
    };
    if object.contains_key("session_id") || object.contains_key("data") {
        return Ok((
            None,
            Some((session(Value::Object(object), "the body")?, None)),
        ));
    }
    let given = match object.remove("session") {
        None | Some(Value::Null) => None,
        Some(now) => {
            let previous = match object.remove("previous") {
                None | Some(Value::Null) => None,
                Some(p) => Some(session(p, "previous")?),
            };
            Some((session(now, "session")?, previous))
        }
    };
    Ok((event, given))
}

pub(super) async fn preview(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    Query(params): Query<PreviewParams>,
    bytes: Bytes,
) -> ApiResult<Preview> {
    let (event, sessions) = asked(&bytes)?;
    let event = params.event.or(event).filter(|e| !e.is_empty());
    let active = ctx.active();
    let items = match params.session_id.filter(|id| !id.is_empty()) {
        Some(id) => {
            let session = ctx.store.recent_session(&id).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("session `{id}` is not among the recent events (GET /api/v1/sessions lists them)"),
                )
            })?;
            preview_recent(&active, &name, event.as_deref(), &session)
        }
        None => preview_sessions(&active, &name, event.as_deref(), sessions),
    };
    let items = items.map_err(|e| {
        let status = match e {
            PreviewError::NoRule(..) => StatusCode::NOT_FOUND,
            PreviewError::Render { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    })?;
    Ok(Json(Preview {
        rule: name,
        items: items.into_iter().map(PreviewView::from).collect(),
    }))
}

/// The answer of `POST /api/v1/digests/{name}/preview`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DigestPreview {
    pub digest: String,
    pub items: Vec<PreviewView>,
}

/// `POST /api/v1/digests/{name}/preview`: the payload each of a digest's sinks would receive
/// now, from the store, sending nothing and writing nothing (what `preview --digest` shows).
pub(super) async fn preview_digest(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
) -> ApiResult<DigestPreview> {
    let active = ctx.active();
    let items = crate::admin::preview_digest(&active, &ctx.store, &name, crate::store::now_ms())
        .await
        .map_err(|e| {
            let status = match e {
                PreviewError::NoDigest(..) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, e.to_string())
        })?;
    Ok(Json(DigestPreview {
        digest: name,
        items: items.into_iter().map(PreviewView::from).collect(),
    }))
}

impl From<PreviewItem> for PreviewView {
    fn from(item: PreviewItem) -> PreviewView {
        PreviewView {
            payload: serde_json::from_str(&item.body).unwrap_or(Value::String(item.body)),
            sink: item.sink,
            sink_type: item.sink_type,
            event_type: item.event_type,
        }
    }
}
