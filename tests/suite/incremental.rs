//! Incremental polling: a quiet account costs one request per poll and writes nothing; the
//! high-water mark survives restarts; a full resync catches what an incremental listing misses.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::poller::poll;
use harness::Env;
use serde_json::json;
use support::session;

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook"]
"#;

/// Changes a session exactly as given, `updated_at` included.
fn set(env: &Env, id: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let mut s = env.api.get(id).expect("session");
    f(&mut s);
    env.api.upsert(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_account_costs_one_request_and_no_write() {
    let env = Env::start(RULES).await;
    env.api
        .upsert_all((0..7).map(|i| session(&format!("s{i}"))));
    // The service's own pieces, as `run` holds them: one store, one client, polls in a row.
    let active = env.active();
    let token = active.config.token().expect("token");
    let client = devin_notify::devin::Client::new(&active.config.devin, token).expect("client");
    let store =
        devin_notify::store::Store::open(&active.config.store.path, 1 << 20).expect("store");
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let first = poll(&client, &store, &active, &wake)
        .await
        .expect("baseline");
    assert!(!first.incremental);
    assert_eq!(first.pages, 4);
    assert!(
        store.flush().await.expect("flush") > 0,
        "flush counts what the baseline wrote"
    );
    let mark = env
        .api
        .sessions()
        .iter()
        .filter_map(|s| s["updated_at"].as_i64())
        .max()
        .expect("mark");

    let before = env.api.request_count();
    let quiet = poll(&client, &store, &active, &wake)
        .await
        .expect("quiet poll");
    assert!(quiet.incremental);
    assert_eq!(env.api.request_count() - before, 1, "one request");
    assert_eq!((quiet.changed, quiet.events), (0, 0));
    let req = env.api.requests().pop().expect("request");
    // Overlap: twice the poll interval of 1s.
    assert_eq!(
        req.param("updated_after"),
        Some((mark - 2).to_string().as_str())
    );
    assert_eq!(
        store.flush().await.expect("flush"),
        0,
        "a quiet poll leaves nothing to write"
    );

    // A change is seen by the next incremental poll, once.
    env.api.update("s3", |s| s["status"] = json!("exit"));
    let changed = poll(&client, &store, &active, &wake).await.expect("poll");
    assert!(changed.incremental);
    // The overlap re-lists the sessions updated within 2 s of the mark; only s3 changed.
    assert_eq!(
        (changed.changed, changed.events, changed.deliveries),
        (1, 1, 1)
    );
    assert_eq!(store.outbox_len().await.expect("len"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sharing_the_marks_second_are_not_missed() {
    let env = Env::start(RULES).await;
    env.api
        .upsert_all((0..4).map(|i| session(&format!("s{i}"))));
    env.once().await.expect("baseline");
    // Two sessions change within the same second; the poll sees only the first (it happens
    // before the second changes) — then the second shares the mark's second exactly.
    let t = env.api.now() + 10;
    set(&env, "s1", |s| {
        s["status"] = json!("exit");
        s["updated_at"] = json!(t);
    });
    env.once().await.expect("poll 1");
    set(&env, "s2", |s| {
        s["status"] = json!("error");
        s["updated_at"] = json!(t);
    });
    let second = env.once().await.expect("poll 2");
    assert!(second.poll.incremental);
    let got = env.hook.wait_for(2, Duration::from_secs(10)).await;
    let ids: Vec<String> = got
        .iter()
        .map(|r| {
            r.json()["data"]["session"]["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["s1", "s2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mark_survives_restarts_and_a_full_resync_catches_skew() {
    let mut env = Env::start(RULES).await;
    env.api
        .upsert_all((0..3).map(|i| session(&format!("s{i}"))));
    env.once().await.expect("baseline");
    // Each `once` is a fresh process-equivalent (store reopened): still incremental.
    assert!(env.once().await.expect("again").poll.incremental);

    // A change whose updated_at lies before the mark (an upstream clock that went backwards):
    // invisible to incremental listings...
    set(&env, "s0", |s| {
        s["status"] = json!("exit");
        s["updated_at"] = json!(1_000);
    });
    let missed = env.once().await.expect("incremental");
    assert!(missed.poll.incremental);
    assert_eq!(missed.poll.events, 0);
    // ...and caught by the full resync.
    env.tweak(
        "poll_interval = \"1s\"",
        "poll_interval = \"1s\"\nfull_resync_every = \"0s\"",
    );
    let full = env.once().await.expect("full");
    assert!(!full.poll.incremental);
    assert_eq!(full.poll.events, 1);
    let got = env.hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["change"]["status"], "exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_from_the_future_is_capped() {
    let env = Env::start(RULES).await;
    let mut future = session("s0");
    future["updated_at"] = json!(4_000_000_000i64);
    env.api.upsert_all([future, session("s1")]);
    env.once().await.expect("baseline");
    env.once().await.expect("incremental");
    let req = env.api.requests().pop().expect("request");
    let after: i64 = req
        .param("updated_after")
        .and_then(|v| v.parse().ok())
        .expect("updated_after");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        after <= now + 60,
        "updated_after {after} is capped near now {now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widening_the_filters_does_not_announce_old_sessions() {
    let mut env = Env::start(RULES).await;
    env.set_extra("[devin.filters]\ntags = \"a\"\n");
    let mut a = session("a1");
    a["tags"] = json!(["a"]);
    let mut b = session("b1");
    b["tags"] = json!(["b"]);
    env.api.upsert_all([a, b]);
    env.once().await.expect("baseline");
    // The filters widen: b1 comes into scope, and is not "created".
    env.set_extra("[devin.filters]\ntags = [\"a\", \"b\"]\n");
    let rescoped = env.once().await.expect("rescoped");
    assert!(rescoped.poll.baseline && !rescoped.poll.incremental);
    assert_eq!((rescoped.poll.sessions, rescoped.poll.events), (2, 0));
    // Changes in the new scope are events again.
    env.api.update("b1", |s| s["status"] = json!("exit"));
    let next = env.once().await.expect("poll");
    assert!(!next.poll.baseline);
    assert_eq!(next.poll.events, 1);
    let got = env.hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["session"]["session_id"], "b1");
    assert_eq!(env.hook.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sharing_a_creation_second_keep_their_own_snapshots() {
    let env = Env::start(RULES).await;
    // Snapshots are keyed by (created_at, session_id): many sessions created in one second, and
    // one with no created_at at all, must not be mistaken for one another.
    env.api.upsert_all((0..5).map(|i| {
        let mut s = session(&format!("s{i}"));
        s["created_at"] = if i == 4 {
            json!(null)
        } else {
            json!(1_700_000_000)
        };
        s
    }));
    env.once().await.expect("baseline");
    env.api.update("s2", |s| s["status"] = json!("exit"));
    env.api.update("s4", |s| s["status"] = json!("error"));
    let polled = env.once().await.expect("poll");
    assert_eq!((polled.poll.changed, polled.poll.events), (2, 2));
    let got = env.hook.wait_for(2, Duration::from_secs(10)).await;
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["data"]["session"]["session_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["data"]["previous"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("s2".to_owned(), "running".to_owned()),
            ("s4".to_owned(), "running".to_owned())
        ]
    );
    assert_eq!(env.once().await.expect("quiet").poll.changed, 0);
}
