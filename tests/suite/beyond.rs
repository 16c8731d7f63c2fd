//! Beyond sessions (issue 18, SPEC section 13): the account's queue and daily ACU spend.

use crate::harness;

use devin_notify::event::rfc3339;
use harness::{Backend, Env};
use serde_json::{json, Value};

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

crate::on_both_backends!(
    the_queue_is_announced_when_its_status_changes,
    daily_spend_is_announced_once_per_day_and_threshold_across_restarts,
);
