//! The commands: `once`, the admin commands, logging and shutdown signals. `run` is in
//! [`crate::service`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::active::Active;
use crate::admin::AdminOp;
use crate::config::{ConfigError, LogConfig, LogFormat};
use crate::delivery::{Deliverer, DrainReport};
use crate::devin::Client;
use crate::poller::{poll, PollError, PollStats};
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
pub(crate) struct Parts {
    pub client: Client,
    pub store: Store,
    pub http: reqwest::Client,
}

/// The API client of a configuration.
pub(crate) fn client_for(active: &Active) -> Result<Client, AppError> {
    let token = active
        .config
        .token()
        .map_err(|p| AppError::Setup(p.to_string()))?;
    Client::new(&active.config.devin, token)
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))
}

pub(crate) async fn parts(active: &Active) -> Result<Parts, AppError> {
    let client = client_for(active)?;
    let http = crate::sink::http_client()
        .map_err(|e| AppError::Setup(format!("cannot build the HTTP client: {e}")))?;
    let store = Store::from_config(&active.config.store).await?;
    store.keep_history(active.config.server.history);
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
    let parts = parts(&active).await?;
    // A shared store: this run leads while it polls and delivers, or does nothing.
    if !parts.store.shared() {
        return poll_and_drain(parts, active, wait).await;
    }
    let lease = crate::leader::lead_once(&active.config.store, &parts.store, timing(&active))
        .await
        .map_err(AppError::Setup)?;
    let result = tokio::select! {
        result = poll_and_drain(parts, active, wait) => result,
        // Sends in flight are dropped with the work: the next leader sends them, same ids.
        _ = lease.lost() => Err(AppError::Setup(
            "lost the leadership of the store during `once`: stopped sending; what is queued goes out with the next run".into(),
        )),
    };
    lease.release().await;
    result
}

/// `once`'s work: one poll, then the outbox drained.
async fn poll_and_drain(
    parts: Parts,
    active: Active,
    wait: Duration,
) -> Result<OnceReport, AppError> {
    let Parts {
        client,
        store,
        http,
    } = parts;
    let (_active_tx, active_rx) = watch::channel(Arc::new(active));
    let active = active_rx.borrow().clone();
    let wake = Arc::new(Notify::new());
    let polled = poll(&client, &store, &active, &wake).await;
    // Held deliveries whose rule is no longer muted go out with the rest.
    if let Err(e) = crate::quiet::release_and_wake(&store, &active, &wake).await {
        tracing::error!(error = %e, "cannot release held deliveries");
    }
    match &polled {
        Ok(stats) => log_poll(stats),
        Err(e) => tracing::error!(error = %e, "poll failed"),
    }
    // The account signals, each once (a 403 or a failure there leaves the sessions' work be).
    let mut schedule = crate::poller::account::Schedule::default();
    crate::poller::account::poll_due(&client, &store, &active, &wake, &mut schedule).await;
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

/// The timing of this configuration's leader election.
pub(crate) fn timing(active: &Active) -> crate::leader::Timing {
    crate::leader::Timing::new(active.config.store.lease, active.config.devin.poll_interval)
}

pub(crate) fn log_poll(stats: &PollStats) {
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

/// Runs an admin operation on the store the config names. When a running service holds the
/// (sled) store, the operation goes through its admin API (`/api/v1` on `[server] listen`,
/// with `server.admin_token` when one is set).
pub async fn admin(active: &Active, op: &AdminOp) -> Result<String, AppError> {
    let store = match where_to_run(active).await? {
        Place::Store(store) => store,
        Place::Api(addr, token) => {
            return crate::api::client::execute(addr, token, op)
                .await
                .map_err(AppError::Admin)
        }
    };
    store.keep_history(active.config.server.history);
    let result = crate::admin::execute(&store, active, op).await;
    // Make any change durable before the process exits.
    let flushed = store.flush().await;
    let text = result.map_err(|e| AppError::Admin(e.to_string()))?;
    flushed?;
    Ok(text)
}

/// Where an admin command runs: on the store the config names, or, while `run` holds that
/// (sled) store, through the running service's admin API.
enum Place<'a> {
    Store(Store),
    Api(std::net::SocketAddr, Option<&'a crate::secret::Secret>),
}

async fn where_to_run(active: &Active) -> Result<Place<'_>, AppError> {
    match Store::open_existing(&active.config.store).await {
        Ok(store) => Ok(Place::Store(store)),
        Err(StoreError::Locked { path }) => match active.config.server.listen {
            Some(listen) => Ok(Place::Api(
                crate::api::client::reach(listen),
                active.config.server.admin_token.as_ref(),
            )),
            None => Err(StoreError::Locked { path }.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// `preview --digest NAME`: the digest's payloads now, from the store the config names (read
/// only); while `run` holds a sled store, through its admin API.
pub async fn preview_digest(
    active: &Active,
    name: &str,
) -> Result<Vec<crate::admin::PreviewItem>, AppError> {
    let store = match where_to_run(active).await? {
        Place::Store(store) => store,
        Place::Api(addr, token) => {
            return crate::api::client::preview_digest(addr, token, name)
                .await
                .map_err(AppError::Admin)
        }
    };
    crate::admin::preview_digest(active, &store, name, crate::store::now_ms())
        .await
        .map_err(|e| AppError::Admin(e.to_string()))
}

/// `store import --sled PATH`: copies a sled store into the configured PostgreSQL store.
pub async fn import_store(active: &Active, sled: &std::path::Path) -> Result<String, AppError> {
    let config = &active.config.store;
    if config.backend != crate::config::StoreBackend::Postgres {
        return Err(AppError::Setup(
            "store import copies into the PostgreSQL store the config names: set [store] backend = \"postgres\", url and schema".into(),
        ));
    }
    let store = Store::from_config(config).await?;
    let copied = crate::store::import::import_sled(sled, &store).await?;
    Ok(format!(
        "imported {} from {} into schema {}",
        copied.summary(),
        sled.display(),
        config.schema
    ))
}
