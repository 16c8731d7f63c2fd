//! Rendering: an event and a template in, the exact payload a sink receives out. Pure.
//!
//! Templates are handlebars files named `<sink type>/<name>.hbs`. The defaults are compiled into
//! the binary from `templates/`; `templates.dir` overrides them file by file and adds new ones.
//! Every template produces JSON, so every interpolated value is JSON-escaped, and in Slack
//! templates also mrkdwn-escaped (`&`, `<`, `>`), so no session title can break the payload or
//! inject a link. A rendered payload that is not valid JSON is an error, never a send; valid
//! payloads are re-serialized compactly.

use std::collections::BTreeMap;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::{json, Value};

use crate::event::{human_duration, rfc3339, Change, Event, EventType};

/// The templates compiled into the binary: (name, text).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "slack/session.created",
        include_str!("../templates/slack/session.created.hbs"),
    ),
    (
        "slack/session.status_changed",
        include_str!("../templates/slack/session.status_changed.hbs"),
    ),
    (
        "slack/session.archived",
        include_str!("../templates/slack/session.archived.hbs"),
    ),
    (
        "slack/pull_request.opened",
        include_str!("../templates/slack/pull_request.opened.hbs"),
    ),
    (
        "slack/pull_request.state_changed",
        include_str!("../templates/slack/pull_request.state_changed.hbs"),
    ),
    (
        "slack/needs_input",
        include_str!("../templates/slack/needs_input.hbs"),
    ),
    (
        "slack/session.waiting",
        include_str!("../templates/slack/session.waiting.hbs"),
    ),
    (
        "slack/session.acus_exceeded",
        include_str!("../templates/slack/session.acus_exceeded.hbs"),
    ),
];

/// The sink types that have template folders.
pub const SINK_KINDS: [&str; 2] = ["slack", "webhook"];

/// The template folder of a sink type: `slack_app` sinks render the `slack` templates (the same
/// Block Kit messages, the same escaping).
pub fn template_kind(kind: &str) -> &str {
    match kind {
        "slack_app" => "slack",
        other => other,
    }
}

/// Why a payload could not be rendered. Each names the template (and line where known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template `{template}` does not exist (looked for templates/{template}.hbs)")]
    Missing { template: String },
    #[error("template `{template}`: {message}")]
    Template { template: String, message: String },
    #[error("template `{template}` rendered invalid JSON: {message}")]
    InvalidJson { template: String, message: String },
}

/// Compiled templates, one registry per sink type (each with its own escaping).
pub struct Templates {
    slack: Handlebars<'static>,
    webhook: Handlebars<'static>,
    /// Where each template came from, for messages: `built-in` or a file path.
    sources: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.sources.keys())
            .finish()
    }
}

/// JSON string escaping, without the surrounding quotes.
pub fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
}

/// Slack mrkdwn escaping (`&`, `<`, `>`), then JSON string escaping.
pub fn slack_escape(text: &str) -> String {
    let mut mrkdwn = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => mrkdwn.push_str("&amp;"),
            '<' => mrkdwn.push_str("&lt;"),
            '>' => mrkdwn.push_str("&gt;"),
            c => mrkdwn.push(c),
        }
    }
    json_escape(&mrkdwn)
}

/// A helper's first parameter as text: a string as it is, null or absent as empty, anything
/// else as JSON.
fn first_param_text(h: &Helper) -> String {
    match h.param(0).map(|p| p.value()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(escape);
    hb.register_helper("json", Box::new(json_helper));
    hb.register_helper("truncate", Box::new(truncate_helper));
    hb.register_helper("plain", Box::new(plain_helper));
    hb.register_helper("quote", Box::new(quote_helper));
    hb
}

/// `{{quote value}}`: a mrkdwn block quote: each line escaped and prefixed with `>`.
fn quote_helper(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    let escape = hb.get_escape_fn();
    let quoted: Vec<String> = text
        .lines()
        .map(|line| format!(">{}", escape(&format!(" {line}"))))
        .collect();
    // The lines are joined by an escaped newline: the output sits inside a JSON string.
    out.write(&quoted.join("\\n"))?;
    Ok(())
}

/// `{{plain value}}`: JSON-escaped but not mrkdwn-escaped, for URLs and `plain_text` fields of
/// Slack blocks, where Slack does not decode `&amp;`.
fn plain_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    out.write(&json_escape(&text))?;
    Ok(())
}

