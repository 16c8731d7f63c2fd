//! The diff: an old snapshot and a newly listed session in, events out. Pure.

use std::time::Duration;

use crate::event::{stable_id, Change, Event, EventType};
use crate::model::{DailyConsumption, PullRequest, QueueInfo, Session};

/// The events that take a session from `old` (the snapshot, if any) to `new`, in the order they
/// are emitted: created, status changed, archived, then pull requests in listing order.
///
/// A session seen for the first time yields `session.created` and one `pull_request.opened` per
/// PR it already has. Ids hash the session, the event type, the values that changed and the
/// session's `updated_at`, so the same change seen again (a retried poll, a restart) yields the
/// same id, while a status that returns to an earlier value later yields a new one.
pub fn diff(old: Option<&Session>, new: &Session) -> Vec<Event> {
    let mut events = Vec::new();
    let sid = new.session_id.as_str();
    let updated = new.updated_at.to_string();
    let event = |kind: EventType, change: Change, id_parts: &[&str]| {
        let mut parts = vec![sid, kind.as_str()];
        parts.extend_from_slice(id_parts);
        Event {
            id: stable_id("evt_", &parts),
            kind,
            session: new.clone(),
            previous: old.cloned(),
            change,
            last_devin_message: None,
        }
    };

    match old {
        None => events.push(event(EventType::SessionCreated, Change::Session {}, &[])),
        Some(old) => {
            if old.status != new.status || old.status_detail != new.status_detail {
                let change = Change::Status {
                    from_status: old.status.clone(),
                    status: new.status.clone(),
                    from_status_detail: old.status_detail.clone(),
                    status_detail: new.status_detail.clone(),
                };
                let parts = [
                    old.status.as_str(),
                    old.status_detail.as_deref().unwrap_or("\u{0}"),
                    new.status.as_str(),
                    new.status_detail.as_deref().unwrap_or("\u{0}"),
                    updated.as_str(),
                ];
                events.push(event(EventType::SessionStatusChanged, change, &parts));
            }
            if !old.archived() && new.archived() {
                events.push(event(
                    EventType::SessionArchived,
                    Change::Session {},
                    &[updated.as_str()],
                ));
            }
        }
    }

    let old_prs = old.map(|o| o.pull_requests.as_slice()).unwrap_or_default();
    for (i, pr) in new.pull_requests.iter().enumerate() {
        // A PR listed twice in one session counts once.
        if new.pull_requests[..i].iter().any(|p| p.pr_url == pr.pr_url) {
            continue;
        }
        let change = |from: Option<&str>| Change::PullRequest {
            pr_url: pr.pr_url.clone(),
            repo: pr.repo(),
            pr_state: pr.pr_state.clone(),
            from_pr_state: from.map(str::to_owned),
        };
        match old_prs.iter().find(|p| p.pr_url == pr.pr_url) {
            None => events.push(event(
                EventType::PullRequestOpened,
                change(None),
                &[pr.pr_url.as_str()],
            )),
            Some(before) if before.pr_state != pr.pr_state => {
                events.push(pr_state_changed(old, new, pr, &before.pr_state));
            }
            Some(_) => {}
        }
    }
    events
}

/// The id of a pull request's `pull_request.opened` event: one per (session, PR).
pub fn pr_opened_id(session_id: &str, pr_url: &str) -> String {
    stable_id(
        "evt_",
        &[session_id, EventType::PullRequestOpened.as_str(), pr_url],
    )
}

/// `pull_request.state_changed` for `pr` of `new`, whose state was `from`. Its id hashes the
/// session, the PR, both states and the session's `updated_at`.
pub fn pr_state_changed(
    old: Option<&Session>,
    new: &Session,
    pr: &PullRequest,
    from: &str,
) -> Event {
    let kind = EventType::PullRequestStateChanged;
    let updated = new.updated_at.to_string();
    Event {
        id: stable_id(
            "evt_",
            &[
                &new.session_id,
                kind.as_str(),
                &pr.pr_url,
                from,
                &pr.pr_state,
                &updated,
            ],
        ),
        kind,
        session: new.clone(),
        previous: old.cloned(),
        change: Change::PullRequest {
            pr_url: pr.pr_url.clone(),
            repo: pr.repo(),
            pr_state: pr.pr_state.clone(),
            from_pr_state: Some(from.to_owned()),
        },
        last_devin_message: None,
    }
}

