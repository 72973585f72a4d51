//! Shared config plumbing: parsing a step's `config` JSON with field paths in errors, and
//! Kubernetes-style sizes.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Deserializes `config` (absent means `{}`) into `T`, naming the failing field.
///
/// # Errors
/// [`ConfigError`] whose `field` is the path of the offending value (`rules[1].action`);
/// empty when the config as a whole is wrong (e.g. not an object).
pub(crate) fn parse<T: DeserializeOwned>(
    plugin: &'static str,
    config: Option<&serde_json::Value>,
) -> Result<T, ConfigError> {
    let empty = serde_json::Value::Object(serde_json::Map::new());
    let value = config.unwrap_or(&empty);
    if !value.is_object() {
        return Err(ConfigError {
            plugin,
            field: String::new(),
            message: "must be an object".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError {
            plugin,
            field: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Shorthand for a semantic (post-parse) config error.
pub(crate) fn invalid(
    plugin: &'static str,
    field: impl Into<String>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError {
        plugin,
        field: field.into(),
        message: message.into(),
    }
}

/// A size in octets, written as an integer (`1048576`) or a Kubernetes quantity string:
/// a non-negative decimal number with an optional binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`)
/// or decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix, e.g. `"10Mi"` (10 485 760), `"512Ki"`,
/// `"1M"` (1 000 000), `"1.5Ki"` (1536). Fractions round up to a whole octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// The size in octets.
    pub fn octets(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} octets", self.0)
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{s:?} is not a size: use octets or a quantity like \"10Mi\", \"512Ki\", \"1M\""
            )
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(split);
        let multiplier: u64 = match suffix {
            "" => 1,
            "k" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            "T" => 1_000_000_000_000,
            "P" => 1_000_000_000_000_000,
            "E" => 1_000_000_000_000_000_000,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            "Pi" => 1 << 50,
            "Ei" => 1 << 60,
            _ => return Err(bad()),
        };
        let (int, frac) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || (number.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        let too_big = || format!("{s:?} is too large");
        let whole: u64 = int.parse().map_err(|_| too_big())?;
        let mut total = whole.checked_mul(multiplier).ok_or_else(too_big)?;
        if !frac.is_empty() {
            // frac / 10^len * multiplier, rounded up; at most 18 digits keep it in u128.
            let frac = &frac[..frac.len().min(18)];
            let digits: u128 = frac.parse().map_err(|_| bad())?;
            let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| bad())?);
            let part = (digits * u128::from(multiplier)).div_ceil(scale);
            total = total
                .checked_add(u64::try_from(part).map_err(|_| too_big())?)
                .ok_or_else(too_big)?;
        }
        Ok(Size(total))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: octets or a quantity string like \"10Mi\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_kubernetes_quantities() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1024", Some(1024)),
            ("10Mi", Some(10 << 20)),
            ("512Ki", Some(512 << 10)),
            ("1M", Some(1_000_000)),
            ("1k", Some(1000)),
            ("1.5Ki", Some(1536)),
            ("0.1", Some(1)),
            ("2Gi", Some(2 << 30)),
            ("", None),
            ("Mi", None),
            ("10MB", None),
            ("10 Mi", None),
            ("-1", None),
            ("1.", None),
            (".5", None),
            ("1e6", None),
            ("99999999999999999999", None),
            ("16Ei", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<Size>().ok().map(Size::octets),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn sizes_deserialize_from_numbers_and_strings() {
        let n: Size = serde_json::from_value(serde_json::json!(42)).expect("number");
        assert_eq!(n, Size(42));
        let s: Size = serde_json::from_value(serde_json::json!("1Ki")).expect("string");
        assert_eq!(s, Size(1024));
        assert!(serde_json::from_value::<Size>(serde_json::json!(-3)).is_err());
        assert!(serde_json::from_value::<Size>(serde_json::json!(1.5)).is_err());
        assert!(serde_json::from_value::<Size>(serde_json::json!(true)).is_err());
    }
}
