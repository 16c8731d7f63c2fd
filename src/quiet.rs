//! Quiet hours: releasing held deliveries. A delivery a rule matched while muted
//! ([`crate::active::Active::holds`]) waits in the store's held set ([`crate::store::held`]);
//! [`release_due`] moves those of rules no longer muted into the outbox, in detection order,
//! in one store commit (the move and the removal from the held set at once): never dropped,
//! never queued twice. With `collapse_held`, the held deliveries of one (rule, sink) go out as
//! one summary (one per person for a `to = "creator"` sink), whose id is derived from the held
//! ids (the same after a restart). Held
//! deliveries of a rule that no longer exists are released one by one, with a log line.
//!
//! [`hold_loop`] runs on the leader: it releases at start, at the next change of any interval
//! a rule names ([`crate::intervals::next_change`]), at least every poll interval, after each
//! poll, and after each reload.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{watch, Notify};

use crate::active::Active;
use crate::event::stable_id;
use crate::render::summary::{HeldItem, SUMMARY_TYPE};
use crate::store::{Commit, Delivery, Held, Store, StoreError};

/// Held deliveries released together: (rule, sink, creator).
type Group = (String, String, Option<String>);

/// What one release did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Held deliveries moved to the outbox (each alone, or within a summary).
    pub held: usize,
    /// Deliveries queued (a summary counts once).
    pub queued: usize,
    /// Held deliveries still held (their rule is still muted).
    pub still_held: usize,
}

/// Releases every held delivery whose rule is not muted at `now` (or no longer exists), and
/// sets the held-deliveries gauge. The caller flushes and wakes the delivery loop when
/// something was queued.
pub async fn release_due(
    store: &Store,
    active: &Active,
    now: Timestamp,
) -> Result<Released, StoreError> {
    let held = store.held().await?;
    let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
    // By (rule, sink, creator): a direct-message sink (`to = "creator"`) sums up each
    // person's held messages for that person alone.
    let mut groups: BTreeMap<Group, Vec<(u64, Held)>> = BTreeMap::new();
    for (seq, h) in held {
        let d = &h.delivery;
        let key = (d.rule.clone(), d.sink.clone(), d.creator.clone());
        groups.entry(key).or_default().push((seq, h));
    }
    let mut out = Released::default();
    let mut still: BTreeMap<String, usize> = BTreeMap::new();
    // (the first held number, the delivery): queued in detection order.
    let mut queue: Vec<(u64, Delivery)> = Vec::new();
    let mut unhold = Vec::new();
    for ((rule_name, sink, _), items) in groups {
        let rule = active.config.rules.iter().find(|r| r.name == rule_name);
        match rule {
            Some(rule) if active.holds(rule, now_ms) => {
                *still.entry(sink).or_default() += items.len();
                continue;
            }
            None => {
                tracing::warn!(rule = %rule_name, sink = %sink, held = items.len(), "the rule of these held deliveries no longer exists: releasing them one by one")
            }
            Some(_) => {}
        }
        out.held += items.len();
        unhold.extend(items.iter().map(|(seq, _)| *seq));
        let collapse = rule.is_some_and(|r| r.collapse_held);
        match collapse.then(|| summary(active, &rule_name, &sink, &items, now_ms)) {
            Some(Ok(d)) => queue.push((items[0].0, d)),
            Some(Err(e)) => {
                tracing::error!(rule = %rule_name, sink = %sink, error = %e, "cannot render the summary of held deliveries: releasing them one by one");
                queue.extend(items.into_iter().map(|(seq, h)| (seq, h.delivery)));
            }
            None => queue.extend(items.into_iter().map(|(seq, h)| (seq, h.delivery))),
        }
    }
    set_gauge(active, &still);
    out.still_held = still.values().sum();
    if unhold.is_empty() {
        return Ok(out);
    }
    queue.sort_by_key(|(seq, _)| *seq);
    out.queued = queue.len();
    let commit = Commit {
        deliveries: queue.into_iter().map(|(_, d)| d).collect(),
        unhold,
        ..Commit::default()
    };
    store.commit(&commit).await?;
    tracing::info!(
        released = out.held,
        queued = out.queued,
        still_held = out.still_held,
        "held deliveries released"
    );
    Ok(out)
}