/// `session.acus_exceeded` for each threshold that `acus_consumed` crossed between `old` (a new
/// session counts from 0) and `new`. One id per (session, threshold): it fires once.
pub fn acus_crossings(old: Option<&Session>, new: &Session, thresholds: &[f64]) -> Vec<Event> {
    let from = old.map_or(0.0, |o| o.acus_consumed);
    let mut seen: Vec<f64> = Vec::new();
    let mut events = Vec::new();
    for &t in thresholds {
        if seen.contains(&t) || !(from <= t && new.acus_consumed > t) {
            continue;
        }
        seen.push(t);
        let kind = EventType::SessionAcusExceeded;
        events.push(Event {
            id: stable_id("evt_", &[&new.session_id, kind.as_str(), &t.to_string()]),
            kind,
            session: new.clone(),
            previous: old.cloned(),
            change: Change::Acus {
                threshold: t,
                acus_consumed: new.acus_consumed,
                from_acus: from,
            },
            last_devin_message: None,
        });
    }
    events
}

/// `queue.status_changed` when the queue's status differs from the one last stored (`None`:
/// this is the first observation, a silent baseline). `observed_at` is epoch seconds; the id
/// hashes the two statuses and the time, so the same change seen again (a retried poll, which
/// finds the stored status unchanged) is not a second event.
pub fn queue_change(stored: Option<&str>, now: &QueueInfo, observed_at_ms: i64) -> Option<Event> {
    let from = stored?;
    if from == now.status {
        return None;
    }
    // The id tells changes apart to the millisecond: normal -> high twice in one second is
    // two announcements.
    let at = observed_at_ms.to_string();
    Some(Event::account(
        EventType::QueueStatusChanged,
        "queue",
        observed_at_ms.div_euclid(1000),
        Change::Queue {
            from_status: from.to_owned(),
            status: now.status.clone(),
            queue_size: now.queue_size,
        },
        &[from, &now.status, &at],
    ))
}

/// Devin's billing days start at 08:00 UTC.
pub const BILLING_DAY_START_SECS: i64 = 8 * 3600;

/// The start (epoch seconds) of the billing day that holds `at`.
pub fn billing_day_start(at: i64) -> i64 {
    (at - BILLING_DAY_START_SECS).div_euclid(86_400) * 86_400 + BILLING_DAY_START_SECS
}

/// `consumption.daily_exceeded` for every (billing day, threshold) whose ACUs are over the
/// threshold. The id hashes the date and the threshold only: the store remembers the ids
/// announced, so each fires once per day and threshold, however often it is seen.
pub fn consumption_crossings(
    answer: &DailyConsumption,
    thresholds: &[f64],
    observed_at: i64,
) -> Vec<Event> {
    let mut events = Vec::new();
    for day in &answer.consumption_by_date {
        let mut seen: Vec<f64> = Vec::new();
        for &t in thresholds {
            if seen.contains(&t) || day.acus <= t || day.date.is_empty() {
                continue;
            }
            seen.push(t);
            events.push(Event::account(
                EventType::ConsumptionDailyExceeded,
                &format!("consumption/{}", day.date),
                observed_at,
                Change::Consumption {
                    date: day.date.clone(),
                    acus: day.acus,
                    threshold: t,
                    acus_by_product: day.acus_by_product.clone(),
                },
                &[&day.date, &t.to_string()],
            ));
        }
    }
    events
}

/// Whether a session waits on a person.
pub fn is_waiting(session: &Session) -> bool {
    matches!(
        session.status_detail.as_deref(),
        Some("waiting_for_user" | "waiting_for_approval")
    )
}

/// The number of the reminder due after waiting `waited`, for a rule's `remind_after` and
/// `repeat_every`: 0 before `remind_after`, then 1, then one more every `repeat_every`.
pub fn reminders_due(
    waited: Duration,
    remind_after: Duration,
    repeat_every: Option<Duration>,
) -> u32 {
    if waited < remind_after {
        return 0;
    }
    match repeat_every {
        Some(every) if !every.is_zero() => {
            let extra = (waited - remind_after).as_millis() / every.as_millis();
            1 + u32::try_from(extra).unwrap_or(u32::MAX - 1)
        }
        _ => 1,
    }
}

