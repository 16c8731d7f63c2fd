//! The store's behaviour, on a sled engine in a temporary folder.

use super::sled::session_key;
use super::*;

fn key(created_at: i64, session_id: &str) -> SnapshotKey {
    SnapshotKey {
        created_at,
        session_id: session_id.into(),
    }
}

async fn outbox(store: &Store) -> Vec<Delivery> {
    store
        .outbox()
        .await
        .expect("outbox")
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

fn delivery(n: u32) -> Delivery {
    Delivery {
        id: format!("msg_{n}"),
        sink: "s".into(),
        rule: "r".into(),
        session_id: "sess".into(),
        session_title: None,
        event_id: format!("evt_{n}"),
        event_type: "session.created".into(),
        body: "{}".into(),
        detected_at_ms: 1,
        attempts: 0,
        next_attempt_ms: 0,
        last_error: None,
        creator: None,
    }
}

#[tokio::test]
async fn commit_is_atomic_and_ordered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    let commit = Commit {
        snapshots: vec![(
            key(5, "a"),
            br#"{"session_id":"a","status":"new","created_at":5}"#.to_vec(),
        )],
        deliveries: (0..5).map(delivery).collect(),
        dead: vec![],
        meta: vec![(META_BASELINE, b"1".to_vec())],
        waiting: vec![],
        announced: vec![("evt_a".into(), "open".into())],
        uncache: vec!["evt_waiting".into()],
        ..Commit::default()
    };
    store
        .cache_message("evt_waiting", &Some("May I?".into()))
        .await
        .expect("cache");
    assert_eq!(store.announced(&["evt_a"]).await.expect("get"), [None]);
    let seqs = store.commit(&commit).await.expect("commit");
    assert_eq!(
        store.announced(&["evt_a", "evt_b"]).await.expect("get"),
        [Some("open".into()), None]
    );
    assert_eq!(
        store.cached_message("evt_waiting").await.expect("get"),
        None
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let ids: Vec<String> = outbox(&store).await.into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["msg_0", "msg_1", "msg_2", "msg_3", "msg_4"]);
    assert!(store.baseline_done().await.expect("meta"));
    assert_eq!(
        store
            .snapshot(&key(5, "a"))
            .await
            .expect("get")
            .map(|s| s.status),
        Some("new".into())
    );
    settle_some(&store, &seqs).await;
}

/// A delivery log entry of `d`.
fn entry(d: &Delivery, outcome: Outcome, status: Option<u16>) -> DeliveryLogEntry {
    DeliveryLogEntry::new(
        d,
        outcome,
        status,
        Some("HTTP 500: see https://hook.test/secret"),
    )
}

/// Updates, removes and buries some of the five deliveries `seqs` names.
async fn settle_some(store: &Store, seqs: &[u64]) {
    let mut d = delivery(2);
    d.attempts = 3;
    let retry = entry(&d, Outcome::Retry, Some(500));
    store
        .update_delivery(seqs[2], &d, &retry)
        .await
        .expect("update");
    let done = entry(&delivery(0), Outcome::Delivered, Some(200));
    store.remove_delivery(seqs[0], &done).await.expect("remove");
    let letter = DeadLetter {
        delivery: delivery(1),
        reason: "HTTP 400".into(),
        status: Some(400),
        response_body: "bad".into(),
        failed_at_ms: 2,
        event: None,
    };
    let dead = entry(&delivery(1), Outcome::Dead, Some(400));
    store.bury(seqs[1], &letter, &dead).await.expect("bury");
    let left: Vec<(String, u32)> = outbox(store)
        .await
        .into_iter()
        .map(|d| (d.id, d.attempts))
        .collect();
    assert_eq!(
        left,
        [
            ("msg_2".into(), 3),
            ("msg_3".into(), 0),
            ("msg_4".into(), 0)
        ]
    );
    assert_eq!(store.dead_len().await.expect("len"), 1);
    // Updating a delivery that is gone does not resurrect it.
    store
        .update_delivery(seqs[0], &delivery(0), &retry)
        .await
        .expect("noop");
    assert_eq!(store.outbox_len().await.expect("len"), 3);
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        store
            .commit(&Commit {
                deliveries: vec![delivery(7)],
                ..Commit::default()
            })
            .await
            .expect("commit");
        store.flush().await.expect("flush");
    }
    let store = reopen(dir.path()).await;
    assert_eq!(outbox(&store).await.len(), 1);
}

