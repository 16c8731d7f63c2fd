//! Moving from sled to PostgreSQL with `devin-notify store import --sled PATH`: after the move,
//! nothing is announced again, queued deliveries and dead letters are kept with their ids,
//! and the next change is delivered once.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::store::{Commit, Delivery, Held, Store};
use harness::{database_url, fresh_schema, Backend, Env, SchemaGuard};
use serde_json::json;
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(15);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed"]
sinks = ["hook"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_to_postgres_and_nothing_is_announced_again() {
    let mut env = Env::start(RULES).await;
    env.api
        .upsert_all(["s1", "s2", "s3"].iter().map(|id| session(id)));
    env.once().await.expect("baseline");
    // One dead letter (a 400) and one delivery still queued (a 503, to retry in 2 s).
    env.hook.script(vec![
        Reply::Status(400, "bad".into()),
        Reply::RetryAfter(503, "2".into()),
    ]);
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.api.update("s2", |s| s["status"] = json!("error"));
    let err = env
        .once_waiting(Duration::ZERO)
        .await
        .expect_err("one delivery stays queued");
    assert!(
        err.to_string().contains("1 deliveries are still queued"),
        "{err}"
    );
    let queued_id = env.hook.received()[1]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    let (_, dead_before) = env.cli(&["dead-letters", "list"]).await;
    assert!(dead_before.contains("1 dead letter(s)"), "{dead_before}");

    // The same config, on PostgreSQL: import, then run as before.
    let schema = SchemaGuard(fresh_schema());
    let sled_path = env.dir.path().join("store");
    env.tweak(
        &format!("path = \"{}\"", sled_path.display()),
        &format!(
            "backend = \"postgres\"\nurl = \"{}\"\nschema = \"{}\"",
            database_url(),
            schema.0
        ),
    );
    let sled_arg = sled_path.display().to_string();
    let (code, out) = env.cli(&["store", "import", "--sled", &sled_arg]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("3 session(s), 1 queued deliveries, 1 dead letter(s)"),
        "{out}"
    );
    // s1 finished, s2 failed: the history digests read comes along.
    assert!(out.contains("2 history record(s)"), "{out}");
    let (code, out) = env.cli(&["store", "import", "--sled", &sled_arg]).await;
    assert_eq!(code, Some(1), "a second import is refused: {out}");
    assert!(out.contains("already holds a store"), "{out}");

    let (_, dead_after) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(dead_after, dead_before, "the same dead letters");

    // Nothing announced again; the queued delivery goes out under its id once due.
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("hook") && out.contains("      1 "),
        "one queued: {out}"
    );
    let report = env.once().await.expect("once on postgres");
    assert_eq!(report.poll.events, 0, "nothing new: {report:?}");
    assert!(!report.poll.baseline, "the baseline came along");
    env.api.update("s3", |s| s["status"] = json!("exit"));
    let report = env.once().await.expect("the change");
    assert_eq!(report.poll.events, 1);
    let got = env.hook.wait_for(4, WAIT).await;
    let ids: Vec<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids.iter().filter(|id| **id == queued_id).count(),
        2,
        "the queued delivery went out again under its own id: {ids:?}"
    );
    let sessions: Vec<String> = got[2..]
        .iter()
        .map(|r| {
            r.json()["data"]["session"]["session_id"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert!(sessions.contains(&"s3".to_owned()), "{sessions:?}");
    assert_eq!(env.hook.count(), 4, "nothing else was sent");
}

/// A held delivery, for a target that holds nothing else.
fn held() -> Held {
    Held {
        delivery: Delivery {
            id: "msg_1".into(),
            sink: "hook".into(),
            rule: "all".into(),
            session_id: "s1".into(),
            session_title: None,
            event_id: "evt_1".into(),
            event_type: "session.created".into(),
            body: "{}".into(),
            detected_at_ms: 1,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            creator: None,
        },
        headline: None,
        link: None,
        held_at_ms: 1,
    }
}

/// A target holding only held deliveries, or only activity history, is not empty: the import
/// is refused (it would otherwise mix two stores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_only_held_deliveries_or_history_is_refused() {
    let history = devin_notify::digest::acus_activity(
        None,
        &devin_notify::model::Session {
            acus_consumed: 1.5,
            ..devin_notify::model::Session::new("s1", "running")
        },
        devin_notify::store::now_ms(),
    )
    .expect("ACUs consumed");
    let only_held = Commit {
        held: vec![held()],
        ..Commit::default()
    };
    let only_history = Commit {
        activity: vec![history],
        ..Commit::default()
    };
    let sled_dir = tempfile::tempdir().expect("tempdir");
    let sled_path = sled_dir.path().join("store");
    drop(Store::open(&sled_path, 1 << 20).expect("an empty sled store"));
    let sled_arg = sled_path.display().to_string();
    for (what, commit) in [("held", only_held), ("history", only_history)] {
        let env = Env::start_on(Backend::Postgres, RULES).await;
        let store = Store::from_config(&env.active().config.store)
            .await
            .expect("store");
        store.commit(&commit).await.expect("commit");
        drop(store);
        let (code, out) = env.cli(&["store", "import", "--sled", &sled_arg]).await;
        assert_eq!(code, Some(1), "{what}: refused: {out}");
        assert!(out.contains("already holds a store"), "{what}: {out}");
    }
}
