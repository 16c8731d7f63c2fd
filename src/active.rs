//! The active configuration: a validated [`Config`] with its compiled templates, what the
//! service runs on. Loading it reads the template files of `templates.dir` (the only place that
//! reads templates from disk), checks that every rule finds its templates, and renders every
//! (rule, sink, event type) against a sample event, as `check` does.

use std::path::Path;

use serde_json::Value;

use crate::config::{Config, ConfigError, Problem, SinkConfig, WebhookFormat};
use crate::event::{delivery_id, rfc3339, Event};
use crate::intervals::Intervals;
use crate::render::summary::{self, HeldItem, SUMMARY_TEMPLATE};
use crate::render::{
    cloud_envelope, cloud_event, default_webhook_body, discord_limits, fit, slack_limits,
    teams_message, template_kind, RenderError, TEAMS_MAX_BYTES,
};
use crate::render::{Templates, SINK_KINDS};
use crate::rules::Rule;
use crate::sample;

/// A validated configuration with its compiled templates.
#[derive(Debug)]
pub struct Active {
    pub config: Config,
    pub templates: Templates,
    /// `[time_intervals]`, compiled.
    pub intervals: Intervals,
}

impl Active {
    /// Loads, validates and compiles everything `path` names; reports every problem found.
    pub fn load(path: &Path) -> Result<Active, ConfigError> {
        let config = Config::load(path)?;
        Self::from_config(config).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }

    /// Compiles the templates a validated config names, checks the rules against them, and
    /// renders every (rule, sink, event type) against a sample event, as `check` does.
    pub fn from_config(config: Config) -> Result<Active, Vec<Problem>> {
        let templates = load_templates(config.templates.dir.as_deref())?;
        let intervals = crate::intervals::compile(&config.time_intervals)?;
        let mut problems = check_rules(&config, &templates);
        if problems.is_empty() {
            problems.extend(render_samples(&config, &templates));
            problems.extend(render_summary_samples(&config, &templates));
        }
        if problems.is_empty() {
            problems.extend(check_digests(&config, &templates));
        }
        if problems.is_empty() {
            Ok(Active {
                config,
                templates,
                intervals,
            })
        } else {
            Err(problems)
        }
    }
}

impl Active {
    /// The CloudEvents `source` of everything this service sends: `devin-notify`, and the
    /// organization when the listing is scoped to one.
    fn cloudevents_source(&self) -> String {
        match &self.config.devin.org_id {
            Some(org) => format!("devin-notify/{org}"),
            None => "devin-notify".to_owned(),
        }
    }

    /// The exact payload `sink_name` receives for `event` under the rule `rule` (whose
    /// template, if any, applies): the rendered template, or a webhook's default body, in the
    /// sink's format.
    pub fn payload(
        &self,
        rule: &Rule,
        sink_name: &str,
        event: &Event,
    ) -> Result<String, RenderError> {
        let sink = self.sink(sink_name)?;
        let template = rule.template.as_deref();
        let body = self
            .templates
            .render(sink.kind(), template, event, &rule.name, sink_name)?;
        Ok(
            self.finish(sink, sink_name, template, body, |body, source| {
                let data = match template {
                    None => default_webhook_body(event)["data"].take(),
                    Some(_) => serde_json::from_str(&body).unwrap_or(Value::String(body)),
                };
                let id = delivery_id(&event.id, &rule.name, sink_name);
                cloud_event(event, &id, source, data)
            }),
        )
    }
}

impl Active {
    /// Whether `rule` holds its deliveries at `at_ms` (Unix milliseconds): one of its
    /// `mute_during` intervals is on, or none of its `active_during`.
    pub fn holds(&self, rule: &Rule, at_ms: u64) -> bool {
        if rule.mute_during.is_empty() && rule.active_during.is_empty() {
            return false;
        }
        let at = jiff::Timestamp::from_millisecond(at_ms as i64).unwrap_or(jiff::Timestamp::MAX);
        crate::intervals::held(&rule.mute_during, &rule.active_during, &self.intervals, at)
    }

    /// The payload of one summary of held deliveries (`collapse_held`) for `sink_name`: the
    /// sink type's `held_summary` template (a webhook without one: the default summary body),
    /// in the sink's format, cut to its limits. `id` is the summary's delivery id.
    pub fn summary_payload(
        &self,
        rule: &str,
        sink_name: &str,
        items: &[HeldItem],
        id: &str,
        now_ms: u64,
    ) -> Result<String, RenderError> {
        let sink = self.sink(sink_name)?;
        let kind = template_kind(sink.kind());
        let body = if self.templates.has(kind, SUMMARY_TEMPLATE) {
            let context = summary::summary_context(rule, sink_name, items, now_ms);
            self.templates
                .render_named(kind, &format!("{kind}/{SUMMARY_TEMPLATE}"), &context)?
        } else if kind == "webhook" {
            summary::default_summary_body(rule, sink_name, items, now_ms).to_string()
        } else {
            return Err(RenderError::Missing {
                template: format!("{kind}/{SUMMARY_TEMPLATE}"),
            });
        };
        let templated = self.templates.has(kind, SUMMARY_TEMPLATE);
        let template = Some(SUMMARY_TEMPLATE);
        Ok(
            self.finish(sink, sink_name, template, body, |body, source| {
                let data = match templated {
                    true => serde_json::from_str(&body).unwrap_or(Value::String(body)),
                    false => summary::summary_data(rule, sink_name, items),
                };
                let time = rfc3339((now_ms / 1000) as i64);
                cloud_envelope(id, source, summary::SUMMARY_TYPE, rule, time, data)
            }),
        )
    }
}

