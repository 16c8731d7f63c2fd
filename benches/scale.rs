//! The scale benchmark of issue 5 ("Fast at scale"); BENCHMARKS.md holds its results.
//!
//! ```sh
//! cargo bench --bench scale                      # everything, default sizes (a few minutes)
//! cargo bench --bench scale -- --help            # options
//! cargo bench --bench scale -- --sessions 10000 --runs 3 --only sync
//! cargo bench --bench scale -- --only backlog --runs 3   # issue 14 (not in the default list)
//! ```
//!
//! It measures the real `devin-notify` binary (`devin-notify once --config ...`, spawned as a
//! child process) against a fake Devin API and a loopback webhook receiver served by this
//! process, so it depends only on the public interface (the config file, the `once` command and
//! its exit codes), not on internals. What it measures:
//!
//! - `sync`: (a) a full sync of N sessions from an empty store (the silent baseline); (b0) `once`
//!   on that store with an empty listing (opening and closing the store, one request); (b) a
//!   poll with nothing changed (wall time, listing requests, bytes written to disk); (c) a poll
//!   after K sessions changed status in a way a rule routes to a webhook sink (wall time,
//!   events, deliveries, received by the receiver); (b2) a second poll with nothing changed.
//! - `steady`: `devin-notify run` as a service; `/proc/<pid>/io` is read at each "poll done"
//!   log line, so a poll's writes are measured without the store's opening and closing.
//! - `deliver`: (d) deliveries per second from the outbox to a loopback receiver.
//! - `backlog` (issue 14; only with `--only backlog`: about 1.5 min with the default sizes and
//!   3 runs): (g) for each N of `--backlog-sizes`, N deliveries queued, then drained by one
//!   `once`. The queueing: a baseline of N sessions, all N changed to `error` (one webhook
//!   each), and `once --wait 0s` while the receiver refuses every delivery with
//!   `--backlog-refuse` (410 by default: "gone" pauses the sink after 3 answers, so the rest
//!   stay queued; it exits 4, "still queued"; a binary that dispatches every due delivery at
//!   once sends them all before the pause, and all are refused); then `sinks resume hook`, a
//!   pause of 1.2 s (the bench config's max_backoff is 1 s, so the refused ones are due again),
//!   an empty listing (the drain's poll is one request) and `once`, which sends all N to the
//!   receiver, now accepting. The receiver notes the arrival time of each: deliveries/s over
//!   the first and the last K = min(10000, N/2) arrivals and first to last; the CPU time (user
//!   and system) of the draining `once` divided by N (start-up, store opening and the poll
//!   included); its wall time and peak RSS. A 503 does not do for the queueing: every queued
//!   delivery is due, so `once --wait 0s` tries them all, and those it reaches again before
//!   the pass ends use up their attempts (max_attempts 3) and go to the dead letters (at
//!   N = 10,000: 30,000 refusals, nothing left to drain).
//! - `rss`: (e) the peak RSS of the process for full syncs of several sizes.
//! - `floors`: what the same work costs without devin-notify: serving the listing to a plain
//!   reqwest loop (HTTP floor), decoding it with `devin_notify::model::Page::decode` (JSON
//!   floor), inserting each page's items into sled as one batch under the store's keys, then
//!   reading them back (sled floors, with the earlier key layout and other variants beside),
//!   and the process start-up (`once` against an empty listing).
//!
//! `--created-order random` gives sessions creation times unrelated to the listing's order:
//! the worst case for the store, whose keys begin with the creation time.
//!
//! Per child process (started by a small launcher, this program re-executed, so that the
//! benchmark's own RSS does not leak into the child's `ru_maxrss`): wall and CPU time; the peak
//! RSS is `ru_maxrss` from `wait4` (the kernel's high-water mark of the resident set, i.e.
//! VmHWM at exit); disk writes are `write_bytes` of `/proc/<pid>/io`, read once the child has
//! exited but before it is reaped (`waitid(WNOWAIT)`), so they cover every thread of the whole
//! run; the store directory's files (size, mtime) are compared before and after as a second
//! witness.
//!
//! Each figure is the median of `--runs` runs (min and max are shown too). Nothing here is
//! asserted: the machine is shared and noisy.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

const TOKEN: &str = "cog_bench_token";
/// The Standard Webhooks test vector's secret: deliveries are signed, as in production.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Seconds between the `updated_at` of two consecutive sessions of the dataset (100k sessions
/// span about 30 days).
const SPACING: i64 = 26;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "scale",
    about = "Scale benchmark of devin-notify (issue 5); see BENCHMARKS.md"
)]
struct Opts {
    /// Sessions in the listing for the `sync` section.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Sessions changed before the "changed" poll of the `sync` section.
    #[arg(long, default_value_t = 1_000)]
    changed: usize,
    /// Which sessions change: spread evenly over the listing (every N/K-th, so about K/2
    /// pages of 200 hold one or more), or the K newest (the first K/200 pages).
    #[arg(long, value_enum, default_value = "spread")]
    changed_layout: Layout,
    /// How `created_at` relates to the listing's order: `listing` (newest first, as the
    /// listing runs: the order the store's keys are laid out for) or `random` (unrelated to the
    /// listing's order: the store's worst case).
    #[arg(long, value_enum, default_value = "listing")]
    created_order: CreatedOrder,
    /// Deliveries queued for the `deliver` section.
    #[arg(long, default_value_t = 5_000)]
    deliveries: usize,
    /// Backlogs of the `backlog` section: deliveries queued before one `once` drains them.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    backlog_sizes: Vec<usize>,
    /// The status the receiver answers while the `backlog` section queues its deliveries
    /// (410 pauses the sink after 3 answers; with a 5xx every delivery is tried, and those
    /// due again before `once --wait 0s` is through the backlog can run out of attempts).
    #[arg(long, default_value_t = 410)]
    backlog_refuse: u16,
    /// Listing sizes of the `rss` section.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,50000,100000,200000"
    )]
    rss_sizes: Vec<usize>,
    /// Runs per size in the `rss` section (default: --runs).
    #[arg(long)]
    rss_runs: Option<usize>,
    /// devin.page_size of the config (the API allows 1..=200).
    #[arg(long, default_value_t = 200)]
    page_size: u32,
    /// Sections to run (also: backlog, not in the default list).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "floors,sync,steady,deliver,rss"
    )]
    only: Vec<Section>,
    /// Work directory for stores and configs (default: a fresh directory under the system
    /// temporary directory; it must be on a disk filesystem for `write_bytes` to mean anything).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The devin-notify binary (default: the one cargo built for this benchmark).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Run the child under this command, e.g. "valgrind --tool=callgrind
    /// --callgrind-out-file=/tmp/cg.%p" (split on spaces). Applies to --wrap-phase only.
    #[arg(long)]
    wrap: Option<String>,
    /// Which child runs --wrap applies to.
    #[arg(long, value_enum, default_value = "full")]
    wrap_phase: Phase,
    /// Extra lines for the [devin] table of the config (e.g. "full_resync_every = 10").
    #[arg(long = "devin-extra")]
    devin_extra: Vec<String>,
    /// Extra lines for the [store] table of the config.
    #[arg(long = "store-extra")]
    store_extra: Vec<String>,
    /// Run the store on PostgreSQL at this URL instead of sled: a fresh schema for each run,
    /// dropped at the end (e.g. postgres://postgres@127.0.0.1:5432/test).
    #[arg(long)]
    postgres: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only start the fake API (with --sessions sessions) and the receiver, write a config,
    /// print its path and wait for Enter (for profiling by hand).
    #[arg(long)]
    serve: bool,
    /// Keep the work directory.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`; without it (e.g. under `cargo test`) the benchmark does nothing.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Floors,
    Sync,
    Steady,
    Deliver,
    Rss,
    Backlog,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum CreatedOrder {
    Listing,
    Random,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Spread,
    Newest,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Full,
    Noop,
    Changed,
    Deliver,
    Rss,
    Startup,
    /// `backlog`: the `once --wait 0s` that queues the deliveries (the receiver refusing).
    Queue,
    /// `backlog`: the `once` that drains them.
    Drain,
    /// An admin command (`sinks resume`).
    Admin,
}

// ---------------------------------------------------------------------------------------------
// The dataset

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The dataset: session `i` is the i-th of the listing (created_at descending). Its last update
/// was `base - 1800 - SPACING * i`: the newest session changed half an hour before the
/// benchmark started, 100k sessions span about a month. No session starts in status `error`,
/// which is what the benchmark's changes set.
struct Dataset {
    base: i64,
    created_order: CreatedOrder,
}

