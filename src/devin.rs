//! The Devin API: the wire model of a session listing and a client that reads it page by page.
//!
//! The model is tolerant: unknown fields are kept (in [`Session::extra`]), unknown enum values
//! are plain strings, and every field the documentation calls optional is optional. Only
//! `session_id` and `status` are required of an item; a page whose shape is wrong is a
//! [`ApiError::Decode`], never a half-understood page.

use std::time::Duration;

use serde::Deserialize;

use crate::config::DevinConfig;
use crate::model::{null_as_default, DailyConsumption, Member, Page, QueueInfo};
use crate::redact::{error_chain, snippet, strip_userinfo};
use crate::secret::Secret;

/// Why the API could not be read. Every variant names the URL (never the token).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("GET {url}: HTTP {status}: the token was refused ({hint})")]
    Auth {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("GET {url}: HTTP 429: rate limited{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
    },
    #[error("GET {url}: HTTP {status}: the request was rejected: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: HTTP {status}: server error: {body}")]
    Server {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url}: no complete answer within {}s (devin.timeout)", timeout.as_secs_f32())]
    Timeout { url: String, timeout: Duration },
    #[error("GET {url}: could not connect within {}s (devin.connect_timeout)", timeout.as_secs_f32())]
    ConnectTimeout { url: String, timeout: Duration },
    #[error("GET {url}: the answer is not a sessions page: {message}")]
    Decode { url: String, message: String },
    #[error(
        "GET {url}: the answer is larger than the {limit}-byte limit (devin.max_response_bytes)"
    )]
    TooLarge { url: String, limit: usize },
    #[error("GET {url}: the listing repeats cursor `{cursor}`: stopping to avoid a loop")]
    CursorLoop { url: String, cursor: String },
}

impl ApiError {
    /// How long the API asked us to wait, for a rate-limited answer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the API refused the token's permission (HTTP 403).
    pub fn forbidden(&self) -> bool {
        matches!(self, ApiError::Auth { status: 403, .. })
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Auth { .. } => "auth",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Rejected { .. } => "rejected",
            ApiError::Server { .. } => "server",
            ApiError::Transport { .. } => "transport",
            ApiError::Timeout { .. } => "timeout",
            ApiError::ConnectTimeout { .. } => "connect_timeout",
            ApiError::Decode { .. } => "decode",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::CursorLoop { .. } => "cursor_loop",
        }
    }
}

/// Extra query bounds a poll adds to the configured filters.
#[derive(Debug, Clone, Default)]
pub struct ListBounds {
    /// `updated_after`, for incremental listings.
    pub updated_after: Option<i64>,
}

/// A client of the sessions listing.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
    page_size: u32,
    filters: Vec<(String, String)>,
    max_response_bytes: usize,
    timeout: Duration,
    org_id: Option<String>,
    connect_timeout: Duration,
}

/// Pages of a session's messages read at most, to find the latest Devin message.
pub const MESSAGE_PAGES: usize = 50;
/// Time allowed for one messages request (or `devin.timeout`, if shorter): a slow messages
/// endpoint must not hold notifications back for long.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// One page of `GET .../sessions/{devin_id}/messages`.
#[derive(Debug, Deserialize)]
struct MessagePage {
    items: Vec<Message>,
    #[serde(default)]
    end_cursor: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    has_next_page: bool,
}

/// One message: `{created_at, event_id, message, source}`.
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default, deserialize_with = "null_as_default")]
    source: String,
    #[serde(default)]
    message: Option<String>,
}

