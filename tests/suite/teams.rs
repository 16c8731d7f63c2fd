//! Microsoft Teams sinks: an Adaptive Card in the Workflows message envelope; Workflows' 202
//! is success; 429 and 5xx are retried.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::Env;
use serde_json::{json, Value};
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.status_changed"]
sinks = ["team"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_gets_an_adaptive_card_in_the_workflows_envelope() {
    let mut env = Env::start(RULES).await;
    let url = env
        .hook
        .url("/workflows/abc/triggers/manual/paths/invoke?sig=secretsig");
    env.set_extra(&format!(
        "[sinks.team]\ntype = \"teams\"\nurl = \"{url}\"\nmax_per_second = 50\n"
    ));
    let mut s = session("s1");
    s["title"] = json!("Ship [it](https://evil.example) **now**");
    env.api.upsert_all([s]);
    env.once().await.expect("baseline");
    // Workflows accepts with 202 and no body; a 503 first is retried.
    env.hook.set_default(Reply::Status(202, String::new()));
    env.hook.script(vec![Reply::Status(503, "busy".into())]);
    env.api.update("s1", |s| s["status"] = json!("error"));
    let report = env.once().await.expect("delivered");
    assert_eq!((report.drain.delivered, report.drain.retried), (1, 1));
    let got = env.hook.wait_for(2, WAIT).await;
    let v: Value = got[1].json();
    let (schemas, index) = adaptive_card_schema();
    if let Err(e) = schemas.validate(&v, index) {
        panic!("what the Workflows receiver got is not a valid card: {e:#}\n{v:#}");
    }
    assert_eq!(v["type"], "message");
    let attachment = &v["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["contentUrl"], Value::Null);
    let card = &attachment["content"];
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["body"][0]["text"], "Devin hit an error");
    assert_eq!(
        card["body"][1]["text"],
        "[Ship [\u{200B}it]\u{200B}(\u{200B}https://evil.example)\u{200B} *\u{200B}*\u{200B}now*\u{200B}*\u{200B}](https://app.devin.ai/sessions/s1)",
        "the title, defused, is the one link"
    );
    // The signature in the URL's query never shows.
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("team") && out.contains("teams") && !out.contains("secretsig"),
        "{out}"
    );
    let (code, out) = env.cli(&["preview", "--rule", "all"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("application/vnd.microsoft.card.adaptive"),
        "{out}"
    );
}

/// The JSON Schema of what a Teams sink may send (tests/schemas: the Workflows envelope and the
/// Adaptive Card 1.4 elements the templates use, with only their documented properties),
/// compiled with a JSON Schema 2020-12 validator.
pub(crate) fn adaptive_card_schema() -> (boon::Schemas, boon::SchemaIndex) {
    const ID: &str = "https://devin-notify.invalid/tests/teams-workflows-adaptive-card-1.4.json";
    let text = include_str!("../schemas/teams-workflows-adaptive-card-1.4.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(ID, schema).expect("added");
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(ID, &mut schemas)
        .expect("the schema compiles");
    (schemas, index)
}

#[test]
fn every_default_teams_card_validates_against_the_adaptive_card_schema() {
    use devin_notify::event::EventType;
    use devin_notify::render::{teams_message, Templates};
    let (schemas, index) = adaptive_card_schema();
    let templates = Templates::built_in();
    let hostile = "**b** [x](https://evil.example) <at>x</at> \"q\" \\ \n# head";
    for kind in EventType::ALL {
        let mut event = devin_notify::sample::event(kind);
        event.session.title = Some(hostile.into());
        event.session.tags = vec![hostile.into()];
        event.last_devin_message = Some(hostile.into());
        for template in [None, Some("needs_input")] {
            let card = templates
                .render("teams", template, &event, "rule", "sink")
                .expect("renders");
            let message = teams_message(serde_json::from_str(&card).expect("JSON"));
            if let Err(e) = schemas.validate(&message, index) {
                panic!("{kind:?} / {template:?}: {e:#}\n{message:#}");
            }
        }
    }
    // The schema is not a rubber stamp: what Teams would reject, it rejects.
    let good = teams_message(json!({"type": "AdaptiveCard", "version": "1.4", "body": []}));
    assert!(schemas.validate(&good, index).is_ok());
    for bad in [
        json!({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock"}]}),
        json!({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x", "weight": "bold"}]}),
        json!({"type": "AdaptiveCard", "version": "1.4", "body": [], "actions": [{"type": "Action.OpenUrl", "title": "no url"}]}),
        json!({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "FactSet", "facts": [{"name": "old", "value": "v"}]}]}),
        json!({"type": "AdaptiveCard", "body": []}),
    ] {
        let message = teams_message(bad.clone());
        assert!(schemas.validate(&message, index).is_err(), "accepted {bad}");
    }
}

#[test]
fn the_held_summary_card_validates_against_the_adaptive_card_schema() {
    use devin_notify::render::summary::{sample_items, summary_context};
    use devin_notify::render::{teams_message, Templates};
    let (schemas, index) = adaptive_card_schema();
    let templates = Templates::built_in();
    let hostile = "**b** [x](https://evil.example) <at>x</at> \"q\" \\ \n# head";
    for n in [1, 3, 30] {
        let mut items = sample_items(n);
        items[0].title = hostile.into();
        items[0].link = None;
        let context = summary_context("rule", "sink", &items, 1_764_460_800_000);
        let card = templates
            .render_named("teams", "teams/held_summary", &context)
            .expect("renders");
        let message = teams_message(serde_json::from_str(&card).expect("JSON"));
        if let Err(e) = schemas.validate(&message, index) {
            panic!("{n} held: {e:#}\n{message:#}");
        }
        assert!(!card.contains("[x](https://evil.example)"), "{card}");
    }
}
