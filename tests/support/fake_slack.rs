//! A fake Slack Web API on 127.0.0.1: `chat.postMessage` and `chat.update` under
//! `http://127.0.0.1:PORT/api/`, as a bot token sees them.
//!
//! It checks the bearer token (`not_authed`, `invalid_auth`), the JSON body and the channel
//! (`channel_not_found`, `is_archived`), stores messages and thread replies with increasing
//! `ts` values, and answers `{"ok": true, ...}` or Slack's `{"ok": false, "error": ...}`.
//! `users.lookupByEmail` (GET, `?email=`) finds the users added with [`FakeSlack::add_user`]
//! (`users_not_found` otherwise), and `chat.postMessage` to a user id (`U...`) posts in the
//! direct-message channel [`dm_channel`] of a known user. Replies can be scripted per method: an `ok: false` error, `ratelimited` with
//! `Retry-After`, HTTP 429 or 5xx, or a stall. Every call is recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::ConnHandle;

/// The channel every fake starts with: (name, id).
pub const CHANNEL: (&str, &str) = ("devin-notify", "C0DEVIN01");

/// How the fake answers one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackReply {
    /// Process the call as Slack would.
    Normal,
    /// HTTP 200 `{"ok": false, "error": NAME}`; nothing is stored.
    Error(String),
    /// HTTP 200 `{"ok": false, "error": "ratelimited"}` with `Retry-After: SECS`.
    RateLimited(u64),
    /// HTTP 429 with `Retry-After: SECS`.
    TooMany(u64),
    /// This HTTP status with a text body; nothing is stored.
    Status(u16, String),
    /// Process the call (a message is stored), but answer only after this long.
    Stall(Duration),
}

impl SlackReply {
    /// `{"ok": false, "error": NAME}`.
    pub fn error(name: &str) -> SlackReply {
        SlackReply::Error(name.to_owned())
    }
}

/// One call the fake got.
#[derive(Clone, Debug)]
pub struct SlackCall {
    pub seq: usize,
    /// `chat.postMessage`, `chat.update`, ...
    pub method: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
    /// The body as received.
    pub raw: String,
    pub replied: SlackReply,
    /// The JSON answered (`Null` for a bare HTTP status).
    pub answer: Value,
    pub at: Instant,
}

impl SlackCall {
    /// Whether Slack answered `ok: true`.
    pub fn ok(&self) -> bool {
        self.answer["ok"] == json!(true)
    }
}

/// A message in a channel (a parent or a thread reply), as last edited.
#[derive(Clone, Debug)]
pub struct SlackMessage {
    /// The channel id.
    pub channel: String,
    pub ts: String,
    /// The parent's ts, for a reply.
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Value,
    /// How many times `chat.update` changed it.
    pub edits: u32,
}

#[derive(Clone, Debug)]
struct Channel {
    id: String,
    archived: bool,
}

struct State {
    token: String,
    /// By name.
    channels: BTreeMap<String, Channel>,
    messages: Vec<SlackMessage>,
    calls: Vec<SlackCall>,
    scripts: HashMap<String, VecDeque<SlackReply>>,
    next_ts: u64,
    /// email -> user id.
    users: BTreeMap<String, String>,
}

/// The id of the direct-message channel with a user (`U123` -> `D123`).
pub fn dm_channel(user_id: &str) -> String {
    format!("D{}", &user_id[1.min(user_id.len())..])
}

struct Inner {
    base_url: String,
    state: Mutex<State>,
    notify: Notify,
}

/// The fake Web API. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Inner>,
}

