use std::collections::HashMap;

use super::schedule::{latest_at_or_before, next_after};
use super::*;
use crate::diff::diff;
use crate::model::PullRequest;

const H: u64 = 3_600_000;
/// 2026-11-30T00:00:00Z.
const DAY: u64 = 1_795_996_800_000;

fn session(id: &str, status: &str, detail: Option<&str>) -> Session {
    let mut s = Session::new(id, status);
    s.status_detail = detail.map(str::to_owned);
    s.title = Some(format!("Title of {id}"));
    s.url = format!("https://app.devin.ai/sessions/{id}");
    s.tags = vec!["team-a".into()];
    s.created_at = 1_764_400_000;
    s
}

fn rec(at_ms: u64, kind: ActivityKind, id: &str) -> Activity {
    Activity::of(&session(id, "running", None), kind, at_ms)
}

fn acus_rec(at_ms: u64, id: &str, tags: &[&str], acus: f64) -> Activity {
    Activity {
        acus,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..rec(at_ms, ActivityKind::Acus, id)
    }
}

fn pr_rec(at_ms: u64, kind: ActivityKind, id: &str, url: &str) -> Activity {
    Activity {
        pr_url: Some(url.into()),
        ..rec(at_ms, kind, id)
    }
}

/// The digest of `period`, computed at its end.
fn run(
    records: &[Activity],
    sessions: &HashMap<String, Session>,
    waiting: &[WaitingNow],
    when: &When,
    period: Period,
) -> Digest {
    compute(Inputs {
        name: "daily",
        now_ms: period.end_ms,
        period,
        timezone: &jiff::tz::TimeZone::get("Europe/Paris").expect("tz"),
        records,
        sessions,
        waiting,
        when,
    })
}

/// As [`run`], with no session listed, nobody waiting and no `when`.
fn plain(records: &[Activity], start: u64, end: u64) -> Digest {
    run(
        records,
        &HashMap::new(),
        &[],
        &When::default(),
        period(start, end),
    )
}

fn period(start: u64, end: u64) -> Period {
    Period {
        start_ms: start,
        end_ms: end,
    }
}

/// The session ids of a section's items, in order.
fn ids(items: &[SessionItem]) -> Vec<&str> {
    items.iter().map(|i| i.session_id.as_str()).collect()
}

// --- activity_of / acus_activity -------------------------------------------------------------

#[test]
fn created_session_yields_created() {
    let s = session("a", "running", Some("working"));
    let got = activity_of(&diff(None, &s), 5);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, ActivityKind::Created);
    assert_eq!(got[0].at_ms, 5);
    assert_eq!(got[0].title.as_deref(), Some("Title of a"));
    assert_eq!(got[0].url, "https://app.devin.ai/sessions/a");
    assert_eq!(got[0].tags, vec!["team-a".to_owned()]);
    assert_eq!(got[0].created_at, 1_764_400_000);
}

#[test]
fn created_already_finished_or_failed_counts_both() {
    let got = activity_of(&diff(None, &session("a", "exit", None)), 1);
    let kinds: Vec<ActivityKind> = got.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ActivityKind::Created, ActivityKind::Finished]);
    let got = activity_of(&diff(None, &session("b", "error", None)), 1);
    let kinds: Vec<ActivityKind> = got.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ActivityKind::Created, ActivityKind::Failed]);
}

#[test]
fn finishing_and_failing_transitions() {
    let cases = [
        (
            ("running", Some("working")),
            ("exit", None),
            Some(ActivityKind::Finished),
        ),
        (
            ("running", Some("working")),
            ("running", Some("finished")),
            Some(ActivityKind::Finished),
        ),
        // Already finished: exit after detail `finished` is not a second finish.
        (("running", Some("finished")), ("exit", None), None),
        (
            ("running", Some("working")),
            ("error", None),
            Some(ActivityKind::Failed),
        ),
        (("error", None), ("error", Some("x")), None),
        (
            ("running", Some("working")),
            ("running", Some("waiting_for_user")),
            None,
        ),
        (
            ("suspended", Some("inactivity")),
            ("running", Some("working")),
            None,
        ),
    ];
    for ((fs, fd), (ts, td), want) in cases {
        let old = session("a", fs, fd);
        let mut new = session("a", ts, td);
        new.updated_at = 7;
        let got = activity_of(&diff(Some(&old), &new), 1);
        let kinds: Vec<ActivityKind> = got.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            want.into_iter().collect::<Vec<_>>(),
            "{fs}/{fd:?} -> {ts}/{td:?}"
        );
    }
}

