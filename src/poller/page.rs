//! One page against the store: which sessions changed, the events they yield, the waits they
//! start or end, and the once-per-subject bookkeeping. Builds the page's [`Commit`]; writes
//! nothing itself.

use std::collections::HashMap;

use crate::config::Baseline;
use crate::diff::{acus_crossings, diff, is_waiting, pr_opened_id, pr_state_changed};
use crate::event::{Change, Event, EventType};
use crate::model::{Page, Session};
use crate::store::{now_ms, Commit, SnapshotKey, Store, StoreError, Waiting};

/// How a page is turned into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normal operation: every difference is an event.
    Diff,
    /// The first listing: record; with `Baseline::Notify`, announce sessions not yet recorded.
    Baseline(Baseline),
}

/// A session that changed: its snapshot before (`None`: first seen), and the events found.
struct Changed {
    old: Option<Session>,
    events: Vec<Event>,
}

/// Diffs one page against the store and builds what to commit. A session listed exactly as
/// its snapshot holds it is skipped without writing anything. The items' texts move into the
/// commit as snapshots (`page.raw` is left empty where they did).
pub async fn process_page(
    store: &Store,
    page: &mut Page,
    mode: Mode,
    acus_thresholds: &[f64],
) -> Result<(Commit, Vec<Event>), StoreError> {
    let mut commit = Commit::default();
    let changed = diff_page(store, page, mode, acus_thresholds, &mut commit).await?;
    let events = once_per_subject(store, &mut commit, changed).await?;
    Ok((commit, events))
}

/// Compares each listed session with its snapshot: records the new snapshots and waits in
/// `commit`, and returns the sessions that changed with their events.
async fn diff_page(
    store: &Store,
    page: &mut Page,
    mode: Mode,
    acus_thresholds: &[f64],
    commit: &mut Commit,
) -> Result<Vec<Changed>, StoreError> {
    let keys: Vec<SnapshotKey> = page.items.iter().map(SnapshotKey::of).collect();
    let silent = mode == Mode::Baseline(Baseline::Silent);
    // Nothing to compare with in a silent baseline: the sessions are recorded as they are.
    let stored = if silent {
        vec![None; keys.len()]
    } else {
        store.snapshots(&keys).await?
    };
    let mut changed = Vec::new();
    // A session listed twice in one page diffs against its first appearance.
    let mut pending: HashMap<SnapshotKey, usize> = HashMap::new();
    let at_ms = now_ms();
    for ((i, session), (key, stored)) in page
        .items
        .iter()
        .enumerate()
        .zip(keys.into_iter().zip(stored))
    {
        let new_bytes = item_bytes(&mut page.raw, i, session)?;
        if silent {
            track_wait(commit, None, session);
            push_snapshot(commit, &mut pending, key, new_bytes);
            continue;
        }
        let old_bytes = match pending.get(&key) {
            Some(&at) => Some(commit.snapshots[at].1.clone()),
            None => stored,
        };
        if old_bytes.as_deref() == Some(new_bytes.as_slice()) {
            continue;
        }
        let old: Option<Session> = match old_bytes.as_deref().map(serde_json::from_slice) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                // Replace an unreadable snapshot without inventing events from it.
                tracing::warn!(session_id = %session.session_id, error = %e, "unreadable snapshot replaced; no events for this change");
                push_snapshot(commit, &mut pending, key, new_bytes);
                continue;
            }
        };
        let events = session_events(mode, old.as_ref(), session, acus_thresholds);
        if mode == Mode::Diff {
            // The ACUs consumed since the snapshot, for digests (with the snapshot).
            commit
                .activity
                .extend(crate::digest::acus_activity(old.as_ref(), session, at_ms));
        }
        track_wait(commit, old.as_ref(), session);
        push_snapshot(commit, &mut pending, key, new_bytes);
        changed.push(Changed { old, events });
    }
    Ok(changed)
}

/// The snapshot of an item: its JSON text as the API sent it, taken from the page (re-encoded
/// when the page was built in code, or its text was taken already). Those bytes are their own
/// fingerprint: equal bytes, same session.
fn item_bytes(raw: &mut [String], i: usize, session: &Session) -> Result<Vec<u8>, StoreError> {
    match raw.get_mut(i) {
        Some(raw) if !raw.is_empty() => Ok(std::mem::take(raw).into_bytes()),
        _ => serde_json::to_vec(session).map_err(|e| StoreError::Corrupt {
            what: format!("sessions/{}", session.session_id),
            message: e.to_string(),
        }),
    }
}

