//! Rules: which events go to which sinks. Pure.
//!
//! A rule names event types, sinks, an optional template, and `when` conditions. Every key given
//! in `when` must match; a list matches any of its values. A rule whose `when` names a value the
//! event does not have (say `pr_state` on a `session.status_changed`) does not match it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{one_or_many, Problem};
use crate::event::{Change, Event, EventType};
use crate::model::Session;

/// One `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A unique name, used in logs, metrics and `preview --rule`.
    #[schemars(pattern(r"\S"))]
    pub name: String,
    /// Event types this rule routes (`session.status_changed`, ...).
    #[schemars(schema_with = "event_types_schema", length(min = 1))]
    pub events: Vec<String>,
    /// Sink names (keys of `[sinks]`), each once.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub sinks: Vec<String>,
    /// Template name: `templates/<sink type>/<template>.hbs`. Default: the event type.
    #[serde(default)]
    pub template: Option<String>,
    /// Conditions; every key given must match.
    #[serde(default)]
    pub when: When,
    /// For `session.waiting`: remind when a session has waited this long for a person.
    #[serde(default, deserialize_with = "crate::de::duration_opt")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub remind_after: Option<std::time::Duration>,
    /// For `session.waiting`: remind again this often while the wait goes on.
    #[serde(default, deserialize_with = "crate::de::duration_opt")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub repeat_every: Option<std::time::Duration>,
    /// Names of `[time_intervals]`: while any of them is on, the rule's deliveries are held
    /// in the store, and sent when none is.
    #[serde(default)]
    pub mute_during: Vec<String>,
    /// Names of `[time_intervals]`: the rule's deliveries are held while none of them is on.
    #[serde(default)]
    pub active_during: Vec<String>,
    /// Held deliveries go out as one summary per sink (listing the held events) instead of
    /// one by one.
    #[serde(default)]
    pub collapse_held: bool,
}

/// `[rules.when]`: each key holds one value or a list of values, any of which matches.
/// Serialized (for the admin API) with the keys given only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The session's status now.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub status: Option<Vec<String>>,
    /// The status in the snapshot (a session seen for the first time has none).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub from_status: Option<Vec<String>>,
    /// The session's status detail now.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub status_detail: Option<Vec<String>>,
    /// The status detail in the snapshot.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub from_status_detail: Option<Vec<String>>,
    /// Any of the session's tags.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub tags: Option<Vec<String>>,
    /// The session's org.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub org_ids: Option<Vec<String>>,
    /// The session's origin (`webapp`, `slack`, `api`, ...).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub origins: Option<Vec<String>>,
    /// The session's category.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub categories: Option<Vec<String>>,
    /// The session's user.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub user_ids: Option<Vec<String>>,
    /// `owner/repo`: the event's PR for pull-request events, any of the session's PRs otherwise.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub repos: Option<Vec<String>>,
    /// The PR's state (pull-request events only).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub pr_state: Option<Vec<String>>,
    /// `session.acus_exceeded` fires when `acus_consumed` crosses this; on other events, the
    /// session's `acus_consumed` must be above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub acus_over: Option<f64>,
    /// The queue's status now (`normal`, `elevated`, `high`): `queue.status_changed` only.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub queue_status: Option<Vec<String>>,
}

impl When {
    /// The session conditions given (every key but `queue_status`).
    pub fn session_keys(&self) -> Vec<&'static str> {
        let lists = [
            ("status", &self.status),
            ("from_status", &self.from_status),
            ("status_detail", &self.status_detail),
            ("from_status_detail", &self.from_status_detail),
            ("tags", &self.tags),
            ("org_ids", &self.org_ids),
            ("origins", &self.origins),
            ("categories", &self.categories),
            ("user_ids", &self.user_ids),
            ("repos", &self.repos),
            ("pr_state", &self.pr_state),
        ];
        let mut keys: Vec<&'static str> = lists
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect();
        if self.acus_over.is_some() {
            keys.push("acus_over");
        }
        keys
    }
}