#[test]
fn pull_requests_opened_and_merged() {
    let old = session("a", "running", None);
    let mut new = old.clone();
    new.pull_requests = vec![
        PullRequest {
            pr_url: "https://github.com/acme/api/pull/1".into(),
            pr_state: "open".into(),
        },
        PullRequest {
            pr_url: "https://github.com/acme/api/pull/2".into(),
            pr_state: "merged".into(),
        },
    ];
    let got = activity_of(&diff(Some(&old), &new), 1);
    let kinds: Vec<(ActivityKind, Option<&str>)> =
        got.iter().map(|a| (a.kind, a.pr_url.as_deref())).collect();
    assert_eq!(
        kinds,
        vec![
            (
                ActivityKind::PrOpened,
                Some("https://github.com/acme/api/pull/1")
            ),
            (
                ActivityKind::PrOpened,
                Some("https://github.com/acme/api/pull/2")
            ),
            (
                ActivityKind::PrMerged,
                Some("https://github.com/acme/api/pull/2")
            ),
        ]
    );
    let mut merged = new.clone();
    merged.pull_requests[0].pr_state = "merged".into();
    let got = activity_of(&diff(Some(&new), &merged), 2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, ActivityKind::PrMerged);
    assert_eq!(
        got[0].pr_url.as_deref(),
        Some("https://github.com/acme/api/pull/1")
    );
    // Closed is not merged.
    let mut closed = new.clone();
    closed.pull_requests[0].pr_state = "closed".into();
    assert!(activity_of(&diff(Some(&new), &closed), 2).is_empty());
}

#[test]
fn archiving_is_no_activity() {
    let old = session("a", "exit", None);
    let mut new = old.clone();
    new.is_archived = Some(true);
    assert!(activity_of(&diff(Some(&old), &new), 1).is_empty());
}

#[test]
fn acus_deltas() {
    let mut old = session("a", "running", None);
    old.acus_consumed = 2.0;
    let mut new = old.clone();
    new.acus_consumed = 3.5;
    let got = acus_activity(Some(&old), &new, DAY + 9).expect("a record");
    // Stamped with its bucket: the end of the hour it was seen in.
    assert_eq!(
        (got.kind, got.acus, got.at_ms),
        (ActivityKind::Acus, 1.5, DAY + H)
    );
    // First seen: counts from 0.
    assert_eq!(acus_activity(None, &new, 9).map(|a| a.acus), Some(3.5));
    // None consumed, or fewer (a correction upstream), or not a number: no record.
    assert!(acus_activity(Some(&new), &new, 9).is_none());
    assert!(acus_activity(Some(&new), &old, 9).is_none());
    let mut nan = new.clone();
    nan.acus_consumed = f64::NAN;
    assert!(acus_activity(Some(&old), &nan, 9).is_none());
}

#[test]
fn acus_buckets_are_hours_named_by_their_end() {
    // (h - 1h, h]: on the hour is its own bucket's end, a millisecond later the next one.
    assert_eq!(acus_bucket(DAY), DAY);
    assert_eq!(acus_bucket(DAY + 1), DAY + H);
    assert_eq!(acus_bucket(DAY + H / 2), DAY + H);
    assert_eq!(acus_bucket(DAY + H), DAY + H);
    assert_eq!(acus_bucket(DAY + H + 1), DAY + 2 * H);
    assert_eq!(acus_bucket(0), 0);
    assert_eq!(acus_bucket(u64::MAX), u64::MAX, "saturates, never panics");
    assert_eq!(acus_bucket(acus_bucket(DAY + 7)), acus_bucket(DAY + 7));
}

