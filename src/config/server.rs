//! `[server]` (health, readiness, metrics, the admin console and API) and `[log]`.

use serde::Deserialize;

use crate::de::Problem;
use crate::secret::Secret;

use super::devin::secret_opt;

/// `[server]`: health, readiness, metrics, the admin console (`/ui`) and API (`/api/v1`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/healthz`, `/readyz`, `/metrics`, `/ui` and `/api/v1` on (e.g.
    /// `127.0.0.1:9464`). The deprecated `/admin/...` endpoints are served only on a loopback
    /// address. Absent: no server.
    pub listen: Option<std::net::SocketAddr>,
    /// The bearer token of `/ui` and `/api/v1` (and the console's sign-in). Without one they
    /// are served only when `listen` is a loopback address (403 otherwise).
    #[serde(deserialize_with = "secret_opt")]
    pub admin_token: Option<Secret>,
}

impl ServerConfig {
    /// Checks the admin token.
    pub fn validate(&self, p: &mut Vec<Problem>) {
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

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
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

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
