//! `[server]` (health, readiness, metrics, admin endpoints) and `[log]`.

use serde::Deserialize;

use crate::de::Problem;

/// `server.history`'s default: entries kept in the delivery log and in the event log.
pub const DEFAULT_HISTORY: usize = 1000;
/// The most entries `server.history` may keep.
pub const MAX_HISTORY: usize = 1_000_000;

/// `[server]`: health, readiness, metrics and admin endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/healthz`, `/readyz`, `/metrics` on (e.g. `127.0.0.1:9464`). Admin
    /// endpoints (`/admin/...`, used by `dead-letters` and `sinks` while `run` holds the
    /// store) are served only on a loopback address. Absent: no server.
    pub listen: Option<std::net::SocketAddr>,
    /// How many entries the delivery log and the event log keep, in the store.
    pub history: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            history: DEFAULT_HISTORY,
        }
    }
}

impl ServerConfig {
    /// Checks `[server]`.
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
