//! `deliveries` and `events`: the delivery log and the event log, newest first, as an admin
//! sees them (error excerpts scrubbed of every configured secret) and as tables.

use serde::{Deserialize, Serialize};

use super::ops::cell;
use super::view::secrets_of;
use crate::config::Config;
use crate::redact::scrub;
use crate::store::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Outcome, Store, StoreError};

/// The filters of `deliveries` (and the query of `GET /api/v1/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Only entries older than this id (paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

impl Default for LogQuery {
    fn default() -> LogQuery {
        LogQuery {
            sink: None,
            outcome: None,
            session: None,
            limit: default_limit(),
            before: None,
        }
    }
}

/// How many entries a read shows when not told.
pub fn default_limit() -> usize {
    50
}

impl LogQuery {
    /// The store's filter.
    pub fn filter(&self) -> DeliveryFilter {
        DeliveryFilter {
            sink: self.sink.clone(),
            outcome: self.outcome,
            session_id: self.session.clone(),
            limit: self.limit,
            before_id: self.before,
        }
    }
}

/// The delivery log, newest first, filtered; error excerpts scrubbed of `config`'s secrets.
pub async fn deliveries(
    store: &Store,
    config: &Config,
    query: &LogQuery,
) -> Result<Vec<DeliveryLogEntry>, StoreError> {
    let mut entries = store.recent_deliveries(&query.filter()).await?;
    let secrets = secrets_of(config);
    for entry in &mut entries {
        if let Some(excerpt) = &mut entry.excerpt {
            *excerpt = scrub(excerpt, &secrets);
        }
    }
    Ok(entries)
}

/// `2026-11-29 14:03:07Z`, from Unix ms.
fn time(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
}

/// `1.2s`, `340ms`, `3m05s`.
fn latency(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// The session as a table shows it: its title, then its id.
fn session(title: Option<&str>, id: &str) -> String {
    match title.filter(|t| !t.is_empty()) {
        Some(title) => format!("{title} ({id})"),
        None => id.to_owned(),
    }
}

fn delivery_row(e: &DeliveryLogEntry) -> String {
    format!(
        "{:<20} {:<26} {:<32} {:<14} {:<9} {:>6} {:>8} {:>8}  {}\n",
        time(e.at_ms),
        e.event_type,
        cell(&session(e.session_title.as_deref(), &e.session_id), 32),
        cell(&e.sink, 14),
        e.outcome,
        e.status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        e.attempts,
        latency(e.latency_ms),
        cell(e.excerpt.as_deref().unwrap_or(""), 120),
    )
}

/// What `deliveries` prints: a table of the entries, then how many and how many are kept.
pub fn deliveries_text(entries: &[DeliveryLogEntry], history: usize) -> String {
    let mut out = format!(
        "{:<20} {:<26} {:<32} {:<14} {:<9} {:>6} {:>8} {:>8}  {}\n",
        "TIME", "EVENT", "SESSION", "SINK", "OUTCOME", "STATUS", "ATTEMPTS", "LATENCY", "ERROR"
    );
    for entry in entries {
        out.push_str(&delivery_row(entry));
    }
    out.push_str(&format!(
        "{} entr{} (the log keeps the last {history}: server.history)",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
    ));
    out
}

fn event_row(e: &EventLogEntry) -> String {
    let routes = if e.unrouted() {
        "unrouted".to_owned()
    } else {
        let pairs: Vec<String> = e
            .routes
            .iter()
            .map(|r| format!("{} -> {}", r.rule, r.sink))
            .collect();
        pairs.join(", ")
    };
    format!(
        "{:<20} {:<26} {:<32}  {}\n",
        time(e.detected_at_ms),
        e.event_type,
        cell(&session(e.session_title.as_deref(), &e.session_id), 32),
        cell(&routes, 120),
    )
}

/// What `events` prints: a table of the entries, then how many and how many are kept.
pub fn events_text(entries: &[EventLogEntry], history: usize) -> String {
    let mut out = format!(
        "{:<20} {:<26} {:<32}  {}\n",
        "DETECTED", "EVENT", "SESSION", "ROUTED TO (RULE -> SINK)"
    );
    for entry in entries {
        out.push_str(&event_row(entry));
    }
    out.push_str(&format!(
        "{} event(s) (the log keeps the last {history}: server.history)",
        entries.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(latency(340), "340ms");
        assert_eq!(latency(1240), "1.2s");
        assert_eq!(latency(185_000), "3m05s");
        assert_eq!(session(Some("Fix CI"), "devin-1"), "Fix CI (devin-1)");
        assert_eq!(session(Some(""), "devin-1"), "devin-1");
    }
}
