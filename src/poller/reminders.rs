//! Reminders: `session.waiting` events for sessions that have waited on a person longer than a
//! rule's `remind_after` (then every `repeat_every`).

use std::time::Duration;

use super::route::route_event;
use crate::active::Active;
use crate::diff::{reminder, reminders_due};
use crate::event::Event;
use crate::rules::Rule;
use crate::store::{Commit, Store, StoreError, Waiting};

/// Reminders due now for the sessions that wait on a person: one event per (session, rule)
/// whose `remind_after` (then `repeat_every`) has passed since the last one, routed to that
/// rule only. The waits live in the store, so reminders survive restarts. With `fire` false
/// (the baseline) the reminders due are recorded as sent, not sent: waits that began before
/// the first run are reminded about from their next `repeat_every` on.
pub async fn due_reminders(
    store: &Store,
    active: &Active,
    now: u64,
    fire: bool,
) -> Result<(Commit, usize), StoreError> {
    let mut commit = Commit::default();
    let mut fired = 0;
    let rules: Vec<&Rule> = active.config.rules.iter().filter(|r| r.reminds()).collect();
    if rules.is_empty() {
        return Ok((commit, 0));
    }
    for (session_id, mut wait) in store.waiting().await? {
        let mut changed = false;
        for rule in &rules {
            let Some(due) = due_for(&wait, rule, now) else {
                continue;
            };
            wait.sent.insert(rule.name.clone(), due);
            changed = true;
            if !fire {
                continue;
            }
            let Some(event) = reminder_event(store, &session_id, &wait, rule, now, due).await
            else {
                continue;
            };
            if route_reminder(active, &event, (&rule.name, due), now, &mut commit) {
                fired += 1;
            }
        }
        if changed {
            commit.waiting.push((session_id, Some(wait)));
        }
    }
    Ok((commit, fired))
}

/// The number of the reminder due now for a wait under a rule, when one is due that was not
/// sent.
fn due_for(wait: &Waiting, rule: &Rule, now: u64) -> Option<u32> {
    let after = rule.remind_after?;
    let since = u64::try_from(wait.since_ms).unwrap_or(0);
    let waited = Duration::from_millis(now.saturating_sub(since));
    let due = reminders_due(waited, after, rule.repeat_every);
    (due > wait.sent.get(&rule.name).copied().unwrap_or(0)).then_some(due)
}

/// The reminder event of a wait, from the session's snapshot (none when it is gone or
/// unreadable).
async fn reminder_event(
    store: &Store,
    session_id: &str,
    wait: &Waiting,
    rule: &Rule,
    now: u64,
    due: u32,
) -> Option<Event> {
    match store.snapshot(&wait.snapshot_key(session_id)).await {
        Ok(Some(session)) => Some(reminder(&session, &rule.name, wait.since_ms, now, due)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(session_id = %session_id, error = %e, "unreadable snapshot: no reminder");
            None
        }
    }
}

/// Routes a reminder (number `due` of `rule`); whether it was routed anywhere.
fn route_reminder(
    active: &Active,
    event: &Event,
    (rule, due): (&str, u32),
    now: u64,
    commit: &mut Commit,
) -> bool {
    // Queued, dead (unrenderable) or held (its rule is muted): routed all the same.
    let routed = |c: &Commit| c.deliveries.len() + c.dead.len() + c.held.len();
    let before = routed(commit);
    route_event(active, event, now, commit);
    if routed(commit) == before {
        return false;
    }
    crate::metrics::EVENTS.count(&[("type", event.kind.as_str())], 1.0);
    tracing::info!(session_id = %event.session.session_id, event_id = %event.id, rule, reminder = due, "reminder due");
    true
}
