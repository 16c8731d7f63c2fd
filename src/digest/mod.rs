//! Digests: the activity history a digest needs, and a digest computed from it. Pure.
//!
//! The poller derives [`Activity`] records from what it commits ([`activity_of`],
//! [`acus_activity`]), and the store keeps them with the snapshot, in the same transaction.
//! [`compute`] turns the records of a period, the sessions as listed now and the sessions that
//! wait now into a [`Digest`]: counts and lists of sessions created, finished and failed, pull
//! requests opened and merged, the sessions waiting now (and for how long), and the ACUs
//! consumed in the period, by tag (summed over hourly buckets, [`acus_bucket`]: the store
//! keeps one `acus` record per session and hour, not one per poll). [`schedule`] decides when
//! a digest is due and for which period. The clock is always a value passed in.

pub mod schedule;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::event::{human_duration, Change, Event, EventType};
use crate::model::{repo_of, Session};
use crate::rules::When;

pub use self::schedule::{due, parse_schedule, parse_timezone, Due, Period};

/// The most items a digest lists per section (the counts are exact; `more` says how many
/// were left out), so that a busy day still fits in a chat message.
pub const LIST_MAX: usize = 15;

/// What happened, as a digest counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A session appeared (after the baseline).
    Created,
    /// A session reached a finished state: status `exit`, or detail `finished`.
    Finished,
    /// A session reached status `error`.
    Failed,
    /// A pull request appeared on a session.
    PrOpened,
    /// A pull request's state became `merged`.
    PrMerged,
    /// The session consumed `acus` more ACUs.
    Acus,
}

/// One fact of a session's history, with when it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// When the poller saw it (Unix ms).
    pub at_ms: u64,
    pub kind: ActivityKind,
    pub session_id: String,
    /// The session's `created_at` (with its id, where its snapshot is kept).
    #[serde(default)]
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `pr_opened`, `pr_merged`: the pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    /// `acus`: how many ACUs more than at the previous record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub acus: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Activity {
    fn of(session: &Session, kind: ActivityKind, at_ms: u64) -> Activity {
        Activity {
            at_ms,
            kind,
            session_id: session.session_id.clone(),
            created_at: session.created_at,
            title: session.title.clone(),
            url: session.url.clone(),
            tags: session.tags.clone(),
            pr_url: None,
            acus: 0.0,
        }
    }

    /// A session built from the record, for matching `when` when its snapshot is gone.
    fn as_session(&self) -> Session {
        let mut s = Session::new(self.session_id.clone(), "");
        s.created_at = self.created_at;
        s.title = self.title.clone();
        s.url = self.url.clone();
        s.tags = self.tags.clone();
        s
    }
}

/// Whether a session is finished: status `exit`, or still running with detail `finished`
/// (as the default templates tell it).
pub fn is_finished(session: &Session) -> bool {
    session.status == "exit" || session.status_detail.as_deref() == Some("finished")
}

/// Whether a session failed: status `error`.
pub fn is_failed(session: &Session) -> bool {
    session.status == "error"
}

/// The activity records of events detected at `at_ms` (after once-per-subject): a session
/// created, a status change into a finished or failed state (from one that was not), a pull
/// request opened, a pull request's state becoming `merged` (or one first seen merged).
pub fn activity_of(events: &[Event], at_ms: u64) -> Vec<Activity> {
    let mut out = Vec::new();
    for e in events {
        let s = &e.session;
        let before = e.previous.as_ref();
        match (&e.kind, &e.change) {
            (EventType::SessionCreated, _) => {
                out.push(Activity::of(s, ActivityKind::Created, at_ms));
                // Created already finished or failed: both happened since the last poll.
                if is_finished(s) {
                    out.push(Activity::of(s, ActivityKind::Finished, at_ms));
                } else if is_failed(s) {
                    out.push(Activity::of(s, ActivityKind::Failed, at_ms));
                }
            }
            (EventType::SessionStatusChanged, _) => {
                if is_finished(s) && !before.is_some_and(is_finished) {
                    out.push(Activity::of(s, ActivityKind::Finished, at_ms));
                } else if is_failed(s) && !before.is_some_and(is_failed) {
                    out.push(Activity::of(s, ActivityKind::Failed, at_ms));
                }
            }
            (
                EventType::PullRequestOpened,
                Change::PullRequest {
                    pr_url, pr_state, ..
                },
            ) => {
                let pr = |kind| Activity {
                    pr_url: Some(pr_url.clone()),
                    ..Activity::of(s, kind, at_ms)
                };
                out.push(pr(ActivityKind::PrOpened));
                if pr_state == "merged" {
                    out.push(pr(ActivityKind::PrMerged));
                }
            }
            (
                EventType::PullRequestStateChanged,
                Change::PullRequest {
                    pr_url, pr_state, ..
                },
            ) if pr_state == "merged" => out.push(Activity {
                pr_url: Some(pr_url.clone()),
                ..Activity::of(s, ActivityKind::PrMerged, at_ms)
            }),
            _ => {}
        }
    }
    out
}

