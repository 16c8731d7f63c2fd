//! The wire model of the Devin API: a session as the listing returns it, its pull requests, and
//! a page of the listing. Pure: used by the API client ([`crate::devin`]) and the core alike.
//!
//! The model is tolerant: unknown fields are kept (in [`Session::extra`]), unknown enum values
//! are plain strings, and every field the documentation calls optional is optional. Only
//! `session_id` and `status` are required of an item; a page whose shape is wrong is an error,
//! never a half-understood page, and an item that is not a session is skipped and reported.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

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

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
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

/// `GET /v3/enterprise/queue` (ViewAccountMetrics): how many sessions wait for capacity, and
/// Devin's judgement of it (`normal`, `elevated`, `high`; an open set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    #[serde(default, deserialize_with = "null_as_default")]
    pub queue_size: u64,
    pub status: String,
}

/// `GET /v3/enterprise/consumption/daily` (ViewAccountConsumption): ACUs per billing day (days
/// start at 08:00 UTC), and in total over the period asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyConsumption {
    #[serde(default, deserialize_with = "null_as_default")]
    pub consumption_by_date: Vec<DayConsumption>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_acus: f64,
}

/// One billing day's ACUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayConsumption {
    /// The day, as Devin names it (e.g. `2026-11-30`).
    pub date: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub acus: f64,
    /// ACUs by product (`devin`, `cascade`, `terminal`, ... an open set).
    #[serde(default, deserialize_with = "null_as_default")]
    pub acus_by_product: Map<String, Value>,
}

/// `GET /v3/enterprise/members/users/{user_id}` (ManageAccountMembership): what devin-notify
/// reads of a member, its email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub email: Option<String>,
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
    fn sessions_decode_field_by_field() {
        let s: Session = serde_json::from_str(
            r#"{"sess\u0069on_id":"a","status":"running","org_id":null,"acus_consumed":2,
            "x-new":[1,{"y":null}],"title":"T"}"#,
        )
        .expect("a session");
        assert_eq!((s.session_id.as_str(), s.status.as_str()), ("a", "running"));
        assert_eq!((s.org_id.as_str(), s.acus_consumed), ("", 2.0));
        assert_eq!(
            s.extra.get("x-new"),
            Some(&serde_json::json!([1, {"y": null}]))
        );
        let e = serde_json::from_str::<Session>(r#"{"session_id":"a"}"#).expect_err("no status");
        assert!(e.to_string().contains("missing field `status`"), "{e}");
        let e = serde_json::from_str::<Session>(r#"{"status":"new"}"#).expect_err("no id");
        assert!(e.to_string().contains("missing field `session_id`"), "{e}");
        assert!(
            serde_json::from_str::<Session>(r#"{"session_id":"a","status":"x","tags":"t"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Session>(r#"["a","x"]"#).is_err());
    }

    #[test]
    fn rejects_the_wrong_shape() {
        assert!(Page::decode(br#"{"data":[]}"#).is_err());
        assert!(Page::decode(br#"{"items":{}}"#).is_err());
        assert!(Page::decode(br#"{"items":[{"session_id":"a","status":"running""#).is_err());
    }

    #[test]
    fn account_signals_decode() {
        let q: QueueInfo =
            serde_json::from_str(r#"{"queue_size":7,"status":"elevated","x":1}"#).expect("q");
        assert_eq!((q.queue_size, q.status.as_str()), (7, "elevated"));
        let c: DailyConsumption = serde_json::from_str(
            r#"{"consumption_by_date":[{"date":"2026-11-30","acus":12.5,
            "acus_by_product":{"devin":10,"cascade":2.5,"terminal":0}}],"total_acus":12.5}"#,
        )
        .expect("c");
        assert_eq!(c.consumption_by_date[0].acus, 12.5);
        assert_eq!(c.consumption_by_date[0].acus_by_product.len(), 3);
        let empty: DailyConsumption =
            serde_json::from_str(r#"{"consumption_by_date":null}"#).expect("nulls");
        assert!(empty.consumption_by_date.is_empty());
        assert!(serde_json::from_str::<QueueInfo>(r#"{"queue_size":1}"#).is_err());
        let m: Member = serde_json::from_str(r#"{"email":"a@b.c","name":"A"}"#).expect("m");
        assert_eq!(m.email.as_deref(), Some("a@b.c"));
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
}
