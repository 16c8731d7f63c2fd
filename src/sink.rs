//! Sinks: posting a rendered payload to a Slack incoming webhook or a signed generic webhook.
//!
//! A send either succeeds (2xx) or fails with a [`Failure`] classified as transient (connect
//! error, timeout, 408, 429, 5xx: retry) or permanent (any other answer, including 3xx since
//! redirects are not followed). Messages name the sink and its URL with the path hidden (the
//! path of a Slack webhook URL is its credential).

use std::time::Duration;

use crate::config::SinkConfig;
use crate::redact::error_chain;
use crate::secret::Secret;
use crate::signing::{sign, signing_key};

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Transient,
    Permanent,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: Class,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// The first 2 KiB of the answer's body.
    pub body: String,
    /// A one-line description naming the sink and the cause.
    pub message: String,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The endpoint is gone (Slack `no_service`, 404, 410): pausing the sink may be right.
    pub gone: bool,
}

/// Slack's incoming-webhook error bodies: all permanent.
pub const SLACK_ERRORS: &[&str] = &[
    "invalid_payload",
    "invalid_blocks",
    "no_text",
    "channel_not_found",
    "channel_is_archived",
    "action_prohibited",
    "no_service",
    "invalid_token",
    "team_disabled",
    "user_not_found",
    "posting_to_general_channel_denied",
];

/// Classifies an HTTP answer that is not a 2xx.
pub fn classify(status: u16, body: &str) -> (Class, bool) {
    let slack_error = SLACK_ERRORS
        .iter()
        .find(|e| body.trim() == **e || body.contains(*e));
    let gone = status == 410 || status == 404 || slack_error == Some(&"no_service");
    let class = match status {
        408 | 429 | 500..=599 => Class::Transient,
        _ => Class::Permanent,
    };
    (class, gone)
}

/// Sends payloads to sinks over one shared HTTP client.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
}

/// The most of a receiver's answer that is kept.
pub const BODY_KEEP: usize = 2048;

impl Sender {
    /// A sender (each send has its own timeout).
    pub fn new() -> Result<Sender, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("devin-notify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { http })
    }

    /// The shared HTTP client (no redirects followed), for the Slack app sink.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Posts `body` to the sink. Webhook sinks get Standard Webhooks headers, signed with a
    /// fresh timestamp on every attempt under the same `msg_id`.
    pub async fn send(
        &self,
        name: &str,
        sink: &SinkConfig,
        msg_id: &str,
        body: &str,
        timestamp: i64,
        timeout: Duration,
    ) -> Result<u16, Failure> {
        let Some(url) = sink.url().map(Secret::expose) else {
            // Slack app sinks are sent by `slack_app::send`, which needs the store.
            return Err(Failure {
                class: Class::Permanent,
                status: None,
                body: String::new(),
                message: format!("sink `{name}`: a {} sink has no URL", sink.kind()),
                retry_after: None,
                gone: false,
            });
        };
        // The URL is a credential (Slack) or may carry one: messages name the sink only.
        let place = format!("sink `{name}`");
        let mut request = self
            .http
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let SinkConfig::Webhook(w) = sink {
            request = request
                .header("webhook-id", msg_id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &w.secret {
                let key = signing_key(secret).map_err(|e| Failure {
                    class: Class::Permanent,
                    status: None,
                    body: String::new(),
                    message: format!("{place}: signing secret: {e}"),
                    retry_after: None,
                    gone: false,
                })?;
                request = request.header(
                    "webhook-signature",
                    sign(&key, msg_id, timestamp, body.as_bytes()),
                );
            }
            for (k, v) in &w.headers {
                request = request.header(k.as_str(), v.expose());
            }
        }
        let response = request
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| Failure {
                class: Class::Transient,
                status: None,
                body: String::new(),
                message: if e.is_timeout() {
                    format!("{place}: no answer in time")
                } else {
                    format!("{place}: {}", error_chain(&e.without_url()))
                },
                retry_after: None,
                gone: false,
            })?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(response.headers());
        let text = crate::http::read_prefix(response, BODY_KEEP).await;
        if (200..300).contains(&status) {
            return Ok(status);
        }
        let (class, gone) = classify(status, &text);
        Err(Failure {
            class,
            status: Some(status),
            message: format!(
                "{place}: HTTP {status}: {}",
                crate::redact::snippet(text.as_bytes())
            ),
            body: text,
            retry_after,
            gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(500, ""), (Class::Transient, false));
        assert_eq!(classify(503, ""), (Class::Transient, false));
        assert_eq!(classify(429, ""), (Class::Transient, false));
        assert_eq!(classify(408, ""), (Class::Transient, false));
        assert_eq!(classify(400, "invalid_payload"), (Class::Permanent, false));
        assert_eq!(
            classify(403, "action_prohibited"),
            (Class::Permanent, false)
        );
        assert_eq!(classify(404, "no_service"), (Class::Permanent, true));
        assert_eq!(
            classify(410, "channel_is_archived"),
            (Class::Permanent, true)
        );
        assert_eq!(classify(302, ""), (Class::Permanent, false));
        assert_eq!(classify(200, "no_service"), (Class::Permanent, true));
    }
}
