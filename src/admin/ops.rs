//! The operations on the store an admin runs (`dead-letters`, `sinks`, `deliveries`,
//! `events`) on an open store: by the commands, or by the admin API of a running service
//! ([`crate::api`]).

use super::view::{self, DeadLetterView, SinkView};
use crate::active::Active;
use crate::config::Config;
use crate::rules::Rule;
use crate::store::{DeadLetter, Store, StoreError};

/// Which dead letters a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Delivery ids (`msg_...`) or sequence numbers, as `dead-letters list` prints them.
    Ids(Vec<String>),
    /// Every dead letter of this sink.
    Sink(String),
}

/// A failure of an admin command on the store.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no dead letter with id {0}")]
    NoSuchDeadLetter(String),
    #[error("no sink named `{0}` in the config (sinks: {1})")]
    NoSuchSink(String, String),
}

impl AdminError {
    /// Whether the error is about something that does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            AdminError::NoSuchDeadLetter(_) | AdminError::NoSuchSink(..)
        )
    }
}

fn no_such_sink(config: &Config, name: &str) -> AdminError {
    AdminError::NoSuchSink(
        name.to_owned(),
        config.sinks.keys().cloned().collect::<Vec<_>>().join(", "),
    )
}

async fn select(store: &Store, which: &Selection) -> Result<Vec<(u64, DeadLetter)>, AdminError> {
    let all = store.dead_letters().await?;
    match which {
        Selection::All => Ok(all),
        Selection::Sink(sink) => Ok(all
            .into_iter()
            .filter(|(_, l)| l.delivery.sink == *sink)
            .collect()),
        Selection::Ids(ids) => ids
            .iter()
            .map(|id| {
                all.iter()
                    .find(|(seq, letter)| letter.delivery.id == *id || seq.to_string() == *id)
                    .cloned()
                    .ok_or_else(|| AdminError::NoSuchDeadLetter(id.clone()))
            })
            .collect(),
    }
}

pub(super) fn cell(text: &str, width: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > width {
        let mut s: String = one_line.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    } else {
        one_line
    }
}

/// `dead-letters list`: a table, oldest first.
pub async fn dead_letters_table(store: &Store, config: &Config) -> Result<String, AdminError> {
    Ok(dead_letters_text(
        &view::dead_letters(store, config, None).await?,
    ))
}

/// The table `dead-letters list` prints.
pub fn dead_letters_text(letters: &[DeadLetterView]) -> String {
    let mut out = format!(
        "{:<36} {:<14} {:<26} {:<24} {:>8}  {}\n",
        "ID", "SINK", "EVENT", "SESSION", "ATTEMPTS", "LAST ERROR"
    );
    for d in letters {
        out.push_str(&format!(
            "{:<36} {:<14} {:<26} {:<24} {:>8}  {}\n",
            d.id,
            cell(&d.sink, 14),
            d.event_type,
            cell(&d.session_id, 24),
            d.attempts,
            cell(&d.reason, 120)
        ));
    }
    out.push_str(&format!("{} dead letter(s)", letters.len()));
    out
}

/// A digest kept with its dead letter (its webhook body), rendered again for its sink with the
/// digest's configuration and templates now.
fn rerender_digest(
    active: &Active,
    d: &crate::store::Delivery,
    body: &serde_json::Value,
) -> Result<String, String> {
    let digest: crate::digest::Digest = serde_json::from_value(body["data"].clone())
        .map_err(|e| format!("the stored digest is unreadable: {e}"))?;
    let config = active
        .config
        .digests
        .iter()
        .find(|c| c.name == digest.name)
        .ok_or_else(|| format!("digest `{}` is not configured", digest.name))?;
    active
        .digest_payload(config, &d.sink, &digest, &d.event_id)
        .map_err(|e| e.to_string())
}