/// The span of one ACU bucket: an hour (UTC).
pub const ACUS_BUCKET_MS: u64 = 3_600_000;

/// The bucket of ACU changes seen at `at_ms`: the hour `(h - 1h, h]` it falls in, named by its
/// end `h` (`at_ms` rounded up to the hour, itself when on the hour). The store keeps at most
/// one `acus` record per session and bucket, stamped `h`, holding the sum of the changes seen
/// in it. A period `(start, end]` (what a digest reads) whose bounds are on the hour therefore
/// counts exactly the changes seen in it; a bound not on the hour (e.g. midnight in a zone 30
/// minutes off UTC) rounds up: the changes seen between the last full hour and the bound count
/// in the period that contains the end of their hour, the next one (never lost, never twice).
pub fn acus_bucket(at_ms: u64) -> u64 {
    at_ms
        .div_ceil(ACUS_BUCKET_MS)
        .saturating_mul(ACUS_BUCKET_MS)
}

/// The ACUs a session consumed between its snapshot (`None`: a session first seen, which
/// counts from 0) and its listing now, as a record stamped with the bucket of `at_ms`
/// ([`acus_bucket`]); `None` when it consumed none.
pub fn acus_activity(old: Option<&Session>, new: &Session, at_ms: u64) -> Option<Activity> {
    let delta = new.acus_consumed - old.map_or(0.0, |o| o.acus_consumed);
    (delta.is_finite() && delta > 0.0).then(|| Activity {
        acus: delta,
        ..Activity::of(new, ActivityKind::Acus, acus_bucket(at_ms))
    })
}

impl Activity {
    /// Whether the store coalesces this record with the others of its session and bucket:
    /// an `acus` record (its `at_ms` is its bucket, see [`acus_bucket`]).
    pub fn is_bucketed(&self) -> bool {
        self.kind == ActivityKind::Acus
    }

    /// Adds a later record of the same session and bucket to this one: the ACUs sum, the
    /// session's title, link and tags are the later record's.
    pub fn absorb(&mut self, later: &Activity) {
        let acus = self.acus + later.acus;
        *self = Activity {
            acus,
            ..later.clone()
        };
    }
}

/// The records of a commit with the `acus` records of one session and bucket made one
/// ([`Activity::absorb`]), in the order each first appeared; other records pass unchanged.
pub fn coalesce(records: &[Activity]) -> Vec<Activity> {
    let mut out: Vec<Activity> = Vec::with_capacity(records.len());
    let mut at: HashMap<(&str, u64), usize> = HashMap::new();
    for r in records {
        if !r.is_bucketed() {
            out.push(r.clone());
            continue;
        }
        match at.get(&(r.session_id.as_str(), r.at_ms)) {
            Some(&i) => out[i].absorb(r),
            None => {
                at.insert((r.session_id.as_str(), r.at_ms), out.len());
                out.push(r.clone());
            }
        }
    }
    out
}

/// A session that waits on a person now, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingNow {
    pub session_id: String,
    pub since_ms: u64,
    pub status_detail: Option<String>,
}

/// What a digest is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The digest's name.
    pub name: &'a str,
    /// The period summarised: records with `start_ms < at_ms <= end_ms` (the ACUs: the
    /// buckets whose end is in the period, see [`acus_bucket`]).
    pub period: Period,
    /// Now (Unix ms): how long the waiting sessions have waited.
    pub now_ms: u64,
    /// The time zone the period is shown in.
    pub timezone: &'a jiff::tz::TimeZone,
    /// The history records (any period: those outside it are ignored).
    pub records: &'a [Activity],
    /// Each session as listed now (by id): for `when`, and the latest title and link.
    pub sessions: &'a HashMap<String, Session>,
    /// The sessions waiting now.
    pub waiting: &'a [WaitingNow],
    /// Which sessions the digest summarises.
    pub when: &'a When,
}

