//! What the service's loops report about themselves, for `/readyz` and the admin API's
//! status: the last poll and its outcome, the next one, the last error, the last reload.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::store::now_ms;

/// How a poll ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRecord {
    /// When it ended (Unix ms).
    pub at_ms: u64,
    /// Its error, when it failed.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub events: usize,
    pub deliveries: usize,
}

/// The last error a loop reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// When (Unix ms).
    pub at_ms: u64,
    /// What failed: `poll` or `reload`.
    pub what: &'static str,
    pub message: String,
}

/// The service's recent history, as [`Health::record`] returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// When the service started (Unix ms).
    pub started_at_ms: u64,
    pub last_poll: Option<PollRecord>,
    /// When the poll in progress started (Unix ms), if one is.
    pub polling_since_ms: Option<u64>,
    /// When the next poll starts (Unix ms), while none is in progress.
    pub next_poll_ms: Option<u64>,
    pub last_error: Option<ErrorRecord>,
    /// When the configuration was last reloaded (Unix ms).
    pub reloaded_at_ms: Option<u64>,
}

/// What readiness is judged on, updated by the service's loops.
#[derive(Debug, Default)]
pub struct Health {
    /// When the last poll succeeded (Unix ms; 0: never).
    pub last_poll_ok_ms: AtomicU64,
    /// Whether the last write to the store succeeded.
    pub store_ok: AtomicBool,
    record: Mutex<Record>,
}

impl Health {
    /// A fresh health record: no poll yet, store fine.
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            last_poll_ok_ms: AtomicU64::new(0),
            store_ok: AtomicBool::new(true),
            record: Mutex::new(Record {
                started_at_ms: now_ms(),
                ..Record::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the recent history.
    pub fn record(&self) -> Record {
        self.lock().clone()
    }

    /// A poll starts now.
    pub fn poll_started(&self) {
        let mut r = self.lock();
        r.polling_since_ms = Some(now_ms());
        r.next_poll_ms = None;
    }

    /// Records a successful poll.
    pub fn poll_ok(&self, duration: Duration, events: usize, deliveries: usize) {
        let now = now_ms();
        self.last_poll_ok_ms.store(now, Ordering::Relaxed);
        self.store_ok.store(true, Ordering::Relaxed);
        crate::metrics::LAST_SUCCESSFUL_POLL.set(&[], (now / 1000) as f64);
        let mut r = self.lock();
        r.polling_since_ms = None;
        r.last_poll = Some(PollRecord {
            at_ms: now,
            error: None,
            duration_ms: duration.as_millis() as u64,
            events,
            deliveries,
        });
    }

    /// Records a failed poll; `store` when the store failed.
    pub fn poll_failed(&self, message: String, duration: Duration, store: bool) {
        if store {
            self.store_ok.store(false, Ordering::Relaxed);
        }
        let now = now_ms();
        let mut r = self.lock();
        r.polling_since_ms = None;
        r.last_poll = Some(PollRecord {
            at_ms: now,
            error: Some(message.clone()),
            duration_ms: duration.as_millis() as u64,
            events: 0,
            deliveries: 0,
        });
        r.last_error = Some(ErrorRecord {
            at_ms: now,
            what: "poll",
            message,
        });
    }

    /// The next poll starts after `delay`.
    pub fn next_poll_in(&self, delay: Duration) {
        self.lock().next_poll_ms = Some(now_ms() + delay.as_millis() as u64);
    }

    /// This process stopped polling (it stands by, or stops).
    pub fn not_polling(&self) {
        let mut r = self.lock();
        r.polling_since_ms = None;
        r.next_poll_ms = None;
    }

    /// Records a reload: applied, or rejected with why.
    pub fn reloaded(&self, rejected: Option<String>) {
        let now = now_ms();
        let mut r = self.lock();
        match rejected {
            None => r.reloaded_at_ms = Some(now),
            Some(message) => {
                r.last_error = Some(ErrorRecord {
                    at_ms: now,
                    what: "reload",
                    message,
                })
            }
        }
    }

    /// Why the service is not ready, if it is not: the last poll must have succeeded within
    /// three poll intervals, and the store must be writable.
    pub fn unready(&self, poll_interval: Duration) -> Option<String> {
        if !self.store_ok.load(Ordering::Relaxed) {
            return Some("the store failed its last write".into());
        }
        let last = self.last_poll_ok_ms.load(Ordering::Relaxed);
        if last == 0 {
            return Some("no poll has succeeded yet".into());
        }
        let age = Duration::from_millis(now_ms().saturating_sub(last));
        (age > poll_interval * 3)
            .then(|| format!("the last successful poll was {}s ago", age.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_and_reloads_are_recorded() {
        let h = Health::new();
        assert_eq!(
            h.unready(Duration::from_secs(1)).as_deref(),
            Some("no poll has succeeded yet")
        );
        h.poll_started();
        assert!(h.record().polling_since_ms.is_some());
        h.poll_failed("HTTP 503".into(), Duration::from_millis(5), false);
        h.next_poll_in(Duration::from_secs(10));
        let r = h.record();
        assert_eq!(
            r.last_poll.and_then(|p| p.error).as_deref(),
            Some("HTTP 503")
        );
        assert_eq!(r.last_error.map(|e| e.what), Some("poll"));
        assert!(r.next_poll_ms.is_some() && r.polling_since_ms.is_none());
        h.poll_ok(Duration::from_millis(7), 2, 3);
        assert_eq!(h.unready(Duration::from_secs(1)), None);
        h.reloaded(None);
        h.reloaded(Some("rules[0].sinks: unknown sink".into()));
        let r = h.record();
        assert!(r.reloaded_at_ms.is_some());
        assert_eq!(r.last_error.map(|e| e.what), Some("reload"));
        assert_eq!(r.last_poll.map(|p| p.deliveries), Some(3));
    }
}
