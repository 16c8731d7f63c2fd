//! The commands: loading a configuration, `once` and `run`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::active::Active;
use crate::admin::AdminOp;
use crate::config::{ConfigError, LogConfig, LogFormat};
use crate::delivery::{Deliverer, DrainReport};
use crate::devin::Client;
use crate::poller::{poll, PollError, PollStats};
use crate::server::Health;
use crate::store::{Store, StoreError};

/// A failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{}", match .0 { PollError::Api(e) => format!("the Devin API could not be read: {e}"), PollError::Store(e) => format!("the poll could not be recorded: {e}") })]
    Poll(#[from] PollError),
    #[error("{0}")]
    Admin(String),
    #[error("{pending} deliveries are still queued (next attempts are later than --wait); they stay queued for the next run")]
    Pending { pending: usize },
}

impl AppError {
    /// The process exit code: 2 config, 3 API, 4 deliveries pending, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Config(_) => 2,
            AppError::Poll(PollError::Api(_)) => 3,
            AppError::Pending { .. } => 4,
            AppError::Setup(_)
            | AppError::Admin(_)
            | AppError::Store(_)
            | AppError::Poll(PollError::Store(_)) => 1,
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The pieces every polling command needs.
struct Parts {
    client: Client,
    store: Store,
    http: reqwest::Client,
}

fn client_for(active: &Active) -> Result<Client, AppError> {
    let token = active
        .config
        .token()
        .map_err(|p| AppError::Setup(p.to_string()))?;
    Client::new(&active.config.devin, token)
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))
}

fn parts(active: &Active) -> Result<Parts, AppError> {
    let client = client_for(active)?;
    let http = crate::sink::http_client()
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))?;
    let store = Store::open(
        &active.config.store.path,
        active.config.store.cache_capacity,
    )?;
    Ok(Parts {
        client,
        store,
        http,
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
        client,
        store,
        http,
    } = parts(&active)?;
    let (_active_tx, active_rx) = watch::channel(Arc::new(active));
    let active = active_rx.borrow().clone();
    let wake = Arc::new(Notify::new());
    let polled = poll(&client, &store, &active, &wake).await;
    match &polled {
        Ok(stats) => log_poll(stats),
        Err(e) => tracing::error!(error = %e, "poll failed"),
    }
    let drain = Deliverer::new(store.clone(), http, active_rx)
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
        incremental = stats.incremental,
        duration_ms = stats.duration.as_millis() as u64,
        "poll done"
    );
}