/// The events of one changed session.
fn session_events(
    mode: Mode,
    old: Option<&Session>,
    session: &Session,
    acus_thresholds: &[f64],
) -> Vec<Event> {
    match mode {
        Mode::Diff => {
            let mut events = diff(old, session);
            events.extend(acus_crossings(old, session, acus_thresholds));
            events
        }
        Mode::Baseline(Baseline::Notify) if old.is_none() => diff(None, session),
        Mode::Baseline(_) => Vec::new(),
    }
}

/// Passes the events on, but those that happen once per subject and were detected before (e.g.
/// a pull request the API left out of one listing, now back). A pull request back in another
/// state than the last one known yields that change instead. Records what the store keeps: the
/// ids announced, and each pull request's last known state.
async fn once_per_subject(
    store: &Store,
    commit: &mut Commit,
    changed: Vec<Changed>,
) -> Result<Vec<Event>, StoreError> {
    let ids: Vec<&str> = changed
        .iter()
        .flat_map(|c| &c.events)
        .filter(|e| e.kind.once_per_subject())
        .map(|e| e.id.as_str())
        .collect();
    let stored: HashMap<String, Option<String>> = ids
        .iter()
        .map(|id| (*id).to_owned())
        .zip(store.announced(&ids).await?)
        .collect();
    let mut out = Vec::new();
    for Changed { old, events } in changed {
        for event in events {
            out.extend(once(commit, &stored, old.as_ref(), event));
        }
    }
    Ok(out)
}

/// One event through the once-per-subject check; `stored` holds what the store had for the
/// page's once-per-subject ids before this page.
fn once(
    commit: &mut Commit,
    stored: &HashMap<String, Option<String>>,
    old: Option<&Session>,
    event: Event,
) -> Option<Event> {
    let pr = match &event.change {
        Change::PullRequest {
            pr_url, pr_state, ..
        } => Some((pr_url.clone(), pr_state.clone())),
        _ => None,
    };
    let session = &event.session;
    if let (EventType::PullRequestStateChanged, Some((url, state))) = (event.kind, &pr) {
        let opened = pr_opened_id(&session.session_id, url);
        commit.announced.push((opened, state.clone()));
    }
    if !event.kind.once_per_subject() {
        return Some(event);
    }
    let known = match commit
        .announced
        .iter()
        .rev()
        .find(|(id, _)| *id == event.id)
    {
        Some((_, last)) => Some(last.clone()),
        None => stored.get(&event.id).cloned().flatten(),
    };
    let Some(last) = known else {
        let kept = pr.map(|(_, state)| state).unwrap_or_default();
        commit.announced.push((event.id.clone(), kept));
        return Some(event);
    };
    tracing::info!(session_id = %session.session_id, event_id = %event.id, event_type = %event.kind, "seen before: not announced again");
    let listed = pr.and_then(|(url, _)| session.pull_requests.iter().find(|p| p.pr_url == url));
    match listed {
        Some(listed) if !last.is_empty() && listed.pr_state != last => {
            commit
                .announced
                .push((event.id.clone(), listed.pr_state.clone()));
            Some(pr_state_changed(old, session, listed, &last))
        }
        _ => None,
    }
}

/// Records when a session starts waiting on a person (a new wait when the detail changes), and
/// forgets the wait when it moves on.
fn track_wait(commit: &mut Commit, old: Option<&Session>, new: &Session) {
    let was = old.filter(|o| is_waiting(o)).map(|o| &o.status_detail);
    if is_waiting(new) {
        if was != Some(&new.status_detail) {
            let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
            let began = new.updated_at.saturating_mul(1000);
            let since_ms = if began > 0 { began.min(now) } else { now };
            commit.waiting.push((
                new.session_id.clone(),
                Some(Waiting {
                    since_ms,
                    created_at: new.created_at,
                    status_detail: new.status_detail.clone(),
                    sent: Default::default(),
                }),
            ));
        }
    } else if was.is_some() {
        commit.waiting.push((new.session_id.clone(), None));
    }
}

fn push_snapshot(
    commit: &mut Commit,
    pending: &mut HashMap<SnapshotKey, usize>,
    key: SnapshotKey,
    bytes: Vec<u8>,
) {
    match pending.get(&key) {
        Some(&i) => commit.snapshots[i].1 = bytes,
        None => {
            pending.insert(key.clone(), commit.snapshots.len());
            commit.snapshots.push((key, bytes));
        }
    }
}
