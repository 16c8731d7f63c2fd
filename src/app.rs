//! The commands: loading a configuration, `once` and `run`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::config::{Config, ConfigError, LogConfig, LogFormat, Problem};
use crate::delivery::{Deliverer, DrainReport};
use crate::devin::Client;
use crate::poller::{poll, PollError, PollStats};
use crate::render::Templates;
use crate::sink::Sender;
use crate::store::{Store, StoreError};

/// A validated configuration with its compiled templates: what the service runs on.
#[derive(Debug)]
pub struct Active {
    pub config: Config,
    pub templates: Templates,
}

impl Active {
    /// Loads, validates and compiles everything `path` names; reports every problem found.
    pub fn load(path: &Path) -> Result<Active, ConfigError> {
        let config = Config::load(path)?;
        Self::from_config(config).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }

    /// Compiles the templates a validated config names and checks the rules against them.
    pub fn from_config(config: Config) -> Result<Active, Vec<Problem>> {
        let templates = Templates::load(config.templates.dir.as_deref())?;
        let problems = templates.check_rules(&config);
        if problems.is_empty() {
            Ok(Active { config, templates })
        } else {
            Err(problems)
        }
    }
}

/// A failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the Devin API could not be read: {0}")]
    Poll(#[from] PollError),
    #[error("{pending} deliveries are still queued (next attempts are later than --wait); they stay queued for the next run")]
    Pending { pending: usize },
}

impl AppError {
    /// The process exit code: 2 config, 3 API, 4 deliveries pending, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Config(_) => 2,
            AppError::Poll(_) => 3,
            AppError::Pending { .. } => 4,
            AppError::Setup(_) | AppError::Store(_) => 1,
        }
    }
}

/// Starts logging per `[log]`; `RUST_LOG` wins over `log.level`. Safe to call twice.
pub fn init_logging(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // The HTTP stack's debug and trace lines can carry hosts, paths and raw bytes: secrets live
    // in webhook URLs and headers, so those crates stop at info whatever the filter says.
    for quiet in [
        "reqwest=info",
        "hyper=info",
        "hyper_util=info",
        "h2=info",
        "rustls=info",
        "axum=info",
        "tower=info",
        "sled=info",
    ] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The pieces every polling command needs.
struct Parts {
    active: Arc<Active>,
    client: Client,
    store: Store,
    sender: Sender,
}

fn parts(active: Active) -> Result<Parts, AppError> {
    let token = active
        .config
        .token()
        .map_err(|p| AppError::Setup(p.to_string()))?;
    let client = Client::new(&active.config.devin, token)
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))?;
    let sender = Sender::new(active.config.delivery.timeout)
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))?;
    let store = Store::open(
        &active.config.store.path,
        active.config.store.cache_capacity,
    )?;
    Ok(Parts {
        active: Arc::new(active),
        client,
        store,
        sender,
    })
}

/// What `once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceReport {
    pub poll: PollStats,
    pub drain: DrainReport,
}

/// One poll cycle, then drain the outbox. Queued deliveries from earlier runs go out too. A
/// failed poll still drains what is queued, then reports the poll's error.
pub async fn once(active: Active, wait: Duration) -> Result<OnceReport, AppError> {
    let Parts {
        active,
        client,
        store,
        sender,
    } = parts(active)?;
    let wake = Arc::new(Notify::new());
    let polled = poll(&client, &store, &active, &wake).await;
    if let Ok(stats) = &polled {
        log_poll(stats);
    }
    let drain = Deliverer::new(store.clone(), sender, active.clone())
        .drain(wait)
        .await?;
    store.flush().await?;
    tracing::info!(
        delivered = drain.delivered,
        retried = drain.retried,
        dead = drain.dead,
        pending = drain.pending,
        "outbox drained"
    );
    let poll = polled?;
    if drain.pending > 0 {
        return Err(AppError::Pending {
            pending: drain.pending,
        });
    }
    Ok(OnceReport { poll, drain })
}

fn log_poll(stats: &PollStats) {
    tracing::info!(
        pages = stats.pages,
        sessions = stats.sessions,
        changed = stats.changed,
        events = stats.events,
        deliveries = stats.deliveries,
        baseline = stats.baseline,
        duration_ms = stats.duration.as_millis() as u64,
        "poll done"
    );
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The service: poll every `poll_interval`, deliver concurrently, stop cleanly on `stop`.
pub async fn run(
    active: Active,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AppError> {
    let Parts {
        active,
        client,
        store,
        sender,
    } = parts(active)?;
    let wake = Arc::new(Notify::new());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let grace = active.config.delivery.timeout + Duration::from_secs(1);
    // Deliveries left queued by an earlier process go out first.
    wake.notify_one();
    let deliverer = tokio::spawn(Deliverer::new(store.clone(), sender, active.clone()).run(
        wake.clone(),
        shutdown_rx.clone(),
        grace,
    ));
    let poller = {
        let (store, active, wake) = (store.clone(), active.clone(), wake.clone());
        let mut shutdown = shutdown_rx;
        tokio::spawn(async move {
            let interval = active.config.devin.poll_interval;
            let mut failures: u32 = 0;
            loop {
                let delay = match poll(&client, &store, &active, &wake).await {
                    Ok(stats) => {
                        failures = 0;
                        log_poll(&stats);
                        interval
                    }
                    Err(e) => {
                        failures += 1;
                        // Back off on repeated failures, honouring the API's Retry-After up to
                        // the backoff's ceiling (an absurd one must not silence the service).
                        let ceiling = interval.saturating_mul(10);
                        let backoff = crate::retry::backoff(
                            failures,
                            interval,
                            ceiling,
                            crate::retry::jitter(),
                        );
                        let delay = e
                            .retry_after()
                            .map_or(backoff, |ra| ra.clamp(interval, ceiling));
                        tracing::error!(error = %e, failures, retry_in_s = delay.as_secs(), "poll failed");
                        delay
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => break,
                }
            }
        })
    };
    tracing::info!(
        poll_interval_s = active.config.devin.poll_interval.as_secs(),
        sinks = active.config.sinks.len(),
        rules = active.config.rules.len(),
        queued = store.outbox_len(),
        "devin-notify running"
    );
    stop.await;
    tracing::info!("shutting down: finishing sends in flight");
    let _ = shutdown_tx.send(true);
    if let Err(e) = poller.await {
        tracing::error!(error = %e, "poller task failed");
    }
    if let Err(e) = deliverer.await {
        tracing::error!(error = %e, "delivery task failed");
    }
    store.flush().await?;
    tracing::info!("stopped");
    Ok(())
}
