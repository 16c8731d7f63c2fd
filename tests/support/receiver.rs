//! A recording HTTP receiver on 127.0.0.1 with scripted replies.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

use super::ConnHandle;

/// How the receiver answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// This status with this body (text/plain).
    Status(u16, String),
    /// This status with a `Retry-After` header of this value (empty body).
    RetryAfter(u16, String),
    /// Answer nothing for that long, then 200 "ok".
    Stall(Duration),
    /// Drop the connection (with a reset) without answering.
    Close,
    /// This status with these headers and a JSON body (as Discord answers `?wait=true`).
    Json(u16, Vec<(&'static str, String)>, String),
}

impl Reply {
    /// 200 "ok", the default reply.
    pub fn ok() -> Reply {
        Reply::Status(200, "ok".to_string())
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// 0-based arrival index.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Lowercased header names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When it was received (monotonic, for measuring retry intervals).
    pub at: Instant,
    /// When it was received (wall clock, for comparing with `webhook-timestamp`).
    pub wall: SystemTime,
    /// What the receiver answered.
    pub replied: Reply,
}

impl Received {
    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "Receiver: body of {} {} is not JSON ({e}): {}",
                self.method,
                self.path,
                self.text()
            )
        })
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether the receiver answered 2xx.
    pub fn was_accepted(&self) -> bool {
        matches!(&self.replied, Reply::Status(code, _) | Reply::Json(code, _, _) if (200..300).contains(code))
            || matches!(self.replied, Reply::Stall(_))
    }
}

/// The recording receiver. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    state: Mutex<RecvState>,
    notify: Notify,
}

struct RecvState {
    script: VecDeque<Reply>,
    default: Reply,
    log: Vec<Received>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1:0 on a spawned task.
    pub async fn start() -> Receiver {
        let cell: Arc<std::sync::OnceLock<Receiver>> = Arc::new(std::sync::OnceLock::new());
        let cell_for_router = cell.clone();
        let router = Router::new()
            .fallback(
                move |conn: ConnectInfo<ConnHandle>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| {
                    let recv = cell_for_router.get().cloned();
                    async move {
                        match recv {
                            Some(recv) => recv.handle(conn.0, method, uri, headers, body).await,
                            None => text(503, "receiver not ready".into()),
                        }
                    }
                },
            )
            .layer(DefaultBodyLimit::disable());
        let addr = super::serve_killable(router).await;
        let recv = Receiver {
            inner: Arc::new(Inner {
                base_url: format!("http://{addr}"),
                state: Mutex::new(RecvState {
                    script: VecDeque::new(),
                    default: Reply::ok(),
                    log: Vec::new(),
                }),
                notify: Notify::new(),
            }),
        };
        let _ = cell.set(recv.clone());
        recv
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/<path>` (a leading `/` in `path` is optional).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.inner.base_url, path.trim_start_matches('/'))
    }

    fn state(&self) -> MutexGuard<'_, RecvState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the pending script: the next requests get these replies in order, then the
    /// default.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state().script = replies.into();
    }

    /// The reply once the script is used up (initially 200 "ok").
    pub fn set_default(&self, reply: Reply) {
        self.state().default = reply;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state().log.clone()
    }

    /// The values of header `name` of the requests that had it, in arrival order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.state()
            .log
            .iter()
            .filter_map(|r| r.header(name).map(str::to_owned))
            .collect()
    }

    pub fn count(&self) -> usize {
        self.state().log.len()
    }

    /// Waits until at least `n` requests were received; returns them all. Panics on timeout,
    /// listing what was received.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until_described(|recs| recs.len() >= n, timeout, &format!("{n} requests"))
            .await
    }

    /// Waits until `pred` holds on the received requests; returns them all. Panics on timeout,
    /// listing what was received.
    pub async fn wait_until(
        &self,
        pred: impl FnMut(&[Received]) -> bool,
        timeout: Duration,
    ) -> Vec<Received> {
        self.wait_until_described(pred, timeout, "the condition")
            .await
    }

    /// Ok(all) if at least `n` requests arrive within `timeout`, else Err(all). Use it to
    /// assert that nothing more arrives.
    pub async fn try_wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Received>, Vec<Received>> {
        self.try_wait_until(|recs| recs.len() >= n, timeout).await
    }

    /// Ok(all) once `pred` holds within `timeout`, else Err(all).
    pub async fn try_wait_until(
        &self,
        mut pred: impl FnMut(&[Received]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let found = super::wait_notified(&self.inner.notify, timeout, || {
            let st = self.state();
            pred(&st.log).then(|| st.log.clone())
        })
        .await;
        found.ok_or_else(|| self.received())
    }

    async fn wait_until_described(
        &self,
        pred: impl FnMut(&[Received]) -> bool,
        timeout: Duration,
        what: &str,
    ) -> Vec<Received> {
        match self.try_wait_until(pred, timeout).await {
            Ok(recs) => recs,
            Err(recs) => {
                panic!(
                    "Receiver: waited {timeout:?} for {what}; received {}:\n{}",
                    recs.len(),
                    describe(&recs)
                )
            }
        }
    }

    async fn handle(
        &self,
        conn: ConnHandle,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let reply = {
            let mut st = self.state();
            let reply = st.script.pop_front().unwrap_or_else(|| st.default.clone());
            let mut hs: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in headers.iter() {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                hs.entry(name.as_str().to_ascii_lowercase())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            let seq = st.log.len();
            st.log.push(Received {
                seq,
                method: method.to_string(),
                path: uri.path().to_string(),
                query: uri.query().map(str::to_string),
                headers: hs,
                body: body.to_vec(),
                at: Instant::now(),
                wall: SystemTime::now(),
                replied: reply.clone(),
            });
            reply
        };
        self.inner.notify.notify_waiters();
        match reply {
            Reply::Status(code, body) => text(code, body),
            Reply::RetryAfter(code, value) => Response::builder()
                .status(code)
                .header("retry-after", value)
                .body(Body::empty())
                .expect("Receiver: invalid scripted status or Retry-After"),
            Reply::Stall(d) => {
                tokio::time::sleep(d).await;
                text(200, "ok".to_string())
            }
            Reply::Close => {
                conn.kill();
                text(500, String::new())
            }
            Reply::Json(code, headers, body) => {
                let mut answer = Response::builder()
                    .status(code)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    answer = answer.header(name, value);
                }
                answer
                    .body(Body::from(body))
                    .expect("Receiver: invalid scripted JSON reply")
            }
        }
    }
}

fn text(code: u16, body: String) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Body::from(body))
        .expect("Receiver: invalid scripted status")
}

fn describe(recs: &[Received]) -> String {
    recs.iter()
        .map(|r| {
            let mut body = r.text();
            if body.len() > 300 {
                let mut cut = 300;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
                body.push_str("...");
            }
            format!(
                "  #{} {} {} -> {:?}: {}",
                r.seq, r.method, r.path, r.replied, body
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A URL on 127.0.0.1 where nothing listens: `http://127.0.0.1:PORT` of a port that was just
/// bound and released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
