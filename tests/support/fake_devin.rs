//! A fake Devin API (`GET /v3/enterprise/sessions`, `GET /v3/organizations/{org_id}/sessions`)
//! on 127.0.0.1, following SPEC section 2, with a request log and fault injection.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::ConnHandle;

/// First value of the fake clock (`FakeDevin::now`).
pub const CLOCK_START: i64 = 1_700_000_000;

static NEXT_CREATED_AT: AtomicI64 = AtomicI64::new(1_690_000_000);

/// A complete, valid SessionResponse (every field of SPEC section 2). `created_at` (and
/// `updated_at`, equal to it) increases with every call in the process, so sessions built later
/// sort first in a listing; all are below [`CLOCK_START`].
pub fn session(id: &str) -> Value {
    let created = NEXT_CREATED_AT.fetch_add(1, AtomicOrdering::SeqCst);
    json!({
        "session_id": id,
        "org_id": "org-test",
        "status": "running",
        "status_detail": "working",
        "acus_consumed": 1.5,
        "created_at": created,
        "updated_at": created,
        "pull_requests": [],
        "tags": [],
        "url": format!("https://app.devin.ai/sessions/{id}"),
        "title": format!("Session {id}"),
        "is_archived": false,
        "origin": "webapp",
        "category": null,
        "subcategory": null,
        "user_id": "user-1",
        "service_user_id": null,
        "playbook_id": null,
        "parent_session_id": null,
        "child_session_ids": [],
        "structured_output": null,
    })
}

/// A message of a session, as the messages endpoint lists it.
pub fn message(source: &str, text: &str, created_at: i64) -> Value {
    static NEXT_EVENT: AtomicI64 = AtomicI64::new(1);
    let n = NEXT_EVENT.fetch_add(1, AtomicOrdering::SeqCst);
    json!({ "created_at": created_at, "event_id": format!("ev-{n}"), "message": text, "source": source })
}

/// A `pull_requests[]` entry.
pub fn pr(url: &str, state: &str) -> Value {
    json!({ "pr_url": url, "pr_state": state })
}

/// Which request a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAt {
    /// The n-th request (any path) counted from the moment of `inject`, 0-based.
    Request(usize),
    /// The next listing request that asks for page index k (0 = the request without `after`;
    /// the page index travels inside the fake's cursor).
    Page(usize),
    /// Every request, never consumed (until `clear_faults`).
    EveryRequest,
}

/// A misbehaviour of the fake. Each is consumed by the one request it hits, unless injected at
/// `FaultAt::EveryRequest`. Faults apply before authentication and validation; the ones that
/// alter a page (Truncated, RepeatCursor, SamePageTwice, DuplicateSession, HugePage) leave an
/// error answer (401, 422...) untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status, body, content type and extra headers.
    Status {
        code: u16,
        body: String,
        content_type: String,
        headers: Vec<(String, String)>,
    },
    /// 502 with an HTML body, `text/html`.
    Html502,
    /// 429 with an optional `Retry-After` header.
    TooMany { retry_after: Option<String> },
    /// Read the request, then drop the TCP connection (with a reset) without answering.
    Reset,
    /// Answer nothing for that long, then answer normally (the answer reflects the state at
    /// arrival).
    Stall(Duration),
    /// A normal page body cut in half: 200, `application/json`, a consistent Content-Length.
    Truncated,
    /// 200 with valid JSON of the wrong shape: `{"data": []}`.
    WrongShape,
    /// This page's `end_cursor` equals the cursor it was asked with (for page 0, a cursor that
    /// leads back to page 0), with `has_next_page: true`: a loop.
    RepeatCursor,
    /// This page is served normally (forced to announce a next page if it was the last); the
    /// request for the page after it gets this same page's items again, with a fresh cursor
    /// that then continues where the real next page starts. Nothing is skipped; the items of
    /// this page are seen twice.
    SamePageTwice,
    /// The first session of this page appears twice (appended at the end of `items`).
    DuplicateSession,
    /// The page gets an extra top-level `"padding"` string field so the body exceeds `bytes`.
    HugePage { bytes: usize },
}

impl Fault {
    /// `Status` with a JSON body `{"detail": "injected <code>"}`.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            body: json!({ "detail": format!("injected {code}") }).to_string(),
            content_type: "application/json".to_string(),
            headers: Vec::new(),
        }
    }
}

/// One request the fake answered (recorded when it arrived, with the answer decided then).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// 0-based arrival index over all requests to this fake.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// The raw query string, "" when none.
    pub query: String,
    /// Percent-decoded query pairs, in order, keys as sent (`tags[]` stays `tags[]`).
    pub params: Vec<(String, String)>,
    /// The `Authorization` header value.
    pub authorization: Option<String>,
    /// The status answered; 0 when the connection was dropped (`Fault::Reset`).
    pub status: u16,
    /// The fault that hit this request.
    pub fault: Option<Fault>,
    /// When it arrived (monotonic, for measuring the client's backoff).
    pub at: std::time::Instant,
}