impl Dataset {
    fn updated_at(&self, i: usize) -> i64 {
        self.base - 1800 - SPACING * i as i64
    }

    fn session(&self, i: usize, change: Option<(&str, i64)>) -> Item {
        const STATES: [(&str, Option<&str>); 8] = [
            ("running", Some("working")),
            ("exit", None),
            ("suspended", Some("inactivity")),
            ("running", Some("waiting_for_user")),
            ("exit", None),
            ("running", Some("finished")),
            ("suspended", Some("user_request")),
            ("exit", None),
        ];
        const ORIGINS: [&str; 5] = ["webapp", "slack", "api", "linear", "cli"];
        const CATEGORIES: [&str; 4] = [
            "bug_fixing",
            "feature_development",
            "unit_test_generation",
            "refactoring_and_optimization",
        ];
        let u = i as u64;
        let id = format!(
            "devin-{:016x}{:016x}",
            splitmix(u),
            splitmix(u ^ 0xABCD_EF01)
        );
        let created_at = match self.created_order {
            CreatedOrder::Listing => self.updated_at(i) - 3600,
            // Anywhere in the 30 days before the session's last update.
            CreatedOrder::Random => {
                self.updated_at(i) - 3600 - (splitmix(u ^ 0x5EED) % (30 * 86_400)) as i64
            }
        };
        let (status, detail, updated_at) = match change {
            Some((status, at)) => (status, None, at),
            None => {
                let (s, d) = STATES[i % STATES.len()];
                (s, d, self.updated_at(i))
            }
        };
        let prs = if i.is_multiple_of(3) {
            json!([{
                "pr_url": format!("https://github.com/acme/service-{}/pull/{}", i % 50, 1000 + i),
                "pr_state": if i.is_multiple_of(2) { "merged" } else { "open" },
            }])
        } else {
            json!([])
        };
        let structured = if i.is_multiple_of(7) {
            json!({"summary": "Fixed the flaky test and added a regression test", "tests_passed": 12})
        } else {
            Value::Null
        };
        let v = json!({
            "session_id": id,
            "org_id": format!("org-{}", i % 4),
            "status": status,
            "status_detail": detail,
            "acus_consumed": (i % 400) as f64 / 4.0,
            "created_at": created_at,
            "updated_at": updated_at,
            "pull_requests": prs,
            "tags": [format!("team-{}", i % 20), "bench"],
            "url": format!("https://app.devin.ai/sessions/{id}"),
            "title": format!("Session {i}: fix the flaky integration test in service {}", i % 37),
            "is_archived": false,
            "origin": ORIGINS[i % ORIGINS.len()],
            "category": CATEGORIES[i % CATEGORIES.len()],
            "subcategory": null,
            "user_id": format!("user-{}", i % 500),
            "service_user_id": null,
            "playbook_id": null,
            "parent_session_id": null,
            "child_session_ids": [],
            "structured_output": structured,
        });
        Item {
            json: Bytes::from(serde_json::to_vec(&v).expect("serialize a session")),
            updated_at,
        }
    }
}

#[derive(Clone)]
struct Item {
    json: Bytes,
    updated_at: i64,
}

// ---------------------------------------------------------------------------------------------
// The fake Devin API: pre-serialized sessions, pages assembled by concatenation, an offset
// cursor. Honours `first` (1..=200, default 100), `after` and `updated_after` (epoch seconds,
// strictly greater); other parameters are ignored.

struct FakeInner {
    dataset: Dataset,
    pristine: RwLock<Vec<Item>>,
    live: RwLock<Vec<Item>>,
    listing_requests: AtomicU64,
    filtered_requests: AtomicU64,
    rejected_requests: AtomicU64,
    bytes_served: AtomicU64,
    queries: Mutex<Vec<String>>,
    last_change_at: AtomicU64,
}

#[derive(Clone)]
struct Fake(Arc<FakeInner>);

#[derive(Debug, Clone, Copy, Default)]
struct FakeCounts {
    listing: u64,
    filtered: u64,
    rejected: u64,
    bytes: u64,
}

impl Fake {
    fn new(base: i64, created_order: CreatedOrder) -> Fake {
        Fake(Arc::new(FakeInner {
            dataset: Dataset {
                base,
                created_order,
            },
            pristine: RwLock::new(Vec::new()),
            live: RwLock::new(Vec::new()),
            listing_requests: AtomicU64::new(0),
            filtered_requests: AtomicU64::new(0),
            rejected_requests: AtomicU64::new(0),
            bytes_served: AtomicU64::new(0),
            queries: Mutex::new(Vec::new()),
            last_change_at: AtomicU64::new(0),
        }))
    }

    /// Makes sure the first `n` sessions are generated (in parallel on the two cores).
    fn ensure(&self, n: usize) {
        let have = self.0.pristine.read().expect("lock").len();
        if have >= n {
            return;
        }
        let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
        let chunk = (n - have).div_ceil(threads);
        let ds = &self.0.dataset;
        let parts: Vec<Vec<Item>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let lo = have + t * chunk;
                    let hi = (lo + chunk).min(n);
                    s.spawn(move || (lo..hi).map(|i| ds.session(i, None)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect()
        });
        let mut pristine = self.0.pristine.write().expect("lock");
        for p in parts {
            pristine.extend(p);
        }
    }

    /// Serves the first `n` sessions of the dataset, unchanged.
    fn reset(&self, n: usize) {
        self.ensure(n);
        let items = self.0.pristine.read().expect("lock")[..n].to_vec();
        *self.0.live.write().expect("lock") = items;
    }

    /// Sets `status` (and a null `status_detail`) on the given sessions, with a fresh
    /// `updated_at` (now, and later than any earlier change).
    fn change(&self, indices: impl Iterator<Item = usize>, status: &str) -> usize {
        let at = now_s().max(self.0.last_change_at.load(Ordering::SeqCst) as i64 + 1);
        self.0.last_change_at.store(at as u64, Ordering::SeqCst);
        let mut live = self.0.live.write().expect("lock");
        let mut n = 0;
        for i in indices {
            if i < live.len() {
                live[i] = self.0.dataset.session(i, Some((status, at)));
                n += 1;
            }
        }
        n
    }

    fn take_counts(&self) -> FakeCounts {
        self.0.queries.lock().expect("lock").clear();
        let counts = FakeCounts {
            listing: self.0.listing_requests.swap(0, Ordering::SeqCst),
            filtered: self.0.filtered_requests.swap(0, Ordering::SeqCst),
            rejected: self.0.rejected_requests.swap(0, Ordering::SeqCst),
            bytes: self.0.bytes_served.swap(0, Ordering::SeqCst),
        };
        if counts.rejected > 0 {
            eprintln!(
                "warning: the fake API rejected {} requests (401/422)",
                counts.rejected
            );
        }
        counts
    }

    fn first_queries(&self) -> Vec<String> {
        self.0.queries.lock().expect("lock").clone()
    }

