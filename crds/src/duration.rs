//! Durations written as strings, `30s`, `5m`, `1h30m`, `250ms`: the subset of Go's
//! `time.ParseDuration` syntax that CEL's `duration()` also reads, so cross-field rules can
//! compare them on the API server.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern every [`Duration`] matches: one or more `<integer><unit>` pairs, unit `h`,
/// `m`, `s` or `ms`, largest first by convention (`1h30m`).
pub const DURATION_PATTERN: &str = "^([0-9]{1,9}(h|m|s|ms))+$";

/// A span of time written as a string (`30s`, `5m`, `1h30m`, `250ms`).
///
/// Parsed when deserialised, so a value of this type always holds a valid duration; the
/// CRD schema carries the same rule as a `pattern`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration {
    text: String,
    value: std::time::Duration,
}

/// Why a string is not a [`Duration`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {text:?}: expected <integer><unit> pairs with unit h, m, s or ms (e.g. 30s, 1h30m)"
)]
pub struct DurationError {
    /// The rejected text.
    pub text: String,
}

impl Duration {
    /// Parses `30s`, `5m`, `1h30m`, `250ms`.
    ///
    /// # Errors
    /// [`DurationError`] when the text does not match [`DURATION_PATTERN`] or overflows.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let fail = || DurationError {
            text: text.to_owned(),
        };
        let mut total = std::time::Duration::ZERO;
        let mut rest = text;
        if rest.is_empty() {
            return Err(fail());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(fail());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| fail())?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (std::time::Duration::from_millis(1), 2)
            } else if rest.starts_with('h') {
                (std::time::Duration::from_secs(3600), 1)
            } else if rest.starts_with('m') {
                (std::time::Duration::from_secs(60), 1)
            } else if rest.starts_with('s') {
                (std::time::Duration::from_secs(1), 1)
            } else {
                return Err(fail());
            };
            rest = &rest[len..];
            let part = unit
                .checked_mul(u32::try_from(n).map_err(|_| fail())?)
                .ok_or_else(fail)?;
            total = total.checked_add(part).ok_or_else(fail)?;
        }
        Ok(Self {
            text: text.to_owned(),
            value: total,
        })
    }

    /// A whole number of seconds, written `<n>s`.
    pub fn from_secs(secs: u32) -> Self {
        Self {
            text: format!("{secs}s"),
            value: std::time::Duration::from_secs(secs.into()),
        }
    }

    /// A whole number of minutes, written `<n>m`.
    pub fn from_mins(mins: u32) -> Self {
        Self {
            text: format!("{mins}m"),
            value: std::time::Duration::from_secs(u64::from(mins) * 60),
        }
    }

    /// A whole number of milliseconds, written `<n>ms`.
    pub fn from_millis(millis: u32) -> Self {
        Self {
            text: format!("{millis}ms"),
            value: std::time::Duration::from_millis(millis.into()),
        }
    }

    /// The duration as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The duration's value.
    pub fn get(&self) -> std::time::Duration {
        self.value
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Duration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> Self {
        d.text
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse_to_their_value() {
        let cases = [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("1m500ms", 60_500),
        ];
        for (text, millis) in cases {
            let d = Duration::parse(text).expect(text);
            assert_eq!(d.get().as_millis(), millis, "{text}");
            assert_eq!(d.as_str(), text);
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in ["", "30", "s", "1.5s", "-1s", "1d", "10 s", "1234567890s"] {
            assert!(Duration::parse(text).is_err(), "{text:?}");
        }
    }
}
