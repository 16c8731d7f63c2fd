//! The real binary, spawned as an operator would run it.

mod harness;
mod support;

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::{Env, SECRET, TOKEN};
use serde_json::json;
use support::{session, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_devin-notify");

const RULES: &str = r#"
[[rules]]
name = "everything"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook", "slack"]
"#;

/// The secret parts of the harness config: none may appear in any output.
fn secrets() -> [&'static str; 4] {
    [TOKEN, "slacksecretpath", "hooksecretquery", &SECRET[6..]]
}

fn assert_no_secrets(output: &str) {
    for secret in secrets() {
        assert!(
            !output.contains(secret),
            "`{secret}` leaked into:\n{output}"
        );
    }
}

fn command(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--config")
        .arg(&env.config_path)
        .current_dir(env.dir.path())
        .env_remove("DEVIN_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a command to completion off the async runtime; returns (status, stdout + stderr).
async fn run_to_end(mut cmd: Command) -> (ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("spawn devin-notify");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status, text)
    })
    .await
    .expect("join")
}

/// Waits (polling) for a child to exit.
async fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "devin-notify did not exit within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_at_trace_level_logs_no_secret_even_on_failures() {
    let env = Env::start(RULES).await;
    env.api.upsert(session("s1"));
    let (status, out) = run_to_end({
        let mut c = command(&env, &["once"]);
        c.env("RUST_LOG", "trace");
        c
    })
    .await;
    assert!(status.success(), "baseline once failed:\n{out}");
    assert_no_secrets(&out);
    assert!(out.contains("poll done"), "{out}");

    // Failures on every path: a 500 then a 200 from Slack, a dropped connection then a 400 from
    // the webhook (dead letter), and the API refusing the token on the next run.
    env.slack.script(vec![Reply::Status(500, "oops".into())]);
    env.hook
        .script(vec![Reply::Close, Reply::Status(400, "bad payload".into())]);
    env.api.update("s1", |s| s["status"] = json!("exit"));
    let (status, out) = run_to_end({
        let mut c = command(&env, &["once"]);
        c.env("RUST_LOG", "trace");
        c
    })
    .await;
    assert!(status.success(), "once with retries failed:\n{out}");
    assert!(
        out.contains("HTTP 500") && out.contains("HTTP 400"),
        "{out}"
    );
    assert!(out.contains("dead letters"), "{out}");
    assert_no_secrets(&out);

    env.api.set_token("cog_other_token_entirely");
    let (status, out) = run_to_end({
        let mut c = command(&env, &["once"]);
        c.env("RUST_LOG", "trace");
        c
    })
    .await;
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("HTTP 401"), "{out}");
    assert_no_secrets(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_polls_delivers_and_stops_cleanly_on_sigterm() {
    let env = Env::start(RULES).await;
    env.api.upsert(session("s1"));
    let mut child = command(&env, &["run"]).spawn().expect("spawn run");
    // The baseline poll happens; then a change is delivered by the running service.
    env.api.wait_for_requests(1, Duration::from_secs(20)).await;
    env.api
        .update("s1", |s| s["status_detail"] = json!("waiting_for_user"));
    let got = env.hook.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["type"], "session.status_changed");
    env.slack.wait_for(1, Duration::from_secs(20)).await;

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(20)).await;
    let err = read_all(child.stderr.take().expect("stderr"));
    assert!(status.success(), "exit {status:?}:\n{err}");
    assert!(err.contains("stopped"), "{err}");
    assert_no_secrets(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_key_and_exit_2() {
    let mut env = Env::start(RULES).await;
    env.tweak("page_size = 2", "page_size = 2\npoll_intervall = \"5s\"");
    let (status, out) = run_to_end(command(&env, &["once"])).await;
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("devin.poll_intervall: unknown key"), "{out}");
    assert_no_secrets(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_help() {
    for args in [&["--help"][..], &["run", "--help"], &["once", "--help"]] {
        let out = Command::new(BIN).args(args).output().expect("spawn");
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}
