//! `[sinks.NAME]`: where notifications go, one struct per destination type.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{lenient_string, Problem};
use crate::redact::strip_userinfo;
use crate::secret::Secret;
use crate::signing::signing_key;

use super::devin::secret_opt;

/// The Web API root.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";

/// The default of `api_base`.
pub fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

/// `[sinks.NAME]`: where notifications go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(transform = type_from_variable)]
pub enum SinkConfig {
    /// A Slack incoming webhook.
    Slack(SlackSinkConfig),
    /// A generic HTTP webhook, signed per Standard Webhooks.
    Webhook(WebhookSinkConfig),
    /// A Slack app (bot token): one thread per session (`sink::slack_app`).
    SlackApp(SlackAppSinkConfig),
    /// A Discord channel webhook (`sink::discord`).
    Discord(DiscordSinkConfig),
    /// A Microsoft Teams Workflows webhook (`sink::teams`).
    Teams(TeamsSinkConfig),
}

impl SinkConfig {
    /// The sink type. It names the template folder too, except that `slack_app` sinks render
    /// the `slack` templates ([`crate::render::template_kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Slack(_) => "slack",
            SinkConfig::Webhook(_) => "webhook",
            SinkConfig::SlackApp(_) => "slack_app",
            SinkConfig::Discord(_) => "discord",
            SinkConfig::Teams(_) => "teams",
        }
    }

    /// The endpoint URL (`None` for a Slack app, which calls the Web API with a token).
    pub fn url(&self) -> Option<&Secret> {
        match self {
            SinkConfig::Slack(s) => Some(&s.url),
            SinkConfig::Webhook(w) => Some(&w.url),
            SinkConfig::SlackApp(_) => None,
            SinkConfig::Discord(d) => Some(&d.url),
            SinkConfig::Teams(t) => Some(&t.url),
        }
    }

    /// The most messages a second (`None`: no limit). Slack's documented rate for incoming
    /// webhooks is about one message per second, so Slack sinks default to 1.
    pub fn max_per_second(&self) -> Option<f64> {
        match self {
            SinkConfig::Slack(s) => Some(s.max_per_second.unwrap_or(1.0)),
            SinkConfig::Webhook(w) => w.max_per_second,
            SinkConfig::SlackApp(a) => Some(a.max_per_second.unwrap_or(1.0)),
            // A Discord webhook allows about 5 requests per 2 seconds.
            SinkConfig::Discord(d) => Some(d.max_per_second.unwrap_or(2.5)),
            SinkConfig::Teams(t) => Some(t.max_per_second.unwrap_or(1.0)),
        }
    }

    /// Sends in flight at once (default 1 for Slack, whose rate allows no more, 8 for webhooks).
    pub fn concurrency(&self) -> usize {
        match self {
            SinkConfig::Slack(s) => s.concurrency.unwrap_or(1),
            SinkConfig::Webhook(w) => w.concurrency.unwrap_or(8),
            SinkConfig::SlackApp(a) => a.concurrency.unwrap_or(1),
            SinkConfig::Discord(d) => d.concurrency.unwrap_or(1),
            SinkConfig::Teams(t) => t.concurrency.unwrap_or(1),
        }
    }
}

/// The schema of a sink whose `type` is a `${VAR}` reference, beside those of the types: the
/// loader reads the reference's value, and the sink's other keys with it.
fn type_from_variable(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(types)) = schema.get_mut("oneOf") {
        types.push(serde_json::json!({
            "description": "A sink whose `type` is a ${VAR} reference: its other keys are checked once the variable is known (`devin-notify check`).",
            "type": "object",
            "properties": { "type": crate::de::schema::variable() },
            "required": ["type"]
        }));
    }
}

/// `type = "slack"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackSinkConfig {
    /// The incoming-webhook URL (a secret: it is the credential).
    pub url: Secret,
    /// The most messages a second (default 1, Slack's documented rate).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<usize>,
}

