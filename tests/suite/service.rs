//! The running service as an operator meets it: health, readiness, metrics, admin commands
//! while it runs, and hot reloads (good, broken, by SIGHUP, with deliveries in flight).

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{free_port, Env, Service};
use serde_json::json;
use support::{session, Fault, FaultAt, Reply};

const WAIT: Duration = Duration::from_secs(20);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook"]
"#;

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Polls `url` until its answer satisfies `ok`.
async fn get_until(url: &str, ok: impl Fn(u16, &str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let (status, body) = get(url).await;
        if ok(status, &body) {
            return body;
        }
        assert!(
            start.elapsed() < WAIT,
            "{url}: last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn served_env(rules: &str) -> (Env, String) {
    let mut env = Env::start(rules).await;
    let port = free_port();
    env.set_extra(&format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    (env, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let (env, base) = served_env(RULES).await;
    env.api.upsert(session("s1"));
    let service = Service::start(&env);
    assert_eq!(
        get_until(&format!("{base}/healthz"), |s, _| s == 200).await,
        "ok\n"
    );
    get_until(&format!("{base}/readyz"), |s, _| s == 200).await;
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.hook.wait_for(1, WAIT).await;
    let metrics = get_until(&format!("{base}/metrics"), |_, b| {
        b.contains("devin_notify_deliveries_total{sink=\"hook\",outcome=\"delivered\"} 1")
    })
    .await;
    for line in [
        "devin_notify_polls_total{outcome=\"ok\"}",
        "devin_notify_poll_duration_seconds_count",
        "devin_notify_api_requests_total{status=\"200\"}",
        "devin_notify_events_total{type=\"session.status_changed\"} 1",
        "devin_notify_delivery_latency_seconds_count{sink=\"hook\"} 1",
        "devin_notify_outbox_depth",
        "devin_notify_dead_letters 0",
        "devin_notify_paused_sinks 0",
        "devin_notify_last_successful_poll_timestamp_seconds",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }

    // The API goes down: not ready after three poll intervals; ready again when it is back.
    env.api.inject(FaultAt::EveryRequest, Fault::status(503));
    let body = get_until(&format!("{base}/readyz"), |s, _| s == 503).await;
    assert!(body.contains("the last successful poll was"), "{body}");
    env.api.clear_faults();
    get_until(&format!("{base}/readyz"), |s, _| s == 200).await;
    let metrics = get(&format!("{base}/metrics")).await.1;
    assert!(
        metrics.contains("devin_notify_polls_total{outcome=\"error\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("devin_notify_api_requests_total{status=\"503\"}"),
        "{metrics}"
    );
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
    assert!(
        log.contains("poll failed") && log.contains("HTTP 503"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_work_while_the_service_holds_the_store() {
    let (env, base) = served_env(RULES).await;
    env.api.upsert_all([session("s1"), session("s2")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    // The receiver echoes a secret of the sink's URL: no log shows it.
    env.hook.script(vec![Reply::Status(
        400,
        "bad: token=hooksecretquery".into(),
    )]);
    env.api.update("s1", |s| s["status"] = json!("exit"));
    service.wait_log("moved to the dead letters", 1, WAIT).await;

    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 dead letter(s)") && out.contains("HTTP 400: bad"),
        "{out}"
    );
    let (status, body) = get(&format!("{base}/api/v1/deliveries?outcome=dead&limit=5")).await;
    assert_eq!(status, 200, "{body}");
    let log: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let entry = &log["deliveries"][0];
    assert_eq!(
        (&entry["session_id"], &entry["status"], &entry["outcome"]),
        (&json!("s1"), &json!(400), &json!("dead")),
        "{body}"
    );
    assert_eq!(log["history"], json!(1000));
    assert!(!body.contains("hooksecretquery"), "{body}");
    let (status, body) = get(&format!("{base}/api/v1/events?limit=5")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"routes\":[{\"rule\":\"all\",\"sink\":\"hook\"}]"),
        "{body}"
    );
    let (code, out) = env.cli(&["dead-letters", "retry", "--all"]).await;
    assert_eq!(code, Some(0), "{out}");
    let got = env.hook.wait_for(2, WAIT).await;
    assert!(got[1].was_accepted());
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("hook") && out.contains("active"), "{out}");
    let (code, out) = env.cli(&["sinks", "resume", "nope"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no sink named `nope`"), "{out}");
    // The delivery log and the event log, through the service too.
    let (code, out) = env
        .cli(&["deliveries", "--outcome", "dead", "--sink", "hook"])
        .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Session s1 (s1)") && out.contains(" 400 ") && out.contains("1 entry"),
        "{out}"
    );
    let (code, out) = env.cli(&["events", "--limit", "5"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("session.status_changed") && out.contains("-> hook"),
        "{out}"
    );
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_apply_good_configs_and_reject_broken_ones() {
    let (mut env, _) = served_env(RULES).await;
    env.api
        .upsert_all([session("s1"), session("s2"), session("s3")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;

    // A file change that adds a Slack rule is picked up without a restart.
    env.set_rules(&format!(
        "{RULES}\n[[rules]]\nname = \"slack-too\"\nevents = [\"session.status_changed\"]\nsinks = [\"slack\"]\n"
    ));
    service.wait_log("configuration reloaded", 1, WAIT).await;
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.slack.wait_for(1, WAIT).await;
    env.hook.wait_for(1, WAIT).await;

    // A broken file is rejected with check's messages; the previous config keeps running.
    env.set_rules(
        "[[rules]]\nname = \"broken\"\nevents = [\"session.exploded\"]\nsinks = [\"pager\"]\n",
    );
    let log = service
        .wait_log("configuration reload rejected", 2, WAIT)
        .await;
    assert!(
        log.contains("rules[0].events: unknown event type `session.exploded`"),
        "{log}"
    );
    assert!(
        log.contains("rules[0].sinks: unknown sink `pager`"),
        "{log}"
    );
    env.api.update("s2", |s| s["status"] = json!("exit"));
    env.slack.wait_for(2, WAIT).await;
    env.hook.wait_for(2, WAIT).await;

    // SIGHUP reloads too (here: the Slack rule goes away).
    std::fs::write(
        &env.config_path,
        env.config_text().replace(
            "[[rules]]\nname = \"broken\"\nevents = [\"session.exploded\"]\nsinks = [\"pager\"]\n",
            RULES,
        ),
    )
    .expect("write");
    service.wait_log("configuration reloaded", 2, WAIT).await;
    service.signal("HUP");
    let log = service.wait_log("trigger=\"SIGHUP\"", 1, WAIT).await;
    assert!(log.contains("configuration reloaded"), "{log}");
    env.api.update("s3", |s| s["status"] = json!("exit"));
    env.hook.wait_for(3, WAIT).await;
    assert_eq!(env.slack.count(), 2, "the Slack rule is gone");
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_deliveries_are_in_flight_keeps_their_payloads() {
    let (mut env, _) = served_env(RULES).await;
    let templates = env.dir.path().join("templates");
    std::fs::create_dir_all(templates.join("webhook")).expect("mkdir");
    std::fs::write(
        templates.join("webhook/custom.hbs"),
        "{\"version\": 1, \"session\": \"{{session.session_id}}\"}",
    )
    .expect("write");
    env.tweak(
        "[server]",
        &format!("[templates]\ndir = \"{}\"\n\n[server]", templates.display()),
    );
    env.set_rules("[[rules]]\nname = \"custom\"\nevents = [\"session.status_changed\"]\nsinks = [\"hook\"]\ntemplate = \"custom\"\n");
    env.api.upsert_all([session("s1"), session("s2")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;

    // s1's delivery is in flight (the receiver stalls) when the template changes.
    env.hook
        .script(vec![Reply::Stall(Duration::from_millis(1500))]);
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.hook.wait_for(1, WAIT).await;
    std::fs::write(
        templates.join("webhook/custom.hbs"),
        "{\"version\": 2, \"session\": \"{{session.session_id}}\"}",
    )
    .expect("write");
    service.wait_log("configuration reloaded", 1, WAIT).await;
    env.api.update("s2", |s| s["status"] = json!("exit"));
    let got = env.hook.wait_for(2, WAIT).await;
    let bodies: Vec<serde_json::Value> = got.iter().map(|r| r.json()).collect();
    assert_eq!(bodies[0], json!({"version": 1, "session": "s1"}));
    assert_eq!(bodies[1], json!({"version": 2, "session": "s2"}));
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}
