//! `preview`: the exact payloads a rule's sinks would receive, sending nothing.

use std::path::Path;

use serde_json::Value;

use crate::active::Active;
use crate::config::Config;
use crate::diff::diff;
use crate::event::{Event, EventType};
use crate::model::Session;
use crate::rules::Rule;
use crate::sample;

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no rule named `{0}` (rules: {1})")]
    NoRule(String, String),
    #[error("rule `{rule}` does not route {event} events (it routes: {routes})")]
    NotRouted {
        rule: String,
        event: String,
        routes: String,
    },
    #[error("unknown event type `{0}`")]
    UnknownEvent(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("the sessions given produce no {event} event (they produce: {found})")]
    NoSuchChange { event: String, found: String },
    #[error("sink `{sink}`: {message}")]
    Render { sink: String, message: String },
    #[error("no digest named `{0}` (digests: {1})")]
    NoDigest(String, String),
    #[error("{0}")]
    Store(String),
}

/// One payload a preview shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewItem {
    pub sink: String,
    pub sink_type: String,
    pub event_type: String,
    /// The payload, pretty-printed.
    pub body: String,
}

fn read_session(path: &Path) -> Result<Session, PreviewError> {
    let text = std::fs::read_to_string(path).map_err(|e| PreviewError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| PreviewError::File {
        path: path.display().to_string(),
        message: format!("not JSON: {e}"),
    })?;
    session_of(value).map_err(|message| PreviewError::File {
        path: path.display().to_string(),
        message,
    })
}

/// A session from JSON: a bare session, or a webhook body (`data.session`) as devin-notify
/// sends it.
pub fn session_of(value: Value) -> Result<Session, String> {
    let session = value.pointer("/data/session").cloned().unwrap_or(value);
    serde_json::from_value(session).map_err(|e| format!("not a session: {e}"))
}

/// The event types the given sessions produce, for messages: `nothing` when none.
fn kinds_found(events: &[Event]) -> String {
    if events.is_empty() {
        return "nothing".into();
    }
    events
        .iter()
        .map(|e| e.kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The exact payloads each of a rule's sinks would receive, for sample sessions or the given
/// ones (`session` now, `previous` in the snapshot), without sending anything.
pub fn preview(
    active: &Active,
    rule_name: &str,
    event: Option<&str>,
    session: Option<&Path>,
    previous: Option<&Path>,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let given = match session {
        Some(path) => Some((read_session(path)?, previous.map(read_session).transpose()?)),
        None => None,
    };
    preview_sessions(active, rule_name, event, given)
}

/// As [`preview`], with the sessions given as values: (now, as the snapshot had it).
pub fn preview_sessions(
    active: &Active,
    rule_name: &str,
    event: Option<&str>,
    sessions: Option<(Session, Option<Session>)>,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let rule = find_rule(&active.config, rule_name)?;
    let kinds = event_kinds(rule, event)?;
    let given = sessions.map(|(now, before)| diff(before.as_ref(), &now));
    let mut items = Vec::new();
    for kind in kinds {
        let event: Event = match &given {
            None => sample::event(kind),
            Some(events) => match events.iter().find(|e| e.kind == kind) {
                Some(e) => e.clone(),
                None if event.is_none() => continue,
                None => {
                    return Err(PreviewError::NoSuchChange {
                        event: kind.to_string(),
                        found: kinds_found(events),
                    })
                }
            },
        };
        items.extend(payloads(active, rule, &event)?);
    }
    match given {
        Some(events) if items.is_empty() => Err(PreviewError::NoSuchChange {
            event: rule.events.join(" or "),
            found: kinds_found(&events),
        }),
        _ => Ok(items),
    }
}

/// The payloads a rule's sinks would receive for a real session (a recent one, from the
/// store): for each event type the rule routes (or the one asked for), the session as it is now
/// with a change of that type applied ([`sample::event_on`]).
pub fn preview_recent(
    active: &Active,
    rule_name: &str,
    event: Option<&str>,
    session: &Session,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let rule = find_rule(&active.config, rule_name)?;
    let mut items = Vec::new();
    for kind in event_kinds(rule, event)? {
        items.extend(payloads(active, rule, &sample::event_on(kind, session))?);
    }
    Ok(items)
}

/// The rule named `name`.
fn find_rule<'a>(config: &'a Config, name: &str) -> Result<&'a Rule, PreviewError> {
    config.rules.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        PreviewError::NoRule(name.to_owned(), names.join(", "))
    })
}

