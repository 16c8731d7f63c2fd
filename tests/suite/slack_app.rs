//! The Slack app sink against a fake Slack Web API on loopback: a parent message per session,
//! replies in its thread, the parent updated in place, threads that survive restarts, Slack's
//! `ok: false` errors classified, and a token that never shows.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::app::AppError;
use devin_notify::store::{Delivery, Store};
use harness::Env;
use serde_json::{json, Value};
use support::fake_slack::CHANNEL;
use support::{session, FakeSlack, SlackReply};

/// The bot token the fake accepts.
const BOT_TOKEN: &str = "xoxb-0000-1111-BOTTOKENSECRET";

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["app"]
"#;

/// The `[sinks.app]` section pointing at `fake`, with extra keys.
fn app_sink(fake: &FakeSlack, token: &str, extra: &str) -> String {
    format!(
        "[sinks.app]\ntype = \"slack_app\"\ntoken = \"{token}\"\nchannel = \"{}\"\napi_base = \"{}\"\nmax_per_second = 200\n{extra}\n",
        CHANNEL.0,
        fake.api_base()
    )
}

/// An env whose `app` sink posts to a fake Slack, with a recorded baseline of `ids`.
async fn started(extra: &str, ids: &[&str]) -> (Env, FakeSlack) {
    let mut env = Env::start(RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&app_sink(&fake, BOT_TOKEN, extra));
    env.api.upsert_all(ids.iter().map(|id| session(id)));
    env.once().await.expect("baseline");
    (env, fake)
}

fn change(env: &Env, id: &str, status: &str) {
    env.api.update(id, |s| s["status"] = json!(status));
}

fn open_pr(env: &Env, id: &str, n: u32, state: &str) {
    env.api.update(id, |s| {
        s["pull_requests"] = json!([support::pr(
            &format!("https://github.com/acme/api/pull/{n}"),
            state
        )])
    });
}

