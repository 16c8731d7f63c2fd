//! `session.waiting` reminders and `session.acus_exceeded` thresholds, end to end.

use crate::harness;
use crate::support;

use std::time::{Duration, Instant};

use harness::{now_secs, Env};
use serde_json::json;
use support::session;

const WAIT: Duration = Duration::from_secs(10);

/// Sets a session's fields as given, with `updated_at` = now (the real clock: reminders are
/// timed from it).
fn set_now(env: &Env, id: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let mut s = env.api.get(id).expect("session");
    f(&mut s);
    s["updated_at"] = json!(now_secs());
    env.api.upsert(s);
}

fn reminders(env: &Env) -> Vec<serde_json::Value> {
    env.hook
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|v| v["type"] == "session.waiting")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_sessions_are_reminded_then_repeated_until_they_move_on() {
    let env = Env::start(
        r#"
[[rules]]
name = "remind"
events = ["session.waiting"]
sinks = ["hook", "slack"]
remind_after = "2s"
repeat_every = "2s"

[[rules]]
name = "other-reminder-rule"
events = ["session.waiting"]
sinks = ["hook"]
remind_after = "1h"
"#,
    )
    .await;
    env.api.upsert_all([session("s1"), session("s2")]);
    env.once().await.expect("baseline");
    set_now(&env, "s1", |s| {
        s["status_detail"] = json!("waiting_for_user")
    });
    let started = Instant::now();
    env.once().await.expect("the wait is recorded");
    assert!(reminders(&env).is_empty(), "not before remind_after");

    // Polls (each a fresh process: the wait lives in the store) until the first reminder.
    while reminders(&env).is_empty() {
        assert!(started.elapsed() < WAIT, "no reminder");
        tokio::time::sleep(Duration::from_millis(250)).await;
        env.once().await.expect("poll");
    }
    // The wait began at `updated_at`, a whole second: up to 1 s before `started`.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let first = reminders(&env).remove(0);
    assert_eq!(first["data"]["change"]["reminder"], 1);
    assert_eq!(first["data"]["change"]["rule"], "remind");
    assert_eq!(first["data"]["session"]["session_id"], "s1");
    let slack = env.slack.wait_for(1, WAIT).await;
    let text = slack[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.starts_with("Devin has been waiting for you for 2 seconds on Session s1"),
        "{text}"
    );

    // repeat_every: a second reminder.
    while reminders(&env).len() < 2 {
        assert!(started.elapsed() < WAIT * 2, "no repeat");
        tokio::time::sleep(Duration::from_millis(250)).await;
        env.once().await.expect("poll");
    }
    let ids = env.hook.header_values("webhook-id");
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "each reminder once");
    assert_eq!(reminders(&env)[1]["data"]["change"]["reminder"], 2);

    // The session moves on: the wait is cleared, no more reminders.
    set_now(&env, "s1", |s| s["status_detail"] = json!("working"));
    env.once().await.expect("poll");
    let count = reminders(&env).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    env.once().await.expect("poll");
    assert_eq!(
        reminders(&env).len(),
        count,
        "no reminder after the wait ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acu_thresholds_fire_once_per_session_and_threshold() {
    let env = Env::start(
        r#"
[[rules]]
name = "fifty"
events = ["session.acus_exceeded"]
sinks = ["hook"]
[rules.when]
acus_over = 50

[[rules]]
name = "hundred"
events = ["session.acus_exceeded"]
sinks = ["slack"]
[rules.when]
acus_over = 100
"#,
    )
    .await;
    env.api.upsert_all([session("s1"), session("s2")]);
    env.once().await.expect("baseline");
    env.api.update("s1", |s| s["acus_consumed"] = json!(55.5));
    env.api.update("s2", |s| s["acus_consumed"] = json!(20));
    env.once().await.expect("poll");
    let hook = env.hook.wait_for(1, WAIT).await;
    let body = hook[0].json();
    assert_eq!(body["type"], "session.acus_exceeded");
    assert_eq!(
        body["data"]["change"],
        json!({"threshold": 50.0, "acus_consumed": 55.5, "from_acus": 1.5})
    );
    env.api.update("s1", |s| s["acus_consumed"] = json!(70));
    env.once().await.expect("poll");
    assert_eq!(env.hook.count(), 1, "once per threshold");
    env.api.update("s1", |s| s["acus_consumed"] = json!(130));
    env.once().await.expect("poll");
    let slack = env.slack.wait_for(1, WAIT).await;
    assert!(slack[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Session passed 100 ACUs"));
    assert_eq!(env.hook.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_for_the_new_events_are_checked() {
    let mut env = Env::start("").await;
    env.set_rules(
        r#"
[[rules]]
name = "no-delay"
events = ["session.waiting"]
sinks = ["hook"]

[[rules]]
name = "no-threshold"
events = ["session.acus_exceeded"]
sinks = ["hook"]

[[rules]]
name = "stray"
events = ["session.created"]
sinks = ["hook"]
remind_after = "5m"
"#,
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("rules[0].remind_after: is required by session.waiting"),
        "{out}"
    );
    assert!(
        out.contains("rules[1].when.acus_over: is required by session.acus_exceeded"),
        "{out}"
    );
    assert!(
        out.contains("rules[2].remind_after: applies to session.waiting only"),
        "{out}"
    );
}
