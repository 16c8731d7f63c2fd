//! The Slack app sink (`type = "slack_app"`): a bot token, one channel, one thread per session.
//!
//! The first delivery of a (sink, session) posts a top-level message with `chat.postMessage`
//! and records its `ts` in the store's `threads` tree; later deliveries of that session post
//! with `thread_ts`, as replies. With `update_parent`, each reply is followed by a
//! `chat.update` of the parent with the same message, so the channel shows the session's
//! latest state; a failed update is logged, never retried.
//!
//! The payload is the rendered `slack` template (`text`, `blocks`); this module adds `channel`,
//! and `thread_ts` (replies) or `ts` (updates).
//!
//! # Ordering and crashes
//!
//! The delivery loop sends the deliveries of one (sink, session) lane one at a time, in order,
//! so the delivery that posts the parent has completed, and recorded the thread, before the
//! next one of that session is sent. The thread record is written and flushed to disk here,
//! before [`send`] returns, hence before the delivery leaves the outbox. The record also names
//! the last delivery posted in the thread: after a crash between the record and the outbox
//! removal, the redelivery finds its own id there and is not posted again (no second parent,
//! no duplicate reply). A crash between Slack's answer and the record (a window of one local
//! write) leaves the delivery queued without a record: it is posted again, as for any
//! at-least-once sink, and for a first message that means a second parent.
//!
//! # Errors
//!
//! Slack's Web API answers errors as HTTP 200 with `{"ok": false, "error": "..."}`. They are
//! classified like webhook answers: `ratelimited` (and HTTP 429, honouring `Retry-After`), 5xx
//! and Slack's own transient errors are retried; everything else is permanent and its error
//! name reaches the dead letters. `channel_not_found`, `is_archived`, `token_revoked` and
//! `account_inactive` mean the sink cannot work until an admin acts: they count as "gone",
//! which pauses the sink after a few answers in a row. The token never leaves the
//! `Authorization` header: messages name the sink and the API host only.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::SlackAppSinkConfig;
use crate::http::read_prefix;
use crate::redact::{error_chain, redact_url, snippet};
use crate::sink::{classify, Class, Failure, BODY_KEEP};
use crate::store::{Delivery, SlackThread, Store};

/// Slack errors worth retrying.
pub const TRANSIENT_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// Slack errors that mean the sink cannot post until an admin acts (the channel or the app is
/// gone): they pause the sink when repeated.
pub const GONE_ERRORS: &[&str] = &[
    "channel_not_found",
    "is_archived",
    "token_revoked",
    "account_inactive",
];

/// Slack errors of a reply whose parent is gone: the session starts a new thread.
const THREAD_ERRORS: &[&str] = &["thread_not_found", "invalid_thread_ts"];

/// The most of an answer read (a `chat.postMessage` answer echoes the message).
const ANSWER_MAX: usize = 1024 * 1024;

/// Classifies an `ok: false` error name: (class, gone). Every error not known to be
/// transient is permanent (`invalid_auth`, `not_in_channel`, `invalid_blocks`, `msg_too_long`,
/// `no_text`, `missing_scope`, ...).
pub fn classify_error(error: &str) -> (Class, bool) {
    let gone = GONE_ERRORS.contains(&error);
    let class = if TRANSIENT_ERRORS.contains(&error) {
        Class::Transient
    } else {
        Class::Permanent
    };
    (class, gone)
}

/// A failed Web API call: the failure, and Slack's error name when it gave one.
struct CallError {
    failure: Failure,
    slack_error: Option<String>,
}

/// One sink's Web API.
struct Api<'a> {
    http: &'a reqwest::Client,
    sink: &'a SlackAppSinkConfig,
    name: &'a str,
    timeout: Duration,
}

fn failure(class: Class, message: String) -> Failure {
    Failure {
        class,
        status: None,
        body: String::new(),
        message,
        retry_after: None,
        gone: false,
    }
}

/// At most [`BODY_KEEP`] bytes of `text`, cut on a character boundary.
fn keep(text: &str) -> String {
    let mut end = BODY_KEEP.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Api<'_> {
    /// POSTs `payload` to `{api_base}/{method}`; the answer when Slack said `ok: true`.
    async fn call(&self, method: &str, payload: &Map<String, Value>) -> Result<Value, CallError> {
        let url = format!("{}/{method}", self.sink.api_base.trim_end_matches('/'));
        let place = format!("sink `{}` ({}) {method}", self.name, redact_url(&url));
        let name = self.name;
        let plain = |failure| CallError {
            failure,
            slack_error: None,
        };
        let body = serde_json::to_string(payload).map_err(|e| {
            plain(failure(
                Class::Permanent,
                format!("{place}: cannot encode the payload: {e}"),
            ))
        })?;
        let response = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .bearer_auth(self.sink.token.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                plain(failure(
                    Class::Transient,
                    if e.is_timeout() {
                        format!("{place}: no answer in time")
                    } else {
                        format!("{place}: {}", error_chain(&e.without_url()))
                    },
                ))
            })?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(response.headers());
        let text = read_prefix(response, ANSWER_MAX).await;
        if !(200..300).contains(&status) {
            let (class, gone) = classify(status, &text);
            return Err(plain(Failure {
                class,
                status: Some(status),
                message: format!("{place}: HTTP {status}: {}", snippet(text.as_bytes())),
                body: keep(&text),
                retry_after,
                gone,
            }));
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match answer.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(answer),
            Some(false) => {
                let error = answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown_error")
                    .to_owned();
                let (class, gone) = classify_error(&error);
                let needed = answer
                    .get("needed")
                    .and_then(Value::as_str)
                    .map(|scope| format!(" (the token needs the scope `{scope}`)"))
                    .unwrap_or_default();
                Err(CallError {
                    failure: Failure {
                        class,
                        status: Some(status),
                        // The error first: it is what `sinks list` and the dead letters show.
                        message: format!(
                            "sink `{name}`: Slack error `{error}`{needed} from {method} ({})",
                            redact_url(&url)
                        ),
                        body: keep(&text),
                        retry_after,
                        gone,
                    },
                    slack_error: Some(error),
                })
            }
            // Not the Web API (a proxy's page?): whether it posted is unknown; try again.
            None => Err(plain(Failure {
                class: Class::Transient,
                status: Some(status),
                message: format!(
                    "{place}: HTTP {status} without a Slack answer (`ok`): {}",
                    snippet(text.as_bytes())
                ),
                body: keep(&text),
                retry_after,
                gone: false,
            })),
        }
    }
}

