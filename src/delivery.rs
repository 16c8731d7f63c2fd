//! The delivery loop: sends what the outbox holds, in detection order per (sink, session).
//!
//! Only the oldest queued delivery of each (sink, session) lane may be in flight or due, so a
//! failing delivery holds back the later deliveries of that session to that sink, and nothing
//! else. A delivery leaves the outbox only when its receiver answered 2xx; transient failures
//! are retried with backoff (honouring `Retry-After`), permanent ones and those out of attempts
//! go to the dead letters.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::active::Active;
use crate::config::SinkConfig;
use crate::sink::{Failure, Sinks, Verdict};
use crate::store::{
    now_ms, Change, DeadLetter, Delivery, DeliveryLogEntry, Outcome, Settle, Store, StoreError,
};
use crate::{metrics, retry};

/// How many times a sink's concurrency the loop takes from the outbox ahead of sending.
pub const AHEAD: usize = 8;

/// Consecutive "endpoint gone" answers (404, 410, Slack `no_service`) that pause a sink.
pub const GONE_BEFORE_PAUSE: u32 = 3;

type Settled = (u64, Delivery, Verdict);

/// Counts of what a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Deliveries still queued at the end.
    pub pending: usize,
}

/// What a scan of the outbox found.
struct Scan {
    /// The earliest time (Unix ms) a waiting lane head becomes due.
    next_due_ms: Option<u64>,
}

/// The delivery engine. One per process.
pub struct Deliverer {
    store: Store,
    http: reqwest::Client,
    active: watch::Receiver<Arc<Active>>,
    /// The sinks of the active configuration, rebuilt when it changes.
    sinks: (Arc<Active>, Arc<Sinks>),
    /// Sends in flight: sequence number -> its lane (sink, session).
    in_flight: HashMap<u64, (String, String)>,
    /// When the outbox's index was last read again (shared stores; Unix ms).
    refreshed_ms: u64,
    /// Deliveries whose outcome could not be recorded, and when their lane is released (Unix
    /// ms): they stay queued and are sent again later, under the same id.
    held: Vec<(u64, u64)>,
    /// Sinks whose deliveries wait because the sink is not configured (warned once).
    unconfigured: HashSet<String>,
    /// Per sink: its semaphore and the concurrency it was made for (a reload may change it).
    semaphores: HashMap<String, (Arc<Semaphore>, usize)>,
    /// Per sink: the earliest time (Unix ms) the next send may start, for `max_per_second`.
    next_slot_ms: HashMap<String, Arc<std::sync::Mutex<u64>>>,
    /// Per sink: consecutive "endpoint gone" answers.
    gone: HashMap<String, u32>,
    /// When the dead letters were last counted for the gauge (Unix ms).
    dead_counted_ms: u64,
    /// The sends in flight: aborted when the deliverer is dropped (a process that stops
    /// leading stops sending at once).
    sends: JoinSet<()>,
    tx: mpsc::UnboundedSender<Settled>,
    rx: Option<mpsc::UnboundedReceiver<Settled>>,
    report: DrainReport,
}

impl Deliverer {
    /// A deliverer over the store's outbox, following the active configuration.
    pub fn new(
        store: Store,
        http: reqwest::Client,
        active: watch::Receiver<Arc<Active>>,
    ) -> Deliverer {
        let (tx, rx) = mpsc::unbounded_channel();
        let current = active.borrow().clone();
        let sinks = Arc::new(Sinks::new(&http, &current.config));
        Deliverer {
            store,
            http,
            active,
            sinks: (current, sinks),
            in_flight: HashMap::new(),
            unconfigured: HashSet::new(),
            refreshed_ms: now_ms(),
            held: Vec::new(),
            semaphores: HashMap::new(),
            next_slot_ms: HashMap::new(),
            gone: HashMap::new(),
            dead_counted_ms: 0,
            sends: JoinSet::new(),
            tx,
            rx: Some(rx),
            report: DrainReport::default(),
        }
    }

