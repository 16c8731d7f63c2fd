//! Rendering: an event and a template in, the exact payload a sink receives out. Pure.
//!
//! Templates are handlebars files named `<sink type>/<name>.hbs`. The defaults are compiled into
//! the binary from `templates/`; `templates.dir` overrides them file by file and adds new ones.
//! Every template produces JSON, so every interpolated value is JSON-escaped, and in Slack
//! templates also mrkdwn-escaped (`&`, `<`, `>`), so no session title can break the payload or
//! inject a link. A rendered payload that is not valid JSON is an error, never a send; valid
//! payloads are re-serialized compactly.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde_json::Value;

mod escape;
mod fit;
mod payload;
pub mod summary;

use self::escape::registry;
pub use self::escape::{discord_escape, json_escape, slack_escape, teams_escape};
pub use self::fit::{cut_text, fit};
pub use self::payload::{
    cloud_envelope, cloud_event, color, context, default_webhook_body, discord_limits, headline,
    slack_limits, teams_message, TEAMS_MAX_BYTES,
};
use crate::event::{Event, EventType};

/// The templates compiled into the binary: (name, text).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "slack/session.created",
        include_str!("../../templates/slack/session.created.hbs"),
    ),
    (
        "slack/session.status_changed",
        include_str!("../../templates/slack/session.status_changed.hbs"),
    ),
    (
        "slack/session.archived",
        include_str!("../../templates/slack/session.archived.hbs"),
    ),
    (
        "slack/pull_request.opened",
        include_str!("../../templates/slack/pull_request.opened.hbs"),
    ),
    (
        "slack/pull_request.state_changed",
        include_str!("../../templates/slack/pull_request.state_changed.hbs"),
    ),
    (
        "slack/needs_input",
        include_str!("../../templates/slack/needs_input.hbs"),
    ),
    (
        "slack/session.waiting",
        include_str!("../../templates/slack/session.waiting.hbs"),
    ),
    (
        "slack/session.acus_exceeded",
        include_str!("../../templates/slack/session.acus_exceeded.hbs"),
    ),
    (
        "discord/session.created",
        include_str!("../../templates/discord/session.created.hbs"),
    ),
    (
        "discord/session.status_changed",
        include_str!("../../templates/discord/session.status_changed.hbs"),
    ),
    (
        "discord/session.archived",
        include_str!("../../templates/discord/session.archived.hbs"),
    ),
    (
        "discord/pull_request.opened",
        include_str!("../../templates/discord/pull_request.opened.hbs"),
    ),
    (
        "discord/pull_request.state_changed",
        include_str!("../../templates/discord/pull_request.state_changed.hbs"),
    ),
    (
        "discord/needs_input",
        include_str!("../../templates/discord/needs_input.hbs"),
    ),
    (
        "discord/session.waiting",
        include_str!("../../templates/discord/session.waiting.hbs"),
    ),
    (
        "discord/session.acus_exceeded",
        include_str!("../../templates/discord/session.acus_exceeded.hbs"),
    ),
    (
        "teams/session.created",
        include_str!("../../templates/teams/session.created.hbs"),
    ),
    (
        "teams/session.status_changed",
        include_str!("../../templates/teams/session.status_changed.hbs"),
    ),
    (
        "teams/session.archived",
        include_str!("../../templates/teams/session.archived.hbs"),
    ),
    (
        "teams/pull_request.opened",
        include_str!("../../templates/teams/pull_request.opened.hbs"),
    ),
    (
        "teams/pull_request.state_changed",
        include_str!("../../templates/teams/pull_request.state_changed.hbs"),
    ),
    (
        "teams/needs_input",
        include_str!("../../templates/teams/needs_input.hbs"),
    ),
    (
        "teams/session.waiting",
        include_str!("../../templates/teams/session.waiting.hbs"),
    ),
    (
        "teams/session.acus_exceeded",
        include_str!("../../templates/teams/session.acus_exceeded.hbs"),
    ),
    (
        "slack/digest",
        include_str!("../../templates/slack/digest.hbs"),
    ),
    (
        "discord/digest",
        include_str!("../../templates/discord/digest.hbs"),
    ),
    (
        "teams/digest",
        include_str!("../../templates/teams/digest.hbs"),
    ),
    (
        "webhook/digest",
        include_str!("../../templates/webhook/digest.hbs"),
    ),
    (
        "slack/held_summary",
        include_str!("../../templates/slack/held_summary.hbs"),
    ),
    (
        "discord/held_summary",
        include_str!("../../templates/discord/held_summary.hbs"),
    ),
    (
        "teams/held_summary",
        include_str!("../../templates/teams/held_summary.hbs"),
    ),
    (
        "slack/queue.status_changed",
        include_str!("../../templates/slack/queue.status_changed.hbs"),
    ),
    (
        "slack/consumption.daily_exceeded",
        include_str!("../../templates/slack/consumption.daily_exceeded.hbs"),
    ),
    (
        "discord/queue.status_changed",
        include_str!("../../templates/discord/queue.status_changed.hbs"),
    ),
    (
        "discord/consumption.daily_exceeded",
        include_str!("../../templates/discord/consumption.daily_exceeded.hbs"),
    ),
    (
        "teams/queue.status_changed",
        include_str!("../../templates/teams/queue.status_changed.hbs"),
    ),
    (
        "teams/consumption.daily_exceeded",
        include_str!("../../templates/teams/consumption.daily_exceeded.hbs"),
    ),
];