/// `dead-letters retry`: puts deliveries back in the outbox at their place in the order. A
/// delivery whose template had failed is rendered again with the current templates; if it still
/// fails, it stays dead with the new reason. Returns (requeued, still dead).
pub async fn retry_dead_letters(
    store: &Store,
    active: &Active,
    which: &Selection,
) -> Result<(usize, Vec<String>), AdminError> {
    let mut requeued = 0;
    let mut failed = Vec::new();
    for (seq, mut letter) in select(store, which).await? {
        if letter.delivery.body.is_empty() {
            match rerender(active, &letter) {
                Ok(body) => letter.delivery.body = body,
                Err(reason) => {
                    failed.push(format!("{}: {reason}", letter.delivery.id));
                    letter.reason = reason;
                    store.update_dead(seq, &letter).await?;
                    continue;
                }
            }
        }
        store.requeue(seq, &letter.delivery).await?;
        requeued += 1;
    }
    Ok((requeued, failed))
}

fn rerender(active: &Active, letter: &DeadLetter) -> Result<String, String> {
    let d = &letter.delivery;
    let body = letter
        .event
        .as_ref()
        .ok_or("the dead letter holds no event to render")?;
    if !active.config.sinks.contains_key(&d.sink) {
        return Err(format!("sink `{}` is not configured", d.sink));
    }
    if d.event_type == crate::poller::digests::DIGEST_EVENT {
        return rerender_digest(active, d, body);
    }
    let event =
        crate::event::Event::from_webhook_body(body).ok_or("the stored event is unreadable")?;
    // The rule as configured now; a rule since removed renders with the sink's defaults.
    let fallback = Rule {
        name: d.rule.clone(),
        events: Vec::new(),
        sinks: Vec::new(),
        template: None,
        when: Default::default(),
        remind_after: None,
        repeat_every: None,
        mute_during: Vec::new(),
        active_during: Vec::new(),
        collapse_held: false,
    };
    let rule = active
        .config
        .rules
        .iter()
        .find(|r| r.name == d.rule)
        .unwrap_or(&fallback);
    active
        .payload(rule, &d.sink, &event)
        .map_err(|e| e.to_string())
}

/// `dead-letters purge`: deletes dead letters. Returns how many.
pub async fn purge_dead_letters(store: &Store, which: &Selection) -> Result<usize, AdminError> {
    let selected = select(store, which).await?;
    for (seq, _) in &selected {
        store.purge_dead(*seq).await?;
    }
    Ok(selected.len())
}

/// `sinks list`: each configured sink's state and queue depth.
pub async fn sinks_table(store: &Store, config: &Config) -> Result<String, AdminError> {
    Ok(sinks_text(&view::sinks(store, config).await?))
}

/// The table `sinks list` prints.
pub fn sinks_text(sinks: &[SinkView]) -> String {
    let mut out = format!(
        "{:<20} {:<9} {:>7} {:>5}  {}\n",
        "SINK", "TYPE", "QUEUED", "DEAD", "STATE"
    );
    for s in sinks {
        let state = match &s.paused_reason {
            Some(reason) => format!("paused: {}", cell(reason, 120)),
            None => s.state.clone(),
        };
        out.push_str(&format!(
            "{:<20} {:<9} {:>7} {:>5}  {state}\n",
            s.name, s.kind, s.queued, s.dead_letters
        ));
    }
    out.trim_end().to_owned()
}

/// `sinks resume NAME`: resumes a paused sink. Returns whether it was paused.
pub async fn resume_sink(store: &Store, config: &Config, name: &str) -> Result<bool, AdminError> {
    if !config.sinks.contains_key(name) {
        return Err(no_such_sink(config, name));
    }
    Ok(store.resume_sink(name).await?)
}

/// Retries every dead letter of a configured sink. Returns (requeued, still dead).
pub async fn retry_sink_dead_letters(
    store: &Store,
    active: &Active,
    name: &str,
) -> Result<(usize, Vec<String>), AdminError> {
    if !active.config.sinks.contains_key(name) {
        return Err(no_such_sink(&active.config, name));
    }
    retry_dead_letters(store, active, &Selection::Sink(name.to_owned())).await
}

/// What `sinks resume` prints.
pub fn resume_text(name: &str, was_paused: bool) -> String {
    if was_paused {
        format!("sink `{name}` resumed")
    } else {
        format!("sink `{name}` was not paused")
    }
}

