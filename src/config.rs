//! Configuration: one TOML file, layered with figment.
//!
//! Layers, lowest first: the defaults written on each struct below, the file (`--config`), then
//! environment variables prefixed `DEVIN_NOTIFY_` with `__` between levels
//! (`DEVIN_NOTIFY_DEVIN__POLL_INTERVAL=10s`). Any string may hold `${VAR}`, replaced by that
//! environment variable; a missing variable is an error naming it and the key. Unknown keys are
//! errors, so a typo cannot silently disable a rule. [`Config::load`] reports every problem it
//! finds, each with its key path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::Deserialize;

use crate::de::{duration, lenient_string, lenient_string_opt, one_or_many};
use crate::event::EventType;
use crate::rules::Rule;
use crate::secret::Secret;

/// The default path of the config file.
pub const DEFAULT_PATH: &str = "config/devin-notify.toml";
/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "DEVIN_NOTIFY_";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub devin: DevinConfig,
    pub store: StoreConfig,
    pub templates: TemplatesConfig,
    pub delivery: DeliveryConfig,
    pub sinks: BTreeMap<String, SinkConfig>,
    pub rules: Vec<Rule>,
    pub log: LogConfig,
    pub server: ServerConfig,
}

/// `[server]`: health, readiness, metrics and admin endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/healthz`, `/readyz`, `/metrics` on (e.g. `127.0.0.1:9464`). Admin
    /// endpoints (`/admin/...`, used by `dead-letters` and `sinks` while `run` holds the
    /// store) are served only on a loopback address. Absent: no server.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[devin]`: where and how to poll.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevinConfig {
    /// API root; the listing is `{base_url}/v3/enterprise/sessions`.
    #[serde(deserialize_with = "lenient_string")]
    pub base_url: String,
    /// Service-user token (`cog_...`). When absent, the `DEVIN_API_KEY` variable.
    #[serde(deserialize_with = "secret_opt")]
    pub token: Option<Secret>,
    /// Time between the starts of two polls.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Sessions per page, 1..=200.
    pub page_size: u32,
    /// Total time allowed for one API request.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Time allowed to open a connection.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Largest page body accepted, in bytes.
    pub max_response_bytes: usize,
    /// After the baseline, polls list only sessions updated after the stored high-water mark
    /// minus this overlap (default: twice `poll_interval`).
    #[serde(deserialize_with = "crate::de::duration_opt")]
    pub incremental_overlap: Option<Duration>,
    /// A full listing this often catches anything an incremental listing could miss (a
    /// session whose `updated_at` went backwards, clock skew). `0s`: every poll is full.
    #[serde(deserialize_with = "duration")]
    pub full_resync_every: Duration,
    /// Query filters passed through to the listing.
    pub filters: Filters,
    /// List one organization's sessions (`/v3/organizations/{org_id}/sessions`, for a service
    /// user with ViewOrgSessions) instead of the enterprise's.
    #[serde(deserialize_with = "lenient_string_opt")]
    pub org_id: Option<String>,
    /// When a session starts waiting for input or approval, read its messages and quote the
    /// latest from Devin (`last_devin_message` in templates).
    pub fetch_messages: bool,
    /// The quote's length at most, in characters.
    pub last_message_max_chars: usize,
}

impl Default for DevinConfig {
    fn default() -> Self {
        DevinConfig {
            base_url: "https://api.devin.ai".into(),
            token: None,
            poll_interval: Duration::from_secs(30),
            page_size: 100,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 32 * 1024 * 1024,
            incremental_overlap: None,
            full_resync_every: Duration::from_secs(3600),
            filters: Filters::default(),
            org_id: None,
            fetch_messages: true,
            last_message_max_chars: 500,
        }
    }
}