/// `{{json value}}`: the value as JSON, unescaped (for whole objects in webhook templates).
fn json_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
    let text = serde_json::to_string(&value)
        .map_err(|e| RenderErrorReason::Other(format!("json: {e}")))?;
    out.write(&text)?;
    Ok(())
}

/// `{{truncate value 200}}`: at most N characters (cut on a character boundary, `…` appended),
/// escaped like any value.
fn truncate_helper(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    let max = h.param(1).and_then(|p| p.value().as_u64()).ok_or_else(|| {
        RenderErrorReason::ParamTypeMismatchForName("truncate", "1".into(), "a whole number".into())
    })?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let cut = crate::event::truncate_chars(&text, max);
    out.write(&hb.get_escape_fn()(&cut))?;
    Ok(())
}

impl Templates {
    /// The built-in templates only.
    pub fn built_in() -> Templates {
        let mut t = Templates {
            slack: registry(slack_escape),
            webhook: registry(json_escape),
            sources: BTreeMap::new(),
        };
        for (name, text) in BUILT_IN {
            // Built-in templates are tested to compile; a failure here is a build defect.
            if let Err(e) = t.register(name, text, "built-in") {
                tracing::error!(template = name, error = %e, "built-in template does not compile");
            }
        }
        t
    }

    /// Compiles and registers one template (`slack/name` or `webhook/name`).
    pub fn register(&mut self, name: &str, text: &str, source: &str) -> Result<(), RenderError> {
        let (kind, _) = name.split_once('/').ok_or_else(|| RenderError::Missing {
            template: name.to_owned(),
        })?;
        let hb = match kind {
            "slack" => &mut self.slack,
            "webhook" => &mut self.webhook,
            _ => {
                return Err(RenderError::Missing {
                    template: name.to_owned(),
                })
            }
        };
        hb.register_template_string(name, text)
            .map_err(|e| RenderError::Template {
                template: name.to_owned(),
                message: match e.pos() {
                    Some((line, col)) => {
                        format!("{source} line {line}, column {col}: {}", e.reason())
                    }
                    None => format!("{source}: {}", e.reason()),
                },
            })?;
        self.sources.insert(name.to_owned(), source.to_owned());
        Ok(())
    }

    /// Whether `kind/name` exists.
    pub fn has(&self, kind: &str, name: &str) -> bool {
        self.sources.contains_key(&format!("{kind}/{name}"))
    }

    /// Whether a full template name (`slack/needs_input`) exists.
    pub fn has_name(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// The names of every template.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// The template a (rule, sink type, event type) renders with: `None` means the webhook
    /// sink's default body.
    pub fn resolve(
        &self,
        kind: &str,
        rule_template: Option<&str>,
        event: EventType,
    ) -> Option<String> {
        let kind = template_kind(kind);
        match rule_template {
            Some(t) => Some(format!("{kind}/{t}")),
            None if kind == "webhook" && !self.has(kind, event.as_str()) => None,
            None => Some(format!("{kind}/{}", event.as_str())),
        }
    }

    /// Renders the payload a sink of type `kind` receives for `event` under `rule`.
    pub fn render(
        &self,
        kind: &str,
        rule_template: Option<&str>,
        event: &Event,
        rule: &str,
        sink: &str,
    ) -> Result<String, RenderError> {
        let kind = template_kind(kind);
        let Some(name) = self.resolve(kind, rule_template, event.kind) else {
            return Ok(default_webhook_body(event).to_string());
        };
        let hb = if kind == "slack" {
            &self.slack
        } else {
            &self.webhook
        };
        if !hb.has_template(&name) {
            return Err(RenderError::Missing { template: name });
        }
        let text =
            hb.render(&name, &context(event, rule, sink))
                .map_err(|e| RenderError::Template {
                    template: name.clone(),
                    message: match (e.line_no, e.column_no) {
                        (Some(l), Some(c)) => format!("line {l}, column {c}: {}", e.reason()),
                        _ => e.reason().to_string(),
                    },
                })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| RenderError::InvalidJson {
            template: name.clone(),
            message: format!(
                "{e} (rendered line {}: {})",
                e.line(),
                text.lines()
                    .nth(e.line().saturating_sub(1))
                    .unwrap_or_default()
                    .trim()
            ),
        })?;
        Ok(value.to_string())
    }
}

