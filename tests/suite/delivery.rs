//! Deliveries that survive failure: retries, classification, dead letters, paused sinks,
//! ordering, pacing, and `once --wait`.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::app::AppError;
use harness::{Backend, Env, SECRET};
use serde_json::json;
use support::{closed_port_url, session, webhooks, Reply};

const WAIT: Duration = Duration::from_secs(15);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook"]
"#;

/// An env with a recorded baseline of `ids`.
async fn started(backend: Backend, rules: &str, ids: &[&str]) -> Env {
    let env = Env::start_on(backend, rules).await;
    env.api.upsert_all(ids.iter().map(|id| session(id)));
    env.once().await.expect("baseline");
    env
}

fn change(env: &Env, id: &str, status: &str) {
    env.api.update(id, |s| s["status"] = json!(status));
}

async fn transient_failures_retry_under_one_id_with_fresh_signatures(backend: Backend) {
    let mut env = started(backend, RULES, &["s1"]).await;
    env.tweak("max_attempts = 3", "max_attempts = 6");
    env.tweak("max_backoff = \"200ms\"", "max_backoff = \"5s\"");
    env.hook.script(vec![
        Reply::Status(500, "boom".into()),
        Reply::Status(503, "busy".into()),
        Reply::Status(408, "slow".into()),
        Reply::RetryAfter(429, "1".into()),
    ]);
    change(&env, "s1", "exit");
    let report = env.once().await.expect("delivered in the end");
    assert_eq!(
        (
            report.drain.delivered,
            report.drain.retried,
            report.drain.dead
        ),
        (1, 4, 0)
    );
    let got = env.hook.wait_for(5, WAIT).await;
    let id = got[0].header("webhook-id").expect("id");
    for (i, rec) in got.iter().enumerate() {
        assert_eq!(
            rec.header("webhook-id"),
            Some(id),
            "attempt {i} keeps the id"
        );
        webhooks::verify_received(SECRET, rec).unwrap_or_else(|e| panic!("attempt {i}: {e}"));
        assert_eq!(rec.body, got[0].body, "same payload");
    }
    // Retry-After: 1 was honoured (the configured backoff is 50-200 ms).
    let gap = got[4].at.duration_since(got[3].at);
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After ignored: {gap:?}"
    );
}

