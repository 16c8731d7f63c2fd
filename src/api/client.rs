//! The `dead-letters`, `sinks`, `deliveries`, `events` and `preview --digest` commands through
//! the admin API of a running service (when it holds the sled store): the same operations, the
//! same output.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::dead::DeadLetters;
use super::history::{DeliveryLog, EventLog, EventsQuery};
use super::rules::DigestPreview;
use super::Which;
use crate::admin::logs::{deliveries_text, events_text};
use crate::admin::view::SinkView;
use crate::admin::{
    dead_letters_text, purge_text, resume_text, retry_text, sinks_text, AdminOp, PreviewItem,
};
use crate::secret::Secret;

#[derive(Deserialize)]
struct SinksAnswer {
    sinks: Vec<SinkView>,
}

#[derive(Deserialize)]
struct RetryAnswer {
    requeued: usize,
    still_dead: Vec<String>,
}

#[derive(Deserialize)]
struct PurgeAnswer {
    purged: usize,
}

#[derive(Deserialize)]
struct ResumeAnswer {
    was_paused: bool,
}

/// The address to reach a server listening on `listen`: a wildcard address is reached on
/// the loopback address of its family.
pub fn reach(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// A client of one service's admin API.
struct Api {
    http: reqwest::Client,
    base: reqwest::Url,
    token: Option<Secret>,
}

impl Api {
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<T, String> {
        let url = self.url(segments);
        let mut request = self.http.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(url, request).await
    }

    /// `GET` with a query string.
    async fn get_query<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &impl serde::Serialize,
    ) -> Result<T, String> {
        let url = self.url(segments);
        let request = self.http.get(url.clone()).query(query);
        self.send(url, request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: reqwest::Url,
        mut request: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "the running service at {} did not answer: {}",
                self.base,
                crate::redact::error_chain(&e.without_url())
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| crate::redact::snippet(&bytes));
            return Err(format!("{url}: HTTP {status}: {message}"));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{url}: an answer that is not what was expected: {e}"))
    }
}

impl Api {
    /// A client of the admin API of the service at `addr`.
    fn new(addr: SocketAddr, token: Option<&Secret>) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let base = reqwest::Url::parse(&format!("http://{addr}/api/v1/"))
            .map_err(|e| format!("http://{addr}: {e}"))?;
        Ok(Api {
            http,
            base,
            token: token.cloned(),
        })
    }
}

/// `preview --digest NAME` through the admin API of the service at `addr` (which holds the
/// sled store): the digest's payloads now, as [`crate::admin::preview_digest`] gives them.
pub async fn preview_digest(
    addr: SocketAddr,
    token: Option<&Secret>,
    name: &str,
) -> Result<Vec<PreviewItem>, String> {
    let api = Api::new(addr, token)?;
    let path = ["digests", name, "preview"];
    let answer: DigestPreview = api.call(reqwest::Method::POST, &path, None).await?;
    Ok(answer
        .items
        .into_iter()
        .map(|item| PreviewItem {
            body: match &item.payload {
                Value::String(text) => text.clone(),
                json => serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string()),
            },
            sink: item.sink,
            sink_type: item.sink_type,
            event_type: item.event_type,
        })
        .collect())
}

/// Runs an operation through the admin API of the service at `addr`, with the admin token
/// when one is configured; returns what the command prints.
pub async fn execute(
    addr: SocketAddr,
    token: Option<&Secret>,
    op: &AdminOp,
) -> Result<String, String> {
    let api = Api::new(addr, token)?;
    let which = |w| serde_json::to_value(Which::of(w)).ok();
    use reqwest::Method;
    match op {
        AdminOp::DeadLetters => {
            let answer: DeadLetters = api.call(Method::GET, &["dead-letters"], None).await?;
            Ok(dead_letters_text(&answer.dead_letters))
        }
        AdminOp::RetryDead(w) => {
            let path = ["dead-letters", "retry"];
            let answer: RetryAnswer = api.call(Method::POST, &path, which(w)).await?;
            Ok(retry_text(answer.requeued, &answer.still_dead))
        }
        AdminOp::PurgeDead(w) => {
            let path = ["dead-letters", "purge"];
            let answer: PurgeAnswer = api.call(Method::POST, &path, which(w)).await?;
            Ok(purge_text(answer.purged))
        }
        AdminOp::Sinks => {
            let answer: SinksAnswer = api.call(Method::GET, &["sinks"], None).await?;
            Ok(sinks_text(&answer.sinks))
        }
        AdminOp::Resume(name) => {
            let path = ["sinks", name.as_str(), "resume"];
            let answer: ResumeAnswer = api.call(Method::POST, &path, None).await?;
            Ok(resume_text(name, answer.was_paused))
        }
        AdminOp::Deliveries(query) => {
            let answer: DeliveryLog = api.get_query(&["deliveries"], query).await?;
            Ok(deliveries_text(&answer.deliveries, answer.history))
        }
        AdminOp::Events(limit) => {
            let query = EventsQuery {
                limit: *limit,
                before: None,
            };
            let answer: EventLog = api.get_query(&["events"], &query).await?;
            Ok(events_text(&answer.events, answer.history))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(reach(addr("0.0.0.0:9464")), addr("127.0.0.1:9464"));
        assert_eq!(reach(addr("[::]:9464")), addr("[::1]:9464"));
        assert_eq!(reach(addr("10.1.2.3:9464")), addr("10.1.2.3:9464"));
    }
}