impl FakeSlack {
    /// Starts a fake that accepts `token` and knows the channel [`CHANNEL`].
    pub async fn start(token: &str) -> FakeSlack {
        let cell: Arc<std::sync::OnceLock<FakeSlack>> = Arc::new(std::sync::OnceLock::new());
        let for_router = cell.clone();
        let router = Router::new()
            .fallback(
                move |_conn: ConnectInfo<ConnHandle>, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let fake = for_router.get().cloned();
                    async move {
                        match fake {
                            Some(fake) => fake.handle(uri, headers, body).await,
                            None => status(503, "fake Slack not ready"),
                        }
                    }
                },
            )
            .layer(DefaultBodyLimit::disable());
        let addr = super::serve_killable(router).await;
        let mut channels = BTreeMap::new();
        channels.insert(
            CHANNEL.0.to_owned(),
            Channel {
                id: CHANNEL.1.to_owned(),
                archived: false,
            },
        );
        let fake = FakeSlack {
            inner: Arc::new(Inner {
                base_url: format!("http://{addr}"),
                state: Mutex::new(State {
                    token: token.to_owned(),
                    channels,
                    messages: Vec::new(),
                    calls: Vec::new(),
                    scripts: HashMap::new(),
                    next_ts: 1,
                    users: BTreeMap::new(),
                }),
                notify: Notify::new(),
            }),
        };
        let _ = cell.set(fake.clone());
        fake
    }

    /// `http://127.0.0.1:PORT/api`: the sink's `api_base`.
    pub fn api_base(&self) -> String {
        format!("{}/api", self.inner.base_url)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or un-archives) a channel.
    pub fn add_channel(&self, name: &str, id: &str) {
        self.state().channels.insert(
            name.to_owned(),
            Channel {
                id: id.to_owned(),
                archived: false,
            },
        );
    }

    /// Adds a workspace user: `users.lookupByEmail` finds it, and a post to its id lands in
    /// its direct-message channel ([`dm_channel`]).
    pub fn add_user(&self, email: &str, id: &str) {
        let mut st = self.state();
        st.users.insert(email.to_owned(), id.to_owned());
        st.channels.insert(
            format!("dm-{id}"),
            Channel {
                id: dm_channel(id),
                archived: false,
            },
        );
    }

    /// Archives a channel: posts to it answer `is_archived`.
    pub fn archive(&self, name: &str) {
        if let Some(c) = self.state().channels.get_mut(name) {
            c.archived = true;
        }
    }

    /// The next calls of `method` get these replies in order, then [`SlackReply::Normal`].
    pub fn script(&self, method: &str, replies: Vec<SlackReply>) {
        self.state()
            .scripts
            .insert(method.to_owned(), replies.into());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<SlackCall> {
        self.state().calls.clone()
    }

    /// Every call of one method.
    pub fn calls_to(&self, method: &str) -> Vec<SlackCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Every stored message, in posting order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.state().messages.clone()
    }

    /// The top-level messages of a channel (by id), oldest first.
    pub fn parents(&self, channel_id: &str) -> Vec<SlackMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel == channel_id && m.thread_ts.is_none())
            .collect()
    }

    /// The replies in the thread of `ts`, oldest first.
    pub fn replies(&self, ts: &str) -> Vec<SlackMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    /// The message with this ts.
    pub fn message(&self, ts: &str) -> Option<SlackMessage> {
        self.messages().into_iter().find(|m| m.ts == ts)
    }

    /// Waits until `pred` holds on the calls; returns them. Panics on timeout, listing them.
    pub async fn wait_calls(
        &self,
        mut pred: impl FnMut(&[SlackCall]) -> bool,
        timeout: Duration,
    ) -> Vec<SlackCall> {
        let found = super::wait_notified(&self.inner.notify, timeout, || {
            let st = self.state();
            pred(&st.calls).then(|| st.calls.clone())
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "FakeSlack: waited {timeout:?}; calls:\n{}",
                describe(&self.calls())
            )
        })
    }

    async fn handle(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let method = uri
            .path()
            .strip_prefix("/api/")
            .unwrap_or(uri.path())
            .to_owned();
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let authorization = header("authorization");
        let content_type = header("content-type");
        let raw = String::from_utf8_lossy(&body).into_owned();
        let mut parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        if method == "users.lookupByEmail" {
            // A read method: its arguments come in the query string.
            let query = super::fake_devin::parse_query(uri.query().unwrap_or(""));
            parsed = Value::Object(
                query
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
        }
        let (reply, response) = {
            let mut st = self.state();
            let reply = st
                .scripts
                .get_mut(&method)
                .and_then(VecDeque::pop_front)
                .unwrap_or(SlackReply::Normal);
            let (response, answer) = match &reply {
                SlackReply::Normal | SlackReply::Stall(_) => {
                    let answer = st.process(
                        &method,
                        authorization.as_deref(),
                        content_type.as_deref(),
                        &parsed,
                    );
                    (json_response(200, &answer, None), answer)
                }
                SlackReply::Error(name) => {
                    let answer = json!({"ok": false, "error": name});
                    (json_response(200, &answer, None), answer)
                }
                SlackReply::RateLimited(secs) => {
                    let answer = json!({"ok": false, "error": "ratelimited"});
                    (json_response(200, &answer, Some(*secs)), answer)
                }
                SlackReply::TooMany(secs) => (
                    Response::builder()
                        .status(429)
                        .header("retry-after", secs.to_string())
                        .body(Body::empty())
                        .expect("429"),
                    Value::Null,
                ),
                SlackReply::Status(code, text) => (status(*code, text), Value::Null),
            };
            let seq = st.calls.len();
            st.calls.push(SlackCall {
                seq,
                method,
                authorization,
                content_type,
                body: parsed,
                raw,
                replied: reply.clone(),
                answer,
                at: Instant::now(),
            });
            (reply, response)
        };
        self.inner.notify.notify_waiters();
        if let SlackReply::Stall(d) = reply {
            tokio::time::sleep(d).await;
        }
        response
    }
}