impl Client {
    /// A client for the configured account. `token` is resolved by the caller.
    pub fn new(config: &DevinConfig, token: Secret) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("devin-notify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            token,
            page_size: config.page_size,
            filters: config.filters.query_pairs(),
            max_response_bytes: config.max_response_bytes,
            timeout: config.timeout,
            org_id: config.org_id.clone(),
            connect_timeout: config.connect_timeout,
        })
    }

    /// The configured filters, as query pairs.
    pub fn filters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.filters.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The listing's URL, printable (no credentials, no query).
    pub fn listing_url(&self) -> String {
        format!("{}{}", strip_userinfo(&self.base_url), self.list_path())
    }

    /// The listing's path, after the base URL: the enterprise listing, or the organization's
    /// when `devin.org_id` is set.
    pub fn list_path(&self) -> String {
        match &self.org_id {
            Some(org) => format!("/v3/organizations/{org}/sessions"),
            None => "/v3/enterprise/sessions".to_owned(),
        }
    }

    /// The query of one page request: filters, page size, bounds and cursor.
    pub fn query(&self, bounds: &ListBounds, after: Option<&str>) -> Vec<(String, String)> {
        let mut q = Vec::with_capacity(self.filters.len() + 3);
        q.push(("first".to_owned(), self.page_size.to_string()));
        q.extend(self.filters.iter().cloned());
        if let Some(t) = bounds.updated_after {
            q.push(("updated_after".to_owned(), t.to_string()));
        }
        if let Some(cursor) = after {
            q.push(("after".to_owned(), cursor.to_owned()));
        }
        q
    }

    /// A printable URL for a request: the base URL without credentials, the path and the query.
    fn display_url(&self, path: &str, query: &[(String, String)]) -> String {
        let mut url = format!("{}{}", strip_userinfo(&self.base_url), path);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        url
    }

    /// Reads one page.
    pub async fn list_page(
        &self,
        bounds: &ListBounds,
        after: Option<&str>,
    ) -> Result<Page, ApiError> {
        let query = self.query(bounds, after);
        let path = self.list_path();
        let (url, body) = self.get(&path, &query, self.timeout).await?;
        Page::decode(&body).map_err(|e| ApiError::Decode {
            url,
            message: e.to_string(),
        })
    }

    /// The text of the latest message whose source is Devin, reading every page of
    /// `GET .../sessions/{devin_id}/messages` (chronological). At most `MESSAGE_PAGES` pages.
    pub async fn last_devin_message(&self, session_id: &str) -> Result<Option<String>, ApiError> {
        let devin_id = if session_id.starts_with("devin-") {
            session_id.to_owned()
        } else {
            format!("devin-{session_id}")
        };
        let path = match &self.org_id {
            Some(org) => format!("/v3/organizations/{org}/sessions/{devin_id}/messages"),
            None => format!("/v3/enterprise/sessions/{devin_id}/messages"),
        };
        let timeout = self.timeout.min(MESSAGE_TIMEOUT);
        let mut latest = None;
        let mut after: Option<String> = None;
        let mut cursors = std::collections::HashSet::new();
        for _ in 0..MESSAGE_PAGES {
            let mut query = vec![("first".to_owned(), "200".to_owned())];
            if let Some(cursor) = &after {
                query.push(("after".to_owned(), cursor.clone()));
            }
            let (url, body) = self.get(&path, &query, timeout).await?;
            let page: MessagePage =
                serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
                    url: url.clone(),
                    message: format!("not a messages page: {e}"),
                })?;
            if let Some(m) = page
                .items
                .into_iter()
                .rev()
                .filter(|m| m.source.eq_ignore_ascii_case("devin"))
                .find_map(|m| m.message)
            {
                latest = Some(m);
            }
            match page
                .end_cursor
                .filter(|c| page.has_next_page && !c.is_empty())
            {
                Some(cursor) if cursors.insert(cursor.clone()) => after = Some(cursor),
                Some(cursor) => return Err(ApiError::CursorLoop { url, cursor }),
                None => return Ok(latest),
            }
        }
        tracing::warn!(
            session_id,
            pages = MESSAGE_PAGES,
            "messages listing cut short; quoting the latest Devin message read"
        );
        Ok(latest)
    }

    /// `GET /v3/enterprise/queue` (ViewAccountMetrics).
    pub async fn queue(&self) -> Result<QueueInfo, ApiError> {
        self.get_json(
            "/v3/enterprise/queue",
            &[],
            "ViewAccountMetrics",
            "a queue answer",
        )
        .await
    }

    /// `GET /v3/enterprise/consumption/daily` (ViewAccountConsumption) between two times
    /// (epoch seconds).
    pub async fn daily_consumption(
        &self,
        time_after: i64,
        time_before: i64,
    ) -> Result<DailyConsumption, ApiError> {
        let query = [
            ("time_after".to_owned(), time_after.to_string()),
            ("time_before".to_owned(), time_before.to_string()),
        ];
        let path = "/v3/enterprise/consumption/daily";
        self.get_json(
            path,
            &query,
            "ViewAccountConsumption",
            "a daily consumption answer",
        )
        .await
    }

    /// `GET /v3/enterprise/members/users/{user_id}` (ManageAccountMembership); `None` when
    /// Devin knows no such user (404).
    pub async fn member(&self, user_id: &str) -> Result<Option<Member>, ApiError> {
        let id: String = user_id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let path = format!("/v3/enterprise/members/users/{id}");
        match self
            .get_json(&path, &[], "ManageAccountMembership", "a member")
            .await
        {
            Ok(member) => Ok(Some(member)),
            Err(ApiError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A GET whose answer is one JSON value of type `T`; a 403 names `permission`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
        permission: &str,
        what: &str,
    ) -> Result<T, ApiError> {
        let (url, body) = match self.get(path, query, self.timeout).await {
            Err(ApiError::Auth {
                url, status: 403, ..
            }) => {
                return Err(ApiError::Auth {
                    url,
                    status: 403,
                    hint: format!("the service user lacks the {permission} permission"),
                })
            }
            other => other?,
        };
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
            url,
            message: format!("not {what}: {e}"),
        })
    }

    /// One GET of `path` with `query`: the printable URL and the body of a 2xx answer, or the
    /// error its status or transport means.
    async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
        timeout: Duration,
    ) -> Result<(String, Vec<u8>), ApiError> {
        let url = self.display_url(path, query);
        let response = self
            .http
            .get(format!("{}{}", self.base_url, path))
            .query(query)
            .timeout(timeout)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                let err = self.transport_error(&url, e);
                crate::metrics::API_REQUESTS.count(&[("status", err.kind())], 1.0);
                err
            })?;
        let status = response.status();
        crate::metrics::API_REQUESTS.count(&[("status", status.as_str())], 1.0);
        let retry_after = crate::http::retry_after(response.headers());
        let body = self.read_body(&url, response).await?;
        match status.as_u16() {
            200..=299 => Ok((url, body)),
            401 => Err(ApiError::Auth {
                url,
                status: 401,
                hint: "check devin.token: a service-user token starting with cog_".into(),
            }),
            403 => Err(ApiError::Auth {
                url,
                status: 403,
                hint: match &self.org_id {
                    Some(org) => format!("the service user lacks the ViewOrgSessions permission on organization {org}"),
                    None => "the service user lacks the ViewAccountSessions permission at the enterprise level (or set devin.org_id to use an organization-scoped ViewOrgSessions user)".into(),
                },
            }),
            429 => Err(ApiError::RateLimited { url, retry_after }),
            s @ 500..=599 => Err(ApiError::Server {
                url,
                status: s,
                body: snippet(&body),
            }),
            s => Err(ApiError::Rejected {
                url,
                status: s,
                body: snippet(&body),
            }),
        }
    }

    async fn read_body(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, ApiError> {
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(ApiError::TooLarge {
                url: url.to_owned(),
                limit: self.max_response_bytes,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(ApiError::TooLarge {
                    url: url.to_owned(),
                    limit: self.max_response_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> ApiError {
        if e.is_connect() && e.is_timeout() {
            ApiError::ConnectTimeout {
                url: url.to_owned(),
                timeout: self.connect_timeout,
            }
        } else if e.is_timeout() {
            ApiError::Timeout {
                url: url.to_owned(),
                timeout: self.timeout,
            }
        } else {
            ApiError::Transport {
                url: url.to_owned(),
                message: error_chain(&e.without_url()),
            }
        }
    }
}
