//! Discord sinks: embeds posted with `?wait=true`, mentions always off, session values escaped
//! for Discord markdown, Discord's 429 `retry_after` honoured, and an empty rate-limit bucket
//! (`X-RateLimit-Remaining: 0`) pacing the next send.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::Env;
use serde_json::json;
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.status_changed"]
sinks = ["chat"]
"#;

/// An env whose `chat` sink is a Discord webhook at the `hook` receiver.
async fn started() -> Env {
    let mut env = Env::start(RULES).await;
    let url = env.hook.url("/api/webhooks/123/discordtoken");
    env.set_extra(&format!(
        "[sinks.chat]\ntype = \"discord\"\nurl = \"{url}\"\nmax_per_second = 50\n"
    ));
    // Retry-After is capped at max_backoff: leave room for Discord's 0.4 s.
    env.tweak("max_backoff = \"200ms\"", "max_backoff = \"2s\"");
    let mut s = session("s1");
    s["title"] = json!("@everyone <@123> [x](https://evil.example) **now**");
    env.api.upsert_all([s]);
    env.once().await.expect("baseline");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_gets_escaped_embeds_with_mentions_off_and_its_retry_after_is_honoured() {
    let env = started().await;
    env.hook.script(vec![Reply::Status(
        429,
        r#"{"message":"You are being rate limited.","retry_after":0.4,"global":false}"#.into(),
    )]);
    env.api.update("s1", |s| s["status"] = json!("exit"));
    let report = env.once().await.expect("delivered after the 429");
    assert_eq!((report.drain.delivered, report.drain.retried), (1, 1));
    let got = env.hook.wait_for(2, WAIT).await;
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(400),
        "retry_after honoured: {waited:?}"
    );
    for r in &got {
        assert_eq!(r.path, "/api/webhooks/123/discordtoken");
        assert_eq!(r.query.as_deref(), Some("wait=true"));
    }
    let v = got[1].json();
    assert_eq!(v["allowed_mentions"], json!({"parse": []}));
    let embed = &v["embeds"][0];
    assert_eq!(
        embed["title"],
        "\\@everyone \\<\\@123\\> \\[x\\]\\(https\\://evil.example\\) \\*\\*now\\*\\*"
    );
    assert_eq!(embed["color"], 0x2EB67D, "finished: green");
    assert!(embed["description"]
        .as_str()
        .is_some_and(|d| d.contains("Devin finished")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_discord_payload_over_discords_limits() {
    let mut env = started().await;
    let dir = env.dir.path().join("templates");
    std::fs::create_dir_all(dir.join("discord")).expect("dir");
    let fields: Vec<String> = (0..26)
        .map(|i| format!(r#"{{"name": "f{i}", "value": "{{{{session.status}}}}"}}"#))
        .collect();
    std::fs::write(
        dir.join("discord/session.status_changed.hbs"),
        format!(
            r#"{{"embeds": [{{"title": "t", "fields": [{}]}}]}}"#,
            fields.join(",")
        ),
    )
    .expect("template");
    env.tweak(
        "[store]",
        &format!("[templates]\ndir = \"{}\"\n\n[store]", dir.display()),
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("rules[0]") && out.contains("embeds[0] has 26 fields (Discord allows 25)"),
        "{out}"
    );
}

/// What Discord answers to `POST /api/webhooks/ID/TOKEN?wait=true`: the created message, with
/// the bucket's rate-limit headers.
fn created_message(remaining: u32, reset_after: &str) -> Reply {
    Reply::Json(
        200,
        vec![
            ("x-ratelimit-limit", "5".into()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset-after", reset_after.into()),
            ("x-ratelimit-bucket", "abcd1234".into()),
        ],
        json!({"id": "1100000000000000001", "type": 0, "channel_id": "1000", "content": "",
               "embeds": [], "webhook_id": "123"})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_rate_limit_bucket_holds_the_next_send_until_it_resets() {
    let env = started().await;
    // The first message empties the bucket for 0.5 s; the second must wait for it.
    env.hook
        .script(vec![created_message(0, "0.5"), created_message(4, "2")]);
    env.hook.set_default(created_message(4, "2"));
    env.api.upsert(session("s2"));
    env.once().await.expect("s2 recorded");
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.api.update("s2", |s| s["status"] = json!("error"));
    let report = env.once().await.expect("both delivered");
    assert_eq!((report.drain.delivered, report.drain.retried), (2, 0));
    let got = env.hook.wait_for(2, WAIT).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(450),
        "the second send waited for the bucket to reset: {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_over_discords_limits_is_cut_to_fit_when_sent() {
    let mut env = started().await;
    let dir = env.dir.path().join("templates");
    std::fs::create_dir_all(dir.join("discord")).expect("dir");
    // A custom template that shows the whole title, three times: fine for the samples `check`
    // renders, over every limit for this session's 5,000-character title.
    std::fs::write(
        dir.join("discord/session.status_changed.hbs"),
        r#"{"content": "{{session.title}}", "embeds": [{"title": "{{session.title}}",
            "description": "{{session.title}}", "fields": [{"name": "Status", "value": "{{session.status}}"}]}]}"#,
    )
    .expect("template");
    env.tweak(
        "[store]",
        &format!("[templates]\ndir = \"{}\"\n\n[store]", dir.display()),
    );
    env.api.update("s1", |s| {
        s["title"] = json!("long ".repeat(1000));
        s["status"] = json!("exit");
    });
    let report = env.once().await.expect("delivered");
    assert_eq!(report.drain.delivered, 1);
    let got = env.hook.wait_for(1, WAIT).await;
    let v = got[0].json();
    assert_eq!(
        devin_notify::render::discord_limits(&v),
        Vec::<String>::new(),
        "{v}"
    );
    let embed = &v["embeds"][0];
    assert!(embed["title"].as_str().is_some_and(|t| t.ends_with('…')));
    assert_eq!(embed["fields"][0]["value"], "exit", "the short field stays");
    assert_eq!(v["allowed_mentions"], json!({"parse": []}));
}
