//! Hostile upstream: every misbehaviour of the Devin API the fake can produce, each hitting the
//! middle of a multi-page listing (page_size 2, 8 sessions, so 4 pages), through the real binary
//! (`once`) and the real service loop (`run`).
//!
//! For each fault: no panic; the cause is named on stderr; the pages committed before the fault
//! were delivered exactly once and nothing after it was; no false event; and the next clean
//! `once` delivers exactly the remaining real changes, each exactly once. Faults that are
//! legitimately survivable (the same page twice, one session twice, unknown fields and values, a
//! large page within the limit) succeed with exactly the right events.

use crate::harness;
use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::{Env, SECRET, TOKEN};
use serde_json::{json, Value};
use support::{pr, session, webhooks, Fault, FaultAt, RecordedRequest};

const BIN: &str = env!("CARGO_BIN_EXE_devin-notify");
const WAIT: Duration = Duration::from_secs(15);
/// 8 sessions at page_size 2: pages 0..=3.
const SESSIONS: usize = 8;

const RULES: &str = r#"
[[rules]]
name = "all-to-hook"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook"]

[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["slack"]
template = "needs_input"
[rules.when]
status_detail = ["waiting_for_user"]

[[rules]]
name = "prs"
events = ["pull_request.opened", "pull_request.state_changed"]
sinks = ["slack"]
"#;

/// The secret parts of the harness config: none may appear in any output.
fn assert_no_secrets(output: &str) {
    for secret in [TOKEN, "slacksecretpath", "hooksecretquery", &SECRET[6..]] {
        assert!(
            !output.contains(secret),
            "`{secret}` leaked into:\n{output}"
        );
    }
}

/// What one session's real change must produce.
#[derive(Debug, Clone, Default)]
struct Expected {
    /// Webhook event types, in detection order.
    hook: Vec<String>,
    /// Slack `text` fallbacks.
    slack: Vec<String>,
}

/// An environment after a silent baseline of 8 sessions, with a real change made to every
/// session since: what each page must deliver is known.
struct Scenario {
    env: Env,
    /// Session ids per page, in listing order.
    pages: Vec<Vec<String>>,
    expected: BTreeMap<String, Expected>,
}

impl Scenario {
    /// Seeds the fake, records the baseline with a clean `once`, then changes every session
    /// (see [`Scenario::change_all`]).
    async fn start(env: Env) -> Scenario {
        let mut scn = Scenario::seed(env);
        let report = scn.env.once().await.expect("baseline");
        assert!(report.poll.baseline);
        assert_eq!(report.poll.pages, SESSIONS / 2);
        assert_eq!(
            scn.env.hook.count() + scn.env.slack.count(),
            0,
            "silent baseline"
        );
        scn.change_all();
        scn
    }

    /// Seeds the fake with 8 sessions; nothing is polled yet.
    fn seed(env: Env) -> Scenario {
        let ids: Vec<String> = (0..SESSIONS).map(|i| format!("s{i}")).collect();
        env.api.upsert_all(ids.iter().map(|id| session(id)));
        let listed: Vec<String> = env
            .api
            .sessions()
            .iter()
            .map(|s| s["session_id"].as_str().expect("id").to_owned())
            .collect();
        let pages: Vec<Vec<String>> = listed.chunks(2).map(<[String]>::to_vec).collect();
        Scenario {
            env,
            pages,
            expected: BTreeMap::new(),
        }
    }

    /// Changes every session: each waits for its user; the first of each page opens a PR; the
    /// second of each odd page is archived. Records what each must deliver.
    fn change_all(&mut self) {
        for (p, page) in self.pages.iter().enumerate() {
            for (i, id) in page.iter().enumerate() {
                let mut exp = Expected::default();
                let url = format!("https://github.com/acme/api/pull/{}", p * 10 + 1);
                let archive = i == 1 && p % 2 == 1;
                self.env.api.update(id, |s| {
                    s["status_detail"] = json!("waiting_for_user");
                    if i == 0 {
                        s["pull_requests"] = json!([pr(&url, "open")]);
                    }
                    if archive {
                        s["is_archived"] = json!(true);
                    }
                });
                exp.hook.push("session.status_changed".into());
                exp.slack
                    .push(format!("Devin needs your input on Session {id}"));
                if archive {
                    exp.hook.push("session.archived".into());
                }
                if i == 0 {
                    exp.hook.push("pull_request.opened".into());
                    exp.slack.push(format!(
                        "Devin opened a pull request (open): {url} (Session {id})"
                    ));
                }
                self.expected.insert(id.clone(), exp);
            }
        }
    }

    fn all_sessions(&self) -> Vec<String> {
        self.pages.concat()
    }

    /// Waits until the receivers got at least every expected delivery.
    async fn wait_delivered(&self) {
        let hook: usize = self.expected.values().map(|e| e.hook.len()).sum();
        let slack: usize = self.expected.values().map(|e| e.slack.len()).sum();
        self.env.hook.wait_for(hook, WAIT).await;
        self.env.slack.wait_for(slack, WAIT).await;
    }

    fn sessions_of(&self, pages: std::ops::Range<usize>) -> Vec<String> {
        self.pages[pages].concat()
    }

    fn event_count(&self, ids: &[String]) -> usize {
        ids.iter().map(|id| self.expected[id].hook.len()).sum()
    }

    /// Asserts that the receivers hold exactly the changes of these sessions, each once (no
    /// more, no fewer, no other), webhooks signed and under distinct ids.
    fn assert_delivered(&self, ids: &[String], context: &str) {
        let mut want_hook: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut want_slack: Vec<String> = Vec::new();
        for id in ids {
            want_hook.insert(id.clone(), self.expected[id].hook.clone());
            want_slack.extend(self.expected[id].slack.iter().cloned());
        }
        let mut got_hook: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut webhook_ids = HashSet::new();
        for rec in self.env.hook.received() {
            webhooks::verify_received(SECRET, &rec).unwrap_or_else(|e| panic!("signature: {e}"));
            let id = rec.header("webhook-id").expect("webhook-id").to_owned();
            assert!(webhook_ids.insert(id.clone()), "{context}: {id} sent twice");
            let body = rec.json();
            let sid = body["data"]["session"]["session_id"]
                .as_str()
                .expect("session_id")
                .to_owned();
            let kind = body["type"].as_str().expect("type").to_owned();
            got_hook.entry(sid).or_default().push(kind);
        }
        assert_eq!(got_hook, want_hook, "{context}: webhook deliveries");
        let mut got_slack: Vec<String> = self
            .env
            .slack
            .received()
            .iter()
            .map(|r| r.json()["text"].as_str().expect("text").to_owned())
            .collect();
        got_slack.sort();
        want_slack.sort();
        assert_eq!(got_slack, want_slack, "{context}: Slack deliveries");
    }
}

/// `devin-notify once` as an operator runs it; (exit status, stdout + stderr, time taken).
async fn once_binary(env: &Env) -> (ExitStatus, String, Duration) {
    let mut cmd = Command::new(BIN);
    cmd.arg("once")
        .arg("--config")
        .arg(&env.config_path)
        .current_dir(env.dir.path())
        .env_remove("DEVIN_API_KEY")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = cmd.output().expect("spawn devin-notify");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status, text, started.elapsed())
    })
    .await
    .expect("join")
}

