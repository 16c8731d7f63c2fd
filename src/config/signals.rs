//! `[devin.queue]`, `[devin.consumption]` (account signals beyond sessions, SPEC section 13)
//! and `[people]` (who a Devin user is in Slack, when the API cannot say).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::de::{duration, write_duration, Problem};

/// `[devin.queue]`: poll `GET /v3/enterprise/queue` (permission ViewAccountMetrics). Absent:
/// not polled.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// How often to read the queue (default 1m).
    #[serde(
        default = "one_minute",
        deserialize_with = "duration",
        serialize_with = "write_duration"
    )]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub every: Duration,
}

/// `[devin.consumption]`: poll `GET /v3/enterprise/consumption/daily` (permission
/// ViewAccountConsumption). Absent: not polled.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumptionConfig {
    /// How often to read the daily consumption (default 15m).
    #[serde(
        default = "fifteen_minutes",
        deserialize_with = "duration",
        serialize_with = "write_duration"
    )]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub every: Duration,
    /// `consumption.daily_exceeded` fires once per billing day and threshold when the day's
    /// ACUs pass each of these.
    #[schemars(length(min = 1))]
    pub daily_acus_over: Vec<f64>,
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

fn fifteen_minutes() -> Duration {
    Duration::from_secs(15 * 60)
}

/// The longest `every` of an account signal: a day (a longer one is a mistake; and the next
/// read's time must stay computable).
pub const MAX_EVERY: Duration = Duration::from_secs(86_400);

/// `every` between 100 ms and a day.
fn validate_every(every: Duration, key: &str, p: &mut Vec<Problem>) {
    if every < Duration::from_millis(100) {
        p.push(Problem::new(key, "must be at least 100ms"));
    }
    if every > MAX_EVERY {
        p.push(Problem::new(key, "must be at most 1d"));
    }
}

impl QueueConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        validate_every(self.every, "devin.queue.every", p);
    }
}

impl ConsumptionConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        validate_every(self.every, "devin.consumption.every", p);
        if self.daily_acus_over.is_empty() {
            p.push(Problem::new(
                "devin.consumption.daily_acus_over",
                "names no threshold (e.g. [500, 1000])",
            ));
        }
        for (i, t) in self.daily_acus_over.iter().enumerate() {
            if !t.is_finite() || *t < 0.0 {
                p.push(Problem::new(
                    format!("devin.consumption.daily_acus_over[{i}]"),
                    "must be a number of ACUs, 0 or more",
                ));
            }
        }
    }
}

/// `[people]`: Devin user id -> an email, or a Slack user id (`U0123ABCD`, used as it is).
pub type People = BTreeMap<String, String>;

/// Whether a `[people]` value is a Slack user id rather than an email.
pub fn is_slack_user_id(value: &str) -> bool {
    (value.starts_with('U') || value.starts_with('W'))
        && value.len() >= 3
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Checks `[people]`: each value an email or a Slack user id.
pub fn validate_people(people: &People, p: &mut Vec<Problem>) {
    for (user, value) in people {
        let email = value.split_once('@').is_some_and(|(a, b)| {
            !a.is_empty() && b.contains('.') && !value.chars().any(char::is_whitespace)
        });
        if !email && !is_slack_user_id(value) {
            p.push(Problem::new(
                format!("people.{user}"),
                format!("`{value}` is neither an email nor a Slack user id (U0123ABCD)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_values() {
        assert!(is_slack_user_id("U0123ABCD") && is_slack_user_id("W42XY"));
        assert!(!is_slack_user_id("alice@example.com") && !is_slack_user_id("U1"));
        let mut people = People::new();
        people.insert("user-1".into(), "alice@example.com".into());
        people.insert("user-2".into(), "U0123ABCD".into());
        people.insert("user-3".into(), "bob".into());
        let mut p = Vec::new();
        validate_people(&people, &mut p);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "people.user-3");
    }
}
