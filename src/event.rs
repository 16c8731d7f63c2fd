//! Events: what changed in a session between two polls, with a stable id.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Session;

/// The event types, named in the Standard Webhooks `noun.verb` style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A session not in the snapshot appeared (after the baseline).
    #[serde(rename = "session.created")]
    SessionCreated,
    /// `status` or `status_detail` differs from the snapshot.
    #[serde(rename = "session.status_changed")]
    SessionStatusChanged,
    /// `is_archived` went from false or absent to true.
    #[serde(rename = "session.archived")]
    SessionArchived,
    /// A `pr_url` not in the snapshot's list appeared.
    #[serde(rename = "pull_request.opened")]
    PullRequestOpened,
    /// A known PR's `pr_state` differs.
    #[serde(rename = "pull_request.state_changed")]
    PullRequestStateChanged,
    /// A session has waited for a person longer than a rule's `remind_after`.
    #[serde(rename = "session.waiting")]
    SessionWaiting,
    /// `acus_consumed` crossed a rule's `when.acus_over`.
    #[serde(rename = "session.acus_exceeded")]
    SessionAcusExceeded,
    /// The account's queue (`GET /v3/enterprise/queue`) changed status (normal, elevated,
    /// high). Not about a session: an account signal.
    #[serde(rename = "queue.status_changed")]
    QueueStatusChanged,
    /// A billing day's ACUs (`GET /v3/enterprise/consumption/daily`) crossed one of
    /// `devin.consumption.daily_acus_over`. Not about a session: an account signal.
    #[serde(rename = "consumption.daily_exceeded")]
    ConsumptionDailyExceeded,
}

impl EventType {
    /// Every event type, in the order a session's events are emitted.
    pub const ALL: [EventType; 9] = [
        EventType::SessionCreated,
        EventType::SessionStatusChanged,
        EventType::SessionArchived,
        EventType::PullRequestOpened,
        EventType::PullRequestStateChanged,
        EventType::SessionWaiting,
        EventType::SessionAcusExceeded,
        EventType::QueueStatusChanged,
        EventType::ConsumptionDailyExceeded,
    ];

    /// The wire name, e.g. `session.status_changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session.created",
            EventType::SessionStatusChanged => "session.status_changed",
            EventType::SessionArchived => "session.archived",
            EventType::PullRequestOpened => "pull_request.opened",
            EventType::PullRequestStateChanged => "pull_request.state_changed",
            EventType::SessionWaiting => "session.waiting",
            EventType::SessionAcusExceeded => "session.acus_exceeded",
            EventType::QueueStatusChanged => "queue.status_changed",
            EventType::ConsumptionDailyExceeded => "consumption.daily_exceeded",
        }
    }

    /// Whether an event of this type happens at most once for its subject: a session is
    /// created once, a pull request opened once, a budget threshold crossed once. Their ids
    /// hash only the subject, and the store remembers the ids announced, so a subject that
    /// vanishes from a listing and comes back is not announced again.
    pub fn once_per_subject(self) -> bool {
        matches!(
            self,
            EventType::SessionCreated
                | EventType::PullRequestOpened
                | EventType::SessionAcusExceeded
                | EventType::ConsumptionDailyExceeded
        )
    }

    /// Whether events of this type are about a session (all but the account signals).
    pub fn about_session(self) -> bool {
        !matches!(
            self,
            EventType::QueueStatusChanged | EventType::ConsumptionDailyExceeded
        )
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What changed. Serialized as the `change` object of webhook bodies and template contexts; its
/// field names are the `rules.when` keys they match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Change {
    /// `queue.status_changed`: the queue's status before and now, and its size now. (First:
    /// an untagged read tries the variants in order, and `Status` would take these fields.)
    Queue {
        from_status: String,
        status: String,
        queue_size: u64,
    },
    /// `consumption.daily_exceeded`: a billing day's ACUs crossed `threshold`.
    Consumption {
        /// The billing day, as Devin names it (`2026-11-30`; days start at 08:00 UTC).
        date: String,
        acus: f64,
        threshold: f64,
        /// ACUs by product (`devin`, `cascade`, `terminal`, ... an open set).
        acus_by_product: serde_json::Map<String, serde_json::Value>,
    },
    /// `session.status_changed`: the old and new status and detail.
    Status {
        from_status: String,
        status: String,
        from_status_detail: Option<String>,
        status_detail: Option<String>,
    },
    /// `pull_request.*`: the PR, its repository and its state (and the old state on a change).
    PullRequest {
        pr_url: String,
        repo: Option<String>,
        pr_state: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        from_pr_state: Option<String>,
    },
    /// `session.waiting`: a reminder that the session still waits on a person.
    Waiting {
        status_detail: Option<String>,
        /// When the wait began (RFC 3339).
        waiting_since: String,
        waiting_seconds: u64,
        /// 1 for the first reminder of this wait, 2 for the first repeat, ...
        reminder: u32,
        /// The rule whose `remind_after` this reminder is for.
        rule: String,
    },
    /// `session.acus_exceeded`: `acus_consumed` crossed `threshold`.
    Acus {
        threshold: f64,
        acus_consumed: f64,
        from_acus: f64,
    },
    /// `session.created`, `session.archived`: the session itself is the news.
    Session {},
}

