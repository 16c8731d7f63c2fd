//! The delivery log and the event log (`server.history`): each outcome of a delivery with its
//! status, attempts and latency, newest first and filtered; each event with where it went; at
//! most `server.history` entries of each, on both engines.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::store::{
    Change, Commit, DeadLetter, Delivery, DeliveryFilter, DeliveryLogEntry, Outcome, Settle, Store,
};
use harness::{Backend, Env};
use serde_json::json;
use support::{pr, session, Reply};

const RULES: &str = r#"
[[rules]]
name = "status"
events = ["session.status_changed"]
sinks = ["hook"]
"#;

/// A command, again while a store this test opened still holds sled's lock.
async fn cli(env: &Env, args: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, out) = env.cli(args).await;
        if out.contains("in use by another devin-notify process")
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(code, Some(0), "{args:?}: {out}");
        return out;
    }
}

fn filter(f: impl FnOnce(&mut DeliveryFilter)) -> DeliveryFilter {
    let mut filter = DeliveryFilter {
        limit: 100,
        ..DeliveryFilter::default()
    };
    f(&mut filter);
    filter
}

async fn log(env: &Env, f: impl FnOnce(&mut DeliveryFilter)) -> Vec<DeliveryLogEntry> {
    let store = env.store_unlocked().await;
    store.recent_deliveries(&filter(f)).await.expect("log")
}

fn change(env: &Env, id: &str, status: &str) {
    env.api.update(id, |s| s["status"] = json!(status));
}

/// An event log entry as (session, event type, [(rule, sink)]).
type EventSeen<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// (session, outcome, status, attempts) of each entry.
fn summary(entries: &[DeliveryLogEntry]) -> Vec<(&str, Outcome, Option<u16>, u32)> {
    entries
        .iter()
        .map(|e| (e.session_id.as_str(), e.outcome, e.status, e.attempts))
        .collect()
}

async fn the_delivery_log_tells_each_outcome(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    env.api
        .upsert_all([session("s1"), session("s2"), session("s3")]);
    env.once().await.expect("baseline");

    // s1: delivered at once; its pull request is an event no rule sends.
    change(&env, "s1", "exit");
    env.api.update("s1", |s| {
        s["pull_requests"] = json!([pr("https://github.com/o/r/pull/1", "open")])
    });
    env.once().await.expect("s1 delivered");
    // s2: refused once (503), then delivered.
    env.hook.script(vec![Reply::Status(503, "busy".into())]);
    change(&env, "s2", "exit");
    env.once().await.expect("s2 delivered");
    // s3: refused for good (400).
    env.hook.script(vec![Reply::Status(
        400,
        "invalid_payload: see https://hook.example/echo?token=t0psecret".into(),
    )]);
    change(&env, "s3", "error");
    let report = env.once().await.expect("once ends");
    assert_eq!(report.drain.dead, 1);

    let entries = log(&env, |_| {}).await;
    assert_eq!(
        summary(&entries),
        [
            ("s3", Outcome::Dead, Some(400), 1),
            ("s2", Outcome::Delivered, Some(200), 2),
            ("s2", Outcome::Retry, Some(503), 1),
            ("s1", Outcome::Delivered, Some(200), 1),
        ],
        "newest first"
    );
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id));
    for e in &entries {
        assert_eq!(
            (e.sink.as_str(), e.rule.as_str(), e.event_type.as_str()),
            ("hook", "status", "session.status_changed")
        );
        assert_eq!(
            e.session_title.as_deref(),
            Some(format!("Session {}", e.session_id).as_str())
        );
        assert!(e.delivery_id.starts_with("msg_") && !e.event_id.is_empty());
        assert!(e.latency_ms < 60_000, "{e:?}");
    }
    assert!(
        entries[1].latency_ms >= entries[2].latency_ms,
        "delivered after its retry"
    );
    let dead = entries[0].excerpt.as_deref().expect("why it died");
    assert!(dead.contains("HTTP 400: invalid_payload"), "{dead}");
    assert!(!dead.contains("t0psecret"), "URLs redacted: {dead}");
    assert_eq!(entries[3].excerpt, None);

    // Filters.
    let dead_only = log(&env, |f| f.outcome = Some(Outcome::Dead)).await;
    assert_eq!(summary(&dead_only), [("s3", Outcome::Dead, Some(400), 1)]);
    let s2 = log(&env, |f| f.session_id = Some("s2".into())).await;
    assert_eq!(s2.len(), 2);
    assert_eq!(log(&env, |f| f.sink = Some("hook".into())).await.len(), 4);
    assert!(log(&env, |f| f.sink = Some("slack".into()))
        .await
        .is_empty());
    let older = log(&env, |f| {
        f.before_id = Some(entries[1].id);
        f.limit = 1;
    })
    .await;
    assert_eq!(summary(&older), [("s2", Outcome::Retry, Some(503), 1)]);

    // The event log: routed and unrouted events, newest first.
    let store = env.store_unlocked().await;
    let events = store.recent_events(10, None).await.expect("events");
    drop(store);
    let seen: Vec<EventSeen> = events
        .iter()
        .map(|e| {
            let routes = e
                .routes
                .iter()
                .map(|r| (r.rule.as_str(), r.sink.as_str()))
                .collect();
            (e.session_id.as_str(), e.event_type.as_str(), routes)
        })
        .collect();
    let routed = vec![("status", "hook")];
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], ("s3", "session.status_changed", routed.clone()));
    assert_eq!(seen[1], ("s2", "session.status_changed", routed.clone()));
    assert!(seen[2..].contains(&("s1", "session.status_changed", routed)));
    assert!(
        seen[2..].contains(&("s1", "pull_request.opened", vec![])),
        "{seen:?}"
    );
    assert!(events.iter().any(|e| e.unrouted()));

    // An admin's retry is logged, then the delivery.
    cli(&env, &["dead-letters", "retry", "--all"]).await;
    env.once_unlocked().await;
    let entries = log(&env, |f| f.session_id = Some("s3".into())).await;
    assert_eq!(
        summary(&entries),
        [
            ("s3", Outcome::Delivered, Some(200), 1),
            ("s3", Outcome::Requeued, None, 1),
            ("s3", Outcome::Dead, Some(400), 1),
        ]
    );

    // The command line shows the same, filtered.
    let out = cli(&env, &["deliveries", "--outcome", "dead"]).await;
    assert!(
        out.contains("Session s3 (s3)") && out.contains(" 400 "),
        "{out}"
    );
    assert!(out.contains("1 entry"), "{out}");
    let out = cli(&env, &["events", "--limit", "10"]).await;
    assert!(
        out.contains("unrouted") && out.contains("status -> hook"),
        "{out}"
    );
}