/// Opens the store at `path` again: sled's background flusher may hold the directory's lock a
/// moment after an earlier handle in this process dropped.
async fn reopen(path: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(path, 1 << 20) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            other => return other.expect("reopen"),
        }
    }
}

/// The raw sled database at `path` (as [`reopen`], waiting for the lock).
async fn raw_sled(path: &std::path::Path) -> ::sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match ::sled::Config::new().path(path).open() {
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            other => return other.expect("open sled"),
        }
    }
}

#[tokio::test]
async fn deliveries_are_held_back_until_flushed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    assert_eq!(store.durable_below(), u64::MAX, "nothing pending");
    // Snapshot-only commits hold nothing back.
    store
        .commit(&Commit {
            snapshots: vec![(key(0, "a"), b"{}".to_vec())],
            ..Commit::default()
        })
        .await
        .expect("commit");
    assert_eq!(store.durable_below(), u64::MAX);
    let seqs = store
        .commit(&Commit {
            deliveries: vec![delivery(1), delivery(2)],
            ..Commit::default()
        })
        .await
        .expect("commit");
    assert!(
        seqs.iter().all(|s| *s >= store.durable_below()),
        "unflushed rows are held back"
    );
    store.flush().await.expect("flush");
    assert_eq!(store.durable_below(), u64::MAX, "sendable once flushed");
}

#[test]
fn session_keys_sort_by_creation_time_then_id() {
    let keys = [
        session_key(i64::MIN, "a"),
        session_key(-5, "z"),
        session_key(0, "a"),
        session_key(0, "b"),
        session_key(1_795_000_000, "devin-1"),
        session_key(i64::MAX, "a"),
    ];
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert_eq!(key(-5, "devin-x").to_string(), "sessions/-5/devin-x");
    assert_eq!(
        key(1_795_000_000, "devin-x").to_string(),
        "sessions/1795000000/devin-x"
    );
}

#[tokio::test]
async fn opening_a_store_of_one_snapshot_to_a_key_moves_them_into_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = |n: i64| format!(r#"{{"session_id":"devin-{n}","created_at":{n}}}"#).into_bytes();
    {
        // The layout before blocks: `sessions`, one snapshot to a key.
        let db = ::sled::Config::new().path(dir.path()).open().expect("open");
        let sessions = db.open_tree("sessions").expect("tree");
        for n in 0..2500 {
            sessions
                .insert(session_key(n, &format!("devin-{n}")), body(n))
                .expect("insert");
        }
        db.flush().expect("flush");
    }
    for _ in 0..2 {
        // The second open finds nothing left to move.
        let store = reopen(dir.path()).await;
        let keys: Vec<SnapshotKey> = (0..2500).map(|n| key(n, &format!("devin-{n}"))).collect();
        let found = store.snapshots(&keys).await.expect("get");
        for (n, found) in (0..2500).zip(found) {
            assert_eq!(found, Some(body(n)), "devin-{n}");
        }
        let Backend::Sled(engine) = &*store.backend else {
            panic!("a sled store");
        };
        assert!(!engine.db.tree_names().iter().any(|n| n == b"sessions"));
        let blocks = engine.blocks.tree.len();
        // Snapshots of about 45 bytes under 18-byte keys: about 21 to a 1.5 KiB block.
        assert!(
            (100..=130).contains(&blocks),
            "{blocks} blocks for 2,500 sessions"
        );
        assert_eq!(engine.export().expect("export").sessions.len(), 2500);
    }
}

