//! Organization-scoped listings, and Devin's own words quoted in "needs your input".

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::Env;
use serde_json::json;
use support::{message, session};

const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed"]
sinks = ["hook"]

[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["slack"]
template = "needs_input"
[rules.when]
status_detail = ["waiting_for_user", "waiting_for_approval"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_scoped_user_lists_its_organization() {
    let mut env = Env::start(RULES).await;
    env.tweak("page_size = 2", "page_size = 2\norg_id = \"org-a\"");
    let mut a = session("a1");
    a["org_id"] = json!("org-a");
    let mut b = session("b1");
    b["org_id"] = json!("org-b");
    env.api.upsert_all([a, b]);
    let report = env.once().await.expect("baseline");
    assert_eq!(report.poll.sessions, 1, "only org-a's session");
    let req = env.api.requests().pop().expect("request");
    assert_eq!(req.path, "/v3/organizations/org-a/sessions");
    env.api.update("a1", |s| s["status"] = json!("exit"));
    env.once().await.expect("poll");
    let got = env.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["session"]["session_id"], "a1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_the_org_listing_refuses_are_config_errors() {
    let mut env = Env::start(RULES).await;
    env.tweak("page_size = 2", "page_size = 2\norg_id = \"org-a\"");
    env.set_extra("[devin.filters]\ntags = [\"x\"]\nuser_ids = [\"u1\"]\nrepo_names = \"o/r\"\n");
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("devin.filters.user_ids: is not accepted by the organization listing"),
        "{out}"
    );
    assert!(out.contains("devin.filters.repo_names"), "{out}");
    assert!(!out.contains("devin.filters.tags"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_names_the_missing_permission_for_each_scope() {
    let mut env = Env::start(RULES).await;
    env.api.forbid_token(harness::TOKEN);
    let err = env.once().await.expect_err("403").to_string();
    assert!(
        err.contains("HTTP 403") && err.contains("ViewAccountSessions"),
        "{err}"
    );
    env.tweak("page_size = 2", "page_size = 2\norg_id = \"org-a\"");
    let err = env.once().await.expect_err("403").to_string();
    assert!(err.contains("/v3/organizations/org-a/sessions"), "{err}");
    assert!(
        err.contains("ViewOrgSessions permission on organization org-a"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_input_quotes_devins_latest_question() {
    let env = Env::start(RULES).await;
    env.api
        .upsert_all([session("s1"), session("s2"), session("s3")]);
    env.once().await.expect("baseline");

    // s1: 250 messages over two pages; Devin's latest is on the second, with Slack control
    // characters and two lines.
    let question =
        "Which database should I migrate first? <https://evil.example|click> & <!here>\nOr both?";
    let mut msgs: Vec<serde_json::Value> = (0..248)
        .map(|i| {
            message(
                if i % 2 == 0 { "devin" } else { "user" },
                &format!("m{i}"),
                i,
            )
        })
        .collect();
    msgs.push(message("devin", question, 300));
    msgs.push(message("user", "(typing)", 301));
    env.api.set_messages("s1", msgs);
    // s2: a very long question, cut on a character boundary.
    env.api
        .set_messages("s2", vec![message("devin", &"é".repeat(600), 1)]);
    // s3: no messages endpoint for it (404): notified without a quote.
    for id in ["s1", "s2", "s3"] {
        env.api
            .update(id, |s| s["status_detail"] = json!("waiting_for_user"));
    }
    env.once().await.expect("poll");

    let slack = env.slack.wait_for(3, WAIT).await;
    let by_session = |id: &str| {
        slack
            .iter()
            .map(|r| r.json())
            .find(|v| {
                v["blocks"][0]["text"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("Session {id}")))
            })
            .unwrap_or_else(|| panic!("no Slack message for {id}"))
    };
    let s1 = by_session("s1")["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        s1.ends_with("\n> Which database should I migrate first? &lt;https://evil.example|click&gt; &amp; &lt;!here&gt;\n> Or both?"),
        "{s1}"
    );
    let s2 = by_session("s2")["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(s2.ends_with(&format!("> {}…", "é".repeat(499))), "{s2}");
    let s3 = by_session("s3")["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!s3.contains("\n>"), "no quote: {s3}");

    // The webhook carries it too.
    let hook = env.hook.wait_for(3, WAIT).await;
    let s1_hook = hook
        .iter()
        .map(|r| r.json())
        .find(|v| v["data"]["session"]["session_id"] == "s1")
        .expect("s1");
    assert_eq!(s1_hook["data"]["last_devin_message"], question);
    // The messages cached for the poll went with the commit that recorded the events.
    let store =
        devin_notify::store::Store::open(&env.active().config.store.path, 1 << 20).expect("store");
    for v in hook.iter().map(|r| r.json()) {
        let event_id = v["data"]["event_id"].as_str().expect("event_id");
        assert_eq!(store.cached_message(event_id).await.expect("read"), None);
    }
    drop(store);

    // One messages listing per waiting event: two pages for s1, one each for s2 and s3.
    let message_requests: Vec<String> = env
        .api
        .requests()
        .iter()
        .filter(|r| r.is_messages())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(message_requests.len(), 4, "{message_requests:?}");
    assert!(
        message_requests
            .iter()
            .all(|p| p.starts_with("/v3/enterprise/sessions/devin-")),
        "{message_requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_read_once_per_event_and_failures_do_not_block() {
    use devin_notify::poller::enrich;
    let env = Env::start(RULES).await;
    env.api.upsert(session("devin-abc"));
    env.api.set_messages(
        "devin-abc",
        vec![message("devin", "May I push to main?", 1)],
    );
    let active = env.active();
    let client = devin_notify::devin::Client::new(
        &active.config.devin,
        active.config.token().expect("token"),
    )
    .expect("client");
    let store =
        devin_notify::store::Store::open(&active.config.store.path, 1 << 20).expect("store");
    let old: devin_notify::model::Session =
        serde_json::from_value(env.api.get("devin-abc").expect("s")).expect("session");
    let mut new = old.clone();
    new.status_detail = Some("waiting_for_approval".into());
    let mut events = devin_notify::diff::diff(Some(&old), &new);
    enrich(&client, &store, &active, &mut events)
        .await
        .expect("enrich");
    assert_eq!(
        events[0].last_devin_message.as_deref(),
        Some("May I push to main?")
    );
    // The id is `devin-abc` already: no second prefix.
    assert_eq!(
        env.api.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/v3/enterprise/sessions/devin-abc/messages")
    );
    // The same event again (a retried poll): served from the store, no request.
    let before = env.api.request_count();
    let mut again = devin_notify::diff::diff(Some(&old), &new);
    enrich(&client, &store, &active, &mut again)
        .await
        .expect("enrich");
    assert_eq!(
        again[0].last_devin_message.as_deref(),
        Some("May I push to main?")
    );
    assert_eq!(env.api.request_count(), before);

    // A failing endpoint: the event goes on without the quote.
    env.api
        .inject(support::FaultAt::Request(0), support::Fault::Html502);
    let mut later = new.clone();
    later.status_detail = Some("waiting_for_user".into());
    let mut failing = devin_notify::diff::diff(Some(&new), &later);
    enrich(&client, &store, &active, &mut failing)
        .await
        .expect("enrich never fails on the API");
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].last_devin_message, None);
}