/// Renders the held-deliveries summary of every rule with `collapse_held`, for each of its
/// sinks, against sample held events (many, with long titles), as `check` does for events:
/// a missing or failing template, or a payload over the destination's limits, is a problem.
pub fn render_summary_samples(config: &Config, templates: &Templates) -> Vec<Problem> {
    let mut problems = Vec::new();
    let items = summary::sample_items(30);
    for (i, rule) in config.rules.iter().enumerate() {
        if !rule.collapse_held {
            continue;
        }
        for sink_name in &rule.sinks {
            let Some(sink) = config.sinks.get(sink_name) else {
                continue;
            };
            let kind = template_kind(sink.kind());
            if !templates.has(kind, SUMMARY_TEMPLATE) {
                if kind != "webhook" {
                    problems.push(Problem::new(
                        format!("rules[{i}].collapse_held"),
                        format!("no template `{kind}/{SUMMARY_TEMPLATE}` for sink `{sink_name}`"),
                    ));
                }
                continue;
            }
            let context = summary::summary_context(&rule.name, sink_name, &items, 0);
            let name = format!("{kind}/{SUMMARY_TEMPLATE}");
            let over = match templates.render_named(kind, &name, &context) {
                Err(e) => vec![e.to_string()],
                Ok(body) => over_limits(kind, &body),
            };
            for e in over {
                problems.push(Problem::new(
                    format!("rules[{i}].collapse_held"),
                    format!("for sink `{sink_name}` and a sample summary of held deliveries: {e}"),
                ));
            }
        }
    }
    problems
}

/// What a rendered payload of a sink type exceeds of its destination's limits.
fn over_limits(kind: &str, body: &str) -> Vec<String> {
    match kind {
        "discord" => serde_json::from_str(body)
            .map(|v| discord_limits(&v))
            .unwrap_or_default(),
        "slack" => serde_json::from_str(body)
            .map(|v| slack_limits(&v))
            .unwrap_or_default(),
        "teams" if body.len() > TEAMS_MAX_BYTES => vec![format!(
            "the card is {} bytes (Teams takes about {TEAMS_MAX_BYTES})",
            body.len()
        )],
        _ => Vec::new(),
    }
}

impl Active {
    /// The exact payload a sink receives for a digest: its template (`digests.template`, or
    /// `digest`) rendered with the digest's context; for Teams in the message envelope, for
    /// a CloudEvents webhook in a CloudEvent of type `ai.devin.digest`; cut to the
    /// destination's limits.
    pub fn digest_payload(
        &self,
        digest: &crate::config::DigestConfig,
        sink_name: &str,
        data: &crate::digest::Digest,
        id: &str,
    ) -> Result<String, RenderError> {
        let sink = self.sink(sink_name)?;
        let name = format!("{}/{}", template_kind(sink.kind()), digest.template_name());
        let body = self
            .templates
            .render_named(sink.kind(), &name, &data.context(sink_name))?;
        let template = Some(digest.template_name());
        let cloud_id = delivery_id(id, &format!("digest:{}", digest.name), sink_name);
        let end = data.period.end.clone();
        let payload = self.finish(sink, sink_name, template, body, |body, source| {
            let payload = serde_json::from_str(&body).unwrap_or(Value::String(body));
            let data = payload.get("data").cloned().unwrap_or(payload);
            cloud_envelope(&cloud_id, source, "digest", &digest.name, end, data)
        });
        Ok(payload)
    }
}

impl Active {
    /// The sink named `sink_name`, or the error that names it.
    fn sink(&self, sink_name: &str) -> Result<&SinkConfig, RenderError> {
        self.config
            .sinks
            .get(sink_name)
            .ok_or_else(|| RenderError::Missing {
                template: format!("(sink `{sink_name}` is not configured)"),
            })
    }

    /// A rendered body in its sink's format, cut to the destination's limits: for a
    /// CloudEvents webhook the event `cloud` makes of it (given the `source`), for Teams the
    /// card in the Workflows envelope.
    fn finish(
        &self,
        sink: &SinkConfig,
        sink_name: &str,
        template: Option<&str>,
        body: String,
        cloud: impl FnOnce(String, &str) -> Value,
    ) -> String {
        let body = match sink {
            SinkConfig::Webhook(w) if w.format == WebhookFormat::Cloudevents => {
                cloud(body, &self.cloudevents_source()).to_string()
            }
            SinkConfig::Teams(_) => {
                let card = serde_json::from_str(&body).unwrap_or(Value::String(body));
                teams_message(card).to_string()
            }
            _ => body,
        };
        fit_to_limits(sink.kind(), sink_name, template, body)
    }
}

