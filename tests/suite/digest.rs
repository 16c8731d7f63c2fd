//! Digests end to end: a scripted day of session activity summarised (counts and links), on
//! both storage engines; a digest not sent twice across a restart of the real binary; a run
//! missed while down sent once, late, covering the whole gap.
//!
//! The in-process tests decide "now" themselves (the run decision takes the clock as a
//! value); the test of the real binary uses a schedule that fires every minute and polls
//! until the receiver has the digest.

use crate::harness;
use crate::support;

use std::time::Duration;

use devin_notify::poller::digests;
use devin_notify::store::now_ms;
use harness::{Backend, Env, Service};
use serde_json::{json, Value};
use support::{pr, session};

const WAIT: Duration = Duration::from_secs(20);
/// Up to the next minute's scheduled run, and the poll after it.
const MINUTE_AND_A_BIT: Duration = Duration::from_secs(75);
const MINUTE: u64 = 60_000;

/// Every minute: for the binary tests.
const EVERY_MINUTE: &str = "* * * * *";
/// Every day at 09:00 (Paris): the missed-runs test, with a clock of its own.
const DAILY: &str = "0 9 * * *";
/// Once a year: the in-process test runs it with a clock of its own, and the real clock never
/// reaches it meanwhile.
const YEARLY: &str = "0 0 1 1 *";

fn digests_config(schedule: &str) -> String {
    format!(
        r#"
[[digests]]
name = "daily"
sinks = ["hook", "slack"]
schedule = "{schedule}"
timezone = "Europe/Paris"

[[digests]]
name = "team-a"
sinks = ["hook"]
schedule = "{schedule}"
timezone = "UTC"
[digests.when]
tags = ["team-a"]
"#
    )
}

fn tagged(id: &str, tag: &str) -> Value {
    let mut s = session(id);
    s["tags"] = json!([tag]);
    s
}

/// The digests the webhook receiver got, by digest name (in arrival order).
fn digests_received(env: &Env, name: &str) -> Vec<(String, Value)> {
    env.hook
        .received()
        .iter()
        .filter(|r| r.json()["type"] == "digest" && r.json()["data"]["name"] == name)
        .map(|r| {
            (
                r.header("webhook-id").unwrap_or_default().to_owned(),
                r.json(),
            )
        })
        .collect()
}

