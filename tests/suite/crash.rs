//! Crash safety: the real binary, killed with SIGKILL at random moments while sessions change,
//! restarted each time. Every change must be delivered, in order per session, and a redelivery
//! may only ever repeat a `webhook-id` (never give one change a second id).

use crate::harness;
use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Env, SECRET};
use rand::Rng;
use serde_json::json;
use support::{pr, session, webhooks};

const SESSIONS: usize = 4;
const PRS_PER_SESSION: usize = 6;

const RULES: &str = r#"
[[rules]]
name = "prs"
events = ["pull_request.opened"]
sinks = ["hook"]
"#;

fn spawn(env: &Env, command: &str) -> harness::Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_devin-notify"))
        .args([command, "--config"])
        .arg(&env.config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn devin-notify");
    harness::Reaped(child)
}

fn pr_url(s: usize, p: usize) -> String {
    format!("https://github.com/acme/repo{s}/pull/{p}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_never_reissues_an_id() {
    let mut env = Env::start(RULES).await;
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"150ms\"");
    env.api
        .upsert_all((0..SESSIONS).map(|s| session(&format!("s{s}"))));
    // The baseline, recorded before anything changes.
    let status = tokio::task::spawn_blocking({
        let mut once = spawn(&env, "once");
        move || once.wait()
    })
    .await
    .expect("join")
    .expect("once");
    assert!(status.success());

    // Sessions gain PRs one at a time while the service is killed and restarted.
    let api = env.api.clone();
    let mutator = tokio::spawn(async move {
        for p in 0..PRS_PER_SESSION {
            for s in 0..SESSIONS {
                api.update(&format!("s{s}"), |v| {
                    let mut prs = v["pull_requests"].as_array().cloned().unwrap_or_default();
                    prs.push(pr(&pr_url(s, p), "open"));
                    v["pull_requests"] = json!(prs);
                });
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        }
    });
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mutator.is_finished() || kills < 8 {
        let mut child = spawn(&env, "run");
        let alive = rand::rng().random_range(50..500);
        tokio::time::sleep(Duration::from_millis(alive)).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills += 1;
        assert!(Instant::now() < deadline, "test took too long");
    }

    // A last, undisturbed run delivers what is left, then stops on SIGTERM.
    let total = SESSIONS * PRS_PER_SESSION;
    let requests = env.api.request_count();
    let mut child = spawn(&env, "run");
    // Once it has polled, its signal handlers are in place.
    env.api
        .wait_for_requests(requests + 1, Duration::from_secs(20))
        .await;
    env.hook
        .wait_until(
            |recs| {
                let ids: std::collections::HashSet<&str> =
                    recs.iter().filter_map(|r| r.header("webhook-id")).collect();
                ids.len() >= total
            },
            Duration::from_secs(30),
        )
        .await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");

    // Every PR was announced under exactly one id; redeliveries repeat it byte for byte.
    let recs = env.hook.received();
    let mut by_id: HashMap<String, Vec<u8>> = HashMap::new();
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut id_of_pr: HashMap<String, String> = HashMap::new();
    for rec in &recs {
        webhooks::verify_received(SECRET, rec).unwrap_or_else(|e| panic!("signature: {e}"));
        let id = rec.header("webhook-id").expect("id").to_owned();
        let body = rec.json();
        let url = body["data"]["change"]["pr_url"]
            .as_str()
            .expect("pr_url")
            .to_owned();
        let session = body["data"]["session"]["session_id"]
            .as_str()
            .expect("session")
            .to_owned();
        if let Some(known) = id_of_pr.insert(url.clone(), id.clone()) {
            assert_eq!(known, id, "{url} was sent under two ids");
        }
        match by_id.get(&id) {
            Some(previous) => assert_eq!(previous, &rec.body, "redelivery of {id} changed"),
            None => {
                by_id.insert(id, rec.body.clone());
                first_seen.entry(session).or_default().push(url);
            }
        }
    }
    assert_eq!(by_id.len(), total, "every change delivered ({kills} kills)");
    for (session, urls) in &first_seen {
        let s: usize = session[1..].parse().expect("index");
        let expected: Vec<String> = (0..PRS_PER_SESSION).map(|p| pr_url(s, p)).collect();
        assert_eq!(urls, &expected, "{session}: in detection order");
    }
    eprintln!(
        "{kills} kills, {} requests for {total} deliveries",
        recs.len()
    );
}
