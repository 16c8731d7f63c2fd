//! Configuration: one TOML file, layered with figment.
//!
//! Layers, lowest first: the defaults written on each section's struct, the file (`--config`),
//! then environment variables prefixed `DEVIN_NOTIFY_` with `__` between levels
//! (`DEVIN_NOTIFY_DEVIN__POLL_INTERVAL=10s`). Any string may hold `${VAR}`, replaced by that
//! environment variable; a missing variable is an error naming it and the key. Unknown keys are
//! errors, so a typo cannot silently disable a rule. [`Config::load`] reports every problem it
//! finds, each with its key path.
//!
//! One file per section, each struct validating itself ([`DevinConfig::validate`],
//! [`SinkConfig::validate`], [`crate::rules::Rule::validate`]...); [`load`] is the figment
//! layering and `${VAR}` interpolation. Nothing here knows the modules that use a section.

mod delivery;
mod devin;
mod digests;
mod load;
mod schema;
mod server;
mod signals;
mod sinks;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::Dict;
use figment::Figment;
use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::de::Problem;
use crate::rules::Rule;
use crate::secret::Secret;

pub use self::delivery::DeliveryConfig;
pub use self::devin::{DevinConfig, Filters};
pub use self::digests::{DigestConfig, DEFAULT_DIGEST_TEMPLATE};
pub use self::load::expand;
use self::load::{figment_problems, from_dict};
pub use self::schema::{schema, SCHEMA_ID};
pub use self::server::{LogConfig, LogFormat, ServerConfig, DEFAULT_HISTORY, MAX_HISTORY};
pub use self::signals::{is_slack_user_id, ConsumptionConfig, People, QueueConfig, MAX_EVERY};
pub use self::sinks::{
    DiscordSinkConfig, Recipient, SinkConfig, SlackAppSinkConfig, SlackSinkConfig, TeamsSinkConfig,
    WebhookFormat, WebhookSinkConfig, DEFAULT_API_BASE, DEFAULT_LOOKUP_TTL,
};
pub use self::store::{Baseline, StoreBackend, StoreConfig};