#[test]
fn coalesce_sums_acus_per_session_and_bucket_and_keeps_other_records() {
    let mut retitled = acus_rec(DAY + H, "a", &["team-b"], 2.0);
    retitled.title = Some("Renamed".into());
    let records = vec![
        acus_rec(DAY + H, "a", &["team-a"], 1.0),
        rec(DAY + 5, ActivityKind::Created, "a"),
        acus_rec(DAY + H, "b", &["team-a"], 0.5),
        retitled,
        acus_rec(DAY + 2 * H, "a", &["team-a"], 4.0),
        rec(DAY + 5, ActivityKind::Created, "a"),
    ];
    let got = coalesce(&records);
    let summary: Vec<(ActivityKind, &str, u64, f64)> = got
        .iter()
        .map(|r| (r.kind, r.session_id.as_str(), r.at_ms, r.acus))
        .collect();
    assert_eq!(
        summary,
        [
            (ActivityKind::Acus, "a", DAY + H, 3.0),
            (ActivityKind::Created, "a", DAY + 5, 0.0),
            (ActivityKind::Acus, "b", DAY + H, 0.5),
            (ActivityKind::Acus, "a", DAY + 2 * H, 4.0),
            (ActivityKind::Created, "a", DAY + 5, 0.0),
        ]
    );
    // The latest title and tags win.
    assert_eq!(got[0].title.as_deref(), Some("Renamed"));
    assert_eq!(got[0].tags, ["team-b"]);
}

/// The ACUs of a digest of `(start, end]` over `records`.
fn acus_in(records: &[Activity], start_ms: u64, end_ms: u64) -> f64 {
    let tz = jiff::tz::TimeZone::UTC;
    compute(Inputs {
        name: "d",
        period: Period { start_ms, end_ms },
        now_ms: end_ms,
        timezone: &tz,
        records,
        sessions: &HashMap::new(),
        waiting: &[],
        when: &When::default(),
    })
    .acus
    .total
}

#[test]
fn acus_buckets_count_in_the_period_holding_their_end() {
    let mut old = session("a", "running", None);
    let mut records = Vec::new();
    // A change each 10 minutes from 00:10 to 03:00, 0.25 ACUs each: 1.5 ACUs an hour.
    for i in 1..=18u64 {
        let mut new = old.clone();
        new.acus_consumed = old.acus_consumed + 0.25;
        records.extend(acus_activity(Some(&old), &new, DAY + i * H / 6));
        old = new;
    }
    let records = coalesce(&records);
    assert_eq!(records.len(), 3, "one record per hour: {records:?}");
    // Periods on the hour: exactly the changes seen in them.
    assert_eq!(acus_in(&records, DAY, DAY + H), 1.5);
    assert_eq!(acus_in(&records, DAY + H, DAY + 3 * H), 3.0);
    assert_eq!(acus_in(&records, DAY - H, DAY), 0.0);
    // Bounds not on the hour (a zone 30 minutes off UTC): an hour straddling a bound counts
    // in the period holding its end, so consecutive periods still sum to the whole.
    let half = H / 2;
    assert_eq!(acus_in(&records, DAY - half, DAY + half), 0.0);
    assert_eq!(acus_in(&records, DAY + half, DAY + H + half), 1.5);
    assert_eq!(acus_in(&records, DAY + H + half, DAY + 3 * H + half), 3.0);
}

#[test]
fn records_round_trip_as_json() {
    let r = pr_rec(
        5,
        ActivityKind::PrMerged,
        "a",
        "https://github.com/acme/api/pull/1",
    );
    let text = serde_json::to_string(&r).expect("ser");
    assert!(text.contains("\"kind\":\"pr_merged\""), "{text}");
    let back: Activity = serde_json::from_str(&text).expect("de");
    assert_eq!(back, r);
    let a = acus_rec(5, "a", &["x"], 1.25);
    let back: Activity =
        serde_json::from_str(&serde_json::to_string(&a).expect("ser")).expect("de");
    assert_eq!(back, a);
}

// --- compute -----------------------------------------------------------------------------------