    /// Dispatches the lane heads that are due, up to [`AHEAD`] times each sink's concurrency;
    /// returns when the next waiting one is due.
    ///
    /// A lane (sink, session) sends one delivery at a time, oldest first. Deliveries not yet
    /// flushed to disk are not sent; nor are those of paused or unconfigured sinks (their queue
    /// is kept). The store's outbox index finds them without reading the backlog.
    async fn scan(&mut self) -> Result<Scan, StoreError> {
        let now = now_ms();
        let active = self.active.borrow().clone();
        for (seq, _) in self.held.iter().filter(|(_, at)| *at <= now) {
            self.store.release(*seq).await;
        }
        self.held.retain(|(_, at)| *at > now);
        let paused: HashSet<String> = self
            .store
            .paused_sinks()
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if self.store.shared()
            && now.saturating_sub(self.refreshed_ms) >= self.idle_wait().as_millis() as u64
        {
            // Other processes may have queued deliveries (an admin's retry): read the index again.
            self.refreshed_ms = now;
            self.store.refresh_queue().await?;
        }
        let sending: Vec<&str> = active
            .config
            .sinks
            .keys()
            .map(String::as_str)
            .filter(|s| !paused.contains(*s))
            .collect();
        for &name in &sending {
            let Some(sink) = active.config.sinks.get(name) else {
                continue;
            };
            // Up to AHEAD times the sink's concurrency are taken at once, so that a send starts
            // the moment another ends (the sink's semaphore still bounds those in flight).
            let busy = self.in_flight.values().filter(|(s, _)| s == name).count();
            let free = (sink.concurrency() * AHEAD).saturating_sub(busy);
            if free == 0 {
                continue;
            }
            for (seq, delivery) in self.store.claim_due(name, now, free).await? {
                self.dispatch(seq, delivery, &active, sink);
            }
        }
        let next_due_ms = self.store.next_due_ms(&sending).await?;
        metrics::OUTBOX_DEPTH.set(&[], self.store.outbox_len().await? as f64);
        metrics::PAUSED_SINKS.set(&[], paused.len() as f64);
        // Once a second at most: counting dead letters reads their whole tree, and the sinks
        // with queued deliveries are the index's lanes.
        if now.saturating_sub(self.dead_counted_ms) >= 1000 {
            self.dead_counted_ms = now;
            metrics::DEAD_LETTERS.set(&[], self.store.dead_len().await? as f64);
            self.warn_unconfigured(&active).await?;
        }
        Ok(Scan { next_due_ms })
    }