#[tokio::test]
async fn opening_a_store_of_an_earlier_version_moves_its_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = br#"{"session_id":"devin-a","status":"running","created_at":100}"#;
    let b = br#"{"session_id":"devin-b","status":"exit","created_at":null}"#;
    {
        // The layout before `sessions`: snapshots and fingerprints keyed by id.
        let db = ::sled::Config::new().path(dir.path()).open().expect("open");
        let snapshots = db.open_tree("snapshots").expect("tree");
        snapshots.insert("devin-a", &a[..]).expect("insert");
        snapshots.insert("devin-b", &b[..]).expect("insert");
        snapshots
            .insert("devin-c", &b"not json"[..])
            .expect("insert");
        let fingerprints = db.open_tree("fingerprints").expect("tree");
        fingerprints
            .insert("devin-a", &7u64.to_be_bytes())
            .expect("insert");
        db.open_tree("waiting")
            .expect("tree")
            .insert(
                "devin-a",
                &br#"{"since_ms":5,"status_detail":"waiting_for_user"}"#[..],
            )
            .expect("insert");
        db.flush().expect("flush");
    }
    for _ in 0..2 {
        // The second open finds nothing left to move.
        let store = reopen(dir.path()).await;
        let found = store
            .snapshots(&[key(100, "devin-a"), key(0, "devin-c")])
            .await
            .expect("get");
        assert_eq!(found[0].as_deref(), Some(&a[..]));
        // An unreadable snapshot with no readable created_at moves too, under created_at 0.
        assert!(found[1].is_some());
        assert_eq!(
            store
                .snapshot(&key(0, "devin-b"))
                .await
                .expect("get")
                .map(|s| s.status),
            Some("exit".into())
        );
        let Backend::Sled(engine) = &*store.backend else {
            panic!("a sled store");
        };
        let names = engine.db.tree_names();
        assert!(!names
            .iter()
            .any(|n| n == b"snapshots" || n == b"fingerprints" || n == b"sessions"));
        let waits = store.waiting().await.expect("waiting");
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].1.created_at, 100, "the wait finds its snapshot");
        assert_eq!(waits[0].1.since_ms, 5);
        // The next listing of the same sessions finds them unchanged: nothing to write.
        let body = format!(
            r#"{{"items":[{},{}],"has_next_page":false}}"#,
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
        let page = crate::model::Page::decode(body.as_bytes()).expect("page");
        let keys: Vec<SnapshotKey> = page.items.iter().map(SnapshotKey::of).collect();
        let stored = store.snapshots(&keys).await.expect("get");
        for (raw, stored) in page.raw.iter().zip(stored) {
            assert_eq!(stored.as_deref(), Some(raw.as_bytes()), "the same bytes");
        }
    }
}

fn event(n: u32, routed: bool) -> EventLogEntry {
    EventLogEntry {
        id: 0,
        event_id: format!("evt_{n}"),
        event_type: "session.created".into(),
        session_id: format!("sess_{n}"),
        session_title: Some(format!("Title {n}")),
        session_created_at: Some(i64::from(n)),
        detected_at_ms: u64::from(n),
        routes: if routed {
            vec![EventRoute {
                rule: "r".into(),
                sink: "s".into(),
            }]
        } else {
            Vec::new()
        },
    }
}

fn newest() -> DeliveryFilter {
    DeliveryFilter {
        limit: 100,
        ..DeliveryFilter::default()
    }
}

#[tokio::test]
async fn each_outcome_is_written_with_its_log_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    let failed = delivery(9);
    let commit = Commit {
        deliveries: (0..5).map(delivery).collect(),
        events: vec![event(0, true), event(1, false)],
        logged: vec![entry(&failed, Outcome::Dead, None)],
        ..Commit::default()
    };
    let seqs = store.commit(&commit).await.expect("commit");
    let log = |store: &Store| {
        let store = store.clone();
        async move {
            let entries = store.recent_deliveries(&newest()).await.expect("log");
            entries
                .into_iter()
                .map(|e| (e.delivery_id, e.outcome))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(log(&store).await, [("msg_9".to_owned(), Outcome::Dead)]);
    let events = store.recent_events(10, None).await.expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].event_id.as_str(), events[0].unrouted()),
        ("evt_1", true)
    );
    assert!(events[0].id > events[1].id, "newest first");

    // Each outcome and its entry: the outbox changed, and the entry is the newest.
    settle_some(&store, &seqs).await;
    let (_, letter) = store.find_dead("msg_1").await.expect("find").expect("dead");
    store
        .requeue(seqs[1], &letter.delivery)
        .await
        .expect("requeue");
    assert_eq!(store.outbox_len().await.expect("len"), 4);
    assert_eq!(
        log(&store).await,
        [
            ("msg_1".to_owned(), Outcome::Requeued),
            ("msg_2".to_owned(), Outcome::Retry),
            ("msg_1".to_owned(), Outcome::Dead),
            ("msg_0".to_owned(), Outcome::Delivered),
            ("msg_2".to_owned(), Outcome::Retry),
            ("msg_9".to_owned(), Outcome::Dead),
        ],
        "the retry of a delivery already gone is logged (the attempt was made), not resurrected"
    );
    let entries = store.recent_deliveries(&newest()).await.expect("log");
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id));
    let retry = &entries[1];
    assert_eq!((retry.status, retry.attempts), (Some(500), 3));
    assert_eq!(
        retry.excerpt.as_deref(),
        Some("HTTP 500: see https://hook.test/…"),
        "URLs redacted"
    );
}

