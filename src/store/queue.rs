//! The outbox's index: which queued delivery of each (sink, session) lane comes next, and when
//! it is due, kept in memory so that finding the next sends never reads the backlog.
//!
//! A lane sends one delivery at a time, oldest first. The index keeps each lane's queued
//! sequence numbers, and for each sink the heads of its lanes that are not being sent, ordered
//! by due time: taking the due heads of a sink costs what it takes, whatever the backlog. It is
//! built from the store once, then kept in step by every write of the outbox (commits, retries,
//! removals, burials, requeues). Pure: no I/O.

use std::collections::{BTreeSet, HashMap};

/// A lane: (sink, session id).
pub type Lane = (String, String);

/// One queued delivery as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub seq: u64,
    pub sink: String,
    pub session_id: String,
    /// Not before this time (Unix ms); 0: now.
    pub due_ms: u64,
}

#[derive(Debug, Default)]
pub struct QueueIndex {
    /// seq -> (its lane, when it is due).
    entries: HashMap<u64, (Lane, u64)>,
    /// Each lane's queued sequence numbers, oldest first.
    lanes: HashMap<Lane, BTreeSet<u64>>,
    /// Per sink: (due, seq) of the heads of its lanes that are not claimed.
    ready: HashMap<String, BTreeSet<(u64, u64)>>,
    /// The entry each lane has in `ready`.
    heads: HashMap<Lane, (u64, u64)>,
    /// Lanes whose head is being sent, with the delivery being sent.
    claimed: HashMap<Lane, u64>,
    /// The same claims by delivery: an outcome releases its lane even when its row is no longer
    /// in the index (another process removed it).
    claim_of: HashMap<u64, Lane>,
}

impl QueueIndex {
    /// The index of these queued rows.
    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> QueueIndex {
        let mut index = QueueIndex::default();
        for row in rows {
            index.add(row);
        }
        index
    }

    /// How many deliveries are queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sinks that have queued deliveries.
    pub fn sinks(&self) -> impl Iterator<Item = &str> {
        self.lanes.keys().map(|(sink, _)| sink.as_str())
    }

    /// Queues a delivery (a new one, or a dead letter back at its place).
    pub fn add(&mut self, row: Row) {
        let lane = (row.sink, row.session_id);
        if let Some((old_lane, _)) = self.entries.insert(row.seq, (lane.clone(), row.due_ms)) {
            if old_lane != lane {
                self.forget(row.seq, &old_lane);
            }
        }
        self.lanes.entry(lane.clone()).or_default().insert(row.seq);
        self.refresh(&lane);
    }

    /// Removes a delivery (delivered, buried, or gone) and releases its lane.
    pub fn remove(&mut self, seq: u64) {
        self.release(seq);
        if let Some((lane, _)) = self.entries.remove(&seq) {
            self.forget(seq, &lane);
        }
    }

    /// Sets when a delivery is due (after a failed attempt) and releases its lane.
    pub fn reschedule(&mut self, seq: u64, due_ms: u64) {
        if let Some((_, due)) = self.entries.get_mut(&seq) {
            *due = due_ms;
        }
        self.release(seq);
    }

    /// Takes up to `n` heads of `sink`'s lanes that are due at `now` and durable (`seq` below
    /// `durable_below`), oldest due first, and claims their lanes.
    pub fn claim_due(&mut self, sink: &str, now: u64, durable_below: u64, n: usize) -> Vec<u64> {
        let Some(ready) = self.ready.get(sink) else {
            return Vec::new();
        };
        let taken: Vec<u64> = ready
            .iter()
            .take_while(|(due, _)| *due <= now)
            .filter(|(_, seq)| *seq < durable_below)
            .take(n)
            .map(|(_, seq)| *seq)
            .collect();
        for seq in &taken {
            if let Some((lane, _)) = self.entries.get(seq) {
                let lane = lane.clone();
                self.claimed.insert(lane.clone(), *seq);
                self.claim_of.insert(*seq, lane.clone());
                self.refresh(&lane);
            }
        }
        taken
    }

    /// Releases the lane claimed for `seq`, if any, without changing the delivery (it was not
    /// sent, or its outcome could not be recorded).
    pub fn release(&mut self, seq: u64) {
        if let Some(lane) = self.claim_of.remove(&seq) {
            if self.claimed.get(&lane) == Some(&seq) {
                self.claimed.remove(&lane);
            }
            self.refresh(&lane);
        }
    }