/// `type = "webhook"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The endpoint (treated as a secret: URLs often carry tokens).
    pub url: Secret,
    /// `whsec_<base64>`: signs deliveries per Standard Webhooks.
    #[serde(default, deserialize_with = "secret_opt")]
    #[schemars(with = "Secret")]
    pub secret: Option<Secret>,
    /// Extra headers sent with every delivery (values are secrets: they often carry tokens).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The most deliveries a second (default: no limit).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 8).
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<usize>,
    /// The body: `standard` (devin-notify's JSON), or `cloudevents` (CloudEvents 1.0,
    /// structured mode). Standard Webhooks headers and signature either way.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// `sinks.NAME.format` of a webhook sink: the body's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(transform = crate::de::schema::or_variable)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Standard,
    Cloudevents,
}

/// `type = "discord"`: a Discord channel webhook
/// (`https://discord.com/api/webhooks/<id>/<token>`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscordSinkConfig {
    /// The webhook URL (a secret: its path is the credential).
    pub url: Secret,
    /// The most messages a second (default 2.5: a webhook's limit is about 5 per 2 s).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<usize>,
}

/// `type = "teams"`: a Microsoft Teams channel, through a Workflows "When a Teams webhook
/// request is received" URL.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsSinkConfig {
    /// The Workflows URL (a secret: its query carries the signature).
    pub url: Secret,
    /// The most messages a second (default 1).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<usize>,
}

/// `type = "slack_app"`: a Slack app's bot token posting to one channel, a thread per session;
/// or, with `to = "creator"`, direct messages to each session's creator.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    { "required": ["channel"], "not": { "required": ["to"] } },
    { "required": ["to"], "not": { "required": ["channel"] } },
]))]
pub struct SlackAppSinkConfig {
    /// The bot token (`xoxb-...`, scope `chat:write`).
    pub token: Secret,
    /// The channel: an id (`C0123ABCD`) or a name. The bot must be a member. Required unless
    /// `to = "creator"`.
    #[serde(default, deserialize_with = "crate::de::lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub channel: Option<String>,
    /// `"creator"`: instead of `channel`, a direct message to the person who started the
    /// session (scopes `chat:write`, `users:read.email`).
    #[serde(default)]
    pub to: Option<Recipient>,
    /// With `to = "creator"`: where messages go whose creator cannot be resolved (a service
    /// user, an unknown email, an account signal). Absent: they go to the dead letters.
    #[serde(default, deserialize_with = "crate::de::lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub fallback_channel: Option<String>,
    /// With `to = "creator"`: how long a creator lookup (found or not) is kept in the store
    /// (default 1d).
    #[serde(default, deserialize_with = "crate::de::duration_opt")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub lookup_ttl: Option<std::time::Duration>,
    /// Update the session's parent message in place with each new message.
    #[serde(default)]
    pub update_parent: bool,
    /// The Web API root (default `https://slack.com/api`).
    #[serde(default = "default_api_base", deserialize_with = "lenient_string")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub api_base: String,
    /// The most messages a second (default 1, Slack's rate for posting to a channel).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<usize>,
}

/// `to` of a Slack app sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Recipient {
    /// The session's creator, by direct message.
    Creator,
}

/// How long a creator lookup is kept by default.
pub const DEFAULT_LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

impl SlackAppSinkConfig {
    /// Whether the sink sends direct messages to the session's creator.
    pub fn to_creator(&self) -> bool {
        self.to == Some(Recipient::Creator)
    }

    /// How long a creator lookup is kept.
    pub fn lookup_ttl(&self) -> std::time::Duration {
        self.lookup_ttl.unwrap_or(DEFAULT_LOOKUP_TTL)
    }

    /// Checks a `[sinks.NAME]` of type `slack_app`; `key` is `sinks.NAME`.
    pub fn validate(&self, key: &str, p: &mut Vec<Problem>) {
        let token = self.token.expose();
        // The token is a secret: say what is wrong without printing it.
        if token.is_empty() {
            p.push(Problem::new(format!("{key}.token"), "is empty"));
        } else if !token.starts_with("xox") || token.chars().any(char::is_whitespace) {
            p.push(Problem::new(
                format!("{key}.token"),
                "is not a Slack token (a bot token starts with `xoxb-`)",
            ));
        }
        self.validate_recipient(key, p);
        let base = &self.api_base;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            p.push(Problem::new(
                format!("{key}.api_base"),
                format!("`{}` is not an http(s) URL", strip_userinfo(base)),
            ));
        }
    }
}