fn day_records() -> Vec<Activity> {
    vec![
        rec(DAY - H, ActivityKind::Created, "before"), // before the period
        rec(DAY + H, ActivityKind::Created, "a"),
        rec(DAY + 2 * H, ActivityKind::Created, "b"),
        rec(DAY + 3 * H, ActivityKind::Created, "c"),
        pr_rec(
            DAY + 4 * H,
            ActivityKind::PrOpened,
            "a",
            "https://github.com/acme/api/pull/1",
        ),
        pr_rec(
            DAY + 5 * H,
            ActivityKind::PrOpened,
            "b",
            "https://github.com/acme/web/pull/9",
        ),
        pr_rec(
            DAY + 6 * H,
            ActivityKind::PrMerged,
            "a",
            "https://github.com/acme/api/pull/1",
        ),
        rec(DAY + 7 * H, ActivityKind::Finished, "a"),
        rec(DAY + 8 * H, ActivityKind::Failed, "c"),
        acus_rec(DAY + H, "a", &["team-a"], 1.0),
        acus_rec(DAY + 2 * H, "a", &["team-a"], 2.5),
        acus_rec(DAY + 2 * H, "b", &["team-b", "team-a"], 4.0),
        acus_rec(DAY + 3 * H, "c", &[], 0.333),
        acus_rec(DAY - 1, "a", &["team-a"], 100.0), // before
        rec(DAY + 24 * H + 1, ActivityKind::Created, "after"), // after
    ]
}

#[test]
fn a_day_of_activity() {
    let d = plain(&day_records(), DAY, DAY + 24 * H);
    assert_eq!(d.created.count, 3);
    assert_eq!(ids(&d.created.items), vec!["a", "b", "c"]);
    assert_eq!(ids(&d.finished.items), vec!["a"]);
    assert_eq!(ids(&d.failed.items), vec!["c"]);
    assert_eq!(d.prs_opened.count, 2);
    assert_eq!(
        d.prs_opened.items[0].pr_url,
        "https://github.com/acme/api/pull/1"
    );
    assert_eq!(d.prs_opened.items[0].repo.as_deref(), Some("acme/api"));
    assert_eq!(d.prs_opened.items[1].repo.as_deref(), Some("acme/web"));
    assert_eq!(d.prs_merged.count, 1);
    assert_eq!(d.prs_merged.items[0].url, "https://app.devin.ai/sessions/a");
    assert_eq!(d.acus.total, 7.83);
    assert_eq!(d.acus.untagged, 0.33);
    assert_eq!(
        d.acus.by_tag,
        vec![
            TagAcus {
                tag: "team-a".into(),
                acus: 7.5
            },
            TagAcus {
                tag: "team-b".into(),
                acus: 4.0
            },
        ]
    );
    assert_eq!(d.created.items[0].title, "Title of a");
    assert_eq!(d.created.items[0].at, "2026-11-30T01:00:00Z");
    assert!(!d.quiet);
    assert_eq!(d.period.start, "2026-11-30T00:00:00Z");
    assert_eq!(d.period.end_local, "2026-12-01 01:00 CET");
    assert_eq!(d.period.timezone, "Europe/Paris");
}

#[test]
fn the_period_excludes_its_start_and_includes_its_end() {
    let records = vec![
        rec(DAY, ActivityKind::Created, "at-start"),
        rec(DAY + H, ActivityKind::Created, "at-end"),
    ];
    let d = plain(&records, DAY, DAY + H);
    assert_eq!(d.created.count, 1);
    assert_eq!(d.created.items[0].session_id, "at-end");
    // The next period starts where this one ended: the record is counted once across both.
    let next = plain(&records, DAY + H, DAY + 2 * H);
    assert_eq!(next.created.count, 0);
}

#[test]
fn a_session_or_pr_counts_once() {
    let records = vec![
        rec(DAY + 1, ActivityKind::Finished, "a"),
        rec(DAY + 2, ActivityKind::Finished, "a"),
        pr_rec(
            DAY + 3,
            ActivityKind::PrOpened,
            "a",
            "https://github.com/x/y/pull/1",
        ),
        pr_rec(
            DAY + 4,
            ActivityKind::PrOpened,
            "b",
            "https://github.com/x/y/pull/1",
        ),
    ];
    let d = plain(&records, DAY, DAY + H);
    assert_eq!(d.finished.count, 1);
    assert_eq!(d.prs_opened.count, 1);
    assert_eq!(d.prs_opened.items[0].session_id, "a");
}