impl RecordedRequest {
    /// Last value of `key` (also matches `key[]`).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.param_all(key).pop()
    }

    /// Every value of `key` (also matches `key[]`), in order.
    pub fn param_all(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| normalize_key(k) == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether this was a listing request (either sessions path).
    pub fn is_listing(&self) -> bool {
        matches!(route(&self.path), Route::Enterprise | Route::Org(_))
    }

    /// Whether this was a request for a session's messages.
    pub fn is_messages(&self) -> bool {
        matches!(route(&self.path), Route::Messages { .. })
    }
}

/// The fake Devin API. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct FakeDevin {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    state: Mutex<FakeState>,
    notify: Notify,
    /// How long each messages request takes to answer (ms; 0: at once).
    messages_delay_ms: std::sync::atomic::AtomicU64,
    /// Messages requests being answered now, and the most there were at once.
    messages_in_flight: std::sync::atomic::AtomicUsize,
    messages_most: std::sync::atomic::AtomicUsize,
}

struct FakeState {
    token: String,
    forbidden: HashSet<String>,
    strict_params: bool,
    report_total: bool,
    /// session_id -> (session, its JSON text, serialized once)
    sessions: HashMap<String, Stored>,
    order: BTreeSet<SortKey>,
    clock: i64,
    faults: Vec<(Target, Fault)>,
    arrivals: usize,
    log: Vec<RecordedRequest>,
    replay: Option<Replay>,
    /// devin_id (`devin-<session id>`) -> its messages, chronological.
    messages: HashMap<String, Vec<Value>>,
    /// `GET /v3/enterprise/queue`'s answer.
    queue: Value,
    /// Billing days for `GET /v3/enterprise/consumption/daily`: (start, epoch seconds; the
    /// day's JSON).
    days: Vec<(i64, Value)>,
    /// user_id -> `GET /v3/enterprise/members/users/{user_id}`'s answer.
    members: HashMap<String, Value>,
    /// Account endpoints (`queue`, `consumption`, `members`) answering 403.
    forbidden_endpoints: HashSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Seq(usize),
    Page(usize),
    Every,
}

/// A page to serve again (Fault::SamePageTwice).
struct Replay {
    cursor: String,
    page_index: usize,
    items: Vec<Arc<str>>,
    pos: Pos,
    has_next: bool,
}

impl FakeDevin {
    /// Starts the fake on 127.0.0.1:0 on a spawned task.
    pub async fn start() -> FakeDevin {
        // The router needs the FakeDevin and the FakeDevin needs the address: build the
        // router around a handle that is filled right after bind.
        let cell: Arc<std::sync::OnceLock<FakeDevin>> = Arc::new(std::sync::OnceLock::new());
        let cell_for_router = cell.clone();
        let router = Router::new().fallback(
            move |conn: ConnectInfo<ConnHandle>, method: Method, uri: Uri, headers: HeaderMap| {
                let fake = cell_for_router.get().cloned();
                async move {
                    match fake {
                        Some(fake) => fake.handle(conn.0, method, uri, headers).await,
                        None => plain(503, "text/plain", "fake not ready".into()),
                    }
                }
            },
        );
        let addr = super::serve_killable(router).await;
        let fake = FakeDevin {
            inner: Arc::new(Inner {
                base_url: format!("http://{addr}"),
                state: Mutex::new(FakeState {
                    token: "cog_test_token".to_string(),
                    forbidden: HashSet::new(),
                    strict_params: true,
                    report_total: true,
                    sessions: HashMap::new(),
                    order: BTreeSet::new(),
                    clock: CLOCK_START,
                    faults: Vec::new(),
                    arrivals: 0,
                    log: Vec::new(),
                    replay: None,
                    messages: HashMap::new(),
                    queue: json!({ "queue_size": 0, "status": "normal" }),
                    days: Vec::new(),
                    members: HashMap::new(),
                    forbidden_endpoints: HashSet::new(),
                }),
                notify: Notify::new(),
                messages_delay_ms: Default::default(),
                messages_in_flight: Default::default(),
                messages_most: Default::default(),
            }),
        };
        let _ = cell.set(fake.clone());
        fake
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token accepted as `Authorization: Bearer <token>` (default `cog_test_token`).
    pub fn set_token(&self, token: &str) {
        self.state().token = token.to_string();
    }

    /// Requests with this bearer token get 403.
    pub fn forbid_token(&self, token: &str) {
        self.state().forbidden.insert(token.to_string());
    }

    /// What `GET /v3/enterprise/queue` answers.
    pub fn set_queue(&self, queue_size: u64, status: &str) {
        self.state().queue = json!({ "queue_size": queue_size, "status": status });
    }

    /// Sets a billing day of `GET /v3/enterprise/consumption/daily`: `start` (epoch seconds,
    /// 08:00 UTC) begins the day named `date`; `by_product` is `acus_by_product`.
    pub fn set_day(&self, date: &str, start: i64, acus: f64, by_product: Value) {
        let mut st = self.state();
        st.days.retain(|(s, _)| *s != start);
        st.days.push((
            start,
            json!({ "date": date, "acus": acus, "acus_by_product": by_product }),
        ));
        st.days.sort_by_key(|(s, _)| *s);
    }

    /// A member of `GET /v3/enterprise/members/users/{user_id}` (unknown users are 404).
    pub fn set_member(&self, user_id: &str, email: &str) {
        self.state().members.insert(
            user_id.to_string(),
            json!({ "user_id": user_id, "email": email, "name": user_id }),
        );
    }

    /// An account endpoint (`queue`, `consumption`, `members`) answers 403 from now on, naming
    /// the permission it needs.
    pub fn forbid_endpoint(&self, endpoint: &str) {
        self.state()
            .forbidden_endpoints
            .insert(endpoint.to_string());
    }

    /// An account endpoint answers again (the permission was granted).
    pub fn allow_endpoint(&self, endpoint: &str) {
        self.state().forbidden_endpoints.remove(endpoint);
    }

    /// When true (the default), a query parameter the endpoint does not know is a 422.
    pub fn set_strict_params(&self, strict: bool) {
        self.state().strict_params = strict;
    }

    /// When false, pages carry `"total": null` (the API may omit it). Default true.
    pub fn set_report_total(&self, report: bool) {
        self.state().report_total = report;
    }

    /// The fake clock: starts at [`CLOCK_START`], advanced by 1 by every `update`.
    pub fn now(&self) -> i64 {
        self.state().clock
    }

    /// Moves the fake clock forward.
    pub fn advance_clock(&self, secs: i64) -> i64 {
        let mut st = self.state();
        st.clock += secs;
        st.clock
    }

    /// Inserts or replaces (by `session_id`) a session, stored as given.
    pub fn upsert(&self, session: Value) {
        self.state().put(session);
    }

    /// `upsert` for many sessions under one lock.
    pub fn upsert_all(&self, sessions: impl IntoIterator<Item = Value>) {
        let mut st = self.state();
        for s in sessions {
            st.put(s);
        }
    }

    /// Applies `f` to the stored session, then sets `updated_at` to max(old + 1, clock) after
    /// advancing the clock by 1. Returns the new session. Panics when `id` is unknown.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Value)) -> Value {
        let mut v = self
            .get(id)
            .unwrap_or_else(|| panic!("FakeDevin::update: no session {id:?}"));
        let old_updated = v.get("updated_at").and_then(Value::as_i64).unwrap_or(0);
        f(&mut v);
        let mut st = self.state();
        st.clock += 1;
        let new_updated = (old_updated + 1).max(st.clock);
        st.clock = st.clock.max(new_updated);
        v["updated_at"] = json!(new_updated);
        st.take(id);
        st.put(v.clone());
        v
    }

