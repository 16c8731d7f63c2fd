//! Sample events, one per event type, for `check` and `preview`. Pure.

use serde_json::json;

use crate::diff::diff;
use crate::event::{Event, EventType};
use crate::model::{PullRequest, Session};

/// A realistic session, as the API would list it.
pub fn session() -> Session {
    let mut s = Session::new("devin-0123456789abcdef", "running");
    s.org_id = "org-example".into();
    s.status_detail = Some("working".into());
    s.title = Some("Fix the flaky checkout test & add a <retry>".into());
    s.url = "https://app.devin.ai/sessions/0123456789abcdef".into();
    s.tags = vec!["team-payments".into(), "flaky-tests".into()];
    s.acus_consumed = 4.25;
    s.created_at = 1_764_320_000;
    s.updated_at = 1_764_320_600;
    s.origin = Some("slack".into());
    s.category = Some("bug_fixing".into());
    s.user_id = Some("user-42".into());
    s.structured_output = Some(json!({"summary": "sample"}));
    s.pull_requests = vec![PullRequest {
        pr_url: "https://github.com/acme/checkout/pull/17".into(),
        pr_state: "open".into(),
    }];
    s
}

/// A sample event of the given type, built through the real diff.
pub fn event(kind: EventType) -> Event {
    event_on(kind, &session())
}

/// An event of the given type for a real session: `base` as it is now, then the sample change
/// of that type applied to it (its status to waiting for input, a pull request opened or
/// merged, its ACUs over a threshold), so a preview shows the session's own title, tags, links
/// and people with a change that could happen next.
pub fn event_on(kind: EventType, base: &Session) -> Event {
    let mut before = base.clone();
    if kind == EventType::SessionStatusChanged
        && before.status_detail.as_deref() == Some("waiting_for_user")
    {
        before.status = "running".into();
        before.status_detail = Some("working".into());
    }
    if kind == EventType::PullRequestStateChanged {
        if before.pull_requests.is_empty() {
            before.pull_requests.push(sample_pr(17));
        }
        before.pull_requests[0].pr_state = "open".into();
    }
    let mut after = before.clone();
    after.updated_at = after.updated_at.saturating_add(60);
    match kind {
        EventType::SessionCreated => {
            after.pull_requests.clear();
            return first(diff(None, &after), kind, base);
        }
        EventType::SessionStatusChanged => {
            after.status = "running".into();
            after.status_detail = Some("waiting_for_user".into());
        }
        EventType::SessionArchived => {
            after.status = "exit".into();
            after.status_detail = None;
            after.is_archived = Some(true);
            before.is_archived = Some(false);
        }
        EventType::PullRequestOpened => {
            let n = 18 + after.pull_requests.len();
            after.pull_requests.push(sample_pr(n));
        }
        EventType::PullRequestStateChanged => after.pull_requests[0].pr_state = "merged".into(),
        EventType::SessionWaiting => {
            after.status = "running".into();
            after.status_detail = Some("waiting_for_user".into());
            return crate::diff::reminder(
                &after,
                "sample-rule",
                after
                    .updated_at
                    .saturating_mul(1000)
                    .saturating_sub(1_200_000),
                after.updated_at.max(0).saturating_mul(1000) as u64,
                1,
            );
        }
        EventType::QueueStatusChanged | EventType::ConsumptionDailyExceeded => {
            return account_event(kind, after.updated_at, base);
        }
        EventType::SessionAcusExceeded => {
            let threshold = (before.acus_consumed.max(0.0) / 50.0).floor() * 50.0 + 50.0;
            after.acus_consumed = threshold + 2.5;
            return first(
                crate::diff::acus_crossings(Some(&before), &after, &[threshold]),
                kind,
                base,
            );
        }
    }
    first(diff(Some(&before), &after), kind, base)
}

/// A sample account signal (Devin's queue, the daily consumption) observed at `at` (Unix s).
fn account_event(kind: EventType, at: i64, base: &Session) -> Event {
    match kind {
        EventType::QueueStatusChanged => {
            let now = crate::model::QueueInfo {
                queue_size: 14,
                status: "high".into(),
            };
            crate::diff::queue_change(Some("normal"), &now, at.saturating_mul(1000))
                .expect("a changed status is an event (tested)")
        }
        EventType::ConsumptionDailyExceeded => {
            let products = json!({"devin": 480.0, "cascade": 40.5, "terminal": 2.0});
            let day = crate::model::DayConsumption {
                date: "2025-11-28".into(),
                acus: 522.5,
                acus_by_product: products.as_object().cloned().unwrap_or_default(),
            };
            let answer = crate::model::DailyConsumption {
                consumption_by_date: vec![day],
                total_acus: 522.5,
            };
            first(
                crate::diff::consumption_crossings(&answer, &[500.0], at),
                kind,
                base,
            )
        }
        // Session events are not account signals.
        _ => event_on(kind, base),
    }
}

/// A pull request of the sample repository.
fn sample_pr(number: usize) -> PullRequest {
    PullRequest {
        pr_url: format!("https://github.com/acme/checkout/pull/{number}"),
        pr_state: "open".into(),
    }
}

/// The event of `kind` among `events`; should the diff ever not yield it (a session whose
/// values defeat the sample change), the sample session's own event of that kind.
fn first(events: Vec<Event>, kind: EventType, session: &Session) -> Event {
    match events.into_iter().find(|e| e.kind == kind) {
        Some(event) => event,
        None if *session != self::session() => event(kind),
        None => unreachable!("the sample session yields every event type (tested)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_type() {
        for kind in EventType::ALL {
            assert_eq!(event(kind).kind, kind);
        }
    }

    /// Sessions in every state a listing can hold: a recent session previews as itself.
    #[test]
    fn every_type_on_real_sessions_keeps_the_session() {
        let mut waiting = session();
        waiting.session_id = "devin-waiting".into();
        waiting.status_detail = Some("waiting_for_user".into());
        let mut bare = Session::new("devin-bare", "exit");
        bare.title = None;
        bare.acus_consumed = 149.0;
        let mut archived = session();
        archived.session_id = "devin-archived".into();
        archived.is_archived = Some(true);
        archived.pull_requests[0].pr_state = "merged".into();
        for base in [waiting, bare, archived] {
            for kind in EventType::ALL {
                let e = event_on(kind, &base);
                assert_eq!(e.kind, kind, "{kind} on {}", base.session_id);
                if !kind.about_session() {
                    continue;
                }
                assert_eq!(e.session.session_id, base.session_id, "{kind}");
                assert_eq!(e.session.title, base.title, "{kind}");
            }
        }
    }
}