/// The payload cut to its destination's limits, if it is over them (a title or a message
/// longer than the samples `check` rendered); a warning names what was cut.
fn fit_to_limits(kind: &str, sink: &str, template: Option<&str>, body: String) -> String {
    let kind = template_kind(kind);
    if !matches!(kind, "slack" | "discord" | "teams") {
        return body;
    }
    let Ok(mut payload) = serde_json::from_str::<Value>(&body) else {
        return body;
    };
    let cut = fit(kind, &mut payload);
    if cut.is_empty() {
        return body;
    }
    tracing::warn!(
        sink,
        template = template.unwrap_or("(the event's default)"),
        cut = %cut.join("; "),
        "the payload was over the destination's limits: cut to fit"
    );
    payload.to_string()
}

/// The built-in templates, overridden and extended by `dir/<sink type>/*.hbs`.
pub fn load_templates(dir: Option<&Path>) -> Result<Templates, Vec<Problem>> {
    let mut t = Templates::built_in();
    let Some(dir) = dir else { return Ok(t) };
    if !dir.is_dir() {
        return Err(vec![Problem::new(
            "templates.dir",
            format!("{} is not a directory", dir.display()),
        )]);
    }
    let mut problems = Vec::new();
    for kind in SINK_KINDS {
        for path in template_files(&dir.join(kind)) {
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let name = format!("{kind}/{stem}");
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Err(e) = t.register(&name, &text, &path.display().to_string()) {
                        problems.push(Problem::new("templates.dir", e.to_string()));
                    }
                }
                Err(e) => problems.push(Problem::new(
                    "templates.dir",
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(t)
    } else {
        Err(problems)
    }
}

/// The `.hbs` files of one template folder, sorted (none when it does not exist).
pub fn template_files(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hbs"))
        .collect();
    files.sort();
    files
}

/// Checks that every template a rule needs exists: one problem per missing template.
pub fn check_rules(config: &Config, templates: &Templates) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        for sink_name in &rule.sinks {
            let Some(sink) = config.sinks.get(sink_name) else {
                continue;
            };
            for event in rule.event_types() {
                let Some(name) = templates.resolve(sink.kind(), rule.template.as_deref(), event)
                else {
                    continue;
                };
                if !templates.has_name(&name) {
                    let key = if rule.template.is_some() {
                        "template"
                    } else {
                        "events"
                    };
                    problems.push(Problem::new(
                        format!("rules[{i}].{key}"),
                        format!("no template `{name}` for sink `{sink_name}` (add templates/{name}.hbs under templates.dir)"),
                    ));
                }
            }
        }
    }
    problems.dedup();
    problems
}

/// Renders every (rule, sink, event type) against a sample event.
pub fn render_samples(config: &Config, templates: &Templates) -> Vec<Problem> {
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
                let rendered = templates.render(
                    sink.kind(),
                    rule.template.as_deref(),
                    &event,
                    &rule.name,
                    sink_name,
                );
                let over = match &rendered {
                    Ok(body) => over_limits(template_kind(sink.kind()), body),
                    Err(_) => Vec::new(),
                };
                let failures = rendered
                    .err()
                    .map(|e| e.to_string())
                    .into_iter()
                    .chain(over);
                for e in failures {
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

/// Checks every digest's template for each of its sinks: it exists, and renders a sample
/// digest (with hostile values) into a payload within the destination's limits. Keys are
/// `digests[i].template`.
pub fn check_digests(config: &Config, templates: &Templates) -> Vec<Problem> {
    let mut problems = Vec::new();
    let sample = crate::digest::sample();
    for (i, d) in config.digests.iter().enumerate() {
        for sink_name in &d.sinks {
            let Some(sink) = config.sinks.get(sink_name) else {
                continue;
            };
            let name = format!("{}/{}", template_kind(sink.kind()), d.template_name());
            let key = format!("digests[{i}].template");
            if !templates.has_name(&name) {
                problems.push(Problem::new(
                    key,
                    format!("no template `{name}` for sink `{sink_name}` (add templates/{name}.hbs under templates.dir)"),
                ));
                continue;
            }
            let over = match templates.render_named(sink.kind(), &name, &sample.context(sink_name))
            {
                Err(e) => vec![e.to_string()],
                Ok(body) => over_limits(template_kind(sink.kind()), &body),
            };
            for e in over {
                problems.push(Problem::new(
                    key.clone(),
                    format!("for sink `{sink_name}` and a sample digest: {e}"),
                ));
            }
        }
    }
    problems
}
