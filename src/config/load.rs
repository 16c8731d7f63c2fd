//! Reading the layers: figment's raw values, `${VAR}` interpolation, each section deserialized
//! on its own so that one bad section does not hide the problems of the others, and figment's
//! errors as [`Problem`]s with their key paths.

use figment::providers::Serialized;
use figment::value::{Dict, Value};
use figment::Figment;

use super::{Config, Problem};

/// Interpolates, deserializes and validates a raw configuration, section by section, so
/// that one bad section does not hide the problems of the others.
pub(super) fn from_dict(
    mut raw: Dict,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    for (key, value) in raw.iter_mut() {
        interpolate(value, key, lookup, &mut problems);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut config = Config::default();
    // The position of each parsed rule in the file, for messages when an earlier one failed.
    let mut rule_index: Vec<usize> = Vec::new();
    let mut digest_index: Vec<usize> = Vec::new();
    for (key, value) in raw {
        match key.as_str() {
            "devin" => section(&key, value, &mut problems, |v| config.devin = v),
            "store" => section(&key, value, &mut problems, |v| config.store = v),
            "templates" => section(&key, value, &mut problems, |v| config.templates = v),
            "delivery" => section(&key, value, &mut problems, |v| config.delivery = v),
            "log" => section(&key, value, &mut problems, |v| config.log = v),
            "server" => section(&key, value, &mut problems, |v| config.server = v),
            "people" => section(&key, value, &mut problems, |v| config.people = v),
            "sinks" => named_tables(&key, value, &mut problems, |name, v| {
                config.sinks.insert(name, v);
            }),
            "time_intervals" => named_tables(&key, value, &mut problems, |name, v| {
                config.time_intervals.insert(name, v);
            }),
            "rules" => array_of_tables(&key, value, &mut problems, |i, v| {
                config.rules.push(v);
                rule_index.push(i);
            }),
            "digests" => array_of_tables(&key, value, &mut problems, |i, v| {
                config.digests.push(v);
                digest_index.push(i);
            }),
            other => problems.push(Problem::new(
                other,
                "unknown key (expected one of: devin, store, templates, delivery, sinks, time_intervals, rules, digests, log, server, people)",
            )),
        }
    }
    problems.extend(config.validate().into_iter().map(|mut p| {
        for (list, index) in [("rules", &rule_index), ("digests", &digest_index)] {
            if let Some(rest) = p.key.strip_prefix(&format!("{list}[")) {
                if let Some((i, tail)) = rest.split_once(']') {
                    if let Some(orig) = i.parse::<usize>().ok().and_then(|i| index.get(i)) {
                        p.key = format!("{list}[{orig}]{tail}");
                    }
                }
            }
        }
        p
    }));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Replaces `${VAR}` in every string below `value`; `$${` is a literal `${`.
fn interpolate(
    value: &mut Value,
    key: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(tag, text) if text.contains('$') => match expand(text, lookup) {
            Ok(expanded) => *value = Value::String(*tag, expanded),
            Err(message) => problems.push(Problem::new(key, message)),
        },
        Value::Dict(_, dict) => {
            for (k, v) in dict.iter_mut() {
                interpolate(v, &format!("{key}.{k}"), lookup, problems);
            }
        }
        Value::Array(_, items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate(v, &format!("{key}[{i}]"), lookup, problems);
            }
        }
        _ => {}
    }
}

/// Expands `${VAR}` references in one string.
pub fn expand(text: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err("`${` without a closing `}`".into());
            };
            let name = &tail[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a variable reference (letters, digits, _)"
                ));
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `[KEY.NAME]` tables (sinks, time intervals), each deserialized on its own.
fn named_tables<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Value,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(String, T),
) {
    let Value::Dict(_, tables) = value else {
        problems.push(Problem::new(
            key,
            format!("must be a table of [{key}.NAME] tables"),
        ));
        return;
    };
    for (name, table) in tables {
        section(&format!("{key}.{name}"), table, problems, |v| {
            put(name.clone(), v)
        });
    }
}

/// `[[KEY]]` tables (rules, digests), each deserialized on its own; `put` gets its position.
fn array_of_tables<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Value,
    problems: &mut Vec<Problem>,
    mut put: impl FnMut(usize, T),
) {
    let Value::Array(_, tables) = value else {
        problems.push(Problem::new(
            key,
            format!("must be an array of [[{key}]] tables"),
        ));
        return;
    };
    for (i, table) in tables.into_iter().enumerate() {
        section(&format!("{key}[{i}]"), table, problems, |v| put(i, v));
    }
}

/// Deserializes one section; on success hands it to `set`, else records its problems under
/// `key`.
fn section<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Value,
    problems: &mut Vec<Problem>,
    set: impl FnOnce(T),
) {
    match Figment::from(Serialized::default("section", value)).extract_inner::<T>("section") {
        Ok(v) => set(v),
        Err(e) => problems.extend(figment_problems(e, key)),
    }
}

/// figment's errors as problems, their paths under `prefix`.
pub(super) fn figment_problems(error: figment::Error, prefix: &str) -> Vec<Problem> {
    error
        .into_iter()
        .map(|mut e| {
            if !prefix.is_empty() {
                // `extract_inner("section")` appends its key to the path: swap it for the prefix.
                if e.path.last().is_some_and(|last| last == "section") {
                    e.path.pop();
                }
                e.path.insert(0, prefix.to_owned());
            }
            let mut key = String::new();
            for part in &e.path {
                if part.parse::<usize>().is_ok() && !key.is_empty() {
                    key.push_str(&format!("[{part}]"));
                } else {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(part);
                }
            }
            let message = match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    if e.path.last().is_none_or(|last| last != field) {
                        key = if key.is_empty() {
                            field.clone()
                        } else {
                            format!("{key}.{field}")
                        };
                    }
                    format!("unknown key (expected one of: {})", expected.join(", "))
                }
                kind => kind.to_string(),
            };
            Problem::new(key, message)
        })
        .collect()
}