/// One summary delivery for the held deliveries of a (rule, sink), its id derived from theirs.
fn summary(
    active: &Active,
    rule: &str,
    sink: &str,
    items: &[(u64, Held)],
    now_ms: u64,
) -> Result<Delivery, crate::render::RenderError> {
    let ids: Vec<&str> = items.iter().map(|(_, h)| h.delivery.id.as_str()).collect();
    let mut parts = vec![SUMMARY_TYPE, rule, sink];
    parts.extend(&ids);
    let id = stable_id("msg_", &parts);
    let shown: Vec<HeldItem> = items.iter().map(|(_, h)| item(h)).collect();
    let body = active.summary_payload(rule, sink, &shown, &id, now_ms)?;
    let first = &items[0].1.delivery;
    // Its own lane: it waits on no session's deliveries (and a Slack app sink posts it in the
    // channel, not in an earlier summary's thread).
    let lane = format!("held/{rule}/{id}");
    Ok(Delivery {
        event_id: stable_id("evt_", &parts),
        id,
        sink: sink.to_owned(),
        rule: rule.to_owned(),
        session_id: lane,
        session_title: Some(crate::render::summary::headline(items.len())),
        event_type: SUMMARY_TYPE.to_owned(),
        body,
        detected_at_ms: first.detected_at_ms,
        attempts: 0,
        next_attempt_ms: 0,
        last_error: None,
        // Held items are summed up per creator ([`Group`]): a direct-message sink sends the
        // summary to the one person all of them are for.
        creator: first.creator.clone(),
    })
}

fn item(h: &Held) -> HeldItem {
    let d = &h.delivery;
    HeldItem {
        delivery_id: d.id.clone(),
        event_id: d.event_id.clone(),
        event_type: d.event_type.clone(),
        session_id: d.session_id.clone(),
        title: d
            .session_title
            .clone()
            .unwrap_or_else(|| d.session_id.clone()),
        headline: h.headline.clone(),
        link: h.link.clone(),
        detected_at_ms: d.detected_at_ms,
    }
}

/// `devin_notify_held_deliveries{sink}`: every configured sink, and any other still holding.
fn set_gauge(active: &Active, still: &BTreeMap<String, usize>) {
    for sink in active.config.sinks.keys() {
        let n = still.get(sink).copied().unwrap_or(0);
        crate::metrics::HELD.set(&[("sink", sink)], n as f64);
    }
    for (sink, n) in still {
        if !active.config.sinks.contains_key(sink) {
            crate::metrics::HELD.set(&[("sink", sink)], *n as f64);
        }
    }
}

/// When whether some rule holds may change next, after `now`: the earliest next change of the
/// intervals the rules name.
pub fn next_change(active: &Active, now: Timestamp) -> Option<Timestamp> {
    let names = active
        .config
        .rules
        .iter()
        .flat_map(|r| r.mute_during.iter().chain(&r.active_during))
        // Each interval once, however many rules name it.
        .collect::<std::collections::BTreeSet<_>>();
    crate::intervals::next_change(names, &active.intervals, now)
}

/// Releases, makes durable, and wakes the delivery loop when something was queued.
pub async fn release_and_wake(
    store: &Store,
    active: &Active,
    wake: &Notify,
) -> Result<Released, StoreError> {
    let released = release_due(store, active, Timestamp::now()).await?;
    if released.queued > 0 {
        store.flush().await?;
        wake.notify_one();
    }
    Ok(released)
}

