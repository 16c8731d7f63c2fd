//! Beyond sessions (issue 18, SPEC section 13): the account's queue and daily ACU spend, and
//! direct messages to a session's creator; each endpoint's 403 turning its feature alone off.
//!
//! Tests that make an endpoint answer 403 run the binary (`once`, `run`, `check`) as a process
//! of its own: a feature turned off stays off for the life of the process, and the in-process
//! tests share theirs.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::event::rfc3339;
use devin_notify::store::Store;
use harness::{now_secs, Backend, Env, Service};
use serde_json::{json, Value};
use support::fake_slack::{dm_channel, CHANNEL};
use support::{session, FakeSlack};

const BOT_TOKEN: &str = "xoxb-0000-1111-BOTTOKENSECRET";
const WAIT: Duration = Duration::from_secs(15);

/// The start of the current billing day (08:00 UTC) and its date, as Devin names it. The
/// service reads the real clock: within a minute of the next billing day, this waits for it,
/// so that the test and the service agree on the day for the test's few seconds.
async fn billing_today() -> (i64, String) {
    let next = devin_notify::diff::billing_day_start(now_secs()) + 86_400;
    let left = next - now_secs();
    if left < 60 {
        tokio::time::sleep(Duration::from_secs(left.max(0).unsigned_abs() + 1)).await;
    }
    let start = devin_notify::diff::billing_day_start(now_secs());
    (start, rfc3339(start)[..10].to_owned())
}

/// The bodies the webhook receiver got of this event type.
fn bodies(env: &Env, kind: &str) -> Vec<Value> {
    env.hook
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|v| v["type"] == kind)
        .collect()
}

const QUEUE_RULES: &str = r#"
[[rules]]
name = "queue-all"
events = ["queue.status_changed"]
sinks = ["hook"]

[[rules]]
name = "queue-high"
events = ["queue.status_changed"]
sinks = ["slack"]
[rules.when]
queue_status = "high"
"#;

async fn the_queue_is_announced_when_its_status_changes(backend: Backend) {
    let mut env = Env::start_on(backend, QUEUE_RULES).await;
    env.set_extra("[devin.queue]\nevery = \"1s\"\n");
    env.api.set_queue(2, "normal");
    env.once().await.expect("baseline");
    // The first observation is a silent baseline, stored: the next run does not announce it.
    env.once().await.expect("same status");
    assert_eq!(env.hook.count() + env.slack.count(), 0);

    env.api.set_queue(40, "high");
    let report = env.once().await.expect("high");
    assert_eq!(report.drain.delivered, 2, "{report:?}");
    let changes = bodies(&env, "queue.status_changed");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let data = &changes[0]["data"];
    assert_eq!(
        data["change"],
        json!({"from_status": "normal", "status": "high", "queue_size": 40})
    );
    assert_eq!(data["subject"], "queue");
    assert!(data.get("session").is_none(), "not about a session: {data}");
    let slack = env.slack.received();
    assert_eq!(slack.len(), 1);
    let text = slack[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("Devin's queue is high") && text.contains("40"),
        "{text}"
    );

    // Seen again: nothing. Back to normal: the hook hears it, the `high`-only rule does not.
    env.once().await.expect("still high");
    env.api.set_queue(1, "normal");
    env.once().await.expect("normal");
    let changes = bodies(&env, "queue.status_changed");
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[1]["data"]["change"]["from_status"], "high");
    assert_eq!(env.slack.count(), 1);
    let ids = env.hook.header_values("webhook-id");
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    let asked = env.api.requests_to("/v3/enterprise/queue");
    assert_eq!(asked.len(), 5, "one read per run");
    assert!(asked.iter().all(|r| r.status == 200));
}

