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
//! before [`SlackApp::send`] returns, hence before the delivery leaves the outbox. The record also names
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

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{classify, transport_failure, Class, Failure, Verdict, BODY_KEEP};
use crate::config::is_slack_user_id;
use crate::config::SlackAppSinkConfig;
use crate::http::read_prefix;
use crate::people::{Directory, Who};
use crate::redact::{redact_url, snippet};
use crate::store::{now_ms, CachedPerson, Delivery, SlackThread, Store};

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

/// Classifies an `ok: false` error name. Every error not known to be transient or "gone" is
/// permanent (`invalid_auth`, `not_in_channel`, `invalid_blocks`, `msg_too_long`, `no_text`,
/// `missing_scope`, ...).
pub fn classify_error(error: &str) -> Class {
    if GONE_ERRORS.contains(&error) {
        Class::Gone
    } else if TRANSIENT_ERRORS.contains(&error) {
        Class::Retry
    } else {
        Class::GiveUp
    }
}

/// A failed Web API call: how to handle it, the failure, and Slack's error name when it gave
/// one.
struct CallError {
    class: Class,
    failure: Failure,
    slack_error: Option<String>,
}

impl CallError {
    fn verdict(self) -> Verdict {
        self.class.verdict(self.failure)
    }

    /// The verdict of a post to one person (a direct message, `one_person`): a channel that
    /// is gone there (`channel_not_found`, `is_archived`: a deactivated user...) fails that
    /// delivery alone, to the dead letters, instead of pausing the sink for everyone.
    fn verdict_for(self, one_person: bool) -> Verdict {
        let per_channel = ["channel_not_found", "is_archived"];
        match self.slack_error.as_deref() {
            Some(err) if one_person && per_channel.contains(&err) => Verdict::GiveUp(self.failure),
            _ => self.verdict(),
        }
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

/// A Slack app sink, ready to send.
pub struct SlackApp {
    http: reqwest::Client,
    name: String,
    config: SlackAppSinkConfig,
    /// Who the sessions' creators are (`to = "creator"`).
    directory: Arc<Directory>,
}

impl SlackApp {
    pub fn new(
        http: &reqwest::Client,
        name: &str,
        config: &SlackAppSinkConfig,
        directory: Arc<Directory>,
    ) -> SlackApp {
        SlackApp {
            http: http.clone(),
            name: name.to_owned(),
            config: config.clone(),
            directory,
        }
    }

    /// Sends one delivery: a new parent message, or a reply in the session's thread (then, with
    /// `update_parent`, an update of the parent). Delivered once posted (or recognised as
    /// posted before a crash).
    pub async fn send(&self, store: &Store, delivery: &Delivery, timeout: Duration) -> Verdict {
        let name = self.name.as_str();
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(&delivery.body) else {
            return Verdict::GiveUp(Failure::unanswered(format!(
                "sink `{name}`: the payload is not a JSON object"
            )));
        };
        let target = if self.config.to_creator() {
            match self.recipient(store, delivery, timeout).await {
                Ok(target) => target,
                Err(verdict) => return verdict,
            }
        } else {
            self.config.channel.clone().unwrap_or_default()
        };
        // A direct message to one person whose channel is gone fails for that person only.
        let one_person = self.config.to_creator()
            && self.config.fallback_channel.as_deref() != Some(target.as_str());
        let thread = match store.slack_thread(name, thread_key(delivery)).await {
            Ok(thread) => thread,
            Err(e) => return Verdict::Retry(Failure::unanswered(format!("sink `{name}`: {e}"))),
        };
        // A thread started in another channel (the config changed) is not continued.
        if let Some(thread) = thread.filter(|t| t.configured_channel == target) {
            if thread.last_delivery == delivery.id {
                tracing::info!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, "already posted in its Slack thread (before a restart); not posted again");
                return Verdict::Delivered { status: 200 };
            }
            match self.reply(store, delivery, &message, thread, timeout).await {
                Ok(()) => return Verdict::Delivered { status: 200 },
                Err(e)
                    if !e
                        .slack_error
                        .as_deref()
                        .is_some_and(|err| THREAD_ERRORS.contains(&err)) =>
                {
                    return e.verdict_for(one_person)
                }
                Err(e) => {
                    tracing::warn!(sink = %name, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e.failure.message, "the session's Slack thread is gone; starting a new one");
                }
            }
        }
        match self
            .parent(store, delivery, message, &target, timeout)
            .await
        {
            Ok(()) => Verdict::Delivered { status: 200 },
            Err(e) => e.verdict_for(one_person),
        }
    }

    /// Posts a reply in the session's thread and records it; then updates the parent when the
    /// sink asks for it (a failed update is logged, never retried).
    async fn reply(
        &self,
        store: &Store,
        delivery: &Delivery,
        message: &Map<String, Value>,
        thread: SlackThread,
        timeout: Duration,
    ) -> Result<(), CallError> {
        let mut reply = message.clone();
        reply.remove("ts");
        reply.insert("channel".into(), Value::String(thread.channel.clone()));
        reply.insert("thread_ts".into(), Value::String(thread.ts.clone()));
        self.call("chat.postMessage", &reply, timeout).await?;
        let (ts, channel) = (thread.ts.clone(), thread.channel.clone());
        let posted = SlackThread {
            last_delivery: delivery.id.clone(),
            ..thread
        };
        record(store, delivery, &posted).await;
        if self.config.update_parent {
            let mut update = message.clone();
            update.remove("thread_ts");
            update.insert("channel".into(), Value::String(channel));
            update.insert("ts".into(), Value::String(ts));
            if let Err(e) = self.call("chat.update", &update, timeout).await {
                tracing::warn!(sink = %self.name, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e.failure.message, "the reply was posted, but its parent message could not be updated");
            }
        }
        Ok(())
    }

    /// Posts a new parent message in `channel` (the sink's, or the creator's user id) and
    /// records the session's thread.
    async fn parent(
        &self,
        store: &Store,
        delivery: &Delivery,
        mut parent: Map<String, Value>,
        channel: &str,
        timeout: Duration,
    ) -> Result<(), CallError> {
        parent.remove("thread_ts");
        parent.remove("ts");
        parent.insert("channel".into(), Value::String(channel.to_owned()));
        let answer = self.call("chat.postMessage", &parent, timeout).await?;
        let Some(ts) = answer.get("ts").and_then(Value::as_str) else {
            tracing::warn!(sink = %self.name, session_id = %delivery.session_id, delivery_id = %delivery.id, "Slack answered without the message's ts; the session's next message starts a new thread");
            return Ok(());
        };
        let thread = SlackThread {
            configured_channel: channel.to_owned(),
            channel: answer
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or(channel)
                .to_owned(),
            ts: ts.to_owned(),
            last_delivery: delivery.id.clone(),
        };
        record(store, delivery, &thread).await;
        Ok(())
    }

    /// POSTs `payload` to `{api_base}/{method}`; the answer when Slack said `ok: true`.
    async fn call(
        &self,
        method: &str,
        payload: &Map<String, Value>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let url = format!("{}/{method}", self.config.api_base.trim_end_matches('/'));
        let place = format!("sink `{}` ({}) {method}", self.name, redact_url(&url));
        let plain = |class, failure| CallError {
            class,
            failure,
            slack_error: None,
        };
        let body = serde_json::to_string(payload).map_err(|e| {
            let message = format!("{place}: cannot encode the payload: {e}");
            plain(Class::GiveUp, Failure::unanswered(message))
        })?;
        let request = self
            .http
            .post(&url)
            .timeout(timeout)
            .bearer_auth(self.config.token.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body);
        self.answer(method, &url, request).await
    }

    /// Sends a Web API request and judges the answer: Slack's answer when `ok: true`.
    async fn answer(
        &self,
        method: &str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, CallError> {
        let place = format!("sink `{}` ({}) {method}", self.name, redact_url(url));
        let plain = |class, failure| CallError {
            class,
            failure,
            slack_error: None,
        };
        let response = request
            .send()
            .await
            .map_err(|e| plain(Class::Retry, transport_failure(&place, e)))?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(response.headers());
        let text = read_prefix(response, ANSWER_MAX).await;
        let failure = |message| Failure {
            status: Some(status),
            message,
            body: keep(&text),
            retry_after,
        };
        if !(200..300).contains(&status) {
            let message = format!("{place}: HTTP {status}: {}", snippet(text.as_bytes()));
            return Err(plain(classify(status, &text), failure(message)));
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
                let needed = answer
                    .get("needed")
                    .and_then(Value::as_str)
                    .map(|scope| format!(" (the token needs the scope `{scope}`)"))
                    .unwrap_or_default();
                // The error first: it is what `sinks list` and the dead letters show.
                let message = format!(
                    "sink `{}`: Slack error `{error}`{needed} from {method} ({})",
                    self.name,
                    redact_url(url)
                );
                Err(CallError {
                    class: classify_error(&error),
                    failure: failure(message),
                    slack_error: Some(error),
                })
            }
            // Not the Web API (a proxy's page?): whether it posted is unknown; try again.
            None => {
                let message = format!(
                    "{place}: HTTP {status} without a Slack answer (`ok`): {}",
                    snippet(text.as_bytes())
                );
                Err(plain(Class::Retry, failure(message)))
            }
        }
    }
}

impl SlackApp {
    /// Where a `to = "creator"` delivery goes: the creator's Slack user id, else
    /// `fallback_channel`; without one, the dead letters with the reason (the `Err` verdict,
    /// also used for transient failures of a lookup).
    async fn recipient(
        &self,
        store: &Store,
        delivery: &Delivery,
        timeout: Duration,
    ) -> Result<String, Verdict> {
        let reason = match &delivery.creator {
            None => "the event has no creator (not a session, or a session without user_id)".into(),
            Some(creator) => match self.creator_user(store, creator, timeout).await? {
                Ok(user) => return Ok(user),
                Err(reason) => reason,
            },
        };
        match &self.config.fallback_channel {
            Some(channel) => {
                tracing::info!(sink = %self.name, session_id = %delivery.session_id, delivery_id = %delivery.id, reason = %reason, "the session's creator cannot be reached directly; sending to fallback_channel");
                Ok(channel.clone())
            }
            None => Err(Verdict::GiveUp(Failure::unanswered(format!(
                "sink `{}`: cannot reach the session's creator: {reason} (no fallback_channel)",
                self.name
            )))),
        }
    }

