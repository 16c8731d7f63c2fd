//! `type = "slack"`: a Slack incoming webhook. The payload is the rendered `slack` template,
//! posted as it is; the URL is the credential, so messages name the sink only.

use std::time::Duration;

use super::{post, Verdict};
use crate::config::SlackSinkConfig;
use crate::secret::Secret;
use crate::store::Delivery;

/// A Slack incoming webhook, ready to send.
pub struct Slack {
    http: reqwest::Client,
    place: String,
    url: Secret,
}

impl Slack {
    pub fn new(http: &reqwest::Client, name: &str, config: &SlackSinkConfig) -> Slack {
        Slack {
            http: http.clone(),
            place: format!("sink `{name}`"),
            url: config.url.clone(),
        }
    }

    /// Posts the delivery's payload.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        let request = self
            .http
            .post(self.url.expose())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        post(request, &self.place).await
    }
}
