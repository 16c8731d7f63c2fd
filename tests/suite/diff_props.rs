//! Property tests of the diff (src/diff.rs): for random sequences of session states, the events
//! reconstruct the observed transitions exactly, ids are stable on replay, an unchanged session
//! yields nothing and ids never repeat within a history.
//!
//! Statuses, details and PR states come from the documented sets plus unknown strings (an open
//! set: an unknown value is data). Unwatched fields (title, tags, ACUs, unknown fields) change at
//! random and must never cause an event.

use std::collections::{BTreeMap, HashSet};

use devin_notify::diff::diff;
use devin_notify::event::{Change, Event, EventType};
use devin_notify::model::{PullRequest, Session};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const STATUSES: &[&str] = &[
    "new",
    "creating",
    "claimed",
    "running",
    "exit",
    "error",
    "suspended",
    "resuming",
];

const DETAILS: &[&str] = &[
    "working",
    "waiting_for_user",
    "waiting_for_approval",
    "finished",
    "inactivity",
    "user_request",
    "usage_limit_exceeded",
    "out_of_credits",
    "out_of_quota",
    "no_quota_allocation",
    "payment_declined",
    "org_usage_limit_exceeded",
    "total_session_limit_exceeded",
    "error",
];

const PR_STATES: &[&str] = &["open", "merged", "closed", "draft"];

/// A documented value most of the time, else an unknown word or any string at all.
fn open_set(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(known).prop_map(str::to_owned),
        2 => "[a-z_]{1,12}",
        1 => any::<String>(),
    ]
}

fn pr_url(i: usize) -> String {
    format!("https://github.com/acme/repo{}/pull/{}", i % 3, i)
}

/// The fields the diff watches, plus noise in the fields it does not.
#[derive(Debug, Clone)]
struct State {
    status: String,
    detail: Option<String>,
    archived: Option<bool>,
    /// (index into a small pool of PR urls, state); duplicates allowed.
    prs: Vec<(usize, String)>,
    title: Option<String>,
    tags: Vec<String>,
    acus: f64,
    extra: Option<(String, i64)>,
}

fn state() -> impl Strategy<Value = State> {
    (
        open_set(STATUSES),
        proptest::option::of(open_set(DETAILS)),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec((0usize..6, open_set(PR_STATES)), 0..4),
        proptest::option::of(any::<String>()),
        proptest::collection::vec("[a-z-]{1,8}", 0..3),
        0.0f64..1e6,
        proptest::option::of(("x_[a-z]{1,6}", any::<i64>())),
    )
        .prop_map(
            |(status, detail, archived, prs, title, tags, acus, extra)| State {
                status,
                detail,
                archived,
                prs,
                title,
                tags,
                acus,
                extra,
            },
        )
}

/// One poll's view of a session: either exactly the previous one (nothing changed, so not even
/// `updated_at` moved), or a new state with `updated_at` advanced by `bump`.
#[derive(Debug, Clone)]
enum Step {
    Same,
    Changed(State, i64),
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![
            1 => Just(Step::Same),
            4 => (state(), 1i64..10_000).prop_map(|(s, bump)| Step::Changed(s, bump)),
        ],
        1..max,
    )
}

fn build(id: &str, st: &State, updated_at: i64, prs: Vec<PullRequest>) -> Session {
    let mut s = Session::new(id, st.status.clone());
    s.status_detail = st.detail.clone();
    s.is_archived = st.archived;
    s.pull_requests = prs;
    s.title = st.title.clone();
    s.tags = st.tags.clone();
    s.acus_consumed = st.acus;
    s.updated_at = updated_at;
    s.created_at = 1_700_000_000;
    s.org_id = "org-1".into();
    if let Some((k, v)) = &st.extra {
        s.extra.insert(k.clone(), json!(v));
    }
    s
}