/// Queue alerts on a Slack app channel sink are each a message of their own: never replies in
/// the thread of the first alert (which would bury "the queue is high" weeks later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_alerts_on_a_slack_app_channel_are_each_a_new_message() {
    let mut env = Env::start(
        "[[rules]]\nname = \"capacity\"\nevents = [\"queue.status_changed\"]\nsinks = [\"app\"]\n",
    )
    .await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&format!(
        "[devin.queue]\nevery = \"1s\"\n[sinks.app]\ntype = \"slack_app\"\ntoken = \"{BOT_TOKEN}\"\nchannel = \"{}\"\napi_base = \"{}\"\n",
        support::fake_slack::CHANNEL.0,
        fake.api_base()
    ));
    env.api.set_queue(2, "normal");
    env.once().await.expect("baseline");
    for (size, status) in [(40, "high"), (3, "normal"), (50, "high")] {
        env.api.set_queue(size, status);
        let report = env.once().await.expect("announced");
        assert_eq!(report.drain.delivered, 1, "{report:?}");
    }
    let channel = support::fake_slack::CHANNEL.1;
    let parents = fake.parents(channel);
    assert_eq!(parents.len(), 3, "{:?}", fake.messages());
    assert!(parents.iter().all(|p| fake.replies(&p.ts).is_empty()));
    // A rerun after the last send posts nothing again.
    env.once().await.expect("quiet");
    assert_eq!(fake.messages().len(), 3);
}

const CONSUMPTION_RULES: &str = r#"
[[rules]]
name = "spend"
events = ["consumption.daily_exceeded"]
sinks = ["hook"]
"#;

async fn daily_spend_is_announced_once_per_day_and_threshold_across_restarts(backend: Backend) {
    let mut env = Env::start_on(backend, CONSUMPTION_RULES).await;
    env.set_extra("[devin.consumption]\nevery = \"1m\"\ndaily_acus_over = [500, 1000]\n");
    let (start, today) = billing_today().await;
    let products = json!({"devin": 580.0, "cascade": 20.0, "terminal": 0.5});
    env.api.set_day(&today, start, 600.5, products.clone());
    // Yesterday, far below: never announced.
    env.api
        .set_day("yesterday", start - 86_400, 12.0, json!({}));
    env.once().await.expect("first");
    let seen = bodies(&env, "consumption.daily_exceeded");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0]["data"]["change"],
        json!({"date": today, "acus": 600.5, "threshold": 500.0, "acus_by_product": products})
    );
    // Every run is a restart (a new process opens the store): no second announcement.
    env.api.set_day(&today, start, 700.0, json!({}));
    env.once().await.expect("again");
    env.once().await.expect("again");
    assert_eq!(bodies(&env, "consumption.daily_exceeded").len(), 1);

    env.api.set_day(&today, start, 1200.0, json!({}));
    env.once().await.expect("second threshold");
    env.once().await.expect("again");
    let seen = bodies(&env, "consumption.daily_exceeded");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1]["data"]["change"]["threshold"], json!(1000.0));
    let ids = env.hook.header_values("webhook-id");
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // The period asked for: from the previous billing day's start to now, epoch seconds.
    let asked = env.api.requests_to("/v3/enterprise/consumption/daily");
    assert_eq!(asked.len(), 5);
    for r in &asked {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.param("time_after"),
            Some((start - 86_400).to_string().as_str())
        );
        let before: i64 = r
            .param("time_before")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(before >= start && before <= now_secs(), "{r:?}");
    }
}

const DM_RULES: &str = r#"
[[rules]]
name = "status"
events = ["session.status_changed"]
sinks = ["dm"]
"#;

/// A `to = "creator"` sink on `fake`, with extra keys.
fn dm_sink(fake: &FakeSlack, extra: &str) -> String {
    format!(
        "[sinks.dm]\ntype = \"slack_app\"\ntoken = \"{BOT_TOKEN}\"\nto = \"creator\"\napi_base = \"{}\"\nmax_per_second = 200\n{extra}\n",
        fake.api_base()
    )
}

fn by(id: &str, user: Option<&str>) -> Value {
    let mut s = session(id);
    s["user_id"] = json!(user);
    s
}

fn to_exit(env: &Env, ids: &[&str], status: &str) {
    for id in ids {
        env.api.update(id, |s| s["status"] = json!(status));
    }
}