    /// Sets a session's messages (chronological), served at
    /// `/v3/{enterprise,organizations/{org}}/sessions/devin-<id>/messages`.
    pub fn set_messages(&self, session_id: &str, messages: Vec<Value>) {
        let devin_id = if session_id.starts_with("devin-") {
            session_id.to_owned()
        } else {
            format!("devin-{session_id}")
        };
        self.state().messages.insert(devin_id, messages);
    }

    /// Removes a session; returns it.
    pub fn remove(&self, id: &str) -> Option<Value> {
        self.state().take(id)
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.state().sessions.get(id).map(|s| s.value.clone())
    }

    /// All sessions, in listing order (created_at descending, then session_id).
    pub fn sessions(&self) -> Vec<Value> {
        let st = self.state();
        st.order
            .iter()
            .filter_map(|k| st.sessions.get(&k.id).map(|s| s.value.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.state().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules a fault. See [`FaultAt`] and [`Fault`]. When several match one request, the
    /// earliest injected `Request`/`Page` fault wins, then `EveryRequest` ones.
    pub fn inject(&self, at: FaultAt, fault: Fault) {
        let mut st = self.state();
        let target = match at {
            FaultAt::Request(n) => Target::Seq(st.arrivals + n),
            FaultAt::Page(k) => Target::Page(k),
            FaultAt::EveryRequest => Target::Every,
        };
        st.faults.push((target, fault));
    }

    /// Drops every pending fault (and a pending SamePageTwice replay).
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.faults.clear();
        st.replay = None;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// The requests whose path starts with `prefix`, in arrival order.
    pub fn requests_to(&self, prefix: &str) -> Vec<RecordedRequest> {
        self.state()
            .log
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.state().log.len()
    }

    /// Waits until at least `n` requests were recorded; returns them all. Panics on timeout
    /// with the requests seen.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.try_wait_until(|reqs| reqs.len() >= n, timeout)
            .await
            .unwrap_or_else(|reqs| {
                panic!(
                    "FakeDevin: wanted {n} requests within {timeout:?}, got {}:\n{}",
                    reqs.len(),
                    describe(&reqs)
                )
            })
    }

    /// Waits until `pred` holds on the request log; returns the log. Panics on timeout with
    /// the requests seen.
    pub async fn wait_until(
        &self,
        pred: impl FnMut(&[RecordedRequest]) -> bool,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        self.try_wait_until(pred, timeout)
            .await
            .unwrap_or_else(|reqs| {
                panic!(
                    "FakeDevin: condition not met within {timeout:?}; {} requests:\n{}",
                    reqs.len(),
                    describe(&reqs)
                )
            })
    }

    /// Waits until `pred` holds on the request log. Ok(log) when it does, Err(log) on timeout.
    pub async fn try_wait_until(
        &self,
        mut pred: impl FnMut(&[RecordedRequest]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, Vec<RecordedRequest>> {
        let found = super::wait_notified(&self.inner.notify, timeout, || {
            let st = self.state();
            pred(&st.log).then(|| st.log.clone())
        })
        .await;
        found.ok_or_else(|| self.requests())
    }

    /// Makes every messages request take `delay` to answer (requests overlap freely).
    pub fn set_messages_delay(&self, delay: Duration) {
        self.inner.messages_delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// The most messages requests that were being answered at once.
    pub fn messages_most_at_once(&self) -> usize {
        self.inner
            .messages_most
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn handle(
        &self,
        conn: ConnHandle,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        use std::sync::atomic::Ordering::SeqCst;
        let delay = self.inner.messages_delay_ms.load(SeqCst);
        if delay > 0 && uri.path().ends_with("/messages") {
            let now = self.inner.messages_in_flight.fetch_add(1, SeqCst) + 1;
            self.inner.messages_most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            self.inner.messages_in_flight.fetch_sub(1, SeqCst);
        }
        let (answer, fault) = self.decide(&method, &uri, &headers);
        self.inner.notify.notify_waiters();
        match fault {
            Some(Fault::Reset) => {
                conn.kill();
                plain(500, "text/plain", Vec::new())
            }
            Some(Fault::Stall(d)) => {
                tokio::time::sleep(d).await;
                answer.into_response()
            }
            _ => answer.into_response(),
        }
    }

    /// Decides the whole answer under the lock and records the request.
    fn decide(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> (Answer, Option<Fault>) {
        let mut st = self.state();
        let seq = st.arrivals;
        st.arrivals += 1;
        let path = uri.path().to_string();
        let raw_query = uri.query().unwrap_or("").to_string();
        let params = parse_query(&raw_query);
        let authorization = headers
            .get("authorization")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let route = route(&path);

        let page_index = match route {
            Route::NotFound
            | Route::Messages { .. }
            | Route::Queue
            | Route::Consumption
            | Route::Member(_) => None,
            _ => match last_value(&params, "after") {
                None => Some(0),
                Some(c) => decode_cursor(c).map(|(idx, _)| idx),
            },
        };
        let fault = st.take_fault(seq, page_index);

        let answer = match &fault {
            Some(Fault::Status {
                code,
                body,
                content_type,
                headers,
            }) => Answer {
                status: *code,
                content_type: content_type.clone(),
                headers: headers.clone(),
                body: body.clone().into_bytes(),
            },
            Some(Fault::Html502) => Answer::new(
                502,
                "text/html",
                b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n".to_vec(),
            ),
            Some(Fault::TooMany { retry_after }) => {
                let mut a = Answer::json(429, &json!({ "detail": "Too many requests" }));
                if let Some(ra) = retry_after {
                    a.headers.push(("retry-after".into(), ra.clone()));
                }
                a
            }
            Some(Fault::Reset) => Answer::new(0, "text/plain", Vec::new()),
            Some(Fault::WrongShape) => Answer::json(200, &json!({ "data": [] })),
            _ => st.normal(method, &route, &params, authorization.as_deref(), fault.as_ref()),
        };

        st.log.push(RecordedRequest {
            seq,
            method: method.to_string(),
            path,
            query: raw_query,
            params,
            authorization,
            status: answer.status,
            fault: fault.clone(),
            at: std::time::Instant::now(),
        });
        (answer, fault)
    }
}

impl FakeState {
    fn put(&mut self, session: Value) {
        let key = SortKey::of(&session);
        self.take(&key.id);
        self.order.insert(key.clone());
        let json: Arc<str> = session.to_string().into();
        self.sessions.insert(
            key.id,
            Stored {
                value: session,
                json,
            },
        );
    }

    fn take(&mut self, id: &str) -> Option<Value> {
        let old = self.sessions.remove(id)?;
        self.order.remove(&SortKey::of(&old.value));
        Some(old.value)
    }

    fn take_fault(&mut self, seq: usize, page_index: Option<usize>) -> Option<Fault> {
        let hit = self.faults.iter().position(|(t, _)| match *t {
            Target::Seq(n) => n == seq,
            Target::Page(k) => page_index == Some(k),
            Target::Every => false,
        });
        if let Some(i) = hit {
            return Some(self.faults.remove(i).1);
        }
        self.faults
            .iter()
            .find(|(t, _)| *t == Target::Every)
            .map(|(_, f)| f.clone())
    }

    fn normal(
        &mut self,
        method: &Method,
        route: &Route,
        params: &[(String, String)],
        authorization: Option<&str>,
        fault: Option<&Fault>,
    ) -> Answer {
        if let Some(answer) = self.account(method, route, params, authorization) {
            return answer;
        }
        let org = match route {
            Route::NotFound => return Answer::json(404, &json!({ "detail": "Not Found" })),
            Route::Queue | Route::Consumption | Route::Member(_) => None,
            Route::Enterprise => None,
            Route::Org(org) => Some(org.as_str()),
            Route::Messages { org, .. } => org.as_deref(),
        };
        if method != Method::GET {
            return Answer::json(405, &json!({ "detail": "Method Not Allowed" }));
        }
        let token = authorization.and_then(|h| h.strip_prefix("Bearer "));
        match token {
            Some(t) if self.forbidden.contains(t) => {
                let permission = if org.is_some() {
                    "ViewOrgSessions"
                } else {
                    "ViewAccountSessions"
                };
                return Answer::json(
                    403,
                    &json!({ "detail": format!("Service user lacks the {permission} permission") }),
                );
            }
            Some(t) if t == self.token => {}
            Some(_) => return Answer::json(401, &json!({ "detail": "Invalid API key" })),
            None => return Answer::json(401, &json!({ "detail": "Not authenticated" })),
        }
        if let Route::Messages { devin_id, .. } = route {
            return self.messages_page(devin_id, params);
        }
        let allowed = if org.is_some() {
            ORG_KEYS
        } else {
            ENTERPRISE_KEYS
        };
        let q = match ListQuery::parse(params, allowed, self.strict_params) {
            Ok(q) => q,
            Err(errors) => return Answer::json(422, &json!({ "detail": errors })),
        };
        let (page_index, pos) = match &q.after {
            None => (0, Pos::Start),
            Some(c) => match decode_cursor(c) {
                Some(d) => d,
                None => {
                    return Answer::json(
                        422,
                        &json!({ "detail": [{
                            "type": "value_error",
                            "loc": ["query", "after"],
                            "msg": "Value error, invalid cursor",
                            "input": c,
                        }] }),
                    )
                }
            },
        };

        let total = self.report_total.then(|| self.count(&q, org));
        let replay = match (&self.replay, &q.after) {
            (Some(r), Some(c)) if &r.cursor == c => self.replay.take(),
            _ => None,
        };
        let (mut items, mut end_cursor, mut has_next) = match replay {
            Some(r) => {
                let end = r.has_next.then(|| encode_cursor(r.page_index + 1, &r.pos));
                (r.items, end, r.has_next)
            }
            None => {
                let (items, last, has_next) = self.page(&q, org, &pos);
                let end = has_next.then(|| encode_cursor(page_index + 1, &last));
                if let Some(Fault::SamePageTwice) = fault {
                    let cursor = encode_cursor(page_index + 1, &last);
                    self.replay = Some(Replay {
                        cursor: cursor.clone(),
                        page_index: page_index + 1,
                        items: items.clone(),
                        pos: last,
                        has_next,
                    });
                    (items, Some(cursor), true)
                } else {
                    (items, end, has_next)
                }
            }
        };

        match fault {
            Some(Fault::RepeatCursor) => {
                end_cursor = Some(
                    q.after
                        .clone()
                        .unwrap_or_else(|| encode_cursor(0, &Pos::Start)),
                );
                has_next = true;
            }
            Some(Fault::DuplicateSession) => {
                if let Some(first) = items.first().cloned() {
                    items.push(first);
                }
            }
            _ => {}
        }

        let padding = match fault {
            Some(Fault::HugePage { bytes }) => Some(*bytes + 1),
            _ => None,
        };
        let body = page_body(&items, end_cursor.as_deref(), has_next, total, padding);
        let mut answer = Answer::new(200, "application/json", body);
        if let Some(Fault::Truncated) = fault {
            let half = answer.body.len() / 2;
            answer.body.truncate(half);
        }
        answer
    }

    /// The account endpoints (queue, daily consumption, members): `None` for other routes.
    /// Same tokens as the listing; an endpoint in `forbidden_endpoints` answers 403 naming its
    /// permission; unknown parameters are 422 (strict mode), as are non-integer times.
    fn account(
        &self,
        method: &Method,
        route: &Route,
        params: &[(String, String)],
        authorization: Option<&str>,
    ) -> Option<Answer> {
        let (name, permission, allowed): (&str, &str, &[&str]) = match route {
            Route::Queue => ("queue", "ViewAccountMetrics", &[]),
            Route::Consumption => (
                "consumption",
                "ViewAccountConsumption",
                &["time_after", "time_before"],
            ),
            Route::Member(_) => ("members", "ManageAccountMembership", &[]),
            _ => return None,
        };
        if method != Method::GET {
            return Some(Answer::json(
                405,
                &json!({ "detail": "Method Not Allowed" }),
            ));
        }
        let token = authorization.and_then(|h| h.strip_prefix("Bearer "));
        match token {
            Some(t) if t == self.token && !self.forbidden.contains(t) => {}
            Some(t) if self.forbidden.contains(t) => {
                return Some(Answer::json(
                    403,
                    &json!({ "detail": format!("Service user lacks the {permission} permission") }),
                ))
            }
            _ => return Some(Answer::json(401, &json!({ "detail": "Invalid API key" }))),
        }
        if self.forbidden_endpoints.contains(name) {
            return Some(Answer::json(
                403,
                &json!({ "detail": format!("Service user lacks the {permission} permission") }),
            ));
        }
        let mut errors = Vec::new();
        for (k, v) in params {
            if !allowed.contains(&k.as_str()) {
                if self.strict_params {
                    errors.push(json!({"type": "extra_forbidden", "loc": ["query", k], "msg": "Extra inputs are not permitted", "input": v}));
                }
            } else if v.parse::<i64>().is_err() {
                errors.push(json!({"type": "int_parsing", "loc": ["query", k], "msg": "Input should be a valid integer", "input": v}));
            }
        }
        if !errors.is_empty() {
            return Some(Answer::json(422, &json!({ "detail": errors })));
        }
        Some(match route {
            Route::Queue => Answer::json(200, &self.queue),
            Route::Member(id) => match self.members.get(id) {
                Some(m) => Answer::json(200, m),
                None => Answer::json(404, &json!({ "detail": format!("user {id} not found") })),
            },
            _ => {
                let after = last_value(params, "time_after").and_then(|v| v.parse::<i64>().ok());
                let before = last_value(params, "time_before").and_then(|v| v.parse::<i64>().ok());
                // A day is in the period when it overlaps it.
                let days: Vec<&Value> = self
                    .days
                    .iter()
                    .filter(|(start, _)| {
                        after.is_none_or(|a| start + 86_400 > a)
                            && before.is_none_or(|b| *start < b)
                    })
                    .map(|(_, day)| day)
                    .collect();
                let total: f64 = days.iter().filter_map(|d| d["acus"].as_f64()).sum();
                Answer::json(
                    200,
                    &json!({ "consumption_by_date": days, "total_acus": total }),
                )
            }
        })
    }

    /// A page of a session's messages: `first` (default 100) after the offset cursor `after`.
    fn messages_page(&self, devin_id: &str, params: &[(String, String)]) -> Answer {
        let Some(all) = self.messages.get(devin_id) else {
            return Answer::json(
                404,
                &json!({ "detail": format!("session {devin_id} not found") }),
            );
        };
        let first = last_value(params, "first")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(100);
        let start = match last_value(params, "after") {
            None => 0,
            Some(c) => match c.strip_prefix("m:").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n,
                None => return Answer::json(422, &json!({ "detail": "invalid cursor" })),
            },
        };
        let end = (start + first.clamp(1, 200)).min(all.len());
        let has_next = end < all.len();
        Answer::json(
            200,
            &json!({
                "items": all.get(start..end).unwrap_or_default(),
                "end_cursor": has_next.then(|| format!("m:{end}")),
                "has_next_page": has_next,
            }),
        )
    }

    /// Up to `first` matching sessions after `pos`, the position of the last one (or `pos`),
    /// and whether more match.
    fn page(&self, q: &ListQuery, org: Option<&str>, pos: &Pos) -> (Vec<Arc<str>>, Pos, bool) {
        let range: Box<dyn Iterator<Item = &SortKey>> = match pos {
            Pos::Start => Box::new(self.order.iter()),
            Pos::After(k) => Box::new(
                self.order
                    .range::<SortKey, _>((Bound::Excluded(k), Bound::Unbounded)),
            ),
        };
        let mut matching = range
            .filter_map(|k| self.sessions.get(&k.id).map(|s| (k, s)))
            .filter(|(_, s)| q.matches(&s.value, org));
        let mut items = Vec::new();
        let mut last = pos.clone();
        for (k, v) in matching.by_ref().take(q.first) {
            items.push(v.json.clone());
            last = Pos::After(k.clone());
        }
        let has_next = matching.next().is_some();
        (items, last, has_next)
    }

    fn count(&self, q: &ListQuery, org: Option<&str>) -> usize {
        if org.is_none() && q.is_unfiltered() {
            return self.sessions.len();
        }
        self.sessions
            .values()
            .filter(|s| q.matches(&s.value, org))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Routing, query parsing and filters

enum Route {
    Enterprise,
    Org(String),
    Messages {
        org: Option<String>,
        devin_id: String,
    },
    Queue,
    Consumption,
    Member(String),
    NotFound,
}

fn route(path: &str) -> Route {
    if path == "/v3/enterprise/sessions" {
        return Route::Enterprise;
    }
    if path == "/v3/enterprise/queue" {
        return Route::Queue;
    }
    if path == "/v3/enterprise/consumption/daily" {
        return Route::Consumption;
    }
    if let Some(id) = path.strip_prefix("/v3/enterprise/members/users/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::Member(percent_decode(id));
        }
    }
    if let Some(id) = path
        .strip_prefix("/v3/enterprise/sessions/")
        .and_then(|rest| rest.strip_suffix("/messages"))
    {
        if !id.is_empty() && !id.contains('/') {
            return Route::Messages {
                org: None,
                devin_id: percent_decode(id),
            };
        }
    }
    if let Some((org, id)) = path
        .strip_prefix("/v3/organizations/")
        .and_then(|rest| rest.strip_suffix("/messages"))
        .and_then(|rest| rest.split_once("/sessions/"))
    {
        if !org.is_empty() && !org.contains('/') && !id.is_empty() && !id.contains('/') {
            return Route::Messages {
                org: Some(percent_decode(org)),
                devin_id: percent_decode(id),
            };
        }
    }
    if let Some(rest) = path.strip_prefix("/v3/organizations/") {
        if let Some(org) = rest.strip_suffix("/sessions") {
            if !org.is_empty() && !org.contains('/') {
                return Route::Org(percent_decode(org));
            }
        }
    }
    Route::NotFound
}

const ORG_KEYS: &[&str] = &[
    "after",
    "first",
    "session_ids",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "tags",
    "playbook_id",
    "origins",
    "schedule_id",
];

const ENTERPRISE_KEYS: &[&str] = &[
    "after",
    "first",
    "session_ids",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "tags",
    "playbook_id",
    "origins",
    "schedule_id",
    "user_ids",
    "service_user_ids",
    "repo_names",
    "category",
    "org_ids",
    "include_deleted_orgs",
];

#[derive(Default)]
struct ListQuery {
    after: Option<String>,
    first: usize,
    session_ids: Option<Vec<String>>,
    created_after: Option<i64>,
    created_before: Option<i64>,
    updated_after: Option<i64>,
    updated_before: Option<i64>,
    tags: Option<Vec<String>>,
    playbook_id: Option<String>,
    origins: Option<Vec<String>>,
    schedule_id: Option<String>,
    user_ids: Option<Vec<String>>,
    service_user_ids: Option<Vec<String>>,
    repo_names: Option<Vec<String>>,
    category: Option<String>,
    org_ids: Option<Vec<String>>,
}

fn normalize_key(k: &str) -> &str {
    k.strip_suffix("[]").unwrap_or(k)
}

fn last_value<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| normalize_key(k) == key)
        .map(|(_, v)| v.as_str())
}

impl ListQuery {
    fn parse(
        params: &[(String, String)],
        allowed: &[&str],
        strict: bool,
    ) -> Result<ListQuery, Vec<Value>> {
        let mut errors = Vec::new();
        for (k, v) in params {
            let key = normalize_key(k);
            if !allowed.contains(&key) && (strict || ENTERPRISE_KEYS.contains(&key)) {
                errors.push(json!({
                    "type": "extra_forbidden",
                    "loc": ["query", k],
                    "msg": "Extra inputs are not permitted",
                    "input": v,
                }));
            }
        }
        let all = |key: &str| -> Option<Vec<String>> {
            let vals: Vec<String> = params
                .iter()
                .filter(|(k, _)| normalize_key(k) == key)
                .map(|(_, v)| v.clone())
                .collect();
            (!vals.is_empty()).then_some(vals)
        };
        let one = |key: &str| last_value(params, key).map(str::to_string);
        let mut int = |key: &str| -> Option<i64> {
            let v = last_value(params, key)?;
            match v.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(json!({
                        "type": "int_parsing",
                        "loc": ["query", key],
                        "msg": "Input should be a valid integer, unable to parse string as an integer",
                        "input": v,
                    }));
                    None
                }
            }
        };
        let first = int("first");
        let created_after = int("created_after");
        let created_before = int("created_before");
        let updated_after = int("updated_after");
        let updated_before = int("updated_before");
        if let Some(n) = first {
            if n < 1 {
                errors.push(json!({
                    "type": "greater_than_equal",
                    "loc": ["query", "first"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": n.to_string(),
                    "ctx": {"ge": 1},
                }));
            } else if n > 200 {
                errors.push(json!({
                    "type": "less_than_equal",
                    "loc": ["query", "first"],
                    "msg": "Input should be less than or equal to 200",
                    "input": n.to_string(),
                    "ctx": {"le": 200},
                }));
            }
        }
        if let Some(v) = last_value(params, "include_deleted_orgs") {
            if !matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
            ) {
                errors.push(json!({
                    "type": "bool_parsing",
                    "loc": ["query", "include_deleted_orgs"],
                    "msg": "Input should be a valid boolean, unable to interpret input",
                    "input": v,
                }));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ListQuery {
            after: one("after"),
            first: first.map_or(100, |n| n as usize),
            session_ids: all("session_ids"),
            created_after,
            created_before,
            updated_after,
            updated_before,
            tags: all("tags"),
            playbook_id: one("playbook_id"),
            origins: all("origins"),
            schedule_id: one("schedule_id"),
            user_ids: all("user_ids"),
            service_user_ids: all("service_user_ids"),
            repo_names: all("repo_names"),
            category: one("category"),
            org_ids: all("org_ids"),
        })
    }

    fn is_unfiltered(&self) -> bool {
        self.session_ids.is_none()
            && self.created_after.is_none()
            && self.created_before.is_none()
            && self.updated_after.is_none()
            && self.updated_before.is_none()
            && self.tags.is_none()
            && self.playbook_id.is_none()
            && self.origins.is_none()
            && self.schedule_id.is_none()
            && self.user_ids.is_none()
            && self.service_user_ids.is_none()
            && self.repo_names.is_none()
            && self.category.is_none()
            && self.org_ids.is_none()
    }

    fn matches(&self, v: &Value, org: Option<&str>) -> bool {
        let s = |field: &str| v.get(field).and_then(Value::as_str);
        let n = |field: &str| v.get(field).and_then(Value::as_f64);
        let in_set = |set: &Option<Vec<String>>, field: &str| match set {
            None => true,
            Some(set) => s(field).is_some_and(|x| set.iter().any(|y| y == x)),
        };
        let eq = |want: &Option<String>, field: &str| match want {
            None => true,
            Some(w) => s(field) == Some(w.as_str()),
        };
        let cmp = |bound: Option<i64>, field: &str, after: bool| match bound {
            None => true,
            Some(b) => n(field).is_some_and(|x| if after { x > b as f64 } else { x < b as f64 }),
        };
        if let Some(org) = org {
            if s("org_id") != Some(org) {
                return false;
            }
        }
        let tags_ok = match &self.tags {
            None => true,
            Some(want) => v.get("tags").and_then(Value::as_array).is_some_and(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .any(|t| want.iter().any(|w| w == t))
            }),
        };
        let repos_ok = match &self.repo_names {
            None => true,
            Some(want) => v
                .get("pull_requests")
                .and_then(Value::as_array)
                .is_some_and(|prs| {
                    prs.iter()
                        .filter_map(|p| p.get("pr_url").and_then(Value::as_str))
                        .filter_map(repo_of)
                        .any(|r| want.iter().any(|w| w.eq_ignore_ascii_case(&r)))
                }),
        };
        in_set(&self.session_ids, "session_id")
            && cmp(self.created_after, "created_at", true)
            && cmp(self.created_before, "created_at", false)
            && cmp(self.updated_after, "updated_at", true)
            && cmp(self.updated_before, "updated_at", false)
            && tags_ok
            && eq(&self.playbook_id, "playbook_id")
            && in_set(&self.origins, "origin")
            && eq(&self.schedule_id, "schedule_id")
            && in_set(&self.user_ids, "user_id")
            && in_set(&self.service_user_ids, "service_user_id")
            && repos_ok
            && eq(&self.category, "category")
            && in_set(&self.org_ids, "org_id")
    }
}

/// `owner/repo` from `https://host/owner/repo/...`.
pub fn repo_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let mut parts = rest.split('/');
    let _host = parts.next()?;
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let repo = parts.next().filter(|s| !s.is_empty())?;
    Some(format!("{owner}/{repo}"))
}

/// Splits a raw query string into percent-decoded pairs (`+` is a space).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Ordering and cursors

/// Listing order: created_at descending, then session_id ascending.
#[derive(Clone, Debug)]
struct SortKey {
    created: f64,
    id: String,
}

impl SortKey {
    fn of(session: &Value) -> SortKey {
        let id = session
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("FakeDevin: session without a string session_id: {session}"))
            .to_string();
        let created = session
            .get("created_at")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        SortKey { created, id }
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for SortKey {}
impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .created
            .total_cmp(&self.created)
            .then_with(|| self.id.cmp(&other.id))
    }
}

#[derive(Clone, Debug)]
enum Pos {
    Start,
    After(SortKey),
}

fn encode_cursor(page_index: usize, pos: &Pos) -> String {
    let raw = match pos {
        Pos::Start => format!("fdc1|{page_index}|S"),
        Pos::After(k) => format!("fdc1|{page_index}|A|{}|{}", k.created, k.id),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Option<(usize, Pos)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let mut parts = raw.splitn(5, '|');
    if parts.next()? != "fdc1" {
        return None;
    }
    let page_index = parts.next()?.parse().ok()?;
    match parts.next()? {
        "S" => Some((page_index, Pos::Start)),
        "A" => {
            let created: f64 = parts.next()?.parse().ok()?;
            let id = parts.next()?.to_string();
            Some((page_index, Pos::After(SortKey { created, id })))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

struct Stored {
    value: Value,
    json: Arc<str>,
}

/// `{"items":[...],"end_cursor":...,"has_next_page":...,"total":...}` from pre-serialized
/// sessions, plus an optional `"padding"` string of that many bytes.
fn page_body(
    items: &[Arc<str>],
    end_cursor: Option<&str>,
    has_next: bool,
    total: Option<usize>,
    padding: Option<usize>,
) -> Vec<u8> {
    let size: usize = items.iter().map(|i| i.len() + 1).sum::<usize>() + padding.unwrap_or(0);
    let mut out = String::with_capacity(size + 200);
    out.push_str("{\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("],\"end_cursor\":");
    out.push_str(&json!(end_cursor).to_string());
    out.push_str(",\"has_next_page\":");
    out.push_str(if has_next { "true" } else { "false" });
    out.push_str(",\"total\":");
    out.push_str(&json!(total).to_string());
    if let Some(n) = padding {
        out.push_str(",\"padding\":\"");
        out.extend(std::iter::repeat_n('x', n));
        out.push('"');
    }
    out.push('}');
    out.into_bytes()
}

struct Answer {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Answer {
        Answer {
            status,
            content_type: content_type.to_string(),
            headers: Vec::new(),
            body,
        }
    }

    fn json(status: u16, body: &Value) -> Answer {
        Answer::new(status, "application/json", body.to_string().into_bytes())
    }

    fn into_response(self) -> Response {
        let mut b = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type);
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Body::from(self.body))
            .expect("FakeDevin: invalid injected status or header")
    }
}

fn plain(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Answer::new(status, content_type, body).into_response()
}

fn describe(reqs: &[RecordedRequest]) -> String {
    reqs.iter()
        .map(|r| {
            format!(
                "  #{} {} {}?{} -> {}{}",
                r.seq,
                r.method,
                r.path,
                r.query,
                r.status,
                r.fault
                    .as_ref()
                    .map(|f| format!(" (fault {f:?})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