/// The observed history of one session: PR lists taken as generated (PRs may disappear,
/// reappear and be listed twice).
fn history(id: &str, first: &State, steps: &[Step]) -> Vec<Session> {
    let prs = |st: &State| -> Vec<PullRequest> {
        st.prs
            .iter()
            .map(|(i, state)| PullRequest {
                pr_url: pr_url(*i),
                pr_state: state.clone(),
            })
            .collect()
    };
    let mut updated = 1_700_000_000;
    let mut out = vec![build(id, first, updated, prs(first))];
    for step in steps {
        let next = match step {
            Step::Same => out[out.len() - 1].clone(),
            Step::Changed(st, bump) => {
                updated += bump;
                build(id, st, updated, prs(st))
            }
        };
        out.push(next);
    }
    out
}

/// The observed history of one session whose PR list only grows, as Devin's does: each step's
/// PRs update the state of a listed PR or append a new one; none disappears.
fn growing_history(id: &str, first: &State, steps: &[Step]) -> Vec<Session> {
    let apply = |list: &mut Vec<PullRequest>, st: &State| {
        for (i, state) in &st.prs {
            let url = pr_url(*i);
            match list.iter_mut().find(|p| p.pr_url == url) {
                Some(p) => p.pr_state = state.clone(),
                None => list.push(PullRequest {
                    pr_url: url,
                    pr_state: state.clone(),
                }),
            }
        }
    };
    let mut updated = 1_700_000_000;
    let mut list = Vec::new();
    apply(&mut list, first);
    let mut out = vec![build(id, first, updated, list.clone())];
    for step in steps {
        let next = match step {
            Step::Same => out[out.len() - 1].clone(),
            Step::Changed(st, bump) => {
                updated += bump;
                apply(&mut list, st);
                build(id, st, updated, list.clone())
            }
        };
        out.push(next);
    }
    out
}

/// url -> state of the first listing of each PR (the diff counts a PR listed twice once).
fn pr_map(s: &Session) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for p in &s.pull_requests {
        m.entry(p.pr_url.clone())
            .or_insert_with(|| p.pr_state.clone());
    }
    m
}

/// The watched state events can rebuild.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    status: String,
    detail: Option<String>,
    prs: BTreeMap<String, String>,
}

/// Applies one diff's events to `model`, checking each against the model (no event may claim a
/// "from" value the model does not hold) and against the session it came from. Returns whether
/// a `session.archived` event was among them.
fn apply(model: &mut Model, events: &[Event], new: &Session) -> Result<bool, TestCaseError> {
    let mut archived = false;
    for e in events {
        prop_assert_eq!(&e.session, new, "every event carries the listed session");
        match (&e.kind, &e.change) {
            (
                EventType::SessionStatusChanged,
                Change::Status {
                    from_status,
                    status,
                    from_status_detail,
                    status_detail,
                },
            ) => {
                prop_assert_eq!(from_status, &model.status);
                prop_assert_eq!(from_status_detail, &model.detail);
                prop_assert!(
                    (from_status, from_status_detail) != (status, status_detail),
                    "a status event that changes nothing"
                );
                model.status = status.clone();
                model.detail = status_detail.clone();
            }
            (EventType::SessionArchived, Change::Session {}) => {
                prop_assert!(!archived, "archived twice in one diff");
                archived = true;
            }
            (
                EventType::PullRequestOpened,
                Change::PullRequest {
                    pr_url,
                    repo,
                    pr_state,
                    from_pr_state: None,
                },
            ) => {
                prop_assert!(!model.prs.contains_key(pr_url), "{pr_url} opened twice");
                prop_assert_eq!(repo, &devin_notify::model::repo_of(pr_url));
                model.prs.insert(pr_url.clone(), pr_state.clone());
            }
            (
                EventType::PullRequestStateChanged,
                Change::PullRequest {
                    pr_url,
                    pr_state,
                    from_pr_state: Some(from),
                    ..
                },
            ) => {
                let before = model.prs.get(pr_url);
                prop_assert_eq!(before, Some(from), "state change of an unknown PR");
                prop_assert_ne!(from, pr_state, "a PR state event that changes nothing");
                model.prs.insert(pr_url.clone(), pr_state.clone());
            }
            (kind, change) => {
                prop_assert!(false, "unexpected event {kind} with change {change:?}")
            }
        }
    }
    Ok(archived)
}

