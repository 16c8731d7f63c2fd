//! The seam between the [`Store`](super::Store) and a storage engine: every operation the
//! poller, the delivery loop and the admin commands need, in the store's own types (no engine
//! type crosses it). An engine implements this trait and gets an arm in `Backend`; nothing above
//! the store changes.
//!
//! Contracts every engine keeps:
//! - [`Engine::commit`] writes all of a [`Commit`] or nothing, and gives its deliveries outbox
//!   sequence numbers above every earlier one (the outbox's order is detection order).
//! - Deliveries are not sendable until durable: [`Engine::durable_below`] holds back rows a
//!   crash could lose, until [`Engine::flush`].
//! - Outcomes of deliveries (removed, rescheduled, buried, requeued) and their delivery log
//!   entries are written at once; so are a commit and its log entries. Log entries get ids above
//!   every earlier one's.
//! - A record that cannot be decoded is reported with what it is, or set aside (an outbox row
//!   goes to a quarantine), never silently dropped in a way that loses a delivery.

use super::history::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Log};
use super::queue::Row;
use super::{
    Commit, DeadLetter, Delivery, Held, Paused, Settle, SlackThread, SnapshotKey, StoreError,
    Waiting,
};

pub(crate) trait Engine {
    // Snapshots and once-per-subject records ([`super::snapshots`]).

    /// The stored bytes of each session, in the order of `keys` (`None`: never seen).
    async fn snapshots(&self, keys: &[SnapshotKey]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// What is kept for each once-per-subject event id (`None`: never announced).
    async fn announced(&self, ids: &[&str]) -> Result<Vec<Option<String>>, StoreError>;
    /// The Devin message cached for an event: `None` never read, `Some(None)` none found.
    async fn cached_message(&self, event_id: &str) -> Result<Option<Option<String>>, StoreError>;
    async fn cache_message(
        &self,
        event_id: &str,
        message: &Option<String>,
    ) -> Result<(), StoreError>;
    /// Writes a page's changes at once (see the module's contracts).
    async fn commit(&self, commit: &Commit) -> Result<Vec<u64>, StoreError>;
    /// Makes what was written durable; the bytes written (0 for engines that cannot tell).
    async fn flush(&self) -> Result<usize, StoreError>;
    /// Outbox rows at or above this sequence number are not durable yet.
    fn durable_below(&self) -> u64;

    // Waits ([`super::waits`]).

    /// Every session that waits on a person.
    async fn waiting(&self) -> Result<Vec<(String, Waiting)>, StoreError>;

    // Outbox and dead letters ([`super::outbox`]).

    /// Every queued delivery, in detection order.
    async fn outbox(&self) -> Result<Vec<(u64, Delivery)>, StoreError>;
    async fn outbox_len(&self) -> Result<usize, StoreError>;
    /// What the outbox's index needs of every queued delivery (no payloads); unreadable rows
    /// are set aside.
    async fn outbox_rows(&self) -> Result<Vec<Row>, StoreError>;
    /// The queued deliveries with these numbers (`None`: no longer queued, or unreadable and
    /// set aside).
    async fn deliveries(&self, seqs: &[u64]) -> Result<Vec<Option<Delivery>>, StoreError>;
    /// Records outcomes of queued deliveries, each with its delivery log entry, in one
    /// transaction.
    async fn settle(&self, batch: &[Settle]) -> Result<(), StoreError>;
    /// Every dead letter, oldest first.
    async fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError>;
    async fn dead_len(&self) -> Result<usize, StoreError>;
    /// Moves a dead letter back to the outbox, at its sequence number, and appends `log`, at
    /// once.
    async fn requeue(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError>;
    async fn update_dead(&self, seq: u64, letter: &DeadLetter) -> Result<(), StoreError>;
    async fn purge_dead(&self, seq: u64) -> Result<(), StoreError>;

    // Held deliveries ([`super::held`]); a commit writes and releases them.

    /// Every held delivery, in detection order.
    async fn held(&self) -> Result<Vec<(u64, Held)>, StoreError>;

    // Marks, meta and paused sinks ([`super::meta`]).

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes one named value at once (caches; a page's values go with its commit).
    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;
    async fn pause_sink(&self, sink: &str, paused: &Paused) -> Result<(), StoreError>;
    /// Whether the sink was paused.
    async fn resume_sink(&self, sink: &str) -> Result<bool, StoreError>;
    async fn paused_sinks(&self) -> Result<Vec<(String, Paused)>, StoreError>;

    // Slack threads ([`super::threads`]).

    async fn slack_thread(
        &self,
        sink: &str,
        session_id: &str,
    ) -> Result<Option<SlackThread>, StoreError>;
    async fn set_slack_thread(
        &self,
        sink: &str,
        session_id: &str,
        thread: &SlackThread,
    ) -> Result<(), StoreError>;

    // The logs ([`super::history`]).

    /// The delivery log, newest first: among the newest `history` entries, up to
    /// `filter.limit` that match. An unreadable entry is skipped.
    async fn recent_deliveries(
        &self,
        filter: &DeliveryFilter,
        history: usize,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError>;
    /// The event log, newest first: among the newest `history` entries, up to `limit` older
    /// than `before_id`. An unreadable entry is skipped.
    async fn recent_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
        history: usize,
    ) -> Result<Vec<EventLogEntry>, StoreError>;
    /// Deletes all but the newest `keep` entries of a log.
    async fn trim_log(&self, log: Log, keep: usize) -> Result<(), StoreError>;

    // The activity history ([`super::activity`]).

    /// The records seen in `(start_ms, end_ms]`, oldest first; an unreadable one is skipped.
    async fn activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<crate::digest::Activity>, StoreError>;
    /// Deletes up to `limit` of the oldest records seen before `before_ms`; how many.
    async fn prune_activity(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;
}
