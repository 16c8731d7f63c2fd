//! Hot reload: on SIGHUP, or when the config file or a template changes (debounced), the new
//! configuration is validated in full and swapped in atomically; a broken one is rejected with
//! the messages `check` gives, and the old one keeps running. Queued deliveries keep the payload
//! they were rendered with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::active::Active;
use crate::config::ConfigError;
use crate::health::Health;
use crate::store::Store;

/// How often the files are looked at, and how long they must stay unchanged before a reload.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What the watched files look like: (path, length, modification time), sorted.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The fingerprint of the config file and of every template under `templates_dir`.
pub fn fingerprint(config: &Path, templates_dir: Option<&Path>) -> Fingerprint {
    let mut out = Vec::new();
    let mut add = |path: &Path| {
        if let Ok(meta) = std::fs::metadata(path) {
            out.push((path.to_owned(), meta.len(), meta.modified().ok()));
        }
    };
    add(config);
    if let Some(dir) = templates_dir {
        for kind in crate::render::SINK_KINDS {
            if let Ok(entries) = std::fs::read_dir(dir.join(kind)) {
                for entry in entries.flatten() {
                    add(&entry.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Loads and checks a new configuration for a running service: everything `check` checks,
/// plus what cannot change without a restart.
pub fn load_for_reload(path: &Path, current: &Active) -> Result<Active, ConfigError> {
    let next = Active::load(path)?;
    let mut problems = Vec::new();
    if let Err(p) = next.config.token() {
        problems.push(p);
    }
    let (was, now) = (&current.config.store, &next.config.store);
    let url = |s: &crate::config::StoreConfig| s.url.as_ref().map(|u| u.expose().to_owned());
    for (key, changed) in [
        ("store.backend", was.backend != now.backend),
        ("store.path", was.path != now.path),
        ("store.url", url(was) != url(now)),
        ("store.schema", was.schema != now.schema),
        ("store.lease", was.lease != now.lease),
    ] {
        if changed {
            problems.push(crate::config::Problem::new(
                key,
                "cannot change while running: restart the service",
            ));
        }
    }
    if next.config.server.listen != current.config.server.listen {
        problems.push(crate::config::Problem::new(
            "server.listen",
            "cannot change while running: restart the service",
        ));
    }
    if problems.is_empty() {
        Ok(next)
    } else {
        Err(ConfigError {
            path: path.to_owned(),
            problems,
        })
    }
}

/// Reloads now. On success the new configuration is published and paused sinks are resumed
/// (an admin who fixed a sink's URL reloads to resume it). Returns whether it was applied; the
/// outcome is recorded in `health`.
pub async fn reload(
    path: &Path,
    active: &watch::Sender<Arc<Active>>,
    store: &Store,
    health: &Health,
    why: &str,
) -> bool {
    let current = active.borrow().clone();
    match load_for_reload(path, &current) {
        Ok(next) => {
            let (sinks, rules) = (next.config.sinks.len(), next.config.rules.len());
            store.keep_history(next.config.server.history);
            active.send_replace(Arc::new(next));
            match store.paused_sinks().await {
                Ok(paused) => {
                    for (name, _) in paused {
                        if let Err(e) = store.resume_sink(&name).await {
                            tracing::error!(sink = %name, error = %e, "cannot resume the sink");
                        } else {
                            tracing::info!(sink = %name, "sink resumed by the reload");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read paused sinks"),
            }
            crate::features::try_again();
            crate::metrics::RELOADS.count(&[("outcome", "applied")], 1.0);
            health.reloaded(None);
            tracing::info!(trigger = why, sinks, rules, "configuration reloaded");
            true
        }
        Err(e) => {
            crate::metrics::RELOADS.count(&[("outcome", "rejected")], 1.0);
            let problems: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
            health.reloaded(Some(format!(
                "reload rejected ({why}): {}",
                problems.join("; ")
            )));
            for p in &e.problems {
                tracing::error!(trigger = why, problem = %p, "configuration reload rejected; the previous configuration keeps running");
            }
            false
        }
    }
}

/// Watches for SIGHUP and file changes until `shutdown` turns true.
pub async fn watch_and_reload(
    path: PathBuf,
    active: watch::Sender<Arc<Active>>,
    store: Store,
    wake: Arc<tokio::sync::Notify>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; file changes still reload");
            None
        }
    };
    let templates_dir = |a: &watch::Sender<Arc<Active>>| a.borrow().config.templates.dir.clone();
    let mut seen = fingerprint(&path, templates_dir(&active).as_deref());
    // A change is applied once the files have stayed the same for one more look (debounce).
    let mut pending: Option<Fingerprint> = None;
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = hangup => {
                if reload(&path, &active, &store, &health, "SIGHUP").await {
                    wake.notify_one();
                }
                seen = fingerprint(&path, templates_dir(&active).as_deref());
                pending = None;
            }
            _ = tokio::time::sleep(WATCH_EVERY) => {
                let now = fingerprint(&path, templates_dir(&active).as_deref());
                if now == seen {
                    pending = None;
                } else if pending.as_ref() == Some(&now) {
                    if reload(&path, &active, &store, &health, "file change").await {
                        wake.notify_one();
                    }
                    seen = fingerprint(&path, templates_dir(&active).as_deref());
                    pending = None;
                } else {
                    pending = Some(now);
                }
            }
        }
    }
}