/// Plays a history through the diff as the poller does (each state against the one before)
/// and checks that the events rebuild every observed transition, and nothing else. Returns
/// every event, in order.
fn replay(history: &[Session]) -> Result<Vec<Event>, TestCaseError> {
    let first = &history[0];
    let events = diff(None, first);
    prop_assert_eq!(events[0].kind, EventType::SessionCreated);
    prop_assert!(events[0].previous.is_none());
    let mut model = Model {
        status: first.status.clone(),
        detail: first.status_detail.clone(),
        prs: BTreeMap::new(),
    };
    prop_assert!(!apply(&mut model, &events[1..], first)?);
    prop_assert_eq!(&model.prs, &pr_map(first));
    let mut all = events;
    for pair in history.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        let events = diff(Some(old), new);
        for e in &events {
            prop_assert_eq!(e.previous.as_ref(), Some(old));
        }
        // PRs that vanished from the listing are not events: the model forgets them as the
        // snapshot does.
        let mut next = Model {
            prs: pr_map(old),
            ..model.clone()
        };
        let archived = apply(&mut next, &events, new)?;
        prop_assert_eq!(&next.status, &new.status);
        prop_assert_eq!(&next.detail, &new.status_detail);
        prop_assert_eq!(archived, !old.archived() && new.archived());
        let listed = pr_map(new);
        let before = pr_map(old);
        for (url, state) in &next.prs {
            match listed.get(url) {
                Some(now) => prop_assert_eq!(state, now, "PR {}", url),
                None => prop_assert_eq!(Some(state), before.get(url), "vanished {}", url),
            }
        }
        prop_assert!(listed.keys().all(|u| next.prs.contains_key(u)));
        // Event order: status, archived, then PRs.
        let rank = |k: EventType| match k {
            EventType::SessionCreated => 0,
            EventType::SessionStatusChanged => 1,
            EventType::SessionArchived => 2,
            _ => 3,
        };
        prop_assert!(events
            .windows(2)
            .all(|w| rank(w[0].kind) <= rank(w[1].kind)));
        model = next;
        all.extend(events);
    }
    Ok(all)
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

