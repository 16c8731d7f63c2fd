//! Sinks: where rendered payloads go. One file per destination type, behind one type,
//! [`Sinks`], that the delivery loop calls.
//!
//! - [`slack`]: a Slack incoming webhook (the payload as rendered).
//! - [`webhook`]: a generic HTTP webhook, with Standard Webhooks headers and signature.
//! - [`discord`]: a Discord channel webhook (embeds, mentions off, its rate limits).
//! - [`teams`]: a Microsoft Teams Workflows webhook (an Adaptive Card in its envelope).
//! - [`slack_app`]: a Slack app's bot token, one thread per session (it keeps the thread in the
//!   store).
//!
//! Every send ends in a [`Verdict`]: delivered (2xx), retry (connect error, timeout, 408, 429,
//! 5xx, honouring the receiver's `Retry-After`), gone (404, 410, Slack `no_service`: retried,
//! and the sink is paused when it keeps saying so), or give up (any other answer, including 3xx
//! since redirects are not followed). Messages name the sink and its URL with the path hidden
//! (the path of a Slack webhook URL is its credential).
//!
//! Adding a destination type means a file here, an arm of [`Sink`], and its section in
//! [`crate::config::SinkConfig`].

pub mod discord;
pub mod slack;
pub mod slack_app;
pub mod teams;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, SinkConfig};
use crate::people::Directory;
use crate::redact::{error_chain, snippet};
use crate::secret::Secret;
use crate::store::{Delivery, Store};

/// What became of one send.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The receiver answered 2xx with this status.
    Delivered { status: u16 },
    /// A transient failure: try again later (after the receiver's `Retry-After`, if any).
    Retry(Failure),
    /// The endpoint seems gone: retried, and the sink is paused when it keeps saying so.
    Gone(Failure),
    /// A permanent failure: to the dead letters.
    GiveUp(Failure),
}

/// How a failed answer is handled: the [`Verdict`] it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Retry,
    Gone,
    GiveUp,
}