    /// The earliest time a durable head of one of `sinks` falls due.
    pub fn next_due<'a>(
        &self,
        sinks: impl IntoIterator<Item = &'a str>,
        durable_below: u64,
    ) -> Option<u64> {
        sinks
            .into_iter()
            .filter_map(|sink| self.ready.get(sink))
            .filter_map(|ready| {
                ready
                    .iter()
                    .find(|(_, seq)| *seq < durable_below)
                    .map(|(due, _)| *due)
            })
            .min()
    }

    /// Keeps the claims of `self` in a freshly built index (when rows changed elsewhere): a
    /// lane being sent stays claimed until its outcome, even if its row is gone meanwhile.
    pub fn rebuilt(&self, rows: impl IntoIterator<Item = Row>) -> QueueIndex {
        let mut fresh = QueueIndex::from_rows(rows);
        fresh.claimed = self.claimed.clone();
        fresh.claim_of = self.claim_of.clone();
        for lane in self.claimed.keys() {
            fresh.refresh(lane);
        }
        fresh
    }

    /// Drops `seq` from its lane's set and updates the lane's head.
    fn forget(&mut self, seq: u64, lane: &Lane) {
        if let Some(seqs) = self.lanes.get_mut(lane) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.lanes.remove(lane);
            }
        }
        self.refresh(lane);
    }

    /// Puts the lane's head in `ready` (or takes it out when the lane is claimed or empty).
    fn refresh(&mut self, lane: &Lane) {
        if let Some(old) = self.heads.remove(lane) {
            if let Some(ready) = self.ready.get_mut(&lane.0) {
                ready.remove(&old);
                if ready.is_empty() {
                    self.ready.remove(&lane.0);
                }
            }
        }
        if self.claimed.contains_key(lane) {
            return;
        }
        let Some(head) = self.lanes.get(lane).and_then(|s| s.first().copied()) else {
            return;
        };
        let due = self.entries.get(&head).map_or(0, |(_, due)| *due);
        self.ready
            .entry(lane.0.clone())
            .or_default()
            .insert((due, head));
        self.heads.insert(lane.clone(), (due, head));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, sink: &str, session: &str, due_ms: u64) -> Row {
        Row {
            seq,
            sink: sink.into(),
            session_id: session.into(),
            due_ms,
        }
    }

    #[test]
    fn one_delivery_per_lane_oldest_first() {
        let mut q = QueueIndex::from_rows([
            row(1, "hook", "a", 0),
            row(2, "hook", "a", 0),
            row(3, "hook", "b", 0),
            row(4, "slack", "a", 0),
        ]);
        assert_eq!(q.len(), 4);
        assert_eq!(q.claim_due("hook", 10, u64::MAX, 10), [1, 3]);
        assert_eq!(
            q.claim_due("hook", 10, u64::MAX, 10),
            [0u64; 0],
            "lanes busy"
        );
        assert_eq!(q.claim_due("slack", 10, u64::MAX, 10), [4]);
        q.remove(1);
        assert_eq!(q.claim_due("hook", 10, u64::MAX, 10), [2], "a's next");
        q.remove(3);
        q.remove(2);
        q.remove(4);
        assert!(q.is_empty() && q.claim_due("hook", 10, u64::MAX, 10).is_empty());
    }

    #[test]
    fn retries_wait_for_their_time_and_hold_their_lane() {
        let mut q = QueueIndex::from_rows([row(1, "hook", "a", 0), row(2, "hook", "a", 0)]);
        assert_eq!(q.claim_due("hook", 100, u64::MAX, 5), [1]);
        q.reschedule(1, 500);
        assert!(
            q.claim_due("hook", 100, u64::MAX, 5).is_empty(),
            "2 waits behind 1"
        );
        assert_eq!(q.next_due(["hook"], u64::MAX), Some(500));
        assert_eq!(q.claim_due("hook", 500, u64::MAX, 5), [1]);
        q.release(1);
        assert_eq!(
            q.claim_due("hook", 500, u64::MAX, 5),
            [1],
            "released, due again"
        );
    }

    #[test]
    fn at_most_n_by_due_time_and_only_durable_rows() {
        let mut q = QueueIndex::from_rows([
            row(5, "hook", "a", 30),
            row(6, "hook", "b", 10),
            row(7, "hook", "c", 20),
            row(9, "hook", "d", 0),
        ]);
        assert_eq!(q.next_due(["hook"], 9), Some(10), "9 is not durable yet");
        assert_eq!(q.claim_due("hook", 25, 9, 1), [6]);
        assert_eq!(q.claim_due("hook", 25, 9, 5), [7]);
        assert_eq!(q.claim_due("hook", 25, u64::MAX, 5), [9]);
        assert_eq!(q.next_due(["hook", "other"], u64::MAX), Some(30));
    }

    #[test]
    fn a_requeued_dead_letter_goes_back_to_its_place() {
        let mut q = QueueIndex::from_rows([row(8, "hook", "a", 0)]);
        q.add(row(3, "hook", "a", 0));
        assert_eq!(
            q.claim_due("hook", 0, u64::MAX, 5),
            [3],
            "the older one first"
        );
    }

    #[test]
    fn a_rebuild_keeps_the_lanes_being_sent() {
        let mut q = QueueIndex::from_rows([row(1, "hook", "a", 0), row(2, "hook", "b", 0)]);
        assert_eq!(q.claim_due("hook", 0, u64::MAX, 1), [1]);
        let mut fresh = q.rebuilt([
            row(1, "hook", "a", 0),
            row(2, "hook", "b", 0),
            row(3, "hook", "c", 0),
        ]);
        assert_eq!(fresh.claim_due("hook", 0, u64::MAX, 5), [2, 3]);
        fresh.remove(1);
        assert!(fresh.claim_due("hook", 0, u64::MAX, 5).is_empty());
    }

    #[test]
    fn a_claim_whose_row_vanished_is_released_by_its_outcome() {
        let mut q = QueueIndex::from_rows([row(10, "hook", "a", 0), row(11, "hook", "a", 0)]);
        assert_eq!(q.claim_due("hook", 0, u64::MAX, 5), [10]);
        // Another process removed 10 while it was being sent.
        let mut q = q.rebuilt([row(11, "hook", "a", 0)]);
        assert!(
            q.claim_due("hook", 0, u64::MAX, 5).is_empty(),
            "a still sending"
        );
        q.remove(10);
        assert_eq!(
            q.claim_due("hook", 0, u64::MAX, 5),
            [11],
            "released by 10's outcome"
        );
        assert_eq!(q.next_due(["hook"], u64::MAX), None);
    }
}