#[tokio::test]
async fn logs_keep_the_last_history_entries_and_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    store.keep_history(5);
    for n in 0..20 {
        let mut d = delivery(n);
        d.sink = if n % 2 == 0 { "even" } else { "odd" }.into();
        d.session_id = format!("sess_{}", n % 3);
        let seqs = store
            .commit(&Commit {
                deliveries: vec![d.clone()],
                events: vec![event(n, n % 2 == 0)],
                ..Commit::default()
            })
            .await
            .expect("commit");
        let outcome = if n % 4 == 0 {
            Outcome::Retry
        } else {
            Outcome::Delivered
        };
        let log = entry(&d, outcome, Some(200));
        store.remove_delivery(seqs[0], &log).await.expect("remove");
    }
    let ids = |entries: Vec<DeliveryLogEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.delivery_id).collect()
    };
    let all = store.recent_deliveries(&newest()).await.expect("log");
    assert_eq!(
        ids(all.clone()),
        ["msg_19", "msg_18", "msg_17", "msg_16", "msg_15"]
    );
    let events = store.recent_events(100, None).await.expect("events");
    let event_ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        event_ids,
        ["evt_19", "evt_18", "evt_17", "evt_16", "evt_15"]
    );
    // Trimmed in the store, not only hidden: at most one more than kept (a tenth of 5, at
    // least 1, between two trims).
    let Backend::Sled(engine) = &*store.backend else {
        panic!("a sled store");
    };
    assert!(engine.delivery_log.len() <= 6 && engine.event_log.len() <= 6);
    // Filters among the kept entries, newest first.
    let filtered = |f: DeliveryFilter| {
        let store = store.clone();
        async move { ids(store.recent_deliveries(&f).await.expect("log")) }
    };
    let by_sink = DeliveryFilter {
        sink: Some("odd".into()),
        ..newest()
    };
    assert_eq!(filtered(by_sink).await, ["msg_19", "msg_17", "msg_15"]);
    let by_outcome = DeliveryFilter {
        outcome: Some(Outcome::Retry),
        ..newest()
    };
    assert_eq!(filtered(by_outcome).await, ["msg_16"]);
    let by_session = DeliveryFilter {
        session_id: Some("sess_1".into()),
        ..newest()
    };
    assert_eq!(filtered(by_session).await, ["msg_19", "msg_16"]);
    let page = DeliveryFilter {
        before_id: Some(all[1].id),
        limit: 2,
        ..DeliveryFilter::default()
    };
    assert_eq!(filtered(page).await, ["msg_17", "msg_16"]);
    let older = store
        .recent_events(2, Some(events[2].id))
        .await
        .expect("events");
    assert_eq!(older.len(), 2);
    assert_eq!(older[0].event_id, "evt_16");
}

#[test]
fn deliveries_of_earlier_versions_decode_without_a_title() {
    let old = br#"{"id":"msg_1","sink":"s","rule":"r","session_id":"a","event_id":"e","event_type":"session.created","body":"{}","detected_at_ms":1,"attempts":0,"next_attempt_ms":0}"#;
    let d: Delivery = decode("outbox/1", old).expect("decodes");
    assert_eq!(d.session_title, None);
}

