//! The `devin-notify` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devin_notify::app::{self, Active, AppError};
use devin_notify::config::DEFAULT_PATH;

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
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    devin_notify::de::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let active = match Active::load(&cli.config) {
        Ok(active) => active,
        Err(e) => return fail(&AppError::Config(e)),
    };
    app::init_logging(&active.config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&AppError::Setup(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run => app::run(active, app::shutdown_signal()).await,
            Command::Once { wait } => app::once(active, wait).await.map(|_| ()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &AppError) -> ExitCode {
    eprintln!("devin-notify: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}
