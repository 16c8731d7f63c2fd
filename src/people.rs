//! People: who started a session, for Slack app sinks with `to = "creator"`.
//!
//! A Devin user id resolves through `[people]` (an email, or a Slack user id used as it is),
//! else through `GET /v3/enterprise/members/users/{user_id}` (ManageAccountMembership) to an
//! email; the sink then asks Slack (`users.lookupByEmail`) for the user, and caches the outcome
//! in the store ([`crate::store::people`]). Service users (`service:<id>`), and every user of
//! an organization-scoped account (`devin.org_id`: Devin documents no organization members
//! endpoint), resolve through `[people]` only. A 403 from the members endpoint turns it off
//! ([`crate::features`]): `[people]` still answers.

use crate::config::{is_slack_user_id, Config, People};
use crate::devin::Client;
use crate::event::SERVICE_USER_PREFIX;
use crate::features::{self, Feature};

/// What is known of a creator before asking Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A Slack user id, from `[people]`.
    SlackUser(String),
    /// An email, from `[people]` or Devin's members endpoint.
    Email(String),
    /// Not resolvable, and why.
    Unknown(String),
}

/// Resolves creators; one per configuration, shared by its Slack app sinks.
pub struct Directory {
    people: People,
    /// The API client for the members endpoint (`None`: `[people]` only).
    client: Option<Client>,
    /// Why there is no client, for messages.
    no_client: &'static str,
    /// Held across a whole lookup (cache read, Devin, Slack, cache write), so that many
    /// deliveries of one creator make one lookup.
    pub lookups: tokio::sync::Mutex<()>,
}

impl Directory {
    /// The directory of a configuration: `[people]`, and the members endpoint unless the
    /// account is organization-scoped or has no token.
    pub fn new(config: &Config) -> Directory {
        let (client, no_client) = if config.devin.org_id.is_some() {
            (
                None,
                "an organization-scoped account (devin.org_id) has no members endpoint",
            )
        } else {
            match config.token().ok().map(|t| Client::new(&config.devin, t)) {
                Some(Ok(client)) => (Some(client), ""),
                _ => (None, "no API client for the members endpoint"),
            }
        };
        Directory {
            people: config.people.clone(),
            client,
            no_client,
            lookups: tokio::sync::Mutex::new(()),
        }
    }

    /// The `[people]` entry of a creator (a Devin user, or a service user by its id), if any.
    pub fn listed(&self, creator: &str) -> Option<&String> {
        let key = creator.strip_prefix(SERVICE_USER_PREFIX).unwrap_or(creator);
        self.people.get(key)
    }

    /// Who `creator` (a Devin user id, or `service:<id>`) is. `Err` is a transient failure of
    /// the members endpoint (try again later).
    pub async fn who(&self, creator: &str) -> Result<Who, String> {
        let (key, service) = match creator.strip_prefix(SERVICE_USER_PREFIX) {
            Some(id) => (id, true),
            None => (creator, false),
        };
        if let Some(value) = self.people.get(key) {
            return Ok(if is_slack_user_id(value) {
                Who::SlackUser(value.clone())
            } else {
                Who::Email(value.clone())
            });
        }
        if service {
            return Ok(Who::Unknown(format!(
                "the session was started by service user `{key}`, not in [people]"
            )));
        }
        let Some(client) = &self.client else {
            return Ok(Who::Unknown(format!(
                "user `{key}` is not in [people] ({})",
                self.no_client
            )));
        };
        if !features::enabled(Feature::Members) {
            return Ok(Who::Unknown(format!(
                "user `{key}` is not in [people], and the members endpoint is off (the service user lacks ManageAccountMembership)"
            )));
        }
        features::configured(Feature::Members);
        match client.member(key).await {
            Ok(Some(member)) => Ok(match member.email.filter(|e| !e.trim().is_empty()) {
                Some(email) => Who::Email(email),
                None => Who::Unknown(format!("Devin has no email for user `{key}`")),
            }),
            Ok(None) => Ok(Who::Unknown(format!("Devin knows no user `{key}` (404)"))),
            Err(e) if e.forbidden() => {
                features::refused(Feature::Members, &e.to_string());
                Ok(Who::Unknown(format!(
                    "user `{key}` is not in [people], and the members endpoint refused the token (ManageAccountMembership)"
                )))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