async fn permanent_failures_are_dead_letters_that_can_be_retried_and_purged(backend: Backend) {
    let env = started(backend, RULES, &["s1", "s2"]).await;
    env.hook.script(vec![Reply::Status(
        400,
        "invalid_payload: missing field".into(),
    )]);
    change(&env, "s1", "exit");
    let report = env.once().await.expect("once ends: nothing pending");
    assert_eq!((report.drain.delivered, report.drain.dead), (0, 1));
    assert_eq!(env.hook.count(), 1, "a 400 is not retried");

    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("hook") && out.contains("session.status_changed") && out.contains("s1"),
        "{out}"
    );
    assert!(
        out.contains("HTTP 400: invalid_payload: missing field"),
        "{out}"
    );
    assert!(out.contains("1 dead letter(s)"), "{out}");
    let id = env.hook.received()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    assert!(out.contains(&id), "listed by its webhook-id: {out}");

    // Retry: back in the outbox, delivered by the next run under the same id.
    let (code, out) = env.cli(&["dead-letters", "retry", &id]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 delivery(ies) back in the outbox"), "{out}");
    env.once().await.expect("redelivered");
    let got = env.hook.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), Some(id.as_str()));
    assert!(got[1].was_accepted());

    // Purge.
    env.hook.script(vec![Reply::Status(422, "no".into())]);
    change(&env, "s2", "error");
    env.once().await.expect("dead again");
    let (code, out) = env.cli(&["dead-letters", "purge", "--all"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 dead letter(s) purged"), "{out}");
    let (_, out) = env.cli(&["dead-letters", "list"]).await;
    assert!(out.contains("0 dead letter(s)"), "{out}");
    let (code, out) = env.cli(&["dead-letters", "retry", "msg_nope"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no dead letter with id msg_nope"), "{out}");
}

async fn out_of_attempts_and_unreachable_receivers(backend: Backend) {
    let mut env = started(backend, RULES, &["s1"]).await;
    env.tweak(
        &env.hook.url("/hooks/devin?token=hooksecretquery"),
        &closed_port_url(),
    );
    change(&env, "s1", "exit");
    let report = env.once().await.expect("once ends");
    assert_eq!(report.drain.dead, 1);
    let (_, out) = env.cli(&["dead-letters", "list"]).await;
    assert!(out.contains("gave up after 3 attempts"), "{out}");
}

async fn a_stall_past_the_timeout_is_retried(backend: Backend) {
    let mut env = started(backend, RULES, &["s1"]).await;
    env.tweak("timeout = \"2s\"", "timeout = \"300ms\"");
    env.hook.script(vec![Reply::Stall(Duration::from_secs(2))]);
    change(&env, "s1", "exit");
    let report = env.once().await.expect("delivered");
    assert_eq!((report.drain.delivered, report.drain.retried), (1, 1));
    let got = env.hook.wait_for(2, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
}

async fn a_gone_endpoint_pauses_its_sink_and_keeps_the_queue(backend: Backend) {
    let env = started(backend, RULES, &["s1", "s2"]).await;
    env.hook.set_default(Reply::Status(410, "gone".into()));
    change(&env, "s1", "exit");
    change(&env, "s2", "exit");
    let err = env
        .once_waiting(Duration::from_secs(2))
        .await
        .expect_err("pending");
    assert!(matches!(err, AppError::Pending { pending: 2 }), "{err}");
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("paused: endpoint gone (3 answers in a row)"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("hook") && l.contains(" 2 ")),
        "queue kept: {out}"
    );
    let before = env.hook.count();
    // Paused: nothing is sent.
    let err = env
        .once_waiting(Duration::from_millis(100))
        .await
        .expect_err("still pending");
    assert!(matches!(err, AppError::Pending { pending: 2 }), "{err}");
    assert_eq!(env.hook.count(), before);

    // The endpoint is back; an admin resumes the sink; the queue drains.
    env.hook.set_default(Reply::ok());
    let (code, out) = env.cli(&["sinks", "resume", "hook"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sink `hook` resumed"), "{out}");
    let report = env.once().await.expect("drained");
    assert_eq!(report.drain.delivered, 2);
    let (_, out) = env.cli(&["sinks", "list"]).await;
    assert!(out.contains("active"), "{out}");
}

async fn a_failing_delivery_holds_back_only_its_own_lane(backend: Backend) {
    let mut env = started(backend, RULES, &["a", "b"]).await;
    env.tweak("max_backoff = \"200ms\"", "max_backoff = \"5s\"");
    // a's two events (status, then PR) are detected in one poll: one lane, in that order. The
    // first attempt is told to come back in 2 s.
    change(&env, "a", "error");
    env.api.update("a", |s| {
        s["pull_requests"] = json!([support::pr("https://github.com/o/r/pull/1", "open")])
    });
    env.hook.script(vec![Reply::RetryAfter(503, "2".into())]);
    let err = env
        .once_waiting(Duration::ZERO)
        .await
        .expect_err("a is waiting");
    assert!(matches!(err, AppError::Pending { pending: 2 }), "{err}");
    // Meanwhile b changes: its lane is not held back by a's.
    change(&env, "b", "exit");
    let report = env.once().await.expect("delivered");
    assert_eq!(report.drain.delivered, 3);
    let got = env.hook.wait_for(4, WAIT).await;
    let seen: Vec<(String, String, bool)> = got
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["data"]["session"]["session_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["type"].as_str().unwrap_or_default().to_owned(),
                r.was_accepted(),
            )
        })
        .collect();
    let a: Vec<&(String, String, bool)> = seen.iter().filter(|(s, ..)| s == "a").collect();
    assert_eq!(
        a.iter()
            .map(|(_, t, ok)| (t.as_str(), *ok))
            .collect::<Vec<_>>(),
        [
            ("session.status_changed", false),
            ("session.status_changed", true),
            ("pull_request.opened", true)
        ],
        "{seen:?}"
    );
    // b went out before a's retries were over.
    let b_at = seen
        .iter()
        .position(|(s, ..)| s == "b")
        .expect("b delivered");
    let a_ok_at = seen
        .iter()
        .position(|(s, _, ok)| s == "a" && *ok)
        .expect("a delivered");
    assert!(b_at < a_ok_at, "b was held back by a: {seen:?}");
}

async fn slack_sinks_send_about_one_message_a_second_by_default(backend: Backend) {
    let mut env = Env::start_on(
        backend,
        r#"
[[rules]]
name = "slack"
events = ["session.status_changed"]
sinks = ["slack"]
"#,
    )
    .await;
    env.tweak("max_per_second = 200\n", "");
    env.api
        .upsert_all([session("a"), session("b"), session("c")]);
    env.once().await.expect("baseline");
    for id in ["a", "b", "c"] {
        change(&env, id, "exit");
    }
    env.once().await.expect("delivered");
    let got = env.slack.wait_for(3, WAIT).await;
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(900),
            "Slack paced at 1/s: {gap:?}"
        );
    }
}

async fn once_leaves_far_retries_queued_and_says_so(backend: Backend) {
    let mut env = started(backend, RULES, &["s1"]).await;
    env.tweak("max_backoff = \"200ms\"", "max_backoff = \"2h\"");
    env.hook.script(vec![Reply::RetryAfter(503, "3600".into())]);
    change(&env, "s1", "exit");
    let err = env
        .once_waiting(Duration::from_secs(1))
        .await
        .expect_err("pending");
    assert!(matches!(err, AppError::Pending { pending: 1 }), "{err}");
    assert_eq!(err.exit_code(), 4);
    let (code, out) = env.cli(&["once", "--wait", "1s"]).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("1 deliveries are still queued"), "{out}");
    assert_eq!(env.hook.count(), 1, "the retry is not due yet");
}

on_both_backends!(
    transient_failures_retry_under_one_id_with_fresh_signatures,
    permanent_failures_are_dead_letters_that_can_be_retried_and_purged,
    out_of_attempts_and_unreachable_receivers,
    a_stall_past_the_timeout_is_retried,
    a_gone_endpoint_pauses_its_sink_and_keeps_the_queue,
    a_failing_delivery_holds_back_only_its_own_lane,
    slack_sinks_send_about_one_message_a_second_by_default,
    once_leaves_far_retries_queued_and_says_so,
);