/// How a fault must end.
enum Outcome {
    /// `once` exits 3 naming every one of `cause`; pages `0..committed` were committed and
    /// delivered, the rest were not.
    Fails {
        committed: usize,
        cause: &'static [&'static str],
    },
    /// `once` succeeds and delivers every change exactly once.
    Survives,
}

struct Case {
    page: usize,
    fault: Spec,
    /// (from, to) replacements in the config, e.g. a short timeout.
    config: &'static [(&'static str, &'static str)],
    outcome: Outcome,
}

/// The fault, or how to build it from the scenario (for answers made of the real sessions).
enum Spec {
    Fixed(Fault),
    Built(fn(&Scenario) -> Fault),
}

/// The listing requests of the poll that started at request `from`.
fn listing_requests(env: &Env, from: usize) -> Vec<RecordedRequest> {
    env.api
        .requests()
        .into_iter()
        .skip(from)
        .filter(RecordedRequest::is_listing)
        .collect()
}

async fn check(case: Case) {
    let mut env = Env::start(RULES).await;
    for (from, to) in case.config {
        env.tweak(from, to);
    }
    let scn = Scenario::start(env).await;
    let env = &scn.env;
    let before = env.api.request_count();
    let fault = match case.fault {
        Spec::Fixed(f) => f,
        Spec::Built(build) => build(&scn),
    };
    env.api.inject(FaultAt::Page(case.page), fault.clone());
    let (status, out, took) = once_binary(env).await;
    // Shown with --nocapture: what an operator reads.
    println!(
        "{fault:?} -> {status}:\n{}",
        out.lines().last().unwrap_or_default()
    );
    assert_no_secrets(&out);
    assert!(!out.contains("panicked"), "{out}");
    let requests = listing_requests(env, before);
    assert!(
        requests.iter().any(|r| r.fault.as_ref() == Some(&fault)),
        "the fault was never hit: {requests:#?}"
    );
    let all = scn.all_sessions();
    match case.outcome {
        Outcome::Fails { committed, cause } => {
            assert_eq!(status.code(), Some(3), "exit code for {fault:?}:\n{out}");
            assert!(
                out.contains("the Devin API could not be read: GET http://127.0.0.1:")
                    && out.contains("/v3/enterprise/sessions"),
                "the message names the request:\n{out}"
            );
            for c in cause {
                assert!(out.contains(c), "`{c}` not named:\n{out}");
            }
            // The poll stopped at the fault: no retry storm, no page after it.
            assert_eq!(
                requests.len(),
                case.page + 1,
                "requests of the failed poll: {requests:#?}"
            );
            // Well before a stalled answer (20 s) would have come: the timeouts hold.
            assert!(took < Duration::from_secs(10), "once took {took:?}");
            let done = scn.sessions_of(0..committed);
            scn.assert_delivered(&done, "after the failed once");

            // The API recovers: the next clean once delivers exactly the rest.
            let report = env.once().await.expect("clean once after the fault");
            let rest = scn.sessions_of(committed..scn.pages.len());
            assert_eq!(
                (report.poll.changed, report.poll.events),
                (rest.len(), scn.event_count(&rest)),
                "the pages before the fault stayed committed; only the rest changed"
            );
            assert_eq!(report.drain.pending + report.drain.dead, 0);
            scn.assert_delivered(&all, "after the clean once");
        }
        Outcome::Survives => {
            assert!(status.success(), "{fault:?} must be survivable:\n{out}");
            assert!(out.contains("poll done"), "{out}");
            scn.assert_delivered(&all, "after the once");
        }
    }
    // And a further poll finds nothing new.
    let report = env.once().await.expect("quiet once");
    assert_eq!((report.poll.changed, report.poll.events), (0, 0));
    scn.assert_delivered(&all, "after a quiet once");
}

