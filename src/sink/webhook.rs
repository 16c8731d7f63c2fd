//! `type = "webhook"`: a generic HTTP webhook, per Standard Webhooks: `webhook-id` (the
//! delivery's id, stable across retries and restarts), `webhook-timestamp`, and with a secret
//! `webhook-signature`, signed with a fresh timestamp on every attempt; then the sink's own
//! headers. With `format = "cloudevents"` the body is a CloudEvent in structured mode
//! (`application/cloudevents+json`), rendered by [`crate::active::Active::payload`].

use std::time::Duration;

use super::{post, Failure, Verdict};
use crate::config::{WebhookFormat, WebhookSinkConfig};
use crate::secret::Secret;
use crate::signing::{sign, signing_key};
use crate::store::{now_ms, Delivery};

/// A signed webhook, ready to send.
pub struct Webhook {
    http: reqwest::Client,
    place: String,
    url: Secret,
    /// The signing key, decoded once (an error for a secret the config check let through).
    key: Option<Result<Vec<u8>, String>>,
    headers: Vec<(String, Secret)>,
    /// The body's media type: JSON, or a CloudEvent in structured mode.
    content_type: &'static str,
}

impl Webhook {
    pub fn new(http: &reqwest::Client, name: &str, config: &WebhookSinkConfig) -> Webhook {
        Webhook {
            http: http.clone(),
            place: format!("sink `{name}`"),
            url: config.url.clone(),
            key: config.secret.as_ref().map(signing_key),
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            content_type: match config.format {
                WebhookFormat::Standard => "application/json",
                WebhookFormat::Cloudevents => "application/cloudevents+json",
            },
        }
    }

    /// Posts the delivery's payload with the Standard Webhooks headers.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        let timestamp = (now_ms() / 1000) as i64;
        let mut request = self
            .http
            .post(self.url.expose())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string());
        match &self.key {
            Some(Ok(key)) => {
                let signature = sign(key, &delivery.id, timestamp, delivery.body.as_bytes());
                request = request.header("webhook-signature", signature);
            }
            Some(Err(e)) => {
                return Verdict::GiveUp(Failure::unanswered(format!(
                    "{}: signing secret: {e}",
                    self.place
                )))
            }
            None => {}
        }
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.expose());
        }
        post(request.body(delivery.body.clone()), &self.place).await
    }
}