impl State {
    /// Slack's behaviour for one call: the JSON answer.
    fn process(
        &mut self,
        method: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &Value,
    ) -> Value {
        let fail = |error: &str| json!({"ok": false, "error": error});
        match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
            None => return fail("not_authed"),
            Some(t) if t != self.token => return fail("invalid_auth"),
            Some(_) => {}
        }
        if method == "users.lookupByEmail" {
            // A read method (its arguments in the query string): no body type to check.
            let email = body.get("email").and_then(Value::as_str).unwrap_or("");
            return match self.users.get(email) {
                Some(id) => json!({"ok": true, "user": {"id": id, "profile": {"email": email}}}),
                None => fail("users_not_found"),
            };
        }
        if !content_type.is_some_and(|c| c.starts_with("application/json")) {
            return fail("invalid_post_type");
        }
        let Some(args) = body.as_object() else {
            return fail("invalid_json");
        };
        let text = args.get("text").and_then(Value::as_str).map(str::to_owned);
        let blocks = args.get("blocks").cloned().unwrap_or(Value::Null);
        if text.is_none() && blocks.is_null() {
            return fail("no_text");
        }
        if !(blocks.is_null() || blocks.is_array()) {
            return fail("invalid_blocks");
        }
        let mut channel_arg = args.get("channel").and_then(Value::as_str).unwrap_or("");
        // A post to a user id goes to the direct-message channel with that user.
        let dm = dm_channel(channel_arg);
        if channel_arg.starts_with('U') && self.users.values().any(|u| u == channel_arg) {
            channel_arg = &dm;
        }
        let by_id = self.channels.values().find(|c| c.id == channel_arg);
        let channel = match method {
            // chat.update takes channel ids only.
            "chat.update" => by_id.cloned(),
            _ => by_id.cloned().or_else(|| {
                self.channels
                    .get(channel_arg.trim_start_matches('#'))
                    .cloned()
            }),
        };
        let Some(channel) = channel else {
            return fail("channel_not_found");
        };
        if channel.archived {
            return fail("is_archived");
        }
        match method {
            "chat.postMessage" => {
                let thread_ts = args
                    .get("thread_ts")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(parent) = &thread_ts {
                    let known = self.messages.iter().any(|m| {
                        m.channel == channel.id && &m.ts == parent && m.thread_ts.is_none()
                    });
                    if !known {
                        return fail("thread_not_found");
                    }
                }
                let ts = format!("1700000000.{:06}", self.next_ts);
                self.next_ts += 1;
                self.messages.push(SlackMessage {
                    channel: channel.id.clone(),
                    ts: ts.clone(),
                    thread_ts,
                    text: text.clone(),
                    blocks: blocks.clone(),
                    edits: 0,
                });
                json!({
                    "ok": true,
                    "channel": channel.id,
                    "ts": ts,
                    "message": {"type": "message", "text": text, "blocks": blocks, "ts": ts},
                })
            }
            "chat.update" => {
                let ts = args.get("ts").and_then(Value::as_str).unwrap_or("");
                let Some(message) = self
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel.id && m.ts == ts)
                else {
                    return fail("message_not_found");
                };
                message.text = text.clone();
                message.blocks = blocks;
                message.edits += 1;
                json!({"ok": true, "channel": channel.id, "ts": ts, "text": text})
            }
            _ => fail("unknown_method"),
        }
    }
}

fn json_response(code: u16, answer: &Value, retry_after: Option<u64>) -> Response {
    let mut builder = Response::builder()
        .status(code)
        .header("content-type", "application/json; charset=utf-8");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder
        .body(Body::from(answer.to_string()))
        .expect("FakeSlack: response")
}

fn status(code: u16, text: &str) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Body::from(text.to_owned()))
        .expect("FakeSlack: invalid scripted status")
}

fn describe(calls: &[SlackCall]) -> String {
    calls
        .iter()
        .map(|c| format!("  #{} {} {:?} -> {}", c.seq, c.method, c.replied, c.answer))
        .collect::<Vec<_>>()
        .join("\n")
}