/// An edited `[people]` entry takes effect at once, not after `lookup_ttl`; a Slack user id
/// there needs no lookup at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_people_entry_takes_effect_at_once() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    fake.add_user("old@example.com", "U0OLD");
    fake.add_user("new@example.com", "U0NEW");
    fake.add_user("direct@example.com", "U0DIRECT");
    let people = |value: &str| {
        format!(
            "{}\n[people]\n\"user-x\" = \"{value}\"\n",
            dm_sink(&fake, "")
        )
    };
    env.set_extra(&people("old@example.com"));
    env.api.upsert_all([
        by("x1", Some("user-x")),
        by("x2", Some("user-x")),
        by("x3", Some("user-x")),
    ]);
    env.once().await.expect("baseline");
    to_exit(&env, &["x1"], "error");
    env.once().await.expect("to the old address");
    assert_eq!(fake.parents(&dm_channel("U0OLD")).len(), 1);

    env.set_extra(&people("new@example.com"));
    to_exit(&env, &["x2"], "error");
    env.once().await.expect("to the new address");
    assert_eq!(
        fake.parents(&dm_channel("U0NEW")).len(),
        1,
        "{:?}",
        fake.messages()
    );
    let lookups = fake.calls_to("users.lookupByEmail").len();
    assert_eq!(lookups, 2);

    env.set_extra(&people("U0DIRECT"));
    to_exit(&env, &["x3"], "error");
    env.once().await.expect("to the user id");
    assert_eq!(fake.parents(&dm_channel("U0DIRECT")).len(), 1);
    assert_eq!(
        fake.calls_to("users.lookupByEmail").len(),
        lookups,
        "no lookup"
    );
}

async fn creators_get_direct_messages_with_one_lookup_each(backend: Backend) {
    let mut env = Env::start_on(backend, DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    fake.add_user("alice@example.com", "U0ALICE");
    env.api.set_member("user-alice", "alice@example.com");
    env.set_extra(&format!(
        "{}\n[people]\n\"user-bob\" = \"U0BOB\"\n",
        dm_sink(&fake, "")
    ));
    fake.add_user("bob@example.com", "U0BOB");
    let alice = ["a1", "a2", "a3", "a4"];
    env.api
        .upsert_all(alice.iter().map(|id| by(id, Some("user-alice"))));
    env.api.upsert(by("b1", Some("user-bob")));
    env.once().await.expect("baseline");

    to_exit(&env, &["a1", "a2", "a3", "a4", "b1"], "error");
    let report = env.once().await.expect("delivered");
    assert_eq!(
        (report.drain.delivered, report.drain.dead),
        (5, 0),
        "{report:?}"
    );
    assert_eq!(fake.parents(&dm_channel("U0ALICE")).len(), 4);
    assert_eq!(fake.parents(&dm_channel("U0BOB")).len(), 1);
    // Later events of a session reply in its DM thread; the lookups are cached in the store.
    to_exit(&env, &alice, "exit");
    env.once().await.expect("delivered");
    assert_eq!(fake.parents(&dm_channel("U0ALICE")).len(), 4);
    let lookups = fake.calls_to("users.lookupByEmail");
    assert_eq!(
        lookups.len(),
        1,
        "one lookup for alice, none for bob (a Slack id in [people])"
    );
    assert_eq!(lookups[0].body["email"], "alice@example.com");
    let members = env.api.requests_to("/v3/enterprise/members/users/");
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].path, "/v3/enterprise/members/users/user-alice");
    for call in fake.calls_to("chat.postMessage") {
        assert!(call.ok(), "{call:?}");
    }
}

crate::on_both_backends!(
    the_queue_is_announced_when_its_status_changes,
    daily_spend_is_announced_once_per_day_and_threshold_across_restarts,
    creators_get_direct_messages_with_one_lookup_each,
);

