//! Bad input and faults of the PostgreSQL store: a wrong URL, a refused role, a missing
//! database, a schema owned by someone else, connections killed mid-run, a statement timeout.
//! Each says what is wrong naming `store.url` (never its password), and loses nothing.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{database_url, Backend, Env, Service};
use serde_json::json;
use support::session;

const WAIT: Duration = Duration::from_secs(20);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.status_changed"]
sinks = ["hook"]
"#;

/// The password the tests put in URLs, which no output may show.
const PASSWORD: &str = "pw-n3ver-printed";

/// A statement on the test database.
async fn sql(statement: &str) {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
}

/// Sets `store.url` to `url`.
fn point_at(env: &mut Env, url: &str) {
    let current = format!("url = \"{}\"", database_url());
    env.tweak(&current, &format!("url = \"{url}\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_urls_say_what_is_wrong_without_the_password() {
    let mut env = Env::start_on(Backend::Postgres, RULES).await;
    let cases = [
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test"),
            "Connection refused",
        ),
        (
            format!("postgres://nosuchrole:{PASSWORD}@127.0.0.1:5432/test"),
            "role \"nosuchrole\" does not exist",
        ),
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/nosuchdb"),
            "database \"nosuchdb\" does not exist",
        ),
    ];
    let mut previous = database_url();
    for (url, cause) in cases {
        env.tweak(
            &format!("url = \"{previous}\""),
            &format!("url = \"{url}\""),
        );
        previous = url.clone();
        for command in [&["check"][..], &["once"][..], &["dead-letters", "list"][..]] {
            let (code, out) = env.cli(command).await;
            assert_eq!(code, Some(1), "{command:?} with {cause}: {out}");
            assert!(
                out.contains("store.url"),
                "{command:?} names the key: {out}"
            );
            assert!(out.contains(cause), "{command:?} says why: {out}");
            assert!(
                !out.contains(PASSWORD),
                "{command:?} hides the password: {out}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_owned_by_someone_else_is_refused_with_its_name() {
    let mut env = Env::start_on(Backend::Postgres, RULES).await;
    let schema = env.schema.clone().expect("a schema");
    // A role that may connect but not create anything in the schema, which postgres owns.
    sql(&format!(
        "DO $$ BEGIN CREATE ROLE dn_visitor LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
         CREATE SCHEMA {schema}"
    ))
    .await;
    let url = database_url().replacen("postgres@", &format!("dn_visitor:{PASSWORD}@"), 1);
    point_at(&mut env, &url);
    let (code, out) = env.cli(&["once"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("store.url") && out.contains(&schema) && out.contains("permission denied"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
    // `check` says so too, under the key.
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("store.url:")
            && out.contains(&format!("permission denied for schema {schema}")),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_and_a_statement_timeout_lose_nothing() {
    let mut env = Env::start_on(Backend::Postgres, RULES).await;
    let schema = env.schema.clone().expect("a schema");
    // Statements may take 300 ms at most (an option the URL carries), and the connections are
    // named after the test's schema, so that only this test's are killed below.
    let url = format!(
        "{}?options=-c%20statement_timeout%3D300&application_name={schema}",
        database_url()
    );
    point_at(&mut env, &url);
    env.api
        .upsert_all(["s1", "s2"].iter().map(|id| session(id)));
    env.once().await.expect("baseline");
    let service = Service::start(&env);
    service.wait_log("became the leader", 1, WAIT).await;

    // The database drops every connection of the service (as a restart would).
    sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{schema}'"
    ))
    .await;
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.hook.wait_for(1, WAIT).await;

    // A lock held past the statement timeout: the poll fails, naming store.url, and is
    // retried once the lock is gone.
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.sessions IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock");
    env.api.update("s2", |s| s["status"] = json!("error"));
    let log = service.wait_log("statement timeout", 1, WAIT).await;
    assert!(log.contains("store.url"), "{log}");
    client.batch_execute("COMMIT").await.expect("unlock");
    let got = env.hook.wait_for(2, WAIT).await;
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");

    // Every change once per event; a repeat only under the same webhook-id.
    let mut by_event: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in &got {
        let event = r.json()["data"]["event_id"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let id = r.header("webhook-id").unwrap_or("?").to_owned();
        by_event.entry(event).or_default().push(id);
    }
    assert_eq!(by_event.len(), 2, "both changes: {by_event:?}");
    for ids in by_event.values() {
        assert!(ids.iter().all(|id| *id == ids[0]), "{by_event:?}");
    }
    assert!(!log.contains("pw-"), "no password in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_messages_and_answers_do_not_stall_anything() {
    let rules = r#"
[[rules]]
name = "all"
events = ["session.status_changed"]
sinks = ["hook"]
"#;
    let env = Env::start_on(Backend::Postgres, rules).await;
    env.api.upsert_all([session("s1"), session("s2")]);
    env.once().await.expect("baseline");
    // Devin's question holds U+0000; the receiver's refusal of the other session too.
    env.api.set_messages(
        "s1",
        vec![support::message("devin", "May I\u{0}proceed?", 1)],
    );
    env.hook
        .script(vec![support::Reply::Status(400, "bad\u{0}request".into())]);
    env.api.update("s2", |s| s["status"] = json!("error"));
    let report = env.once().await.expect("the dead letter is recorded");
    assert_eq!(report.drain.dead, 1);
    env.api
        .update("s1", |s| s["status_detail"] = json!("waiting_for_user"));
    let report = env.once().await.expect("the waiting event goes out");
    assert_eq!(report.drain.delivered, 1);
    let got = env.hook.wait_for(2, WAIT).await;
    assert_eq!(
        got[1].json()["data"]["last_devin_message"],
        "May I\u{0}proceed?",
        "sent as read"
    );
    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 dead letter(s)"), "{out}");
}