    fn page(&self, headers: &HeaderMap, uri: &Uri) -> Response {
        let f = &self.0;
        f.listing_requests.fetch_add(1, Ordering::Relaxed);
        let query = uri.query().unwrap_or("");
        {
            let mut q = f.queries.lock().expect("lock");
            if q.len() < 3 {
                q.push(query.to_owned());
            }
        }
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
        if !authorized {
            f.rejected_requests.fetch_add(1, Ordering::Relaxed);
            return json_response(401, br#"{"detail":"Invalid API key"}"#.to_vec());
        }
        let mut first = 100usize;
        let mut after = 0usize;
        let mut updated_after: Option<i64> = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let ok = match k {
                "first" => v
                    .parse()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .map(|n| first = n)
                    .is_some(),
                "after" => v
                    .strip_prefix('c')
                    .and_then(|n| n.parse().ok())
                    .map(|n| after = n)
                    .is_some(),
                "updated_after" => v.parse().ok().map(|t| updated_after = Some(t)).is_some(),
                _ => true,
            };
            if !ok {
                f.rejected_requests.fetch_add(1, Ordering::Relaxed);
                let body = json!({"detail": [{"loc": ["query", k], "msg": "invalid value"}]});
                return json_response(422, body.to_string().into_bytes());
            }
        }
        let live = f.live.read().expect("lock");
        let n = live.len();
        let start = after.min(n);
        let mut body = Vec::with_capacity(first * 900 + 128);
        body.extend_from_slice(b"{\"items\":[");
        let push = |body: &mut Vec<u8>, item: &Item, count: &mut usize| {
            if *count > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&item.json);
            *count += 1;
        };
        let mut count = 0;
        let (next, has_next, total) = match updated_after {
            None => {
                let end = (start + first).min(n);
                for item in &live[start..end] {
                    push(&mut body, item, &mut count);
                }
                (end, end < n, n)
            }
            Some(t) => {
                f.filtered_requests.fetch_add(1, Ordering::Relaxed);
                let mut i = start;
                while i < n && count < first {
                    if live[i].updated_at > t {
                        push(&mut body, &live[i], &mut count);
                    }
                    i += 1;
                }
                let has_next = live[i..].iter().any(|it| it.updated_at > t);
                let total = live.iter().filter(|it| it.updated_at > t).count();
                (i, has_next, total)
            }
        };
        drop(live);
        body.extend_from_slice(b"],\"end_cursor\":");
        if has_next {
            body.extend_from_slice(format!("\"c{next}\"").as_bytes());
        } else {
            body.extend_from_slice(b"null");
        }
        body.extend_from_slice(
            format!(",\"has_next_page\":{has_next},\"total\":{total}}}").as_bytes(),
        );
        f.bytes_served
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        json_response(200, body)
    }
}

fn json_response(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

// ---------------------------------------------------------------------------------------------
// The loopback receiver: answers 200 at once, counts deliveries and distinct webhook-ids, and
// notes the arrival time of each one. While refusing (`refuse`), it answers that status
// instead and counts nothing but the refusals.

#[derive(Default)]
struct ReceiverInner {
    count: AtomicU64,
    bytes: AtomicU64,
    /// Arrival times of the accepted deliveries, in order.
    arrivals: Mutex<Vec<Instant>>,
    ids: Mutex<HashSet<String>>,
    /// 0: accept; else the status every delivery gets.
    refuse: AtomicU16,
    refused: AtomicU64,
}

#[derive(Clone, Default)]
struct Receiver(Arc<ReceiverInner>);

#[derive(Debug, Clone, Default)]
struct Received {
    count: u64,
    distinct: u64,
    bytes: u64,
    /// First to last arrival.
    window: Option<Duration>,
    /// Deliveries refused (see [`Receiver::refuse`]).
    refused: u64,
    /// Arrival times, in order.
    arrivals: Vec<Instant>,
}

impl Receiver {
    fn take(&self) -> Received {
        let r = &self.0;
        let mut arrivals = r.arrivals.lock().expect("lock");
        let mut ids = r.ids.lock().expect("lock");
        let arrivals = std::mem::take(&mut *arrivals);
        let out = Received {
            count: r.count.swap(0, Ordering::SeqCst),
            bytes: r.bytes.swap(0, Ordering::SeqCst),
            distinct: ids.len() as u64,
            window: match (arrivals.first(), arrivals.last()) {
                (Some(a), Some(b)) => Some(*b - *a),
                _ => None,
            },
            refused: r.refused.swap(0, Ordering::SeqCst),
            arrivals,
        };
        ids.clear();
        out
    }

    /// From now on, answers every delivery with `status` (0: accept them again).
    fn refuse(&self, status: u16) {
        self.0.refuse.store(status, Ordering::SeqCst);
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let r = &r.0;
    let refuse = r.refuse.load(Ordering::SeqCst);
    if refuse != 0 {
        r.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::from_u16(refuse).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    r.count.fetch_add(1, Ordering::Relaxed);
    r.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        r.ids.lock().expect("lock").insert(id.to_owned());
    }
    // The time is read under the lock, so the arrivals are in order.
    let mut arrivals = r.arrivals.lock().expect("lock");
    arrivals.push(Instant::now());
    StatusCode::OK
}

struct Servers {
    rt: tokio::runtime::Runtime,
    fake: Fake,
    api_url: String,
    receiver: Receiver,
    hook_url: String,
}

/// Starts the fake API and the receiver on a runtime of one worker thread, so that the servers
/// use at most one of the machine's cores.
fn start_servers(base: i64, created_order: CreatedOrder) -> Servers {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let fake = Fake::new(base, created_order);
    let receiver = Receiver::default();
    let (api_url, hook_url) = rt.block_on(async {
        let api = Router::new()
            .route(
                "/v3/enterprise/sessions",
                get(
                    |State(f): State<Fake>, headers: HeaderMap, uri: Uri| async move {
                        f.page(&headers, &uri)
                    },
                ),
            )
            .with_state(fake.clone());
        let hooks = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let bind = || async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0")
        };
        let (l1, l2) = (bind().await, bind().await);
        let api_url = format!("http://{}", l1.local_addr().expect("addr"));
        let hook_url = format!("http://{}/hook", l2.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(l1, api).await });
        tokio::spawn(async move { axum::serve(l2, hooks).await });
        (api_url, hook_url)
    });
    Servers {
        rt,
        fake,
        api_url,
        receiver,
        hook_url,
    }
}

// ---------------------------------------------------------------------------------------------
// The config and the child process

fn write_config(opts: &Opts, s: &Servers, dir: &Path) -> PathBuf {
    write_config_polling(opts, s, dir, "30s")
}

fn write_config_polling(opts: &Opts, s: &Servers, dir: &Path, poll_interval: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the run directory");
    let store = match &opts.postgres {
        None => format!("path = {:?}", dir.join("store").display().to_string()),
        Some(url) => {
            let schema = format!("bench_{}_{}", std::process::id(), pg_schemas().len());
            pg_schemas().push(schema.clone());
            format!("backend = \"postgres\"\nurl = {url:?}\nschema = {schema:?}")
        }
    };
    let text = format!(
        r#"# Written by benches/scale.rs
[devin]
base_url = "{api}"
token = "{TOKEN}"
page_size = {page_size}
poll_interval = "{poll_interval}"
timeout = "120s"
{devin_extra}

[store]
{store}
baseline = "silent"
{store_extra}

[delivery]
max_attempts = 3
initial_backoff = "200ms"
max_backoff = "1s"
timeout = "10s"

[log]
format = "json"
level = "info"

[sinks.hook]
type = "webhook"
url = "{hook}"
secret = "{SECRET}"

[sinks.team_slack]
type = "slack"
url = "{hook}"

# Matches the benchmark's changes (to status `error`): one delivery per changed session.
[[rules]]
name = "failed"
events = ["session.status_changed"]
sinks = ["hook"]
[rules.when]
status = ["error"]

# Never matches the benchmark's changes, but is evaluated for every event.
[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["team_slack"]
template = "needs_input"
[rules.when]
status_detail = ["waiting_for_user", "waiting_for_approval"]

[[rules]]
name = "prs"
events = ["pull_request.opened", "pull_request.state_changed"]
sinks = ["team_slack", "hook"]
"#,
        api = s.api_url,
        page_size = opts.page_size,
        devin_extra = opts.devin_extra.join("\n"),
        store_extra = opts.store_extra.join("\n"),
        hook = s.hook_url,
    );
    let path = dir.join("devin-notify.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// The PostgreSQL schemas this run created (`--postgres`).
fn pg_schemas() -> std::sync::MutexGuard<'static, Vec<String>> {
    static SCHEMAS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    SCHEMAS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops the schemas this run created.
fn drop_pg_schemas(url: &str) {
    let schemas = pg_schemas().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await
        else {
            eprintln!("could not connect to drop the benchmark's schemas {schemas:?}");
            return;
        };
        tokio::spawn(connection);
        for schema in schemas {
            if let Err(e) = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
            {
                eprintln!("could not drop {schema}: {e}");
            }
        }
    });
}

#[derive(Debug, Clone, Default)]
struct ProcIo {
    wchar: u64,
    write_bytes: u64,
    cancelled_write_bytes: u64,
}

fn parse_proc_io(text: &str) -> ProcIo {
    let mut io = ProcIo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v: u64 = v.trim().parse().unwrap_or(0);
        match k {
            "wchar" => io.wchar = v,
            "write_bytes" => io.write_bytes = v,
            "cancelled_write_bytes" => io.cancelled_write_bytes = v,
            _ => {}
        }
    }
    io
}