/// One detected change: of one session, or of an account signal (the queue, the daily
/// consumption; [`EventType::about_session`] tells which).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Stable id: the same change seen again yields the same id. `evt_` + 32 hex digits.
    pub id: String,
    pub kind: EventType,
    /// The session as listed now. For an account signal, the subject only: `session_id` is
    /// the subject's key (`queue`, `consumption/2026-11-30`), `updated_at` when it was
    /// observed, every other field empty; payloads and templates show no session for it, and
    /// rules' session conditions do not match it.
    pub session: Session,
    /// The session as the snapshot had it (`None` for a session seen for the first time).
    pub previous: Option<Session>,
    pub change: Change,
    /// For a session that starts waiting on a person: the latest message from Devin, read from
    /// the session's messages (truncated to `devin.last_message_max_chars`).
    pub last_devin_message: Option<String>,
}

impl Event {
    /// Whether the session starts waiting for input or approval: the events whose message is
    /// worth quoting.
    pub fn starts_waiting(&self) -> bool {
        matches!(
            &self.change,
            Change::Status { status_detail: Some(d), .. } if d == "waiting_for_user" || d == "waiting_for_approval"
        )
    }

    /// An account signal's event (not about a session): `subject` is its key (`queue`,
    /// `consumption/DATE`), `observed_at` (epoch seconds) its timestamp; the id hashes the type
    /// and `id_parts`.
    pub fn account(
        kind: EventType,
        subject: &str,
        observed_at: i64,
        change: Change,
        id_parts: &[&str],
    ) -> Event {
        let mut parts = vec![kind.as_str()];
        parts.extend_from_slice(id_parts);
        let mut session = Session::new(subject, "");
        session.updated_at = observed_at;
        Event {
            id: stable_id("evt_", &parts),
            kind,
            session,
            previous: None,
            change,
            last_devin_message: None,
        }
    }

    /// The key of what the event is about: the session id, or the account signal's subject.
    /// Deliveries of one subject to one sink go out in order.
    pub fn subject(&self) -> &str {
        &self.session.session_id
    }

    /// Reads an event back from its default webhook body (as stored with a dead letter).
    pub fn from_webhook_body(body: &serde_json::Value) -> Option<Event> {
        let kind = EventType::parse(body.get("type")?.as_str()?)?;
        let data = body.get("data")?;
        if !kind.about_session() {
            let at = body.get("timestamp")?.as_str()?;
            let at = humantime::parse_rfc3339(at).ok()?;
            let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
            let mut event = Event::account(
                kind,
                data.get("subject")?.as_str()?,
                i64::try_from(at).ok()?,
                serde_json::from_value(data.get("change")?.clone()).ok()?,
                &[],
            );
            event.id = data.get("event_id")?.as_str()?.to_owned();
            return Some(event);
        }
        Some(Event {
            id: data.get("event_id")?.as_str()?.to_owned(),
            kind,
            session: serde_json::from_value(data.get("session")?.clone()).ok()?,
            previous: match data.get("previous") {
                None | Some(serde_json::Value::Null) => None,
                Some(p) => Some(serde_json::from_value(p.clone()).ok()?),
            },
            change: serde_json::from_value(data.get("change")?.clone()).ok()?,
            last_devin_message: data
                .get("last_devin_message")
                .and_then(|m| m.as_str())
                .map(str::to_owned),
        })
    }