impl DevinConfig {
    /// The overlap of incremental listings, in whole seconds (at least 1).
    pub fn overlap_secs(&self) -> i64 {
        let overlap = self.incremental_overlap.unwrap_or(self.poll_interval * 2);
        i64::try_from(overlap.as_secs_f64().ceil() as u64)
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Secret::deserialize(d).map(Some)
}

/// `[devin.filters]`: query parameters of the listing (SPEC section 2). Arrays repeat the key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    #[serde(deserialize_with = "one_or_many")]
    pub session_ids: Option<Vec<String>>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub updated_before: Option<i64>,
    #[serde(deserialize_with = "one_or_many")]
    pub tags: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string_opt")]
    pub playbook_id: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub origins: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string_opt")]
    pub schedule_id: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub user_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "one_or_many")]
    pub service_user_ids: Option<Vec<String>>,
    #[serde(deserialize_with = "one_or_many")]
    pub repo_names: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string_opt")]
    pub category: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub org_ids: Option<Vec<String>>,
    pub include_deleted_orgs: Option<bool>,
}

impl Filters {
    /// The filters set that only the enterprise listing accepts.
    pub fn enterprise_only(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.user_ids.is_some() {
            out.push("user_ids");
        }
        if self.service_user_ids.is_some() {
            out.push("service_user_ids");
        }
        if self.repo_names.is_some() {
            out.push("repo_names");
        }
        if self.category.is_some() {
            out.push("category");
        }
        if self.org_ids.is_some() {
            out.push("org_ids");
        }
        if self.include_deleted_orgs.is_some() {
            out.push("include_deleted_orgs");
        }
        out
    }
}

/// `[store]`: the sled database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The sled directory, created when missing.
    pub path: PathBuf,
    /// What the first run does with the sessions it finds.
    pub baseline: Baseline,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("data/devin-notify"),
            baseline: Baseline::Silent,
            cache_capacity: 16 * 1024 * 1024,
        }
    }
}

/// `store.baseline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// Record the sessions that exist, send nothing.
    #[default]
    Silent,
    /// Announce every existing session with `session.created`.
    Notify,
}

/// `[templates]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// A folder of `<sink type>/<name>.hbs` files overriding and extending the built-in ones.
    pub dir: Option<PathBuf>,
}

/// `[delivery]`: retries and timeouts of sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a delivery goes to the dead letters.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each attempt, with jitter.
    #[serde(deserialize_with = "duration")]
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    #[serde(deserialize_with = "duration")]
    pub max_backoff: Duration,
    /// Time allowed for one send.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 12,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10 * 3600),
            timeout: Duration::from_secs(15),
        }
    }
}

/// `[sinks.NAME]`: where notifications go.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// A Slack incoming webhook.
    Slack(SlackSinkConfig),
    /// A generic HTTP webhook, signed per Standard Webhooks.
    Webhook(WebhookSinkConfig),
    /// A Slack app (bot token): one thread per session ([`crate::slack_app`]).
    SlackApp(SlackAppSinkConfig),
}

impl SinkConfig {
    /// The sink type. It names the template folder too, except that `slack_app` sinks render
    /// the `slack` templates ([`crate::render::template_kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Slack(_) => "slack",
            SinkConfig::Webhook(_) => "webhook",
            SinkConfig::SlackApp(_) => "slack_app",
        }
    }

    /// The endpoint URL (`None` for a Slack app, which calls the Web API with a token).
    pub fn url(&self) -> Option<&Secret> {
        match self {
            SinkConfig::Slack(s) => Some(&s.url),
            SinkConfig::Webhook(w) => Some(&w.url),
            SinkConfig::SlackApp(_) => None,
        }
    }

    /// The most messages a second (`None`: no limit). Slack's documented rate for incoming
    /// webhooks is about one message per second, so Slack sinks default to 1.
    pub fn max_per_second(&self) -> Option<f64> {
        match self {
            SinkConfig::Slack(s) => Some(s.max_per_second.unwrap_or(1.0)),
            SinkConfig::Webhook(w) => w.max_per_second,
            SinkConfig::SlackApp(a) => Some(a.max_per_second.unwrap_or(1.0)),
        }
    }

    /// Sends in flight at once (default 1 for Slack, whose rate allows no more, 8 for webhooks).
    pub fn concurrency(&self) -> usize {
        match self {
            SinkConfig::Slack(s) => s.concurrency.unwrap_or(1),
            SinkConfig::Webhook(w) => w.concurrency.unwrap_or(8),
            SinkConfig::SlackApp(a) => a.concurrency.unwrap_or(1),
        }
    }
}

