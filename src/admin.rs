//! The admin's commands that send nothing: `check` and `preview`.

use std::path::Path;

use serde_json::Value;

use crate::app::Active;
use crate::config::{Config, Problem};
use crate::devin::Session;
use crate::diff::diff;
use crate::event::{Event, EventType};
use crate::render::Templates;
use crate::sample;

/// What `check` found: every problem, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// A one-line summary of what was checked.
    pub summary: String,
}

/// Loads the configuration exactly as `run` does and lists every problem: keys and values,
/// `${VAR}` references, the token, templates that fail to compile, rules that name unknown
/// sinks, event types or templates, and templates that fail to render (or render invalid JSON)
/// for a sample event of each type their rule covers.
pub fn check(path: &Path) -> CheckReport {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            return CheckReport {
                summary: format!("{}: {} problem(s)", path.display(), e.problems.len()),
                problems: e.problems,
            }
        }
    };
    let mut problems = Vec::new();
    if let Err(p) = config.token() {
        problems.push(p);
    }
    let templates = match Templates::load(config.templates.dir.as_deref()) {
        Ok(t) => t,
        Err(p) => {
            problems.extend(p);
            Templates::built_in()
        }
    };
    problems.extend(templates.check_rules(&config));
    problems.extend(render_samples(&config, &templates));
    CheckReport {
        summary: format!(
            "{}: {} sink(s), {} rule(s), {} template(s): {}",
            path.display(),
            config.sinks.len(),
            config.rules.len(),
            templates.names().count(),
            if problems.is_empty() {
                "OK".to_owned()
            } else {
                format!("{} problem(s)", problems.len())
            }
        ),
        problems,
    }
}

/// Renders every (rule, sink, event type) against a sample event.
fn render_samples(config: &Config, templates: &Templates) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        for sink_name in &rule.sinks {
            let Some(sink) = config.sinks.get(sink_name) else {
                continue;
            };
            for kind in rule.event_types() {
                let Some(name) = templates.resolve(sink.kind(), rule.template.as_deref(), kind)
                else {
                    continue;
                };
                if !templates.has_name(&name) {
                    continue; // reported by check_rules
                }
                let event = sample::event(kind);
                if let Err(e) = templates.render(
                    sink.kind(),
                    rule.template.as_deref(),
                    &event,
                    &rule.name,
                    sink_name,
                ) {
                    problems.push(Problem::new(
                        format!("rules[{i}]"),
                        format!("for sink `{sink_name}` and a sample {kind} event: {e}"),
                    ));
                }
            }
        }
    }
    problems
}

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
    // Accept a bare session, or a webhook body (`data.session`) as devin-notify sends it.
    let value: Value = serde_json::from_str(&text).map_err(|e| PreviewError::File {
        path: path.display().to_string(),
        message: format!("not JSON: {e}"),
    })?;
    let session = value.pointer("/data/session").cloned().unwrap_or(value);
    serde_json::from_value(session).map_err(|e| PreviewError::File {
        path: path.display().to_string(),
        message: format!("not a session: {e}"),
    })
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
    let config = &active.config;
    let rule = config
        .rules
        .iter()
        .find(|r| r.name == rule_name)
        .ok_or_else(|| {
            PreviewError::NoRule(
                rule_name.to_owned(),
                config
                    .rules
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let kinds: Vec<EventType> = match event {
        Some(name) => {
            let kind = EventType::parse(name)
                .ok_or_else(|| PreviewError::UnknownEvent(name.to_owned()))?;
            if !rule.events.iter().any(|e| e == name) {
                return Err(PreviewError::NotRouted {
                    rule: rule.name.clone(),
                    event: name.to_owned(),
                    routes: rule.events.join(", "),
                });
            }
            vec![kind]
        }
        None => rule.event_types().collect(),
    };
    let given = match session {
        Some(path) => {
            let now = read_session(path)?;
            let before = previous.map(read_session).transpose()?;
            Some(diff(before.as_ref(), &now))
        }
        None => None,
    };
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
                        found: if events.is_empty() {
                            "nothing".into()
                        } else {
                            events
                                .iter()
                                .map(|e| e.kind.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    })
                }
            },
        };
        for sink_name in &rule.sinks {
            let Some(sink) = config.sinks.get(sink_name) else {
                continue;
            };
            let body = active
                .templates
                .render(
                    sink.kind(),
                    rule.template.as_deref(),
                    &event,
                    &rule.name,
                    sink_name,
                )
                .map_err(|e| PreviewError::Render {
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
                event_type: kind.to_string(),
                body: pretty,
            });
        }
    }
    if items.is_empty() {
        if let Some(events) = given {
            return Err(PreviewError::NoSuchChange {
                event: rule.events.join(" or "),
                found: if events.is_empty() {
                    "nothing".into()
                } else {
                    events
                        .iter()
                        .map(|e| e.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
    }
    Ok(items)
}
