//! The `devin-notify` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devin_notify::active::Active;
use devin_notify::app::{self, AppError};
use devin_notify::config::DEFAULT_PATH;
use devin_notify::{admin, demo};

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
    /// Print the exact payload each of a rule's sinks would receive, sending nothing.
    Preview {
        /// The rule's name.
        #[arg(long)]
        rule: String,
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

fn parse_duration(text: &str) -> Result<Duration, String> {
    devin_notify::de::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check => {
            let report = admin::check(&cli.config);
            for problem in &report.problems {
                println!("  - {problem}");
            }
            println!("{}", report.summary);
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Preview {
            rule,
            event,
            session,
            previous,
        } => {
            let active = match Active::load(&cli.config) {
                Ok(active) => active,
                Err(e) => return fail(&AppError::Config(e)),
            };
            match admin::preview(
                &active,
                &rule,
                event.as_deref(),
                session.as_deref(),
                previous.as_deref(),
            ) {
                Ok(items) => {
                    for item in items {
                        println!(
                            "── sink `{}` ({}), {} ──",
                            item.sink, item.sink_type, item.event_type
                        );
                        println!("{}\n", item.body);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("devin-notify: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::DeadLetters(cmd) => admin_command(
            &cli.config,
            match cmd {
                DeadLetters::List => admin::AdminOp::DeadLetters,
                DeadLetters::Retry(which) => admin::AdminOp::RetryDead(which.selection()),
                DeadLetters::Purge(which) => admin::AdminOp::PurgeDead(which.selection()),
            },
        ),
        Command::Sinks(cmd) => admin_command(
            &cli.config,
            match cmd {
                Sinks::List => admin::AdminOp::Sinks,
                Sinks::Resume { name } => admin::AdminOp::Resume(name),
            },
        ),
        Command::Demo { duration, tick } => block_on(async move {
            let signals = app::Shutdown::install()?;
            let stop = async move {
                match duration {
                    Some(d) => {
                        tokio::select! {
                            _ = tokio::time::sleep(d) => {}
                            _ = signals.wait() => {}
                        }
                    }
                    None => signals.wait().await,
                }
            };
            demo::run(tick, stop).await
        }),
        Command::Run | Command::Once { .. } => {
            let active = match Active::load(&cli.config) {
                Ok(active) => active,
                Err(e) => return fail(&AppError::Config(e)),
            };
            app::init_logging(&active.config.log);
            block_on(async move {
                match cli.command {
                    Command::Once { wait } => app::once(active, wait).await.map(|_| ()),
                    _ => {
                        let signals = app::Shutdown::install()?;
                        app::run(active, Some(&cli.config), signals.wait()).await
                    }
                }
            })
        }
    }
}

/// Runs an admin operation on the store the config names; when a running service holds the
/// store, through its admin endpoints (`[server] listen` on a loopback address).
fn admin_command(config: &std::path::Path, op: admin::AdminOp) -> ExitCode {
    let active = match Active::load(config) {
        Ok(active) => active,
        Err(e) => return fail(&AppError::Config(e)),
    };
    let store = match devin_notify::store::Store::open(
        &active.config.store.path,
        active.config.store.cache_capacity,
    ) {
        Ok(store) => store,
        Err(devin_notify::store::StoreError::Locked { path }) => {
            let Some(addr) = active.config.server.listen.filter(|a| a.ip().is_loopback()) else {
                return fail(&AppError::Store(devin_notify::store::StoreError::Locked {
                    path,
                }));
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&AppError::Setup(format!("cannot start the runtime: {e}"))),
            };
            return match runtime.block_on(admin::execute_remote(addr, &op)) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("devin-notify: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(e) => return fail(&AppError::Store(e)),
    };
    let result = admin::execute(&store, &active, &op);
    // Make any change durable before the process exits.
    let flushed = store.flush_blocking();
    match (result, flushed) {
        (Ok(text), Ok(())) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            eprintln!("devin-notify: {e}");
            ExitCode::FAILURE
        }
        (Ok(_), Err(e)) => fail(&AppError::Store(e)),
    }
}

fn block_on(work: impl std::future::Future<Output = Result<(), AppError>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&AppError::Setup(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &AppError) -> ExitCode {
    eprintln!("devin-notify: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}
