//! `[devin]`: where and how to poll, and `[devin.filters]`, the listing's query.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::de::{
    duration, lenient_string, lenient_string_opt, one_or_many, write_duration, Problem,
};
use crate::redact::strip_userinfo;
use crate::secret::Secret;

/// `[devin]`: where and how to poll.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DevinConfig {
    /// API root; the listing is `{base_url}/v3/enterprise/sessions`.
    #[serde(deserialize_with = "lenient_string")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub base_url: String,
    /// Service-user token (`cog_...`). When absent, the `DEVIN_API_KEY` variable.
    #[serde(deserialize_with = "secret_opt")]
    #[schemars(with = "Secret")]
    pub token: Option<Secret>,
    /// Time between the starts of two polls.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub poll_interval: Duration,
    /// Sessions per page, 1..=200.
    #[schemars(range(min = 1, max = 200))]
    pub page_size: u32,
    /// Total time allowed for one API request.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub timeout: Duration,
    /// Time allowed to open a connection.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub connect_timeout: Duration,
    /// Largest page body accepted, in bytes.
    #[schemars(range(min = 1024))]
    pub max_response_bytes: usize,
    /// After the baseline, polls list only sessions updated after the stored high-water mark
    /// minus this overlap (default: twice `poll_interval`).
    #[serde(deserialize_with = "crate::de::duration_opt")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub incremental_overlap: Option<Duration>,
    /// A full listing this often catches anything an incremental listing could miss (a
    /// session whose `updated_at` went backwards, clock skew). `0s`: every poll is full.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(schema_with = "crate::de::schema::duration")]
    pub full_resync_every: Duration,
    /// Query filters passed through to the listing.
    pub filters: Filters,
    /// List one organization's sessions (`/v3/organizations/{org_id}/sessions`, for a service
    /// user with ViewOrgSessions) instead of the enterprise's.
    #[serde(deserialize_with = "lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub org_id: Option<String>,
    /// When a session starts waiting for input or approval, read its messages and quote the
    /// latest from Devin (`last_devin_message` in templates).
    pub fetch_messages: bool,
    /// The quote's length at most, in characters.
    #[schemars(range(min = 1))]
    pub last_message_max_chars: usize,
    /// Requests to the API in flight at once besides the listing (a page's messages reads).
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_requests: usize,
    /// `[devin.queue]`: poll the account's queue (`queue.status_changed`). Absent: not polled.
    pub queue: Option<super::signals::QueueConfig>,
    /// `[devin.consumption]`: poll the daily ACU consumption (`consumption.daily_exceeded`).
    /// Absent: not polled.
    pub consumption: Option<super::signals::ConsumptionConfig>,
}

impl Default for DevinConfig {
    fn default() -> Self {
        DevinConfig {
            base_url: "https://api.devin.ai".into(),
            token: None,
            poll_interval: Duration::from_secs(30),
            page_size: 100,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 32 * 1024 * 1024,
            incremental_overlap: None,
            full_resync_every: Duration::from_secs(3600),
            filters: Filters::default(),
            org_id: None,
            fetch_messages: true,
            last_message_max_chars: 500,
            max_concurrent_requests: 8,
            queue: None,
            consumption: None,
        }
    }
}

