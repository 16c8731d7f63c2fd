//! The Devin API: the wire model of a session listing and a client that reads it page by page.
//!
//! The model is tolerant: unknown fields are kept (in [`Session::extra`]), unknown enum values
//! are plain strings, and every field the documentation calls optional is optional. Only
//! `session_id` and `status` are required of an item; a page whose shape is wrong is a
//! [`ApiError::Decode`], never a half-understood page.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::config::{DevinConfig, Filters};
use crate::secret::Secret;

/// One pull request of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The PR's URL, e.g. `https://github.com/owner/repo/pull/7`.
    pub pr_url: String,
    /// The PR's state as Devin reports it (`open`, `merged`, `closed`, ... an open set).
    #[serde(default, deserialize_with = "null_as_default")]
    pub pr_state: String,
}

impl PullRequest {
    /// `owner/repo` parsed from the PR URL (`https://host/owner/repo/...`), when it has one.
    pub fn repo(&self) -> Option<String> {
        repo_of(&self.pr_url)
    }
}

/// `owner/repo` from a URL such as `https://github.com/owner/repo/pull/7`.
pub fn repo_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut parts = rest.split('/').skip(1).filter(|p| !p.is_empty());
    let owner = parts.next()?;
    let repo = parts.next()?;
    Some(format!("{owner}/{repo}"))
}