/// SIGINT and SIGTERM listeners, installed when created (so a signal that arrives while the
/// service starts is not lost to the default handler), awaited with [`Shutdown::wait`].
pub struct Shutdown {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the listeners. Call from within the runtime.
    pub fn install() -> Result<Shutdown, AppError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let err =
                |e: std::io::Error| AppError::Setup(format!("cannot listen for signals: {e}"));
            Ok(Shutdown {
                term: signal(SignalKind::terminate()).map_err(err)?,
                int: signal(SignalKind::interrupt()).map_err(err)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    /// Resolves when SIGINT or SIGTERM arrives, or after `limit` when one is given.
    pub async fn or_after(self, limit: Option<Duration>) {
        match limit {
            Some(limit) => {
                tokio::select! {
                    _ = tokio::time::sleep(limit) => {}
                    _ = self.wait() => {}
                }
            }
            None => self.wait().await,
        }
    }

    /// Resolves when SIGINT or SIGTERM arrives.
    pub async fn wait(self) {
        #[cfg(unix)]
        {
            let Shutdown { mut term, mut int } = self;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The service: poll every `poll_interval`, deliver concurrently, serve health and metrics,
/// reload on SIGHUP or file changes (when `config_path` is given), and stop cleanly when `stop`
/// resolves: stop polling, finish sends in flight within the delivery timeout, flush, return.
pub async fn run(
    active: Active,
    config_path: Option<&Path>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AppError> {
    let Parts {
        client,
        store,
        http,
    } = parts(&active)?;
    let (active_tx, active_rx) = watch::channel(Arc::new(active));
    let active = active_rx.borrow().clone();
    let wake = Arc::new(Notify::new());
    let health = Health::new();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    if let Some(listen) = active.config.server.listen {
        crate::server::start(
            listen,
            health.clone(),
            active_rx.clone(),
            store.clone(),
            wake.clone(),
        )
        .await
        .map_err(|e| AppError::Setup(format!("server.listen: cannot listen on {listen}: {e}")))?;
    }
    let grace = active.config.delivery.timeout + Duration::from_secs(1);
    // Deliveries left queued by an earlier process go out first.
    wake.notify_one();
    let deliverer = tokio::spawn(Deliverer::new(store.clone(), http, active_rx.clone()).run(
        wake.clone(),
        shutdown_rx.clone(),
        grace,
    ));
    let poller = tokio::spawn(poll_loop(
        client,
        store.clone(),
        active_rx,
        wake.clone(),
        health,
        shutdown_rx.clone(),
    ));
    let reloader = config_path.map(|path| {
        tokio::spawn(crate::reload::watch_and_reload(
            path.to_owned(),
            active_tx,
            store.clone(),
            wake.clone(),
            shutdown_rx,
        ))
    });
    let queued = store.outbox_len().await?;
    tracing::info!(
        poll_interval_ms = active.config.devin.poll_interval.as_millis() as u64,
        sinks = active.config.sinks.len(),
        rules = active.config.rules.len(),
        queued,
        "devin-notify running"
    );
    stop.await;
    tracing::info!("shutting down: finishing sends in flight");
    let _ = shutdown_tx.send(true);
    for (name, task) in [
        ("poller", Some(poller)),
        ("delivery", Some(deliverer)),
        ("reload", reloader),
    ] {
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, task = name, "task failed");
            }
        }
    }
    store.flush().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Polls every `poll_interval` of the active configuration, backing off on failures (honouring
/// the API's Retry-After), and rebuilding the API client when the configuration changes.
async fn poll_loop(
    mut client: Client,
    store: Store,
    active_rx: watch::Receiver<Arc<Active>>,
    wake: Arc<Notify>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut current = active_rx.borrow().clone();
    let mut failures: u32 = 0;
    loop {
        let latest = active_rx.borrow().clone();
        if !Arc::ptr_eq(&latest, &current) {
            match client_for(&latest) {
                Ok(c) => client = c,
                Err(e) => tracing::error!(error = %e, "keeping the previous API client"),
            }
            current = latest;
        }
        let interval = current.config.devin.poll_interval;
        let started = std::time::Instant::now();
        // A poll in progress is dropped on shutdown: each page's commit is atomic, so the next
        // run picks up where it stopped.
        let polled = tokio::select! {
            result = poll(&client, &store, &current, &wake) => result,
            _ = shutdown.changed() => break,
        };
        let delay = match polled {
            Ok(stats) => {
                failures = 0;
                health.poll_ok();
                log_poll(&stats);
                crate::metrics::POLLS.count(&[("outcome", "ok")], 1.0);
                crate::metrics::POLL_DURATION.observe(&[], stats.duration.as_secs_f64());
                interval.saturating_sub(started.elapsed())
            }
            Err(e) => {
                failures += 1;
                if matches!(e, PollError::Store(_)) {
                    health
                        .store_ok
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                }
                crate::metrics::POLLS.count(&[("outcome", "error")], 1.0);
                let backoff = crate::retry::backoff(
                    failures,
                    interval,
                    interval * 10,
                    crate::retry::jitter(),
                );
                // Honour the API's Retry-After up to the backoff's ceiling: an absurd one must
                // not silence the service.
                let delay = e.retry_after().map_or(backoff, |ra| {
                    ra.clamp(interval, interval.saturating_mul(10))
                });
                tracing::error!(error = %e, failures, retry_in_ms = delay.as_millis() as u64, "poll failed");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Runs an admin operation on the store the config names. When a running service holds the
/// (sled) store, the operation goes through its admin endpoints (`[server] listen` on a
/// loopback address).
pub async fn admin(active: &Active, op: &AdminOp) -> Result<String, AppError> {
    let store_config = &active.config.store;
    let store = match Store::open(&store_config.path, store_config.cache_capacity) {
        Ok(store) => store,
        Err(StoreError::Locked { path }) => {
            let listen = active.config.server.listen;
            let Some(addr) = listen.filter(|a| a.ip().is_loopback()) else {
                return Err(StoreError::Locked { path }.into());
            };
            return crate::admin::execute_remote(addr, op)
                .await
                .map_err(AppError::Admin);
        }
        Err(e) => return Err(e.into()),
    };
    let result = crate::admin::execute(&store, active, op).await;
    // Make any change durable before the process exits.
    let flushed = store.flush().await;
    let text = result.map_err(|e| AppError::Admin(e.to_string()))?;
    flushed?;
    Ok(text)
}