/// The event types to preview: the one asked for (which the rule must route), or all the
/// rule's.
fn event_kinds(rule: &Rule, event: Option<&str>) -> Result<Vec<EventType>, PreviewError> {
    let Some(name) = event else {
        return Ok(rule.event_types().collect());
    };
    let kind = EventType::parse(name).ok_or_else(|| PreviewError::UnknownEvent(name.to_owned()))?;
    if !rule.events.iter().any(|e| e == name) {
        return Err(PreviewError::NotRouted {
            rule: rule.name.clone(),
            event: name.to_owned(),
            routes: rule.events.join(", "),
        });
    }
    Ok(vec![kind])
}

/// The payload each of the rule's sinks would receive for `event`, pretty-printed.
fn payloads(active: &Active, rule: &Rule, event: &Event) -> Result<Vec<PreviewItem>, PreviewError> {
    let kind = event.kind.to_string();
    sink_items(active, &rule.sinks, &kind, |sink| {
        active.payload(rule, sink, event)
    })
}

/// One pretty-printed item per configured sink of `sinks` (others are skipped), each payload
/// rendered by `render`; the first render failure names its sink.
pub(super) fn sink_items(
    active: &Active,
    sinks: &[String],
    event_type: &str,
    render: impl Fn(&str) -> Result<String, crate::render::RenderError>,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let mut items = Vec::new();
    for sink_name in sinks {
        let Some(sink) = active.config.sinks.get(sink_name) else {
            continue;
        };
        let body = render(sink_name).map_err(|e| PreviewError::Render {
            sink: sink_name.clone(),
            message: e.to_string(),
        })?;
        let pretty = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(body);
        items.push(PreviewItem {
            sink: sink_name.clone(),
            sink_type: sink.kind().to_owned(),
            event_type: event_type.to_owned(),
            body: pretty,
        });
    }
    Ok(items)
}

/// What quiet hours do to a rule at `now`: a line saying whether its deliveries are held and
/// until when (`None` for a rule without `mute_during` or `active_during`), and with
/// `collapse_held`, the summary each of its sinks would receive for three sample held events.
pub fn preview_quiet(
    active: &Active,
    rule_name: &str,
    now: jiff::Timestamp,
) -> Result<(Option<String>, Vec<PreviewItem>), PreviewError> {
    let rule = find_rule(&active.config, rule_name)?;
    if rule.mute_during.is_empty() && rule.active_during.is_empty() {
        return Ok((None, Vec::new()));
    }
    let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
    let names = rule.mute_during.iter().chain(&rule.active_during);
    let next = crate::intervals::next_change(names, &active.intervals, now);
    let until = next.map_or("no change ahead".to_owned(), |t| {
        format!("until {}", t.round(jiff::Unit::Second).unwrap_or(t))
    });
    let line = if active.holds(rule, now_ms) {
        format!("rule `{rule_name}` is muted now: its deliveries are held ({until}), then sent")
    } else {
        format!("rule `{rule_name}` is not muted now: its deliveries are sent ({until})")
    };
    let items = if rule.collapse_held {
        let samples = crate::render::summary::sample_items(3);
        sink_items(
            active,
            &rule.sinks,
            crate::render::summary::SUMMARY_TYPE,
            |sink| active.summary_payload(&rule.name, sink, &samples, "msg_preview", now_ms),
        )?
    } else {
        Vec::new()
    };
    Ok((Some(line), items))
}