#[test]
fn an_empty_period_is_quiet() {
    let d = plain(&[], DAY, DAY + H);
    assert!(d.quiet);
    assert_eq!(d.acus.total, 0.0);
    assert!(d.acus.by_tag.is_empty());
    assert_eq!(
        d.created,
        Section {
            count: 0,
            items: vec![],
            more: 0
        }
    );
}

#[test]
fn long_lists_are_capped_with_exact_counts() {
    let records: Vec<Activity> = (0..40)
        .map(|i| rec(DAY + 1 + i, ActivityKind::Created, &format!("s{i:02}")))
        .collect();
    let d = plain(&records, DAY, DAY + H);
    assert_eq!(d.created.count, 40);
    assert_eq!(d.created.items.len(), LIST_MAX);
    assert_eq!(d.created.more, 40 - LIST_MAX);
    assert_eq!(d.created.items[0].session_id, "s00");
}

#[test]
fn when_selects_sessions_as_listed_now() {
    let mut sessions = HashMap::new();
    let mut a = session("a", "running", None);
    a.tags = vec!["team-b".into()]; // retagged since its records
    a.title = Some("New title".into());
    sessions.insert("a".to_owned(), a);
    let when = When {
        tags: Some(vec!["team-b".into()]),
        ..When::default()
    };
    let d = run(
        &day_records(),
        &sessions,
        &[],
        &when,
        period(DAY, DAY + 24 * H),
    );
    // a by its listing now; b by its records (no listing); c has neither tag.
    assert_eq!(ids(&d.created.items), vec!["a"]);
    assert_eq!(d.created.items[0].title, "New title");
    assert_eq!(d.failed.count, 0);
    // b's records say team-a only for its creation record: not selected; its ACUs record
    // carries team-b but selection is per session, decided once.
    assert_eq!(d.acus.total, 3.5);
    assert_eq!(d.prs_merged.count, 1);
}

#[test]
fn when_on_other_keys() {
    let mut sessions = HashMap::new();
    let mut c = session("c", "error", None);
    c.org_id = "org-1".into();
    c.origin = Some("slack".into());
    sessions.insert("c".to_owned(), c);
    let when = When {
        org_ids: Some(vec!["org-1".into()]),
        origins: Some(vec!["slack".into()]),
        ..When::default()
    };
    let d = run(
        &day_records(),
        &sessions,
        &[],
        &when,
        period(DAY, DAY + 24 * H),
    );
    assert_eq!(
        (d.created.count, d.failed.count, d.finished.count),
        (1, 1, 0)
    );
    assert_eq!(d.acus.total, 0.33);
    // A key a session cannot satisfy (an event key) selects nothing.
    let when = When {
        pr_state: Some(vec!["open".into()]),
        ..When::default()
    };
    let d = run(
        &day_records(),
        &sessions,
        &[],
        &when,
        period(DAY, DAY + 24 * H),
    );
    assert!(d.quiet);
}

#[test]
fn waiting_now_with_links_and_how_long() {
    let mut sessions = HashMap::new();
    sessions.insert(
        "w1".to_owned(),
        session("w1", "running", Some("waiting_for_user")),
    );
    sessions.insert(
        "w2".to_owned(),
        session("w2", "running", Some("waiting_for_approval")),
    );
    let waiting = vec![
        WaitingNow {
            session_id: "w2".into(),
            since_ms: DAY + 23 * H,
            status_detail: Some("waiting_for_approval".into()),
        },
        WaitingNow {
            session_id: "w1".into(),
            since_ms: DAY + 21 * H + 30 * 60_000,
            status_detail: Some("waiting_for_user".into()),
        },
        WaitingNow {
            session_id: "gone".into(),
            since_ms: DAY,
            status_detail: None,
        },
    ];
    let d = run(
        &[],
        &sessions,
        &waiting,
        &When::default(),
        period(DAY, DAY + 24 * H),
    );
    assert_eq!(d.waiting.count, 3);
    let w: Vec<(&str, &str, &str)> = d
        .waiting
        .items
        .iter()
        .map(|i| (i.session_id.as_str(), i.url.as_str(), i.waited.as_str()))
        .collect();
    assert_eq!(
        w,
        vec![
            ("gone", "", "1 day"),
            (
                "w1",
                "https://app.devin.ai/sessions/w1",
                "2 hours 30 minutes"
            ),
            ("w2", "https://app.devin.ai/sessions/w2", "1 hour"),
        ]
    );
    assert_eq!(d.waiting.items[1].waiting_seconds, 9000);
    assert_eq!(d.waiting.items[1].since, "2026-11-30T21:30:00Z");
    assert!(!d.quiet, "someone waits");
    // Selected by `when` too.
    let when = When {
        tags: Some(vec!["team-a".into()]),
        ..When::default()
    };
    let d = run(&[], &sessions, &waiting, &when, period(DAY, DAY + 24 * H));
    assert_eq!(d.waiting.count, 2);
}

