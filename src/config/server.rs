//! `[server]` (health, readiness, metrics, the admin console and API) and `[log]`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::Problem;
use crate::secret::Secret;

use super::devin::secret_opt;

/// `server.history`'s default: entries kept in the delivery log and in the event log.
pub const DEFAULT_HISTORY: usize = 1000;
/// The most entries `server.history` may keep.
pub const MAX_HISTORY: usize = 1_000_000;

/// `[server]`: health, readiness, metrics, the admin console (`/ui`) and API (`/api/v1`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/healthz`, `/readyz`, `/metrics`, `/ui` and `/api/v1` on (e.g.
    /// `127.0.0.1:9464`). The deprecated `/admin/...` endpoints are served only on a loopback
    /// address. Absent: no server.
    #[schemars(schema_with = "socket_address")]
    pub listen: Option<std::net::SocketAddr>,
    /// The bearer token of `/ui` and `/api/v1` (and the console's sign-in). Without one they
    /// are served only when `listen` is a loopback address (403 otherwise).
    #[serde(deserialize_with = "secret_opt")]
    #[schemars(with = "Option<Secret>")]
    pub admin_token: Option<Secret>,
    /// How many entries the delivery log and the event log keep, in the store.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub history: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            admin_token: None,
            history: DEFAULT_HISTORY,
        }
    }
}

impl ServerConfig {
    /// Checks the admin token and the history kept.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if !(1..=MAX_HISTORY).contains(&self.history) {
            p.push(Problem::new(
                "server.history",
                format!(
                    "must be between 1 and {MAX_HISTORY} (it is {})",
                    self.history
                ),
            ));
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            p.push(Problem::new(
                "server.admin_token",
                "is empty: set a long random value, or remove the key",
            ));
        }
    }
}

/// `[log]`: the format and level of the log.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `log.format`: `text` (lines for people) or `json` (one object a line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(transform = crate::de::schema::or_variable)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `server.listen`: an IPv4 `address:port` or a bracketed IPv6 `[address]:port`, as
/// [`std::net::SocketAddr`] parses it (no host names), or a `${VAR}` reference.
fn socket_address(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const PORT: &str =
        "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)";
    let pattern = format!(r"^(?:{OCTET}(?:\.{OCTET}){{3}}|\[[0-9A-Fa-f:.]+(?:%[0-9]+)?\]):{PORT}$");
    let mut schema = schemars::json_schema!({ "type": "string", "pattern": pattern });
    crate::de::schema::or_variable(&mut schema);
    schema
}