async fn the_logs_keep_the_last_server_history_entries(backend: Backend) {
    let mut env = Env::start_on(backend, RULES).await;
    env.set_extra("[server]\nhistory = 5\n");
    let ids: Vec<String> = (0..20).map(|n| format!("s{n:02}")).collect();
    env.api.upsert_all(ids.iter().map(|id| session(id)));
    env.once_unlocked().await;
    for id in &ids {
        change(&env, id, "exit");
    }
    let report = env.once_unlocked().await;
    assert_eq!(report.drain.delivered, 20);
    assert_eq!(env.hook.count(), 20);

    let entries = log(&env, |_| {}).await;
    assert_eq!(entries.len(), 5, "{:?}", summary(&entries));
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id));
    assert!(entries.iter().all(|e| e.outcome == Outcome::Delivered));
    let mut kept: Vec<&str> = entries.iter().map(|e| e.session_id.as_str()).collect();
    kept.sort();
    kept.dedup();
    assert_eq!(kept.len(), 5, "five deliveries, not one five times");

    let store = env.store_unlocked().await;
    assert_eq!(store.history(), 5);
    let events = store.recent_events(100, None).await.expect("events");
    assert_eq!(events.len(), 5);
    assert!(events.windows(2).all(|w| w[0].id > w[1].id));
    if let Some(schema) = &env.schema {
        // Trimmed in the database too: at most one entry more than kept (a tenth of 5, at
        // least 1, are written between two trims).
        let (client, connection) =
            tokio_postgres::connect(&harness::database_url(), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(connection);
        for table in ["delivery_log", "event_log"] {
            let rows: i64 = client
                .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
                .await
                .expect("count")
                .get(0);
            assert!(rows <= 6, "{table}: {rows} rows");
        }
    }
}

/// A queued delivery of session `n`.
fn queued(n: u32) -> Delivery {
    Delivery {
        id: format!("msg_{n}"),
        sink: "hook".into(),
        rule: "status".into(),
        session_id: format!("s{n}"),
        session_title: Some(format!("Session s{n}")),
        event_id: format!("evt_{n}"),
        event_type: "session.status_changed".into(),
        body: "{}".into(),
        detected_at_ms: 1,
        attempts: 1,
        next_attempt_ms: 0,
        last_error: None,
        creator: None,
    }
}

async fn a_burst_of_outcomes_is_one_write(backend: Backend) {
    let env = Env::start_on(backend, RULES).await;
    let store = Store::from_config(&env.active().config.store)
        .await
        .expect("store");
    let commit = Commit {
        deliveries: (0..4).map(queued).collect(),
        ..Commit::default()
    };
    let seqs = store.commit(&commit).await.expect("commit");
    store.flush().await.expect("flush");
    let settle = |i: usize, change: Change, outcome: Outcome, status: u16| Settle {
        seq: seqs[i],
        change,
        log: DeliveryLogEntry::new(&queued(i as u32), outcome, Some(status), None),
    };
    let retried = Delivery {
        next_attempt_ms: 5,
        ..queued(2)
    };
    let letter = DeadLetter {
        delivery: queued(1),
        reason: "HTTP 400".into(),
        status: Some(400),
        response_body: String::new(),
        failed_at_ms: 2,
        event: None,
    };
    let batch = [
        settle(0, Change::Delivered, Outcome::Delivered, 200),
        settle(1, Change::Dead(letter), Outcome::Dead, 400),
        settle(2, Change::Retry(retried), Outcome::Retry, 503),
    ];
    store.settle(&batch).await.expect("settled");
    let left: Vec<(String, u64)> = store
        .outbox()
        .await
        .expect("outbox")
        .into_iter()
        .map(|(_, d)| (d.id, d.next_attempt_ms))
        .collect();
    assert_eq!(left, [("msg_2".to_owned(), 5), ("msg_3".to_owned(), 0)]);
    assert_eq!(store.dead_len().await.expect("dead"), 1);
    let entries = store.recent_deliveries(&filter(|_| {})).await.expect("log");
    assert_eq!(
        summary(&entries),
        [
            ("s2", Outcome::Retry, Some(503), 1),
            ("s1", Outcome::Dead, Some(400), 1),
            ("s0", Outcome::Delivered, Some(200), 1),
        ]
    );
}

on_both_backends!(
    the_delivery_log_tells_each_outcome,
    the_logs_keep_the_last_server_history_entries,
    a_burst_of_outcomes_is_one_write,
);
