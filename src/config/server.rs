//! `[server]` (health, readiness, metrics, admin endpoints) and `[log]`.

use serde::Deserialize;

/// `[server]`: health, readiness, metrics and admin endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/healthz`, `/readyz`, `/metrics` on (e.g. `127.0.0.1:9464`). Admin
    /// endpoints (`/admin/...`, used by `dead-letters` and `sinks` while `run` holds the
    /// store) are served only on a loopback address. Absent: no server.
    pub listen: Option<std::net::SocketAddr>,
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
