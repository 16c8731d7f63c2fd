//! What an admin sees of sinks and dead letters: the records the `sinks` and `dead-letters`
//! commands print and the admin API answers, with no secret in them (sink URLs as their host,
//! error texts scrubbed of every configured secret).

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, SinkConfig};
use crate::redact::{host_of, scrub};
use crate::store::{DeadLetter, Paused, Store, StoreError};

/// A sink as an admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkView {
    pub name: String,
    /// The sink type (`?` when the sink is no longer configured).
    #[serde(rename = "type")]
    pub kind: String,
    /// The host (and port) it sends to; never the URL.
    pub host: Option<String>,
    /// `active`, `paused` or `not configured`.
    pub state: String,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// Since when (RFC 3339).
    pub paused_since: Option<String>,
    pub queued: usize,
    pub dead_letters: usize,
}

/// A dead letter as an admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    /// `msg_...`: the delivery's `webhook-id`.
    pub id: String,
    /// Its place in the order.
    pub seq: u64,
    pub sink: String,
    pub rule: String,
    pub event_type: String,
    pub event_id: String,
    pub session_id: String,
    pub attempts: u32,
    /// The receiver's last HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why it was given up.
    pub reason: String,
    /// The start of the receiver's last answer.
    pub response_body: String,
    /// When the event was detected (RFC 3339).
    pub detected_at: String,
    /// When it was given up (RFC 3339).
    pub failed_at: String,
    /// The payload (JSON when it is JSON; null when it could not be rendered).
    pub payload: Value,
}

/// Unix ms as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Every secret of a configuration, and the parts of sink URLs after their host, for
/// [`scrub`]bing texts that come from receivers and errors.
pub fn secrets_of(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |s: &str| {
        if s.len() >= 6 {
            out.push(s.to_owned());
        }
    };
    for sink in config.sinks.values() {
        if let Some(url) = sink.url() {
            add(url.expose());
            let rest = url.expose().split_once("://").map_or("", |(_, r)| r);
            if let Some(pos) = rest.find(['/', '?', '#']) {
                // The path and query, the path's last segment (a Slack or Discord webhook's
                // key) and each query value (a signature, a token).
                let tail = &rest[pos..];
                add(tail);
                let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
                let values = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('=').map(|(_, v)| v));
                path.rsplit('/')
                    .take(1)
                    .chain(values)
                    .filter(|part| part.len() >= 8)
                    .for_each(&mut add);
            }
        }
        match sink {
            SinkConfig::Webhook(w) => {
                w.secret.iter().for_each(|s| add(s.expose()));
                w.headers.values().for_each(|v| add(v.expose()));
            }
            SinkConfig::SlackApp(a) => add(a.token.expose()),
            _ => {}
        }
    }
    for secret in [
        &config.devin.token,
        &config.store.url,
        &config.server.admin_token,
    ]
    .into_iter()
    .flatten()
    {
        add(secret.expose());
    }
    out
}

/// Each configured sink's state and queue, then the sinks no longer configured that still
/// have queued deliveries or dead letters.
pub async fn sinks(store: &Store, config: &Config) -> Result<Vec<SinkView>, StoreError> {
    let paused: HashMap<String, Paused> = store.paused_sinks().await?.into_iter().collect();
    let mut queued: HashMap<String, usize> = HashMap::new();
    for (_, delivery) in store.outbox().await? {
        *queued.entry(delivery.sink).or_default() += 1;
    }
    let mut dead: HashMap<String, usize> = HashMap::new();
    for (_, letter) in store.dead_letters().await? {
        *dead.entry(letter.delivery.sink).or_default() += 1;
    }
    let secrets = secrets_of(config);
    let mut out: Vec<SinkView> = config
        .sinks
        .iter()
        .map(|(name, sink)| {
            let p = paused.get(name);
            SinkView {
                name: name.clone(),
                kind: sink.kind().to_owned(),
                host: Some(match sink {
                    SinkConfig::SlackApp(a) => host_of(&a.api_base),
                    _ => sink.url().map_or_else(String::new, |u| host_of(u.expose())),
                }),
                state: if p.is_some() { "paused" } else { "active" }.to_owned(),
                paused_reason: p.map(|p| scrub(&p.reason, &secrets)),
                paused_since: p.map(|p| rfc3339(p.since_ms)),
                queued: queued.get(name).copied().unwrap_or(0),
                dead_letters: dead.get(name).copied().unwrap_or(0),
            }
        })
        .collect();
    let mut gone: Vec<&String> = queued
        .keys()
        .chain(dead.keys())
        .filter(|n| !config.sinks.contains_key(*n))
        .collect();
    gone.sort();
    gone.dedup();
    out.extend(gone.into_iter().map(|name| SinkView {
        name: name.clone(),
        kind: "?".into(),
        host: None,
        state: "not configured".into(),
        paused_reason: None,
        paused_since: None,
        queued: queued.get(name).copied().unwrap_or(0),
        dead_letters: dead.get(name).copied().unwrap_or(0),
    }));
    Ok(out)
}

/// A dead letter as an admin sees it; `secrets` are scrubbed from the texts that came from
/// the receiver or an error.
pub fn dead_letter(seq: u64, letter: &DeadLetter, secrets: &[String]) -> DeadLetterView {
    let d = &letter.delivery;
    let payload = if d.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&d.body).unwrap_or_else(|_| Value::String(d.body.clone()))
    };
    DeadLetterView {
        id: d.id.clone(),
        seq,
        sink: d.sink.clone(),
        rule: d.rule.clone(),
        event_type: d.event_type.clone(),
        event_id: d.event_id.clone(),
        session_id: d.session_id.clone(),
        attempts: d.attempts,
        status: letter.status,
        reason: scrub(&letter.reason, secrets),
        response_body: scrub(&letter.response_body, secrets),
        detected_at: rfc3339(d.detected_at_ms),
        failed_at: rfc3339(letter.failed_at_ms),
        payload,
    }
}

/// The dead letters (of one sink, when given), oldest first.
pub async fn dead_letters(
    store: &Store,
    config: &Config,
    sink: Option<&str>,
) -> Result<Vec<DeadLetterView>, StoreError> {
    let secrets = secrets_of(config);
    Ok(store
        .dead_letters()
        .await?
        .iter()
        .filter(|(_, l)| sink.is_none_or(|s| l.delivery.sink == s))
        .map(|(seq, letter)| dead_letter(*seq, letter, &secrets))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_include_url_paths_and_tokens() {
        let text = r#"
            [devin]
            token = "cog_secret_token"
            [server]
            admin_token = "admin_secret"
            [sinks.hook]
            type = "webhook"
            url = "http://127.0.0.1:9/hooks/devin?token=hooksecretquery"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            [sinks.app]
            type = "slack_app"
            token = "xoxb-app-token"
            channel = "C1"
        "#;
        let config = Config::from_toml(text, |_| None).expect("config");
        let secrets = secrets_of(&config);
        for s in [
            "/hooks/devin?token=hooksecretquery",
            "cog_secret_token",
            "admin_secret",
            "xoxb-app-token",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(secrets.iter().any(|x| x == s), "{s} missing");
        }
        let scrubbed = scrub(
            "POST http://127.0.0.1:9/hooks/devin?token=hooksecretquery: 400",
            &secrets,
        );
        assert!(!scrubbed.contains("hooksecretquery"), "{scrubbed}");
        let echoed = scrub("HTTP 400: bad: token=hooksecretquery", &secrets);
        assert_eq!(echoed, "HTTP 400: bad: token=[redacted]");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.500Z");
    }
}