/// `events`: an array of event type names (each may be a `${VAR}` reference).
fn event_types_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut name = schemars::json_schema!({
        "type": "string",
        "enum": EventType::ALL.map(EventType::as_str),
    });
    crate::de::schema::or_variable(&mut name);
    schemars::json_schema!({ "type": "array", "items": name })
}

fn any_of(wanted: &Option<Vec<String>>, value: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(list) => value.is_some_and(|v| list.iter().any(|w| w == v)),
    }
}

fn any_of_many<'a>(
    wanted: &Option<Vec<String>>,
    mut values: impl Iterator<Item = &'a str>,
) -> bool {
    match wanted {
        None => true,
        Some(list) => values.any(|v| list.iter().any(|w| w == v)),
    }
}

impl When {
    /// Whether the event satisfies every condition. An account signal (not about a session)
    /// has none of a session's values: a session condition does not match it.
    pub fn matches(&self, event: &Event) -> bool {
        if !event.kind.about_session() {
            return self.queue_ok(&event.change) && self.session_keys().is_empty();
        }
        self.matches_parts(&event.session, event.previous.as_ref(), &event.change)
    }

    /// `queue_status`, against the change (a queue event's status; nothing for the others).
    fn queue_ok(&self, change: &Change) -> bool {
        let queue_status = match change {
            Change::Queue { status, .. } => Some(status.as_str()),
            _ => None,
        };
        any_of(&self.queue_status, queue_status)
    }

    /// [`When::matches`] for an event about a session, given its parts.
    fn matches_parts(&self, now: &Session, before: Option<&Session>, change: &Change) -> bool {
        if !self.queue_ok(change) {
            return false;
        }
        let pr_repo_state = match change {
            Change::PullRequest { repo, pr_state, .. } => {
                Some((repo.as_deref(), pr_state.as_str()))
            }
            _ => None,
        };
        let acus_ok = match (change, self.acus_over) {
            (_, None) => true,
            (Change::Acus { threshold, .. }, Some(over)) => *threshold == over,
            (_, Some(over)) => now.acus_consumed > over,
        };
        let repos_ok = match pr_repo_state {
            Some((repo, _)) => any_of(&self.repos, repo),
            None => {
                let repos: Vec<String> =
                    now.pull_requests.iter().filter_map(|p| p.repo()).collect();
                any_of_many(&self.repos, repos.iter().map(String::as_str))
            }
        };
        any_of(&self.status, Some(&now.status))
            && any_of(&self.from_status, before.map(|b| b.status.as_str()))
            && any_of(&self.status_detail, now.status_detail.as_deref())
            && any_of(
                &self.from_status_detail,
                before.and_then(|b| b.status_detail.as_deref()),
            )
            && any_of_many(&self.tags, now.tags.iter().map(String::as_str))
            && any_of(&self.org_ids, Some(&now.org_id))
            && any_of(&self.origins, now.origin.as_deref())
            && any_of(&self.categories, now.category.as_deref())
            && any_of(&self.user_ids, now.user_id.as_deref())
            && repos_ok
            && acus_ok
            && any_of(&self.pr_state, pr_repo_state.map(|(_, state)| state))
    }
}

impl When {
    /// The keys that describe a change rather than a session: they never select a session
    /// ([`When::matches_session`]).
    pub const EVENT_KEYS: [&'static str; 3] = ["from_status", "from_status_detail", "pr_state"];

    /// The event keys given ([`When::EVENT_KEYS`]).
    pub fn event_keys(&self) -> Vec<&'static str> {
        let given = [
            self.from_status.is_some(),
            self.from_status_detail.is_some(),
            self.pr_state.is_some(),
        ];
        Self::EVENT_KEYS
            .into_iter()
            .zip(given)
            .filter_map(|(k, g)| g.then_some(k))
            .collect()
    }

    /// Whether a session, as listed, satisfies every condition (digests select sessions with
    /// the same matcher as rules select events): the session's own keys as for an event that
    /// announces it; `repos` any of its PRs'; `acus_over` its ACUs.
    pub fn matches_session(&self, session: &Session) -> bool {
        self.matches_parts(session, None, &Change::Session {})
    }
}

