//! The summary of held deliveries (`collapse_held = true`): what its templates see, and the
//! default webhook body. Pure.

use serde_json::{json, Value};

use crate::event::rfc3339;

/// The event type of a summary delivery.
pub const SUMMARY_TYPE: &str = "held.summary";
/// The template name of summaries: `templates/<sink type>/held_summary.hbs`.
pub const SUMMARY_TEMPLATE: &str = "held_summary";
/// How many held events chat templates list (the rest are counted); webhooks get them all.
pub const SUMMARY_SHOWN: usize = 20;

/// One held event, as a summary lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldItem {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub session_id: String,
    /// The session's title, or its id.
    pub title: String,
    pub headline: Option<String>,
    pub link: Option<String>,
    pub detected_at_ms: u64,
}

impl HeldItem {
    fn to_value(&self) -> Value {
        json!({
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "session_id": self.session_id,
            "title": self.title,
            "headline": self.headline.clone().unwrap_or_else(|| self.event_type.clone()),
            "link": self.link,
            "detected_at": rfc3339((self.detected_at_ms / 1000) as i64),
        })
    }
}

/// What a summary template sees: `rule`, `sink`, `count` (events held), `held` (the first
/// [`SUMMARY_SHOWN`]: `title`, `event_type`, `headline`, `link`, `session_id`,
/// `detected_at`), `more` (how many are not listed), `headline` ("3 notifications held"),
/// `first_link` (the first event's link), `from` and `to` (when the first and last were
/// detected), `event.timestamp` (now).
pub fn summary_context(rule: &str, sink: &str, items: &[HeldItem], now_ms: u64) -> Value {
    let count = items.len();
    let shown: Vec<Value> = items
        .iter()
        .take(SUMMARY_SHOWN)
        .map(HeldItem::to_value)
        .collect();
    json!({
        "rule": rule,
        "sink": sink,
        "count": count,
        "more": count.saturating_sub(SUMMARY_SHOWN),
        "held": shown,
        "headline": headline(count),
        "first_link": items.iter().find_map(|i| i.link.clone()),
        "from": items.first().map(|i| rfc3339((i.detected_at_ms / 1000) as i64)),
        "to": items.last().map(|i| rfc3339((i.detected_at_ms / 1000) as i64)),
        "event": { "type": SUMMARY_TYPE, "timestamp": rfc3339((now_ms / 1000) as i64) },
    })
}

/// "1 notification held during quiet hours", "3 notifications held during quiet hours".
pub fn headline(count: usize) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{count} notification{s} held during quiet hours")
}

/// A webhook's default summary body: `{"type": "held.summary", "timestamp", "data": {"rule",
/// "sink", "count", "held": [every held event]}}`.
pub fn default_summary_body(rule: &str, sink: &str, items: &[HeldItem], now_ms: u64) -> Value {
    json!({
        "type": SUMMARY_TYPE,
        "timestamp": rfc3339((now_ms / 1000) as i64),
        "data": summary_data(rule, sink, items),
    })
}

/// The `data` of a summary's webhook body.
pub fn summary_data(rule: &str, sink: &str, items: &[HeldItem]) -> Value {
    json!({
        "rule": rule,
        "sink": sink,
        "count": items.len(),
        "held": items.iter().map(HeldItem::to_value).collect::<Vec<_>>(),
    })
}

/// Sample held events, for `check` and `preview`: `n` of them, with long titles.
pub fn sample_items(n: usize) -> Vec<HeldItem> {
    (0..n)
        .map(|i| HeldItem {
            delivery_id: format!("msg_sample{i}"),
            event_id: format!("evt_sample{i}"),
            event_type: "session.status_changed".into(),
            session_id: format!("devin-sample{i}"),
            title: format!(
                "Sample session {i}: {}",
                "fix the *flaky* <test> & [more] ".repeat(8)
            ),
            headline: Some("Devin finished".into()),
            link: Some(format!("https://app.devin.ai/sessions/sample{i}")),
            detected_at_ms: 1_764_460_800_000 + i as u64 * 60_000,
        })
        .collect()
}
