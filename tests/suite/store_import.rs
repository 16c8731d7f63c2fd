//! Moving from sled to PostgreSQL with `devin-notify store import --sled PATH`: after the move,
//! nothing is announced again, queued deliveries and dead letters are kept with their ids,
//! and the next change is delivered once.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{database_url, drop_schema, fresh_schema, Env};
use serde_json::json;
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(15);

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed"]
sinks = ["hook"]
"#;

/// Drops its schema when it goes, whatever the test's outcome.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        drop_schema(&self.0);
    }
}

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
    let schema = Schema(fresh_schema());
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