impl Rule {
    /// Whether this rule routes the event. A reminder (`session.waiting`) belongs to the rule
    /// whose `remind_after` it is for.
    pub fn matches(&self, event: &Event) -> bool {
        if let Change::Waiting { rule, .. } = &event.change {
            if *rule != self.name {
                return false;
            }
        }
        self.events.iter().any(|e| e == event.kind.as_str()) && self.when.matches(event)
    }

    /// Whether the rule asks for waiting reminders.
    pub fn reminds(&self) -> bool {
        self.remind_after.is_some()
            && self
                .events
                .iter()
                .any(|e| e == EventType::SessionWaiting.as_str())
    }

    /// The ACU threshold of a rule that routes `session.acus_exceeded`.
    pub fn acus_threshold(&self) -> Option<f64> {
        self.events
            .iter()
            .any(|e| e == EventType::SessionAcusExceeded.as_str())
            .then_some(self.when.acus_over)
            .flatten()
    }

    /// The event types this rule names that exist (validation reports the others).
    pub fn event_types(&self) -> impl Iterator<Item = EventType> + '_ {
        self.events.iter().filter_map(|e| EventType::parse(e))
    }

    /// True when the rule names event types, and none of them is about a session (Devin's
    /// queue, the daily spend).
    pub fn account_only(&self) -> bool {
        let mut types = self.event_types().peekable();
        types.peek().is_some() && types.all(|t| !t.about_session())
    }
}

/// Names for a message: joined by commas, or `none`.
pub fn listed(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Checks the sinks a rule or digest names (`key.sinks`): each once, each defined (`sinks`
/// lists the names defined).
pub fn validate_sinks(key: &str, names: &[String], sinks: &[&str], p: &mut Vec<Problem>) {
    for (j, s) in names.iter().enumerate() {
        if names[..j].contains(s) {
            p.push(Problem::new(
                format!("{key}.sinks"),
                format!("names `{s}` twice"),
            ));
        }
        if !sinks.contains(&s.as_str()) {
            p.push(Problem::new(
                format!("{key}.sinks"),
                format!("unknown sink `{s}` (defined: {})", listed(sinks)),
            ));
        }
    }
}

/// Checks that every interval a rule's `mute_during` and `active_during` name exists
/// (`intervals` lists the names defined); keys are `rules[i].mute_during[j]`.
pub fn validate_intervals(rules: &[Rule], intervals: &[&str]) -> Vec<Problem> {
    let mut p = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let lists = [
            ("mute_during", &rule.mute_during),
            ("active_during", &rule.active_during),
        ];
        for (field, names) in lists {
            for (j, name) in names.iter().enumerate() {
                if !intervals.contains(&name.as_str()) {
                    p.push(Problem::new(
                        format!("rules[{i}].{field}[{j}]"),
                        format!(
                            "unknown time interval `{name}` (defined in [time_intervals]: {})",
                            listed(intervals)
                        ),
                    ));
                }
            }
        }
        if rule.collapse_held && rule.mute_during.is_empty() && rule.active_during.is_empty() {
            p.push(Problem::new(
                format!("rules[{i}].collapse_held"),
                "applies to held deliveries only: add mute_during or active_during",
            ));
        }
    }
    p
}

/// Checks every rule: unique names, known event types and sinks (`sinks` lists the sink names
/// defined), and the keys each event type needs. Keys are `rules[i]...`.
pub fn validate(rules: &[Rule], sinks: &[&str]) -> Vec<Problem> {
    let mut p = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let key = format!("rules[{i}]");
        if rule.name.trim().is_empty() {
            p.push(Problem::new(format!("{key}.name"), "must not be empty"));
        } else if !seen.insert(rule.name.as_str()) {
            p.push(Problem::new(
                format!("{key}.name"),
                format!("`{}` is the name of an earlier rule too", rule.name),
            ));
        }
        rule.validate(&key, sinks, &mut p);
    }
    p
}