/// `type = "slack"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSinkConfig {
    /// The incoming-webhook URL (a secret: it is the credential).
    pub url: Secret,
    /// The most messages a second (default 1, Slack's documented rate).
    #[serde(default)]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The endpoint (treated as a secret: URLs often carry tokens).
    pub url: Secret,
    /// `whsec_<base64>`: signs deliveries per Standard Webhooks.
    #[serde(default, deserialize_with = "secret_opt")]
    pub secret: Option<Secret>,
    /// Extra headers sent with every delivery (values are secrets: they often carry tokens).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The most deliveries a second (default: no limit).
    #[serde(default)]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 8).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `type = "slack_app"`: a Slack app's bot token posting to one channel, a thread per session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAppSinkConfig {
    /// The bot token (`xoxb-...`, scope `chat:write`).
    pub token: Secret,
    /// The channel: an id (`C0123ABCD`) or a name. The bot must be a member.
    #[serde(deserialize_with = "lenient_string")]
    pub channel: String,
    /// Update the session's parent message in place with each new message.
    #[serde(default)]
    pub update_parent: bool,
    /// The Web API root (default `https://slack.com/api`).
    #[serde(
        default = "crate::slack_app::default_api_base",
        deserialize_with = "lenient_string"
    )]
    pub api_base: String,
    /// The most messages a second (default 1, Slack's rate for posting to a channel).
    #[serde(default)]
    pub max_per_second: Option<f64>,
    /// Sends in flight at once (default 1).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One configuration problem, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `rules[2].sinks` or `sinks.team_slack.url`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the configuration came from.
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads and validates the configuration at `path`, layered with the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], with `${VAR}` resolved by `lookup` (environment overrides still come
    /// from the process environment).
    pub fn load_with_env(
        path: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            path: path.to_owned(),
            problems,
        };
        if !path.is_file() {
            return Err(fail(vec![Problem::new(
                "",
                format!(
                    "no config file at {} (pass --config PATH; config/devin-notify.toml in the repository is a commented example)",
                    path.display()
                ),
            )]));
        }
        let layered = Figment::new()
            .merge(Toml::file_exact(path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"));
        let raw: Dict = layered
            .extract()
            .map_err(|e| fail(figment_problems(e, "")))?;
        Self::from_dict(raw, &lookup).map_err(fail)
    }

    /// Parses a configuration from TOML text alone (no environment layer, `${VAR}` from
    /// `lookup`). For tests and `preview`.
    pub fn from_toml(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            path: PathBuf::from("<inline>"),
            problems,
        };
        let raw: Dict = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| fail(figment_problems(e, "")))?;
        Self::from_dict(raw, &lookup).map_err(fail)
    }

    /// Interpolates, deserializes and validates a raw configuration, section by section, so
    /// that one bad section does not hide the problems of the others.
    fn from_dict(
        mut raw: Dict,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        for (key, value) in raw.iter_mut() {
            interpolate(value, key, lookup, &mut problems);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut config = Config::default();
        // The position of each parsed rule in the file, for messages when an earlier one failed.
        let mut rule_index: Vec<usize> = Vec::new();
        for (key, value) in raw {
            match key.as_str() {
                "devin" => section(&key, value, &mut problems, |v| config.devin = v),
                "store" => section(&key, value, &mut problems, |v| config.store = v),
                "templates" => section(&key, value, &mut problems, |v| config.templates = v),
                "delivery" => section(&key, value, &mut problems, |v| config.delivery = v),
                "log" => section(&key, value, &mut problems, |v| config.log = v),
                "server" => section(&key, value, &mut problems, |v| config.server = v),
                "sinks" => match value {
                    Value::Dict(_, sinks) => {
                        for (name, sink) in sinks {
                            section(&format!("sinks.{name}"), sink, &mut problems, |v| {
                                config.sinks.insert(name.clone(), v);
                            });
                        }
                    }
                    _ => problems.push(Problem::new("sinks", "must be a table of [sinks.NAME] tables")),
                },
                "rules" => match value {
                    Value::Array(_, rules) => {
                        for (i, rule) in rules.into_iter().enumerate() {
                            section(&format!("rules[{i}]"), rule, &mut problems, |v| {
                                config.rules.push(v);
                                rule_index.push(i);
                            });
                        }
                    }
                    _ => problems.push(Problem::new("rules", "must be an array of [[rules]] tables")),
                },
                other => problems.push(Problem::new(
                    other,
                    "unknown key (expected one of: devin, store, templates, delivery, sinks, rules, log, server)",
                )),
            }
        }
        problems.extend(config.validate().into_iter().map(|mut p| {
            if let Some(rest) = p.key.strip_prefix("rules[") {
                if let Some((i, tail)) = rest.split_once(']') {
                    if let Some(orig) = i.parse::<usize>().ok().and_then(|i| rule_index.get(i)) {
                        p.key = format!("rules[{orig}]{tail}");
                    }
                }
            }
            p
        }));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The API token: `devin.token`, else the `DEVIN_API_KEY` variable.
    pub fn token(&self) -> Result<Secret, Problem> {
        self.token_with_env(|name| std::env::var(name).ok())
    }

    /// As [`Config::token`] with a custom variable lookup.
    pub fn token_with_env(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, Problem> {
        match &self.devin.token {
            Some(t) if !t.is_empty() => Ok(t.clone()),
            Some(_) => Err(Problem::new("devin.token", "is empty")),
            None => lookup("DEVIN_API_KEY")
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| {
                    Problem::new(
                        "devin.token",
                        "no API token: set devin.token or the DEVIN_API_KEY environment variable to a service-user token (cog_...)",
                    )
                }),
        }
    }

    /// Checks ranges and references; templates are checked by [`crate::render::Templates`].
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let d = &self.devin;
        if !(d.base_url.starts_with("http://") || d.base_url.starts_with("https://")) {
            p.push(Problem::new(
                "devin.base_url",
                format!(
                    "`{}` is not an http(s) URL",
                    crate::devin::strip_userinfo(&d.base_url)
                ),
            ));
        }
        if !(1..=200).contains(&d.page_size) {
            p.push(Problem::new(
                "devin.page_size",
                format!("{} is out of range 1..=200", d.page_size),
            ));
        }
        if d.poll_interval < Duration::from_millis(100) {
            p.push(Problem::new(
                "devin.poll_interval",
                "must be at least 100ms",
            ));
        }
        for (key, value) in [
            ("devin.timeout", d.timeout),
            ("devin.connect_timeout", d.connect_timeout),
        ] {
            if value.is_zero() {
                p.push(Problem::new(key, "must be more than 0s"));
            }
        }
        if let Some(org) = &d.org_id {
            if org.is_empty()
                || !org
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                p.push(Problem::new(
                    "devin.org_id",
                    format!("`{org}` is not an organization id (letters, digits, - and _)"),
                ));
            }
            for name in d.filters.enterprise_only() {
                p.push(Problem::new(
                    format!("devin.filters.{name}"),
                    "is not accepted by the organization listing (devin.org_id is set); it takes session_ids, created_after, created_before, updated_before, tags, playbook_id, origins, schedule_id",
                ));
            }
        }
        if d.last_message_max_chars == 0 {
            p.push(Problem::new(
                "devin.last_message_max_chars",
                "must be at least 1",
            ));
        }
        if d.max_response_bytes < 1024 {
            p.push(Problem::new(
                "devin.max_response_bytes",
                "must be at least 1024",
            ));
        }
        let del = &self.delivery;
        if del.max_attempts == 0 {
            p.push(Problem::new("delivery.max_attempts", "must be at least 1"));
        }
        if del.initial_backoff.is_zero() {
            p.push(Problem::new(
                "delivery.initial_backoff",
                "must be more than 0s",
            ));
        }
        if del.max_backoff < del.initial_backoff {
            p.push(Problem::new(
                "delivery.max_backoff",
                "must be at least delivery.initial_backoff",
            ));
        }
        if del.timeout.is_zero() {
            p.push(Problem::new("delivery.timeout", "must be more than 0s"));
        }
        if self.store.cache_capacity < 1024 * 1024 {
            p.push(Problem::new(
                "store.cache_capacity",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        for (name, sink) in &self.sinks {
            validate_sink(name, sink, &mut p);
        }
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            if rule.name.trim().is_empty() {
                p.push(Problem::new(format!("{key}.name"), "must not be empty"));
            } else if !seen.insert(rule.name.as_str()) {
                p.push(Problem::new(
                    format!("{key}.name"),
                    format!("`{}` is the name of an earlier rule too", rule.name),
                ));
            }
            if rule.events.is_empty() {
                p.push(Problem::new(format!("{key}.events"), "names no event type"));
            }
            for e in &rule.events {
                if EventType::parse(e).is_none() {
                    p.push(Problem::new(
                        format!("{key}.events"),
                        format!(
                            "unknown event type `{e}` (known: {})",
                            EventType::ALL.map(EventType::as_str).join(", ")
                        ),
                    ));
                }
            }
            if rule.sinks.is_empty() {
                p.push(Problem::new(format!("{key}.sinks"), "names no sink"));
            }
            let waiting = rule
                .events
                .iter()
                .any(|e| e == EventType::SessionWaiting.as_str());
            match (waiting, rule.remind_after) {
                (true, None) => p.push(Problem::new(
                    format!("{key}.remind_after"),
                    "is required by session.waiting (how long a session waits before the reminder, e.g. \"15m\")",
                )),
                (false, Some(_)) => p.push(Problem::new(
                    format!("{key}.remind_after"),
                    "applies to session.waiting only: add it to the rule's events",
                )),
                (true, Some(d)) if d.is_zero() => {
                    p.push(Problem::new(format!("{key}.remind_after"), "must be more than 0s"))
                }
                _ => {}
            }
            if rule.repeat_every.is_some() && rule.remind_after.is_none() {
                p.push(Problem::new(
                    format!("{key}.repeat_every"),
                    "needs remind_after",
                ));
            }
            if rule
                .repeat_every
                .is_some_and(|d| d < Duration::from_secs(1))
            {
                p.push(Problem::new(
                    format!("{key}.repeat_every"),
                    "must be at least 1s",
                ));
            }
            let acus = rule
                .events
                .iter()
                .any(|e| e == EventType::SessionAcusExceeded.as_str());
            if acus && rule.when.acus_over.is_none() {
                p.push(Problem::new(
                    format!("{key}.when.acus_over"),
                    "is required by session.acus_exceeded (the threshold, e.g. 50)",
                ));
            }
            if rule
                .when
                .acus_over
                .is_some_and(|a| !a.is_finite() || a < 0.0)
            {
                p.push(Problem::new(
                    format!("{key}.when.acus_over"),
                    "must be a number of ACUs, 0 or more",
                ));
            }
            for (j, s) in rule.sinks.iter().enumerate() {
                if rule.sinks[..j].contains(s) {
                    p.push(Problem::new(
                        format!("{key}.sinks"),
                        format!("names `{s}` twice"),
                    ));
                }
                if !self.sinks.contains_key(s) {
                    let known: Vec<&str> = self.sinks.keys().map(String::as_str).collect();
                    p.push(Problem::new(
                        format!("{key}.sinks"),
                        format!(
                            "unknown sink `{s}` (defined: {})",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        p
    }
}

fn validate_sink(name: &str, sink: &SinkConfig, p: &mut Vec<Problem>) {
    let key = format!("sinks.{name}");
    if let Some(url) = sink.url().map(Secret::expose) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            // The URL is a secret: say what is wrong without printing it.
            p.push(Problem::new(format!("{key}.url"), "is not an http(s) URL"));
        }
    }
    if let SinkConfig::SlackApp(app) = sink {
        crate::slack_app::validate(&key, app, p);
    }
    if let Some(rate) = sink.max_per_second() {
        if !(rate.is_finite() && rate > 0.0) {
            p.push(Problem::new(
                format!("{key}.max_per_second"),
                "must be a number above 0",
            ));
        }
    }
    if !(1..=256).contains(&sink.concurrency()) {
        p.push(Problem::new(
            format!("{key}.concurrency"),
            "must be in 1..=256",
        ));
    }
    if let SinkConfig::Webhook(w) = sink {
        if let Some(secret) = &w.secret {
            if let Err(e) = crate::sink::signing_key(secret) {
                p.push(Problem::new(format!("{key}.secret"), e));
            }
        }
        for (header, value) in &w.headers {
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

/// Replaces `${VAR}` in every string below `value`; `$${` is a literal `${`.
fn interpolate(
    value: &mut Value,
    key: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(tag, text) if text.contains('$') => match expand(text, lookup) {
            Ok(expanded) => *value = Value::String(*tag, expanded),
            Err(message) => problems.push(Problem::new(key, message)),
        },
        Value::Dict(_, dict) => {
            for (k, v) in dict.iter_mut() {
                interpolate(v, &format!("{key}.{k}"), lookup, problems);
            }
        }
        Value::Array(_, items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &format!("{key}[{i}]"), lookup, problems);
            }
        }
        _ => {}
    }
}

/// Expands `${VAR}` references in one string.
pub fn expand(text: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err("`${` without a closing `}`".into());
            };
            let name = &tail[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a variable reference (letters, digits, _)"
                ));
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Deserializes one section; on success hands it to `set`, else records its problems under
/// `key`.
fn section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Value,
    problems: &mut Vec<Problem>,
    set: impl FnOnce(T),
) {
    match Figment::from(Serialized::default("section", value)).extract_inner::<T>("section") {
        Ok(v) => set(v),
        Err(e) => problems.extend(figment_problems(e, key)),
    }
}

/// figment's errors as problems, their paths under `prefix`.
fn figment_problems(error: figment::Error, prefix: &str) -> Vec<Problem> {
    error
        .into_iter()
        .map(|mut e| {
            if !prefix.is_empty() {
                // `extract_inner("section")` appends its key to the path: swap it for the prefix.
                if e.path.last().is_some_and(|last| last == "section") {
                    e.path.pop();
                }
                e.path.insert(0, prefix.to_owned());
            }
            let mut key = String::new();
            for part in &e.path {
                if part.parse::<usize>().is_ok() && !key.is_empty() {
                    key.push_str(&format!("[{part}]"));
                } else {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(part);
                }
            }
            let message = match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    if e.path.last().is_none_or(|last| last != field) {
                        key = if key.is_empty() {
                            field.clone()
                        } else {
                            format!("{key}.{field}")
                        };
                    }
                    format!("unknown key (expected one of: {})", expected.join(", "))
                }
                kind => kind.to_string(),
            };
            Problem::new(key, message)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const GOOD: &str = r#"
        [devin]
        token = "${TOKEN}"
        poll_interval = "10s"
        [devin.filters]
        tags = ["team-payments"]
        org_ids = "org-1"
        [sinks.team_slack]
        type = "slack"
        url = "${SLACK}"
        [sinks.automation]
        type = "webhook"
        url = "https://ci.example.com/hooks/devin"
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        headers = { "X-Team" = "payments" }
        [[rules]]
        name = "needs-input"
        events = ["session.status_changed"]
        sinks = ["team_slack"]
        [rules.when]
        status_detail = ["waiting_for_user", "waiting_for_approval"]
    "#;

    #[test]
    fn good_config_loads_with_interpolation() {
        let c = Config::from_toml(
            GOOD,
            env(&[
                ("TOKEN", "cog_x"),
                ("SLACK", "https://hooks.slack.test/T/B/x"),
            ]),
        )
        .expect("loads");
        assert_eq!(c.devin.token.as_ref().map(Secret::expose), Some("cog_x"));
        assert_eq!(c.devin.poll_interval, Duration::from_secs(10));
        assert_eq!(c.devin.filters.org_ids, Some(vec!["org-1".to_owned()]));
        assert_eq!(
            c.sinks["team_slack"].url().map(Secret::expose),
            Some("https://hooks.slack.test/T/B/x")
        );
        assert_eq!(c.delivery.max_attempts, 12);
        assert_eq!(c.store.baseline, Baseline::Silent);
        // Debug output of the whole config holds no secret.
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("cog_x")
                && !debug.contains("hooks.slack.test")
                && !debug.contains("MfKQ9r8")
        );
    }

    #[test]
    fn missing_variable_names_key_and_variable() {
        let e = Config::from_toml(GOOD, env(&[("TOKEN", "x")])).expect_err("SLACK missing");
        assert_eq!(
            e.problems,
            [Problem::new(
                "sinks.team_slack.url",
                "environment variable SLACK is not set"
            )]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_their_path() {
        let text = "[devin]\npoll_intervall = \"10s\"\n";
        let e = Config::from_toml(text, env(&[])).expect_err("typo");
        assert_eq!(e.problems[0].key, "devin.poll_intervall", "{e}");
        let text = "[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = []\n[rules.when]\nstatuss = \"x\"\n";
        let e = Config::from_toml(text, env(&[])).expect_err("typo in when");
        assert!(e.problems[0].key.starts_with("rules[0].when"), "{e}");
        let text = "[sinks.a]\ntype = \"slack\"\nurl = \"https://x\"\nsecret = \"whsec_x\"\n";
        let e = Config::from_toml(text, env(&[])).expect_err("secret on slack");
        assert!(e.to_string().contains("secret"), "{e}");
        let text = "[sinks.a]\ntype = \"sms\"\nurl = \"https://x\"\n";
        let e = Config::from_toml(text, env(&[])).expect_err("unknown type");
        assert!(e.problems[0].key.starts_with("sinks.a"), "{e}");
    }

    #[test]
    fn ranges_and_references_are_all_reported() {
        let text = r#"
            [devin]
            page_size = 500
            base_url = "ftp://x"
            [delivery]
            max_attempts = 0
            initial_backoff = "1h"
            max_backoff = "1m"
            [sinks.hook]
            type = "webhook"
            url = "not a url"
            secret = "nope"
            [[rules]]
            name = "a"
            events = ["session.exploded"]
            sinks = ["nowhere"]
            [[rules]]
            name = "a"
            events = []
            sinks = ["hook"]
        "#;
        let e = Config::from_toml(text, env(&[])).expect_err("bad");
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "devin.base_url",
            "devin.page_size",
            "delivery.max_attempts",
            "delivery.max_backoff",
            "sinks.hook.url",
            "sinks.hook.secret",
            "rules[0].events",
            "rules[0].sinks",
            "rules[1].name",
            "rules[1].events",
        ] {
            assert!(keys.contains(&k), "{k} missing from {e}");
        }
        assert!(
            !e.to_string().contains("not a url"),
            "sink URLs are secrets: {e}"
        );
    }

    #[test]
    fn problems_in_different_sections_are_listed_together() {
        let text = r#"
            [devin]
            poll_interval = "often"
            [store]
            baseline = "loud"
            [sinks.a]
            type = "slack"
            urll = "https://x"
            [sinks.b]
            type = "webhook"
            url = "https://x"
            [[rules]]
            name = "r"
            events = ["session.created"]
            sinks = ["b"]
            [rules.when]
            colour = "red"
            [[rules]]
            name = "ok"
            events = ["session.created"]
            sinks = ["nowhere"]
            [extra]
            x = 1
        "#;
        let e = Config::from_toml(text, env(&[])).expect_err("bad");
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "devin.poll_interval",
            "store.baseline",
            "sinks.a.urll",
            "rules[0].when.colour",
            "rules[1].sinks",
            "extra",
        ] {
            assert!(keys.contains(&k), "{k} missing from {e}");
        }
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e =
            Config::from_toml("[devin]\npoll_interval = \"often\"\n", env(&[])).expect_err("bad");
        assert_eq!(e.problems[0].key, "devin.poll_interval", "{e}");
        assert!(
            e.problems[0].message.contains("`often` is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn token_defaults_to_devin_api_key() {
        let c = Config::from_toml("", env(&[])).expect("empty config is valid");
        assert_eq!(
            c.token_with_env(env(&[("DEVIN_API_KEY", "cog_y")]))
                .map(|s| s.expose().to_owned()),
            Ok("cog_y".to_owned())
        );
        let e = c.token_with_env(env(&[])).expect_err("no token");
        assert_eq!(e.key, "devin.token");
    }

    #[test]
    fn expand_edge_cases() {
        let l = env(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand("x${A}y${B}", &l), Ok("x1ytwo".into()));
        assert_eq!(
            expand("cost $5 and $${A}", &l),
            Ok("cost $5 and ${A}".into())
        );
        assert!(expand("${A", &l).is_err());
        assert!(expand("${}", &l).is_err());
        assert_eq!(
            expand("${C}", &l),
            Err("environment variable C is not set".into())
        );
    }
}
