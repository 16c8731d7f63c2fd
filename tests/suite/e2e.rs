//! End to end, in process: the fake Devin API, the real poller, diff, rules, templates, store and
//! sinks, and recording receivers, all over HTTP on 127.0.0.1.

use crate::harness;
use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use devin_notify::app::AppError;
use harness::{Backend, Env, SECRET, TOKEN};
use serde_json::{json, Value};
use support::{pr, session, webhooks};

const WAIT: Duration = Duration::from_secs(10);

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
status_detail = ["waiting_for_user", "waiting_for_approval"]

[[rules]]
name = "prs"
events = ["pull_request.opened", "pull_request.state_changed"]
sinks = ["slack"]
"#;

fn types(recs: &[support::Received]) -> Vec<(String, String)> {
    recs.iter()
        .map(|r| {
            let v = r.json();
            (
                v["data"]["session"]["session_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn silent_baseline_then_every_change_exactly_once(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    let mut s1 = session("s1");
    s1["pull_requests"] = json!([pr("https://github.com/acme/api/pull/1", "open")]);
    env.api.upsert_all([
        s1,
        session("s2"),
        session("s3"),
        session("s4"),
        session("s5"),
    ]);

    // First run: the baseline, silently.
    let report = env.once().await.expect("baseline run");
    assert!(report.poll.baseline);
    assert_eq!(
        (report.poll.pages, report.poll.sessions),
        (3, 5),
        "page_size 2 -> 3 pages"
    );
    assert_eq!(report.poll.deliveries, 0);
    assert_eq!(
        env.slack.count() + env.hook.count(),
        0,
        "a silent baseline sends nothing"
    );

    // Every kind of change at once.
    env.api.update("s1", |s| {
        s["status_detail"] = json!("waiting_for_user");
        s["pull_requests"] = json!([
            pr("https://github.com/acme/api/pull/1", "merged"),
            pr("https://github.com/acme/web/pull/2", "open"),
        ]);
    });
    env.api.update("s2", |s| s["is_archived"] = json!(true));
    env.api.update("s3", |s| {
        s["status"] = json!("exit");
        s["status_detail"] = Value::Null;
    });
    env.api.update("s4", |s| s["acus_consumed"] = json!(99.0)); // not an event
    env.api.upsert(session("s6"));

    let report = env.once().await.expect("second run");
    assert!(!report.poll.baseline);
    assert_eq!(report.drain.delivered, 9);
    assert_eq!(report.drain.pending, 0);

    let hook = env.hook.wait_for(6, WAIT).await;
    let mut got = types(&hook);
    got.sort();
    assert_eq!(
        got,
        [
            ("s1", "pull_request.opened"),
            ("s1", "pull_request.state_changed"),
            ("s1", "session.status_changed"),
            ("s2", "session.archived"),
            ("s3", "session.status_changed"),
            ("s6", "session.created"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // In detection order within a session.
    let s1_order: Vec<String> = types(&hook)
        .into_iter()
        .filter(|(s, _)| s == "s1")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        s1_order,
        [
            "session.status_changed",
            "pull_request.state_changed",
            "pull_request.opened"
        ]
    );

    // Every webhook delivery is signed, verifies, and has a distinct id.
    let mut ids = HashSet::new();
    for rec in &hook {
        webhooks::verify_received(SECRET, rec).unwrap_or_else(|e| panic!("signature: {e}"));
        assert!(ids.insert(rec.header("webhook-id").expect("id").to_owned()));
        assert_eq!(rec.header("x-team"), Some("payments"));
        assert_eq!(rec.header("content-type"), Some("application/json"));
        assert_eq!(rec.path, "/hooks/devin");
        let body = rec.json();
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let status = hook
        .iter()
        .map(|r| r.json())
        .find(|b| b["data"]["session"]["session_id"] == "s3")
        .expect("s3");
    assert_eq!(
        status["data"]["change"],
        json!({"from_status": "running", "status": "exit", "from_status_detail": "working", "status_detail": null})
    );
    assert_eq!(status["data"]["previous"]["status"], "running");

    // Slack: needs-input for s1, and both PR events.
    let slack = env.slack.wait_for(3, WAIT).await;
    let texts: Vec<String> = slack
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(slack.len(), 3, "{texts:?}");
    assert!(
        texts[0].starts_with("Devin needs your input on Session s1"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("Pull request merged")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Devin opened a pull request")),
        "{texts:?}"
    );
    for rec in &slack {
        assert!(
            rec.header("webhook-signature").is_none(),
            "Slack gets no Standard Webhooks headers"
        );
        assert_eq!(rec.path, "/services/T000/B000/slacksecretpath");
    }

    // An unchanged poll sends nothing.
    let report = env.once().await.expect("third run");
    assert_eq!(
        (
            report.poll.events,
            report.poll.changed,
            report.poll.deliveries
        ),
        (0, 0, 0)
    );
    assert_eq!(env.hook.count(), 6);
    assert_eq!(env.slack.count(), 3);
}

async fn hostile_title_reaches_slack_escaped_as_valid_json(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    env.api.upsert(session("s1"));
    env.once().await.expect("baseline");
    let title = "He said \"ship it\" \\o/\nthen <https://evil.example|click here> & <!channel>";
    env.api.update("s1", |s| {
        s["title"] = json!(title);
        s["status_detail"] = json!("waiting_for_approval");
    });
    env.once().await.expect("run");
    let slack = env.slack.wait_for(1, WAIT).await;
    let body = slack[0].json(); // valid JSON, or this panics
    let all = body.to_string();
    assert!(
        !all.contains("<https://evil.example"),
        "link injected: {all}"
    );
    assert!(!all.contains("<!channel>"), "mention injected: {all}");
    let section = body["blocks"][0]["text"]["text"]
        .as_str()
        .expect("section text");
    assert!(
        section.contains("He said \"ship it\" \\o/\nthen &lt;https://evil.example|click here&gt; &amp; &lt;!channel&gt;"),
        "{section}"
    );
    // The webhook gets the title verbatim.
    let hook = env.hook.wait_for(1, WAIT).await;
    assert_eq!(hook[0].json()["data"]["session"]["title"], title);
}

async fn notify_baseline_announces_every_session(backend: Backend) {
    let mut env = Env::start_on(backend, RULES).await;
    env.tweak("[store]\n", "[store]\nbaseline = \"notify\"\n");
    env.api
        .upsert_all([session("a"), session("b"), session("c")]);
    let report = env.once().await.expect("baseline");
    assert!(report.poll.baseline);
    let hook = env.hook.wait_for(3, WAIT).await;
    let mut got = types(&hook);
    got.sort();
    assert_eq!(
        got,
        [
            ("a", "session.created"),
            ("b", "session.created"),
            ("c", "session.created")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // And the next run is a normal one.
    assert!(!env.once().await.expect("second").poll.baseline);
}

async fn filters_page_size_and_auth_reach_the_api(backend: Backend) {
    let mut env = Env::start_on(backend, RULES).await;
    env.set_extra(
        r#"
[devin.filters]
tags = ["team-payments", "urgent"]
org_ids = "org-test"
origins = ["webapp"]
created_after = 1
category = "bug_fixing"
include_deleted_orgs = true
"#,
    );
    // The fake really filters: only the matching session is listed.
    let mut a = session("a");
    a["tags"] = json!(["urgent"]);
    a["category"] = json!("bug_fixing");
    env.api.upsert_all([a, session("b")]);
    let report = env.once().await.expect("run");
    assert_eq!(report.poll.sessions, 1);
    let req = env.api.requests().pop().expect("a request");
    assert_eq!(req.param_all("tags"), ["team-payments", "urgent"]);
    assert_eq!(req.param("org_ids"), Some("org-test"));
    assert_eq!(req.param("origins"), Some("webapp"));
    assert_eq!(req.param("created_after"), Some("1"));
    assert_eq!(req.param("category"), Some("bug_fixing"));
    assert_eq!(req.param("include_deleted_orgs"), Some("true"));
    assert_eq!(req.param("first"), Some("2"));
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

async fn a_refused_token_fails_with_the_url_and_without_the_token(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    env.api.set_token("cog_another_token");
    let err = env.once().await.expect_err("401");
    let text = err.to_string();
    assert!(matches!(err, AppError::Poll(_)), "{text}");
    assert_eq!(err.exit_code(), 3);
    assert!(
        text.contains("HTTP 401") && text.contains("/v3/enterprise/sessions"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
}

async fn a_pull_request_that_vanishes_and_returns_is_announced_once(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    env.api.upsert_all([session("s1"), session("s2")]);
    env.once().await.expect("baseline");
    let url = "https://github.com/acme/api/pull/7";
    env.api
        .update("s1", |s| s["pull_requests"] = json!([pr(url, "open")]));
    let opened = env.once().await.expect("opened");
    assert_eq!(opened.poll.events, 1);
    // One listing leaves the pull request out (`null`, then `[]`), the next has it again.
    env.api.update("s1", |s| s["pull_requests"] = Value::Null);
    assert_eq!(env.once().await.expect("vanished").poll.events, 0);
    env.api.update("s1", |s| s["pull_requests"] = json!([]));
    assert_eq!(env.once().await.expect("still gone").poll.events, 0);
    env.api
        .update("s1", |s| s["pull_requests"] = json!([pr(url, "open")]));
    let back = env.once().await.expect("back");
    assert_eq!(
        (back.poll.changed, back.poll.events),
        (1, 0),
        "not announced again"
    );
    // Its later changes are still events, and so is another pull request.
    env.api.update("s1", |s| {
        s["pull_requests"] = json!([
            pr(url, "merged"),
            pr("https://github.com/acme/api/pull/8", "open")
        ])
    });
    assert_eq!(env.once().await.expect("later").poll.events, 2);
    // Gone again, and back closed: not "opened", but the change from merged to closed.
    env.api.update("s1", |s| s["pull_requests"] = Value::Null);
    assert_eq!(env.once().await.expect("gone again").poll.events, 0);
    env.api.update("s1", |s| {
        s["pull_requests"] = json!([
            pr(url, "closed"),
            pr("https://github.com/acme/api/pull/8", "open")
        ])
    });
    let back = env.once().await.expect("back closed");
    assert_eq!(back.poll.events, 1);
    let hook = env.hook.wait_for(4, WAIT).await;
    let mut got: Vec<(String, String)> = hook
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["type"].as_str().unwrap_or_default().to_owned(),
                v["data"]["change"]["pr_url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    got.sort();
    let pair = |t: &str, u: &str| (t.to_owned(), u.to_owned());
    assert_eq!(
        got,
        [
            pair("pull_request.opened", url),
            pair("pull_request.opened", "https://github.com/acme/api/pull/8"),
            pair("pull_request.state_changed", url),
            pair("pull_request.state_changed", url),
        ]
    );
    let last = hook
        .iter()
        .map(|r| r.json())
        .filter(|v| v["type"] == "pull_request.state_changed")
        .map(|v| {
            (
                v["data"]["change"]["from_pr_state"].clone(),
                v["data"]["change"]["pr_state"].clone(),
            )
        })
        .collect::<Vec<_>>();
    assert!(
        last.contains(&(json!("merged"), json!("closed"))),
        "{last:?}"
    );
    // Slack (rule "prs") posted the same four.
    env.slack.wait_for(4, WAIT).await;
    assert_eq!(env.slack.count(), 4);
    assert_eq!(env.hook.count(), 4);
}

on_both_backends!(
    silent_baseline_then_every_change_exactly_once,
    hostile_title_reaches_slack_escaped_as_valid_json,
    notify_baseline_announces_every_session,
    filters_page_size_and_auth_reach_the_api,
    a_refused_token_fails_with_the_url_and_without_the_token,
    a_pull_request_that_vanishes_and_returns_is_announced_once,
);
