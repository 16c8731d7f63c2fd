//! `[[digests]]`: summaries of a period's activity, sent on a cron schedule in a time zone.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::de::Problem;
use crate::digest::{parse_schedule, parse_timezone};
use crate::rules::When;

/// One `[[digests]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// A unique name: part of each digest's id, and `preview --digest NAME`.
    #[schemars(pattern(r"\S"))]
    pub name: String,
    /// Sink names (keys of `[sinks]`), each once.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub sinks: Vec<String>,
    /// When to send: a five-field cron expression (`minute hour day-of-month month
    /// day-of-week`), e.g. `0 9 * * mon-fri`, in `timezone`.
    pub schedule: String,
    /// The IANA time zone of the schedule and of the times shown (e.g. `Europe/Paris`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Template name: `templates/<sink type>/<template>.hbs`. Default: `digest`.
    #[serde(default)]
    pub template: Option<String>,
    /// The sessions summarised (the `rules.when` keys that describe a session; every key given
    /// must match).
    #[serde(default)]
    pub when: When,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// The template digests use when they name none.
pub const DEFAULT_DIGEST_TEMPLATE: &str = "digest";

impl DigestConfig {
    /// The template name (without the sink type's folder).
    pub fn template_name(&self) -> &str {
        self.template.as_deref().unwrap_or(DEFAULT_DIGEST_TEMPLATE)
    }
}

/// Checks every digest: unique names, a five-field schedule, an IANA time zone, known sinks,
/// and `when` keys that select sessions. Keys are `digests[i]...`.
pub fn validate(digests: &[DigestConfig], sinks: &[&str], p: &mut Vec<Problem>) {
    let mut seen = std::collections::HashSet::new();
    for (i, d) in digests.iter().enumerate() {
        let key = format!("digests[{i}]");
        if d.name.trim().is_empty() {
            p.push(Problem::new(format!("{key}.name"), "must not be empty"));
        } else if !seen.insert(d.name.as_str()) {
            p.push(Problem::new(
                format!("{key}.name"),
                format!("`{}` is the name of an earlier digest too", d.name),
            ));
        }
        if let Err(e) = parse_schedule(&d.schedule) {
            p.push(Problem::new(format!("{key}.schedule"), e));
        }
        if let Err(e) = parse_timezone(&d.timezone) {
            p.push(Problem::new(format!("{key}.timezone"), e));
        }
        if d.sinks.is_empty() {
            p.push(Problem::new(format!("{key}.sinks"), "names no sink"));
        }
        crate::rules::validate_sinks(&key, &d.sinks, sinks, p);
        for k in d.when.event_keys() {
            p.push(Problem::new(
                format!("{key}.when.{k}"),
                "describes a change, not a session: a digest selects sessions (use status, status_detail, tags, org_ids, origins, categories, user_ids, repos, acus_over)",
            ));
        }
        if d.template.as_deref().is_some_and(|t| t.trim().is_empty()) {
            p.push(Problem::new(format!("{key}.template"), "must not be empty"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(schedule: &str, timezone: &str) -> DigestConfig {
        DigestConfig {
            name: "daily".into(),
            sinks: vec!["team".into()],
            schedule: schedule.into(),
            timezone: timezone.into(),
            template: None,
            when: When::default(),
        }
    }

    fn problems(digests: &[DigestConfig]) -> Vec<String> {
        let mut p = Vec::new();
        validate(digests, &["team"], &mut p);
        p.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_good_digest_passes() {
        assert!(problems(&[digest("0 9 * * mon-fri", "Europe/Paris")]).is_empty());
        assert_eq!(digest("* * * * *", "UTC").template_name(), "digest");
    }

    #[test]
    fn every_problem_names_its_key() {
        let mut bad = digest("0 9 * * * *", "Europe/Nowhere");
        bad.sinks = vec!["team".into(), "other".into(), "team".into()];
        bad.when.from_status = Some(vec!["running".into()]);
        bad.template = Some(" ".into());
        let mut second = digest("nope", "UTC");
        second.name = "daily".into();
        let p = problems(&[bad, second]);
        let has = |key: &str| p.iter().any(|m| m.starts_with(key));
        assert!(has("digests[0].schedule"), "{p:?}");
        assert!(has("digests[0].timezone"), "{p:?}");
        assert!(
            p.iter()
                .any(|m| m.starts_with("digests[0].sinks") && m.contains("unknown sink `other`")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("digests[0].sinks") && m.contains("twice")),
            "{p:?}"
        );
        assert!(has("digests[0].when.from_status"), "{p:?}");
        assert!(has("digests[0].template"), "{p:?}");
        assert!(has("digests[1].name"), "{p:?}");
        assert!(has("digests[1].schedule"), "{p:?}");
        assert_eq!(p.len(), 8, "{p:?}");
    }
}