fn text(body: &Value) -> String {
    body["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_posts_and_later_events_reply_in_its_thread() {
    let (env, fake) = started("", &["s1", "s2"]).await;
    change(&env, "s1", "error");
    change(&env, "s2", "exit");
    let report = env.once().await.expect("delivered");
    assert_eq!((report.drain.delivered, report.drain.dead), (2, 0));
    let parents = fake.parents(CHANNEL.1);
    assert_eq!(parents.len(), 2, "{parents:?}");

    open_pr(&env, "s1", 1, "open");
    env.once().await.expect("delivered");
    open_pr(&env, "s1", 1, "merged");
    env.once().await.expect("delivered");

    // Still two parents; s1's thread holds its two later messages, in order; s2 has none.
    let parents = fake.parents(CHANNEL.1);
    assert_eq!(parents.len(), 2, "{parents:?}");
    let calls = fake.calls_to("chat.postMessage");
    let parent_of = |id: &str| {
        calls
            .iter()
            .find(|c| c.body["thread_ts"].is_null() && text(&c.body).contains(id))
            .map(|c| c.answer["ts"].as_str().expect("ts").to_owned())
            .unwrap_or_else(|| panic!("no parent for {id}: {calls:#?}"))
    };
    let (s1, s2) = (parent_of("s1"), parent_of("s2"));
    let replies = fake.replies(&s1);
    assert_eq!(
        replies
            .iter()
            .map(|m| m.text.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "Devin opened a pull request (open): https://github.com/acme/api/pull/1 (Session s1)",
            "Pull request merged: https://github.com/acme/api/pull/1 (Session s1)"
        ],
        "{replies:?}"
    );
    assert!(fake.replies(&s2).is_empty());
    assert!(
        fake.calls_to("chat.update").is_empty(),
        "update_parent is off"
    );

    for call in fake.calls() {
        assert!(call.ok(), "{call:?}");
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("Bearer {BOT_TOKEN}").as_str())
        );
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert!(
            call.body["blocks"].is_array(),
            "the slack templates: {call:?}"
        );
        assert!(
            !call.raw.contains(BOT_TOKEN),
            "the token is not in the body"
        );
    }
    // Parents go to the channel as configured; replies to the id Slack answered.
    assert_eq!(calls[0].body["channel"], CHANNEL.0);
    let reply = calls
        .iter()
        .find(|c| c.body["thread_ts"] == json!(s1))
        .expect("a reply");
    assert_eq!(reply.body["channel"], CHANNEL.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_parent_edits_the_parent_in_place_and_its_failure_is_not_fatal() {
    let (env, fake) = started("update_parent = true", &["s1"]).await;
    change(&env, "s1", "error");
    env.once().await.expect("parent");
    assert!(
        fake.calls_to("chat.update").is_empty(),
        "nothing to update yet"
    );
    let parent = fake.parents(CHANNEL.1).remove(0);
    assert_eq!(
        parent.text.as_deref(),
        Some("Devin hit an error: Session s1")
    );

    change(&env, "s1", "exit");
    env.once().await.expect("reply");
    let updates = fake.calls_to("chat.update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].ok(), "{:?}", updates[0]);
    assert_eq!(
        updates[0].body["channel"], CHANNEL.1,
        "chat.update takes ids"
    );
    assert_eq!(updates[0].body["ts"], json!(parent.ts));
    let now = fake.message(&parent.ts).expect("parent");
    assert_eq!(now.edits, 1);
    assert_eq!(now.text.as_deref(), Some("Devin finished: Session s1"));
    assert_eq!(fake.replies(&parent.ts).len(), 1);
    assert_eq!(
        now.blocks,
        fake.replies(&parent.ts)[0].blocks,
        "the parent shows the latest message"
    );

    // A failed update is logged; the reply counts as delivered and is not sent again.
    fake.script(
        "chat.update",
        vec![SlackReply::error("cant_update_message")],
    );
    open_pr(&env, "s1", 7, "open");
    let report = env.once().await.expect("delivered");
    assert_eq!(
        (
            report.drain.delivered,
            report.drain.retried,
            report.drain.dead
        ),
        (1, 0, 0)
    );
    assert_eq!(fake.replies(&parent.ts).len(), 2);
    assert_eq!(fake.message(&parent.ts).expect("parent").edits, 1);
    assert_eq!(fake.calls_to("chat.postMessage").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_survive_a_restart() {
    let (env, fake) = started("", &["s1"]).await;
    change(&env, "s1", "error");
    env.once().await.expect("parent");
    let parent = fake.parents(CHANNEL.1).remove(0);

    // Another process (the binary), the same store: the stored ts is used.
    change(&env, "s1", "exit");
    let (code, out) = env.cli(&["once"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(fake.parents(CHANNEL.1).len(), 1, "no second parent");
    let replies = fake.replies(&parent.ts);
    assert_eq!(replies.len(), 1, "{:?}", fake.messages());
    assert_eq!(
        replies[0].text.as_deref(),
        Some("Devin finished: Session s1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_a_crash_is_not_posted_twice() {
    let (env, fake) = started("", &["s1"]).await;
    change(&env, "s1", "error");
    env.once().await.expect("parent");
    change(&env, "s1", "exit");
    env.once().await.expect("reply");
    assert_eq!(fake.calls_to("chat.postMessage").len(), 2);

    // A crash after the thread was recorded but before the delivery left the outbox: put the
    // delivery back, as a restart would find it.
    let path = env.dir.path().join("store");
    {
        let store = Store::open(&path, 1 << 20).expect("open store");
        let thread = store
            .slack_thread("app", "s1")
            .await
            .expect("read")
            .expect("a thread");
        let redelivery = Delivery {
            id: thread.last_delivery.clone(),
            sink: "app".into(),
            rule: "all".into(),
            session_id: "s1".into(),
            session_title: None,
            event_id: "evt_x".into(),
            event_type: "session.status_changed".into(),
            body: r#"{"text":"again"}"#.into(),
            detected_at_ms: 1,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            creator: None,
        };
        store
            .commit(&devin_notify::store::Commit {
                deliveries: vec![redelivery],
                ..Default::default()
            })
            .await
            .expect("queue");
        store.flush().await.expect("flush");
    }
    let report = env.once().await.expect("settled");
    assert_eq!((report.drain.delivered, report.drain.pending), (1, 0));
    assert_eq!(
        fake.calls_to("chat.postMessage").len(),
        2,
        "the redelivery was recognised: {:?}",
        fake.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_that_is_gone_is_started_anew() {
    let (env, fake) = started("", &["s1"]).await;
    change(&env, "s1", "error");
    env.once().await.expect("parent");
    fake.script(
        "chat.postMessage",
        vec![SlackReply::error("thread_not_found")],
    );
    change(&env, "s1", "exit");
    let report = env.once().await.expect("delivered");
    assert_eq!((report.drain.delivered, report.drain.dead), (1, 0));
    let parents = fake.parents(CHANNEL.1);
    assert_eq!(parents.len(), 2, "a new parent: {:?}", fake.messages());
    // Later messages go to the new thread.
    open_pr(&env, "s1", 2, "open");
    env.once().await.expect("delivered");
    assert_eq!(fake.replies(&parents[1].ts).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_false_errors_are_dead_letters_named_by_the_error() {
    let (env, fake) = started("", &["s1", "s2"]).await;
    fake.script(
        "chat.postMessage",
        vec![
            SlackReply::error("invalid_blocks"),
            SlackReply::error("msg_too_long"),
        ],
    );
    change(&env, "s1", "error");
    change(&env, "s2", "exit");
    let report = env.once().await.expect("nothing pending");
    assert_eq!((report.drain.delivered, report.drain.dead), (0, 2));
    assert_eq!(
        fake.calls_to("chat.postMessage").len(),
        2,
        "permanent errors are not retried"
    );
    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 dead letter(s)"), "{out}");
    assert!(out.contains("Slack error `invalid_blocks`"), "{out}");
    assert!(out.contains("Slack error `msg_too_long`"), "{out}");

    // Retried from the dead letters, they post (as parents: nothing was posted before).
    let (code, out) = env.cli(&["dead-letters", "retry", "--all"]).await;
    assert_eq!(code, Some(0), "{out}");
    let report = env.once().await.expect("delivered");
    assert_eq!(report.drain.delivered, 2);
    assert_eq!(fake.parents(CHANNEL.1).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let (mut env, fake) = started("", &["s1"]).await;
    env.tweak("max_attempts = 3", "max_attempts = 6");
    env.tweak("max_backoff = \"200ms\"", "max_backoff = \"5s\"");
    fake.script(
        "chat.postMessage",
        vec![
            SlackReply::RateLimited(1),
            SlackReply::TooMany(1),
            SlackReply::Status(503, "upstream".into()),
        ],
    );
    change(&env, "s1", "error");
    let report = env.once().await.expect("delivered in the end");
    assert_eq!(
        (
            report.drain.delivered,
            report.drain.retried,
            report.drain.dead
        ),
        (1, 3, 0)
    );
    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 4);
    for pair in calls[..3].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After ignored: {gap:?}"
        );
    }
    assert_eq!(fake.parents(CHANNEL.1).len(), 1, "posted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_channel_pauses_the_sink_and_keeps_the_queue() {
    let mut env = Env::start(RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&app_sink(&fake, BOT_TOKEN, "").replace(
        &format!("channel = \"{}\"", CHANNEL.0),
        "channel = \"new-channel\"",
    ));
    env.api.upsert_all([session("s1"), session("s2")]);
    env.once().await.expect("baseline");
    change(&env, "s1", "error");
    change(&env, "s2", "exit");
    let err = env
        .once_waiting(Duration::from_secs(2))
        .await
        .expect_err("pending");
    assert!(matches!(err, AppError::Pending { pending: 2 }), "{err}");
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("paused: endpoint gone (3 answers in a row)")
            && out.contains("channel_not_found"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("app ") && l.contains("slack_app") && l.contains(" 2 ")),
        "queue kept: {out}"
    );
    let (_, out) = env.cli(&["dead-letters", "list"]).await;
    assert!(out.contains("0 dead letter(s)"), "{out}");

    // The channel exists now (the bot was invited); an admin resumes the sink.
    fake.add_channel("new-channel", "C0NEW0001");
    let (code, out) = env.cli(&["sinks", "resume", "app"]).await;
    assert_eq!(code, Some(0), "{out}");
    let report = env.once().await.expect("drained");
    assert_eq!(report.drain.delivered, 2);
    assert_eq!(fake.parents("C0NEW0001").len(), 2);
}

/// Runs the binary with `RUST_LOG=trace`; returns (exit code, stdout+stderr).
async fn run_traced(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    env.cli_with_env(args, &[("RUST_LOG", "trace")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_appears_in_logs_or_errors() {
    const WRONG: &str = "xoxb-9999-WRONGTOKENSECRET";
    let mut env = Env::start(RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&app_sink(&fake, WRONG, "update_parent = true"));
    env.api.upsert(session("s1"));
    env.once().await.expect("baseline");
    fake.script(
        "chat.postMessage",
        vec![SlackReply::Status(500, "oops".into())],
    );
    change(&env, "s1", "error");
    let mut all = String::new();
    for args in [
        &["once"][..],
        &["dead-letters", "list"],
        &["sinks", "list"],
        &["check"],
        &["preview", "--rule", "all"],
    ] {
        let (_, out) = run_traced(&env, args).await;
        all.push_str(&out);
    }
    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2, "500 retried, then invalid_auth: {calls:?}");
    assert_eq!(calls[1].answer["error"], "invalid_auth");
    assert!(all.contains("Slack error `invalid_auth`"), "{all}");
    assert!(all.contains("HTTP 500"), "{all}");
    assert!(
        !all.contains("WRONGTOKENSECRET"),
        "the token leaked:\n{all}"
    );

    // A malformed token is reported by key, without its value.
    env.set_extra(&app_sink(&fake, "Bearer WRONGTOKENSECRET", ""));
    let (code, out) = run_traced(&env, &["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("sinks.app.token: is not a Slack token"),
        "{out}"
    );
    assert!(!out.contains("WRONGTOKENSECRET"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_keys_defaults_and_templates() {
    let mut env = Env::start(
        r#"
[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["app", "slack"]
template = "needs_input"
"#,
    )
    .await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&app_sink(&fake, BOT_TOKEN, "").replace("max_per_second = 200\n", ""));
    let active = env.active();
    let sink = &active.config.sinks["app"];
    assert_eq!(sink.kind(), "slack_app");
    assert_eq!((sink.max_per_second(), sink.concurrency()), (Some(1.0), 1));
    let devin_notify::config::SinkConfig::SlackApp(app) = sink else {
        panic!("{sink:?}")
    };
    assert!(!app.update_parent);
    assert!(!format!("{sink:?}").contains("BOTTOKENSECRET"));

    // The same Block Kit templates as `slack` sinks: `check` passes, `preview` shows them.
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = env.cli(&["preview", "--rule", "needs-input"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("── sink `app` (slack_app), session.status_changed ──"),
        "{out}"
    );
    let bodies: Vec<&str> = out.split("── sink ").skip(1).collect();
    assert_eq!(bodies.len(), 2, "{out}");
    let strip = |b: &str| b.split_once('\n').map(|(_, rest)| rest.trim().to_owned());
    assert_eq!(strip(bodies[0]), strip(bodies[1]), "same payload as slack");

    // A typo is an error naming the key; so is a template the slack folder lacks.
    env.set_extra(&app_sink(&fake, BOT_TOKEN, "update_parents = true"));
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("sinks.app.update_parents"), "{out}");
    env.set_extra(&app_sink(&fake, BOT_TOKEN, ""));
    env.set_rules(
        r#"
[[rules]]
name = "r"
events = ["session.created"]
sinks = ["app"]
template = "nope"
"#,
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no template `slack/nope`"), "{out}");
}

/// The example config with its commented Slack app sink and rule enabled.
fn example_with_slack_app() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/devin-notify.toml"
    ))
    .expect("example config");
    let mut out = String::new();
    let mut enabling = false;
    let lines: Vec<&str> = text.lines().collect();
    for (i, &line) in lines.iter().enumerate() {
        // The sink, and its rule (the example's other commented rules stay commented).
        let threads_rule =
            line == "# [[rules]]" && lines.get(i + 1) == Some(&"# name = \"session-threads\"");
        if line == "# [sinks.team_slack_app]" || threads_rule {
            enabling = true;
        } else if line.trim().is_empty() {
            enabling = false;
        }
        match line.strip_prefix("# ").filter(|_| enabling) {
            Some(enabled) => out.push_str(enabled),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_slack_app_sink_and_rule_pass_check() {
    let text = example_with_slack_app();
    assert!(
        text.contains("\n[sinks.team_slack_app]\ntype = \"slack_app\"\n"),
        "{text}"
    );
    assert!(
        text.contains("\n[[rules]]\nname = \"session-threads\"\n"),
        "{text}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("devin-notify.toml");
    std::fs::write(&path, text).expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_devin-notify"));
    cmd.args(["check", "--config"])
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DEVIN_API_KEY", "cog_example_token")
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/example",
        )
        .env("AUTOMATION_SECRET", harness::SECRET)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("spawn"))
        .await
        .expect("join");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("3 sink(s), 7 rule(s)") && text.contains("OK"),
        "{text}"
    );
}
