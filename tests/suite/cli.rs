//! The real binary, spawned as an operator would run it.

use crate::harness;
use crate::support;

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
    let mut child = harness::Reaped(command(&env, &["run"]).spawn().expect("spawn run"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_without_credentials_and_prints_notifications() {
    let mut cmd = Command::new(BIN);
    cmd.args(["demo", "--for", "7s", "--tick", "600ms"])
        .env_remove("DEVIN_API_KEY")
        .env_remove("RUST_LOG");
    let (status, out) = run_to_end(cmd).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("New Devin session"), "{out}");
    assert!(
        out.contains("Devin needs your input on Upgrade the web app to React 19"),
        "{out}"
    );
    assert!(out.contains("Pull request merged"), "{out}");
    // The same events as a Teams card and a Discord embed, as those channels show them.
    assert!(
        out.contains("Teams card      Devin needs your input") && out.contains("[ Open session ]"),
        "{out}"
    );
    assert!(
        out.contains("Discord         Fix the flaky checkout test"),
        "{out}"
    );
    assert!(
        out.contains("signature verified") && !out.contains("INVALID"),
        "{out}"
    );
    // Beyond sessions: the queue's alert, and a direct message to the session's creator.
    assert!(out.contains("🚨 Devin's queue is high"), "{out}");
    assert!(
        out.contains(
            "DM to @ana      ✋ Devin needs your input on Upgrade the web app to React 19"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_every_problem_and_passes_a_good_config() {
    let mut env = Env::start(RULES).await;
    let (status, out) = run_to_end(command(&env, &["check"])).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("OK"), "{out}");

    // Templates that fail to compile or to render valid JSON, an unknown sink, an unknown
    // template, a bad value: all reported at once.
    let dir = env.dir.path().join("templates");
    std::fs::create_dir_all(dir.join("slack")).expect("mkdir");
    std::fs::write(
        dir.join("slack/broken.hbs"),
        "{\n  \"text\": \"{{#if title}}\"\n}\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("slack/session.created.hbs"),
        "{\"text\": {{{title}}}}",
    )
    .expect("write");
    env.set_extra(&format!("[templates]\ndir = \"{}\"\n", dir.display()));
    env.set_rules(
        r#"
[[rules]]
name = "a"
events = ["session.created"]
sinks = ["slack", "pager"]
[[rules]]
name = "b"
events = ["session.status_changed"]
sinks = ["slack"]
template = "missing"
"#,
    );
    env.tweak("page_size = 2", "page_size = 0");
    let (status, out) = run_to_end(command(&env, &["check"])).await;
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("devin.page_size"), "{out}");
    assert!(
        out.contains("rules[0].sinks: unknown sink `pager`"),
        "{out}"
    );
    // The file is fixed, so the next problems show.
    env.tweak("page_size = 0", "page_size = 2");
    env.tweak("sinks = [\"slack\", \"pager\"]", "sinks = [\"slack\"]");
    let (status, out) = run_to_end(command(&env, &["check"])).await;
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("templates.dir: template `slack/broken`") && out.contains("broken.hbs line "),
        "{out}"
    );
    assert_no_secrets(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_render_failures_per_rule() {
    let mut env = Env::start(RULES).await;
    let dir = env.dir.path().join("templates");
    std::fs::create_dir_all(dir.join("slack")).expect("mkdir");
    std::fs::write(
        dir.join("slack/session.created.hbs"),
        "{\"text\": {{{title}}}}",
    )
    .expect("write");
    env.set_extra(&format!("[templates]\ndir = \"{}\"\n", dir.display()));
    env.set_rules(
        r#"
[[rules]]
name = "a"
events = ["session.created"]
sinks = ["slack"]
[[rules]]
name = "b"
events = ["session.status_changed"]
sinks = ["slack"]
template = "missing"
"#,
    );
    let (status, out) = run_to_end(command(&env, &["check"])).await;
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("rules[0]: for sink `slack` and a sample session.created event: template `slack/session.created` rendered invalid JSON"), "{out}");
    assert!(
        out.contains("rules[1].template: no template `slack/missing`"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_prints_each_sinks_payload_and_sends_nothing() {
    let env = Env::start(RULES).await;
    let (status, out) = run_to_end(command(
        &env,
        &[
            "preview",
            "--rule",
            "everything",
            "--event",
            "session.status_changed",
        ],
    ))
    .await;
    assert!(status.success(), "{out}");
    assert!(
        out.contains("── sink `hook` (webhook), session.status_changed ──"),
        "{out}"
    );
    assert!(
        out.contains("── sink `slack` (slack), session.status_changed ──"),
        "{out}"
    );
    assert!(
        out.contains("\"type\": \"session.status_changed\""),
        "{out}"
    );
    assert!(out.contains("Devin needs your input"), "{out}");

    // From session files: a PR that got merged.
    let mut before = session("s9");
    before["pull_requests"] = json!([support::pr("https://github.com/acme/api/pull/5", "open")]);
    let mut after = before.clone();
    after["pull_requests"][0]["pr_state"] = json!("merged");
    let (b, a) = (
        env.dir.path().join("before.json"),
        env.dir.path().join("after.json"),
    );
    std::fs::write(&b, before.to_string()).expect("write");
    std::fs::write(&a, after.to_string()).expect("write");
    let args = [
        "preview",
        "--rule",
        "everything",
        "--session",
        a.to_str().expect("utf8"),
        "--previous",
        b.to_str().expect("utf8"),
    ];
    let (status, out) = run_to_end(command(&env, &args)).await;
    assert!(status.success(), "{out}");
    assert!(
        out.contains("pull_request.state_changed") && out.contains("Pull request merged"),
        "{out}"
    );
    assert!(!out.contains("session.status_changed"), "{out}");

    let (status, out) = run_to_end(command(&env, &["preview", "--rule", "nope"])).await;
    assert_eq!(status.code(), Some(1));
    assert!(
        out.contains("no rule named `nope` (rules: everything)"),
        "{out}"
    );
    assert_eq!(
        env.hook.count() + env.slack.count() + env.api.request_count(),
        0,
        "preview sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_config_passes_check() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", "config/devin-notify.toml"])
        .current_dir(root)
        .env("DEVIN_API_KEY", "cog_example_token")
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/example",
        )
        .env("AUTOMATION_SECRET", SECRET);
    let (status, out) = run_to_end(cmd).await;
    assert!(status.success(), "{out}");
    assert!(
        out.contains("2 sink(s), 6 rule(s)") && out.contains("OK"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_starts_pass_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, sink) in [
        ("quickstart.toml", "slack"),
        ("quickstart-teams.toml", "teams"),
    ] {
        // Run from a scratch directory: the quick starts keep their store in ./data.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join(file);
        std::fs::copy(root.join("config").join(file), &config).expect("copy");
        let mut cmd = Command::new(BIN);
        cmd.arg("check")
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env("DEVIN_API_KEY", "cog_example_token")
            .env(
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/example",
            )
            .env(
                "TEAMS_WORKFLOW_URL",
                "https://prod-00.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=example",
            );
        let (status, out) = run_to_end(cmd).await;
        assert!(status.success(), "{file}: {out}");
        assert!(
            out.contains("1 sink(s), 4 rule(s)") && out.contains("OK"),
            "{file} ({sink}): {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let mut env = Env::start(RULES).await;
    env.set_extra("[log]\nformat = \"json\"\n");
    env.api.upsert(session("s1"));
    let (status, out) = run_to_end({
        let mut c = command(&env, &["once"]);
        c.env_remove("RUST_LOG");
        c
    })
    .await;
    assert!(status.success(), "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_high_availability_example_passes_check_and_changes_nothing() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", "config/ha.toml"])
        .current_dir(root)
        .env("DEVIN_API_KEY", "cog_example_token")
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/example",
        )
        .env("DATABASE_URL", harness::database_url())
        // A schema nobody uses: `check` reports it missing and does not create it.
        .env("DEVIN_NOTIFY_STORE__SCHEMA", harness::fresh_schema());
    let (status, out) = run_to_end(cmd).await;
    assert!(status.success(), "{out}");
    assert!(
        out.contains("1 sink(s), 3 rule(s)") && out.contains("not there yet") && out.contains("OK"),
        "{out}"
    );
}
