//! Quiet hours: deliveries a rule matches while muted (`mute_during`, `active_during`) are held
//! in the store, in order, and go out when the mute ends: one by one under the ids they would
//! have had, or as one summary per (rule, sink) with `collapse_held`; never dropped, never
//! twice, across restarts of the real binary, on sled and on PostgreSQL.

use crate::harness;
use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use devin_notify::event::delivery_id;
use harness::{Backend, Env, SchemaGuard, Service};
use serde_json::Value;
use support::session;

const WAIT: Duration = Duration::from_secs(15);

/// Always on: a rule muted during it holds everything until the configuration changes.
const ALWAYS: &str = "[time_intervals.always]\ntimezone = \"Europe/Paris\"\n";

fn rule(name: &str, sinks: &str, extra: &str) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nevents = [\"session.created\", \"session.status_changed\"]\nsinks = [{sinks}]\n{extra}\n"
    )
}

/// What the store holds now (the service is not running: `once` has returned).
async fn held_ids(env: &Env) -> Vec<String> {
    let store = env.store_unlocked().await;
    store
        .held()
        .await
        .expect("held")
        .into_iter()
        .map(|(_, h)| h.delivery.id)
        .collect()
}

/// Creates sessions one poll each, so that their events are detected in this order.
async fn create_in_order(env: &Env, ids: &[&str]) {
    for id in ids {
        env.api.upsert(session(id));
        env.once().await.expect("poll");
    }
}

/// Changes a session's status detail (a `session.status_changed`).
fn change(env: &Env, id: &str, detail: &str) {
    env.api
        .update(id, |s| s["status_detail"] = Value::from(detail));
}

/// The event type and status detail of each webhook one session's events sent, in the order
/// received (one session's deliveries to one sink go out in detection order; different
/// sessions' may go out concurrently).
fn lane(env: &Env, id: &str) -> Vec<String> {
    env.hook
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|v| v["data"]["session"]["session_id"] == id)
        .map(|v| {
            let kind = v["type"].as_str().unwrap_or_default().to_owned();
            let detail = v["data"]["session"]["status_detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            format!("{kind} {detail}")
        })
        .collect()
}