impl DevinConfig {
    /// The overlap of incremental listings, in whole seconds (at least 1).
    pub fn overlap_secs(&self) -> i64 {
        let overlap = self.incremental_overlap.unwrap_or(self.poll_interval * 2);
        i64::try_from(overlap.as_secs_f64().ceil() as u64)
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

impl DevinConfig {
    /// Checks `[devin]`: the URL, ranges, and filters the chosen listing accepts.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            p.push(Problem::new(
                "devin.base_url",
                format!("`{}` is not an http(s) URL", strip_userinfo(&self.base_url)),
            ));
        }
        if !(1..=200).contains(&self.page_size) {
            p.push(Problem::new(
                "devin.page_size",
                format!("{} is out of range 1..=200", self.page_size),
            ));
        }
        if self.poll_interval < Duration::from_millis(100) {
            p.push(Problem::new(
                "devin.poll_interval",
                "must be at least 100ms",
            ));
        }
        for (key, value) in [
            ("devin.timeout", self.timeout),
            ("devin.connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                p.push(Problem::new(key, "must be more than 0s"));
            }
        }
        if let Some(org) = &self.org_id {
            self.validate_org(org, p);
        }
        if self.last_message_max_chars == 0 {
            p.push(Problem::new(
                "devin.last_message_max_chars",
                "must be at least 1",
            ));
        }
        if !(1..=64).contains(&self.max_concurrent_requests) {
            p.push(Problem::new(
                "devin.max_concurrent_requests",
                format!("{} is out of range 1..=64", self.max_concurrent_requests),
            ));
        }
        if let Some(queue) = &self.queue {
            queue.validate(p);
        }
        if let Some(consumption) = &self.consumption {
            consumption.validate(p);
        }
        if self.max_response_bytes < 1024 {
            p.push(Problem::new(
                "devin.max_response_bytes",
                "must be at least 1024",
            ));
        }
    }

    /// `devin.org_id`: an id, and only the filters the organization listing takes.
    fn validate_org(&self, org: &str, p: &mut Vec<Problem>) {
        if org.is_empty()
            || !org
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.push(Problem::new(
                "devin.org_id",
                format!("`{org}` is not an organization id (letters, digits, - and _)"),
            ));
        }
        for name in self.filters.enterprise_only() {
            p.push(Problem::new(
                format!("devin.filters.{name}"),
                "is not accepted by the organization listing (devin.org_id is set); it takes session_ids, created_after, created_before, updated_before, tags, playbook_id, origins, schedule_id",
            ));
        }
    }
}

pub(crate) fn secret_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Secret>, D::Error> {
    Secret::deserialize(d).map(Some)
}

/// `[devin.filters]`: query parameters of the listing (SPEC section 2). Arrays repeat the key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// Only these sessions.
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub session_ids: Option<Vec<String>>,
    /// Sessions created after this time, epoch seconds.
    pub created_after: Option<i64>,
    /// Sessions created before this time, epoch seconds.
    pub created_before: Option<i64>,
    /// Sessions updated before this time, epoch seconds.
    pub updated_before: Option<i64>,
    /// Sessions with any of these tags.
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub tags: Option<Vec<String>>,
    /// Sessions of this playbook.
    #[serde(deserialize_with = "lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub playbook_id: Option<String>,
    /// Sessions started from any of these origins (`webapp`, `slack`, `api`, ...).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub origins: Option<Vec<String>>,
    /// Sessions of this schedule.
    #[serde(deserialize_with = "lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub schedule_id: Option<String>,
    /// Sessions of any of these users (enterprise listing only).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub user_ids: Option<Vec<String>>,
    /// Sessions of any of these service users (enterprise listing only).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub service_user_ids: Option<Vec<String>>,
    /// Sessions on any of these repositories, `owner/repo` (enterprise listing only).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub repo_names: Option<Vec<String>>,
    /// Sessions of this category (enterprise listing only).
    #[serde(deserialize_with = "lenient_string_opt")]
    #[schemars(schema_with = "crate::de::schema::text")]
    pub category: Option<String>,
    /// Sessions of any of these organizations (enterprise listing only).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(schema_with = "crate::de::schema::one_or_many")]
    pub org_ids: Option<Vec<String>>,
    /// Include sessions of deleted organizations (enterprise listing only).
    pub include_deleted_orgs: Option<bool>,
}

impl Filters {
    /// The filters set that only the enterprise listing accepts.
    pub fn enterprise_only(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.user_ids.is_some() {
            out.push("user_ids");
        }
        if self.service_user_ids.is_some() {
            out.push("service_user_ids");
        }
        if self.repo_names.is_some() {
            out.push("repo_names");
        }
        if self.category.is_some() {
            out.push("category");
        }
        if self.org_ids.is_some() {
            out.push("org_ids");
        }
        if self.include_deleted_orgs.is_some() {
            out.push("include_deleted_orgs");
        }
        out
    }

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
