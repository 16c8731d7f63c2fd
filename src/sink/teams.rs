//! `type = "teams"`: a Microsoft Teams channel through a Workflows webhook ("When a Teams
//! webhook request is received"). The payload is the rendered `teams` template, an Adaptive
//! Card, in the message envelope ([`crate::render::teams_message`]); 200 and 202 are success.
//! Workflows answers 202 before the flow runs: a flow that fails later shows only in its run
//! history. The URL carries the flow's signature: messages name the sink only.

use std::time::Duration;

use super::{JsonEndpoint, Verdict};
use crate::config::TeamsSinkConfig;
use crate::store::Delivery;

/// A Teams Workflows webhook, ready to send.
pub struct Teams(JsonEndpoint);

impl Teams {
    pub fn new(http: &reqwest::Client, name: &str, config: &TeamsSinkConfig) -> Teams {
        Teams(JsonEndpoint::new(http, name, &config.url))
    }

    /// Posts the delivery's payload.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        self.0.send(delivery, timeout).await
    }
}
