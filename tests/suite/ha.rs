//! High availability on the PostgreSQL store: several `run` processes on one schema, talking
//! real HTTP to the fake API and the recording receivers. One leads (polls and delivers), the
//! others stand by; a standby takes over when the leader dies or loses its database; a poll
//! that finds nothing new writes nothing; admin commands work while `run` is up.

use crate::harness;
use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{database_url, free_port, Backend, Env, Service, SECRET};
use serde_json::{json, Value};
use support::{session, webhooks, FakeDevin, Received, Reply};

const WAIT: Duration = Duration::from_secs(20);

const RULES: &str = r#"
[[rules]]
name = "status"
events = ["session.status_changed"]
sinks = ["hook"]
"#;

/// A connection of the test's own to the test database.
async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// The port the test database listens on.
fn pg_port() -> u16 {
    let config: tokio_postgres::Config = database_url().parse().expect("database URL");
    config.get_ports().first().copied().unwrap_or(5432)
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// One `run` process with a config file (and so a server port) of its own.
struct Node {
    name: &'static str,
    service: Service,
    base: String,
}

impl Node {
    fn start(env: &Env, name: &'static str) -> Node {
        let port = free_port();
        let config = env.served_config(&format!("{name}.toml"), port);
        Node {
            name,
            service: Service::start_config(&config),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn readyz(&self) -> (u16, String) {
        get(&format!("{}/readyz", self.base)).await
    }

    async fn metrics(&self) -> String {
        get(&format!("{}/metrics", self.base)).await.1
    }

    /// `devin_notify_leader` as /metrics shows it (`None`: no answer or no such line yet).
    async fn leader_gauge(&self) -> Option<f64> {
        gauge(&self.metrics().await, "devin_notify_leader")
    }
}

/// The value of an unlabelled metric in Prometheus text.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Waits until exactly one of `nodes` says on /metrics that it leads and every other one that
/// it stands by; returns the leader's index.
async fn wait_for_leader(nodes: &[&Node], within: Duration) -> usize {
    let start = Instant::now();
    loop {
        let mut gauges = Vec::new();
        for node in nodes {
            gauges.push(node.leader_gauge().await);
        }
        let leaders: Vec<usize> = (0..nodes.len())
            .filter(|&i| gauges[i] == Some(1.0))
            .collect();
        let standbys = gauges.iter().filter(|g| **g == Some(0.0)).count();
        if leaders.len() == 1 && standbys == nodes.len() - 1 {
            return leaders[0];
        }
        assert!(
            start.elapsed() < within,
            "no single leader within {within:?}: devin_notify_leader {gauges:?}\n{}",
            logs(nodes)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- log of {}:\n{}", n.name, n.service.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a log line is the delivery loop's "delivered".
fn is_delivered_line(line: &str) -> bool {
    line.contains("devin_notify::delivery: delivered")
}

/// The body's event id.
fn event_id(rec: &Received) -> String {
    rec.json()["data"]["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no data.event_id: {}", rec.text()))
        .to_owned()
}

/// The `updated_at` of a session's snapshot as the store last committed it.
async fn committed_updated_at(client: &tokio_postgres::Client, schema: &str, id: &str) -> i64 {
    let rows = client
        .query(
            &format!("SELECT body FROM {schema}.sessions WHERE session_id = $1"),
            &[&id],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.get::<_, String>(0)).ok())
        .filter_map(|v| v["updated_at"].as_i64())
        .max()
        .unwrap_or(i64::MIN)
}

/// A stream of status changes: `rounds` rounds over `sessions` sessions, one change every
/// `every`; change k of a session sets its `status_detail` to `step_k` (1-based). A session
/// changes again only once the store has committed its previous change (so that every state is
/// seen by some poll, fail-overs included: the poller reads current states, and a state
/// replaced before any leader read it could not be announced). `made` counts the changes made.
/// Returns the `updated_at` of each change, per session.
async fn stream_changes(
    api: FakeDevin,
    schema: String,
    sessions: usize,
    rounds: usize,
    every: Duration,
    made: Arc<AtomicUsize>,
) -> BTreeMap<String, Vec<i64>> {
    let client = pg().await;
    let mut made_at: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for k in 1..=rounds {
        for s in 0..sessions {
            let id = format!("s{s}");
            if let Some(&previous) = made_at.get(&id).and_then(|v| v.last()) {
                let start = Instant::now();
                while committed_updated_at(&client, &schema, &id).await < previous {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "{id}: change {} never committed",
                        k - 1
                    );
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
            let new = api.update(&id, |v| v["status_detail"] = json!(format!("step_{k}")));
            made_at
                .entry(id)
                .or_default()
                .push(new["updated_at"].as_i64().expect("updated_at"));
            made.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(every).await;
        }
    }
    made_at
}

/// Checks the webhook deliveries of a [`stream_changes`] run: every change delivered, the first
/// copies of each session's deliveries in the order of its changes, each change under one event
/// id, every copy of an event under the same `webhook-id`, every signature valid. Returns the
/// number of duplicate deliveries.
fn check_stream_deliveries(recs: &[Received], sessions: usize, rounds: usize) -> usize {
    let mut webhook_ids: HashMap<String, HashSet<String>> = HashMap::new();
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut id_of_step: HashMap<(String, String), String> = HashMap::new();
    for rec in recs {
        webhooks::verify_received(SECRET, rec).unwrap_or_else(|e| panic!("signature: {e}"));
        let body = rec.json();
        assert_eq!(body["type"], "session.status_changed", "{body}");
        let id = event_id(rec);
        let sid = body["data"]["session"]["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned();
        let step = body["data"]["change"]["status_detail"]
            .as_str()
            .expect("status_detail")
            .to_owned();
        if let Some(other) = id_of_step.insert((sid.clone(), step.clone()), id.clone()) {
            assert_eq!(other, id, "{sid} {step} announced under two event ids");
        }
        let webhook_id = rec.header("webhook-id").expect("webhook-id").to_owned();
        let ids = webhook_ids.entry(id).or_default();
        if ids.is_empty() {
            first_seen.entry(sid).or_default().push(step);
        }
        ids.insert(webhook_id);
    }
    for (id, ids) in &webhook_ids {
        assert_eq!(
            ids.len(),
            1,
            "event {id} was delivered under several webhook-ids: {ids:?}"
        );
    }
    assert_eq!(
        webhook_ids.len(),
        sessions * rounds,
        "every change delivered"
    );
    for s in 0..sessions {
        let expected: Vec<String> = (1..=rounds).map(|k| format!("step_{k}")).collect();
        assert_eq!(
            first_seen.get(&format!("s{s}")),
            Some(&expected),
            "s{s}: first deliveries in the order of the changes"
        );
    }
    recs.len() - webhook_ids.len()
}

/// Waits until the receiver holds `n` distinct event ids.
async fn wait_for_events(env: &Env, n: usize, within: Duration) -> Vec<Received> {
    env.hook
        .wait_until(
            |recs| {
                let ids: HashSet<String> = recs.iter().map(event_id).collect();
                ids.len() >= n
            },
            within,
        )
        .await
}

/// A PostgreSQL env with sessions s0..s{n-1} and a 200 ms poll interval.
async fn env_with_sessions(n: usize) -> Env {
    let mut env = Env::start_on(Backend::Postgres, RULES).await;
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    env.api
        .upsert_all((0..n).map(|s| session(&format!("s{s}"))));
    env
}

/// Waits until `node` answers /readyz with "ready: leader" (it leads and has polled).
async fn wait_ready_leader(node: &Node, within: Duration) {
    let start = Instant::now();
    loop {
        let (status, body) = node.readyz().await;
        if status == 200 && body == "ready: leader\n" {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{}: /readyz {status}: {body}\n{}",
            node.name,
            node.service.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leads_the_other_stands_by() {
    let env = Env::start_on(Backend::Postgres, RULES).await;
    env.api.upsert_all([session("s1"), session("s2")]);
    let schema = env.schema.clone().expect("schema");
    let a = Node::start(&env, "a");
    let b = Node::start(&env, "b");

    let start = Instant::now();
    let (leader, standby) = loop {
        let (ra, rb) = (a.readyz().await, b.readyz().await);
        let leading = |r: &(u16, String)| r.0 == 200 && r.1 == "ready: leader\n";
        let standing = |r: &(u16, String)| r.0 == 200 && r.1 == "ready: standby\n";
        if leading(&ra) && standing(&rb) {
            break (&a, &b);
        }
        if leading(&rb) && standing(&ra) {
            break (&b, &a);
        }
        assert!(
            start.elapsed() < WAIT,
            "/readyz: a {ra:?}, b {rb:?}\n{}",
            logs(&[&a, &b])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(leader.leader_gauge().await, Some(1.0));
    assert_eq!(standby.leader_gauge().await, Some(0.0));

    // The lease row names the leader's process.
    let row = pg()
        .await
        .query_one(&format!("SELECT holder, token FROM {schema}.leader"), &[])
        .await
        .expect("lease row");
    let (holder, token): (String, i64) = (row.get(0), row.get(1));
    assert_eq!(
        holder.split('/').nth(1),
        Some(leader.service.pid().to_string().as_str()),
        "holder {holder}"
    );
    assert!(token >= 1, "token {token}");

    // Over more than a lease (2s), the leader renews and nothing changes hands; only the leader
    // polls.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(2600) {
        assert_eq!(
            leader.leader_gauge().await,
            Some(1.0),
            "{}",
            logs(&[&a, &b])
        );
        assert_eq!(
            standby.leader_gauge().await,
            Some(0.0),
            "{}",
            logs(&[&a, &b])
        );
        assert_eq!(standby.readyz().await, (200, "ready: standby\n".to_owned()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    leader.service.wait_log("poll done", 2, WAIT).await;
    assert!(
        !standby.service.log().contains("poll done"),
        "a standby does not poll:\n{}",
        standby.service.log()
    );
    let row = pg()
        .await
        .query_one(&format!("SELECT token FROM {schema}.leader"), &[])
        .await
        .expect("lease row");
    assert_eq!(row.get::<_, i64>(0), token, "the same term all along");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_is_killed() {
    const SESSIONS: usize = 6;
    const ROUNDS: usize = 5;
    let env = env_with_sessions(SESSIONS).await;
    let schema = env.schema.clone().expect("schema");
    // Every delivery takes a while, so that some are in flight when the leader dies.
    env.hook
        .set_default(Reply::Stall(Duration::from_millis(150)));
    let a = Node::start(&env, "a");
    let b = Node::start(&env, "b");
    let nodes = [a, b];
    let first = wait_for_leader(&[&nodes[0], &nodes[1]], WAIT).await;
    // The baseline is recorded (silently) before anything changes.
    wait_ready_leader(&nodes[first], WAIT).await;

    let made = Arc::new(AtomicUsize::new(0));
    let changes = tokio::spawn(stream_changes(
        env.api.clone(),
        schema.clone(),
        SESSIONS,
        ROUNDS,
        Duration::from_millis(150),
        made.clone(),
    ));
    // In the middle of the stream, with deliveries flowing: SIGKILL.
    let start = Instant::now();
    while made.load(Ordering::SeqCst) < SESSIONS * ROUNDS / 3 || env.hook.count() < 3 {
        assert!(start.elapsed() < WAIT, "the stream does not flow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let [a, b] = nodes;
    let (old, survivor) = if first == 0 { (a, b) } else { (b, a) };
    old.service.signal("KILL");
    let killed_at = Instant::now();
    let delivered_before = env.hook.count();

    let took_over_in = {
        let start = Instant::now();
        loop {
            if survivor.leader_gauge().await == Some(1.0) {
                break killed_at.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no takeover:\n{}",
                survivor.service.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // lease (2s) + poll interval (200ms) + slack.
    assert!(
        took_over_in < Duration::from_secs(10),
        "took over in {took_over_in:?}"
    );
    survivor
        .service
        .wait_log("became the leader", 1, WAIT)
        .await;

    let made_at = tokio::time::timeout(Duration::from_secs(60), changes)
        .await
        .expect("the stream of changes ends")
        .expect("stream of changes");
    assert_eq!(
        made_at.values().map(Vec::len).sum::<usize>(),
        SESSIONS * ROUNDS
    );
    let recs = wait_for_events(&env, SESSIONS * ROUNDS, WAIT).await;
    let duplicates = check_stream_deliveries(&recs, SESSIONS, ROUNDS);
    assert!(delivered_before < recs.len(), "the survivor delivered some");
    eprintln!(
        "took over in {took_over_in:?}; {} requests, {duplicates} duplicate(s), {delivered_before} before the kill",
        recs.len()
    );
}

/// The local ports of `pid`'s TCP connections to the test database (from the socket inodes of
/// its open files and the kernel's TCP table).
fn database_ports_of(pid: u32) -> Vec<i32> {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds of the leader")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let db_port = pg_port();
    let port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let (Some(local), Some(remote)) = (port(cols[1]), port(cols[2])) else {
                continue;
            };
            let inode: u64 = cols[9].parse().unwrap_or(0);
            if remote == db_port && inodes.contains(&inode) {
                ports.push(i32::from(local));
            }
        }
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_database_connection_stops_sending() {
    const SESSIONS: usize = 4;
    const ROUNDS: usize = 6;
    let env = env_with_sessions(SESSIONS).await;
    let schema = env.schema.clone().expect("schema");
    // Slow receivers: a send is in flight most of the time.
    env.hook
        .set_default(Reply::Stall(Duration::from_millis(400)));
    let nodes = [Node::start(&env, "a"), Node::start(&env, "b")];
    let first = wait_for_leader(&[&nodes[0], &nodes[1]], WAIT).await;
    wait_ready_leader(&nodes[first], WAIT).await;
    let leader = &nodes[first];

    let made = Arc::new(AtomicUsize::new(0));
    let changes = tokio::spawn(stream_changes(
        env.api.clone(),
        schema.clone(),
        SESSIONS,
        ROUNDS,
        Duration::from_millis(150),
        made.clone(),
    ));
    leader
        .service
        .wait_log("devin_notify::delivery: delivered", 2, WAIT)
        .await;

    // Every database connection of the leader is terminated by the server.
    let ports = database_ports_of(leader.service.pid());
    assert!(!ports.is_empty(), "the leader has database connections");
    let terminated = pg()
        .await
        .query(
            "SELECT pid, query, pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'devin-notify' AND client_port = ANY($1::int[])",
            &[&ports],
        )
        .await
        .expect("terminate the leader's connections");
    let queries: Vec<String> = terminated.iter().map(|r| r.get(1)).collect();
    assert!(
        terminated.iter().all(|r| r.get::<_, bool>(2)),
        "terminated {queries:?}"
    );
    assert!(
        queries
            .iter()
            .any(|q| q.starts_with("UPDATE leader SET expires_at")),
        "the election connection was among them: {queries:?}"
    );

    leader
        .service
        .wait_log("lost the leadership", 1, Duration::from_secs(10))
        .await;
    // A leader again (either process), ready.
    let next = wait_for_leader(&[&nodes[0], &nodes[1]], WAIT).await;
    wait_ready_leader(&nodes[next], WAIT).await;

    // The stream goes on to the end, every change delivered, in order, one id per event.
    let made_at = tokio::time::timeout(Duration::from_secs(60), changes)
        .await
        .expect("the stream of changes ends")
        .expect("stream of changes");
    assert_eq!(
        made_at.values().map(Vec::len).sum::<usize>(),
        SESSIONS * ROUNDS
    );
    let recs = wait_for_events(&env, SESSIONS * ROUNDS, WAIT).await;
    check_stream_deliveries(&recs, SESSIONS, ROUNDS);

    // From the moment it lost the leadership, the old leader delivered nothing until it led
    // again (if it did).
    let lines = leader.service.lines();
    let lost = lines
        .iter()
        .position(|l| l.contains("lost the leadership"))
        .expect("lost the leadership");
    assert!(
        lines[..lost].iter().any(|l| is_delivered_line(l)),
        "it delivered while leading"
    );
    for line in &lines[lost..] {
        if line.contains("became the leader") {
            break;
        }
        assert!(
            !is_delivered_line(line),
            "delivered after losing the leadership:\n{}",
            lines[lost..].join("\n")
        );
    }
    eprintln!(
        "terminated {} connection(s) of {}; next leader: {}; {} requests",
        terminated.len(),
        leader.name,
        nodes[next].name,
        recs.len()
    );
}

/// The tables whose writes a quiet poll must not touch (`leader` is renewed by design).
const TABLES: [&str; 9] = [
    "sessions",
    "outbox",
    "dead",
    "meta",
    "waiting",
    "announced",
    "messages",
    "threads",
    "paused_sinks",
];

/// (n_tup_ins, n_tup_upd, n_tup_del) of each of [`TABLES`] in `schema`.
async fn write_counters(
    client: &tokio_postgres::Client,
    schema: &str,
) -> BTreeMap<String, (i64, i64, i64)> {
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("clear the stats snapshot");
    let tables: Vec<&str> = TABLES.to_vec();
    let rows = client
        .query(
            "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables \
             WHERE schemaname::text = $1::text AND relname::text = ANY($2::text[])",
            &[&schema, &tables],
        )
        .await
        .expect("pg_stat_user_tables");
    let counters: BTreeMap<String, (i64, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    assert_eq!(counters.len(), TABLES.len(), "{counters:?}");
    counters
}

/// The counters once they have stopped moving. The backends of a `once` process flush their
/// statistics when they exit, shortly after the process does: the counters are read until five
/// readings in a row (a second) agree.
async fn settled_counters(
    client: &tokio_postgres::Client,
    schema: &str,
) -> BTreeMap<String, (i64, i64, i64)> {
    let start = Instant::now();
    let mut last = write_counters(client, schema).await;
    let mut same = 0;
    while same < 5 {
        assert!(
            start.elapsed() < WAIT,
            "the counters never settle: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = write_counters(client, schema).await;
        if now == last {
            same += 1;
        } else {
            same = 0;
            last = now;
        }
    }
    last
}

fn total(counters: &BTreeMap<String, (i64, i64, i64)>) -> i64 {
    counters.values().map(|(i, u, d)| i + u + d).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_poll_changes_no_row() {
    let env = env_with_sessions(5).await;
    let schema = env.schema.clone().expect("schema");
    let client = pg().await;
    let once = || async {
        let (code, out) = env.cli(&["once"]).await;
        assert_eq!(code, Some(0), "{out}");
        out
    };
    once().await; // the baseline
    once().await; // a first poll that finds nothing new
    let before = settled_counters(&client, &schema).await;
    let out = once().await; // a quiet poll
    assert!(out.contains("incremental=true"), "{out}");
    let after = settled_counters(&client, &schema).await;
    assert_eq!(before, after, "a quiet poll wrote:\n{out}");

    // The control: a poll with a change does move the counters.
    env.api
        .update("s1", |v| v["status_detail"] = json!("finished"));
    once().await;
    env.hook.wait_for(1, WAIT).await;
    let changed = settled_counters(&client, &schema).await;
    assert!(
        changed["sessions"].1 > after["sessions"].1,
        "{after:?} -> {changed:?}"
    );
    assert!(
        changed["outbox"].0 > after["outbox"].0 && changed["outbox"].2 > after["outbox"].2,
        "{after:?} -> {changed:?}"
    );
    assert!(total(&changed) > total(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_work_while_run_is_up() {
    let env = env_with_sessions(2).await;
    let schema = env.schema.clone().expect("schema");
    let node = Node::start(&env, "a");
    assert_eq!(wait_for_leader(&[&node], WAIT).await, 0);
    wait_ready_leader(&node, WAIT).await;
    // The receiver refuses the first delivery for good.
    env.hook.script(vec![Reply::Status(400, "bad".into())]);
    env.api
        .update("s1", |v| v["status_detail"] = json!("finished"));
    node.service
        .wait_log("moved to the dead letters", 1, WAIT)
        .await;

    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 dead letter(s)") && out.contains("HTTP 400: bad"),
        "{out}"
    );
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("hook") && out.contains("active"), "{out}");
    let (code, out) = env.cli(&["dead-letters", "retry", "--all"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 delivery(ies) back in the outbox"), "{out}");
    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 dead letter(s)"), "{out}");
    let client = pg().await;
    let count = |table: &'static str| {
        let client = &client;
        let schema = &schema;
        async move {
            client
                .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    // Out of the dead letters, back in the outbox: one row, or none already, when the leader's
    // look at the shared outbox (every poll interval) took it before this count.
    assert_eq!(count("dead").await, 0);
    assert!(count("outbox").await <= 1);

    // The running leader sends it again, under the same id (alongside the next change; with
    // none, see `a_dead_letter_retried_from_the_command_line_is_sent_without_another_change`).
    env.api
        .update("s0", |v| v["status_detail"] = json!("finished"));
    let got = env.hook.wait_for(3, WAIT).await;
    let refused = event_id(&got[0]);
    let again: Vec<&Received> = got[1..].iter().filter(|r| event_id(r) == refused).collect();
    assert_eq!(again.len(), 1, "{got:?}");
    assert!(again[0].was_accepted());
    assert_eq!(got[0].header("webhook-id"), again[0].header("webhook-id"));
    let start = Instant::now();
    while count("outbox").await > 0 {
        assert!(start.elapsed() < WAIT, "the outbox empties");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count("dead").await, 0);
    assert_eq!(
        node.leader_gauge().await,
        Some(1.0),
        "{}",
        node.service.log()
    );
}

/// A dead letter put back in the outbox by `dead-letters retry` (another process, on
/// PostgreSQL) is sent by the running leader without waiting for an unrelated change: its
/// delivery loop looks at a shared outbox every poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_retried_from_the_command_line_is_sent_without_another_change() {
    let env = env_with_sessions(2).await;
    let node = Node::start(&env, "a");
    assert_eq!(wait_for_leader(&[&node], WAIT).await, 0);
    wait_ready_leader(&node, WAIT).await;
    env.hook.script(vec![Reply::Status(400, "bad".into())]);
    env.api
        .update("s1", |v| v["status_detail"] = json!("finished"));
    node.service
        .wait_log("moved to the dead letters", 1, WAIT)
        .await;
    let (code, out) = env.cli(&["dead-letters", "retry", "--all"]).await;
    assert_eq!(code, Some(0), "{out}");
    // Many poll intervals (200 ms) and far longer than any backoff of the config.
    let got = env.hook.wait_for(2, Duration::from_secs(10)).await;
    assert!(got[1].was_accepted());
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
}