/// What `dead-letters retry` prints.
pub fn retry_text(requeued: usize, still_dead: &[String]) -> String {
    let mut out = format!("{requeued} delivery(ies) back in the outbox");
    for f in still_dead {
        out.push_str(&format!("\nstill dead: {f}"));
    }
    out
}

/// What `dead-letters purge` prints.
pub fn purge_text(purged: usize) -> String {
    format!("{purged} dead letter(s) purged")
}

/// An admin operation on the store, run locally or through a running service's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    DeadLetters,
    RetryDead(Selection),
    PurgeDead(Selection),
    Sinks,
    Resume(String),
    /// `deliveries`: the delivery log.
    Deliveries(super::logs::LogQuery),
    /// `events`: the last N entries of the event log.
    Events(usize),
}

/// Runs an operation on an open store.
pub async fn execute(store: &Store, active: &Active, op: &AdminOp) -> Result<String, AdminError> {
    match op {
        AdminOp::DeadLetters => dead_letters_table(store, &active.config).await,
        AdminOp::RetryDead(which) => retry_dead_letters(store, active, which)
            .await
            .map(|(n, failed)| retry_text(n, &failed)),
        AdminOp::PurgeDead(which) => purge_dead_letters(store, which).await.map(purge_text),
        AdminOp::Sinks => sinks_table(store, &active.config).await,
        AdminOp::Resume(name) => resume_sink(store, &active.config, name)
            .await
            .map(|was| resume_text(name, was)),
        AdminOp::Deliveries(query) => {
            let entries = super::logs::deliveries(store, &active.config, query).await?;
            Ok(super::logs::deliveries_text(&entries, store.history()))
        }
        AdminOp::Events(limit) => {
            let entries = store.recent_events(*limit, None).await?;
            Ok(super::logs::events_text(&entries, store.history()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::{Commit, DeadLetter, Delivery};

    /// A digest whose rendering failed is kept with its data; `dead-letters retry` renders it
    /// with the templates in force, never sending its raw data to a chat.
    #[tokio::test]
    async fn a_dead_digest_is_rendered_again_on_retry() {
        let config = Config::from_toml(
            r#"
            [devin]
            token = "cog_x"
            [sinks.chat]
            type = "slack"
            url = "https://hooks.slack.com/services/T0/B0/x"
            [[digests]]
            name = "daily"
            sinks = ["chat"]
            schedule = "0 9 * * *"
            timezone = "Europe/Paris"
            "#,
            |_| None,
        )
        .expect("config");
        let active = Active::from_config(config).unwrap_or_else(|p| panic!("{p:?}"));
        let mut digest = crate::digest::sample();
        digest.name = "daily".into();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("open");
        let letter = DeadLetter {
            delivery: Delivery {
                id: "msg_digest".into(),
                sink: "chat".into(),
                rule: "digest:daily".into(),
                session_id: "digest/daily/1".into(),
                session_title: Some("digest daily".into()),
                event_id: "dgst_1".into(),
                event_type: crate::poller::digests::DIGEST_EVENT.into(),
                body: String::new(),
                detected_at_ms: 1,
                attempts: 3,
                next_attempt_ms: 0,
                last_error: None,
                creator: None,
            },
            reason: "template failed".into(),
            status: None,
            response_body: String::new(),
            failed_at_ms: 1,
            event: Some(digest.webhook_body()),
        };
        let commit = Commit {
            dead: vec![letter],
            ..Commit::default()
        };
        store.commit(&commit).await.expect("dead letter");
        let (requeued, failed) = retry_dead_letters(&store, &active, &Selection::All)
            .await
            .expect("retry");
        assert_eq!((requeued, failed.len()), (1, 0), "{failed:?}");
        let queued = store.outbox().await.expect("outbox");
        let body: serde_json::Value =
            serde_json::from_str(&queued[0].1.body).expect("a JSON payload");
        assert!(body["blocks"].is_array(), "a Slack message: {body}");
        assert_ne!(body["type"], "digest", "not the raw data: {body}");
    }
}