#[test]
fn context_and_webhook_body_carry_the_same_data() {
    let d = plain(&day_records(), DAY, DAY + 24 * H);
    let ctx = d.context("team_slack");
    assert_eq!(ctx["created"]["count"], 3);
    assert_eq!(ctx["data"]["created"]["count"], 3);
    assert_eq!(ctx["acus_text"], "7.83");
    assert_eq!(ctx["sink"], "team_slack");
    assert!(ctx["headline"]
        .as_str()
        .is_some_and(|h| h.starts_with("Digest daily: 3 created, 1 finished, 1 failed")));
    let body = d.webhook_body();
    assert_eq!(body["type"], "digest");
    assert_eq!(body["data"], ctx["data"]);
    assert_eq!(body["timestamp"], "2026-12-01T00:00:00Z");
}

// --- schedule ------------------------------------------------------------------------------

fn tz(name: &str) -> jiff::tz::TimeZone {
    parse_timezone(name).expect("tz")
}

#[test]
fn schedules_parse_five_fields_only() {
    assert!(parse_schedule("0 9 * * mon-fri").is_ok());
    assert!(parse_schedule("*/15 * * * *").is_ok());
    assert!(parse_schedule("0 9 * * * *").is_err_and(|e| e.contains("6 fields")));
    assert!(parse_schedule("0 9 *").is_err_and(|e| e.contains("five")));
    assert!(parse_schedule("61 9 * * *").is_err_and(|e| e.contains("not a cron expression")));
    assert!(parse_schedule("0 9 30 2 *").is_err_and(|e| e.contains("never fires")));
    assert!(parse_schedule("").is_err());
}

#[test]
fn time_zones_are_iana_names() {
    assert!(parse_timezone("Europe/Paris").is_ok());
    assert!(parse_timezone("UTC").is_ok());
    assert!(parse_timezone("Mars/Olympus").is_err_and(|e| e.contains("IANA")));
    assert!(parse_timezone("").is_err());
}

#[test]
fn a_new_digest_starts_when_first_seen() {
    let cron = parse_schedule("0 9 * * *").expect("cron");
    assert_eq!(
        due(&cron, &tz("UTC"), None, DAY + 10 * H),
        Due::First {
            mark_ms: DAY + 10 * H
        }
    );
}

#[test]
fn due_at_the_scheduled_time_in_its_zone() {
    let cron = parse_schedule("0 9 * * *").expect("cron");
    let paris = tz("Europe/Paris"); // UTC+1 in November: 09:00 Paris is 08:00 UTC
    let last = Some(DAY);
    assert_eq!(due(&cron, &paris, last, DAY + 8 * H - 1), Due::NotYet);
    assert_eq!(
        due(&cron, &paris, last, DAY + 8 * H),
        Due::Run(Period {
            start_ms: DAY,
            end_ms: DAY + 8 * H
        })
    );
    assert_eq!(
        due(&cron, &paris, last, DAY + 8 * H + 59_000),
        Due::Run(Period {
            start_ms: DAY,
            end_ms: DAY + 8 * H
        })
    );
    // Sent: the mark is the period's end; not due again until tomorrow.
    assert_eq!(
        due(&cron, &paris, Some(DAY + 8 * H), DAY + 20 * H),
        Due::NotYet
    );
    assert_eq!(
        due(&cron, &paris, Some(DAY + 8 * H), DAY + 32 * H),
        Due::Run(Period {
            start_ms: DAY + 8 * H,
            end_ms: DAY + 32 * H
        })
    );
}