fn fails(page: usize, fault: Fault, cause: &'static [&'static str]) -> Case {
    Case {
        page,
        fault: Spec::Fixed(fault),
        config: &[],
        outcome: Outcome::Fails {
            committed: page,
            cause,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500() {
    check(fails(
        2,
        Fault::status(500),
        &["HTTP 500: server error", "injected 500"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_502_with_an_html_body() {
    check(fails(
        1,
        Fault::Html502,
        &["HTTP 502: server error", "502 Bad Gateway"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_with_retry_after() {
    check(fails(
        2,
        Fault::TooMany {
            retry_after: Some("7".into()),
        },
        &["HTTP 429: rate limited, retry after 7s"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_401() {
    check(fails(
        1,
        Fault::status(401),
        &["HTTP 401: the token was refused", "devin.token"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_403() {
    check(fails(
        2,
        Fault::status(403),
        &["HTTP 403: the token was refused", "ViewAccountSessions"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_422() {
    check(fails(
        2,
        Fault::status(422),
        &["HTTP 422: the request was rejected", "injected 422"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset() {
    check(fails(
        1,
        Fault::Reset,
        &["error sending request", "connection error"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_past_the_request_timeout() {
    check(Case {
        page: 2,
        fault: Spec::Fixed(Fault::Stall(Duration::from_secs(20))),
        config: &[("timeout = \"5s\"", "timeout = \"300ms\"")],
        outcome: Outcome::Fails {
            committed: 2,
            cause: &["no complete answer within 0.3s (devin.timeout)"],
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json() {
    check(fails(
        2,
        Fault::Truncated,
        &["the answer is not a sessions page", "EOF while parsing"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_json_of_the_wrong_shape() {
    check(fails(
        1,
        Fault::WrongShape,
        &["the answer is not a sessions page", "missing field `items`"],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_item_of_the_wrong_shape() {
    // A page of the right shape whose second session has a field of the wrong type: that item
    // is skipped and named in the log; the rest of the page is read, and the listing goes on.
    let env = Env::start(RULES).await;
    let scn = Scenario::start(env).await;
    let env = &scn.env;
    let mut bad = session("bad");
    bad["created_at"] = json!("yesterday");
    let body = json!({
        "items": [session("fine"), bad],
        "end_cursor": null,
        "has_next_page": false,
        "total": 2,
    });
    env.api.inject(
        FaultAt::Page(0),
        Fault::Status {
            code: 200,
            body: body.to_string(),
            content_type: "application/json".into(),
            headers: Vec::new(),
        },
    );
    let (status, out, _) = once_binary(env).await;
    assert!(status.success(), "{out}");
    assert!(
        out.contains("skipped an item that is not a session: item 1 (session bad)"),
        "{out}"
    );
    assert!(out.contains("invalid type: string \"yesterday\""), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_repeats() {
    // Page 2 is real data and is committed; its cursor would loop, so the poll stops there.
    check(Case {
        page: 2,
        fault: Spec::Fixed(Fault::RepeatCursor),
        config: &[],
        outcome: Outcome::Fails {
            committed: 3,
            cause: &["the listing repeats cursor", "stopping to avoid a loop"],
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_larger_than_the_limit() {
    check(Case {
        page: 2,
        fault: Spec::Fixed(Fault::HugePage { bytes: 200_000 }),
        config: &[("page_size = 2", "page_size = 2\nmax_response_bytes = 65536")],
        outcome: Outcome::Fails {
            committed: 2,
            cause: &["larger than the 65536-byte limit (devin.max_response_bytes)"],
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_page_within_the_limit() {
    check(Case {
        page: 1,
        fault: Spec::Fixed(Fault::HugePage { bytes: 4_000_000 }),
        config: &[],
        outcome: Outcome::Survives,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_page_twice() {
    check(Case {
        page: 1,
        fault: Spec::Fixed(Fault::SamePageTwice),
        config: &[],
        outcome: Outcome::Survives,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_twice_in_a_page() {
    check(Case {
        page: 2,
        fault: Spec::Fixed(Fault::DuplicateSession),
        config: &[],
        outcome: Outcome::Survives,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_page_without_a_cursor() {
    // Page 2 is served with its real sessions but claims a next page and gives no cursor: its
    // data is committed, then the poll stops with the cause.
    fn build(scn: &Scenario) -> Fault {
        let items: Vec<Value> = scn.pages[2]
            .iter()
            .map(|id| scn.env.api.get(id).expect("listed"))
            .collect();
        let body = json!({"items": items, "end_cursor": null, "has_next_page": true, "total": 8});
        Fault::Status {
            code: 200,
            body: body.to_string(),
            content_type: "application/json".into(),
            headers: Vec::new(),
        }
    }
    check(Case {
        page: 2,
        fault: Spec::Built(build),
        config: &[],
        outcome: Outcome::Fails {
            committed: 3,
            cause: &["has_next_page is true but end_cursor is missing"],
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_and_enum_values_are_data() {
    let env = Env::start(RULES).await;
    let ids: Vec<String> = (0..SESSIONS).map(|i| format!("u{i}")).collect();
    env.api.upsert_all(ids.iter().map(|id| session(id)));
    env.once().await.expect("baseline");
    let listed: Vec<String> = env
        .api
        .sessions()
        .iter()
        .map(|s| s["session_id"].as_str().expect("id").to_owned())
        .collect();
    // Pages 1 and 2 drift: unknown fields everywhere, unknown status, detail, origin, category
    // and PR state values.
    let drifted = &listed[2..6];
    for (i, id) in drifted.iter().enumerate() {
        env.api.update(id, |s| {
            s["status"] = json!("hibernating");
            s["status_detail"] = json!("dreaming");
            s["origin"] = json!("carrier_pigeon");
            s["category"] = json!("interpretive_dance");
            s["risk_score"] = json!(0.25);
            s["next_gen"] = json!({"nested": [1, {"deep": null}], "flag": true});
            s["pull_requests"] = json!([{
                "pr_url": format!("https://github.com/acme/api/pull/{i}"),
                "pr_state": "queued_for_merge",
                "ci_status": "green",
            }]);
        });
    }
    let (status, out, _) = once_binary(&env).await;
    assert!(status.success(), "{out}");
    assert_no_secrets(&out);
    let hook = env.hook.received();
    let mut got: Vec<(String, String)> = hook
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["data"]["session"]["session_id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
                b["type"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = drifted
        .iter()
        .flat_map(|id| {
            [
                (id.clone(), "pull_request.opened".to_owned()),
                (id.clone(), "session.status_changed".to_owned()),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    for rec in &hook {
        let b = rec.json();
        let data = &b["data"];
        match b["type"].as_str() {
            Some("session.status_changed") => assert_eq!(
                data["change"],
                json!({"from_status": "running", "status": "hibernating",
                       "from_status_detail": "working", "status_detail": "dreaming"})
            ),
            _ => assert_eq!(data["change"]["pr_state"], "queued_for_merge"),
        }
        // Unknown fields are kept and passed on.
        assert_eq!(data["session"]["risk_score"], 0.25);
        assert_eq!(
            data["session"]["next_gen"]["nested"][1],
            json!({"deep": null})
        );
        assert_eq!(data["session"]["origin"], "carrier_pigeon");
    }
    let slack: Vec<String> = env
        .slack
        .received()
        .iter()
        .map(|r| r.json()["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(
        slack.len(),
        drifted.len(),
        "only the PRs reach Slack: {slack:?}"
    );
    assert!(slack
        .iter()
        .all(|t| t.starts_with("Devin opened a pull request (queued_for_merge)")));

    // A change to an unknown field only is no event.
    env.api
        .update(&drifted[0], |s| s["risk_score"] = json!(0.75));
    let report = env.once().await.expect("quiet once");
    assert_eq!((report.poll.changed, report.poll.events), (1, 0));
    assert_eq!(env.hook.count(), hook.len());
}

/// A bare HTTP/1.1 server on 127.0.0.1 for answers the fake cannot give: after the request
/// head, it writes `head`, then `chunks` body chunks of 8 KiB each (chunked encoding), then
/// stalls for `stall` before closing. Returns its base URL.
async fn raw_server(head: &'static str, chunks: usize, stall: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("2000\r\n{}\r\n", "x".repeat(0x2000));
                for _ in 0..chunks {
                    if conn.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(stall).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_length_is_capped_while_streaming() {
    // No Content-Length to refuse up front: the cap must hold while reading.
    let mut env = Env::start(RULES).await;
    let url = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        64,
        Duration::ZERO,
    )
    .await;
    env.tweak(&env.api.base_url(), &url);
    env.tweak("page_size = 2", "page_size = 2\nmax_response_bytes = 65536");
    let err = env.once().await.expect_err("too large");
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("larger than the 65536-byte limit (devin.max_response_bytes)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_midway_hits_the_total_timeout() {
    let mut env = Env::start(RULES).await;
    let url = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"items\":[",
        0,
        Duration::from_secs(20),
    )
    .await;
    env.tweak(&env.api.base_url(), &url);
    env.tweak("timeout = \"5s\"", "timeout = \"400ms\"");
    let started = Instant::now();
    let err = env.once().await.expect_err("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("no complete answer within 0.4s (devin.timeout)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_opens_hits_the_connect_timeout() {
    // A listener whose accept queue is full (backlog 0, one connection queued and never
    // accepted): the kernel drops further SYNs, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let mut env = Env::start(RULES).await;
    env.tweak(&env.api.base_url(), &format!("http://{addr}"));
    env.tweak(
        "timeout = \"5s\"",
        "timeout = \"20s\"\nconnect_timeout = \"300ms\"",
    );
    let started = Instant::now();
    let err = env.once().await.expect_err("connect timeout");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}: {err}");
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("could not connect within 0.3s (devin.connect_timeout)"),
        "{err}"
    );
    drop((listener, fillers));
}

/// Waits for the first full listing (4 pages answered 200): the baseline is then recorded.
async fn wait_baseline(env: &Env) {
    env.api
        .wait_until(
            |reqs| reqs.iter().filter(|r| r.status == 200).count() >= SESSIONS / 2,
            WAIT,
        )
        .await;
}

/// The time from each faulted listing request to the listing request after it (a messages
/// request for the page before may arrive in between: the next page is fetched while a page
/// is processed).
fn gaps_after_faults(reqs: &[RecordedRequest]) -> Vec<Duration> {
    let listing: Vec<&RecordedRequest> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/sessions"))
        .collect();
    listing
        .windows(2)
        .filter(|w| w[0].fault.is_some())
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_honours_retry_after_on_429_recovers_by_itself_and_logs_the_cause() {
    let mut env = Env::start(RULES).await;
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"300ms\"");
    let mut scn = Scenario::seed(env);
    let env = &scn.env;
    let log_path = env.dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&env.config_path)
        .current_dir(env.dir.path())
        .env_remove("DEVIN_API_KEY")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn run");
    let mut child = harness::Reaped(child);
    wait_baseline(env).await;
    env.api.inject(
        FaultAt::Page(2),
        Fault::TooMany {
            retry_after: Some("2".into()),
        },
    );
    scn.change_all();
    let env = &scn.env;
    scn.wait_delivered().await;

    // The poll after the 429 waited the 2 s the API asked for (the interval is 300 ms, the
    // first failure's backoff about as long)...
    let reqs = env.api.requests();
    let limited = reqs
        .iter()
        .position(|r| r.status == 429)
        .expect("the 429 was served");
    let gaps = gaps_after_faults(&reqs);
    assert_eq!(gaps.len(), 1, "{reqs:#?}");
    assert!(
        gaps[0] >= Duration::from_secs(2),
        "waited only {:?}",
        gaps[0]
    );
    // ...then polling went back to its interval: two more full listings come quickly.
    let resumed = env
        .api
        .wait_until(|r| r.len() >= limited + 1 + 3 * (SESSIONS / 2), WAIT)
        .await;
    let starts: Vec<Instant> = resumed[limited + 1..]
        .iter()
        .filter(|r| r.path.ends_with("/sessions") && r.param("after").is_none())
        .map(|r| r.at)
        .collect();
    assert!(starts.len() >= 3, "{resumed:#?}");
    assert!(
        starts[2].duration_since(starts[1]) < Duration::from_millis(1500),
        "polling did not return to its interval: {:?}",
        starts[2].duration_since(starts[1])
    );
    // Every change exactly once, nothing more after further polls.
    scn.assert_delivered(&scn.all_sessions(), "run after a 429");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let log = std::fs::read_to_string(&log_path).expect("read log");
    assert!(status.success(), "exit {status:?}:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_no_secrets(&log);
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("poll failed")).collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains("ERROR")
            && failed[0].contains("/v3/enterprise/sessions?first=2&")
            && failed[0].contains("&after=")
            && failed[0].contains("HTTP 429: rate limited, retry after 2s")
            && failed[0].contains("retry_in_ms=2000"),
        "{}",
        failed[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_backs_off_on_repeated_failures_and_recovers_by_itself() {
    let mut env = Env::start(RULES).await;
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    let mut scn = Scenario::seed(env);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(devin_notify::service::run(scn.env.active(), None, async {
        let _ = stop_rx.await;
    }));
    wait_baseline(&scn.env).await;
    // Three polls in a row fail in the middle of the listing, each differently.
    for fault in [Fault::status(503), Fault::Reset, Fault::Truncated] {
        scn.env.api.inject(FaultAt::Page(1), fault);
    }
    scn.change_all();
    scn.wait_delivered().await;
    let reqs = scn.env.api.requests();
    let gaps = gaps_after_faults(&reqs);
    assert_eq!(gaps.len(), 3, "{reqs:#?}");
    // Backoff from the 200 ms interval, doubling (with ±20% jitter): ~200, ~400, ~800 ms.
    assert!(gaps[1] >= Duration::from_millis(320), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(640), "{gaps:?}");
    assert!(gaps[2] > gaps[0], "{gaps:?}");
    scn.assert_delivered(&scn.all_sessions(), "run after three failures");
    stop_tx.send(()).expect("service running");
    service
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    // Nothing is delivered twice, even across a restart.
    let report = scn.env.once().await.expect("once after run");
    assert_eq!((report.poll.changed, report.poll.events), (0, 0));
    scn.assert_delivered(&scn.all_sessions(), "once after run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_caps_an_absurd_retry_after() {
    // A proxy answering `Retry-After: 86400` must not silence the service for a day: the wait
    // is capped at the failure backoff's ceiling (10 poll intervals).
    let mut env = Env::start(RULES).await;
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    let mut scn = Scenario::seed(env);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(devin_notify::service::run(scn.env.active(), None, async {
        let _ = stop_rx.await;
    }));
    wait_baseline(&scn.env).await;
    scn.env.api.inject(
        FaultAt::Page(1),
        Fault::TooMany {
            retry_after: Some("86400".into()),
        },
    );
    scn.change_all();
    scn.wait_delivered().await;
    let gaps = gaps_after_faults(&scn.env.api.requests());
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_secs(2), "{gaps:?}");
    scn.assert_delivered(&scn.all_sessions(), "run after a long Retry-After");
    stop_tx.send(()).expect("service running");
    service
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("run failed: {e}"));
}