/// The event id of a webhook's body.
fn event_id(body: &Value) -> String {
    body["data"]["event_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn muted_deliveries_are_held_in_order_and_sent_in_order_when_unmuted(backend: Backend) {
    let mut env = Env::start_on(
        backend,
        &rule("quiet", "\"hook\"", "mute_during = [\"always\"]"),
    )
    .await;
    env.set_extra(ALWAYS);
    env.api.upsert(session("s0"));
    env.once().await.expect("baseline");
    create_in_order(&env, &["s1", "s2"]).await;
    for detail in ["waiting_for_user", "finished"] {
        change(&env, "s1", detail);
        env.once().await.expect("poll");
    }
    assert_eq!(env.hook.count(), 0, "muted: nothing sent");
    let held = held_ids(&env).await;
    assert_eq!(held.len(), 4, "held: {held:?}");

    // The mute ends (the rule no longer names the interval): the next run sends them, in order.
    env.set_rules(&rule("quiet", "\"hook\"", ""));
    env.once().await.expect("release");
    let got = env.hook.wait_for(4, WAIT).await;
    assert_eq!(
        lane(&env, "s1"),
        [
            "session.created working",
            "session.status_changed waiting_for_user",
            "session.status_changed finished"
        ]
    );
    assert_eq!(lane(&env, "s2"), ["session.created working"]);
    // Under the ids they would have had, and the ids that were held.
    for r in &got {
        let expected = delivery_id(&event_id(&r.json()), "quiet", "hook");
        assert_eq!(r.header("webhook-id"), Some(expected.as_str()));
    }
    let sent: HashSet<String> = env.hook.header_values("webhook-id").into_iter().collect();
    assert_eq!(sent, held.into_iter().collect::<HashSet<_>>());
    assert!(held_ids(&env).await.is_empty());
    env.once().await.expect("again");
    assert_eq!(env.hook.count(), 4, "sent once");
}

async fn an_unmuted_rule_on_the_same_sink_is_not_blocked(backend: Backend) {
    let rules = format!(
        "{}{}",
        rule("quiet", "\"hook\"", "mute_during = [\"always\"]"),
        rule("loud", "\"hook\"", "")
    );
    let mut env = Env::start_on(backend, &rules).await;
    env.set_extra(ALWAYS);
    env.api.upsert(session("s0"));
    env.once().await.expect("baseline");
    create_in_order(&env, &["s1", "s2"]).await;
    change(&env, "s1", "finished");
    env.once().await.expect("poll");
    // The loud rule's deliveries of the same sessions, to the same sink, went out, in order,
    // while the quiet rule's are held.
    let expected: Vec<String> = env
        .hook
        .received()
        .iter()
        .map(|r| delivery_id(&event_id(&r.json()), "loud", "hook"))
        .collect();
    let sent = env.hook.header_values("webhook-id");
    assert_eq!(sent, expected);
    assert_eq!(
        lane(&env, "s1"),
        ["session.created working", "session.status_changed finished"]
    );
    assert_eq!(lane(&env, "s2"), ["session.created working"]);
    assert_eq!(held_ids(&env).await.len(), 3, "the quiet rule's are held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_shows_whether_each_rule_is_muted_now() {
    let rules = format!(
        "{}{}",
        rule(
            "quiet",
            "\"hook\"",
            "mute_during = [\"always\"]\ncollapse_held = true"
        ),
        rule("loud", "\"hook\"", "")
    );
    let mut env = Env::start(&rules).await;
    let port = harness::free_port();
    env.set_extra(&format!(
        "{ALWAYS}\n[server]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    let rules: Value = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/rules"))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let quiet = &rules["rules"][0];
    assert_eq!(
        quiet["mute_during"],
        serde_json::json!(["always"]),
        "{rules}"
    );
    assert_eq!(
        (
            quiet["muted_now"].as_bool(),
            quiet["collapse_held"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(rules["rules"][1]["muted_now"], false, "{rules}");
    let (clean, _) = service.stop().await;
    assert!(clean);
}

async fn collapse_held_sends_one_summary_per_rule_and_sink(backend: Backend) {
    let muted = "mute_during = [\"always\"]\ncollapse_held = true";
    let mut env = Env::start_on(backend, &rule("quiet", "\"hook\", \"slack\"", muted)).await;
    env.set_extra(ALWAYS);
    env.api.upsert(session("s0"));
    env.once().await.expect("baseline");
    create_in_order(&env, &["s1", "s2", "s3"]).await;
    assert_eq!(env.hook.count() + env.slack.count(), 0);
    assert_eq!(held_ids(&env).await.len(), 6, "3 events x 2 sinks");

    // The mute ends: the rule now names an interval that is never on.
    env.set_extra("[time_intervals.never]\nmonths = [\"february\"]\ndays_of_month = [30]\n");
    env.set_rules(&rule(
        "quiet",
        "\"hook\", \"slack\"",
        "mute_during = [\"never\"]\ncollapse_held = true",
    ));
    env.once().await.expect("release");
    let hook = env.hook.wait_for(1, WAIT).await;
    let slack = env.slack.wait_for(1, WAIT).await;
    env.once().await.expect("again");
    assert_eq!(
        (env.hook.count(), env.slack.count()),
        (1, 1),
        "one summary each"
    );
    let body = hook[0].json();
    assert_eq!(body["type"], "held.summary");
    assert_eq!(body["data"]["rule"], "quiet");
    assert_eq!(body["data"]["count"], 3);
    let listed: Vec<(&str, &str, &str)> = body["data"]["held"]
        .as_array()
        .expect("held events")
        .iter()
        .map(|h| {
            (
                h["title"].as_str().unwrap_or_default(),
                h["event_type"].as_str().unwrap_or_default(),
                h["link"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "Session s1",
                "session.created",
                "https://app.devin.ai/sessions/s1"
            ),
            (
                "Session s2",
                "session.created",
                "https://app.devin.ai/sessions/s2"
            ),
            (
                "Session s3",
                "session.created",
                "https://app.devin.ai/sessions/s3"
            ),
        ]
    );
    assert!(hook[0]
        .header("webhook-id")
        .is_some_and(|id| id.starts_with("msg_")));
    let text = slack[0].text();
    for s in ["s1", "s2", "s3"] {
        assert!(
            text.contains(&format!("<https://app.devin.ai/sessions/{s}|Session {s}>")),
            "{text}"
        );
    }
    assert!(text.contains("3 notifications held"), "{text}");
    assert!(held_ids(&env).await.is_empty());
}

/// An interval on from an hour ago until the first whole minute at least `secs` from now, in
/// UTC (computed from the real clock: the service runs on it).
fn until_soon(secs: i64) -> (String, jiff::Timestamp) {
    let now = jiff::Timestamp::now();
    let end =
        jiff::Timestamp::from_second(((now.as_second() + secs) / 60 + 1) * 60).expect("in range");
    let hhmm = |t: jiff::Timestamp| t.strftime("%H:%M").to_string();
    let from = hhmm(now - jiff::SignedDuration::from_hours(1));
    let toml = format!(
        "[time_intervals.soon]\ntimezone = \"UTC\"\ntimes = [{{ from = \"{from}\", to = \"{}\" }}]\n",
        hhmm(end)
    );
    (toml, end)
}

async fn held_deliveries_survive_a_restart_and_go_out_once_when_the_interval_ends(
    backend: Backend,
) {
    let mut env = Env::start_on(
        backend,
        &rule("quiet", "\"hook\"", "mute_during = [\"soon\"]"),
    )
    .await;
    let (interval, end) = until_soon(20);
    env.set_extra(&interval);
    env.api.upsert(session("s0"));
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.api.upsert(session("s1"));
    service
        .wait_log("held: the rule is muted now", 1, WAIT)
        .await;
    change(&env, "s1", "waiting_for_user");
    service
        .wait_log("held: the rule is muted now", 2, WAIT)
        .await;
    let (clean, _) = service.stop().await;
    assert!(clean);
    assert_eq!(env.hook.count(), 0, "muted");
    assert!(
        jiff::Timestamp::now() < end,
        "the test was too slow to restart while muted"
    );

    let service = Service::start(&env);
    let got = env
        .hook
        .wait_for(
            2,
            end.duration_since(jiff::Timestamp::now()).unsigned_abs() + WAIT,
        )
        .await;
    assert!(
        jiff::Timestamp::now() >= end,
        "sent before the interval ended"
    );
    assert_eq!(
        lane(&env, "s1"),
        [
            "session.created working",
            "session.status_changed waiting_for_user"
        ]
    );
    for r in &got {
        let expected = delivery_id(&event_id(&r.json()), "quiet", "hook");
        assert_eq!(r.header("webhook-id"), Some(expected.as_str()));
    }
    // Two more polls: nothing again.
    let polls = service.log().matches("poll done").count();
    service.wait_log("poll done", polls + 2, WAIT).await;
    let (clean, log) = service.stop().await;
    assert!(clean, "{log}");
    assert!(log.contains("held deliveries released"), "{log}");
    let ids: HashSet<String> = env.hook.header_values("webhook-id").into_iter().collect();
    assert_eq!((env.hook.count(), ids.len()), (2, 2), "each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_interval_keys_and_unknown_interval_names() {
    let rules = format!(
        "{}{}",
        rule("a", "\"hook\"", "mute_during = [\"nights\"]"),
        rule("b", "\"hook\"", "mute_during = [\"nights\", \"nigths\"]")
    );
    let mut env = Env::start(&rules).await;
    env.set_extra(
        "[time_intervals.nights]\ntimezone = \"Europe/Pariss\"\ntimes = [{ from = \"19:00\", to = \"8am\" }]\n",
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    for key in [
        "time_intervals.nights.timezone",
        "time_intervals.nights.times[0].to",
        "rules[1].mute_during[1]",
    ] {
        assert!(out.contains(key), "{key} missing:\n{out}");
    }
    env.set_extra(
        "[time_intervals.nights]\ntimezone = \"Europe/Paris\"\ntimes = [{ from = \"19:00\", to = \"08:00\" }]\n",
    );
    env.set_rules(&rule(
        "a",
        "\"hook\", \"slack\"",
        "mute_during = [\"nights\"]\ncollapse_held = true",
    ));
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 time interval(s)"), "{out}");
    // preview says whether the rule is muted now, and shows each sink's summary.
    let (code, out) = env.cli(&["preview", "--rule", "a"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("rule `a` is"), "{out}");
    assert!(
        out.contains("muted now") && out.contains("until 20"),
        "{out}"
    );
    assert!(out.contains("sink `hook` (webhook), held.summary"), "{out}");
    assert!(out.contains("sink `slack` (slack), held.summary"), "{out}");
    assert!(
        out.contains("3 notifications held during quiet hours"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_held_gauge_counts_per_sink() {
    let mut env = Env::start(&rule("quiet", "\"hook\"", "mute_during = [\"always\"]")).await;
    let port = harness::free_port();
    env.set_extra(&format!(
        "{ALWAYS}\n[server]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    env.api.upsert(session("s0"));
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.api.upsert(session("s1"));
    service
        .wait_log("held: the rule is muted now", 1, WAIT)
        .await;
    let started = Instant::now();
    let line = "devin_notify_held_deliveries{sink=\"hook\"} 1";
    loop {
        let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics body");
        if body.contains(line) {
            assert!(
                body.contains("devin_notify_held_deliveries{sink=\"slack\"} 0"),
                "{body}"
            );
            break;
        }
        assert!(started.elapsed() < WAIT, "no `{line}` in:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (clean, _) = service.stop().await;
    assert!(clean);
    assert_eq!(env.hook.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_deliveries_move_with_a_store_import_and_keep_their_ids() {
    let muted = rule("quiet", "\"hook\"", "mute_during = [\"always\"]");
    let mut env = Env::start(&muted).await;
    env.set_extra(ALWAYS);
    env.api.upsert(session("s0"));
    env.once().await.expect("baseline");
    create_in_order(&env, &["s1", "s2"]).await;
    let held = held_ids(&env).await;
    assert_eq!(held.len(), 2);

    let schema = SchemaGuard(harness::fresh_schema());
    let sled_path = env.dir.path().join("store");
    env.tweak(
        &format!("path = \"{}\"", sled_path.display()),
        &format!(
            "backend = \"postgres\"\nurl = \"{}\"\nschema = \"{}\"",
            harness::database_url(),
            schema.0
        ),
    );
    let sled_arg = sled_path.display().to_string();
    let (code, out) = env.cli(&["store", "import", "--sled", &sled_arg]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 held deliveries"), "{out}");
    assert_eq!(held_ids(&env).await, held, "the same, in the same order");

    env.set_rules(&rule("quiet", "\"hook\"", ""));
    env.once().await.expect("release on PostgreSQL");
    env.hook.wait_for(2, WAIT).await;
    let sent: HashSet<String> = env.hook.header_values("webhook-id").into_iter().collect();
    assert_eq!(sent, held.into_iter().collect::<HashSet<_>>());
}

async fn a_reload_that_unmutes_a_rule_releases_its_held_deliveries(backend: Backend) {
    let mut env = Env::start_on(
        backend,
        &rule("quiet", "\"hook\"", "mute_during = [\"always\"]"),
    )
    .await;
    env.set_extra(ALWAYS);
    env.api.upsert(session("s0"));
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.api.upsert(session("s1"));
    service
        .wait_log("held: the rule is muted now", 1, WAIT)
        .await;
    assert_eq!(env.hook.count(), 0);
    // The rule is renamed by the new configuration: the old one's held deliveries are
    // released (never dropped), one by one, and the log says so.
    env.set_rules(&rule("renamed", "\"hook\"", "mute_during = [\"always\"]"));
    service.signal("HUP");
    let got = env.hook.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("webhook-id"),
        Some(delivery_id(&event_id(&got[0].json()), "quiet", "hook").as_str())
    );
    let (clean, log) = service.stop().await;
    assert!(clean, "{log}");
    assert!(log.contains("no longer exists: releasing them"), "{log}");
    assert_eq!(env.hook.count(), 1);
}

on_both_backends!(
    a_reload_that_unmutes_a_rule_releases_its_held_deliveries,
    muted_deliveries_are_held_in_order_and_sent_in_order_when_unmuted,
    an_unmuted_rule_on_the_same_sink_is_not_blocked,
    collapse_held_sends_one_summary_per_rule_and_sink,
    held_deliveries_survive_a_restart_and_go_out_once_when_the_interval_ends,
);
