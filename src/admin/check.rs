//! `check`: the configuration loaded exactly as `run` loads it, every problem listed.

use std::path::Path;

use crate::active;
use crate::config::{Config, Problem};
use crate::render::Templates;

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
pub fn check(path: &Path) -> CheckReport {
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
    CheckReport {
        summary: format!(
            "{}: {} sink(s), {} rule(s), {} template(s): {}",
            path.display(),
            config.sinks.len(),
            config.rules.len(),
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
