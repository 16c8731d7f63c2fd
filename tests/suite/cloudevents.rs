//! Webhook sinks with `format = "cloudevents"`: CloudEvents 1.0 in structured mode, with the
//! Standard Webhooks headers and signature unchanged.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{Env, SECRET};
use serde_json::{json, Value};
use support::{session, webhooks};

const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed"]
sinks = ["hook"]
"#;

/// Checks the attributes CloudEvents 1.0 requires, and those devin-notify sets, per the
/// specification's rules (non-empty strings; `time` in RFC 3339; `specversion` "1.0").
fn assert_cloud_event(v: &Value) {
    for attribute in [
        "id",
        "source",
        "specversion",
        "type",
        "subject",
        "time",
        "datacontenttype",
    ] {
        let text = v[attribute].as_str().unwrap_or_default();
        assert!(!text.is_empty(), "`{attribute}` is a non-empty string: {v}");
    }
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["datacontenttype"], "application/json");
    let time = v["time"].as_str().unwrap_or_default();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 time: {time}"
    );
    let known = [
        "id",
        "source",
        "specversion",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ];
    for key in v.as_object().expect("an object").keys() {
        assert!(
            known.contains(&key.as_str()),
            "unexpected attribute `{key}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_in_cloudevents_format_are_structured_events_signed_as_before() {
    let mut env = Env::start(RULES).await;
    env.tweak(
        "[sinks.hook]\ntype = \"webhook\"",
        "[sinks.hook]\ntype = \"webhook\"\nformat = \"cloudevents\"",
    );
    env.api.upsert_all([session("s1")]);
    env.once().await.expect("baseline");
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.once().await.expect("change");
    let got = env.hook.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(
        r.header("content-type"),
        Some("application/cloudevents+json")
    );
    webhooks::verify_received(SECRET, r).expect("the Standard Webhooks signature verifies");
    let v = r.json();
    assert_cloud_event(&v);
    assert_eq!(
        v["id"].as_str(),
        r.header("webhook-id"),
        "id is the webhook-id"
    );
    assert_eq!(v["source"], "devin-notify");
    assert_eq!(v["type"], "ai.devin.session.status_changed");
    assert_eq!(v["subject"], "s1");
    assert_eq!(v["data"]["session"]["session_id"], "s1");
    assert_eq!(v["data"]["change"]["status"], "exit");
    assert_eq!(v["data"]["previous"]["status"], "running");

    // preview shows the same envelope.
    let (code, out) = env
        .cli(&[
            "preview",
            "--rule",
            "all",
            "--event",
            "session.status_changed",
        ])
        .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"specversion\": \"1.0\"") && out.contains("ai.devin.session.status_changed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_scoped_account_names_its_organization_in_source() {
    let mut env = Env::start(RULES).await;
    env.tweak(
        "[sinks.hook]\ntype = \"webhook\"",
        "[sinks.hook]\ntype = \"webhook\"\nformat = \"cloudevents\"",
    );
    env.tweak("page_size = 2", "page_size = 2\norg_id = \"org-a\"");
    let mut s = session("a1");
    s["org_id"] = json!("org-a");
    env.api.upsert_all([s]);
    env.once().await.expect("baseline");
    env.api.update("a1", |s| s["status"] = json!("error"));
    env.once().await.expect("change");
    let v = env.hook.wait_for(1, WAIT).await[0].json();
    assert_cloud_event(&v);
    assert_eq!(v["source"], "devin-notify/org-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_format_is_a_config_error_naming_the_sink() {
    let mut env = Env::start(RULES).await;
    env.tweak(
        "[sinks.hook]\ntype = \"webhook\"",
        "[sinks.hook]\ntype = \"webhook\"\nformat = \"xml\"",
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    // The sink is named, with the value and the formats there are.
    assert!(
        out.contains("sinks.hook:") && out.contains("`xml`") && out.contains("cloudevents"),
        "{out}"
    );
}