/// The webhook body when no template is set (SPEC section 5).
pub fn default_webhook_body(event: &Event) -> Value {
    let mut body = json!({
        "type": event.kind.as_str(),
        "timestamp": rfc3339(event.timestamp()),
        "data": {
            "event_id": event.id,
            "session": event.session,
            "previous": event.previous,
            "change": event.change,
        }
    });
    if let Some(message) = &event.last_devin_message {
        body["data"]["last_devin_message"] = json!(message);
    }
    body
}

/// The event as a CloudEvents 1.0 event in structured mode: `id` is the delivery's
/// `webhook-id`, `source` names the producer (`devin-notify`, plus `/` and the organization for
/// an organization-scoped account), `data` is what a webhook body's `data` holds.
pub fn cloud_event(event: &Event, id: &str, source: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": format!("ai.devin.{}", event.kind.as_str()),
        "subject": event.session.session_id,
        "time": rfc3339(event.timestamp()),
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// A one-line summary and an emoji for an event, shared by the default templates.
pub fn headline(event: &Event) -> (&'static str, String) {
    match &event.change {
        Change::Status {
            status,
            status_detail,
            ..
        } => match (status.as_str(), status_detail.as_deref()) {
            (_, Some("waiting_for_user")) => (":raising_hand:", "Devin needs your input".into()),
            (_, Some("waiting_for_approval")) => (
                ":raising_hand:",
                "Devin is waiting for your approval".into(),
            ),
            (_, Some("finished")) | ("exit", _) => (":white_check_mark:", "Devin finished".into()),
            ("error", _) => (":x:", "Devin hit an error".into()),
            ("suspended", Some(d)) => (
                ":double_vertical_bar:",
                format!("Session suspended ({})", d.replace('_', " ")),
            ),
            ("suspended", None) => (":double_vertical_bar:", "Session suspended".into()),
            ("running", Some("working")) => (":arrow_forward:", "Devin is working".into()),
            (s, Some(d)) => (":information_source:", format!("Status is now {s} ({d})")),
            (s, None) => (":information_source:", format!("Status is now {s}")),
        },
        Change::PullRequest {
            pr_state,
            from_pr_state: None,
            ..
        } => (
            ":twisted_rightwards_arrows:",
            format!("Devin opened a pull request ({pr_state})"),
        ),
        Change::PullRequest { pr_state, .. } => match pr_state.as_str() {
            "merged" => (":tada:", "Pull request merged".into()),
            "closed" => (":no_entry_sign:", "Pull request closed".into()),
            s => (
                ":twisted_rightwards_arrows:",
                format!("Pull request is now {s}"),
            ),
        },
        Change::Waiting {
            waiting_seconds, ..
        } => (
            ":hourglass_flowing_sand:",
            format!(
                "Devin has been waiting for you for {}",
                human_duration(*waiting_seconds)
            ),
        ),
        Change::Acus { threshold, .. } => (
            ":money_with_wings:",
            format!("Session passed {threshold} ACUs"),
        ),
        Change::Session {} if event.kind == EventType::SessionArchived => {
            (":file_cabinet:", "Session archived".into())
        }
        Change::Session {} => (":sparkles:", "New Devin session".into()),
    }
}

/// The data a template sees.
///
/// `event` (`id`, `type`, `timestamp`), `session` and `previous` (as the API lists them),
/// `change` (the fields that changed), `title` (the title, or the session id), `headline` and
/// `emoji` (a summary line), `acus` (ACUs to one decimal), `repo` (of the event's PR),
/// `rule` and `sink` (names).
pub fn context(event: &Event, rule: &str, sink: &str) -> Value {
    let (emoji, headline) = headline(event);
    let repo = match &event.change {
        Change::PullRequest { repo, .. } => repo.clone(),
        _ => None,
    };
    json!({
        "event": {
            "id": event.id,
            "type": event.kind.as_str(),
            "timestamp": rfc3339(event.timestamp()),
        },
        "session": event.session,
        "previous": event.previous,
        "change": event.change,
        "title": event.session.display_title(),
        "headline": headline,
        "emoji": emoji,
        "acus": format!("{:.1}", event.session.acus_consumed),
        "repo": repo,
        "last_devin_message": event.last_devin_message,
        "rule": rule,
        "sink": sink,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::model::{PullRequest, Session};

    const NASTY: &str = "He said \"hi\" \\ back\nthen <https://evil.example|click> & <!channel>";

    fn session(title: &str) -> Session {
        let mut s = Session::new("devin-abc", "running");
        s.status_detail = Some("working".into());
        s.title = Some(title.into());
        s.url = "https://app.devin.ai/sessions/abc?x=1&y=2".into();
        s.tags = vec!["team-payments".into(), "<b>".into()];
        s.acus_consumed = 12.345;
        s.updated_at = 1_700_000_000;
        s
    }

    fn all_events(title: &str) -> Vec<Event> {
        let old = {
            let mut s = session(title);
            s.pull_requests = vec![PullRequest {
                pr_url: "https://github.com/acme/api/pull/1".into(),
                pr_state: "open".into(),
            }];
            s
        };
        let mut new = session(title);
        new.status_detail = Some("waiting_for_user".into());
        new.is_archived = Some(true);
        new.pull_requests = vec![
            PullRequest {
                pr_url: "https://github.com/acme/api/pull/1".into(),
                pr_state: "merged".into(),
            },
            PullRequest {
                pr_url: "https://github.com/acme/api/pull/2".into(),
                pr_state: "open".into(),
            },
        ];
        let mut events = diff(None, &new);
        events.truncate(1);
        events.extend(diff(Some(&old), &new));
        events
    }

    #[test]
    fn escaping() {
        assert_eq!(json_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(slack_escape("<a|b> & c"), "&lt;a|b&gt; &amp; c");
        assert_eq!(json_escape(""), "");
        assert_eq!(slack_escape("\u{1}"), "\\u0001");
    }

    #[test]
    fn every_default_slack_template_renders_valid_escaped_json() {
        let t = Templates::built_in();
        assert_eq!(
            t.names().count(),
            BUILT_IN.len(),
            "every built-in template compiles"
        );
        for event in all_events(NASTY) {
            let body = t.render("slack", None, &event, "r", "s").expect("renders");
            let v: Value = serde_json::from_str(&body).expect("valid JSON");
            let text = v["text"].as_str().expect("text fallback");
            assert!(!text.contains('<') || !text.contains("evil"), "{text}");
            let blocks = v["blocks"].to_string();
            assert!(
                !blocks.contains("<https://evil"),
                "link injection in {blocks}"
            );
            assert!(
                !blocks.contains("<!channel>"),
                "mention injection in {blocks}"
            );
            assert!(
                blocks.contains("&lt;https://evil.example|click&gt; &amp; &lt;!channel&gt;"),
                "{blocks}"
            );
            assert!(
                blocks.contains("<https://app.devin.ai/sessions/abc?x=1&amp;y=2|"),
                "title linked: {blocks}"
            );
        }
        let needs_input = t
            .render("slack", Some("needs_input"), &all_events("t")[1], "r", "s")
            .expect("renders");
        assert!(needs_input.contains("needs your input"), "{needs_input}");
    }

    #[test]
    fn long_values_stay_within_slacks_block_limits() {
        let t = Templates::built_in();
        let mut events = all_events(&"x".repeat(5000));
        for e in &mut events {
            e.last_devin_message = Some("y".repeat(500));
        }
        for event in &events {
            for template in [None, Some("needs_input")] {
                let body = t
                    .render("slack", template, event, "r", "s")
                    .expect("renders");
                let v: Value = serde_json::from_str(&body).expect("json");
                for block in v["blocks"].as_array().expect("blocks") {
                    let text = block["text"]["text"].as_str().unwrap_or_default();
                    assert!(
                        text.chars().count() <= 3000,
                        "section text of {} chars",
                        text.chars().count()
                    );
                }
                assert!(v["text"].as_str().unwrap_or_default().chars().count() <= 3000);
            }
        }
    }

    #[test]
    fn default_webhook_body_shape() {
        let t = Templates::built_in();
        let events = all_events(NASTY);
        let body = t
            .render("webhook", None, &events[1], "r", "s")
            .expect("renders");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["type"], "session.status_changed");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["session"]["title"], NASTY);
        assert_eq!(v["data"]["previous"]["status_detail"], "working");
        assert_eq!(v["data"]["change"]["status_detail"], "waiting_for_user");
        let created = t
            .render("webhook", None, &events[0], "r", "s")
            .expect("renders");
        let v: Value = serde_json::from_str(&created).expect("json");
        assert_eq!(v["data"]["previous"], Value::Null);
        assert_eq!(v["data"]["change"], json!({}));
    }

    #[test]
    fn custom_templates_escape_and_fail_loudly() {
        let mut t = Templates::built_in();
        t.register("webhook/custom", r#"{"title": "{{session.title}}", "all": {{json session.tags}}, "short": "{{truncate session.title 5}}"}"#, "test").expect("compiles");
        let e = &all_events(NASTY)[0];
        let body = t
            .render("webhook", Some("custom"), e, "r", "s")
            .expect("renders");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["title"], NASTY);
        assert_eq!(v["all"], json!(["team-payments", "<b>"]));
        assert_eq!(v["short"], "He s…");

        t.register("webhook/raw", r#"{"title": "{{{session.title}}}"}"#, "test")
            .expect("compiles");
        let err = t
            .render("webhook", Some("raw"), e, "r", "s")
            .expect_err("triple-stash breaks JSON");
        assert!(
            matches!(err, RenderError::InvalidJson { ref template, .. } if template == "webhook/raw"),
            "{err}"
        );

        let err = t
            .register(
                "slack/broken",
                "{\n  \"text\": \"{{#if x}}\"\n}",
                "file.hbs",
            )
            .expect_err("unclosed block");
        assert!(
            err.to_string().contains("slack/broken") && err.to_string().contains("line"),
            "{err}"
        );

        let err = t
            .render("slack", Some("nope"), e, "r", "s")
            .expect_err("missing");
        assert_eq!(
            err,
            RenderError::Missing {
                template: "slack/nope".into()
            }
        );
    }

    #[test]
    fn headlines() {
        let events = all_events("t");
        assert_eq!(headline(&events[0]).1, "New Devin session");
        assert_eq!(headline(&events[1]).1, "Devin needs your input");
        assert_eq!(headline(&events[2]).1, "Session archived");
        assert_eq!(headline(&events[3]).1, "Pull request merged");
        assert_eq!(headline(&events[4]).1, "Devin opened a pull request (open)");
    }
}