impl Class {
    /// The verdict of a failure of this class.
    pub fn verdict(self, failure: Failure) -> Verdict {
        match self {
            Class::Retry => Verdict::Retry(failure),
            Class::Gone => Verdict::Gone(failure),
            Class::GiveUp => Verdict::GiveUp(failure),
        }
    }
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Failure {
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// The first 2 KiB of the answer's body.
    pub body: String,
    /// A one-line description naming the sink and the cause.
    pub message: String,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure without an answer (nothing was received).
    pub fn unanswered(message: String) -> Failure {
        Failure {
            message,
            ..Failure::default()
        }
    }
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
pub fn classify(status: u16, body: &str) -> Class {
    let slack_error = SLACK_ERRORS
        .iter()
        .find(|e| body.trim() == **e || body.contains(*e));
    if status == 410 || status == 404 || slack_error == Some(&"no_service") {
        return Class::Gone;
    }
    match status {
        408 | 429 | 500..=599 => Class::Retry,
        _ => Class::GiveUp,
    }
}

/// The most of a receiver's answer that is kept.
pub const BODY_KEEP: usize = 2048;

/// One configured sink, ready to send.
enum Sink {
    Discord(discord::Discord),
    Slack(slack::Slack),
    Webhook(webhook::Webhook),
    SlackApp(slack_app::SlackApp),
    Teams(teams::Teams),
}

/// The sinks of one configuration, built once per configuration over one shared HTTP client.
pub struct Sinks {
    by_name: BTreeMap<String, Sink>,
}

impl Sinks {
    /// Builds the sinks of a validated configuration (Slack app sinks with `to = "creator"`
    /// share one [`Directory`] of people).
    pub fn new(http: &reqwest::Client, config: &Config) -> Sinks {
        let directory = Arc::new(Directory::new(config));
        let by_name = config
            .sinks
            .iter()
            .map(|(name, sink)| {
                let built = match sink {
                    SinkConfig::Slack(c) => Sink::Slack(slack::Slack::new(http, name, c)),
                    SinkConfig::Webhook(c) => Sink::Webhook(webhook::Webhook::new(http, name, c)),
                    SinkConfig::Discord(c) => Sink::Discord(discord::Discord::new(http, name, c)),
                    SinkConfig::Teams(c) => Sink::Teams(teams::Teams::new(http, name, c)),
                    SinkConfig::SlackApp(c) => {
                        Sink::SlackApp(slack_app::SlackApp::new(http, name, c, directory.clone()))
                    }
                };
                (name.clone(), built)
            })
            .collect();
        Sinks { by_name }
    }

    /// Sends one delivery to its sink. The Slack app sink reads and records its thread in
    /// `store`.
    pub async fn send(&self, store: &Store, delivery: &Delivery, timeout: Duration) -> Verdict {
        match self.by_name.get(&delivery.sink) {
            Some(Sink::Discord(d)) => d.send(delivery, timeout).await,
            Some(Sink::Slack(s)) => s.send(delivery, timeout).await,
            Some(Sink::Teams(t)) => t.send(delivery, timeout).await,
            Some(Sink::Webhook(w)) => w.send(delivery, timeout).await,
            Some(Sink::SlackApp(a)) => a.send(store, delivery, timeout).await,
            None => Verdict::Retry(Failure::unanswered(format!(
                "sink `{}` is not configured",
                delivery.sink
            ))),
        }
    }
}

/// The HTTP client every sink shares: no redirects followed (a redirect is a permanent failure),
/// each send with its own timeout.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("devin-notify/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A destination that takes the rendered payload as it is, POSTed as JSON to a URL that is a
/// credential (Slack's and Teams' webhooks): messages name the sink only.
pub(crate) struct JsonEndpoint {
    http: reqwest::Client,
    place: String,
    url: Secret,
}

impl JsonEndpoint {
    pub(crate) fn new(http: &reqwest::Client, name: &str, url: &Secret) -> JsonEndpoint {
        JsonEndpoint {
            http: http.clone(),
            place: format!("sink `{name}`"),
            url: url.clone(),
        }
    }

    /// Posts the delivery's payload.
    pub(crate) async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        let request = self
            .http
            .post(self.url.expose())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        post(request, &self.place).await
    }
}

/// Sends a prepared request and judges the answer: 2xx delivered, otherwise [`classify`].
/// `place` names the sink in messages (never its URL).
pub(crate) async fn post(request: reqwest::RequestBuilder, place: &str) -> Verdict {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Verdict::Retry(transport_failure(place, e)),
    };
    let status = response.status().as_u16();
    let retry_after = crate::http::retry_after(response.headers());
    let text = crate::http::read_prefix(response, BODY_KEEP).await;
    if (200..300).contains(&status) {
        return Verdict::Delivered { status };
    }
    classify(status, &text).verdict(Failure {
        status: Some(status),
        message: format!("{place}: HTTP {status}: {}", snippet(text.as_bytes())),
        body: text,
        retry_after,
    })
}

/// A request that got no answer: a timeout or a transport error, named without the URL.
pub(crate) fn transport_failure(place: &str, e: reqwest::Error) -> Failure {
    Failure::unanswered(if e.is_timeout() {
        format!("{place}: no answer in time")
    } else {
        format!("{place}: {}", error_chain(&e.without_url()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(500, ""), Class::Retry);
        assert_eq!(classify(503, ""), Class::Retry);
        assert_eq!(classify(429, ""), Class::Retry);
        assert_eq!(classify(408, ""), Class::Retry);
        assert_eq!(classify(400, "invalid_payload"), Class::GiveUp);
        assert_eq!(classify(403, "action_prohibited"), Class::GiveUp);
        assert_eq!(classify(404, "no_service"), Class::Gone);
        assert_eq!(classify(410, "channel_is_archived"), Class::Gone);
        assert_eq!(classify(302, ""), Class::GiveUp);
        assert_eq!(classify(200, "no_service"), Class::Gone);
    }
}
