//! Leadership among the `run` processes that share a PostgreSQL store: exactly one leads (polls
//! and delivers), the others stand by, ready to take over.
//!
//! A lease row with a fencing token (table `leader`), kept on a connection of its own:
//! - A standby takes the lease when it has expired (in the database's clock), adding one to the
//!   token. The leader renews it every `interval` (at most a third of `store.lease`).
//! - The leader steps down on its own, sending nothing more, when it could not renew for
//!   `lease` minus a margin (measured from the start of its last successful renewal, so always
//!   before the database lets a standby take over), when its election connection breaks, or
//!   when a renewal finds another holder. Stepping down aborts the sends in flight.
//! - Every commit of the leader checks its token under a share lock of the lease row
//!   ([`crate::store::postgres`]): a process that lost the leadership cannot write, and a
//!   takeover waits for a commit in progress.
//! - A leader that stops cleanly gives the lease up, so a standby takes over at once.
//!
//! Why a lease rather than an advisory lock: an advisory lock is released the moment the
//! server sees its connection close, before the old leader may have noticed; a lease expires
//! at a time both sides know in advance, so the old leader stops first, and `store.lease`
//! bounds a fail-over.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::StoreConfig;
use crate::store::postgres::{connect, place_of};
use crate::store::{Store, StoreError};

/// This process's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It polls and delivers, under this fencing token.
    Leader { token: u64 },
    /// Another process leads (or none does yet): it waits, serving health and metrics.
    Standby,
}

impl Role {
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    /// `leader` or `standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader { .. } => "leader",
            Role::Standby => "standby",
        }
    }
}

/// How this process identifies itself in the lease row: host, process id and a random part.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The timing of a campaign.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long the lease lasts after each renewal.
    pub lease: Duration,
    /// How often the leader renews and a standby looks.
    pub interval: Duration,
}

impl Timing {
    /// Renewals (and a standby's looks) every third of the lease, or every poll interval when
    /// that is shorter, so that a standby takes over within the lease plus one poll interval.
    pub fn new(lease: Duration, poll_interval: Duration) -> Timing {
        let interval = (lease / 3)
            .min(poll_interval)
            .max(Duration::from_millis(100));
        Timing { lease, interval }
    }

    /// How long before the lease expires the leader steps down.
    fn margin(&self) -> Duration {
        self.lease / 4
    }
}

/// Why a campaign on one connection ended.
enum Ended {
    Shutdown,
    /// The connection broke, or a query failed: reconnect.
    Connection(String),
}