impl SlackAppSinkConfig {
    /// `channel`, or `to = "creator"` with `fallback_channel` and `lookup_ttl`.
    fn validate_recipient(&self, key: &str, p: &mut Vec<Problem>) {
        let bad = |c: &str| c.is_empty() || c.chars().any(char::is_whitespace);
        match (self.to_creator(), self.channel.as_deref().unwrap_or_default()) {
            (true, "") => {}
            (true, _) => p.push(Problem::new(
                format!("{key}.channel"),
                "cannot be set with to = \"creator\" (use fallback_channel for messages without a creator)",
            )),
            (false, "") => p.push(Problem::new(
                format!("{key}.channel"),
                "is required (a channel id like C0123ABCD or a name), unless to = \"creator\"",
            )),
            (false, c) if bad(c) => p.push(Problem::new(
                format!("{key}.channel"),
                format!("`{c}` is not a channel id (C0123ABCD) or name"),
            )),
            (false, _) => {}
        }
        if let Some(c) = &self.fallback_channel {
            if !self.to_creator() {
                p.push(Problem::new(
                    format!("{key}.fallback_channel"),
                    "applies with to = \"creator\" only",
                ));
            } else if bad(c) {
                p.push(Problem::new(
                    format!("{key}.fallback_channel"),
                    format!("`{c}` is not a channel id (C0123ABCD) or name"),
                ));
            }
        }
        if self.lookup_ttl.is_some() && !self.to_creator() {
            p.push(Problem::new(
                format!("{key}.lookup_ttl"),
                "applies with to = \"creator\" only",
            ));
        }
    }
}

impl SinkConfig {
    /// Checks `[sinks.NAME]`: its URL, limits, and what its type needs. URLs, tokens and header
    /// values are secrets: problems say what is wrong without printing them.
    pub fn validate(&self, name: &str, p: &mut Vec<Problem>) {
        let key = format!("sinks.{name}");
        if let Some(url) = self.url().map(Secret::expose) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                p.push(Problem::new(format!("{key}.url"), "is not an http(s) URL"));
            }
        }
        if let SinkConfig::SlackApp(app) = self {
            app.validate(&key, p);
        }
        if let Some(rate) = self.max_per_second() {
            if !(rate.is_finite() && rate > 0.0) {
                p.push(Problem::new(
                    format!("{key}.max_per_second"),
                    "must be a number above 0",
                ));
            }
        }
        if !(1..=256).contains(&self.concurrency()) {
            p.push(Problem::new(
                format!("{key}.concurrency"),
                "must be in 1..=256",
            ));
        }
        if let SinkConfig::Webhook(w) = self {
            w.validate(&key, p);
        }
    }
}

impl WebhookSinkConfig {
    /// Checks a `[sinks.NAME]` of type `webhook`: its signing secret and extra headers.
    pub fn validate(&self, key: &str, p: &mut Vec<Problem>) {
        if let Some(secret) = &self.secret {
            if let Err(e) = signing_key(secret) {
                p.push(Problem::new(format!("{key}.secret"), e));
            }
        }
        for (header, value) in &self.headers {
            let lower = header.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                p.push(Problem::new(
                    format!("{key}.headers"),
                    format!("`{header}` is not a valid header name"),
                ));
            } else if lower.starts_with("webhook-")
                || lower == "content-type"
                || lower == "content-length"
            {
                p.push(Problem::new(
                    format!("{key}.headers"),
                    format!("`{header}` is set by devin-notify and cannot be overridden"),
                ));
            }
            if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
                p.push(Problem::new(
                    format!("{key}.headers.{header}"),
                    "is not a valid header value",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_keys_and_hides_the_token() {
        let sink = |token: &str, channel: &str, base: &str| SlackAppSinkConfig {
            token: Secret::new(token),
            channel: Some(channel.into()),
            to: None,
            fallback_channel: None,
            lookup_ttl: None,
            update_parent: false,
            api_base: base.into(),
            max_per_second: None,
            concurrency: None,
        };
        let mut p = Vec::new();
        sink("xoxb-1-2", "C0123", DEFAULT_API_BASE).validate("sinks.app", &mut p);
        assert!(p.is_empty(), "{p:?}");
        sink("Bearer secret-value", "my channel", "ftp://x").validate("sinks.app", &mut p);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["sinks.app.token", "sinks.app.channel", "sinks.app.api_base"]
        );
        assert!(!format!("{p:?}").contains("secret-value"), "{p:?}");
    }
}
