//! The `devin-notify` command line: parses arguments and calls the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devin_notify::active::Active;
use devin_notify::admin::{self, AdminOp};
use devin_notify::app::{self, AppError};
use devin_notify::config::DEFAULT_PATH;
use devin_notify::demo;
use devin_notify::store::Outcome;

/// Notifications for Devin sessions: polls the Devin API and posts to Slack and signed webhooks.
#[derive(Parser)]
#[command(name = "devin-notify", version, about, long_about = None)]
struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = DEFAULT_PATH, value_name = "PATH")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: poll every devin.poll_interval and deliver, until SIGINT or SIGTERM.
    Run,
    /// One poll cycle, then drain the outbox, then exit (for cron and tests).
    ///
    /// Exit codes: 0 all delivered; 2 configuration; 3 the API could not be read;
    /// 4 deliveries still queued (their next attempt is later than --wait); 1 other.
    Once {
        /// Keep retrying deliveries whose next attempt is at most this far away.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// Validate the config, rules and templates (rendering each against sample events).
    ///
    /// Lists every problem with its key; exit 0 when clean, 1 otherwise.
    Check,
    /// Print the exact payload each of a rule's sinks would receive, sending nothing; or,
    /// with --digest, a digest as it would be sent now, from the store.
    Preview {
        /// The rule's name.
        #[arg(long, required_unless_present = "digest")]
        rule: Option<String>,
        /// A digest's name: its payloads for the period from the end of the last one sent to
        /// now (never sent: store.history_retention ago), from the store.
        #[arg(long, conflicts_with_all = ["rule", "event", "session", "previous"])]
        digest: Option<String>,
        /// One event type of the rule (default: each of them).
        #[arg(long, value_name = "TYPE")]
        event: Option<String>,
        /// The session now, as JSON (a session object, or a webhook body); default: a sample.
        #[arg(long, value_name = "FILE")]
        session: Option<PathBuf>,
        /// The session as the snapshot had it (absent: a session seen for the first time).
        #[arg(long, value_name = "FILE", requires = "session")]
        previous: Option<PathBuf>,
    },
    /// List, retry or purge the deliveries that failed for good.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Show sinks' state and queues, or resume a paused sink.
    #[command(subcommand)]
    Sinks(Sinks),
    /// The delivery log, newest first: time, event, session, sink, outcome, HTTP status,
    /// attempts, detection-to-outcome latency, error.
    Deliveries(DeliveriesArgs),
    /// The event log, newest first: each event detected and the rules and sinks it went to.
    Events {
        /// At most this many (the log keeps the last server.history).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move the store from one engine to another.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The configuration file: its JSON Schema, for editors.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A self-contained run against a simulated API and local sinks; no credentials needed.
    Demo {
        /// Stop after this long (default: until Ctrl-C).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Time between two changes of the simulated sessions.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        tick: Duration,
    },
}

#[derive(clap::Args)]
struct DeliveriesArgs {
    /// Only this sink's.
    #[arg(long)]
    sink: Option<String>,
    /// Only this outcome's: delivered, retry, dead or requeued.
    #[arg(long)]
    outcome: Option<Outcome>,
    /// Only this session's (its id).
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// At most this many (the log keeps the last server.history).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

impl DeliveriesArgs {
    fn query(self) -> admin::LogQuery {
        admin::LogQuery {
            sink: self.sink,
            outcome: self.outcome,
            session: self.session,
            limit: self.limit,
            before: None,
        }
    }
}

#[derive(Subcommand)]
enum DeadLetters {
    /// A table of dead letters: id, sink, event type, session, attempts, last error.
    List,
    /// Put dead letters back in the outbox, at their place in the order.
    Retry(Which),
    /// Delete dead letters.
    Purge(Which),
}

#[derive(clap::Args)]
struct Which {
    /// Delivery ids (msg_...) as `dead-letters list` prints them.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    ids: Vec<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

impl Which {
    fn selection(self) -> admin::Selection {
        if self.all {
            admin::Selection::All
        } else {
            admin::Selection::Ids(self.ids)
        }
    }
}

#[derive(Subcommand)]
enum Sinks {
    /// Each sink's type, queue depth, dead letters and state (active, or paused with why).
    List,
    /// Resume a paused sink: its queued deliveries go out again.
    Resume {
        /// The sink's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a sled store into the configured PostgreSQL store (an empty schema), so that
    /// switching engines announces nothing again. Stop `run` on the sled store first.
    Import {
        /// The sled store's directory (the `store.path` it was run with).
        #[arg(long, value_name = "PATH")]
        sled: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a JSON Schema (draft 2020-12) of the configuration file, for editors (taplo /
    /// Even Better TOML); needs no config file.
    ///
    /// `devin-notify config schema > devin-notify.schema.json`, then `#:schema
    /// ./devin-notify.schema.json` as the first line of the TOML file.
    Schema,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    devin_notify::de::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command {
        Command::Check => check(&config),
        Command::Preview {
            rule,
            event,
            session,
            previous,
            digest,
        } => preview(&config, rule, event, session, previous, digest),
        Command::DeadLetters(cmd) => admin_command(
            &config,
            match cmd {
                DeadLetters::List => AdminOp::DeadLetters,
                DeadLetters::Retry(which) => AdminOp::RetryDead(which.selection()),
                DeadLetters::Purge(which) => AdminOp::PurgeDead(which.selection()),
            },
        ),
        Command::Sinks(cmd) => admin_command(
            &config,
            match cmd {
                Sinks::List => AdminOp::Sinks,
                Sinks::Resume { name } => AdminOp::Resume(name),
            },
        ),
        Command::Deliveries(args) => admin_command(&config, AdminOp::Deliveries(args.query())),
        Command::Events { limit } => admin_command(&config, AdminOp::Events(limit)),
        Command::Store(StoreCommand::Import { sled }) => with_active(&config, |active| {
            block_on_result(async move {
                println!("{}", app::import_store(&active, &sled).await?);
                Ok(())
            })
        }),
        Command::Config(ConfigCommand::Schema) => {
            print(&format!("{:#}", devin_notify::config::schema()))
        }
        Command::Demo { duration, tick } => block_on(async move {
            let stop = app::Shutdown::install()?.or_after(duration);
            demo::run(tick, stop).await
        }),
        Command::Once { wait } => with_active(&config, |active| {
            app::init_logging(&active.config.log);
            block_on_result(async move { app::once(active, wait).await.map(|_| ()) })
        }),
        Command::Run => with_active(&config, |active| {
            app::init_logging(&active.config.log);
            block_on_result(async {
                let signals = app::Shutdown::install()?;
                devin_notify::service::run(active, Some(&config), signals.wait()).await
            })
        }),
    }
}

/// `check`: every problem with its key, then a summary; exit 1 when there are problems.
fn check(config: &Path) -> ExitCode {
    let report = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(admin::check(config)),
        Err(e) => return fail(&AppError::Setup(format!("cannot start the runtime: {e}"))),
    };
    for problem in &report.problems {
        println!("  - {problem}");
    }
    for line in &report.features {
        println!("{line}");
    }
    println!("{}", report.summary);
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints preview payloads, each under a line naming its sink.
/// `preview`: a digest's payloads, or a rule's (and whether it is muted now, with the summary
/// of its held deliveries).
fn preview(
    config: &Path,
    rule: Option<String>,
    event: Option<String>,
    session: Option<PathBuf>,
    previous: Option<PathBuf>,
    digest: Option<String>,
) -> ExitCode {
    with_active(config, |active| {
        if let Some(name) = digest {
            return block_on_result(async move {
                print_items(app::preview_digest(&active, &name).await?);
                Ok(())
            });
        }
        let rule = rule.unwrap_or_default();
        let admin_err = |e: admin::PreviewError| AppError::Admin(e.to_string());
        let items = admin::preview(
            &active,
            &rule,
            event.as_deref(),
            session.as_deref(),
            previous.as_deref(),
        )
        .map_err(admin_err)?;
        let (quiet, summaries) =
            admin::preview_quiet(&active, &rule, jiff::Timestamp::now()).map_err(admin_err)?;
        if let Some(line) = quiet {
            println!("{line}\n");
        }
        print_items(items.into_iter().chain(summaries).collect());
        Ok(())
    })
}

fn print_items(items: Vec<admin::PreviewItem>) {
    for item in items {
        println!(
            "── sink `{}` ({}), {} ──",
            item.sink, item.sink_type, item.event_type
        );
        println!("{}\n", item.body);
    }
}

/// Loads the active configuration and runs `work` on it.
fn with_active(config: &Path, work: impl FnOnce(Active) -> Result<(), AppError>) -> ExitCode {
    match Active::load(config)
        .map_err(AppError::Config)
        .and_then(work)
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Runs an admin operation on the store the config names (see [`app::admin`]).
fn admin_command(config: &Path, op: AdminOp) -> ExitCode {
    with_active(config, |active| {
        block_on_result(async move {
            let text = app::admin(&active, &op).await?;
            println!("{text}");
            Ok(())
        })
    })
}

/// Writes `text` and a newline to stdout; a closed stdout is an error, not a panic.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&AppError::Setup(format!("cannot write to stdout: {e}"))),
    }
}

fn block_on_result(
    work: impl std::future::Future<Output = Result<(), AppError>>,
) -> Result<(), AppError> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| AppError::Setup(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(work)
}

fn block_on(work: impl std::future::Future<Output = Result<(), AppError>>) -> ExitCode {
    match block_on_result(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &AppError) -> ExitCode {
    eprintln!("devin-notify: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}
