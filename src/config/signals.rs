//! `[devin.queue]`: account signals beyond sessions (SPEC section 13).

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

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

impl QueueConfig {
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.every < Duration::from_millis(100) {
            p.push(Problem::new("devin.queue.every", "must be at least 100ms"));
        }
    }
}