/// Campaigns until `shutdown` turns true, publishing this process's role on `role` and fencing
/// the store's commits with the token held. Reconnects when the election connection breaks.
pub async fn campaign(
    config: StoreConfig,
    store: Store,
    timing: Timing,
    role: watch::Sender<Role>,
    mut shutdown: watch::Receiver<bool>,
) {
    let holder = holder_id();
    // Until elected, this process commits nothing.
    if let Some(pg) = store.postgres() {
        pg.fence(u64::MAX);
    }
    tracing::info!(holder = %holder, lease_ms = timing.lease.as_millis() as u64, "standing for leader");
    loop {
        let ended = match connect(&config).await {
            Ok((client, task)) => {
                let election = Election {
                    client,
                    holder: holder.clone(),
                    timing,
                    role: role.clone(),
                    store: store.clone(),
                };
                election.run(task, &mut shutdown, None).await
            }
            Err(e) => Ended::Connection(e.to_string()),
        };
        match ended {
            Ended::Shutdown => return,
            Ended::Connection(why) => {
                step_down(
                    &role,
                    &store,
                    &format!("the election connection failed: {why}"),
                );
                tokio::select! {
                    _ = tokio::time::sleep(timing.interval) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// Becomes a standby (when leading: logs it, fences the store, and the loops stop sending).
fn step_down(role: &watch::Sender<Role>, store: &Store, why: &str) {
    let was = *role.borrow();
    if let Some(pg) = store.postgres() {
        pg.fence(u64::MAX);
    }
    if was.is_leader() {
        tracing::error!(
            reason = why,
            "lost the leadership: this process stops sending now"
        );
        role.send_replace(Role::Standby);
        crate::metrics::LEADER.set(&[], 0.0);
    }
}

/// A campaign on one connection.
struct Election {
    client: tokio_postgres::Client,
    holder: String,
    timing: Timing,
    role: watch::Sender<Role>,
    store: Store,
}

impl Election {
    /// Campaigns on this connection; `deadline` is set when this process already leads (the
    /// instant it must have renewed by, or step down).
    async fn run(
        &self,
        mut connection: tokio::task::JoinHandle<()>,
        shutdown: &mut watch::Receiver<bool>,
        mut deadline: Option<Instant>,
    ) -> Ended {
        loop {
            let started = Instant::now();
            let current = *self.role.borrow();
            let attempt = async {
                match current {
                    Role::Leader { token } => self.renew(token).await,
                    Role::Standby => self.acquire().await,
                }
            };
            // A standby's look is bounded too: it may wait behind a commit's lock.
            let until = deadline.unwrap_or(started + self.timing.lease);
            let outcome = tokio::time::timeout_at(until, attempt).await.ok();
            match outcome {
                Some(Ok(Some(token))) => {
                    let valid_until = started + self.timing.lease - self.timing.margin();
                    if Instant::now() >= valid_until {
                        // Answered too late to count on: the lease may be about to expire.
                        deadline = None;
                        step_down(&self.role, &self.store, "the lease was granted too late");
                        continue;
                    }
                    deadline = Some(valid_until);
                    self.lead(token);
                }
                Some(Ok(None)) => {
                    deadline = None;
                    step_down(&self.role, &self.store, "another process holds the lease");
                }
                Some(Err(e)) => return Ended::Connection(e.to_string()),
                None => return Ended::Connection("no renewal within the lease".into()),
            }
            let next = Instant::now() + self.timing.interval;
            let wake = deadline.map_or(next, |d| d.min(next));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = &mut connection => return Ended::Connection("the connection closed".into()),
                _ = shutdown.changed() => {
                    self.release().await;
                    return Ended::Shutdown;
                }
            }
        }
    }

    /// Publishes the leadership under `token` (once per change).
    fn lead(&self, token: u64) {
        if let Some(pg) = self.store.postgres() {
            pg.fence(token);
        }
        if *self.role.borrow() != (Role::Leader { token }) {
            tracing::info!(holder = %self.holder, token, "became the leader: polling and delivering");
            self.role.send_replace(Role::Leader { token });
            crate::metrics::LEADER.set(&[], 1.0);
        }
    }

    /// Takes the lease when it has expired; the new token.
    async fn acquire(&self) -> Result<Option<u64>, tokio_postgres::Error> {
        let row = self
            .client
            .query_opt(
                "UPDATE leader SET holder = $1, token = token + 1, \
                 expires_at = clock_timestamp() + $2::float8 * interval '1 second' \
                 WHERE id = 1 AND (expires_at < clock_timestamp() OR holder = $1) RETURNING token",
                &[&self.holder, &self.timing.lease.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Extends the lease while this process holds it under `token`.
    async fn renew(&self, token: u64) -> Result<Option<u64>, tokio_postgres::Error> {
        let renewed = self
            .client
            .execute(
                "UPDATE leader SET expires_at = clock_timestamp() + $3::float8 * interval '1 second' \
                 WHERE id = 1 AND holder = $1 AND token = $2",
                &[
                    &self.holder,
                    &(token as i64),
                    &self.timing.lease.as_secs_f64(),
                ],
            )
            .await?;
        Ok((renewed == 1).then_some(token))
    }

    /// Gives the lease up on a clean stop, so that a standby takes over at once.
    async fn release(&self) {
        let Role::Leader { token } = *self.role.borrow() else {
            return;
        };
        let released = self
            .client
            .execute(
                "UPDATE leader SET expires_at = '-infinity' WHERE id = 1 AND holder = $1 AND token = $2",
                &[&self.holder, &(token as i64)],
            )
            .await;
        match released {
            Ok(_) => tracing::info!("gave up the leadership"),
            Err(e) => {
                tracing::warn!(error = %e, "could not give up the lease; it expires on its own")
            }
        }
    }
}

/// The lease a `once` run holds: renewed in the background until released.
pub struct OnceLease {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    role: watch::Receiver<Role>,
}

impl OnceLease {
    /// Resolves when the lease is lost (this run must stop sending).
    pub async fn lost(&self) {
        let mut role = self.role.clone();
        let _ = role.wait_for(|r| !r.is_leader()).await;
    }

    /// Gives the lease up.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Takes the lease for one `once` run when no process leads, and keeps it renewed until
/// [`OnceLease::release`]; or says why not.
pub async fn lead_once(
    config: &StoreConfig,
    store: &Store,
    timing: Timing,
) -> Result<OnceLease, String> {
    let place = place_of(config.url.as_ref().map(|u| u.expose()).unwrap_or_default());
    let failed = |e: tokio_postgres::Error| format!("{place}: {}", crate::redact::error_chain(&e));
    let (client, connection) = connect(config)
        .await
        .map_err(|e: StoreError| e.to_string())?;
    let (role, watching) = watch::channel(Role::Standby);
    let election = Election {
        client,
        holder: holder_id(),
        timing,
        role,
        store: store.clone(),
    };
    let started = Instant::now();
    let acquired = tokio::time::timeout(timing.lease, election.acquire())
        .await
        .map_err(|_| format!("{place}: no answer within the lease ({:?})", timing.lease))?;
    let Some(token) = acquired.map_err(failed)? else {
        let current = election
            .client
            .query_one(
                "SELECT holder, expires_at::text FROM leader WHERE id = 1",
                &[],
            )
            .await
            .map_err(failed)?;
        let (who, until): (String, String) = (current.get(0), current.get(1));
        return Err(format!(
            "another devin-notify process leads this store ({who}, lease until {until}); `once` does nothing while one does"
        ));
    };
    election.lead(token);
    let deadline = started + timing.lease - timing.margin();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        if let Ended::Connection(why) = election.run(connection, &mut stopped, Some(deadline)).await
        {
            step_down(&election.role, &election.store, &why);
        }
    });
    Ok(OnceLease {
        stop,
        task,
        role: watching,
    })
}