    /// When the change happened, as far as polling can tell: the session's `updated_at`.
    pub fn timestamp(&self) -> i64 {
        self.session.updated_at
    }
}

/// Prefix of a creator that is a service user (`service:<service_user_id>`): looked up in
/// `[people]` only, as the members endpoint knows people, not service users.
pub const SERVICE_USER_PREFIX: &str = "service:";

/// Who started a session, for direct messages: its `user_id`, else its service user
/// (`service:<service_user_id>`), else nobody.
pub fn creator_of(session: &Session) -> Option<String> {
    match (&session.user_id, &session.service_user_id) {
        (Some(user), _) if !user.is_empty() => Some(user.clone()),
        (_, Some(service)) if !service.is_empty() => {
            Some(format!("{SERVICE_USER_PREFIX}{service}"))
        }
        _ => None,
    }
}

/// The id of the delivery of an event under a rule to a sink (`msg_...`, the `webhook-id`):
/// stable across retries and restarts.
pub fn delivery_id(event_id: &str, rule: &str, sink: &str) -> String {
    stable_id("msg_", &[event_id, rule, sink])
}

/// A stable id from the parts that identify a change: `prefix` + 32 hex digits of SHA-256.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// At most `max` characters of `text`, cut on a character boundary, with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
    }
}

/// A duration in words: `45 seconds`, `20 minutes`, `1 hour 5 minutes`, `2 days 3 hours`.
pub fn human_duration(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let (d, h, m) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => plural(seconds, "second"),
        (0, 0, m) => plural(m, "minute"),
        (0, h, 0) => plural(h, "hour"),
        (0, h, m) => format!("{} {}", plural(h, "hour"), plural(m, "minute")),
        (d, 0, _) => plural(d, "day"),
        (d, h, _) => format!("{} {}", plural(d, "day"), plural(h, "hour")),
    }
}

/// Formats epoch seconds as RFC 3339 (UTC). Negative or absurd values clamp to the epoch.
pub fn rfc3339(epoch_seconds: i64) -> String {
    let secs = u64::try_from(epoch_seconds).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.min(253_402_300_799));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).expect("ser");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(EventType::parse("session.deleted"), None);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = stable_id("evt_", &["s1", "x"]);
        assert_eq!(a, stable_id("evt_", &["s1", "x"]));
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, stable_id("evt_", &["s1x", ""]));
        assert_ne!(a, stable_id("evt_", &["s1", "y"]));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("hello", 5), "hello");
        assert_eq!(truncate_chars("hello!", 5), "hell…");
        assert_eq!(truncate_chars("héllo wörld", 4), "hél…");
        assert_eq!(truncate_chars("🦀🦀🦀", 2), "🦀…");
        assert_eq!(truncate_chars("", 3), "");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(60), "1 minute");
        assert_eq!(human_duration(20 * 60 + 7), "20 minutes");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(3900), "1 hour 5 minutes");
        assert_eq!(human_duration(2 * 86_400 + 3 * 3600 + 60), "2 days 3 hours");
        assert_eq!(human_duration(86_400), "1 day");
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(1_614_265_330), "2021-02-25T15:02:10Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn change_serializes_flat() {
        let c = Change::Status {
            from_status: "running".into(),
            status: "exit".into(),
            from_status_detail: Some("working".into()),
            status_detail: None,
        };
        assert_eq!(
            serde_json::to_value(&c).expect("ser"),
            serde_json::json!({"from_status":"running","status":"exit","from_status_detail":"working","status_detail":null})
        );
        assert_eq!(
            serde_json::to_value(Change::Session {}).expect("ser"),
            serde_json::json!({})
        );
    }
}