/// A session in a digest's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    pub session_id: String,
    pub title: String,
    pub url: String,
    pub tags: Vec<String>,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
}

/// A pull request in a digest's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrItem {
    pub pr_url: String,
    pub repo: Option<String>,
    pub session_id: String,
    pub title: String,
    pub url: String,
    pub at: String,
}

/// A session waiting now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingItem {
    pub session_id: String,
    pub title: String,
    pub url: String,
    pub status_detail: Option<String>,
    /// Since when (RFC 3339, UTC).
    pub since: String,
    pub waiting_seconds: u64,
    /// How long, in words ("2 hours 5 minutes").
    pub waited: String,
}

/// A counted list: `count` is exact, `items` the first [`LIST_MAX`], `more` the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section<T> {
    pub count: usize,
    pub items: Vec<T>,
    pub more: usize,
}

impl<T> Section<T> {
    fn of(mut all: Vec<T>) -> Section<T> {
        let count = all.len();
        all.truncate(LIST_MAX);
        Section {
            count,
            more: count - all.len(),
            items: all,
        }
    }
}

/// ACUs consumed by the sessions of one tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagAcus {
    pub tag: String,
    /// Rounded to 2 decimals.
    pub acus: f64,
}

/// The ACUs consumed in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acus {
    /// Every selected session's, rounded to 2 decimals.
    pub total: f64,
    /// Per tag, most first (a session with two tags counts in both).
    pub by_tag: Vec<TagAcus>,
    /// Sessions without a tag.
    pub untagged: f64,
}

/// The period, for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodView {
    pub start_ms: u64,
    pub end_ms: u64,
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    /// In the digest's time zone, e.g. `2026-11-30 09:00 CET`.
    pub start_local: String,
    pub end_local: String,
    pub timezone: String,
}

/// A digest: everything its templates show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub name: String,
    pub period: PeriodView,
    pub created: Section<SessionItem>,
    pub finished: Section<SessionItem>,
    pub failed: Section<SessionItem>,
    pub waiting: Section<WaitingItem>,
    pub prs_opened: Section<PrItem>,
    pub prs_merged: Section<PrItem>,
    pub acus: Acus,
    /// Whether nothing happened and nobody waits.
    pub quiet: bool,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn utc(ms: u64) -> String {
    crate::event::rfc3339(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
}

/// A time in `tz`, for people: `2026-11-30 09:00 CET`.
pub fn local(ms: u64, tz: &jiff::tz::TimeZone) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => utc(0),
    }
}

/// Computes a digest (see [`Inputs`]).
pub fn compute(input: Inputs<'_>) -> Digest {
    let Period { start_ms, end_ms } = input.period;
    let selected = Selection::new(&input);
    let in_period: Vec<&Activity> = input
        .records
        .iter()
        .filter(|r| r.at_ms > start_ms && r.at_ms <= end_ms && selected.has(r))
        .collect();
    let sessions = |kind| Section::of(session_items(&in_period, kind, input.sessions));
    let prs = |kind| Section::of(pr_items(&in_period, kind, input.sessions));
    let waiting = Section::of(waiting_items(&input, &selected));
    let digest = Digest {
        name: input.name.to_owned(),
        period: PeriodView {
            start_ms,
            end_ms,
            start: utc(start_ms),
            end: utc(end_ms),
            start_local: local(start_ms, input.timezone),
            end_local: local(end_ms, input.timezone),
            timezone: input.timezone.iana_name().unwrap_or("UTC").to_owned(),
        },
        created: sessions(ActivityKind::Created),
        finished: sessions(ActivityKind::Finished),
        failed: sessions(ActivityKind::Failed),
        waiting,
        prs_opened: prs(ActivityKind::PrOpened),
        prs_merged: prs(ActivityKind::PrMerged),
        acus: acus(&in_period),
        quiet: false,
    };
    let quiet = digest.created.count
        + digest.finished.count
        + digest.failed.count
        + digest.waiting.count
        + digest.prs_opened.count
        + digest.prs_merged.count
        == 0
        && digest.acus.total == 0.0;
    Digest { quiet, ..digest }
}

/// Which sessions `when` selects: matched on the session as listed now, else on what its
/// records tell of it. Decided once per session.
struct Selection<'a> {
    when: &'a When,
    sessions: &'a HashMap<String, Session>,
    decided: std::cell::RefCell<HashMap<String, bool>>,
}