    /// The Slack user id of a creator (`Ok(Err(reason))`: not resolvable), from the store's
    /// cache while fresh, else looked up and cached (negative results too). One lookup at a
    /// time, so many deliveries of one creator make one lookup.
    async fn creator_user(
        &self,
        store: &Store,
        creator: &str,
        timeout: Duration,
    ) -> Result<Result<String, String>, Verdict> {
        let name = &self.name;
        let listed = self.directory.listed(creator).cloned();
        // A Slack user id in [people] is the answer: no lookup, no cache.
        if let Some(id) = listed.as_ref().filter(|v| is_slack_user_id(v)) {
            return Ok(Ok(id.clone()));
        }
        // A fresh cached outcome needs no lock; a lookup takes it, then looks at the cache
        // again (another delivery of the same creator may have just looked them up).
        if let Some(known) = self.cached(store, creator, &listed).await? {
            return Ok(known);
        }
        let _one_at_a_time = self.directory.lookups.lock().await;
        if let Some(known) = self.cached(store, creator, &listed).await? {
            return Ok(known);
        }
        let found = match self.directory.who(creator).await {
            Err(transient) => {
                let message =
                    format!("sink `{name}`: looking up the session's creator: {transient}");
                return Err(Verdict::Retry(Failure::unanswered(message)));
            }
            Ok(Who::SlackUser(id)) => Ok(id),
            Ok(Who::Unknown(reason)) => Err(reason),
            Ok(Who::Email(email)) => match self.lookup_by_email(&email, timeout).await {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(format!(
                    "no Slack user has the email of Devin user `{creator}`"
                )),
                Err(e) => return Err(e.verdict()),
            },
        };
        let cached = CachedPerson {
            slack_user: found.clone().ok(),
            reason: found.clone().err(),
            at_ms: now_ms(),
            listed,
        };
        if let Err(e) = store.cache_person(name, creator, &cached).await {
            tracing::warn!(sink = %name, error = %e, "cannot cache a creator lookup");
        }
        tracing::info!(sink = %name, creator = %creator, found = found.is_ok(), "creator looked up");
        Ok(found)
    }

