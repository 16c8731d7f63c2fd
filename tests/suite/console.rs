//! The admin console (`/ui`) in a real headless Chromium (through chromedriver): sign in, see a
//! dead letter, click Retry and see it delivered at the receiver; read the delivery log and
//! filter it; preview a rule for a recent session picked from a list; see a sink paused by 410s, click Resume and see its queue go out. Everything the browser shows comes from the running
//! binary, and every effect is checked at the recording receiver.
//!
//! `CONSOLE_SCREENSHOT=path.png cargo test --test console` also saves what the browser
//! shows with the dead letter on screen (the README's picture of the console, docs/console.png,
//! is taken this way).

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{free_port, Env, Service};
use serde_json::json;
use support::webdriver::Browser;
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "adm_console_Zq7xV2pL9t";

const RULES: &str = r#"
[[rules]]
name = "finished-or-failed"
events = ["session.status_changed"]
sinks = ["hook"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_retries_a_dead_letter_and_resumes_a_paused_sink() {
    let mut env = Env::start(RULES).await;
    let port = free_port();
    env.set_extra(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"{ADMIN}\"\n"
    ));
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    env.tweak("max_attempts = 3", "max_attempts = 20");
    let base = format!("http://127.0.0.1:{port}");
    let mut sessions = vec![session("s1"), session("s2"), session("s3")];
    sessions[0]["title"] = json!("Fix the flaky checkout test");
    env.api.upsert_all(sessions);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;

    // A delivery the receiver refuses for good (400) becomes a dead letter.
    env.hook
        .set_default(Reply::Status(400, "no such channel".into()));
    env.api.update("s1", |s| s["status"] = json!("error"));

    let browser = Browser::start(1280, 1800).await;
    browser.goto(&format!("{base}/ui")).await;
    let token = browser.find("#token", WAIT).await;
    assert!(browser.url().await.ends_with("/ui/sign-in"));
    browser.type_text(&token, ADMIN).await;
    let sign_in = browser.button("form", "Sign in", WAIT).await;
    browser.click(&sign_in).await;
    let dead = browser
        .wait_for_text("#dead-table tbody", WAIT, |t| t.contains("s1"))
        .await;
    assert!(
        dead.contains("400") && dead.contains("no such channel"),
        "{dead}"
    );
    assert!(browser.url().await.ends_with("/ui"));
    if let Ok(path) = std::env::var("CONSOLE_SCREENSHOT") {
        std::fs::write(&path, browser.screenshot().await).expect("screenshot written");
    }

    // Retry: the receiver now accepts, and gets the delivery.
    env.hook.set_default(Reply::ok());
    let before = env.hook.count();
    let retry = browser.button("#dead-letters", "Retry", WAIT).await;
    browser.click(&retry).await;
    let got = env
        .hook
        .wait_until(|r| r.iter().skip(before).any(|r| r.was_accepted()), WAIT)
        .await;
    let delivered = got[before..]
        .iter()
        .find(|r| r.was_accepted())
        .map(|r| r.json())
        .expect("an accepted delivery");
    assert_eq!(delivered["data"]["session"]["session_id"], "s1");
    browser
        .wait_for_text("#dead-letters", WAIT, |t| t.contains("No dead letters."))
        .await;

    // The delivery log tells the story, newest first; the outcome filter narrows it.
    let log = browser
        .wait_for_text("#deliveries-table tbody", WAIT, |t| {
            t.contains("delivered") && t.contains("dead")
        })
        .await;
    assert!(log.contains("Fix the flaky checkout test (s1)"), "{log}");
    let newest = log.lines().next().unwrap_or_default().to_owned();
    assert!(newest.contains("delivered"), "newest first: {log}");
    let dead_only = browser
        .find("#deliveries-outcome option[value=dead]", WAIT)
        .await;
    browser.click(&dead_only).await;
    let filtered = browser
        .wait_for_text("#deliveries-table tbody", WAIT, |t| {
            !t.contains("delivered")
        })
        .await;
    assert!(
        filtered.contains("dead") && filtered.contains("400"),
        "{filtered}"
    );
    let events = browser
        .wait_for_text("#events-table tbody", WAIT, |t| {
            t.contains("session.status_changed")
        })
        .await;
    assert!(events.contains("hook (finished-or-failed)"), "{events}");

    // Preview a rule for a recent session, picked from the list: the payload carries it.
    let recent = browser.find("#preview-recent option[value=s1]", WAIT).await;
    browser.click(&recent).await;
    let preview = browser.button("#rules", "Preview", WAIT).await;
    browser.click(&preview).await;
    let shown = browser
        .wait_for_text("#preview-out-finished-or-failed", WAIT, |t| {
            t.contains("Fix the flaky checkout test")
        })
        .await;
    assert!(shown.contains("hook (webhook)"), "{shown}");
    assert!(shown.contains("\"session_id\": \"s1\""), "{shown}");

    // Three 410s pause the sink; the console shows it paused with its queue.
    env.hook.set_default(Reply::Status(410, "gone".into()));
    env.api.update("s2", |s| s["status"] = json!("exit"));
    env.api.update("s3", |s| s["status"] = json!("exit"));
    browser
        .wait_for_text("#sinks-table tbody", WAIT, |t| t.contains("paused"))
        .await;
    env.hook.set_default(Reply::ok());
    let before = env.hook.count();
    let resume = browser.button("#sinks", "Resume", WAIT).await;
    browser.click(&resume).await;
    let got = env
        .hook
        .wait_until(
            |r| r.iter().skip(before).filter(|r| r.was_accepted()).count() >= 2,
            WAIT,
        )
        .await;
    let mut resumed: Vec<String> = got[before..]
        .iter()
        .filter(|r| r.was_accepted())
        .filter_map(|r| {
            r.json()["data"]["session"]["session_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    resumed.sort();
    assert_eq!(resumed, ["s2", "s3"]);
    browser
        .wait_for_text("#sinks-table tbody", WAIT, |t| {
            t.contains("active") && !t.contains("paused")
        })
        .await;

    browser.quit().await;
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
    assert!(!log.contains(ADMIN), "the token was logged");
}
