//! `size-limit`: refuses, defers or quarantines messages above a size.

use futures::future::BoxFuture;
use mcp_plugin_api::{
    Capabilities, EnhancedStatus, MessageContext, Plugin, PluginError, StepOutput, Verdict,
};
use serde::Deserialize;

use crate::ConfigError;
use crate::config::{Size, invalid, parse};

const NAME: &str = "size-limit";

/// RFC 3463 §3.4, X.3.4 "Message too big for system": "can be used as either a permanent or
/// persistent transient error", so the same detail serves `reject` (5.3.4) and `tempfail`
/// (4.3.4).
pub const REJECT_STATUS: EnhancedStatus = EnhancedStatus::new(5, 3, 4);
/// The transient form of [`REJECT_STATUS`] (RFC 3463 §3.4).
pub const TEMPFAIL_STATUS: EnhancedStatus = EnhancedStatus::new(4, 3, 4);

/// What `size-limit` does with a message larger than `maxSize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SizeAction {
    /// Refuse permanently with 5.3.4.
    #[default]
    Reject,
    /// Hold the message in the tenant's quarantine.
    Quarantine,
    /// Refuse for now with 4.3.4; the sender retries.
    Tempfail,
}

/// `size-limit` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SizeLimitConfig {
    /// Largest message allowed, in octets of the raw message (RFC822.SIZE) as it reaches the
    /// step; at least 1. Integer octets or a quantity (`"10Mi"`). Required.
    pub max_size: Size,
    /// What happens to a larger message; default `reject`.
    #[serde(default)]
    pub action: SizeAction,
}

/// The `size-limit` plugin: a message of at most `maxSize` octets continues; a larger one gets
/// the configured verdict. Returns no mutation.
#[derive(Debug)]
pub struct SizeLimit {
    config: SizeLimitConfig,
}

impl SizeLimit {
    /// Parses and validates `config`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field (missing or zero `maxSize`, unknown `action`, ...).
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: SizeLimitConfig = parse(NAME, config)?;
        if config.max_size.octets() == 0 {
            return Err(invalid(NAME, "maxSize", "must be at least 1 octet"));
        }
        Ok(Self { config })
    }

    /// Verdicts only: no mutation.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    /// The verdict for a message of `size` octets.
    pub fn decide(&self, size: u64) -> Verdict {
        let max = self.config.max_size.octets();
        if size <= max {
            return Verdict::Continue;
        }
        let text = format!("Message too big for system: {size} octets, limit {max}");
        match self.config.action {
            SizeAction::Reject => Verdict::Reject {
                status: REJECT_STATUS,
                text,
            },
            SizeAction::Tempfail => Verdict::TempFail {
                status: TEMPFAIL_STATUS,
                text,
            },
            SizeAction::Quarantine => {
                Verdict::quarantine(format!("size {size} octets over limit {max}"))
            }
        }
    }
}

impl Plugin for SizeLimit {
    fn capabilities(&self) -> Capabilities {
        SizeLimit::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        let size = u64::try_from(message.size()).unwrap_or(u64::MAX);
        Box::pin(async move { Ok(StepOutput::verdict(self.decide(size))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limit_edges() {
        let p = SizeLimit::from_config(Some(&json!({"maxSize": "1Ki"}))).expect("valid");
        let cases: &[(u64, &str)] = &[
            (0, "continue"),
            (1023, "continue"),
            (1024, "continue"),
            (1025, "reject"),
            (u64::MAX, "reject"),
        ];
        for (size, want) in cases {
            assert_eq!(p.decide(*size).name(), *want, "size {size}");
        }
        match p.decide(2048) {
            Verdict::Reject { status, text } => {
                assert_eq!(status.to_string(), "5.3.4");
                assert!(Verdict::Reject { status, text }.validate().is_ok());
            }
            other => panic!("expected reject, got {other:?}"),
        }
    }

    #[test]
    fn actions_map_to_verdicts() {
        for (action, want, status) in [
            ("reject", "reject", Some("5.3.4")),
            ("tempfail", "tempfail", Some("4.3.4")),
            ("quarantine", "quarantine", None),
        ] {
            let p = SizeLimit::from_config(Some(&json!({"maxSize": 10, "action": action})))
                .expect("valid");
            let v = p.decide(11);
            assert_eq!(v.name(), want);
            assert!(v.validate().is_ok(), "{v:?}");
            match (v, status) {
                (
                    Verdict::Reject { status: s, .. } | Verdict::TempFail { status: s, .. },
                    Some(w),
                ) => {
                    assert_eq!(s.to_string(), w)
                }
                (Verdict::Quarantine { .. }, None) => {}
                (v, _) => panic!("unexpected {v:?}"),
            }
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (json!({}), "", "missing field `maxSize`"),
            (json!({"maxSize": 0}), "maxSize", "at least 1"),
            (json!({"maxSize": "ten"}), "maxSize", "not a size"),
            (
                json!({"maxSize": 1, "action": "bounce"}),
                "action",
                "unknown variant",
            ),
            (json!({"maxSize": 1, "max": 2}), "max", "unknown field"),
            (json!([]), "", "must be an object"),
        ];
        for (config, field, msg) in cases {
            let err = SizeLimit::from_config(Some(&config)).expect_err("invalid");
            assert_eq!(err.field, field, "{config}");
            assert!(err.message.contains(msg), "{config}: {}", err.message);
        }
    }
}