impl<'a> Selection<'a> {
    fn new(input: &Inputs<'a>) -> Selection<'a> {
        Selection {
            when: input.when,
            sessions: input.sessions,
            decided: Default::default(),
        }
    }

    fn has(&self, record: &Activity) -> bool {
        self.has_session(&record.session_id, || record.as_session())
    }

    fn has_session(&self, id: &str, fallback: impl FnOnce() -> Session) -> bool {
        if let Some(known) = self.decided.borrow().get(id) {
            return *known;
        }
        let yes = match self.sessions.get(id) {
            Some(s) => self.when.matches_session(s),
            None => self.when.matches_session(&fallback()),
        };
        self.decided.borrow_mut().insert(id.to_owned(), yes);
        yes
    }
}

/// The latest title and link of a session: as listed now, else as recorded.
fn shown(record: &Activity, sessions: &HashMap<String, Session>) -> (String, String) {
    match sessions.get(&record.session_id) {
        Some(s) => (s.display_title().to_owned(), s.url.clone()),
        None => (
            record.as_session().display_title().to_owned(),
            record.url.clone(),
        ),
    }
}

/// The sessions with a record of `kind`, each once (its first), in the order they happened
/// (seen in the same poll: in the order they were created).
fn session_items(
    records: &[&Activity],
    kind: ActivityKind,
    sessions: &HashMap<String, Session>,
) -> Vec<SessionItem> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in sorted(records, kind) {
        if !seen.insert(r.session_id.as_str()) {
            continue;
        }
        let (title, url) = shown(r, sessions);
        out.push(SessionItem {
            session_id: r.session_id.clone(),
            title,
            url,
            tags: r.tags.clone(),
            at: utc(r.at_ms),
        });
    }
    out
}

/// The pull requests with a record of `kind`, each once, in the order they happened.
fn pr_items(
    records: &[&Activity],
    kind: ActivityKind,
    sessions: &HashMap<String, Session>,
) -> Vec<PrItem> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in sorted(records, kind) {
        let Some(pr_url) = &r.pr_url else { continue };
        if !seen.insert(pr_url.as_str()) {
            continue;
        }
        let (title, url) = shown(r, sessions);
        out.push(PrItem {
            pr_url: pr_url.clone(),
            repo: repo_of(pr_url),
            session_id: r.session_id.clone(),
            title,
            url,
            at: utc(r.at_ms),
        });
    }
    out
}

fn sorted<'a>(records: &[&'a Activity], kind: ActivityKind) -> Vec<&'a Activity> {
    let mut of_kind: Vec<&Activity> = records.iter().copied().filter(|r| r.kind == kind).collect();
    if kind == ActivityKind::Created {
        // Sessions created: by their creation time (a listing's pages are seen one by one).
        of_kind.sort_by(|a, b| (a.created_at, &a.session_id).cmp(&(b.created_at, &b.session_id)));
    } else {
        // Seen together (one poll): oldest session first.
        of_kind.sort_by(|a, b| {
            (a.at_ms, a.created_at, &a.session_id).cmp(&(b.at_ms, b.created_at, &b.session_id))
        });
    }
    of_kind
}

/// The selected sessions waiting now, longest first.
fn waiting_items(input: &Inputs<'_>, selected: &Selection<'_>) -> Vec<WaitingItem> {
    let mut waits: Vec<&WaitingNow> = input
        .waiting
        .iter()
        .filter(|w| selected.has_session(&w.session_id, || Session::new(w.session_id.clone(), "")))
        .collect();
    waits.sort_by(|a, b| {
        a.since_ms
            .cmp(&b.since_ms)
            .then(a.session_id.cmp(&b.session_id))
    });
    waits
        .into_iter()
        .map(|w| {
            let listed = input.sessions.get(&w.session_id);
            let seconds = input.now_ms.saturating_sub(w.since_ms) / 1000;
            WaitingItem {
                session_id: w.session_id.clone(),
                title: listed.map_or(w.session_id.clone(), |s| s.display_title().to_owned()),
                url: listed.map(|s| s.url.clone()).unwrap_or_default(),
                status_detail: w.status_detail.clone(),
                since: utc(w.since_ms),
                waiting_seconds: seconds,
                waited: human_duration(seconds),
            }
        })
        .collect()
}