fn ids(section: &Value, key: &str) -> Vec<String> {
    section["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i[key].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The day: one session from before the baseline, then three created; PRs opened and
/// merged, one finished, one failed, one waiting; ACUs consumed, by tag.
async fn scripted_day(env: &Env) {
    env.api.upsert(tagged("old1", "team-b"));
    env.once().await.expect("baseline");
    env.api.upsert_all([
        tagged("s-a", "team-a"),
        tagged("s-b", "team-b"),
        tagged("s-c", "team-a"),
    ]);
    env.once().await.expect("created");
    env.api.update("s-a", |s| {
        s["pull_requests"] = json!([pr("https://github.com/acme/api/pull/1", "open")]);
        s["acus_consumed"] = json!(4.0);
    });
    env.api.update("s-b", |s| {
        s["pull_requests"] = json!([pr("https://github.com/acme/web/pull/2", "open")]);
    });
    env.api.update("old1", |s| s["acus_consumed"] = json!(3.5));
    env.once().await.expect("PRs opened");
    env.api.update("s-a", |s| {
        s["pull_requests"] = json!([pr("https://github.com/acme/api/pull/1", "merged")]);
        s["status"] = json!("exit");
        s["status_detail"] = Value::Null;
    });
    env.api.update("s-c", |s| {
        s["status"] = json!("error");
        s["status_detail"] = Value::Null;
    });
    env.api
        .update("s-b", |s| s["status_detail"] = json!("waiting_for_user"));
    env.once().await.expect("merged, finished, failed, waiting");
}

async fn a_scripted_day_is_summarised_with_counts_and_links(backend: Backend) {
    let mut env = Env::start_on(backend, "").await;
    env.set_extra(&digests_config(YEARLY));
    let first_seen = now_ms();
    scripted_day(&env).await;
    assert!(
        digests_received(&env, "daily").is_empty(),
        "a new digest sends nothing before its first scheduled time"
    );
    // At the next scheduled time (the clock is a value): one run, covering everything since
    // the digest was first seen.
    let cron = devin_notify::digest::parse_schedule(YEARLY).expect("cron");
    let paris = devin_notify::digest::parse_timezone("Europe/Paris").expect("tz");
    let next = devin_notify::digest::schedule::next_after(&cron, &paris, now_ms()).expect("next");
    // (team-a's year starts an hour later, in UTC.)
    let later = next + 2 * 60 * MINUTE;
    {
        let store = env.store_unlocked().await;
        let mark = store.digest_mark("daily").await.expect("mark");
        assert!(
            mark.is_some_and(|m| m >= first_seen && m <= now_ms()),
            "first seen at the baseline: {mark:?}"
        );
        let queued = digests::run(&store, &env.active(), later)
            .await
            .expect("run");
        assert_eq!(queued, 3, "daily to hook and slack, team-a to hook");
        // Due once: the same moment again queues nothing.
        assert_eq!(
            digests::run(&store, &env.active(), later)
                .await
                .expect("run"),
            0
        );
        store.flush().await.expect("flush");
    }
    env.once_unlocked().await;

    let daily = digests_received(&env, "daily");
    assert_eq!(daily.len(), 1, "{daily:?}");
    let d = &daily[0].1["data"];
    assert_eq!(d["created"]["count"], 3, "{d}");
    assert_eq!(ids(&d["created"], "session_id"), ["s-a", "s-b", "s-c"]);
    assert_eq!(
        ids(&d["created"], "url")[0],
        "https://app.devin.ai/sessions/s-a"
    );
    assert_eq!(ids(&d["finished"], "session_id"), ["s-a"]);
    assert_eq!(ids(&d["failed"], "session_id"), ["s-c"]);
    assert_eq!(ids(&d["waiting"], "session_id"), ["s-b"]);
    assert_eq!(
        ids(&d["waiting"], "url"),
        ["https://app.devin.ai/sessions/s-b"]
    );
    assert!(
        d["waiting"]["items"][0]["waited"]
            .as_str()
            .is_some_and(|w| !w.is_empty()),
        "{d}"
    );
    // (In the order seen: the listing's pages are committed one by one.)
    let mut opened = ids(&d["prs_opened"], "pr_url");
    opened.sort();
    assert_eq!(
        opened,
        [
            "https://github.com/acme/api/pull/1",
            "https://github.com/acme/web/pull/2"
        ]
    );
    assert_eq!(
        ids(&d["prs_merged"], "pr_url"),
        ["https://github.com/acme/api/pull/1"]
    );
    assert_eq!(
        ids(&d["prs_merged"], "url"),
        ["https://app.devin.ai/sessions/s-a"]
    );
    // 1.5 each for the three created (first seen), 2.5 more for s-a, 2.0 more for old1.
    assert_eq!(d["acus"]["total"], 9.0, "{d}");
    assert_eq!(
        d["acus"]["by_tag"],
        json!([{"tag": "team-a", "acus": 5.5}, {"tag": "team-b", "acus": 3.5}])
    );
    assert_eq!(d["period"]["timezone"], "Europe/Paris");
    assert_eq!(d["period"]["end_ms"].as_u64(), Some(next));
    assert!(
        d["period"]["end_local"]
            .as_str()
            .is_some_and(|t| t.ends_with("-01-01 00:00 CET")),
        "{d}"
    );

    let team_a = digests_received(&env, "team-a");
    assert_eq!(team_a.len(), 1);
    let t = &team_a[0].1["data"];
    assert_eq!(ids(&t["created"], "session_id"), ["s-a", "s-c"]);
    assert_eq!(
        (
            t["finished"]["count"].as_u64(),
            t["failed"]["count"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(t["waiting"]["count"], 0);
    assert_eq!(
        ids(&t["prs_opened"], "pr_url"),
        ["https://github.com/acme/api/pull/1"]
    );
    assert_eq!(t["acus"]["total"], 5.5);
    assert_ne!(team_a[0].0, daily[0].0, "ids differ by digest name");
    assert!(daily[0].0.starts_with("msg_"), "{}", daily[0].0);

    // The Slack digest: counts, and the sessions and PRs linked.
    let slack = env.slack.wait_for(1, WAIT).await;
    let text = slack[0].json().to_string();
    assert!(text.contains("*3* created"), "{text}");
    assert!(
        text.contains("<https://app.devin.ai/sessions/s-b|Session s-b>"),
        "{text}"
    );
    assert!(
        text.contains("<https://github.com/acme/api/pull/1|acme/api>"),
        "{text}"
    );

    // preview --digest prints the digest from the store now: the period since that run.
    let (code, out) = env.cli(&["preview", "--digest", "daily"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sink `hook` (webhook), digest"), "{out}");
    assert!(out.contains("\"created\""), "{out}");
    let (code, out) = env.cli(&["preview", "--digest", "nope"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no digest named `nope` (digests: daily, team-a)"),
        "{out}"
    );
}

async fn a_digest_is_not_sent_twice_across_a_restart(backend: Backend) {
    let mut env = Env::start_on(backend, "").await;
    env.set_extra(&digests_config(EVERY_MINUTE));
    env.api.upsert(tagged("old1", "team-a"));
    // The first poll records the baseline; the digests are first seen.
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.api.upsert(tagged("s-new", "team-a"));
    // The next minute's run (the service polls every second until the receiver has it).
    env.hook
        .wait_until(
            |r| r.iter().any(|r| r.json()["data"]["name"] == "daily"),
            MINUTE_AND_A_BIT,
        )
        .await;
    let (clean, log) = service.stop().await;
    assert!(clean, "{log}");
    let sent = digests_received(&env, "daily");
    let service = Service::start(&env);
    // Several polls of the restarted service, each looking at the digests.
    service.wait_log("poll done", 4, WAIT).await;
    let (clean, log) = service.stop().await;
    assert!(clean, "{log}");

    let daily = digests_received(&env, "daily");
    assert!(!sent.is_empty());
    // The store holds the end of the last period sent: the next run starts there.
    let store = env.store_unlocked().await;
    let mark = store.digest_mark("daily").await.expect("mark");
    let last = daily
        .last()
        .map(|(_, d)| d["data"]["period"]["end_ms"].as_u64());
    assert_eq!(Some(mark), last, "{daily:?}");
    // Never the same period twice; a later minute's digest starts where the last ended.
    for pair in daily.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "sent twice: {daily:?}");
        assert_eq!(
            pair[1].1["data"]["period"]["start_ms"], pair[0].1["data"]["period"]["end_ms"],
            "{daily:?}"
        );
    }
    let mut unique: Vec<&String> = daily.iter().map(|(id, _)| id).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), daily.len(), "{daily:?}");
}

async fn a_run_missed_while_down_is_sent_once_covering_the_gap(backend: Backend) {
    let mut env = Env::start_on(backend, "").await;
    env.set_extra(&digests_config(DAILY));
    env.api.upsert(tagged("old1", "team-a"));
    env.once()
        .await
        .expect("baseline: the digest is first seen");
    env.api.upsert(tagged("s-gap", "team-a"));
    env.once().await.expect("a session created");
    // Down for about three days (the clock is a value): back at noon UTC three days on, hours
    // from either digest's 09:00 (Paris or UTC), so the looks a minute or two later below stay
    // in the same period whatever the time the test runs.
    let store = env.store_unlocked().await;
    let mark = store
        .digest_mark("daily")
        .await
        .expect("mark")
        .expect("first seen");
    const DAY: u64 = 24 * 60 * MINUTE;
    let back = (now_ms() / DAY + 3) * DAY + DAY / 2;
    let cron = devin_notify::digest::parse_schedule(DAILY).expect("cron");
    let paris = devin_notify::digest::parse_timezone("Europe/Paris").expect("tz");
    let latest =
        devin_notify::digest::schedule::latest_at_or_before(&cron, &paris, back).expect("latest");
    assert_eq!(
        digests::run(&store, &env.active(), back)
            .await
            .expect("run"),
        3
    );
    // Looked at again (the next poll, a minute later): nothing more is due.
    assert_eq!(
        digests::run(&store, &env.active(), back + MINUTE)
            .await
            .expect("run"),
        0
    );
    store.flush().await.expect("flush");
    drop(store);
    // And after a restart (the store opened afresh), still nothing.
    let store = env.store_unlocked().await;
    assert_eq!(
        digests::run(&store, &env.active(), back + 2 * MINUTE)
            .await
            .expect("run"),
        0
    );
    store.flush().await.expect("flush");
    drop(store);
    env.once_unlocked().await;

    let daily = digests_received(&env, "daily");
    assert_eq!(daily.len(), 1, "one digest for the whole gap: {daily:?}");
    let period = &daily[0].1["data"]["period"];
    assert_eq!(
        period["start_ms"].as_u64(),
        Some(mark),
        "from where the last period ended"
    );
    assert_eq!(
        period["end_ms"].as_u64(),
        Some(latest),
        "to the latest scheduled time"
    );
    assert!(latest >= mark + 2 * 24 * 60 * MINUTE, "{period}");
    assert!(
        period["end_local"]
            .as_str()
            .is_some_and(|t| t.contains(" 09:00 CE")),
        "{period}"
    );
    assert_eq!(ids(&daily[0].1["data"]["created"], "session_id"), ["s-gap"]);
    assert_eq!(digests_received(&env, "team-a").len(), 1);
}

on_both_backends!(
    a_scripted_day_is_summarised_with_counts_and_links,
    a_digest_is_not_sent_twice_across_a_restart,
    a_run_missed_while_down_is_sent_once_covering_the_gap,
    history_older_than_the_retention_is_pruned_in_bounded_steps,
    acu_changes_are_one_record_per_session_and_hour,
    acu_history_grows_per_hour_not_per_poll,
);

/// While `run` holds the sled store, `preview --digest` asks it through the admin API (with the
/// admin token) and prints the same payloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_digest_goes_through_the_running_service() {
    let mut env = Env::start("").await;
    let port = harness::free_port();
    env.set_extra(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"preview-token-123\"\n{}",
        digests_config(YEARLY)
    ));
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.api.upsert(tagged("s-running", "team-a"));
    service.wait_log("event detected", 1, WAIT).await;
    let (code, out) = env.cli(&["preview", "--digest", "team-a"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sink `hook` (webhook), digest"), "{out}");
    assert!(out.contains("s-running"), "{out}");
    assert!(!out.contains("preview-token-123"), "{out}");
    let (code, out) = env.cli(&["preview", "--digest", "nope"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("HTTP 404") && out.contains("no digest named `nope`"),
        "{out}"
    );
    assert!(
        digests_received(&env, "team-a").is_empty(),
        "a preview sends nothing"
    );
    let (clean, log) = service.stop().await;
    assert!(clean, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_keys_of_bad_digests() {
    let mut env = Env::start("").await;
    env.set_extra(
        r#"
[[digests]]
name = "bad"
sinks = ["hook", "nowhere"]
schedule = "0 9 * *"
timezone = "Europe/Atlantis"
"#,
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("digests[0].schedule"), "{out}");
    assert!(out.contains("digests[0].timezone"), "{out}");
    assert!(
        out.contains("digests[0].sinks: unknown sink `nowhere`"),
        "{out}"
    );

    // A template that does not exist, and one that breaks its payload.
    let dir = env.dir.path().join("templates");
    std::fs::create_dir_all(dir.join("slack")).expect("dir");
    std::fs::write(dir.join("slack/broken.hbs"), "{\"text\": {{created.count}}").expect("write");
    env.set_extra(&format!(
        r#"
[templates]
dir = "{}"

[[digests]]
name = "missing"
sinks = ["hook"]
schedule = "0 9 * * mon-fri"
template = "nothing_here"

[[digests]]
name = "broken"
sinks = ["slack"]
schedule = "0 9 * * mon-fri"
template = "broken"
"#,
        dir.display()
    ));
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("digests[0].template: no template `webhook/nothing_here`"),
        "{out}"
    );
    assert!(out.contains("digests[1].template"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_digest_templates_fit_every_destination() {
    // The built-in digest templates render the sample digest (full lists, hostile values)
    // within each destination's limits: `check` reports nothing.
    let mut env = Env::start("").await;
    env.set_extra(
        r#"
[sinks.teams]
type = "teams"
url = "http://127.0.0.1:9/teams"

[sinks.discord]
type = "discord"
url = "http://127.0.0.1:9/discord"

[[digests]]
name = "everywhere"
sinks = ["hook", "slack", "teams", "discord"]
schedule = "0 9 * * mon-fri"
timezone = "America/New_York"
"#,
    );
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn the_default_digest_payloads_meet_teams_schema_and_discords_limits() {
    use devin_notify::render::{discord_limits, slack_limits, teams_message, Templates};
    let templates = Templates::built_in();
    let (schemas, index) = crate::teams::adaptive_card_schema();
    let full = devin_notify::digest::sample();
    let quiet = devin_notify::digest::compute(devin_notify::digest::Inputs {
        name: "quiet",
        period: devin_notify::digest::Period {
            start_ms: 0,
            end_ms: MINUTE,
        },
        now_ms: MINUTE,
        timezone: &jiff::tz::TimeZone::UTC,
        records: &[],
        sessions: &Default::default(),
        waiting: &[],
        when: &Default::default(),
    });
    assert!(quiet.quiet);
    for digest in [&full, &quiet] {
        let ctx = digest.context("sink");
        let card = templates
            .render_named("teams", "teams/digest", &ctx)
            .expect("teams renders");
        let message = teams_message(serde_json::from_str(&card).expect("JSON"));
        if let Err(e) = schemas.validate(&message, index) {
            panic!("{e:#}\n{message:#}");
        }
        let discord: Value = serde_json::from_str(
            &templates
                .render_named("discord", "discord/digest", &ctx)
                .expect("discord renders"),
        )
        .expect("JSON");
        assert_eq!(
            discord_limits(&discord),
            Vec::<String>::new(),
            "{discord:#}"
        );
        let slack: Value = serde_json::from_str(
            &templates
                .render_named("slack", "slack/digest", &ctx)
                .expect("slack renders"),
        )
        .expect("JSON");
        assert_eq!(slack_limits(&slack), Vec::<String>::new(), "{slack:#}");
        // Hostile values stay data: no mention or link injected.
        let text = slack.to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
        let webhook: Value = serde_json::from_str(
            &templates
                .render_named("webhook", "webhook/digest", &ctx)
                .expect("webhook renders"),
        )
        .expect("JSON");
        assert_eq!(
            webhook,
            digest.webhook_body(),
            "the same data as the default body"
        );
    }
}

/// `n` records of a session created, seen at `at_ms`.
fn records(n: usize, at_ms: u64) -> Vec<devin_notify::digest::Activity> {
    (0..n)
        .map(|i| devin_notify::digest::Activity {
            at_ms: at_ms + i as u64,
            kind: devin_notify::digest::ActivityKind::Created,
            session_id: format!("s{i}"),
            created_at: 1,
            title: Some(format!("Session {i}")),
            url: format!("https://app.devin.ai/sessions/s{i}"),
            tags: vec!["t".into()],
            pr_url: None,
            acus: 0.0,
        })
        .collect()
}

async fn history_older_than_the_retention_is_pruned_in_bounded_steps(backend: Backend) {
    use devin_notify::store::activity::PRUNE_BATCH;
    let mut env = Env::start_on(backend, "").await;
    env.tweak("[store]\n", "[store]\nhistory_retention = \"1d\"\n");
    let store = env.store_unlocked().await;
    let now = now_ms();
    let old = now - 3 * 24 * 60 * MINUTE;
    let commit = devin_notify::store::Commit {
        activity: [records(2 * PRUNE_BATCH + 7, old), records(3, now - MINUTE)].concat(),
        ..Default::default()
    };
    store.commit(&commit).await.expect("commit");
    assert_eq!(
        store.activity(0, now).await.expect("read").len(),
        2 * PRUNE_BATCH + 10
    );
    // (start, end]: the bounds of a period.
    assert_eq!(store.activity(old, old + 2).await.expect("read").len(), 2);
    // One step deletes at most a batch, oldest first.
    let before = now - 24 * 60 * MINUTE;
    assert_eq!(
        store
            .prune_activity(before, PRUNE_BATCH)
            .await
            .expect("prune"),
        PRUNE_BATCH
    );
    let left = store.activity(0, now).await.expect("read");
    assert_eq!(left.len(), PRUNE_BATCH + 10);
    assert_eq!(
        left[0].at_ms,
        old + PRUNE_BATCH as u64,
        "the oldest went first"
    );
    // The background prune (after each poll) finishes the job in a few steps; recent
    // history stays.
    digests::prune(&store, &env.active()).await;
    let left = store.activity(0, now).await.expect("read");
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|r| r.at_ms > before));
    assert_eq!(
        store
            .prune_activity(before, PRUNE_BATCH)
            .await
            .expect("prune"),
        0
    );
}

const HOUR: u64 = 60 * MINUTE;

/// A listed session that has consumed `acus` ACUs, with a title.
fn consuming(id: &str, acus: f64, title: &str) -> devin_notify::model::Session {
    let mut s = devin_notify::model::Session::new(id, "running");
    s.acus_consumed = acus;
    s.title = Some(title.into());
    s.url = format!("https://app.devin.ai/sessions/{id}");
    s.tags = vec!["team-a".into()];
    s.created_at = 1;
    s
}

/// The `acus` record of a session going from `from` to `to` ACUs, seen at `at_ms`.
fn acus_change(id: &str, from: f64, to: f64, at_ms: u64) -> devin_notify::digest::Activity {
    devin_notify::digest::acus_activity(
        Some(&consuming(id, from, "Before")),
        &consuming(id, to, "After"),
        at_ms,
    )
    .expect("ACUs consumed")
}

fn acus_of(records: &[devin_notify::digest::Activity]) -> Vec<(String, u64, f64)> {
    records
        .iter()
        .filter(|r| r.kind == devin_notify::digest::ActivityKind::Acus)
        .map(|r| (r.session_id.clone(), r.at_ms, r.acus))
        .collect()
}

async fn acu_changes_are_one_record_per_session_and_hour(backend: Backend) {
    use devin_notify::digest::acus_bucket;
    use devin_notify::store::Commit;
    let mut env = Env::start_on(backend, "").await;
    env.tweak("[store]\n", "[store]\nhistory_retention = \"1d\"\n");
    let store = env.store_unlocked().await;
    let now = now_ms();
    // Two hours ending three hours ago: (h - 1h, h] and (h, h + 1h].
    let h = acus_bucket(now) - 3 * HOUR;
    // Twelve changes of session a within the first hour, one commit each: some with another
    // record (the whole commit's path), some with ACUs alone (the history's path), one with
    // two changes of a (a session listed twice in one page).
    for i in 0..12u64 {
        let at = h - HOUR + 1 + i * 5 * MINUTE;
        let from = i as f64 * 0.25;
        let mut commit = Commit {
            activity: vec![acus_change("a", from, from + 0.25, at)],
            ..Default::default()
        };
        if i % 3 == 0 {
            commit.activity.extend(records(1, at));
        }
        if i == 11 {
            commit.activity.push(acus_change("a", 3.0, 3.5, at + 1));
            commit.activity.push(acus_change("b", 0.0, 1.0, at));
        }
        store.commit(&commit).await.expect("commit");
    }
    let first = store.activity(0, now).await.expect("read");
    assert_eq!(
        acus_of(&first),
        [("a".to_owned(), h, 3.5), ("b".to_owned(), h, 1.0)],
        "one record per session and hour, with the sum: {first:?}"
    );
    assert_eq!(first.len() - 2, 4, "the other records are kept apart");
    let a = first.iter().find(|r| r.session_id == "a" && r.acus > 0.0);
    assert_eq!(a.and_then(|r| r.title.as_deref()), Some("After"));
    // A change in the next hour: a second record.
    let commit = Commit {
        activity: vec![acus_change("a", 3.5, 4.0, h + 1)],
        ..Default::default()
    };
    store.commit(&commit).await.expect("commit");
    let both = acus_of(&store.activity(0, now).await.expect("read"));
    assert_eq!(
        both,
        [
            ("a".to_owned(), h, 3.5),
            ("b".to_owned(), h, 1.0),
            ("a".to_owned(), h + HOUR, 0.5),
        ]
    );
    // Read by period: (h - 1h, h] holds the first hour, (h, h + 1h] the second.
    let period = store.activity(h - HOUR, h).await.expect("read");
    assert_eq!(acus_of(&period).len(), 2, "{period:?}");
    assert_eq!(period.len(), 6, "with the other records: {period:?}");
    assert_eq!(
        acus_of(&store.activity(h, h + HOUR).await.expect("read")),
        [("a".to_owned(), h + HOUR, 0.5)]
    );
    // Pruning by time drops the first hour's records, the ACU ones included.
    let pruned = store
        .prune_activity(h + 1, devin_notify::store::activity::PRUNE_BATCH)
        .await
        .expect("prune");
    assert_eq!(pruned, 6);
    let left = store.activity(0, now).await.expect("read");
    assert_eq!(
        acus_of(&left),
        [("a".to_owned(), h + HOUR, 0.5)],
        "{left:?}"
    );
    assert_eq!(left.len(), 1);
}

/// The measure of BENCHMARKS.md: `POLLS` polls 30 s apart of `SESSIONS` sessions whose ACUs
/// change at every poll, committed as the poller commits them (one page each).
async fn acu_history_grows_per_hour_not_per_poll(backend: Backend) {
    use devin_notify::store::Commit;
    const POLLS: u64 = 240;
    const SESSIONS: usize = 100;
    let env = Env::start_on(backend, "").await;
    let store = env.store_unlocked().await;
    let now = now_ms();
    // Two hours of polls starting half-way through an hour: three hours touched.
    let start = devin_notify::digest::acus_bucket(now) - 5 * HOUR + HOUR / 2;
    let mut written = 0;
    for poll in 0..POLLS {
        let at = start + poll * 30_000;
        let from = poll as f64 * 0.5;
        let commit = Commit {
            activity: (0..SESSIONS)
                .map(|i| acus_change(&format!("s{i}"), from, from + 0.5, at))
                .collect(),
            ..Default::default()
        };
        written += commit.activity.len();
        store.commit(&commit).await.expect("commit");
    }
    let stored = store.activity(0, now).await.expect("read");
    eprintln!(
        "{backend:?}: {POLLS} polls of {SESSIONS} changing sessions: {written} ACU changes, {} records stored",
        stored.len()
    );
    assert_eq!(
        written,
        POLLS as usize * SESSIONS,
        "one record per change before"
    );
    assert_eq!(stored.len(), 3 * SESSIONS, "one per session and hour now");
    let total: f64 = stored.iter().map(|r| r.acus).sum();
    assert_eq!(
        total,
        0.5 * (POLLS as usize * SESSIONS) as f64,
        "no ACU lost"
    );
}