/// The leader's release loop (see the module's documentation), until `shutdown`.
pub async fn hold_loop(
    store: Store,
    mut active_rx: watch::Receiver<Arc<Active>>,
    wake: Arc<Notify>,
    recheck: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let active = active_rx.borrow_and_update().clone();
        if let Err(e) = release_and_wake(&store, &active, &wake).await {
            tracing::error!(error = %e, "cannot release held deliveries; trying again");
        }
        let now = Timestamp::now();
        let poll = active
            .config
            .devin
            .poll_interval
            .max(Duration::from_millis(100));
        let until_change = next_change(&active, now)
            .and_then(|t| t.duration_since(now).try_into().ok())
            .map(|d: Duration| d + Duration::from_millis(5));
        let delay = until_change.map_or(poll, |d| d.min(poll));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = recheck.notified() => {}
            changed = active_rx.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::delivery_id;
    use crate::render::{discord_limits, slack_limits, TEAMS_MAX_BYTES};

    const SINKS: &str = r#"
        [sinks.hook]
        type = "webhook"
        url = "https://hooks.example.com/x"
        [sinks.chat]
        type = "slack"
        url = "https://hooks.slack.com/services/x"
        [sinks.cards]
        type = "teams"
        url = "https://teams.example.com/x"
        [sinks.embeds]
        type = "discord"
        url = "https://discord.com/api/webhooks/1/x"
        [time_intervals.always]
        timezone = "Europe/Paris"
        [time_intervals.never]
        months = ["february"]
        days_of_month = [30]
    "#;

    fn active(rules: &str) -> Active {
        let config = Config::from_toml(&format!("{SINKS}\n{rules}"), |_| None).expect("config");
        Active::from_config(config).unwrap_or_else(|p| panic!("{p:?}"))
    }

    fn rule(name: &str, mute: &str, collapse: bool) -> String {
        format!(
            "[[rules]]\nname = \"{name}\"\nevents = [\"session.created\"]\nsinks = [\"hook\", \"chat\", \"cards\", \"embeds\"]\nmute_during = [\"{mute}\"]\ncollapse_held = {collapse}\n"
        )
    }

    fn held(rule: &str, sink: &str, n: u32) -> Held {
        let event_id = format!("evt_{n}");
        Held {
            delivery: Delivery {
                id: delivery_id(&event_id, rule, sink),
                sink: sink.into(),
                rule: rule.into(),
                session_id: format!("devin-{n}"),
                session_title: Some(format!("Session *{n}* <@everyone> [x](https://evil)")),
                event_id,
                event_type: "session.created".into(),
                body: format!("{{\"n\":{n}}}"),
                detected_at_ms: 1_764_460_800_000 + u64::from(n),
                attempts: 0,
                next_attempt_ms: 0,
                last_error: None,
                creator: None,
            },
            headline: Some("New Devin session".into()),
            link: Some(format!("https://app.devin.ai/sessions/{n}")),
            held_at_ms: 0,
        }
    }

    async fn store_holding(items: Vec<Held>) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let commit = Commit {
            held: items,
            ..Commit::default()
        };
        store.commit(&commit).await.expect("hold");
        store.flush().await.expect("flush");
        (dir, store)
    }

    #[tokio::test]
    async fn muted_rules_keep_holding_unmuted_ones_release_in_order() {
        let active = active(&format!(
            "{}{}",
            rule("quiet", "always", false),
            rule("loud", "never", false)
        ));
        let items = vec![
            held("quiet", "hook", 0),
            held("loud", "hook", 1),
            held("loud", "hook", 2),
            held("quiet", "hook", 3),
        ];
        let (_dir, store) = store_holding(items).await;
        let released = release_due(&store, &active, Timestamp::now())
            .await
            .expect("release");
        assert_eq!(
            released,
            Released {
                held: 2,
                queued: 2,
                still_held: 2
            }
        );
        let queued: Vec<Delivery> = store
            .outbox()
            .await
            .expect("outbox")
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let ids: Vec<&str> = queued.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                delivery_id("evt_1", "loud", "hook"),
                delivery_id("evt_2", "loud", "hook")
            ]
        );
        assert_eq!(
            queued[0].body, "{\"n\":1}",
            "the payload rendered when it was held"
        );
        let again = release_due(&store, &active, Timestamp::now())
            .await
            .expect("release");
        assert_eq!(again.queued, 0, "nothing twice");
        assert_eq!(store.outbox().await.expect("outbox").len(), 2);
    }

    #[tokio::test]
    async fn a_removed_rule_releases_its_held_deliveries() {
        let active = active(&rule("other", "always", false));
        let (_dir, store) =
            store_holding(vec![held("gone", "hook", 0), held("gone", "hook", 1)]).await;
        let released = release_due(&store, &active, Timestamp::now())
            .await
            .expect("release");
        assert_eq!(released.queued, 2);
        assert!(store.held().await.expect("held").is_empty());
    }

    #[tokio::test]
    async fn collapse_held_queues_one_summary_per_rule_and_sink_with_a_stable_id() {
        let active = active(&rule("digest", "never", true));
        let sinks = ["hook", "chat", "cards", "embeds"];
        let mut items = Vec::new();
        for n in 0..30 {
            for sink in sinks {
                items.push(held("digest", sink, n));
            }
        }
        let (_dir, store) = store_holding(items.clone()).await;
        let released = release_due(&store, &active, Timestamp::now())
            .await
            .expect("release");
        assert_eq!(
            released,
            Released {
                held: 120,
                queued: 4,
                still_held: 0
            }
        );
        let queued: Vec<Delivery> = store
            .outbox()
            .await
            .expect("outbox")
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        // The same held deliveries give the same summary id (a release after a restart).
        let (_dir2, again) = store_holding(items).await;
        release_due(&again, &active, Timestamp::now())
            .await
            .expect("release");
        let ids: Vec<String> = again
            .outbox()
            .await
            .expect("outbox")
            .into_iter()
            .map(|(_, d)| d.id)
            .collect();
        assert_eq!(ids, queued.iter().map(|d| d.id.clone()).collect::<Vec<_>>());
        for d in &queued {
            assert_eq!(d.event_type, SUMMARY_TYPE);
            let body: serde_json::Value = serde_json::from_str(&d.body).expect("JSON");
            let text = d.body.as_str();
            match d.sink.as_str() {
                "hook" => {
                    assert_eq!(body["type"], SUMMARY_TYPE);
                    assert_eq!(body["data"]["count"], 30);
                    assert_eq!(body["data"]["held"].as_array().map(Vec::len), Some(30));
                    assert_eq!(
                        body["data"]["held"][29]["link"],
                        "https://app.devin.ai/sessions/29"
                    );
                }
                "chat" => {
                    assert!(slack_limits(&body).is_empty(), "{:?}", slack_limits(&body));
                    assert!(text.contains("<https://app.devin.ai/sessions/0|"), "{text}");
                    assert!(!text.contains("<@everyone>"), "escaped: {text}");
                    assert!(text.contains("10 more"), "{text}");
                }
                "embeds" => {
                    assert!(
                        discord_limits(&body).is_empty(),
                        "{:?}",
                        discord_limits(&body)
                    );
                    assert!(
                        text.contains("(https://app.devin.ai/sessions/19)"),
                        "{text}"
                    );
                    assert!(!text.contains("[x](https://evil)"), "escaped: {text}");
                }
                "cards" => {
                    assert!(text.len() <= TEAMS_MAX_BYTES);
                    let card = &body["attachments"][0]["content"];
                    assert_eq!(card["version"], "1.4");
                    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
                    assert!(text.contains("(https://app.devin.ai/sessions/0)"), "{text}");
                }
                other => panic!("unexpected sink {other}"),
            }
        }
    }

    /// A direct-message sink (`to = "creator"`): each person gets a summary of their own held
    /// messages, never someone else's.
    #[tokio::test]
    async fn collapse_held_sums_up_per_creator() {
        let active = active(&rule("digest", "never", true));
        let mut items = Vec::new();
        for (n, who) in [
            (0, "alice"),
            (1, "bob"),
            (2, "alice"),
            (3, "bob"),
            (4, "alice"),
        ] {
            let mut h = held("digest", "chat", n);
            h.delivery.creator = Some(who.to_owned());
            items.push(h);
        }
        let (_dir, store) = store_holding(items).await;
        let released = release_due(&store, &active, Timestamp::now())
            .await
            .expect("release");
        assert_eq!((released.held, released.queued), (5, 2));
        let queued = store.outbox().await.expect("outbox");
        let mut per_person: Vec<(Option<String>, usize)> = queued
            .iter()
            .map(|(_, d)| {
                let body: serde_json::Value = serde_json::from_str(&d.body).expect("JSON");
                let text = body.to_string();
                (
                    d.creator.clone(),
                    (0..5)
                        .filter(|n| text.contains(&format!("sessions/{n}")))
                        .count(),
                )
            })
            .collect();
        per_person.sort();
        assert_eq!(
            per_person,
            [(Some("alice".to_owned()), 3), (Some("bob".to_owned()), 2)]
        );
    }

    #[test]
    fn next_change_is_the_earliest_of_the_rules_intervals() {
        let active = active(&rule("quiet", "always", false));
        assert_eq!(next_change(&active, Timestamp::now()), None, "always on");
        let config = Config::from_toml(
            &format!("{SINKS}\n[time_intervals.nights]\ntimes = [{{ from = \"19:00\", to = \"08:00\" }}]\n{}", rule("n", "nights", false)),
            |_| None,
        )
        .expect("config");
        let active = Active::from_config(config).expect("active");
        let noon: Timestamp = "2026-01-14T12:00:00Z".parse().expect("instant");
        assert_eq!(
            next_change(&active, noon),
            "2026-01-14T19:00:00Z".parse().ok()
        );
        assert!(
            !active.holds(&active.config.rules[0], 1_768_392_000_000),
            "noon"
        );
    }
}