impl Rule {
    /// Checks one rule (`key` is `rules[i]`) but its name's uniqueness.
    pub fn validate(&self, key: &str, sinks: &[&str], p: &mut Vec<Problem>) {
        if self.events.is_empty() {
            p.push(Problem::new(format!("{key}.events"), "names no event type"));
        }
        for e in &self.events {
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
        if self.sinks.is_empty() {
            p.push(Problem::new(format!("{key}.sinks"), "names no sink"));
        }
        self.validate_reminders(key, p);
        self.validate_acus(key, p);
        self.validate_signals(key, p);
        validate_sinks(key, &self.sinks, sinks, p);
    }

    /// `remind_after` and `repeat_every`, which `session.waiting` needs and only it takes.
    fn validate_reminders(&self, key: &str, p: &mut Vec<Problem>) {
        let waiting = self
            .events
            .iter()
            .any(|e| e == EventType::SessionWaiting.as_str());
        match (waiting, self.remind_after) {
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
        if self.repeat_every.is_some() && self.remind_after.is_none() {
            p.push(Problem::new(
                format!("{key}.repeat_every"),
                "needs remind_after",
            ));
        }
        if self
            .repeat_every
            .is_some_and(|d| d < std::time::Duration::from_secs(1))
        {
            p.push(Problem::new(
                format!("{key}.repeat_every"),
                "must be at least 1s",
            ));
        }
    }

    /// `when.queue_status` needs `queue.status_changed`; a rule of account signals only (no
    /// session) takes no session condition: it could never match.
    fn validate_signals(&self, key: &str, p: &mut Vec<Problem>) {
        let types: Vec<EventType> = self.event_types().collect();
        if self.when.queue_status.is_some() && !types.contains(&EventType::QueueStatusChanged) {
            p.push(Problem::new(
                format!("{key}.when.queue_status"),
                "applies to queue.status_changed only: add it to the rule's events",
            ));
        }
        if self.account_only() {
            for k in self.when.session_keys() {
                p.push(Problem::new(
                    format!("{key}.when.{k}"),
                    "is a session condition, and this rule's events (queue, consumption) are not about a session: it would never match",
                ));
            }
        }
    }

    /// `when.acus_over`, which `session.acus_exceeded` needs.
    fn validate_acus(&self, key: &str, p: &mut Vec<Problem>) {
        let acus = self
            .events
            .iter()
            .any(|e| e == EventType::SessionAcusExceeded.as_str());
        if acus && self.when.acus_over.is_none() {
            p.push(Problem::new(
                format!("{key}.when.acus_over"),
                "is required by session.acus_exceeded (the threshold, e.g. 50)",
            ));
        }
        if self
            .when
            .acus_over
            .is_some_and(|a| !a.is_finite() || a < 0.0)
        {
            p.push(Problem::new(
                format!("{key}.when.acus_over"),
                "must be a number of ACUs, 0 or more",
            ));
        }
    }
}

/// A (rule, sink) pair an event is routed to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route<'a> {
    pub rule: &'a Rule,
    pub sink: &'a str,
}

/// Every (rule, sink) the event is routed to, in rule order then sink order.
pub fn routes<'a>(rules: &'a [Rule], event: &Event) -> Vec<Route<'a>> {
    rules
        .iter()
        .filter(|r| r.matches(event))
        .flat_map(|rule| rule.sinks.iter().map(move |sink| Route { rule, sink }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::model::PullRequest;

    fn rule(toml_when: &str, events: &[&str]) -> Rule {
        let text =
            format!("name = \"r\"\nevents = {events:?}\nsinks = [\"s\"]\n[when]\n{toml_when}\n");
        let value: toml_value::Value = toml_value::parse(&text);
        serde_json::from_value(value).expect("rule parses")
    }

    // Tiny TOML-to-JSON bridge for tests, via figment (already a dependency).
    mod toml_value {
        pub type Value = serde_json::Value;
        pub fn parse(text: &str) -> Value {
            use figment::providers::{Format, Toml};
            figment::Figment::from(Toml::string(text))
                .extract::<Value>()
                .expect("valid toml")
        }
    }

    #[test]
    fn account_signals_match_by_type_and_queue_status() {
        let q = |status: &str| {
            crate::diff::queue_change(
                Some("elevated-before"),
                &crate::model::QueueInfo {
                    queue_size: 3,
                    status: status.into(),
                },
                5,
            )
            .expect("a change")
        };
        let any = rule("", &["queue.status_changed"]);
        assert!(any.matches(&q("high")));
        let high = rule(
            "queue_status = [\"high\", \"elevated\"]",
            &["queue.status_changed"],
        );
        assert!(high.matches(&q("high")) && !high.matches(&q("normal")));
        // A session condition never matches an account signal, nor queue_status a session.
        let tagged = rule("tags = \"x\"", &["queue.status_changed", "session.created"]);
        assert!(!tagged.matches(&q("high")));
        let on_sessions = rule("queue_status = \"high\"", &["session.created"]);
        assert!(!on_sessions.matches(&diff(None, &session("new", None))[0]));
        assert!(!rule("", &["session.created"]).matches(&q("high")));
    }

    #[test]
    fn account_rules_are_checked() {
        let bad = rule(
            "tags = \"x\"\nqueue_status = \"high\"",
            &["consumption.daily_exceeded"],
        );
        let problems: Vec<String> = validate(&[bad], &["s"])
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("rules[0].when.queue_status")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("rules[0].when.tags")),
            "{problems:?}"
        );
        let mixed = rule(
            "tags = \"x\"",
            &["consumption.daily_exceeded", "session.created"],
        );
        assert!(validate(&[mixed], &["s"]).is_empty());
    }

    fn session(status: &str, detail: Option<&str>) -> Session {
        let mut s = Session::new("s1", status);
        s.status_detail = detail.map(str::to_owned);
        s.tags = vec!["team-payments".into(), "urgent".into()];
        s.org_id = "org-a".into();
        s.origin = Some("slack".into());
        s.category = Some("bug_fixing".into());
        s.user_id = Some("u1".into());
        s.updated_at = 10;
        s
    }

    fn status_event(from: (&str, Option<&str>), to: (&str, Option<&str>)) -> Event {
        diff(Some(&session(from.0, from.1)), &session(to.0, to.1))
            .pop()
            .expect("a status event")
    }

    fn pr_event(state_before: Option<&str>, state: &str) -> Event {
        let mut old = session("running", Some("working"));
        let mut new = old.clone();
        let url = "https://github.com/acme/api/pull/3";
        if let Some(b) = state_before {
            old.pull_requests = vec![PullRequest {
                pr_url: url.into(),
                pr_state: b.into(),
            }];
        }
        new.pull_requests = vec![PullRequest {
            pr_url: url.into(),
            pr_state: state.into(),
        }];
        diff(Some(&old), &new).pop().expect("a PR event")
    }

    #[test]
    fn empty_when_matches_its_events_only() {
        let r = rule("", &["session.status_changed"]);
        assert!(r.matches(&status_event(("running", None), ("exit", None))));
        assert!(!r.matches(&pr_event(None, "open")));
    }

    #[test]
    fn each_key_matches_and_rejects() {
        let ev = status_event(
            ("running", Some("working")),
            ("running", Some("waiting_for_user")),
        );
        let yes = [
            "status = \"running\"",
            "from_status = [\"running\"]",
            "status_detail = [\"waiting_for_user\", \"waiting_for_approval\"]",
            "from_status_detail = \"working\"",
            "tags = [\"nope\", \"team-payments\"]",
            "org_ids = \"org-a\"",
            "origins = \"slack\"",
            "categories = \"bug_fixing\"",
            "user_ids = [\"u1\"]",
        ];
        let no = [
            "status = \"exit\"",
            "from_status = [\"new\"]",
            "status_detail = \"finished\"",
            "from_status_detail = \"waiting_for_user\"",
            "tags = [\"other\"]",
            "org_ids = \"org-b\"",
            "origins = \"api\"",
            "categories = \"migrations_and_upgrades\"",
            "user_ids = [\"u2\"]",
            "repos = \"acme/api\"",
            "pr_state = \"open\"",
        ];
        for w in yes {
            assert!(
                rule(w, &["session.status_changed"]).matches(&ev),
                "{w} should match"
            );
        }
        for w in no {
            assert!(
                !rule(w, &["session.status_changed"]).matches(&ev),
                "{w} should not match"
            );
        }
        // Every key must match.
        assert!(!rule(
            "status = \"running\"\norigins = \"api\"",
            &["session.status_changed"]
        )
        .matches(&ev));
    }

    #[test]
    fn missing_values_do_not_match() {
        let mut ev = status_event(("running", None), ("exit", None));
        ev.session.origin = None;
        assert!(!rule("status_detail = \"finished\"", &["session.status_changed"]).matches(&ev));
        assert!(!rule("origins = \"slack\"", &["session.status_changed"]).matches(&ev));
        let created = diff(None, &session("new", None)).remove(0);
        assert!(!rule("from_status = \"new\"", &["session.created"]).matches(&created));
        assert!(rule("status = \"new\"", &["session.created"]).matches(&created));
    }

    #[test]
    fn pull_request_keys() {
        let merged = pr_event(Some("open"), "merged");
        let events = &["pull_request.opened", "pull_request.state_changed"];
        assert!(rule("pr_state = \"merged\"\nrepos = \"acme/api\"", events).matches(&merged));
        assert!(!rule("pr_state = \"open\"", events).matches(&merged));
        assert!(!rule("repos = \"acme/web\"", events).matches(&merged));
        // repos on a session event looks at the session's PRs.
        let mut ev = status_event(("running", None), ("exit", None));
        ev.session.pull_requests = merged.session.pull_requests.clone();
        assert!(rule("repos = \"acme/api\"", &["session.status_changed"]).matches(&ev));
    }

    #[test]
    fn acus_over_and_reminders_match_their_own_rule() {
        let mut old = session("running", Some("working"));
        old.acus_consumed = 10.0;
        let mut new = old.clone();
        new.acus_consumed = 60.0;
        let crossed = crate::diff::acus_crossings(Some(&old), &new, &[50.0]).remove(0);
        let events = &["session.acus_exceeded"];
        assert!(rule("acus_over = 50", events).matches(&crossed));
        assert!(!rule("acus_over = 100", events).matches(&crossed));
        // On other events, acus_over is a condition on the session's ACUs.
        let ev = status_event(("running", None), ("exit", None));
        assert!(!rule("acus_over = 5", &["session.status_changed"]).matches(&ev));
        let mut rich = ev.clone();
        rich.session.acus_consumed = 6.0;
        assert!(rule("acus_over = 5", &["session.status_changed"]).matches(&rich));

        let waiting = crate::diff::reminder(
            &session("running", Some("waiting_for_user")),
            "r",
            0,
            1_000_000,
            1,
        );
        assert!(rule("", &["session.waiting"]).matches(&waiting));
        let mut other = rule("", &["session.waiting"]);
        other.name = "other".into();
        assert!(
            !other.matches(&waiting),
            "a reminder belongs to its own rule"
        );
    }

    #[test]
    fn routes_fan_out_in_order() {
        let mut a = rule("", &["session.status_changed"]);
        a.sinks = vec!["slack".into(), "hook".into()];
        let mut b = rule("status = \"exit\"", &["session.status_changed"]);
        b.name = "b".into();
        b.sinks = vec!["hook".into()];
        let rules = vec![a, b];
        let ev = status_event(("running", None), ("exit", None));
        let r: Vec<(&str, &str)> = routes(&rules, &ev)
            .iter()
            .map(|r| (r.rule.name.as_str(), r.sink))
            .collect();
        assert_eq!(r, [("r", "slack"), ("r", "hook"), ("b", "hook")]);
        let ev = status_event(("running", None), ("error", None));
        assert_eq!(routes(&rules, &ev).len(), 2);
    }
}
