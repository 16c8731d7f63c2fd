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
    let before = session();
    let mut after = session();
    after.updated_at += 60;
    match kind {
        EventType::SessionCreated => {
            after.pull_requests.clear();
            return first(diff(None, &after), kind);
        }
        EventType::SessionStatusChanged => after.status_detail = Some("waiting_for_user".into()),
        EventType::SessionArchived => {
            after.status = "exit".into();
            after.status_detail = None;
            after.is_archived = Some(true);
        }
        EventType::PullRequestOpened => after.pull_requests.push(PullRequest {
            pr_url: "https://github.com/acme/checkout/pull/18".into(),
            pr_state: "open".into(),
        }),
        EventType::PullRequestStateChanged => after.pull_requests[0].pr_state = "merged".into(),
        EventType::SessionWaiting => {
            after.status_detail = Some("waiting_for_user".into());
            return crate::diff::reminder(
                &after,
                "sample-rule",
                after.updated_at * 1000 - 1_200_000,
                (after.updated_at * 1000) as u64,
                1,
            );
        }
        EventType::QueueStatusChanged => {
            let now = crate::model::QueueInfo {
                queue_size: 14,
                status: "high".into(),
            };
            return crate::diff::queue_change(Some("normal"), &now, after.updated_at)
                .expect("a changed status is an event (tested)");
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
            return first(
                crate::diff::consumption_crossings(&answer, &[500.0], after.updated_at),
                kind,
            );
        }
        EventType::SessionAcusExceeded => {
            after.acus_consumed = 52.5;
            return first(
                crate::diff::acus_crossings(Some(&before), &after, &[50.0]),
                kind,
            );
        }
    }
    first(diff(Some(&before), &after), kind)
}

fn first(events: Vec<Event>, kind: EventType) -> Event {
    events
        .into_iter()
        .find(|e| e.kind == kind)
        .expect("the sample change yields its event type (tested)")
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
}