/// Records a thread and makes it durable; a failure is logged (the delivery was posted: failing
/// it now would post it twice).
async fn record(store: &Store, delivery: &Delivery, thread: &SlackThread) {
    let written = match store.set_slack_thread(&delivery.sink, &delivery.session_id, thread) {
        Ok(()) => store.flush().await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(sink = %delivery.sink, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e, "cannot record the Slack thread; the session's next message may start a new thread");
    }
}

/// Sends one delivery of a Slack app sink: a new parent message, or a reply in the session's
/// thread (then, with `update_parent`, an update of the parent). `Ok(200)` once posted (or
/// recognised as posted before a crash).
pub async fn send(
    http: &reqwest::Client,
    store: &Store,
    sink: &SlackAppSinkConfig,
    delivery: &Delivery,
    timeout: Duration,
) -> Result<u16, Failure> {
    let name = delivery.sink.as_str();
    let api = Api {
        http,
        sink,
        name,
        timeout,
    };
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(&delivery.body) else {
        return Err(failure(
            Class::Permanent,
            format!("sink `{name}`: the payload is not a JSON object"),
        ));
    };
    let thread = store
        .slack_thread(name, &delivery.session_id)
        .map_err(|e| failure(Class::Transient, format!("sink `{name}`: {e}")))?
        // A thread started in another channel (the config changed) is not continued.
        .filter(|t| t.configured_channel == sink.channel);

    if let Some(thread) = thread {
        if thread.last_delivery == delivery.id {
            tracing::info!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, "already posted in its Slack thread (before a restart); not posted again");
            return Ok(200);
        }
        let mut reply = message.clone();
        reply.remove("ts");
        reply.insert("channel".into(), Value::String(thread.channel.clone()));
        reply.insert("thread_ts".into(), Value::String(thread.ts.clone()));
        match api.call("chat.postMessage", &reply).await {
            Ok(_) => {
                let ts = thread.ts.clone();
                let channel = thread.channel.clone();
                record(
                    store,
                    delivery,
                    &SlackThread {
                        last_delivery: delivery.id.clone(),
                        ..thread
                    },
                )
                .await;
                if sink.update_parent {
                    let mut update = message;
                    update.remove("thread_ts");
                    update.insert("channel".into(), Value::String(channel));
                    update.insert("ts".into(), Value::String(ts));
                    if let Err(e) = api.call("chat.update", &update).await {
                        tracing::warn!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e.failure.message, "the reply was posted, but its parent message could not be updated");
                    }
                }
                return Ok(200);
            }
            Err(e)
                if e.slack_error
                    .as_deref()
                    .is_some_and(|err| THREAD_ERRORS.contains(&err)) =>
            {
                tracing::warn!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e.failure.message, "the session's Slack thread is gone; starting a new one");
            }
            Err(e) => return Err(e.failure),
        }
    }

    let mut parent = message;
    parent.remove("thread_ts");
    parent.remove("ts");
    parent.insert("channel".into(), Value::String(sink.channel.clone()));
    let answer = api
        .call("chat.postMessage", &parent)
        .await
        .map_err(|e| e.failure)?;
    match answer.get("ts").and_then(Value::as_str) {
        Some(ts) => {
            let channel = answer
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or(&sink.channel);
            record(
                store,
                delivery,
                &SlackThread {
                    configured_channel: sink.channel.clone(),
                    channel: channel.to_owned(),
                    ts: ts.to_owned(),
                    last_delivery: delivery.id.clone(),
                },
            )
            .await;
        }
        None => {
            tracing::warn!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, "Slack answered without the message's ts; the session's next message starts a new thread");
        }
    }
    Ok(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        assert_eq!(classify_error("ratelimited"), (Class::Transient, false));
        assert_eq!(classify_error("internal_error"), (Class::Transient, false));
        for e in GONE_ERRORS {
            assert_eq!(classify_error(e), (Class::Permanent, true), "{e}");
        }
        for e in [
            "invalid_auth",
            "not_in_channel",
            "invalid_blocks",
            "invalid_arguments",
            "msg_too_long",
            "no_text",
            "missing_scope",
            "something_new",
        ] {
            assert_eq!(classify_error(e), (Class::Permanent, false), "{e}");
        }
    }

    #[test]
    fn kept_bodies_are_cut_on_a_character_boundary() {
        let text = "é".repeat(BODY_KEEP);
        let kept = keep(&text);
        assert!(kept.len() <= BODY_KEEP && kept.chars().all(|c| c == 'é'));
    }
}