/// The default path of the config file.
pub const DEFAULT_PATH: &str = "config/devin-notify.toml";
/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "DEVIN_NOTIFY_";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[devin]`: where and how to poll the Devin API.
    pub devin: DevinConfig,
    /// `[store]`: where devin-notify keeps its state.
    pub store: StoreConfig,
    /// `[templates]`: message templates overriding and extending the built-in ones.
    pub templates: TemplatesConfig,
    /// `[delivery]`: retries and timeouts of sends.
    pub delivery: DeliveryConfig,
    /// `[sinks.NAME]`: where notifications go, each under a name that rules refer to.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// `[[rules]]`: which events go to which sinks.
    pub rules: Vec<Rule>,
    /// `[[digests]]`: summaries of a period's activity, sent on a schedule.
    pub digests: Vec<DigestConfig>,
    /// `[log]`: the format and level of the log.
    pub log: LogConfig,
    /// `[server]`: health, readiness, metrics, the admin console (`/ui`) and API (`/api/v1`).
    pub server: ServerConfig,
    /// `[time_intervals.NAME]`: named times (quiet hours) that rules' `mute_during` and
    /// `active_during` refer to.
    pub time_intervals: BTreeMap<String, crate::intervals::IntervalSpec>,
    /// `[people]`: Devin user id -> email or Slack user id, for `to = "creator"` sinks when
    /// the API cannot say (or instead of asking it).
    pub people: People,
}

/// `[templates]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// A folder of `<sink type>/<name>.hbs` files overriding and extending the built-in ones.
    pub dir: Option<PathBuf>,
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
        from_dict(raw, &lookup).map_err(fail)
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
        from_dict(raw, &lookup).map_err(fail)
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

    /// Checks ranges and references, section by section; templates are checked when the
    /// configuration is made active ([`crate::active::Active::from_config`]).
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        self.devin.validate(&mut p);
        self.delivery.validate(&mut p);
        self.store.validate(&mut p);
        self.server.validate(&mut p);
        self::signals::validate_people(&self.people, &mut p);
        for (name, sink) in &self.sinks {
            sink.validate(name, &mut p);
        }
        let sinks: Vec<&str> = self.sinks.keys().map(String::as_str).collect();
        p.extend(crate::rules::validate(&self.rules, &sinks));
        if let Err(problems) = crate::intervals::compile(&self.time_intervals) {
            p.extend(problems);
        }
        let intervals: Vec<&str> = self.time_intervals.keys().map(String::as_str).collect();
        p.extend(crate::rules::validate_intervals(&self.rules, &intervals));
        self::digests::validate(&self.digests, &sinks, &mut p);
        self.validate_creatorless(&mut p);
        p
    }

    /// What has no creator (a digest, Devin's queue, the daily spend) cannot go to a sink that
    /// only sends direct messages to a session's creator: without a `fallback_channel` it could
    /// only ever become a dead letter.
    fn validate_creatorless(&self, p: &mut Vec<Problem>) {
        let dm_only = |name: &str| matches!(self.sinks.get(name), Some(SinkConfig::SlackApp(c)) if c.to_creator() && c.fallback_channel.is_none());
        let why = |sink: &str, what: &str| {
            format!("sink `{sink}` sends direct messages to a session's creator and has no fallback_channel; {what} has no creator, so it could only become a dead letter (set fallback_channel, or name another sink)")
        };
        for (i, d) in self.digests.iter().enumerate() {
            for (j, sink) in d.sinks.iter().enumerate() {
                if dm_only(sink) {
                    p.push(Problem::new(
                        format!("digests[{i}].sinks[{j}]"),
                        why(sink, "a digest"),
                    ));
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.account_only() {
                continue;
            }
            for (j, sink) in rule.sinks.iter().enumerate() {
                if dm_only(sink) {
                    let what = "an account event (Devin's queue, the daily spend)";
                    p.push(Problem::new(
                        format!("rules[{i}].sinks[{j}]"),
                        why(sink, what),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn what_has_no_creator_cannot_go_to_a_direct_message_only_sink() {
        let text = r#"
            [devin]
            token = "cog_x"
            [sinks.dm]
            type = "slack_app"
            token = "xoxb-1"
            to = "creator"
            [sinks.dm_or_channel]
            type = "slack_app"
            token = "xoxb-1"
            to = "creator"
            fallback_channel = "devin"
            [[rules]]
            name = "sessions"
            events = ["session.status_changed"]
            sinks = ["dm"]
            [[rules]]
            name = "capacity"
            events = ["queue.status_changed"]
            sinks = ["dm_or_channel", "dm"]
            [[digests]]
            name = "daily"
            sinks = ["dm", "dm_or_channel"]
            schedule = "0 9 * * *"
            timezone = "UTC"
        "#;
        let problems = Config::from_toml(text, env(&[]))
            .err()
            .map(|e| e.problems)
            .unwrap_or_default();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["digests[0].sinks[0]", "rules[1].sinks[1]"],
            "{problems:?}"
        );
        assert!(problems[0].message.contains("fallback_channel"));
    }

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
        assert_eq!(c.server.history, 1000);
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
            [server]
            history = 0
        "#;
        let e = Config::from_toml(text, env(&[])).expect_err("bad");
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "server.history",
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
    fn admin_token_is_a_secret_from_the_environment() {
        let text = "[server]\nlisten = \"0.0.0.0:9464\"\nadmin_token = \"${ADMIN}\"\n";
        let c = Config::from_toml(text, env(&[("ADMIN", "tok_verysecret")])).expect("loads");
        let token = c.server.admin_token.as_ref().map(Secret::expose);
        assert_eq!(token, Some("tok_verysecret"));
        assert!(!format!("{c:?}").contains("tok_verysecret"));
        let e = Config::from_toml(text, env(&[("ADMIN", " ")])).expect_err("empty");
        assert_eq!(e.problems[0].key, "server.admin_token", "{e}");
        let e = Config::from_toml(text, env(&[])).expect_err("unset");
        assert_eq!(e.problems[0].key, "server.admin_token", "{e}");
    }

    #[test]
    fn time_intervals_and_their_names_in_rules_are_checked_by_key() {
        let text = r#"
            [sinks.s]
            type = "webhook"
            url = "https://x.example.com"
            [time_intervals.nights]
            timezone = "Europe/Pariss"
            times = [{ from = "7pm", to = "08:00" }]
            [time_intervals.weekend]
            weekdays = ["saturday", "sunday"]
            [[rules]]
            name = "a"
            events = ["session.created"]
            sinks = ["s"]
            [[rules]]
            name = "b"
            events = ["session.created"]
            sinks = ["s"]
            active_during = ["weekend", "office"]
            [[rules]]
            name = "c"
            events = ["session.created"]
            sinks = ["s"]
            mute_during = ["nigths"]
            collapse_held = true
        "#;
        let e = Config::from_toml(text, env(&[])).expect_err("bad");
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "time_intervals.nights.timezone",
                "time_intervals.nights.times[0].from",
                "rules[1].active_during[1]",
                "rules[2].mute_during[0]",
            ],
            "{e}"
        );
        assert!(
            e.to_string().contains("unknown time interval `nigths`"),
            "{e}"
        );
        let e = Config::from_toml("[time_intervals.x]\nweekday = [\"monday\"]\n", env(&[]))
            .expect_err("typo");
        assert_eq!(e.problems[0].key, "time_intervals.x.weekday", "{e}");
        let good = text
            .replace("Europe/Pariss", "Europe/Paris")
            .replace("7pm", "19:00")
            .replace(", \"office\"", "")
            .replace("nigths", "nights");
        let c = Config::from_toml(&good, env(&[])).expect("valid");
        assert_eq!(c.rules[2].mute_during, ["nights"]);
        assert!(c.rules[2].collapse_held);
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
    fn server_history_is_bounded() {
        let c = Config::from_toml("[server]\nhistory = 1000000\n", env(&[])).expect("the most");
        assert_eq!(c.server.history, 1_000_000);
        let e = Config::from_toml("[server]\nhistory = 1000001\n", env(&[])).expect_err("over");
        assert_eq!(e.problems[0].key, "server.history", "{e}");
        assert!(
            e.problems[0].message.contains("between 1 and 1000000"),
            "{e}"
        );
        let e = Config::from_toml("[server]\nhistory = -1\n", env(&[])).expect_err("negative");
        assert_eq!(e.problems[0].key, "server.history", "{e}");
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