/// A session as the list endpoint returns it (`SessionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub org_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub acus_consumed: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub updated_at: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub pull_requests: Vec<PullRequest>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_archived: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_session_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<Value>,
    /// Fields this version does not know: kept, stored and passed on to webhooks.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Session {
    /// A minimal session, for tests and samples.
    pub fn new(session_id: impl Into<String>, status: impl Into<String>) -> Self {
        Session {
            session_id: session_id.into(),
            status: status.into(),
            org_id: String::new(),
            status_detail: None,
            acus_consumed: 0.0,
            created_at: 0,
            updated_at: 0,
            pull_requests: Vec::new(),
            tags: Vec::new(),
            url: String::new(),
            title: None,
            is_archived: None,
            origin: None,
            category: None,
            subcategory: None,
            user_id: None,
            service_user_id: None,
            playbook_id: None,
            parent_session_id: None,
            child_session_ids: None,
            structured_output: None,
            extra: Map::new(),
        }
    }

    /// The title, or the session id when the session has none.
    pub fn display_title(&self) -> &str {
        match self.title.as_deref() {
            Some(t) if !t.trim().is_empty() => t,
            _ => &self.session_id,
        }
    }

    /// Whether the session is archived (absent counts as not).
    pub fn archived(&self) -> bool {
        self.is_archived.unwrap_or(false)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One page of `GET /v3/enterprise/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Session>,
    #[serde(default)]
    pub end_cursor: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_next_page: bool,
    #[serde(default)]
    pub total: Option<u64>,
    /// Items that could not be read as sessions, with why: skipped, so one malformed item
    /// cannot stop the listing.
    #[serde(skip)]
    pub skipped: Vec<String>,
    /// The JSON text of each item of `items`, as the API sent it (empty for pages built in
    /// code).
    #[serde(skip)]
    pub raw: Vec<String>,
}

/// A page whose items are not decoded yet.
#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    items: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    end_cursor: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    has_next_page: bool,
    #[serde(default)]
    total: Option<u64>,
}

impl Page {
    /// Decodes a page body. A body that is not a page is an error; an item that is not a
    /// session is skipped and reported in [`Page::skipped`].
    pub fn decode(body: &[u8]) -> Result<Page, serde_json::Error> {
        let raw: RawPage = serde_json::from_slice(body)?;
        let mut items = Vec::with_capacity(raw.items.len());
        let mut texts = Vec::with_capacity(raw.items.len());
        let mut skipped = Vec::new();
        for (i, item) in raw.items.iter().enumerate() {
            match serde_json::from_str::<Session>(item.get()) {
                Ok(session) => {
                    items.push(session);
                    texts.push(item.get().to_owned());
                }
                Err(e) => {
                    let id = serde_json::from_str::<serde_json::Value>(item.get())
                        .ok()
                        .and_then(|v| {
                            v.get("session_id")
                                .and_then(|s| s.as_str())
                                .map(str::to_owned)
                        });
                    skipped.push(match id {
                        Some(id) => format!("item {i} (session {id}): {e}"),
                        None => format!("item {i}: {e}"),
                    });
                }
            }
        }
        Ok(Page {
            items,
            end_cursor: raw.end_cursor,
            has_next_page: raw.has_next_page,
            total: raw.total,
            skipped,
            raw: texts,
        })
    }
}

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
                crate::metrics::count(
                    "devin_notify_api_requests_total",
                    &[("status", err.kind())],
                    1.0,
                );
                err
            })?;
        let status = response.status();
        crate::metrics::count(
            "devin_notify_api_requests_total",
            &[("status", status.as_str())],
            1.0,
        );
        let retry_after = crate::retry::retry_after(response.headers());
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

/// An error and its sources, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The first 300 characters of a body, on one line, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// `https://user:pass@host/x` -> `https://host/x`.
pub fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

impl Filters {
    /// The filters as query pairs; arrays repeat their key.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        let mut many = |key: &str, values: &Option<Vec<String>>| {
            for v in values.iter().flatten() {
                q.push((key.to_owned(), v.clone()));
            }
        };
        many("session_ids", &self.session_ids);
        many("tags", &self.tags);
        many("origins", &self.origins);
        many("user_ids", &self.user_ids);
        many("service_user_ids", &self.service_user_ids);
        many("repo_names", &self.repo_names);
        many("org_ids", &self.org_ids);
        let mut one = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                q.push((key.to_owned(), v));
            }
        };
        one("created_after", self.created_after.map(|v| v.to_string()));
        one("created_before", self.created_before.map(|v| v.to_string()));
        one("updated_before", self.updated_before.map(|v| v.to_string()));
        one("playbook_id", self.playbook_id.clone());
        one("schedule_id", self.schedule_id.clone());
        one("category", self.category.clone());
        one(
            "include_deleted_orgs",
            self.include_deleted_orgs.map(|v| v.to_string()),
        );
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_example() {
        let body = br#"{"items":[{"acus_consumed":123,"created_at":123,"org_id":"<string>",
            "pull_requests":[{"pr_state":"<string>","pr_url":"<string>"}],"session_id":"<string>",
            "status":"new","tags":["<string>"],"updated_at":123,"url":"<string>","category":"bug_fixing",
            "child_session_ids":["<string>"],"is_archived":false,"origin":"webapp",
            "parent_session_id":"<string>","playbook_id":"<string>","service_user_id":"<string>",
            "status_detail":"working","structured_output":{},"subcategory":"<string>",
            "title":"<string>","user_id":"<string>"}],"end_cursor":"<string>","has_next_page":false,"total":123}"#;
        let page = Page::decode(body).expect("documented example decodes");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].acus_consumed, 123.0);
        assert_eq!(page.items[0].status_detail.as_deref(), Some("working"));
        assert!(page.items[0].extra.is_empty());
    }

    #[test]
    fn tolerates_unknown_fields_values_and_nulls() {
        let body = br#"{"items":[{"session_id":"s1","status":"hibernating","status_detail":"dreaming",
            "tags":null,"pull_requests":null,"title":null,"new_field":{"x":1}}],"has_next_page":false}"#;
        let page = Page::decode(body).expect("tolerant");
        let s = &page.items[0];
        assert_eq!(s.status, "hibernating");
        assert!(s.tags.is_empty() && s.pull_requests.is_empty());
        assert_eq!(s.extra.get("new_field"), Some(&serde_json::json!({"x":1})));
        // Unknown fields survive a round trip through the store.
        let back: Session =
            serde_json::from_slice(&serde_json::to_vec(s).expect("ser")).expect("de");
        assert_eq!(&back, s);
    }

    #[test]
    fn skips_malformed_items_and_keeps_the_rest() {
        let page = Page::decode(
            br#"{"items":[{"status":"running"},{"session_id":"ok","status":"new"},
            {"session_id":"bad","status":"new","updated_at":1.5},{"session_id":"b2","status":"x","pull_requests":[{"pr_url":null}]}],
            "has_next_page":false}"#,
        )
        .expect("a page");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].session_id, "ok");
        assert_eq!(page.skipped.len(), 3, "{:?}", page.skipped);
        assert!(
            page.skipped[1].starts_with("item 2 (session bad)"),
            "{:?}",
            page.skipped
        );
    }

    #[test]
    fn rejects_the_wrong_shape() {
        assert!(Page::decode(br#"{"data":[]}"#).is_err());
        assert!(Page::decode(br#"{"items":{}}"#).is_err());
        assert!(Page::decode(br#"{"items":[{"session_id":"a","status":"running""#).is_err());
    }

    #[test]
    fn repo_from_pr_url() {
        assert_eq!(
            repo_of("https://github.com/acme/api/pull/7").as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            repo_of("https://gitlab.example.com/acme/web/-/merge_requests/3").as_deref(),
            Some("acme/web")
        );
        assert_eq!(repo_of("not a url"), None);
        assert_eq!(repo_of(""), None);
    }

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(
            strip_userinfo("https://u:p@api.devin.ai/x"),
            "https://api.devin.ai/x"
        );
        assert_eq!(
            strip_userinfo("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }
}