/// What one `devin-notify once` did.
#[derive(Debug, Clone, Default)]
struct ChildRun {
    wall: Duration,
    /// User + system CPU time of the child (all threads).
    cpu: Duration,
    exit_code: i32,
    max_rss_kib: u64,
    io: ProcIo,
    /// Fields of the "poll done" log line (pages, sessions, changed, events, deliveries,
    /// duration_ms...), when the binary logs one.
    poll: BTreeMap<String, Value>,
    /// Fields of the "outbox drained" log line.
    drain: BTreeMap<String, Value>,
    stderr_tail: String,
}

impl ChildRun {
    fn poll_num(&self, key: &str) -> Option<f64> {
        self.poll.get(key).and_then(Value::as_f64)
    }
}

fn log_fields(stderr: &str, message: &str) -> BTreeMap<String, Value> {
    for line in stderr.lines().rev() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(fields) = v.get("fields").and_then(Value::as_object) else {
            continue;
        };
        if fields.get("message").and_then(Value::as_str) == Some(message) {
            return fields
                .iter()
                .filter(|(k, _)| *k != "message")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
    }
    BTreeMap::new()
}

fn run_once(opts: &Opts, config: &Path, phase: Phase) -> ChildRun {
    run_once_waiting(opts, config, phase, "10s")
}

/// `devin-notify once --config CONFIG --wait WAIT`.
fn run_once_waiting(opts: &Opts, config: &Path, phase: Phase, wait: &str) -> ChildRun {
    let args = [
        OsStr::new("once"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--wait"),
        OsStr::new(wait),
    ];
    run_child(opts, phase, &args)
}

/// `devin-notify ARGS...`, measured as [`ChildRun`] says.
fn run_child(opts: &Opts, phase: Phase, args: &[&OsStr]) -> ChildRun {
    let bin = opts
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_devin-notify")));
    // The child is started by a small launcher process (this program, re-executed), not by
    // this one: Linux carries the RSS high-water mark of the process that spawns a child over
    // into the child's `ru_maxrss`, and this process holds the whole dataset.
    let mut cmd = Command::new(std::env::current_exe().expect("the benchmark's own path"));
    cmd.arg(LAUNCH);
    if let (Some(wrap), true) = (&opts.wrap, opts.wrap_phase == phase) {
        cmd.args(wrap.split_whitespace());
    }
    cmd.arg(&bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the launcher");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = child.wait().expect("wait for the launcher");
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let launch: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the launcher failed ({status}): {stderr}"));
    let num = |k: &str| launch.get(k).and_then(Value::as_u64).unwrap_or(0);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    ChildRun {
        wall: Duration::from_nanos(num("wall_ns")),
        cpu: Duration::from_nanos(num("cpu_ns")),
        exit_code: launch
            .get("exit_code")
            .and_then(Value::as_i64)
            .unwrap_or(-1) as i32,
        max_rss_kib: num("max_rss_kib"),
        io: ProcIo {
            wchar: num("wchar"),
            write_bytes: num("write_bytes"),
            cancelled_write_bytes: num("cancelled_write_bytes"),
        },
        poll: log_fields(&stderr, "poll done"),
        drain: log_fields(&stderr, "outbox drained"),
        stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }
}

/// The first argument that makes this program a launcher: `scale __launch PROGRAM ARGS...`
/// runs PROGRAM with the launcher's stdin and stderr (stdout: /dev/null), then prints one JSON
/// line: wall time, exit code, peak RSS (`ru_maxrss` from `wait4`) and the counters of
/// `/proc/<pid>/io`, read after the exit but before the child is reaped (`waitid(WNOWAIT)`), so
/// they cover every thread of the whole run.
const LAUNCH: &str = "__launch";

fn launcher(args: &[String]) {
    let started = Instant::now();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", args[0]));
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain libc calls on our own child's pid with valid out-pointers.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
        assert_eq!(rc, 0, "waitid: {}", std::io::Error::last_os_error());
    }
    let wall = started.elapsed();
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .map(|t| parse_proc_io(&t))
        .unwrap_or_default();
    let mut status = 0;
    // SAFETY: as above; reaps the child and collects its resource usage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid, &mut status, 0, &mut usage);
        assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
        usage
    };
    drop(child);
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!(
        "{}",
        json!({
            "wall_ns": wall.as_nanos() as u64,
            "exit_code": exit_code,
            "max_rss_kib": usage.ru_maxrss,
            "cpu_ns": (usage.ru_utime.tv_sec as u64 * 1_000_000 + usage.ru_utime.tv_usec as u64
                + usage.ru_stime.tv_sec as u64 * 1_000_000 + usage.ru_stime.tv_usec as u64) * 1000,
            "wchar": io.wchar,
            "write_bytes": io.write_bytes,
            "cancelled_write_bytes": io.cancelled_write_bytes,
        })
    );
}

fn check(run: &ChildRun, what: &str) {
    if run.exit_code != 0 {
        eprintln!(
            "warning: {what}: devin-notify exited with {}; last lines:\n{}",
            run.exit_code, run.stderr_tail
        );
    }
}

/// Files of a directory tree with their size and modification time.
fn tree_state(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
                out.insert(e.path(), (meta.len(), mtime));
            }
        }
    }
    out
}

