//! `[devin.queue]` and `[devin.consumption]`: account signals beyond sessions (SPEC section
//! 13).

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

impl QueueConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.every < Duration::from_millis(100) {
            p.push(Problem::new("devin.queue.every", "must be at least 100ms"));
        }
    }
}

impl ConsumptionConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.every < Duration::from_millis(100) {
            p.push(Problem::new(
                "devin.consumption.every",
                "must be at least 100ms",
            ));
        }
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
