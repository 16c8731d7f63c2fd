//! [`Secret`]: a string that never prints itself.
//!
//! API tokens, Slack webhook URLs and signing secrets are held in this newtype. Its `Debug` and
//! `Display` print `[redacted]`, so a secret cannot reach a log line or an error message by
//! accident; code that needs the value calls [`Secret::expose`] and says so.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string. Debug and Display print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Every caller is a place where the secret leaves the type: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::de::lenient_string(deserializer).map(Secret)
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    /// What the `Deserialize` above reads: a lenient string.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = crate::de::schema::text(generator);
        schema.insert(
            "description".into(),
            "A secret (token, credential URL, signing key): never printed in logs or messages. Usually a ${VAR} reference, so that the file holds no secret.".into(),
        );
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("cog_supersecret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "cog_supersecret");
    }

    #[test]
    fn deserializes_numbers_as_strings() {
        // figment's Env provider turns `SECRET=123` into an integer.
        let s: Secret = serde_json::from_str("123").expect("number");
        assert_eq!(s.expose(), "123");
        let s: Secret = serde_json::from_str("\"abc\"").expect("string");
        assert_eq!(s.expose(), "abc");
    }
}