/// A session as the poller sees it after a trip through the snapshot (JSON in sled).
fn round_trip(s: &Session) -> Session {
    let bytes = serde_json::to_vec(s).expect("a session serializes");
    serde_json::from_slice(&bytes).expect("a snapshot decodes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) The events of a random history rebuild its status, status_detail, archive and PR
    /// transitions exactly: every change has its event, every event its change.
    #[test]
    fn events_reconstruct_the_observed_transitions(first in state(), steps in steps(16)) {
        replay(&history("devin-a", &first, &steps))?;
    }

    /// (b) The diff is deterministic: replaying a whole history gives the same events, ids
    /// included, and so does diffing against the snapshot as stored (a JSON round trip).
    #[test]
    fn replaying_a_history_gives_the_same_ids(first in state(), steps in steps(12)) {
        let h = history("devin-b", &first, &steps);
        let once = replay(&h)?;
        let again = replay(&h)?;
        prop_assert_eq!(&once, &again);
        for pair in h.windows(2) {
            let direct = diff(Some(&pair[0]), &pair[1]);
            let stored = diff(Some(&round_trip(&pair[0])), &round_trip(&pair[1]));
            prop_assert_eq!(ids(&direct), ids(&stored));
        }
    }

    /// (c) An unchanged session yields no event, nor does a change to fields the diff does not
    /// watch (title, tags, ACUs, updated_at, unknown fields).
    #[test]
    fn an_unchanged_session_yields_nothing(st in state(), noise in state(), bump in 0i64..1000) {
        let s = history("devin-c", &st, &[]).remove(0);
        prop_assert!(diff(Some(&s), &s).is_empty());
        prop_assert!(diff(Some(&round_trip(&s)), &s).is_empty());
        let mut unwatched = s.clone();
        unwatched.title = noise.title.clone();
        unwatched.tags = noise.tags.clone();
        unwatched.acus_consumed = noise.acus;
        unwatched.updated_at += bump;
        unwatched.extra = Map::new();
        if let Some((k, v)) = &noise.extra {
            unwatched.extra.insert(k.clone(), Value::from(*v));
        }
        prop_assert!(diff(Some(&s), &unwatched).is_empty());
    }

    /// (d) Event ids never repeat across the histories of several sessions, as long as each
    /// change moves `updated_at` and no PR disappears from a session's list (as with the real
    /// API; see `a_reappearing_pr_repeats_its_opened_id` for the other case).
    #[test]
    fn event_ids_are_unique_across_histories(
        histories in proptest::collection::vec((state(), steps(12)), 1..4),
    ) {
        let mut seen = HashSet::new();
        for (i, (first, steps)) in histories.iter().enumerate() {
            let h = growing_history(&format!("devin-{i}"), first, steps);
            for e in replay(&h)? {
                prop_assert!(e.id.starts_with("evt_") && e.id.len() == 36, "{}", e.id);
                prop_assert!(seen.insert(e.id.clone()), "id {} repeated ({} {:?})", e.id, e.kind, e.change);
            }
        }
    }
}

/// What the diff does when a PR disappears from a session's list and comes back: the second
/// appearance is `pull_request.opened` again, under the same id as the first (the snapshot only
/// holds the last listing). The poller drops it, since the store remembers the ids of
/// once-per-subject events (tests/e2e.rs, `a_pull_request_that_vanishes_and_returns_...`).
#[test]
fn a_reappearing_pr_repeats_its_opened_id() {
    let mut with = Session::new("devin-r", "running");
    with.pull_requests = vec![PullRequest {
        pr_url: pr_url(1),
        pr_state: "open".into(),
    }];
    let mut without = with.clone();
    without.pull_requests.clear();
    without.updated_at = 10;
    let mut back = with.clone();
    back.updated_at = 20;
    let first = diff(None, &with);
    assert!(
        diff(Some(&with), &without).is_empty(),
        "vanishing is no event"
    );
    let again = diff(Some(&without), &back);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].kind, EventType::PullRequestOpened);
    assert_eq!(again[0].id, first[1].id);
}

/// A page's session, from JSON text, with `number` in `acus_consumed` (when it fits) and in
/// `structured_output` and an unknown field.
fn page_with(number: &str) -> Option<Session> {
    let text = format!(
        r#"{{"items": [{{"session_id": "devin-n", "status": "running", "acus_consumed": {number},
            "structured_output": {{"k": [{number}]}}, "x_unknown": {number}}}]}}"#
    );
    devin_notify::model::Page::decode(text.as_bytes())
        .ok()?
        .items
        .pop()
}

/// The snapshot the poller stores must decode to exactly the session it was made from, or the
/// `previous` of the next event differs from what was listed. Found by fuzzing (page_decode): a
/// 61-digit integer in `structured_output` came back one unit in the last place off.
#[test]
fn a_snapshot_round_trips_exactly_with_long_numbers() {
    let listed = page_with(&format!("4{}1", "4".repeat(59))).expect("decodes");
    assert_eq!(round_trip(&listed), listed);
    assert!(diff(Some(&round_trip(&listed)), &listed).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Any number the decoder accepts survives the snapshot round trip bit for bit.
    #[test]
    fn snapshots_round_trip_any_number(
        sign in select(&["", "-"][..]),
        digits in "[1-9][0-9]{0,70}",
        fraction in proptest::option::of("[0-9]{1,30}"),
        exponent in proptest::option::of(-330i32..330),
    ) {
        let mut number = format!("{sign}{digits}");
        if let Some(f) = fraction {
            number.push('.');
            number.push_str(&f);
        }
        if let Some(e) = exponent {
            number.push_str(&format!("e{e}"));
        }
        // Out of f64's range is a decode error, which is fine.
        if let Some(listed) = page_with(&number) {
            let stored = round_trip(&listed);
            prop_assert_eq!(&stored, &listed, "{}", number);
            prop_assert_eq!(serde_json::to_vec(&stored).ok(), serde_json::to_vec(&listed).ok());
        }
    }
}
