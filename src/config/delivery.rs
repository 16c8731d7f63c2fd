//! `[delivery]`: retries and timeouts of sends.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::de::{duration, write_duration, Problem};

/// `[delivery]`: retries and timeouts of sends.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a delivery goes to the dead letters.
    #[schemars(range(min = 1))]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each attempt, with jitter.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub max_backoff: Duration,
    /// Time allowed for one send.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
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

impl DeliveryConfig {
    /// Checks `[delivery]`.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.max_attempts == 0 {
            p.push(Problem::new("delivery.max_attempts", "must be at least 1"));
        }
        if self.initial_backoff.is_zero() {
            p.push(Problem::new(
                "delivery.initial_backoff",
                "must be more than 0s",
            ));
        }
        if self.max_backoff < self.initial_backoff {
            p.push(Problem::new(
                "delivery.max_backoff",
                "must be at least delivery.initial_backoff",
            ));
        }
        if self.timeout.is_zero() {
            p.push(Problem::new("delivery.timeout", "must be more than 0s"));
        }
    }
}
