#![allow(dead_code)]
//! A test environment: a fake Devin API, two recording receivers (Slack and a webhook) and a
//! config file in a temporary directory that points at them, written as a user would write it.

use std::path::PathBuf;
use std::time::Duration;

use devin_notify::active::Active;
use devin_notify::app::{self, AppError, OnceReport};
use devin_notify::store::{Store, StoreError};

use crate::support::{FakeDevin, Receiver};

/// The signing secret of the `hook` sink (the Standard Webhooks test vector's).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The token the fake API accepts.
pub const TOKEN: &str = "cog_test_token";

/// How long [`Env::store_unlocked`] and [`Env::once_unlocked`] wait for sled's lock.
const UNLOCK_WAIT: Duration = Duration::from_secs(20);

/// The storage engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sled,
    /// The machine's PostgreSQL (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
    /// in a schema of the test's own, dropped afterwards.
    Postgres,
}

/// The PostgreSQL the tests use.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("t_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

/// Drops a test schema (from a thread of its own: callers may be inside a runtime or not).
pub fn drop_schema(schema: &str) {
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let url = database_url();
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to drop the test schema");
            tokio::spawn(connection);
            client
                .batch_execute(&sql)
                .await
                .expect("drop the test schema");
        })
    })
    .join();
    if dropped.is_err() {
        eprintln!("could not drop test schema {schema}");
    }
}

/// Drops a test's PostgreSQL schema when it goes, whatever the test's outcome.
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schema(&self.0);
    }
}

/// Now, in epoch seconds (the store's clock, [`devin_notify::store::now_ms`]).
pub fn now_secs() -> i64 {
    (devin_notify::store::now_ms() / 1000) as i64
}

/// Runs each named `async fn(Backend)` test twice: `on_sled::NAME` and `on_postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sled).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    /// The PostgreSQL schema of this test (dropped with the env).
    pub schema: Option<String>,
    pub api: FakeDevin,
    pub slack: Receiver,
    pub hook: Receiver,
    pub config_path: PathBuf,
    rules: String,
    extra: String,
    tweaks: Vec<(String, String)>,
}

impl Env {
    /// Starts the fake API and receivers and writes a config with these `[[rules]]`, on sled.
    pub async fn start(rules: &str) -> Env {
        Env::start_on(Backend::Sled, rules).await
    }

    /// As [`Env::start`], on the given storage engine.
    pub async fn start_on(backend: Backend, rules: &str) -> Env {
        let api = FakeDevin::start().await;
        api.set_token(TOKEN);
        let slack = Receiver::start().await;
        let hook = Receiver::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("devin-notify.toml");
        let env = Env {
            dir,
            backend,
            schema: (backend == Backend::Postgres).then(fresh_schema),
            api,
            slack,
            hook,
            config_path,
            rules: rules.to_owned(),
            extra: String::new(),
            tweaks: Vec::new(),
        };
        env.write();
        env
    }

    /// The config file's text.
    pub fn config_text(&self) -> String {
        let mut text = self.base_text();
        for (from, to) in &self.tweaks {
            text = text.replace(from.as_str(), to);
        }
        text
    }

    /// Replaces `from` with `to` in the config text (e.g. to add a key to a section) and
    /// rewrites the file.
    pub fn tweak(&mut self, from: &str, to: &str) {
        self.tweaks.push((from.to_owned(), to.to_owned()));
        self.write();
    }

    fn base_text(&self) -> String {
        format!(
            r#"
[devin]
base_url = "{api}"
token = "{TOKEN}"
poll_interval = "1s"
page_size = 2
timeout = "5s"

[store]
{store}

[delivery]
max_attempts = 3
initial_backoff = "50ms"
max_backoff = "200ms"
timeout = "2s"

[sinks.slack]
type = "slack"
url = "{slack}"
max_per_second = 200

[sinks.hook]
type = "webhook"
url = "{hook}"
secret = "{SECRET}"
headers = {{ "X-Team" = "payments" }}

{extra}

{rules}
"#,
            api = self.api.base_url(),
            store = self.store_keys(),
            slack = self.slack.url("/services/T000/B000/slacksecretpath"),
            hook = self.hook.url("/hooks/devin?token=hooksecretquery"),
            extra = self.extra,
            rules = self.rules,
        )
    }

    /// The keys of `[store]`, for this env's engine.
    fn store_keys(&self) -> String {
        match &self.schema {
            Some(schema) => format!(
                "backend = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\nlease = \"2s\"",
                database_url()
            ),
            None => format!("path = \"{}\"", self.dir.path().join("store").display()),
        }
    }

