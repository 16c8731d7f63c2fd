//! Beyond sessions (issue 18, SPEC section 13): the account's queue.

use crate::harness;

use harness::{Backend, Env};
use serde_json::{json, Value};

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

crate::on_both_backends!(the_queue_is_announced_when_its_status_changes);
