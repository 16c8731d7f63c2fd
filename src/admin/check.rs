//! `check`: the configuration loaded exactly as `run` loads it, every problem listed.

use std::path::Path;

use crate::active;
use crate::config::{Config, Problem, StoreBackend, StoreConfig};
use crate::render::Templates;
use crate::store::StoreError;

/// What `check` found: every problem, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// A one-line summary of what was checked.
    pub summary: String,
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
    CheckReport {
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