/// Files created, removed or modified (size or mtime) between two states.
fn tree_diff(
    before: &BTreeMap<PathBuf, (u64, SystemTime)>,
    after: &BTreeMap<PathBuf, (u64, SystemTime)>,
) -> (usize, Vec<String>) {
    let mut names = Vec::new();
    for (p, a) in after {
        if before.get(p) != Some(a) {
            names.push(
                p.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            );
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            names.push(format!(
                "-{}",
                p.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
        }
    }
    (names.len(), names)
}

fn dir_size(dir: &Path) -> u64 {
    tree_state(dir).values().map(|(len, _)| len).sum()
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    section: &'static str,
    name: String,
    unit: &'static str,
    samples: Vec<f64>,
}

impl Row {
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }
    fn median(&self) -> f64 {
        median(&self.samples)
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Results {
    fn add(&mut self, section: &'static str, name: &str, unit: &'static str, value: f64) {
        match self
            .rows
            .iter_mut()
            .find(|r| r.section == section && r.name == name)
        {
            Some(r) => r.samples.push(value),
            None => self.rows.push(Row {
                section,
                name: name.to_owned(),
                unit,
                samples: vec![value],
            }),
        }
    }

    fn median(&self, section: &str, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.section == section && r.name == name)
            .map(Row::median)
    }

    fn note(&mut self, text: String) {
        eprintln!("  note: {text}");
        self.notes.push(text);
    }

    fn print(&self) {
        println!();
        println!("| section | figure | median | min | max | unit | runs |");
        println!("| --- | --- | ---: | ---: | ---: | --- | ---: |");
        for r in &self.rows {
            let s = r.sorted();
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.section,
                r.name,
                fmt(r.median()),
                fmt(s[0]),
                fmt(s[s.len() - 1]),
                r.unit,
                s.len()
            );
        }
        if !self.notes.is_empty() {
            println!();
            for n in &self.notes {
                println!("- {n}");
            }
        }
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn kib_to_mib(k: u64) -> f64 {
    k as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// Sections

fn section_floors(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let n = opts.sessions;
    eprintln!("== floors (N = {n})");
    // Process start-up: `once` against an empty listing.
    s.fake.reset(0);
    for r in 0..opts.runs {
        let dir = work.join(format!("startup-{r}"));
        let config = write_config(opts, s, &dir);
        s.fake.take_counts();
        let run = run_once(opts, &config, Phase::Startup);
        check(&run, "start-up");
        res.add(
            "floors",
            "`once` on an empty listing (start-up)",
            "ms",
            ms(run.wall),
        );
        res.add(
            "floors",
            "peak RSS, `once` on an empty listing",
            "MiB",
            kib_to_mib(run.max_rss_kib),
        );
        cleanup(opts, &dir);
    }

    // HTTP floor: a plain reqwest loop that reads every page and does nothing with it.
    s.fake.reset(n);
    let client = reqwest::Client::new();
    let mut bodies: Vec<Bytes> = Vec::new();
    for _ in 0..opts.runs {
        s.fake.take_counts();
        let started = Instant::now();
        let got =
            s.rt.block_on(fetch_all(&client, &s.api_url, opts.page_size));
        let took = started.elapsed();
        let counts = s.fake.take_counts();
        res.add(
            "floors",
            "HTTP: serve + read the full listing",
            "ms",
            ms(took),
        );
        res.add(
            "floors",
            "HTTP: listing requests",
            "requests",
            counts.listing as f64,
        );
        res.add(
            "floors",
            "HTTP: listing bytes",
            "MiB",
            counts.bytes as f64 / 1048576.0,
        );
        bodies = got;
    }

    // JSON floor: decode every page as the binary does (the wire model, plus each item's text,
    // which is what the store keeps).
    let mut pages = Vec::new();
    for _ in 0..opts.runs {
        let started = Instant::now();
        pages = bodies
            .iter()
            .map(|b| devin_notify::model::Page::decode(b).expect("a page"))
            .collect::<Vec<_>>();
        res.add(
            "floors",
            "JSON: decode all pages (devin::Page::decode)",
            "ms",
            ms(started.elapsed()),
        );
    }
    let sessions: usize = pages.iter().map(|p| p.items.len()).sum();
    assert_eq!(sessions, n, "the HTTP floor read every session");
    // What the store writes: each item's text under its key, page by page.
    let layout = |key: fn(&devin_notify::model::Session) -> Vec<u8>| -> Pages {
        pages
            .iter()
            .map(|p| {
                p.items
                    .iter()
                    .zip(&p.raw)
                    .map(|(s, raw)| (key(s), raw.as_bytes().to_vec()))
                    .collect()
            })
            .collect()
    };
    let by_creation =
        layout(|s| devin_notify::store::sled::session_key(s.created_at, &s.session_id));
    let by_id = layout(|s| s.session_id.as_bytes().to_vec());
    let tiny: Pages = by_creation
        .iter()
        .map(|page| {
            page.iter()
                .map(|(k, _)| (k.clone(), vec![0u8; 8]))
                .collect()
        })
        .collect();
    // The store's layout: neighbours together, each block under its lowest key.
    let blocks: Pages = by_creation
        .iter()
        .map(|page| {
            page.chunks(BLOCK)
                .map(|run| {
                    let mut value = Vec::new();
                    for (k, v) in run {
                        for part in [k, v] {
                            value.extend_from_slice(&(part.len() as u32).to_be_bytes());
                            value.extend_from_slice(part);
                        }
                    }
                    let lowest = run.iter().map(|(k, _)| k).min().expect("a run");
                    (lowest.clone(), value)
                })
                .collect()
        })
        .collect();
    let snapshot_bytes: usize = by_creation.iter().flatten().map(|(_, b)| b.len()).sum();
    res.note(format!(
        "dataset: {n} sessions, {:.0} bytes per session on the wire, {:.0} bytes per stored snapshot",
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / n as f64,
        snapshot_bytes as f64 / n as f64
    ));
    drop(pages);

    // sled floors: every page as one batch into a fresh tree, then one flush; then reading
    // every key back and comparing. The layout the store uses (blocks of neighbours, keys by
    // creation time, in listing order), the earlier ones (one snapshot to a key; keys by id:
    // random order), a big cache, and 8-byte values (the cost of an insert whatever its size).
    let variants: [(&str, u64, &Pages); 5] = [
        (SLED_FLOOR, 16 << 20, &blocks),
        (
            "one snapshot to a key, keys by creation time, cache 16 MiB",
            16 << 20,
            &by_creation,
        ),
        ("keys by id, as before, cache 16 MiB", 16 << 20, &by_id),
        (
            "keys by creation time, cache 256 MiB",
            256 << 20,
            &by_creation,
        ),
        (
            "keys by creation time, 8-byte values, cache 16 MiB",
            16 << 20,
            &tiny,
        ),
    ];
    for r in 0..opts.runs {
        for (v, (label, cache, data)) in variants.iter().enumerate() {
            let dir = work.join(format!("sled-floor-{r}-{v}"));
            let (insert, get) = sled_floor(&dir, *cache, data);
            res.add(
                "floors",
                &format!("sled: insert N ({label}), flush"),
                "ms",
                ms(insert),
            );
            res.add(
                "floors",
                &format!("sled: get + compare N ({label})"),
                "ms",
                ms(get),
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The sled floor variant that matches the store's layout and default cache.
const SLED_FLOOR: &str = "blocks of 2 snapshots by creation time, cache 16 MiB";
/// The store's snapshots a block holds at 640 bytes a snapshot (1.5 KiB blocks:
/// `store::sled::blocks`).
const BLOCK: usize = 2;

/// Key-value pairs, page by page.
type Pages = Vec<Vec<(Vec<u8>, Vec<u8>)>>;

/// Inserts every page (one `Batch` per page, as the store writes a page of snapshots) into a
/// fresh sled tree and flushes; then gets and compares every value. Returns both times.
fn sled_floor(dir: &Path, cache: u64, pages: &Pages) -> (Duration, Duration) {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache)
        .open()
        .expect("open sled");
    let tree = db.open_tree("sessions").expect("tree");
    let started = Instant::now();
    for page in pages {
        let mut b = sled::Batch::default();
        for (key, bytes) in page {
            b.insert(key.as_slice(), bytes.as_slice());
        }
        tree.apply_batch(b).expect("batch");
    }
    db.flush().expect("flush");
    let insert = started.elapsed();
    let started = Instant::now();
    let mut found = 0usize;
    for page in pages {
        for (key, bytes) in page {
            if tree.get(key).expect("get").as_deref() == Some(bytes.as_slice()) {
                found += 1;
            }
        }
    }
    let get = started.elapsed();
    assert_eq!(found, pages.iter().map(Vec::len).sum::<usize>());
    (insert, get)
}

async fn fetch_all(client: &reqwest::Client, api: &str, first: u32) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = client
            .get(format!("{api}/v3/enterprise/sessions"))
            .bearer_auth(TOKEN)
            .query(&[("first", first.to_string())]);
        if let Some(a) = &after {
            req = req.query(&[("after", a)]);
        }
        let body = req
            .send()
            .await
            .expect("GET a page")
            .bytes()
            .await
            .expect("a body");
        // Only the cursor is read, from the end of the body, without parsing the page.
        after = cursor_of(&body);
        bodies.push(body);
        if after.is_none() {
            return bodies;
        }
    }
}

fn cursor_of(body: &[u8]) -> Option<String> {
    let tail = &body[body.len().saturating_sub(200)..];
    let text = std::str::from_utf8(tail).ok()?;
    let at = text.rfind("\"end_cursor\":\"")? + "\"end_cursor\":\"".len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_owned())
}

fn cleanup(opts: &Opts, dir: &Path) {
    if !opts.keep {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn section_sync(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let n = opts.sessions;
    let k = opts.changed.min(n);
    let stride = match opts.changed_layout {
        Layout::Spread => (n / k.max(1)).max(1),
        Layout::Newest => 1,
    };
    eprintln!("== sync (N = {n}, {k} changed)");
    for r in 0..opts.runs {
        s.fake.reset(n);
        let dir = work.join(format!("sync-{r}"));
        let config = write_config(opts, s, &dir);
        let store = dir.join("store");

        // (a) full sync from an empty store.
        s.fake.take_counts();
        let run = run_once(opts, &config, Phase::Full);
        check(&run, "full sync");
        let c = s.fake.take_counts();
        eprintln!(
            "  run {r}: full sync {:.0} ms, {} requests, RSS {:.1} MiB, write_bytes {:.1} MiB, poll {:?}",
            ms(run.wall),
            c.listing,
            kib_to_mib(run.max_rss_kib),
            run.io.write_bytes as f64 / 1048576.0,
            run.poll
        );
        let sec = "a. full sync";
        res.add(sec, "wall time of `once`", "ms", ms(run.wall));
        res.add(sec, "CPU time of `once` (user + system)", "ms", ms(run.cpu));
        if let Some(d) = run.poll_num("duration_ms") {
            res.add(sec, "poll duration (binary's log)", "ms", d);
        }
        res.add(sec, "listing requests", "requests", c.listing as f64);
        res.add(sec, "peak RSS", "MiB", kib_to_mib(run.max_rss_kib));
        res.add(
            sec,
            "bytes written to disk (write_bytes)",
            "MiB",
            run.io.write_bytes as f64 / 1048576.0,
        );
        res.add(
            sec,
            "store size on disk after",
            "MiB",
            dir_size(&store) as f64 / 1048576.0,
        );
        if let Some(v) = run.poll_num("changed") {
            res.add(sec, "sessions written (binary's log)", "sessions", v);
        }

        // (b0) the same store, an empty listing: what opening and closing the store costs a
        // `once` (the least an incremental poll that finds nothing can cost).
        s.fake.reset(0);
        noop(
            opts,
            s,
            &config,
            &store,
            "b0. `once` on the synced store, empty listing",
            "b0",
            r,
            res,
        );
        s.fake.reset(n);

        // (b) nothing changed.
        noop(opts, s, &config, &store, "b. no-op poll", "b", r, res);

        // (c) K sessions changed status to `error`: one delivery each to the webhook sink.
        let changed = s.fake.change((0..k).map(|j| j * stride), "error");
        s.fake.take_counts();
        s.receiver.take();
        let run = run_once(opts, &config, Phase::Changed);
        check(&run, "changed poll");
        let c = s.fake.take_counts();
        let got = s.receiver.take();
        let sec = "c. changed poll";
        eprintln!(
            "  run {r}: {changed} changed: {:.0} ms, {} requests, {} received, poll {:?}, drain {:?}",
            ms(run.wall),
            c.listing,
            got.count,
            run.poll,
            run.drain
        );
        res.add(
            sec,
            &format!("wall time of `once` ({changed} changed, incl. delivering)"),
            "ms",
            ms(run.wall),
        );
        res.add(sec, "CPU time of `once` (user + system)", "ms", ms(run.cpu));
        if let Some(d) = run.poll_num("duration_ms") {
            res.add(sec, "poll duration (binary's log)", "ms", d);
        }
        res.add(sec, "listing requests", "requests", c.listing as f64);
        if let Some(v) = run.poll_num("events") {
            res.add(sec, "events (binary's log)", "events", v);
        }
        if let Some(v) = run.poll_num("deliveries") {
            res.add(sec, "deliveries queued (binary's log)", "deliveries", v);
        }
        res.add(sec, "deliveries received", "deliveries", got.count as f64);
        res.add(
            sec,
            "distinct webhook-ids received",
            "deliveries",
            got.distinct as f64,
        );
        res.add(
            sec,
            "bytes written to disk (write_bytes)",
            "MiB",
            run.io.write_bytes as f64 / 1048576.0,
        );
        res.add(sec, "peak RSS", "MiB", kib_to_mib(run.max_rss_kib));

        // (b2) nothing changed again, right after the changes.
        noop(
            opts,
            s,
            &config,
            &store,
            "b2. no-op poll after the changes",
            "b2",
            r,
            res,
        );
        cleanup(opts, &dir);
    }
}

#[allow(clippy::too_many_arguments)]
fn noop(
    opts: &Opts,
    s: &Servers,
    config: &Path,
    store: &Path,
    sec: &'static str,
    label: &str,
    r: usize,
    res: &mut Results,
) {
    s.fake.take_counts();
    s.receiver.take();
    let before = tree_state(store);
    let run = run_once(opts, config, Phase::Noop);
    check(&run, "no-op poll");
    let after = tree_state(store);
    let queries = s.fake.first_queries();
    let c = s.fake.take_counts();
    let got = s.receiver.take();
    let (touched, names) = tree_diff(&before, &after);
    eprintln!(
        "  run {r}: no-op ({label}) {:.0} ms, {} requests ({} with updated_after; first: {:?}), write_bytes {} B, store files touched {touched} {:?}",
        ms(run.wall),
        c.listing,
        c.filtered,
        queries.first(),
        run.io.write_bytes,
        names
    );
    res.add(sec, "wall time of `once`", "ms", ms(run.wall));
    res.add(sec, "CPU time of `once` (user + system)", "ms", ms(run.cpu));
    if let Some(d) = run.poll_num("duration_ms") {
        res.add(sec, "poll duration (binary's log)", "ms", d);
    }
    res.add(sec, "listing requests", "requests", c.listing as f64);
    res.add(
        sec,
        "bytes written to disk (write_bytes)",
        "bytes",
        run.io.write_bytes as f64,
    );
    res.add(
        sec,
        "of which cancelled (cancelled_write_bytes)",
        "bytes",
        run.io.cancelled_write_bytes as f64,
    );
    res.add(
        sec,
        "store files touched (size or mtime)",
        "files",
        touched as f64,
    );
    if let Some(v) = run.poll_num("changed") {
        res.add(sec, "sessions written (binary's log)", "sessions", v);
    }
    res.add(sec, "deliveries received", "deliveries", got.count as f64);
    res.add(sec, "peak RSS", "MiB", kib_to_mib(run.max_rss_kib));
}

fn read_proc_io(pid: u32) -> ProcIo {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .map(|t| parse_proc_io(&t))
        .unwrap_or_default()
}

/// `VmHWM` and `VmRSS` of a live process, in KiB.
fn read_rss(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `devin-notify run` as a service: the write_bytes of /proc/<pid>/io are read when the
/// binary logs "poll done", so each poll is measured alone, without the opening and closing of
/// the store that `once` adds.
fn section_steady(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let n = opts.sessions;
    let k = opts.changed.min(n);
    let stride = match opts.changed_layout {
        Layout::Spread => (n / k.max(1)).max(1),
        Layout::Newest => 1,
    };
    eprintln!(
        "== steady (`run`, N = {n}, {} no-op polls, then {k} changed)",
        opts.runs
    );
    s.fake.reset(n);
    let dir = work.join("steady");
    let config = write_config_polling(opts, s, &dir, "1s");
    let bin = opts
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_devin-notify")));
    let mut child = Command::new(&bin)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn devin-notify run");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<BTreeMap<String, Value>>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tail = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let fields = log_fields(&line, "poll done");
            if !fields.is_empty() && tx.send(fields).is_err() {
                break;
            }
            if line.contains("\"level\":\"ERROR\"") || line.contains("\"level\":\"WARN\"") {
                tail.push(line);
            }
        }
        tail
    });
    let next_poll = || {
        rx.recv_timeout(Duration::from_secs(300)).expect(
            "a \"poll done\" log line (JSON) from `devin-notify run` within 5 minutes; \
             the steady section paces itself on that line",
        )
    };
    let sec = "f. steady state (`run`)";
    let first = next_poll();
    eprintln!("  baseline poll: {first:?}");
    if let Some(d) = first.get("duration_ms").and_then(Value::as_f64) {
        res.add(sec, "full sync: poll duration (binary's log)", "ms", d);
    }
    // sled goes on writing in the background for a while after a large write (its log buffers
    // and segment cleaning), whatever the polls do. Wait until the process has written nothing
    // for 3 s, record how long that took, then line up on a poll boundary.
    let settle = |label: &str, res: &mut Results| {
        let started = Instant::now();
        let first = read_proc_io(pid).write_bytes;
        let (mut last, mut quiet_since) = (first, Instant::now());
        while quiet_since.elapsed() < Duration::from_secs(3)
            && started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(250));
            let now = read_proc_io(pid).write_bytes;
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
        let took = started.elapsed().saturating_sub(quiet_since.elapsed());
        res.add(
            sec,
            &format!("after {label}: time until the process stops writing"),
            "ms",
            ms(took),
        );
        res.add(
            sec,
            &format!("after {label}: bytes written meanwhile (sled's background work)"),
            "MiB",
            last.saturating_sub(first) as f64 / 1048576.0,
        );
        while rx.try_recv().is_ok() {}
        next_poll();
    };
    settle("the full sync", res);
    let measure = |label: &str, res: &mut Results, change: Option<usize>| {
        let io0 = read_proc_io(pid);
        s.fake.take_counts();
        let p = next_poll();
        let io1 = read_proc_io(pid);
        let c = s.fake.take_counts();
        let written = io1.write_bytes.saturating_sub(io0.write_bytes);
        eprintln!(
            "  {label}: {} requests, write_bytes {written} B, poll {p:?}",
            c.listing
        );
        if let Some(d) = p.get("duration_ms").and_then(Value::as_f64) {
            res.add(
                sec,
                &format!("{label}: poll duration (binary's log)"),
                "ms",
                d,
            );
        }
        res.add(
            sec,
            &format!("{label}: listing requests"),
            "requests",
            c.listing as f64,
        );
        res.add(
            sec,
            &format!("{label}: bytes written to disk during the poll (write_bytes)"),
            "bytes",
            written as f64,
        );
        if let Some(v) = p.get("changed").and_then(Value::as_f64) {
            res.add(
                sec,
                &format!("{label}: sessions written (binary's log)"),
                "sessions",
                v,
            );
        }
        if change.is_some() {
            if let Some(v) = p.get("deliveries").and_then(Value::as_f64) {
                res.add(sec, &format!("{label}: deliveries queued"), "deliveries", v);
            }
        }
    };
    for _ in 0..opts.runs {
        measure("no-op poll", res, None);
    }
    for _ in 0..opts.runs {
        let changed = s.fake.change((0..k).map(|j| j * stride), "error");
        s.receiver.take();
        measure(&format!("poll with {changed} changed"), res, Some(changed));
        let started = Instant::now();
        while s.receiver.0.count.load(Ordering::SeqCst) < changed as u64
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = s.receiver.take();
        res.add(
            sec,
            "deliveries received after the changed poll",
            "deliveries",
            got.count as f64,
        );
        settle("the changed poll and its deliveries", res);
        measure("no-op poll after the changes", res, None);
        // Put the sessions back for the next round (an unrouted change, measured as nothing).
        s.fake.change((0..k).map(|j| j * stride), "running");
        next_poll();
        next_poll();
    }
    let (hwm, rss) = read_rss(pid);
    res.add(
        sec,
        "peak RSS (VmHWM) after all polls",
        "MiB",
        kib_to_mib(hwm),
    );
    res.add(sec, "RSS (VmRSS) between polls", "MiB", kib_to_mib(rss));
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait for devin-notify run");
    drop(rx);
    let warnings = reader.join().unwrap_or_default();
    if !status.success() || !warnings.is_empty() {
        eprintln!(
            "warning: `run` exited with {status}; warnings:\n{}",
            warnings.join("\n")
        );
    }
    cleanup(opts, &dir);
}

fn section_deliver(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let d = opts.deliveries;
    eprintln!("== deliver ({d} deliveries)");
    for r in 0..opts.runs {
        s.fake.reset(d);
        let dir = work.join(format!("deliver-{r}"));
        let config = write_config(opts, s, &dir);
        let run = run_once(opts, &config, Phase::Rss);
        check(&run, "baseline before deliveries");
        s.fake.change(0..d, "error");
        s.fake.take_counts();
        s.receiver.take();
        let run = run_once(opts, &config, Phase::Deliver);
        check(&run, "deliveries");
        let got = s.receiver.take();
        let poll_ms = run.poll_num("duration_ms");
        eprintln!(
            "  run {r}: {} received in {:?} (first to last), `once` {:.0} ms, poll {:?} ms, drain {:?}",
            got.count,
            got.window,
            ms(run.wall),
            poll_ms,
            run.drain
        );
        let sec = "d. delivery";
        res.add(sec, "deliveries received", "deliveries", got.count as f64);
        res.add(
            sec,
            "mean body size received",
            "bytes",
            got.bytes as f64 / got.count.max(1) as f64,
        );
        if let Some(w) = got.window.filter(|w| !w.is_zero()) {
            res.add(
                sec,
                "throughput at the receiver (first to last delivery)",
                "deliveries/s",
                got.count.saturating_sub(1) as f64 / w.as_secs_f64(),
            );
        }
        res.add(
            sec,
            &format!("wall time of `once` (poll of {d} changes + delivering them)"),
            "ms",
            ms(run.wall),
        );
        if let Some(p) = poll_ms {
            res.add(sec, "poll duration (binary's log)", "ms", p);
            let rest = ms(run.wall) - p;
            if rest > 0.0 {
                res.add(
                    sec,
                    "throughput over `once` minus its poll",
                    "deliveries/s",
                    got.count as f64 / (rest / 1000.0),
                );
            }
        }
        res.add(sec, "peak RSS", "MiB", kib_to_mib(run.max_rss_kib));
        cleanup(opts, &dir);
    }
}

/// Deliveries per second over the arrivals `a..=b` (sorted): intervals over time.
fn arrival_rate(t: &[Instant], a: usize, b: usize) -> Option<f64> {
    let span = t.get(b)?.checked_duration_since(*t.get(a)?)?;
    (b > a && !span.is_zero()).then(|| (b - a) as f64 / span.as_secs_f64())
}

/// Issue 14: N deliveries queued (the receiver refusing them), then drained by one `once`; the
/// rate at the receiver over the first and the last K arrivals, and the CPU time per delivery.
/// See the module's documentation.
fn section_backlog(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let refuse = opts.backlog_refuse;
    eprintln!(
        "== backlog (sizes {:?}, {} runs each; refused with {refuse} while queueing)",
        opts.backlog_sizes, opts.runs
    );
    let sec = "g. backlog";
    for &n in &opts.backlog_sizes {
        let k = (n / 2).min(10_000);
        for r in 0..opts.runs {
            s.fake.reset(n);
            let dir = work.join(format!("backlog-{n}-{r}"));
            let config = write_config(opts, s, &dir);
            let run = run_once(opts, &config, Phase::Full);
            check(&run, "baseline before the backlog");

            // Queue N deliveries: every session changes to `error` (one webhook each), and
            // `once --wait 0s` polls while the receiver refuses every delivery.
            s.fake.change(0..n, "error");
            s.receiver.take();
            s.receiver.refuse(refuse);
            let queue = run_once_waiting(opts, &config, Phase::Queue, "0s");
            s.receiver.refuse(0);
            let refused = s.receiver.take();
            if queue.exit_code != 4 {
                eprintln!(
                    "warning: queueing the backlog: devin-notify exited with {} (expected 4, still queued); last lines:\n{}",
                    queue.exit_code, queue.stderr_tail
                );
            }
            let queued = queue.poll_num("deliveries");
            // A "gone" answer pauses the sink: resume it (a no-op otherwise).
            let resume = run_child(
                opts,
                Phase::Admin,
                &[
                    OsStr::new("sinks"),
                    OsStr::new("resume"),
                    OsStr::new("hook"),
                    OsStr::new("--config"),
                    config.as_os_str(),
                ],
            );
            check(&resume, "sinks resume hook");
            // The refused ones are due again within max_backoff (1 s).
            std::thread::sleep(Duration::from_millis(1200));

            // Drain: the poll finds an empty listing (one request), then every queued delivery
            // goes to the receiver, now accepting.
            s.fake.reset(0);
            s.fake.take_counts();
            let drain = run_once(opts, &config, Phase::Drain);
            check(&drain, "draining the backlog");
            let got = s.receiver.take();
            let c = s.fake.take_counts();
            let t = &got.arrivals;
            let m = t.len();
            let first = arrival_rate(t, 0, k.min(m).saturating_sub(1));
            let last = arrival_rate(t, m.saturating_sub(k), m.saturating_sub(1));
            let all = arrival_rate(t, 0, m.saturating_sub(1));
            let cpu_us = drain.cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
            eprintln!(
                "  N = {n}, run {r}: queueing `once` exit {} in {:.0} ms ({queued:?} queued, {} refused); drain {:.0} ms wall, {:.0} ms CPU ({cpu_us:.1} µs per delivery), {m} received, {} listing requests; deliveries/s first {k} {first:.0?}, last {k} {last:.0?}, first to last {all:.0?}; drain {:?}",
                queue.exit_code,
                ms(queue.wall),
                refused.refused,
                ms(drain.wall),
                ms(drain.cpu),
                c.listing,
                drain.drain
            );
            if m != n {
                res.note(format!(
                    "backlog N = {n}, run {r}: {m} of {n} deliveries received by the drain ({} refused while queueing; the queueing `once` exited {}): see --backlog-refuse",
                    refused.refused, queue.exit_code
                ));
            }
            let name = |what: &str| format!("N = {n}: {what}");
            if let Some(q) = queued {
                res.add(
                    sec,
                    &name("deliveries queued (binary's log)"),
                    "deliveries",
                    q,
                );
            }
            res.add(
                sec,
                &name(&format!("refused ({refuse}) while queueing")),
                "answers",
                refused.refused as f64,
            );
            res.add(
                sec,
                &name("wall time of the queueing `once --wait 0s`"),
                "ms",
                ms(queue.wall),
            );
            res.add(sec, &name("deliveries received"), "deliveries", m as f64);
            res.add(
                sec,
                &name("distinct webhook-ids received"),
                "deliveries",
                got.distinct as f64,
            );
            if let Some(v) = first {
                res.add(
                    sec,
                    &name(&format!("deliveries/s over the first {k}")),
                    "deliveries/s",
                    v,
                );
            }
            if let Some(v) = last {
                res.add(
                    sec,
                    &name(&format!("deliveries/s over the last {k}")),
                    "deliveries/s",
                    v,
                );
            }
            if let Some(v) = all {
                res.add(sec, &name("deliveries/s, first to last"), "deliveries/s", v);
            }
            res.add(
                sec,
                &name("CPU time of the draining `once` per delivery (user + system, / N)"),
                "µs",
                cpu_us,
            );
            res.add(
                sec,
                &name("wall time of the draining `once`"),
                "ms",
                ms(drain.wall),
            );
            if let Some(d) = drain.poll_num("duration_ms") {
                res.add(sec, &name("its poll (binary's log)"), "ms", d);
            }
            for key in ["delivered", "dead", "pending"] {
                if let Some(v) = drain.drain.get(key).and_then(Value::as_f64) {
                    res.add(
                        sec,
                        &name(&format!("{key} (binary's log)")),
                        "deliveries",
                        v,
                    );
                }
            }
            res.add(
                sec,
                &name("peak RSS of the draining `once`"),
                "MiB",
                kib_to_mib(drain.max_rss_kib),
            );
            cleanup(opts, &dir);
        }
    }
}

fn section_rss(opts: &Opts, s: &Servers, work: &Path, res: &mut Results) {
    let runs = opts.rss_runs.unwrap_or(opts.runs);
    eprintln!("== rss (sizes {:?}, {runs} runs each)", opts.rss_sizes);
    for &n in &opts.rss_sizes {
        for r in 0..runs {
            s.fake.reset(n);
            let dir = work.join(format!("rss-{n}-{r}"));
            let config = write_config(opts, s, &dir);
            let full = run_once(opts, &config, Phase::Rss);
            check(&full, "full sync");
            let noop = run_once(opts, &config, Phase::Rss);
            check(&noop, "no-op poll");
            eprintln!(
                "  N = {n}, run {r}: full sync {:.0} ms, peak RSS {:.1} MiB; no-op {:.0} ms, peak RSS {:.1} MiB",
                ms(full.wall),
                kib_to_mib(full.max_rss_kib),
                ms(noop.wall),
                kib_to_mib(noop.max_rss_kib)
            );
            let sec = "e. peak RSS";
            res.add(
                sec,
                &format!("full sync, N = {n}"),
                "MiB",
                kib_to_mib(full.max_rss_kib),
            );
            res.add(
                sec,
                &format!("no-op poll, N = {n}"),
                "MiB",
                kib_to_mib(noop.max_rss_kib),
            );
            res.add(
                "e. full sync by size",
                &format!("wall time, N = {n}"),
                "ms",
                ms(full.wall),
            );
            cleanup(opts, &dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn machine() -> Vec<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or_else(
            || "?".into(),
            |k| format!("{:.1} GiB", k as f64 / 1048576.0),
        );
    let nproc = std::thread::available_parallelism().map_or(0, |p| p.get());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    vec![
        format!("nproc: {nproc}"),
        format!("cpu: {cpu}"),
        format!("memory: {mem}"),
        format!("commit: {commit}"),
        format!("unix time: {}", now_s()),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(LAUNCH) {
        return launcher(&args[2..]);
    }
    let opts = Opts::parse();
    if !opts.bench && !opts.serve {
        eprintln!("scale: run me with `cargo bench --bench scale -- [options]`; doing nothing");
        return;
    }
    assert!(opts.runs >= 1, "--runs must be at least 1");
    let base = now_s();
    let work = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("devin-notify-scale-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create the work directory");

    let s = start_servers(base, opts.created_order);
    let started = Instant::now();
    let largest = [opts.sessions, opts.deliveries]
        .into_iter()
        .chain(opts.rss_sizes.iter().copied())
        .chain(
            opts.backlog_sizes
                .iter()
                .copied()
                .filter(|_| opts.only.contains(&Section::Backlog)),
        )
        .max()
        .unwrap_or(0);
    let largest = if opts.serve { opts.sessions } else { largest };
    s.fake.ensure(largest);
    eprintln!(
        "dataset of {largest} sessions generated in {:.0} ms; fake API at {}, receiver at {}; work dir {}",
        ms(started.elapsed()),
        s.api_url,
        s.hook_url,
        work.display()
    );

    if opts.serve {
        s.fake.reset(opts.sessions);
        let config = write_config(&opts, &s, &work.join("serve"));
        println!("config: {}", config.display());
        println!(
            "try: {} once --config {}",
            env!("CARGO_BIN_EXE_devin-notify"),
            config.display()
        );
        println!("press Enter to stop");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }

    for line in machine() {
        eprintln!("{line}");
    }
    let mut res = Results::default();
    let sections = [
        (
            Section::Floors,
            section_floors as fn(&Opts, &Servers, &Path, &mut Results),
        ),
        (Section::Sync, section_sync),
        (Section::Steady, section_steady),
        (Section::Deliver, section_deliver),
        (Section::Rss, section_rss),
        (Section::Backlog, section_backlog),
    ];
    for (section, run) in sections {
        if opts.only.contains(&section) {
            let t = Instant::now();
            run(&opts, &s, &work, &mut res);
            eprintln!("   ({section:?} took {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    ratios(&opts, &mut res);
    println!("## devin-notify scale benchmark");
    for line in machine() {
        println!("- {line}");
    }
    println!(
        "- options: sessions {}, runs {}, changed {}, deliveries {}, page_size {}, rss sizes {:?}, created_at order {:?}, sections {:?}",
        opts.sessions,
        opts.runs,
        opts.changed,
        opts.deliveries,
        opts.page_size,
        opts.rss_sizes,
        opts.created_order,
        opts.only
    );
    if opts.only.contains(&Section::Backlog) {
        println!(
            "- backlog: sizes {:?}, refused with {} while queueing, K = min(10000, N/2)",
            opts.backlog_sizes, opts.backlog_refuse
        );
    }
    res.print();
    if let Some(path) = &opts.json {
        let doc = json!({
            "machine": machine(),
            "rows": res.rows.iter().map(|r| json!({
                "section": r.section, "name": r.name, "unit": r.unit,
                "median": r.median(), "samples": r.samples,
            })).collect::<Vec<_>>(),
            "notes": res.notes,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json"))
            .expect("write --json");
    }
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&work);
        if let Some(url) = &opts.postgres {
            drop_pg_schemas(url);
        }
    }
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
}

/// Ratios of the figures to their floors, as notes.
fn ratios(opts: &Opts, res: &mut Results) {
    let floor_http = res.median("floors", "HTTP: serve + read the full listing");
    let floor_json = res.median("floors", "JSON: decode all pages (devin::Page::decode)");
    let floor_sled = res.median("floors", &format!("sled: insert N ({SLED_FLOOR}), flush"));
    let floor_get = res.median("floors", &format!("sled: get + compare N ({SLED_FLOOR})"));
    let startup = res.median("floors", "`once` on an empty listing (start-up)");
    let full = res.median("a. full sync", "wall time of `once`");
    let noop = res.median("b. no-op poll", "wall time of `once`");
    if let (Some(h), Some(j), Some(sl), Some(st)) = (floor_http, floor_json, floor_sled, startup) {
        let sequential = st + h + j + sl;
        // The poller requests and decodes the next page on one core while it writes this one
        // on the other: with two cores the floor is the longer of the two, plus start-up.
        let overlapped = st + (h + j).max(sl);
        res.note(format!(
            "full-sync floors for N = {}: start-up + HTTP + decode + sled insert = {sequential:.0} ms in sequence, {overlapped:.0} ms with fetching and writing overlapped on two cores",
            opts.sessions
        ));
        if let Some(f) = full {
            res.note(format!(
                "full sync: {f:.0} ms = {:.2}x the sequential floor, {:.2}x the overlapped floor; target 2000 ms: {}",
                f / sequential,
                f / overlapped,
                if f <= 2000.0 {
                    format!("met ({:.2}x the target)", f / 2000.0)
                } else {
                    format!("missed by {:.0} ms ({:.1}x)", f - 2000.0, f / 2000.0)
                }
            ));
        }
        if let (Some(n), Some(g)) = (noop, floor_get) {
            let floor = h + j + g + st;
            res.note(format!(
                "no-op poll reading the full listing: floor (start-up + HTTP + decode + sled get) = {floor:.0} ms; measured {n:.0} ms = {:.2}x; with one request the floor is the start-up, {st:.0} ms ({:.1}x)",
                n / floor,
                n / st
            ));
        }
    }
}