/// The ACUs of the records, in total and by tag.
fn acus(records: &[&Activity]) -> Acus {
    let mut total = 0.0;
    let mut untagged = 0.0;
    let mut by_tag: BTreeMap<&str, f64> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == ActivityKind::Acus) {
        total += r.acus;
        if r.tags.is_empty() {
            untagged += r.acus;
        }
        let tags: BTreeSet<&str> = r.tags.iter().map(String::as_str).collect();
        for tag in tags {
            *by_tag.entry(tag).or_default() += r.acus;
        }
    }
    let mut by_tag: Vec<TagAcus> = by_tag
        .into_iter()
        .map(|(tag, acus)| TagAcus {
            tag: tag.to_owned(),
            acus: round2(acus),
        })
        .collect();
    by_tag.sort_by(|a, b| b.acus.total_cmp(&a.acus).then(a.tag.cmp(&b.tag)));
    Acus {
        total: round2(total),
        by_tag,
        untagged: round2(untagged),
    }
}

impl Digest {
    /// The template context: the digest's fields, plus `headline`, the total ACUs as text
    /// (`acus_text`), `sink`, and `data` (the digest itself, for `{{{json data}}}`).
    pub fn context(&self, sink: &str) -> Value {
        let data = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut ctx = data.clone();
        if let Value::Object(map) = &mut ctx {
            map.insert("data".into(), data);
            map.insert("headline".into(), Value::String(self.headline()));
            map.insert(
                "acus_text".into(),
                Value::String(format!("{:.2}", self.acus.total)),
            );
            map.insert("sink".into(), Value::String(sink.to_owned()));
        }
        ctx
    }

    /// One line: `Digest daily: 3 created, 2 finished, 1 failed, 1 waiting`.
    pub fn headline(&self) -> String {
        format!(
            "Digest {}: {} created, {} finished, {} failed, {} waiting, {} PRs opened, {} merged, {:.2} ACUs",
            self.name,
            self.created.count,
            self.finished.count,
            self.failed.count,
            self.waiting.count,
            self.prs_opened.count,
            self.prs_merged.count,
            self.acus.total
        )
    }

    /// The webhook body of a digest without a template: `{"type": "digest", "timestamp",
    /// "data": <the digest>}`.
    pub fn webhook_body(&self) -> Value {
        json!({
            "type": "digest",
            "timestamp": utc(self.period.end_ms),
            "data": self,
        })
    }
}

/// A sample digest for `check`: every section full (more items than a list shows), with
/// hostile titles and tags (markup, mentions, quotes, long text), so that a template that
/// breaks its payload or its destination's limits is caught before it is needed.
pub fn sample() -> Digest {
    const NASTY: &str = "He said \"hi\" <!channel> @everyone <https://evil.example|click> **bold** [x](https://evil.example) & ";
    let start_ms = 1_764_460_800_000;
    let end_ms = start_ms + 86_400_000;
    let mut records = Vec::new();
    let mut sessions = HashMap::new();
    let mut waiting = Vec::new();
    for i in 0..(LIST_MAX as u64 + 5) {
        let id = format!("devin-sample{i:02}");
        let mut s = Session::new(id.clone(), "running");
        s.title = Some(format!("{NASTY}{}", "x".repeat(200)));
        s.url = format!("https://app.devin.ai/sessions/sample{i:02}?a=1&b=2");
        s.tags = vec![format!("team-{i}"), "<b>@here</b>".into()];
        let at = start_ms + 1000 * (i + 1);
        for kind in [
            ActivityKind::Created,
            ActivityKind::Finished,
            ActivityKind::Failed,
        ] {
            records.push(Activity::of(&s, kind, at));
        }
        for kind in [ActivityKind::PrOpened, ActivityKind::PrMerged] {
            records.push(Activity {
                pr_url: Some(format!("https://github.com/acme/repo-{i}/pull/{i}?x=<y>")),
                ..Activity::of(&s, kind, at)
            });
        }
        records.push(Activity {
            acus: 1.25 * (i + 1) as f64,
            ..Activity::of(&s, ActivityKind::Acus, at)
        });
        waiting.push(WaitingNow {
            session_id: id.clone(),
            since_ms: start_ms + 60_000 * i,
            status_detail: Some("waiting_for_user".into()),
        });
        sessions.insert(id, s);
    }
    compute(Inputs {
        name: "sample",
        period: Period { start_ms, end_ms },
        now_ms: end_ms,
        timezone: &jiff::tz::TimeZone::UTC,
        records: &records,
        sessions: &sessions,
        waiting: &waiting,
        when: &When::default(),
    })
}

#[cfg(test)]
mod tests;