fn held(n: u32) -> Held {
    Held {
        delivery: delivery(n),
        headline: Some("Devin finished".into()),
        link: Some(format!("https://app.devin.ai/sessions/{n}")),
        held_at_ms: 1,
    }
}

#[tokio::test]
async fn held_deliveries_are_kept_in_order_and_released_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    for batch in [vec![held(0), held(1)], vec![held(2)]] {
        let commit = Commit {
            held: batch,
            ..Commit::default()
        };
        store.commit(&commit).await.expect("hold");
    }
    let kept = store.held().await.expect("held");
    let ids: Vec<&str> = kept.iter().map(|(_, h)| h.delivery.id.as_str()).collect();
    assert_eq!(ids, ["msg_0", "msg_1", "msg_2"]);
    assert!(outbox(&store).await.is_empty(), "held, not queued");
    // The first two move to the outbox in one commit.
    let release = Commit {
        deliveries: kept[..2].iter().map(|(_, h)| h.delivery.clone()).collect(),
        unhold: kept[..2].iter().map(|(seq, _)| *seq).collect(),
        ..Commit::default()
    };
    store.commit(&release).await.expect("release");
    store.flush().await.expect("flush");
    let queued: Vec<String> = outbox(&store).await.into_iter().map(|d| d.id).collect();
    assert_eq!(queued, ["msg_0", "msg_1"]);
    let left: Vec<u64> = store
        .held()
        .await
        .expect("held")
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(left, [kept[2].0]);
    // Releasing them again fails and writes nothing: never queued twice.
    let again = Commit {
        deliveries: vec![delivery(0), delivery(2)],
        unhold: vec![kept[0].0, kept[2].0],
        ..Commit::default()
    };
    assert!(store.commit(&again).await.is_err());
    assert_eq!(outbox(&store).await.len(), 2);
    assert_eq!(store.held().await.expect("held").len(), 1);
    // They survive a reopen.
    drop(store);
    let store = reopen(dir.path()).await;
    assert_eq!(store.held().await.expect("held")[0].1, held(2));
}

/// An unreadable held record is left in place and blocks no other release.
#[tokio::test]
async fn an_unreadable_held_record_blocks_no_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let commit = Commit {
            held: vec![held(0), held(1)],
            ..Commit::default()
        };
        store.commit(&commit).await.expect("hold");
        store.flush().await.expect("flush");
    }
    {
        let db = raw_sled(dir.path()).await;
        let tree = db.open_tree("held").expect("tree");
        tree.insert(999u64.to_be_bytes(), &b"{not json"[..])
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = reopen(dir.path()).await;
    let kept = store.held().await.expect("the readable ones");
    let ids: Vec<&str> = kept.iter().map(|(_, h)| h.delivery.id.as_str()).collect();
    assert_eq!(ids, ["msg_0", "msg_1"]);
    let release = Commit {
        deliveries: kept.iter().map(|(_, h)| h.delivery.clone()).collect(),
        unhold: kept.iter().map(|(seq, _)| *seq).collect(),
        ..Commit::default()
    };
    store.commit(&release).await.expect("released");
    assert_eq!(outbox(&store).await.len(), 2);
    assert!(store.held().await.expect("held").is_empty());
}

#[tokio::test]
async fn creator_lookups_are_cached_per_sink_and_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 1 << 20).expect("open");
    assert_eq!(
        store.cached_person("dm", "user-1").await.expect("read"),
        None
    );
    let found = super::CachedPerson {
        slack_user: Some("U1".into()),
        reason: None,
        at_ms: 5,
        listed: None,
    };
    let missing = super::CachedPerson {
        slack_user: None,
        reason: Some("no Slack user".into()),
        at_ms: 6,
        listed: None,
    };
    store
        .cache_person("dm", "user-1", &found)
        .await
        .expect("write");
    store
        .cache_person("other", "user-1", &missing)
        .await
        .expect("write");
    assert_eq!(
        store.cached_person("dm", "user-1").await.expect("read"),
        Some(found)
    );
    assert_eq!(
        store.cached_person("other", "user-1").await.expect("read"),
        Some(missing)
    );
    // Kept apart from the paused sinks that share the named values.
    assert!(store.paused_sinks().await.expect("paused").is_empty());
}