/// Sessions whose creator cannot be reached: a service user, a user Devin does not know, a
/// user whose email Slack does not know.
fn unreachable_sessions(env: &Env) {
    let mut service = by("svc", None);
    service["service_user_id"] = json!("service-ci");
    env.api.upsert(service);
    env.api.upsert(by("ghost", Some("user-ghost")));
    env.api.upsert(by("stranger", Some("user-stranger")));
    env.api
        .set_member("user-stranger", "stranger@elsewhere.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_creators_go_to_the_fallback_channel() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&dm_sink(
        &fake,
        &format!("fallback_channel = \"{}\"", CHANNEL.0),
    ));
    unreachable_sessions(&env);
    env.once().await.expect("baseline");
    to_exit(&env, &["svc", "ghost", "stranger"], "error");
    let report = env.once().await.expect("delivered");
    assert_eq!(
        (report.drain.delivered, report.drain.dead),
        (3, 0),
        "{report:?}"
    );
    assert_eq!(fake.parents(CHANNEL.1).len(), 3);
    // The service user is looked up in [people] only: no members request for it.
    let members: Vec<String> = env
        .api
        .requests_to("/v3/enterprise/members/")
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(members.len(), 2, "{members:?}");
    // Negative results are cached too: more events, no more lookups.
    to_exit(&env, &["svc", "ghost", "stranger"], "exit");
    env.once().await.expect("delivered");
    assert_eq!(fake.calls_to("users.lookupByEmail").len(), 1);
    let again = env.api.requests_to("/v3/enterprise/members/").len();
    assert_eq!(again, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_creators_without_a_fallback_are_dead_letters_with_the_reason() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&dm_sink(&fake, ""));
    unreachable_sessions(&env);
    env.once().await.expect("baseline");
    to_exit(&env, &["svc", "ghost", "stranger"], "error");
    let report = env.once().await.expect("settled");
    assert_eq!(
        (report.drain.delivered, report.drain.dead),
        (0, 3),
        "{report:?}"
    );
    assert!(fake.calls_to("chat.postMessage").is_empty());
    let store = Store::from_config(&env.active().config.store)
        .await
        .expect("store");
    let mut reasons: Vec<String> = store
        .dead_letters()
        .await
        .expect("dead letters")
        .into_iter()
        .map(|(_, d)| format!("{}: {}", d.delivery.session_id, d.reason))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("ghost: ")
            && reasons[0].contains("Devin knows no user `user-ghost`"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("no Slack user has the email of Devin user `user-stranger`"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("service user `service-ci`, not in [people]"),
        "{reasons:?}"
    );
    for r in &reasons {
        assert!(
            r.contains("no fallback_channel") && !r.contains(BOT_TOKEN),
            "{r}"
        );
    }
}