    /// The cached outcome of looking `creator` up, while fresh and made from the same
    /// `[people]` entry.
    async fn cached(
        &self,
        store: &Store,
        creator: &str,
        listed: &Option<String>,
    ) -> Result<Option<Result<String, String>>, Verdict> {
        let ttl_ms = self.config.lookup_ttl().as_millis() as u64;
        match store.cached_person(&self.name, creator).await {
            Ok(Some(c)) if now_ms().saturating_sub(c.at_ms) < ttl_ms && c.listed == *listed => {
                Ok(Some(c.slack_user.ok_or(c.reason.unwrap_or_default())))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(Verdict::Retry(Failure::unanswered(format!(
                "sink `{}`: {e}",
                self.name
            )))),
        }
    }

    /// `users.lookupByEmail` (scope `users:read.email`): the user's id, `None` when Slack
    /// knows no user with that email.
    async fn lookup_by_email(
        &self,
        email: &str,
        timeout: Duration,
    ) -> Result<Option<String>, CallError> {
        let method = "users.lookupByEmail";
        let url = format!("{}/{method}", self.config.api_base.trim_end_matches('/'));
        let request = self
            .http
            .get(&url)
            .query(&[("email", email)])
            .timeout(timeout)
            .bearer_auth(self.config.token.expose());
        match self.answer(method, &url, request).await {
            Ok(answer) => Ok(answer["user"]["id"].as_str().map(str::to_owned)),
            Err(e) if e.slack_error.as_deref() == Some("users_not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Where a delivery's Slack thread is recorded: a session's messages share the session's
/// thread; anything else (Devin's queue, the daily spend, a digest, a summary of held
/// messages) is a parent message of its own, recorded under its delivery id so that a
/// restart never posts it twice, and never buried in an earlier alert's thread.
fn thread_key(delivery: &Delivery) -> &str {
    let about_session =
        crate::event::EventType::parse(&delivery.event_type).is_some_and(|k| k.about_session());
    if about_session {
        &delivery.session_id
    } else {
        &delivery.id
    }
}

/// Records a thread and makes it durable; a failure is logged (the delivery was posted: failing
/// it now would post it twice).
async fn record(store: &Store, delivery: &Delivery, thread: &SlackThread) {
    let written = match store
        .set_slack_thread(&delivery.sink, thread_key(delivery), thread)
        .await
    {
        Ok(()) => store.flush().await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(sink = %delivery.sink, session_id = %delivery.session_id, delivery_id = %delivery.id, error = %e, "cannot record the Slack thread; the session's next message may start a new thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        assert_eq!(classify_error("ratelimited"), Class::Retry);
        assert_eq!(classify_error("internal_error"), Class::Retry);
        for e in GONE_ERRORS {
            assert_eq!(classify_error(e), Class::Gone, "{e}");
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
            assert_eq!(classify_error(e), Class::GiveUp, "{e}");
        }
    }

    #[test]
    fn kept_bodies_are_cut_on_a_character_boundary() {
        let text = "é".repeat(BODY_KEEP);
        let kept = keep(&text);
        assert!(kept.len() <= BODY_KEEP && kept.chars().all(|c| c == 'é'));
    }
}
