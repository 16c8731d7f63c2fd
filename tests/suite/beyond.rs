//! Beyond sessions (issue 18, SPEC section 13): the account's queue and daily ACU spend, and
//! direct messages to a session's creator.

use crate::harness;
use crate::support;

use devin_notify::event::rfc3339;
use devin_notify::store::Store;
use harness::{Backend, Env};
use serde_json::{json, Value};
use support::fake_slack::{dm_channel, CHANNEL};
use support::{session, FakeSlack};

const BOT_TOKEN: &str = "xoxb-0000-1111-BOTTOKENSECRET";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The start of the current billing day (08:00 UTC) and its date, as Devin names it.
fn billing_today() -> (i64, String) {
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
    let ids: Vec<String> = env
        .hook
        .received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    let asked: Vec<_> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v3/enterprise/queue")
        .collect();
    assert_eq!(asked.len(), 5, "one read per run");
    assert!(asked.iter().all(|r| r.status == 200));
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
    let (start, today) = billing_today();
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
    let ids: Vec<String> = env
        .hook
        .received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // The period asked for: from the previous billing day's start to now, epoch seconds.
    let asked: Vec<_> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v3/enterprise/consumption/daily")
        .collect();
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
    let members: Vec<_> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v3/enterprise/members/users/"))
        .collect();
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
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v3/enterprise/members/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(members.len(), 2, "{members:?}");
    // Negative results are cached too: more events, no more lookups.
    to_exit(&env, &["svc", "ghost", "stranger"], "exit");
    env.once().await.expect("delivered");
    assert_eq!(fake.calls_to("users.lookupByEmail").len(), 1);
    let again = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v3/enterprise/members/"))
        .count();
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
