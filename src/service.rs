//! `run`, the service: health, metrics, the admin console and API, hot reload, and, while this
//! process leads, the poll loop and the delivery loop.
//!
//! On sled the process always leads. On PostgreSQL it stands for leader ([`crate::leader`]):
//! the loops start when it becomes the leader and are aborted the moment it steps down (sends in
//! flight included: they may be resent by the next leader, under the same `webhook-id`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::active::Active;
use crate::app::{client_for, log_poll, parts, timing, AppError, Parts};
use crate::delivery::Deliverer;
use crate::devin::Client;
use crate::health::Health;
use crate::leader::Role;
use crate::poller::account::{poll_due, sleep_for, Schedule};
use crate::poller::{poll, PollError};
use crate::store::Store;

/// The service: serve health and metrics, reload on SIGHUP or file changes (when
/// `config_path` is given), poll and deliver while leading, and stop cleanly when `stop`
/// resolves: stop polling, finish sends in flight within the delivery timeout, give up the
/// leadership, return.
pub async fn run(
    active: Active,
    config_path: Option<&Path>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AppError> {
    let Parts {
        client,
        store,
        http,
    } = parts(&active).await?;
    let (active_tx, active_rx) = watch::channel(Arc::new(active));
    let active = active_rx.borrow().clone();
    let wake = Arc::new(Notify::new());
    let health = Health::new();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (role_tx, role_rx) = watch::channel(Role::Standby);
    if let Some(listen) = active.config.server.listen {
        crate::server::start(
            listen,
            health.clone(),
            active_rx.clone(),
            store.clone(),
            wake.clone(),
            role_rx.clone(),
        )
        .await
        .map_err(|e| AppError::Setup(format!("server.listen: cannot listen on {listen}: {e}")))?;
    }
    // The campaign stops last: the lease is given up only once the loops have stopped sending.
    let (resign_tx, resign_rx) = watch::channel(false);
    let election = stand(&active, &store, role_tx, resign_rx);
    let reloader = config_path.map(|path| {
        tokio::spawn(crate::reload::watch_and_reload(
            path.to_owned(),
            active_tx,
            store.clone(),
            wake.clone(),
            health.clone(),
            shutdown_rx.clone(),
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
    let loops = Loops {
        client,
        store: store.clone(),
        http,
        active: active_rx,
        wake,
        health,
    };
    let leading = tokio::spawn(loops.lead(role_rx, shutdown_rx));
    stop.await;
    tracing::info!("shutting down: finishing sends in flight");
    let _ = shutdown_tx.send(true);
    for (name, task) in [("leading", Some(leading)), ("reload", reloader)] {
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, task = name, "task failed");
            }
        }
    }
    let _ = resign_tx.send(true);
    if let Some(task) = election {
        if let Err(e) = task.await {
            tracing::error!(error = %e, task = "election", "task failed");
        }
    }
    store.flush().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Stands for leader on a shared store (the campaign's task); on sled, leads at once.
fn stand(
    active: &Active,
    store: &Store,
    role: watch::Sender<Role>,
    shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if !store.shared() {
        role.send_replace(Role::Leader { token: 0 });
        crate::metrics::LEADER.set(&[], 1.0);
        // The sender stays alive as long as the service: the role never changes.
        tokio::spawn(async move {
            let mut shutdown = shutdown;
            let _ = shutdown.changed().await;
            drop(role);
        });
        return None;
    }
    crate::metrics::LEADER.set(&[], 0.0);
    Some(tokio::spawn(crate::leader::campaign(
        active.config.store.clone(),
        store.clone(),
        timing(active),
        role,
        shutdown,
    )))
}

/// What the leader runs.
struct Loops {
    client: Client,
    store: Store,
    http: reqwest::Client,
    active: watch::Receiver<Arc<Active>>,
    wake: Arc<Notify>,
    health: Arc<Health>,
}

impl Loops {
    /// Runs the poll and delivery loops whenever this process leads, until `shutdown`.
    async fn lead(self, mut role: watch::Receiver<Role>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                led = role.wait_for(|r| r.is_leader()) => if led.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let grace = self.active.borrow().config.delivery.timeout + Duration::from_secs(1);
            // Deliveries left queued by an earlier process (or leader) go out first.
            self.wake.notify_one();
            let deliverer = tokio::spawn(
                Deliverer::new(self.store.clone(), self.http.clone(), self.active.clone()).run(
                    self.wake.clone(),
                    stop_rx.clone(),
                    grace,
                ),
            );
            // A reload while standing by may have changed the API's settings.
            let client = client_for(&self.active.borrow().clone()).unwrap_or_else(|e| {
                tracing::error!(error = %e, "keeping the previous API client");
                self.client.clone()
            });
            // Held deliveries are released when their rule's mute ends; checked after each poll.
            let recheck = Arc::new(Notify::new());
            let holder = tokio::spawn(crate::quiet::hold_loop(
                self.store.clone(),
                self.active.clone(),
                self.wake.clone(),
                recheck.clone(),
                stop_rx.clone(),
            ));
            let signals = tokio::spawn(signals_loop(
                client.clone(),
                self.store.clone(),
                self.active.clone(),
                self.wake.clone(),
                stop_rx.clone(),
            ));
            let poller = tokio::spawn(poll_loop(
                client,
                self.store.clone(),
                self.active.clone(),
                (self.wake.clone(), recheck),
                self.health.clone(),
                stop_rx,
            ));
            let lost = tokio::select! {
                lost = role.wait_for(|r| !r.is_leader()) => lost.is_ok(),
                _ = shutdown.wait_for(|stop| *stop) => false,
            };
            if lost {
                // Stop sending now: the next leader may start once the lease expires.
                poller.abort();
                holder.abort();
                signals.abort();
                deliverer.abort();
            } else {
                let _ = stop_tx.send(true);
            }
            for task in [poller, holder, signals, deliverer] {
                if let Err(e) = task.await {
                    if !e.is_cancelled() {
                        tracing::error!(error = %e, "a leader's loop failed");
                    }
                }
            }
            self.health.not_polling();
            if !lost {
                return;
            }
        }
    }
}

/// Reads the account signals (queue, daily consumption) each at its own `every`, beside the
/// poll loop and independent of it: a failure or a 403 there never holds sessions back.
async fn signals_loop(
    mut client: Client,
    store: Store,
    mut active_rx: watch::Receiver<Arc<Active>>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut current = active_rx.borrow().clone();
    let mut schedule = Schedule::default();
    let mut reloadable = true;
    loop {
        let latest = active_rx.borrow().clone();
        if !Arc::ptr_eq(&latest, &current) {
            if let Ok(c) = client_for(&latest) {
                client = c;
            }
            current = latest;
            schedule = Schedule::default();
        }
        let round = poll_due(&client, &store, &current, &wake, &mut schedule);
        let next = tokio::select! {
            (_, next) = round => next,
            _ = shutdown.changed() => break,
        };
        // A reload reads at once what it configured (or turned back on after a 403). Without
        // a sender (nothing reloads), only the timer wakes it.
        tokio::select! {
            _ = tokio::time::sleep(sleep_for(next)) => {}
            changed = active_rx.changed(), if reloadable => reloadable = changed.is_ok(),
            _ = shutdown.changed() => break,
        }
    }
}

/// Polls every `poll_interval` of the active configuration, backing off on failures (honouring
/// the API's Retry-After), and rebuilding the API client when the configuration changes.
/// `wakes`: the delivery loop's, and the release loop's (notified after each poll).
async fn poll_loop(
    mut client: Client,
    store: Store,
    active_rx: watch::Receiver<Arc<Active>>,
    (wake, recheck): (Arc<Notify>, Arc<Notify>),
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
        health.poll_started();
        // A poll in progress is dropped on shutdown: each page's commit is atomic, so the next
        // run picks up where it stopped.
        let polled = tokio::select! {
            result = poll(&client, &store, &current, &wake) => result,
            _ = shutdown.changed() => break,
        };
        let delay = match polled {
            Ok(stats) => {
                failures = 0;
                health.poll_ok(stats.duration, stats.events, stats.deliveries);
                log_poll(&stats);
                crate::metrics::POLLS.count(&[("outcome", "ok")], 1.0);
                crate::metrics::POLL_DURATION.observe(&[], stats.duration.as_secs_f64());
                interval.saturating_sub(started.elapsed())
            }
            Err(e) => {
                failures += 1;
                let store_failed = matches!(e, PollError::Store(_));
                health.poll_failed(e.to_string(), started.elapsed(), store_failed);
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
        recheck.notify_one();
        health.next_poll_in(delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
    }
}
