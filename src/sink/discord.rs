//! `type = "discord"`: a Discord channel webhook. The payload is the rendered `discord`
//! template (`embeds`), posted with `?wait=true` so that Discord answers whether it posted;
//! this sink always sets `"allowed_mentions": {"parse": []}`, whatever the template says, so no
//! message can ping anyone.
//!
//! Rate limits: a 429 is retried after the body's `retry_after` (seconds, may be fractional) or
//! the `Retry-After` header; an answer with `X-RateLimit-Remaining: 0` holds the next send for
//! `X-RateLimit-Reset-After` seconds. The URL is the credential: messages name the sink only.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{classify, transport_failure, Failure, Verdict, BODY_KEEP};
use crate::config::DiscordSinkConfig;
use crate::http::{read_prefix, retry_after};
use crate::redact::snippet;
use crate::secret::Secret;
use crate::store::Delivery;

/// A Discord webhook, ready to send.
pub struct Discord {
    http: reqwest::Client,
    place: String,
    url: Secret,
    /// Not before this instant (Discord said the bucket is empty).
    hold: Mutex<Option<Instant>>,
}

impl Discord {
    pub fn new(http: &reqwest::Client, name: &str, config: &DiscordSinkConfig) -> Discord {
        let url = config.url.expose();
        let sep = if url.contains('?') { '&' } else { '?' };
        Discord {
            http: http.clone(),
            place: format!("sink `{name}`"),
            url: Secret::new(format!("{url}{sep}wait=true")),
            hold: Mutex::new(None),
        }
    }

    /// Posts the delivery's payload, with mentions turned off.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Verdict {
        let Some(body) = without_mentions(&delivery.body) else {
            return Verdict::GiveUp(Failure::unanswered(format!(
                "{}: the payload is not a JSON object",
                self.place
            )));
        };
        let held = *self.hold.lock().await;
        if let Some(until) = held {
            tokio::time::sleep_until(until).await;
        }
        let request = self
            .http
            .post(self.url.expose())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Verdict::Retry(transport_failure(&self.place, e)),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        *self.hold.lock().await = bucket_empty(&headers).map(|wait| Instant::now() + wait);
        let text = read_prefix(response, BODY_KEEP).await;
        if (200..300).contains(&status) {
            return Verdict::Delivered { status };
        }
        let retry_after = match status {
            429 => body_retry_after(&text).or_else(|| retry_after(&headers)),
            _ => retry_after(&headers),
        };
        classify(status, &text).verdict(Failure {
            status: Some(status),
            message: format!(
                "{}: HTTP {status}: {}",
                self.place,
                snippet(text.as_bytes())
            ),
            body: text,
            retry_after,
        })
    }
}

/// The payload with `"allowed_mentions": {"parse": []}`, whatever the template said.
fn without_mentions(body: &str) -> Option<String> {
    let Ok(Value::Object(mut payload)) = serde_json::from_str::<Value>(body) else {
        return None;
    };
    payload.insert("allowed_mentions".into(), json!({ "parse": [] }));
    Some(Value::Object(payload).to_string())
}

/// A 429 body's `retry_after` (seconds, possibly fractional).
fn body_retry_after(text: &str) -> Option<Duration> {
    let seconds = serde_json::from_str::<Value>(text)
        .ok()?
        .get("retry_after")?
        .as_f64()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// How long to hold the next send when Discord says the bucket is empty.
fn bucket_empty(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if value("x-ratelimit-remaining")?.trim() != "0" {
        return None;
    }
    let seconds: f64 = value("x-ratelimit-reset-after")?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_always_off() {
        let body =
            without_mentions(r#"{"content":"hi","allowed_mentions":{"parse":["everyone"]}}"#)
                .expect("an object");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        assert_eq!(v["content"], "hi");
        assert!(without_mentions("[1]").is_none());
    }

    #[test]
    fn rate_limit_answers_are_read() {
        assert_eq!(
            body_retry_after(
                r#"{"message":"You are being rate limited.","retry_after":0.35,"global":false}"#
            ),
            Some(Duration::from_millis(350))
        );
        assert_eq!(body_retry_after("<html>"), None);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().expect("value"));
        h.insert("x-ratelimit-reset-after", "1.5".parse().expect("value"));
        assert_eq!(bucket_empty(&h), Some(Duration::from_millis(1500)));
        h.insert("x-ratelimit-remaining", "3".parse().expect("value"));
        assert_eq!(bucket_empty(&h), None);
    }
}
