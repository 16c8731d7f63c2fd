//! Reading the configuration: lenient serde helpers for its values, and [`Problem`], one
//! problem with the key it is about (every check of the configuration reports these).
//!
//! figment's environment provider parses values into typed values (`X=123` is an integer,
//! `X=true` a boolean), so string-valued keys accept scalars and keep their text. Durations are
//! humantime strings (`30s`, `5m`, `10h`) or whole seconds.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

struct LenientString;

impl Visitor<'_> for LenientString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A string, or a scalar kept as its text.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(LenientString)
}

/// An optional lenient string.
pub fn lenient_string_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    lenient_string(d).map(Some)
}

/// Parses a humantime duration such as `30s`, `5m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like `30s`, `5m` or `10h` ({e})"))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"5m\" or \"10h\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
    }
}

/// Deserializes a humantime duration (or whole seconds).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// Deserializes an optional humantime duration.
pub fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// One string or a list of strings; a list matches any of its values.
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(#[serde(deserialize_with = "lenient_string")] String),
        Many(Vec<String>),
    }
    match <OneOrMany as serde::Deserialize>::deserialize(d)? {
        OneOrMany::One(s) => Ok(Some(vec![s])),
        OneOrMany::Many(v) => Ok(Some(v)),
    }
}

/// Writes a duration as humantime text (`30s`, `1h`): how the schema shows a default.
pub fn write_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// The JSON Schema of the values the helpers above read, for `config schema`: each is named
/// by a `#[schemars(schema_with = ...)]` beside the `deserialize_with` it describes.
pub mod schema {
    use std::borrow::Cow;

    use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

    /// A string holding a `${VAR}` reference. The loader replaces references before it reads a
    /// value, so such a string stands for any value a string can become.
    pub const VARIABLE: &str = r"\$\{[A-Za-z0-9_]+\}";

    /// A humantime duration as [`super::parse_duration`] reads it: numbers (a fraction allowed)
    /// each followed by a unit, spaces optional; or `0`.
    pub const DURATION: &str = concat!(
        r"^\s*(?:0|(?:[0-9]+(?:\.[0-9]+)?\s*",
        r"(?:nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s",
        r"|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d",
        r"|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\s*)+)\s*$"
    );

    /// `{"type": "string", "pattern": VARIABLE}`.
    pub fn variable() -> Schema {
        json_schema!({ "type": "string", "pattern": VARIABLE })
    }

    /// `schema`, or a string holding a `${VAR}` reference (for values with a fixed set or
    /// form of strings, which a reference may produce).
    pub fn or_variable(schema: &mut Schema) {
        let mut alternatives = std::mem::take(schema);
        let mut outer = Schema::default();
        // The description and title stay on the outer schema, where editors look.
        for key in ["title", "description", "default"] {
            if let Some(value) = alternatives.remove(key) {
                outer.insert(key.into(), value);
            }
        }
        outer.insert(
            "anyOf".into(),
            serde_json::Value::Array(vec![alternatives.to_value(), variable().to_value()]),
        );
        *schema = outer;
    }

    /// A duration: humantime text, whole seconds, or a `${VAR}` reference ([`super::duration`]).
    pub fn duration(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<HumanDuration>()
    }

    /// A string; a number or boolean is taken as its text ([`super::lenient_string`]).
    pub fn text(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }

    /// One value or an array of strings ([`super::one_or_many`]).
    pub fn one_or_many(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [text(generator), { "type": "array", "items": { "type": "string" } }]
        })
    }

    /// The `$defs` entry of durations.
    struct HumanDuration;

    impl JsonSchema for HumanDuration {
        fn schema_name() -> Cow<'static, str> {
            "Duration".into()
        }

        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            let mut schema = json_schema!({
                "description": "A duration: humantime text such as \"30s\", \"5m\", \"1h 30m\" or \"1.5h\" (units ns, us, ms, s, m, h, d, w, M, y and their long forms), or whole seconds as an integer.",
                "anyOf": [
                    { "type": "string", "pattern": DURATION },
                    { "type": "integer", "minimum": 0 },
                    variable(),
                ]
            });
            schema.insert(
                "examples".into(),
                serde_json::json!(["30s", "5m", "1h 30m"]),
            );
            schema
        }
    }
}

/// One configuration problem, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `rules[2].sinks` or `sinks.team_slack.url`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct D {
        #[serde(deserialize_with = "duration")]
        d: Duration,
    }

    #[test]
    fn durations() {
        let d: D = serde_json::from_str(r#"{"d":"1m 30s"}"#).expect("humantime");
        assert_eq!(d.d, Duration::from_secs(90));
        let d: D = serde_json::from_str(r#"{"d":7}"#).expect("seconds");
        assert_eq!(d.d, Duration::from_secs(7));
        let e = serde_json::from_str::<D>(r#"{"d":"soon"}"#)
            .err()
            .expect("bad duration is an error");
        assert!(e.to_string().contains("`soon` is not a duration"), "{e}");
        assert!(serde_json::from_str::<D>(r#"{"d":-1}"#).is_err());
    }
}