    /// Says once per sink that deliveries wait for a sink that is not configured.
    async fn warn_unconfigured(&mut self, active: &Active) -> Result<(), StoreError> {
        for sink in self.store.queued_sinks().await? {
            if !active.config.sinks.contains_key(&sink) && self.unconfigured.insert(sink.clone()) {
                tracing::error!(sink = %sink, "deliveries are queued for a sink that is not configured; they are kept until it is configured again (or purge them with `dead-letters`)");
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, seq: u64, delivery: Delivery, active: &Arc<Active>, sink: &SinkConfig) {
        let timeout = active.config.delivery.timeout;
        let concurrency = sink.concurrency();
        let (semaphore, _) = self
            .semaphores
            .entry(delivery.sink.clone())
            .and_modify(|(sem, n)| {
                if *n != concurrency {
                    *sem = Arc::new(Semaphore::new(concurrency));
                    *n = concurrency;
                }
            })
            .or_insert_with(|| (Arc::new(Semaphore::new(concurrency)), concurrency));
        let semaphore = semaphore.clone();
        let pacing = sink.max_per_second().map(|rate| {
            let slot = self
                .next_slot_ms
                .entry(delivery.sink.clone())
                .or_default()
                .clone();
            (slot, (1000.0 / rate).ceil() as u64)
        });
        let sinks = self.sinks_for(active);
        let store = self.store.clone();
        let tx = self.tx.clone();
        self.in_flight
            .insert(seq, (delivery.sink.clone(), delivery.session_id.clone()));
        self.sends.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            // Pace the sink: a send takes the next free slot once it holds a permit, so the
            // spacing holds whatever order the tasks run in.
            if let Some((slot, interval_ms)) = pacing {
                let start = {
                    let mut next = slot.lock().unwrap_or_else(|e| e.into_inner());
                    let start = (*next).max(now_ms());
                    *next = start + interval_ms;
                    start
                };
                let wait = start.saturating_sub(now_ms());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
            let verdict = sinks.send(&store, &delivery, timeout).await;
            // Released before the outcome is reported: once the deliverer is done, the store
            // must be free for the next process (sled admits one).
            drop(store);
            // The receiver lives as long as the deliverer; if it is gone, so is the process.
            let _ = tx.send((seq, delivery, verdict));
        });
    }

    /// The sinks of `active`, built once per configuration.
    fn sinks_for(&mut self, active: &Arc<Active>) -> Arc<Sinks> {
        if !Arc::ptr_eq(&self.sinks.0, active) {
            let sinks = Sinks::new(&self.http, &active.config);
            self.sinks = (active.clone(), Arc::new(sinks));
        }
        self.sinks.1.clone()
    }

    /// Records the outcomes of the sends that ended, all in one store write (with their
    /// delivery log entries): under a burst of outcomes the store's cost per write is shared.
    async fn settle(&mut self, outcomes: Vec<Settled>) -> Result<(), StoreError> {
        // A lane stays claimed in the outbox's index until its outcome is recorded. If the
        // store cannot record it, the lane is held a while, then released: the delivery is
        // still queued and goes out again, under the same id.
        // Forget the finished send tasks (their outcomes come through the channel).
        while self.sends.try_join_next().is_some() {}
        let mut batch = Vec::with_capacity(outcomes.len());
        let mut failed = None;
        for (seq, delivery, verdict) in outcomes {
            self.in_flight.remove(&seq);
            match self.record(seq, delivery, verdict).await {
                Ok(settle) => batch.push(settle),
                Err(e) => {
                    self.hold(seq);
                    failed.get_or_insert(e);
                }
            }
        }
        if let Err(e) = self.store.settle(&batch).await {
            batch.iter().for_each(|s| self.hold(s.seq));
            return Err(e);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Keeps a lane whose outcome could not be recorded for `delivery.initial_backoff`.
    fn hold(&mut self, seq: u64) {
        let hold = self.active.borrow().config.delivery.initial_backoff;
        self.held.push((seq, now_ms() + hold.as_millis() as u64));
    }

    /// How long the loop waits when nothing is due. On a shared store other processes (an
    /// admin's `dead-letters retry` or `sinks resume`) change the outbox without waking this
    /// one: it looks again every poll interval.
    fn idle_wait(&self) -> Duration {
        if self.store.shared() {
            self.active.borrow().config.devin.poll_interval
        } else {
            Duration::from_secs(3600)
        }
    }

    /// What one send's verdict does to the store: removed, rescheduled, or buried.
    async fn record(
        &mut self,
        seq: u64,
        delivery: Delivery,
        verdict: Verdict,
    ) -> Result<Settle, StoreError> {
        let span = tracing::info_span!("delivery", sink = %delivery.sink, session_id = %delivery.session_id, delivery_id = %delivery.id);
        self.record_in_span(seq, delivery, verdict)
            .instrument(span)
            .await
    }

    async fn record_in_span(
        &mut self,
        seq: u64,
        mut delivery: Delivery,
        verdict: Verdict,
    ) -> Result<Settle, StoreError> {
        delivery.attempts += 1;
        let failure = match verdict {
            Verdict::Delivered { status } => return Ok(self.delivered(seq, &delivery, status)),
            Verdict::GiveUp(failure) => {
                let reason = failure.message.clone();
                return Ok(self.bury(seq, delivery, failure, reason));
            }
            Verdict::Gone(failure) => {
                // The endpoint may be gone: the delivery is retried (it may come back), and the
                // sink is paused when it keeps saying so; its queue is kept until an admin
                // resumes it. The delivery's attempts still count.
                self.endpoint_gone(&delivery.sink, &failure).await?;
                failure
            }
            Verdict::Retry(failure) => failure,
        };
        let active = self.active.borrow().clone();
        let policy = &active.config.delivery;
        if delivery.attempts >= policy.max_attempts {
            let reason = format!(
                "gave up after {} attempts: {}",
                delivery.attempts, failure.message
            );
            return Ok(self.bury(seq, delivery, failure, reason));
        }
        let delay = retry::next_delay(
            delivery.attempts,
            policy.initial_backoff,
            policy.max_backoff,
            failure.retry_after,
            retry::jitter(),
        );
        tracing::warn!(attempts = delivery.attempts, retry_in_ms = delay.as_millis() as u64, error = %failure.message, "delivery failed; will retry");
        Ok(self.schedule_retry(seq, delivery, delay, failure))
    }

    /// A 2xx: the delivery leaves the outbox.
    fn delivered(&mut self, seq: u64, delivery: &Delivery, status: u16) -> Settle {
        self.gone.remove(&delivery.sink);
        let log = DeliveryLogEntry::new(delivery, Outcome::Delivered, Some(status), None);
        self.report.delivered += 1;
        let latency_ms = now_ms().saturating_sub(delivery.detected_at_ms);
        metrics::DELIVERIES.count(&[("sink", &delivery.sink), ("outcome", "delivered")], 1.0);
        metrics::DELIVERY_LATENCY.observe(&[("sink", &delivery.sink)], latency_ms as f64 / 1000.0);
        tracing::info!(status, attempts = delivery.attempts, event_type = %delivery.event_type, latency_ms, "delivered");
        Settle {
            seq,
            change: Change::Delivered,
            log,
        }
    }

    /// Counts an "endpoint gone" answer; pauses the sink at [`GONE_BEFORE_PAUSE`] in a row.
    async fn endpoint_gone(&mut self, sink: &str, failure: &Failure) -> Result<(), StoreError> {
        let count = self.gone.entry(sink.to_owned()).or_insert(0);
        *count += 1;
        if *count >= GONE_BEFORE_PAUSE {
            let reason = format!(
                "endpoint gone ({count} answers in a row): {}",
                failure.message
            );
            tracing::error!(error = %failure.message, "sink paused: its endpoint is gone; its queue is kept until `devin-notify sinks resume {sink}` or a config reload");
            self.store.pause_sink(sink, &reason).await?;
            self.gone.remove(sink);
        }
        Ok(())
    }

    /// Moves a delivery that failed for good to the dead letters.
    fn bury(
        &mut self,
        seq: u64,
        mut delivery: Delivery,
        failure: Failure,
        reason: String,
    ) -> Settle {
        metrics::DELIVERIES.count(&[("sink", &delivery.sink), ("outcome", "dead")], 1.0);
        tracing::error!(attempts = delivery.attempts, error = %failure.message, "delivery failed for good; moved to the dead letters");
        let log = DeliveryLogEntry::new(
            &delivery,
            Outcome::Dead,
            failure.status,
            Some(reason.as_str()),
        );
        delivery.last_error = Some(failure.message);
        self.report.dead += 1;
        let letter = DeadLetter {
            delivery,
            reason,
            status: failure.status,
            response_body: failure.body,
            failed_at_ms: now_ms(),
            event: None,
        };
        Settle {
            seq,
            change: Change::Dead(letter),
            log,
        }
    }

    /// Reschedules a delivery after a failed attempt.
    fn schedule_retry(
        &mut self,
        seq: u64,
        mut delivery: Delivery,
        delay: Duration,
        failure: Failure,
    ) -> Settle {
        let log = DeliveryLogEntry::new(
            &delivery,
            Outcome::Retry,
            failure.status,
            Some(failure.message.as_str()),
        );
        delivery.next_attempt_ms = now_ms() + delay.as_millis() as u64;
        delivery.last_error = Some(failure.message);
        self.report.retried += 1;
        metrics::DELIVERIES.count(&[("sink", &delivery.sink), ("outcome", "retry")], 1.0);
        Settle {
            seq,
            change: Change::Retry(delivery),
            log,
        }
    }

    /// Sends until every queued delivery is delivered or dead, or waits on a retry further than
    /// `wait` away. For `once`.
    pub async fn drain(mut self, wait: Duration) -> Result<DrainReport, StoreError> {
        let Some(mut rx) = self.rx.take() else {
            return Ok(self.report);
        };
        self.store.reset_queue().await;
        loop {
            let scan = self.scan().await?;
            if self.in_flight.is_empty() {
                let Some(due) = scan.next_due_ms else { break };
                let delay = Duration::from_millis(due.saturating_sub(now_ms()));
                if delay > wait {
                    break;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
            if let Some(outcome) = rx.recv().await {
                self.settle(with_queued(outcome, &mut rx)).await?;
            }
        }
        self.report.pending = self.store.outbox_len().await?;
        Ok(self.report)
    }

    /// Sends as deliveries are queued (`wake`) or fall due, until `shutdown` turns true; then
    /// waits up to `grace` for sends in flight.
    pub async fn run(
        mut self,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let Some(mut rx) = self.rx.take() else { return };
        self.store.reset_queue().await;
        loop {
            let next_due = match self.scan().await {
                Ok(scan) => scan.next_due_ms,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying in 5s");
                    Some(now_ms() + 5000)
                }
            };
            let sleep = next_due.map_or(self.idle_wait(), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            });
            tokio::select! {
                Some(outcome) = rx.recv() => {
                    self.settle_logged(with_queued(outcome, &mut rx)).await;
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => break,
            }
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while !self.in_flight.is_empty() {
            tokio::select! {
                Some(outcome) = rx.recv() => {
                    self.settle_logged(with_queued(outcome, &mut rx)).await
                }
                _ = &mut deadline => {
                    tracing::warn!(in_flight = self.in_flight.len(), "shutdown grace period over; unsent deliveries stay queued");
                    break;
                }
            }
        }
    }

    async fn settle_logged(&mut self, outcomes: Vec<Settled>) {
        if let Err(e) = self.settle(outcomes).await {
            tracing::error!(error = %e, "cannot record a delivery outcome; its lane is held for delivery.initial_backoff, then the delivery goes out again under the same id");
        }
    }
}

/// An outcome and those already waiting behind it.
fn with_queued(first: Settled, rx: &mut mpsc::UnboundedReceiver<Settled>) -> Vec<Settled> {
    let mut outcomes = vec![first];
    while let Ok(outcome) = rx.try_recv() {
        outcomes.push(outcome);
    }
    outcomes
}
