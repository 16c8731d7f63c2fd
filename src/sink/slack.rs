//! `type = "slack"`: a Slack incoming webhook. The payload is the rendered `slack` template,
//! posted as it is; the URL is the credential, so messages name the sink only.

use std::time::Duration;

use super::{JsonEndpoint, Verdict};
use crate::config::SlackSinkConfig;
use crate::store::Delivery;

/// A Slack incoming webhook, ready to send.
pub struct Slack(JsonEndpoint);

impl Slack {
    pub fn new(http: &reqwest::Client, name: &str, config: &SlackSinkConfig) -> Slack {
        Slack(JsonEndpoint::new(http, name, &config.url))
    }

    /// Posts the delivery's payload.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        self.0.send(delivery, timeout).await
    }
}