/// Every endpoint beyond sessions answers 403: each feature says so once and turns off, the
/// gauge says 0, and session notifications keep flowing poll after poll.
/// Once the permission is granted, a config reload turns the feature back on: no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_tries_a_refused_feature_again() {
    let mut env = Env::start(
        "[[rules]]\nname = \"capacity\"\nevents = [\"queue.status_changed\"]\nsinks = [\"hook\"]\n",
    )
    .await;
    env.set_extra("[devin.queue]\nevery = \"200ms\"\n");
    env.api.forbid_endpoint("queue");
    env.api.set_queue(1, "normal");
    let port = harness::free_port();
    let service = Service::start_config(&env.served_config("served.toml", port));
    service
        .wait_log("lacks the ViewAccountMetrics permission", 1, WAIT)
        .await;
    env.api.allow_endpoint("queue");
    service.signal("HUP");
    service.wait_log("queue baseline recorded", 1, WAIT).await;
    env.api.set_queue(30, "high");
    env.hook.wait_for(1, WAIT).await;
    let body = env.hook.received()[0].json();
    assert_eq!(body["data"]["change"]["status"], "high", "{body}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = "devin_notify_feature_enabled{feature=\"queue\"} 1";
    assert!(metrics.contains(line), "{line} in:\n{metrics}");
    let (stopped, log) = service.stop().await;
    assert!(stopped, "{log}");
    assert!(
        log.contains("the queue feature is tried again after the reload"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_turns_only_its_feature_off_and_sessions_keep_flowing() {
    let mut env = Env::start(
        r#"
[[rules]]
name = "status"
events = ["session.status_changed"]
sinks = ["hook", "dm"]

[[rules]]
name = "signals"
events = ["queue.status_changed", "consumption.daily_exceeded"]
sinks = ["hook"]
"#,
    )
    .await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&format!(
        "[devin.queue]\nevery = \"200ms\"\n[devin.consumption]\nevery = \"200ms\"\ndaily_acus_over = [1]\n{}\n[people]\n\"user-bob\" = \"U0BOB\"\n",
        dm_sink(&fake, &format!("fallback_channel = \"{}\"", CHANNEL.0))
    ));
    fake.add_user("bob@example.com", "U0BOB");
    for endpoint in ["queue", "consumption", "members"] {
        env.api.forbid_endpoint(endpoint);
    }
    env.api.upsert(by("s1", Some("user-1")));
    env.api.upsert(by("s2", Some("user-bob")));
    let port = harness::free_port();
    let service = Service::start_config(&env.served_config("served.toml", port));
    service.wait_log("baseline", 1, WAIT).await;
    for (round, status) in ["error", "exit", "suspended"].iter().enumerate() {
        to_exit(&env, &["s1", "s2"], status);
        env.hook.wait_for(2 * (round + 1), WAIT).await;
    }
    // Bob is in [people]: a DM. user-1 is not, and the members endpoint is off: the fallback.
    fake.wait_calls(
        |c| c.iter().filter(|c| c.method == "chat.postMessage").count() >= 6,
        WAIT,
    )
    .await;
    assert_eq!(fake.parents(&dm_channel("U0BOB")).len(), 1);
    assert_eq!(fake.parents(CHANNEL.1).len(), 1);
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for feature in ["queue", "consumption", "members"] {
        let line = format!("devin_notify_feature_enabled{{feature=\"{feature}\"}} 0");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    let (stopped, log) = service.stop().await;
    assert!(stopped, "{log}");
    for permission in [
        "ViewAccountMetrics",
        "ViewAccountConsumption",
        "ManageAccountMembership",
    ] {
        let said = log
            .lines()
            .filter(|l| {
                l.contains("ERROR") && l.contains(&format!("lacks the {permission} permission"))
            })
            .count();
        assert_eq!(said, 1, "{permission}:\n{log}");
    }
    // Each feature asked its endpoint once, then stopped.
    let asked = |path: &str| env.api.requests_to(path).len();
    assert_eq!(asked("/v3/enterprise/queue"), 1);
    assert_eq!(asked("/v3/enterprise/consumption/daily"), 1);
    assert_eq!(asked("/v3/enterprise/members/"), 1);
    assert!(bodies(&env, "session.status_changed").len() >= 6);
    assert!(!log.contains(BOT_TOKEN) && !log.contains(harness::TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_calls_each_configured_endpoint_once_and_names_a_missing_permission() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    env.set_extra(&format!(
        "[devin.queue]\n[devin.consumption]\ndaily_acus_over = [500]\n{}",
        dm_sink(&fake, "")
    ));
    env.api.forbid_endpoint("consumption");
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("feature queue: on"), "{out}");
    assert!(out.contains("feature members: on"), "{out}");
    assert!(out.contains("feature consumption: OFF"), "{out}");
    assert!(
        out.contains("devin.consumption: GET /v3/enterprise/consumption/daily: HTTP 403: the service user lacks the ViewAccountConsumption permission"),
        "{out}"
    );
    let requests = env.api.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|r| r.method == "GET"));
    // Without the 403, check passes.
    let mut ok = Env::start(DM_RULES).await;
    ok.set_extra(&format!("[devin.queue]\n{}", dm_sink(&fake, "")));
    let (code, out) = ok.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("feature queue: on") && !out.contains("consumption"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_rules_and_sinks_are_checked_by_key() {
    let mut env = Env::start(
        r#"
[[rules]]
name = "spend"
events = ["consumption.daily_exceeded"]
sinks = ["hook"]
[rules.when]
tags = "team-a"
queue_status = "high"
"#,
    )
    .await;
    env.set_extra(
        "[devin.consumption]\ndaily_acus_over = []\n[people]\n\"user-x\" = \"not an email\"\n[sinks.dm]\ntype = \"slack_app\"\ntoken = \"xoxb-1\"\nto = \"creator\"\nchannel = \"general\"\n",
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    for key in [
        "rules[0].when.tags",
        "rules[0].when.queue_status",
        "devin.consumption.daily_acus_over",
        "people.user-x",
        "sinks.dm.channel",
    ] {
        assert!(out.contains(&format!("  - {key}: ")), "{key}:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_older_than_lookup_ttl_is_made_again() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    fake.add_user("alice@example.com", "U0ALICE");
    env.api.set_member("user-alice", "alice@example.com");
    // A time to live of 0s: every delivery finds its cached lookup expired.
    env.set_extra(&dm_sink(&fake, "lookup_ttl = \"0s\""));
    env.api
        .upsert_all(["a1", "a2"].iter().map(|id| by(id, Some("user-alice"))));
    env.once().await.expect("baseline");
    to_exit(&env, &["a1", "a2"], "error");
    let report = env.once().await.expect("delivered");
    assert_eq!(report.drain.delivered, 2, "{report:?}");
    assert_eq!(fake.calls_to("users.lookupByEmail").len(), 2);
    assert_eq!(fake.parents(&dm_channel("U0ALICE")).len(), 2);
}

/// Under `run`, the queue is read every `every`, beside the sessions' polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_the_queue_every_every_and_announces_a_change() {
    let mut env = Env::start(QUEUE_RULES).await;
    env.set_extra("[devin.queue]\nevery = \"200ms\"\n");
    env.api.set_queue(0, "normal");
    let service = Service::start(&env);
    service.wait_log("queue baseline recorded", 1, WAIT).await;
    env.api.set_queue(9, "elevated");
    let got = env.hook.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].json()["data"]["change"],
        json!({"from_status": "normal", "status": "elevated", "queue_size": 9})
    );
    let (stopped, log) = service.stop().await;
    assert!(stopped, "{log}");
    let reads = env.api.requests_to("/v3/enterprise/queue").len();
    assert!(reads >= 2, "{reads} reads");
    assert_eq!(env.slack.count(), 0, "the `high` rule did not match");
}

/// A DM whose Slack user is gone (`channel_not_found`) is a dead letter for that person only:
/// the sink is not paused, and the others' DMs go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_dm_channel_fails_that_person_only() {
    let mut env = Env::start(DM_RULES).await;
    let fake = FakeSlack::start(BOT_TOKEN).await;
    fake.add_user("bob@example.com", "U0BOB");
    env.set_extra(&format!(
        "{}\n[people]\n\"user-gone\" = \"U0GONE\"\n\"user-bob\" = \"U0BOB\"\n",
        dm_sink(&fake, "")
    ));
    let gone = ["g1", "g2", "g3", "g4"];
    env.api
        .upsert_all(gone.iter().map(|id| by(id, Some("user-gone"))));
    env.api.upsert(by("b1", Some("user-bob")));
    env.once().await.expect("baseline");
    to_exit(&env, &["g1", "g2", "g3", "g4", "b1"], "error");
    let report = env.once().await.expect("settled");
    assert_eq!(
        (report.drain.delivered, report.drain.dead),
        (1, 4),
        "{report:?}"
    );
    assert_eq!(fake.parents(&dm_channel("U0BOB")).len(), 1);
    let store = Store::from_config(&env.active().config.store)
        .await
        .expect("store");
    assert!(store.paused_sinks().await.expect("paused").is_empty());
    let dead = store.dead_letters().await.expect("dead letters");
    assert!(
        dead.iter()
            .all(|(_, d)| d.reason.contains("channel_not_found")),
        "{dead:?}"
    );
}
