//! `check`: the configuration loaded exactly as `run` loads it, every problem listed.

use std::path::Path;

use crate::active;
use crate::config::{Config, Problem, SinkConfig, StoreBackend, StoreConfig};
use crate::devin::Client;
use crate::features::Feature;
use crate::poller::account::describe;
use crate::render::Templates;
use crate::store::StoreError;

/// What `check` found: every problem, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// A one-line summary of what was checked.
    pub summary: String,
    /// One line per feature beyond sessions that is configured: its endpoint, called once
    /// (read-only), and whether the token may use it.
    pub features: Vec<String>,
}

/// Loads the configuration exactly as `run` does and lists every problem: keys and values,
/// `${VAR}` references, the token, templates that fail to compile, rules that name unknown
/// sinks, event types or templates, and templates that fail to render (or render invalid JSON)
/// for a sample event of each type their rule covers.
pub async fn check(path: &Path) -> CheckReport {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            return CheckReport {
                summary: format!("{}: {} problem(s)", path.display(), e.problems.len()),
                problems: e.problems,
                features: Vec::new(),
            }
        }
    };
    let mut problems = Vec::new();
    if let Err(p) = config.token() {
        problems.push(p);
    }
    let templates = match active::load_templates(config.templates.dir.as_deref()) {
        Ok(t) => t,
        Err(p) => {
            problems.extend(p);
            Templates::built_in()
        }
    };
    problems.extend(active::check_rules(&config, &templates));
    problems.extend(active::render_samples(&config, &templates));
    problems.extend(active::render_summary_samples(&config, &templates));
    problems.extend(active::check_digests(&config, &templates));
    let store = store_summary(&config.store, &mut problems).await;
    let intervals = match config.time_intervals.len() {
        0 => String::new(),
        n => format!(", {n} time interval(s)"),
    };
    let features = features(&config, &mut problems).await;
    CheckReport {
        features,
        summary: format!(
            "{}: {} sink(s), {} rule(s){intervals}, {} digest(s), {} template(s){store}: {}",
            path.display(),
            config.sinks.len(),
            config.rules.len(),
            config.digests.len(),
            templates.names().count(),
            if problems.is_empty() {
                "OK".to_owned()
            } else {
                format!("{} problem(s)", problems.len())
            }
        ),
        problems,
    }
}

/// Calls each configured endpoint beyond sessions once (read-only): the queue, the daily
/// consumption, the members endpoint (for a `to = "creator"` sink; with a made-up user id, so
/// a 404 means allowed). A 403 is a problem naming the permission; any other failure is said
/// on the feature's line (it may be passing).
async fn features(config: &Config, problems: &mut Vec<Problem>) -> Vec<String> {
    let creators: Vec<&String> = config
        .sinks
        .iter()
        .filter(|(_, s)| matches!(s, SinkConfig::SlackApp(a) if a.to_creator()))
        .map(|(name, _)| name)
        .collect();
    let wanted = [
        (
            Feature::Queue,
            config.devin.queue.is_some(),
            "devin.queue".to_owned(),
        ),
        (
            Feature::Consumption,
            config.devin.consumption.is_some(),
            "devin.consumption".to_owned(),
        ),
        (
            Feature::Members,
            !creators.is_empty() && config.devin.org_id.is_none(),
            creators
                .first()
                .map_or(String::new(), |n| format!("sinks.{n}.to")),
        ),
    ];
    let Some(client) = config
        .token()
        .ok()
        .and_then(|t| Client::new(&config.devin, t).ok())
    else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for (feature, _, key) in wanted.into_iter().filter(|(_, on, _)| *on) {
        let now = i64::try_from(crate::store::now_ms() / 1000).unwrap_or(0);
        let result = match feature {
            Feature::Queue => client.queue().await.map(|_| ()),
            Feature::Consumption => client
                .daily_consumption(now - 86_400, now)
                .await
                .map(|_| ()),
            Feature::Members => client.member("devin-notify-check").await.map(|_| ()),
        };
        let (name, permission) = (feature.as_str(), feature.permission());
        lines.push(match result {
            Ok(()) => format!(
                "feature {name}: on ({} allowed: {permission})",
                feature.endpoint()
            ),
            Err(e) if e.forbidden() => {
                problems.push(Problem::new(key, describe(feature, &e)));
                format!("feature {name}: OFF (HTTP 403: the service user lacks {permission})")
            }
            Err(e) => format!("feature {name}: not verified ({e})"),
        });
    }
    lines
}

/// For a PostgreSQL store: connects and reports the schema's version, changing nothing (a
/// connection that fails is a problem of `store.url`). Nothing for sled.
async fn store_summary(store: &StoreConfig, problems: &mut Vec<Problem>) -> String {
    if store.backend != StoreBackend::Postgres {
        return String::new();
    }
    match crate::store::postgres::schema_version(store).await {
        Ok(Some(version)) => format!(", store: schema {} at version {version}", store.schema),
        Ok(None) => format!(
            ", store: schema {} not there yet (`run` creates it)",
            store.schema
        ),
        Err(StoreError::Postgres { what, message }) => {
            // `what` is `store.url (postgres://host/db)`: the key is said once.
            let url = what.trim_start_matches("store.url (").trim_end_matches(')');
            problems.push(Problem::new("store.url", format!("{url}: {message}")));
            String::new()
        }
        Err(e) => {
            problems.push(Problem::new("store.url", e.to_string()));
            String::new()
        }
    }
}
