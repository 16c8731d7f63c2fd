//! What a poll costs in API requests: Devin's messages are read only for waiting events that a
//! rule routes somewhere, once per event, several at a time (at most
//! `devin.max_concurrent_requests`).

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::Env;
use serde_json::json;
use support::{message, session};

/// Only team-a's sessions are routed when they wait.
const RULES: &str = r#"
[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["hook"]
[rules.when]
status_detail = ["waiting_for_user"]
tags = ["team-a"]
"#;

/// An env with `n` sessions (even ones tagged team-a, with a question from Devin), recorded,
/// listed 50 a page, whose messages endpoint takes 300 ms to answer.
async fn started(n: usize, extra: &str) -> Env {
    let mut env = Env::start(RULES).await;
    env.tweak("page_size = 2", &format!("page_size = 50\n{extra}"));
    env.api.upsert_all((0..n).map(|i| {
        let mut s = session(&format!("s{i}"));
        s["tags"] = json!([if i % 2 == 0 { "team-a" } else { "team-b" }]);
        s
    }));
    for i in 0..n {
        env.api.set_messages(
            &format!("s{i}"),
            vec![message("devin", &format!("Question {i}?"), 1)],
        );
    }
    env.once().await.expect("baseline");
    env.api.set_messages_delay(Duration::from_millis(300));
    for i in 0..n {
        env.api.update(&format!("s{i}"), |s| {
            s["status_detail"] = json!("waiting_for_user")
        });
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_routed_waiting_events_read_messages_and_reads_overlap() {
    let env = started(12, "").await;
    let before = env.api.request_count();
    let report = env.once().await.expect("poll");
    assert_eq!(report.poll.events, 12, "every session started waiting");
    assert_eq!(report.drain.delivered, 6, "team-a's six are routed");
    let messages: Vec<String> = env.api.requests()[before..]
        .iter()
        .filter(|r| r.is_messages())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(messages.len(), 6, "one read per routed event: {messages:?}");
    for i in (0..12).step_by(2) {
        assert!(
            messages.iter().any(|p| p.contains(&format!("devin-s{i}/"))),
            "s{i} was read: {messages:?}"
        );
    }
    let most = env.api.messages_most_at_once();
    assert!(most >= 2, "the reads overlapped: at most {most} at once");
    assert!(most <= 8, "within devin.max_concurrent_requests: {most}");
    for r in env.hook.received() {
        let body = r.json();
        let id = body["data"]["session"]["session_id"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let n: usize = id.trim_start_matches('s').parse().expect("an id");
        assert_eq!(body["data"]["last_devin_message"], format!("Question {n}?"));
    }

    // Retried or repeated polls read nothing again.
    let before = env.api.request_count();
    env.once().await.expect("quiet poll");
    assert!(
        !env.api.requests()[before..].iter().any(|r| r.is_messages()),
        "no read for events already recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_once_stay_within_the_limit() {
    let env = started(16, "max_concurrent_requests = 2").await;
    let report = env.once().await.expect("poll");
    assert_eq!(report.drain.delivered, 8);
    let most = env.api.messages_most_at_once();
    assert_eq!(most, 2, "two at a time, and they did overlap");
}