#[test]
fn a_missed_run_is_sent_once_covering_the_gap() {
    let cron = parse_schedule("0 9 * * *").expect("cron");
    let utc = tz("UTC");
    // Down from day 0 10:00 to day 3 12:00: three runs missed; one period, to the latest.
    let last = Some(DAY + 9 * H);
    let now = DAY + 3 * 24 * H + 12 * H;
    assert_eq!(
        due(&cron, &utc, last, now),
        Due::Run(Period {
            start_ms: DAY + 9 * H,
            end_ms: DAY + 3 * 24 * H + 9 * H
        })
    );
    assert_eq!(
        due(&cron, &utc, Some(DAY + 3 * 24 * H + 9 * H), now),
        Due::NotYet
    );
}

#[test]
fn weekdays_and_every_minute() {
    // 2026-11-30 is a Monday; 2026-12-05 a Saturday.
    let cron = parse_schedule("0 9 * * mon-fri").expect("cron");
    let utc = tz("UTC");
    let saturday = DAY + 5 * 24 * H;
    assert_eq!(
        latest_at_or_before(&cron, &utc, saturday + 12 * H),
        Some(DAY + 4 * 24 * H + 9 * H)
    );
    assert_eq!(
        next_after(&cron, &utc, saturday),
        Some(DAY + 7 * 24 * H + 9 * H)
    );
    let every = parse_schedule("* * * * *").expect("cron");
    assert_eq!(
        latest_at_or_before(&every, &utc, DAY + 61_500),
        Some(DAY + 60_000)
    );
    assert_eq!(
        due(&every, &utc, Some(DAY + 60_000), DAY + 61_500),
        Due::NotYet
    );
}

#[test]
fn daylight_saving_changes() {
    let paris = tz("Europe/Paris");
    let cron = parse_schedule("0 9 * * *").expect("cron");
    // 2026-03-29: Paris moves from UTC+1 to UTC+2. 09:00 that day is 07:00 UTC.
    let mar29 = 1_774_742_400_000; // 2026-03-29T00:00:00Z
    assert_eq!(
        latest_at_or_before(&cron, &paris, mar29 + 12 * H),
        Some(mar29 + 7 * H)
    );
    assert_eq!(
        latest_at_or_before(&cron, &paris, mar29 + 7 * H - 1),
        Some(mar29 - 24 * H + 8 * H)
    );
    // A time that does not exist that day (02:30) fires once, at the first instant after.
    let gap = parse_schedule("30 2 * * *").expect("cron");
    let fired = next_after(&gap, &paris, mar29).expect("fires");
    assert!(fired >= mar29 + H && fired <= mar29 + 2 * H, "{fired}");
}

#[test]
fn a_clock_gone_back_is_not_due() {
    let cron = parse_schedule("* * * * *").expect("cron");
    assert_eq!(due(&cron, &tz("UTC"), Some(DAY + H), DAY), Due::NotYet);
}

#[test]
fn seen_together_lists_the_oldest_session_first() {
    let mut newer = rec(DAY + 5, ActivityKind::Finished, "newer");
    newer.created_at = 20;
    let mut older = rec(DAY + 5, ActivityKind::Finished, "older");
    older.created_at = 10;
    let earlier = rec(DAY + 4, ActivityKind::Finished, "earlier");
    let d = plain(&[newer, older, earlier], DAY, DAY + H);
    assert_eq!(ids(&d.finished.items), ["earlier", "older", "newer"]);
}

#[test]
fn sessions_created_are_listed_by_creation_time() {
    let mut second = rec(DAY + 1, ActivityKind::Created, "second");
    second.created_at = 20;
    let mut first = rec(DAY + 9, ActivityKind::Created, "first");
    first.created_at = 10;
    let d = plain(&[second, first], DAY, DAY + H);
    assert_eq!(ids(&d.created.items), ["first", "second"]);
}