/// Reminder number `reminder` for a session waiting since `since_ms`, for `rule`. The id hashes
/// the session, the wait's start, the rule and the number: each fires once.
pub fn reminder(session: &Session, rule: &str, since_ms: i64, now_ms: u64, reminder: u32) -> Event {
    let kind = EventType::SessionWaiting;
    let waited = now_ms.saturating_sub(u64::try_from(since_ms).unwrap_or(0)) / 1000;
    Event {
        id: stable_id(
            "evt_",
            &[
                &session.session_id,
                kind.as_str(),
                &since_ms.to_string(),
                rule,
                &reminder.to_string(),
            ],
        ),
        kind,
        session: session.clone(),
        previous: None,
        change: Change::Waiting {
            status_detail: session.status_detail.clone(),
            waiting_since: crate::event::rfc3339(since_ms / 1000),
            waiting_seconds: waited,
            reminder,
            rule: rule.to_owned(),
        },
        last_devin_message: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_changes_after_a_silent_baseline() {
        use crate::model::QueueInfo;
        let q = |status: &str| QueueInfo {
            queue_size: 12,
            status: status.into(),
        };
        assert!(super::queue_change(None, &q("high"), 100_000).is_none());
        assert!(super::queue_change(Some("high"), &q("high"), 100_000).is_none());
        let e = super::queue_change(Some("normal"), &q("high"), 100_000).expect("a change");
        assert_eq!(e.kind, super::EventType::QueueStatusChanged);
        assert_eq!(e.subject(), "queue");
        assert_eq!(e.timestamp(), 100);
        assert_eq!(
            serde_json::to_value(&e.change).expect("ser"),
            serde_json::json!({"from_status": "normal", "status": "high", "queue_size": 12})
        );
        let again = super::queue_change(Some("normal"), &q("high"), 100_000).expect("same");
        assert_eq!(again.id, e.id);
        let later = super::queue_change(Some("normal"), &q("high"), 100_001).expect("later");
        assert_ne!(later.id, e.id);
    }

    #[test]
    fn billing_days_start_at_eight_utc() {
        // 2026-11-30T07:59:59Z belongs to the day that started 2026-11-29T08:00:00Z.
        let eight = 1_796_025_600; // 2026-11-30T08:00:00Z
        assert_eq!(super::billing_day_start(eight), eight);
        assert_eq!(super::billing_day_start(eight - 1), eight - 86_400);
        assert_eq!(super::billing_day_start(eight + 86_399), eight);
        assert_eq!(super::billing_day_start(eight + 86_400), eight + 86_400);
    }

    #[test]
    fn consumption_crossings_once_per_day_and_threshold() {
        use crate::model::{DailyConsumption, DayConsumption};
        let day = |date: &str, acus: f64| DayConsumption {
            date: date.into(),
            acus,
            acus_by_product: serde_json::Map::new(),
        };
        let answer = DailyConsumption {
            consumption_by_date: vec![day("2026-11-29", 1200.0), day("2026-11-30", 600.0)],
            total_acus: 1800.0,
        };
        let events = super::consumption_crossings(&answer, &[500.0, 1000.0, 500.0], 10);
        let keys: Vec<(String, f64)> = events
            .iter()
            .map(|e| match &e.change {
                super::Change::Consumption {
                    date, threshold, ..
                } => (date.clone(), *threshold),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("2026-11-29".into(), 500.0),
                ("2026-11-29".into(), 1000.0),
                ("2026-11-30".into(), 500.0)
            ]
        );
        // The id is the (date, threshold): a later observation with more ACUs has the same.
        let later = DailyConsumption {
            consumption_by_date: vec![day("2026-11-30", 900.0)],
            total_acus: 900.0,
        };
        let again = super::consumption_crossings(&later, &[500.0], 99);
        assert_eq!(again[0].id, events[2].id);
        assert_eq!(again[0].subject(), "consumption/2026-11-30");
        assert!(!again[0].kind.about_session());
    }

    use super::*;
    use crate::model::PullRequest;

    fn s(status: &str, detail: Option<&str>) -> Session {
        let mut s = Session::new("s1", status);
        s.status_detail = detail.map(str::to_owned);
        s.updated_at = 100;
        s.title = Some("Fix the flaky test".into());
        s
    }

    fn pr(url: &str, state: &str) -> PullRequest {
        PullRequest {
            pr_url: url.into(),
            pr_state: state.into(),
        }
    }

    fn kinds(events: &[Event]) -> Vec<EventType> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn unchanged_session_yields_nothing() {
        let a = s("running", Some("working"));
        assert!(diff(Some(&a), &a).is_empty());
        // Fields that are not watched change without an event.
        let mut b = a.clone();
        b.acus_consumed = 9.5;
        b.updated_at = 200;
        b.tags.push("x".into());
        assert!(diff(Some(&a), &b).is_empty());
    }

    #[test]
    fn new_session_is_created_with_its_prs() {
        let mut new = s("running", Some("working"));
        new.pull_requests = vec![pr("https://github.com/a/b/pull/1", "open")];
        let events = diff(None, &new);
        assert_eq!(
            kinds(&events),
            [EventType::SessionCreated, EventType::PullRequestOpened]
        );
        assert!(events[0].previous.is_none());
        assert_eq!(events[0].change, Change::Session {});
    }

    #[test]
    fn every_status_transition_including_unknown_values() {
        let cases = [
            (("new", None), ("running", Some("working"))),
            (
                ("running", Some("working")),
                ("running", Some("waiting_for_user")),
            ),
            (
                ("running", Some("waiting_for_user")),
                ("running", Some("waiting_for_approval")),
            ),
            (("running", Some("finished")), ("exit", None)),
            (("running", Some("working")), ("error", None)),
            (
                ("running", Some("working")),
                ("suspended", Some("inactivity")),
            ),
            (("suspended", Some("out_of_credits")), ("resuming", None)),
            (
                ("running", Some("working")),
                ("hibernating", Some("dreaming")),
            ),
            (("claimed", None), ("claimed", Some("brand_new_detail"))),
        ];
        for ((fs, fd), (ts, td)) in cases {
            let old = s(fs, fd);
            let new = s(ts, td);
            let events = diff(Some(&old), &new);
            assert_eq!(
                kinds(&events),
                [EventType::SessionStatusChanged],
                "{fs}/{fd:?} -> {ts}/{td:?}"
            );
            assert_eq!(
                events[0].change,
                Change::Status {
                    from_status: fs.into(),
                    status: ts.into(),
                    from_status_detail: fd.map(Into::into),
                    status_detail: td.map(Into::into),
                }
            );
            assert_eq!(events[0].previous.as_ref(), Some(&old));
        }
    }

    #[test]
    fn archive_fires_only_on_the_way_in() {
        let old = s("exit", None);
        let mut new = old.clone();
        new.is_archived = Some(true);
        assert_eq!(kinds(&diff(Some(&old), &new)), [EventType::SessionArchived]);
        let mut was_false = old.clone();
        was_false.is_archived = Some(false);
        assert_eq!(
            kinds(&diff(Some(&was_false), &new)),
            [EventType::SessionArchived]
        );
        assert!(diff(Some(&new), &new).is_empty());
        assert!(
            diff(Some(&new), &old).is_empty(),
            "unarchiving is not an event"
        );
    }

    #[test]
    fn pull_requests_open_and_change_state() {
        let mut old = s("running", Some("working"));
        old.pull_requests = vec![pr("https://github.com/a/b/pull/1", "open")];
        let mut new = old.clone();
        new.pull_requests = vec![
            pr("https://github.com/a/b/pull/1", "merged"),
            pr("https://github.com/a/c/pull/2", "open"),
            pr("https://github.com/a/c/pull/2", "open"),
        ];
        let events = diff(Some(&old), &new);
        assert_eq!(
            kinds(&events),
            [
                EventType::PullRequestStateChanged,
                EventType::PullRequestOpened
            ]
        );
        assert_eq!(
            events[0].change,
            Change::PullRequest {
                pr_url: "https://github.com/a/b/pull/1".into(),
                repo: Some("a/b".into()),
                pr_state: "merged".into(),
                from_pr_state: Some("open".into()),
            }
        );
        // A PR that disappears from the list is not an event.
        let mut gone = new.clone();
        gone.pull_requests.clear();
        assert!(diff(Some(&new), &gone).is_empty());
    }

    #[test]
    fn everything_at_once_in_order() {
        let mut old = s("running", Some("working"));
        old.pull_requests = vec![pr("https://github.com/a/b/pull/1", "open")];
        let mut new = s("exit", None);
        new.is_archived = Some(true);
        new.pull_requests = vec![
            pr("https://github.com/a/b/pull/1", "closed"),
            pr("https://github.com/a/b/pull/2", "open"),
        ];
        assert_eq!(
            kinds(&diff(Some(&old), &new)),
            [
                EventType::SessionStatusChanged,
                EventType::SessionArchived,
                EventType::PullRequestStateChanged,
                EventType::PullRequestOpened
            ]
        );
    }

    #[test]
    fn acus_cross_each_threshold_once() {
        let mut old = s("running", Some("working"));
        old.acus_consumed = 40.0;
        let mut new = old.clone();
        new.acus_consumed = 55.0;
        let events = acus_crossings(Some(&old), &new, &[50.0, 100.0, 50.0]);
        assert_eq!(kinds(&events), [EventType::SessionAcusExceeded]);
        assert_eq!(
            events[0].change,
            Change::Acus {
                threshold: 50.0,
                acus_consumed: 55.0,
                from_acus: 40.0
            }
        );
        // Already past: nothing more; crossing the next one fires it.
        let mut later = new.clone();
        later.acus_consumed = 70.0;
        assert!(acus_crossings(Some(&new), &later, &[50.0, 100.0]).is_empty());
        later.acus_consumed = 120.0;
        let events = acus_crossings(Some(&new), &later, &[50.0, 100.0]);
        assert_eq!(events.len(), 1);
        assert_ne!(
            events[0].id,
            acus_crossings(Some(&old), &new, &[50.0])[0].id
        );
        // A new session counts from zero; exactly at the threshold is not over it.
        assert_eq!(acus_crossings(None, &new, &[50.0]).len(), 1);
        let mut at = new.clone();
        at.acus_consumed = 50.0;
        assert!(acus_crossings(Some(&old), &at, &[50.0]).is_empty());
    }

    #[test]
    fn reminders_are_due_once_then_every_repeat() {
        let m = |mins: u64| Duration::from_secs(mins * 60);
        assert_eq!(reminders_due(m(14), m(15), None), 0);
        assert_eq!(reminders_due(m(15), m(15), None), 1);
        assert_eq!(reminders_due(m(500), m(15), None), 1);
        assert_eq!(reminders_due(m(29), m(15), Some(m(15))), 1);
        assert_eq!(reminders_due(m(30), m(15), Some(m(15))), 2);
        assert_eq!(reminders_due(m(76), m(15), Some(m(30))), 3);
        assert_eq!(reminders_due(m(76), m(15), Some(Duration::ZERO)), 1);
        let mut w = s("running", Some("waiting_for_user"));
        assert!(is_waiting(&w));
        let a = reminder(&w, "r", 1_000_000, 2_200_000, 1);
        assert_eq!(
            a.id,
            reminder(&w, "r", 1_000_000, 9_999_999, 1).id,
            "stable per wait and number"
        );
        assert_ne!(a.id, reminder(&w, "r", 1_000_000, 2_200_000, 2).id);
        assert_ne!(a.id, reminder(&w, "other", 1_000_000, 2_200_000, 1).id);
        assert_ne!(
            a.id,
            reminder(&w, "r", 5_000_000, 6_200_000, 1).id,
            "a new wait, new ids"
        );
        assert!(matches!(
            a.change,
            Change::Waiting {
                waiting_seconds: 1200,
                reminder: 1,
                ..
            }
        ));
        w.status_detail = Some("working".into());
        assert!(!is_waiting(&w));
    }

    #[test]
    fn ids_are_stable_and_distinguish_repeats() {
        let a = s("running", Some("working"));
        let b = s("running", Some("waiting_for_user"));
        let first = diff(Some(&a), &b);
        assert_eq!(first, diff(Some(&a), &b), "replay gives the same ids");
        // The same transition again later (after going back to working) is a new event.
        let mut b_later = b.clone();
        b_later.updated_at = 300;
        assert_ne!(first[0].id, diff(Some(&a), &b_later)[0].id);
        // Distinct sessions never share ids.
        let mut other = b.clone();
        other.session_id = "s2".into();
        let mut other_old = a.clone();
        other_old.session_id = "s2".into();
        assert_ne!(first[0].id, diff(Some(&other_old), &other)[0].id);
        // Every id of one diff is distinct.
        let mut many = s("exit", None);
        many.pull_requests = vec![pr("u1", "open"), pr("u2", "open")];
        let events = diff(None, &many);
        let mut ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), events.len());
    }
}