/// The sink types that have template folders.
pub const SINK_KINDS: [&str; 4] = ["slack", "webhook", "discord", "teams"];

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
    discord: Handlebars<'static>,
    teams: Handlebars<'static>,
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

impl Templates {
    /// The built-in templates only.
    pub fn built_in() -> Templates {
        let mut t = Templates {
            slack: registry(slack_escape),
            webhook: registry(json_escape),
            discord: registry(discord_escape),
            teams: registry(teams_escape),
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
            "discord" => &mut self.discord,
            "teams" => &mut self.teams,
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
        self.render_named(kind, &name, &context(event, rule, sink))
    }

    /// Renders the template `name` (`slack/held_summary`) of a sink type with any context
    /// (a summary of held deliveries has no single event): valid JSON, or an error.
    pub fn render_named(
        &self,
        kind: &str,
        name: &str,
        context: &Value,
    ) -> Result<String, RenderError> {
        let name = name.to_owned();
        let hb = match template_kind(kind) {
            "slack" => &self.slack,
            "discord" => &self.discord,
            "teams" => &self.teams,
            _ => &self.webhook,
        };
        if !hb.has_template(&name) {
            return Err(RenderError::Missing { template: name });
        }
        let text = hb
            .render(&name, context)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn slack_escape_defuses_formatting_but_keeps_words_and_urls() {
        let z = '\u{200B}';
        assert_eq!(
            slack_escape("*bold* _it_ ~gone~ `code`"),
            format!("{z}*{z}bold{z}*{z} {z}_{z}it{z}_{z} {z}~{z}gone{z}~{z} {z}`{z}code{z}`{z}")
        );
        assert_eq!(slack_escape("my_branch 2*3"), "my_branch 2*3");
        assert_eq!(
            slack_escape("https://github.com/a/b_/pull/1?x=*_*"),
            "https://github.com/a/b_/pull/1?x=*_*",
            "a URL stays a working link target"
        );
        assert_eq!(
            slack_escape("see https://x/_a_"),
            format!("see https://x/{z}_{z}a{z}_{z}"),
            "text that holds a URL is text"
        );
    }

    /// Every value an attacker controls (a session's title, tags, Devin's message), holding
    /// every destination's markup at once, rendered by every default template of every
    /// destination: the payload stays valid JSON and no value pings, links or formats.
    #[test]
    fn hostile_values_cannot_break_ping_link_or_format_in_any_destination() {
        const HOSTILE: &str = "@everyone @here <@123> <!channel> [x](https://evil.example) \
            <https://evil.example|x> **b** *b* _i_ ~s~ `c` \"q\" \\ back\nslash\n> quote\n# head";
        let t = Templates::built_in();
        let mut events = all_events(HOSTILE);
        for e in &mut events {
            e.session.tags = vec![HOSTILE.into()];
            e.last_devin_message = Some(HOSTILE.into());
        }
        // Markup that must never appear verbatim in a rendered payload, per destination.
        let forbidden: &[(&str, &[&str])] = &[
            (
                "slack",
                &[
                    "<@123>",
                    "<!channel>",
                    "<https://evil",
                    "*b*",
                    "_i_",
                    "~s~",
                    "`c`",
                ],
            ),
            (
                "discord",
                &["[x](", " @everyone", "<@123>", "**b**", "*b*", "_i_", "`c`"],
            ),
            (
                "teams",
                &["[x](", "**b**", "*b*", "_i_", "~s~", "`c`", "\n# head"],
            ),
        ];
        for event in &events {
            for kind in SINK_KINDS {
                for name in [None, Some("needs_input")] {
                    if kind == "webhook" && name.is_some() {
                        continue;
                    }
                    let body = t.render(kind, name, event, "r", "s").expect("renders");
                    let v: Value = serde_json::from_str(&body).expect("valid JSON");
                    let text = v.to_string();
                    for (_, marks) in forbidden.iter().filter(|(k, _)| *k == kind) {
                        for mark in *marks {
                            assert!(!text.contains(mark), "{kind}: `{mark}` survived in {text}");
                        }
                    }
                    if kind == "webhook" {
                        assert_eq!(
                            v["data"]["session"]["title"], HOSTILE,
                            "webhooks carry the value as it is"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_default_discord_template_is_escaped_valid_json_within_limits() {
        let t = Templates::built_in();
        let nasty =
            "@everyone <@123> [x](https://evil.example) **bold** `code` \"q\" \\ # head\n> quote";
        let mut events = all_events(nasty);
        // As long as devin.last_message_max_chars allows by default (500).
        events[1].last_devin_message = Some("@here [click](https://evil) ~~gone~~ ".repeat(13));
        let mut names: Vec<Option<&str>> = vec![None];
        names.push(Some("needs_input"));
        for event in &events {
            for name in &names {
                let body = t
                    .render("discord", *name, event, "r", "s")
                    .expect("renders");
                let v: Value = serde_json::from_str(&body).expect("valid JSON");
                assert_eq!(discord_limits(&v), Vec::<String>::new(), "{body}");
                let embed = &v["embeds"][0];
                let title = embed["title"].as_str().expect("a title");
                assert!(
                    title.starts_with(
                        "\\@everyone \\<\\@123\\> \\[x\\]\\(https\\://evil.example\\)"
                    ),
                    "{title}"
                );
                assert!(title.contains("\\*\\*bold\\*\\*"), "{title}");
                let text = v.to_string();
                assert!(
                    !text.contains("[click](") && !text.contains("[x]("),
                    "{text}"
                );
                assert_eq!(embed["url"], "https://app.devin.ai/sessions/abc?x=1&y=2");
                assert_eq!(embed["timestamp"], "2023-11-14T22:13:20Z");
                assert!(embed["footer"]["text"]
                    .as_str()
                    .is_some_and(|f| !f.contains('\\')));
            }
        }
        let mut huge = json!({"embeds": [{"title": "t".repeat(300), "fields": vec![json!({"name": "n", "value": "v"}); 26]}]});
        assert_eq!(
            discord_limits(&huge).len(),
            2,
            "{:?}",
            discord_limits(&huge)
        );
        huge["content"] = json!("c".repeat(2001));
        assert_eq!(discord_limits(&huge).len(), 3);
    }

    #[test]
    fn slack_limits_are_checked() {
        let section =
            json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}});
        let ok = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]});
        assert!(slack_limits(&ok).is_empty());
        let over = json!({"blocks": vec![section; 51]});
        assert_eq!(slack_limits(&over).len(), 52, "{:?}", slack_limits(&over));
        for event in all_events(&"t".repeat(5000)) {
            let body = Templates::built_in()
                .render("slack", None, &event, "r", "s")
                .expect("renders");
            let v: Value = serde_json::from_str(&body).expect("json");
            assert!(slack_limits(&v).is_empty(), "{body}");
        }
    }

    #[test]
    fn every_default_teams_template_is_an_adaptive_card_with_values_defused() {
        let t = Templates::built_in();
        let nasty = "**bold** [x](https://evil.example) _it_ - item <at>x</at> \"q\" \\";
        let mut events = all_events(nasty);
        events[1].last_devin_message = Some("[click](https://evil) **now**".into());
        for event in &events {
            for name in [None, Some("needs_input")] {
                let body = t.render("teams", name, event, "r", "s").expect("renders");
                assert!(body.len() < TEAMS_MAX_BYTES, "{}", body.len());
                let card: Value = serde_json::from_str(&body).expect("valid JSON");
                assert_eq!(card["type"], "AdaptiveCard");
                assert_eq!(card["version"], "1.4");
                let items = card["body"].as_array().expect("a body");
                assert!(items.iter().all(|i| i["type"].is_string()), "{card}");
                let action = &card["actions"][0];
                assert_eq!(action["type"], "Action.OpenUrl");
                assert_eq!(action["url"], "https://app.devin.ai/sessions/abc?x=1&y=2");
                let text = card.to_string();
                for injected in ["**bold**", "[x](", "[click](", "_it_", "**now**", "- item"] {
                    assert!(!text.contains(injected), "`{injected}` survived: {text}");
                }
                assert!(text.contains("*\u{200B}*\u{200B}bold"), "{text}");
                let message = teams_message(card);
                assert_eq!(
                    message["attachments"][0]["contentType"],
                    "application/vnd.microsoft.card.adaptive"
                );
                assert_eq!(message["attachments"][0]["contentUrl"], Value::Null);
            }
        }
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

    /// The account signals (no session) with values from the API that try to break out.
    fn account_events() -> Vec<Event> {
        let hostile = "<!channel> @everyone [x](https://evil.example) **b** \"q\"";
        let queue = crate::model::QueueInfo {
            queue_size: 7,
            status: hostile.into(),
        };
        let mut products = serde_json::Map::new();
        products.insert(hostile.into(), serde_json::json!(3.5));
        products.insert("devin".into(), serde_json::json!(500));
        let answer = crate::model::DailyConsumption {
            consumption_by_date: vec![crate::model::DayConsumption {
                date: hostile.into(),
                acus: 503.5,
                acus_by_product: products,
            }],
            total_acus: 503.5,
        };
        let mut events: Vec<Event> =
            crate::diff::queue_change(Some("normal"), &queue, 1_700_000_000_000)
                .into_iter()
                .collect();
        events.extend(crate::diff::consumption_crossings(
            &answer,
            &[500.0],
            1_700_000_000,
        ));
        events
    }

    #[test]
    fn account_signals_render_in_every_destination_escaped_and_within_limits() {
        let t = Templates::built_in();
        let events = account_events();
        assert_eq!(events.len(), 2);
        for event in &events {
            for kind in SINK_KINDS {
                let body = t.render(kind, None, event, "r", "s").expect("renders");
                let v: Value = serde_json::from_str(&body).expect("valid JSON");
                let text = v.to_string();
                match kind {
                    "slack" => {
                        assert_eq!(slack_limits(&v), Vec::<String>::new());
                        assert!(
                            !text.contains("<!channel>") && !text.contains("<https://evil"),
                            "{text}"
                        );
                        assert!(
                            text.contains("<https://app.devin.ai|"),
                            "links to Devin: {text}"
                        );
                    }
                    "discord" => {
                        assert_eq!(discord_limits(&v), Vec::<String>::new());
                        assert!(
                            !text.contains(" @everyone") && !text.contains("[x]("),
                            "{text}"
                        );
                    }
                    "teams" => {
                        assert_eq!(v["actions"][0]["type"], "Action.OpenUrl");
                        assert_eq!(v["actions"][0]["url"], payload::DEVIN_APP_URL);
                        assert!(!text.contains("[x](") && !text.contains("**b**"), "{text}");
                    }
                    _ => {
                        assert_eq!(v["type"], event.kind.as_str());
                        assert!(v["data"].get("session").is_none(), "{v}");
                        assert!(v["data"].get("previous").is_none(), "{v}");
                        assert_eq!(v["data"]["subject"], event.subject());
                        assert_eq!(
                            v["data"]["change"],
                            serde_json::to_value(&event.change).expect("ser")
                        );
                        let back = Event::from_webhook_body(&v).expect("reads back");
                        assert_eq!(&back, event);
                    }
                }
            }
        }
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