    fn write(&self) {
        std::fs::write(&self.config_path, self.config_text()).expect("write config");
    }

    /// Adds TOML sections (before the rules) and rewrites the file.
    pub fn set_extra(&mut self, extra: &str) {
        self.extra = extra.to_owned();
        self.write();
    }

    /// Replaces the rules and rewrites the file.
    pub fn set_rules(&mut self, rules: &str) {
        self.rules = rules.to_owned();
        self.write();
    }

    /// Loads the config as `run` and `once` do.
    pub fn active(&self) -> Active {
        Active::load(&self.config_path).unwrap_or_else(|e| panic!("config loads: {e}"))
    }

    /// `devin-notify once`, in process.
    pub async fn once(&self) -> Result<OnceReport, AppError> {
        app::once(self.active(), Duration::from_secs(5)).await
    }

    /// `devin-notify once --wait WAIT`, in process.
    pub async fn once_waiting(&self, wait: Duration) -> Result<OnceReport, AppError> {
        app::once(self.active(), wait).await
    }

    /// The configured store, opened in process with `server.history` applied, as `once`
    /// opens it. sled's background flusher may hold the directory's lock a moment after the
    /// last process or handle let it go: retried while the store reports it locked.
    pub async fn store_unlocked(&self) -> Store {
        let active = self.active();
        let deadline = std::time::Instant::now() + UNLOCK_WAIT;
        let store = loop {
            match Store::from_config(&active.config.store).await {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => break other.expect("open the store"),
            }
        };
        store.keep_history(active.config.server.history);
        store
    }

    /// `once`, again while a store this test opened may still hold sled's lock (see
    /// [`Env::store_unlocked`]).
    pub async fn once_unlocked(&self) -> OnceReport {
        let deadline = std::time::Instant::now() + UNLOCK_WAIT;
        loop {
            match self.once().await {
                Err(AppError::Store(StoreError::Locked { .. }))
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => return other.expect("once"),
            }
        }
    }

    /// Runs the binary with these arguments and this config; returns (exit code, stdout+stderr).
    pub async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        self.cli_with_env(args, &[]).await
    }

    /// As [`Env::cli`], with these environment variables set.
    pub async fn cli_with_env(
        &self,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_devin-notify"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .env_remove("DEVIN_API_KEY")
            .envs(vars.iter().copied())
            .stdin(std::process::Stdio::null());
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().expect("spawn devin-notify");
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.code(), text)
        })
        .await
        .expect("join")
    }
}

/// The real binary running `run`, with its log lines collected as they are written.
pub struct Service {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    /// Spawns `devin-notify run --config <env's config>`.
    pub fn start(env: &Env) -> Service {
        Service::start_config(&env.config_path)
    }

    /// Every log line so far.
    pub fn log(&self) -> String {
        self.lines.lock().expect("log lines").join("\n")
    }

    /// Waits until a log line contains `text` (at least `n` such lines); panics with the log.
    pub async fn wait_log(&self, text: &str, n: usize, within: Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            let log = self.log();
            if log.lines().filter(|l| l.contains(text)).count() >= n {
                return log;
            }
            assert!(
                start.elapsed() < within,
                "no log line with `{text}` within {within:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a signal (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, then waits for the exit; returns whether it exited 0, and the log.
    pub async fn stop(mut self) -> (bool, String) {
        self.signal("TERM");
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Let the reader thread drain the pipe.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status.success(), self.log())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A spawned process that is killed and reaped when dropped, so a failing test leaves no
/// service running behind it.
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            drop_schema(schema);
        }
    }
}

// Helpers for several `run` processes on one store (tests/suite/ha.rs).

impl Env {
    /// Writes a copy of this env's config file as `name` in its directory, with
    /// `[server] listen = "127.0.0.1:PORT"` added (same store keys, so the processes share the
    /// store), and returns its path. Each process needs a listen port of its own, hence a file
    /// of its own. The env's extra sections must not have a `[server]` of their own.
    pub fn served_config(&self, name: &str, port: u16) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "{}\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
            self.config_text()
        );
        std::fs::write(&path, text).expect("write served config");
        path
    }
}

impl Service {
    /// Spawns `devin-notify run --config <config>` (a config file other than the env's).
    pub fn start_config(config: &std::path::Path) -> Service {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_devin-notify"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("DEVIN_API_KEY")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn devin-notify run");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("log lines").push(line);
            }
        });
        Service { child, lines }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far, one element each.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lines").clone()
    }
}
