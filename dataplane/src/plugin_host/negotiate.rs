//! `Initialize`: what the host offers and how it checks the plugin's answer.
//!
//! - Protocol: the host offers [`PROTOCOL_VERSIONS`] ∩ `spec.protocol`; the plugin must
//!   answer a version in that range (a version outside it is refused, even one the plugin's
//!   own range would allow).
//! - Capabilities: granted = declared by the plugin ∩ `spec.capabilities`.
//! - Body mode: the lesser of the plugin's and `spec.bodyMode` (none < headers < buffered <
//!   streamed); size limit: the smaller of `spec.maxBodySize` (default 10 MiB) and the
//!   plugin's (0: no limit of its own).
//! - Config errors: refused step configs, by config id; those steps fail with the reason.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use mcp_crds::pipeline::Stage;
use mcp_crds::plugin::{BodyMode, Capability, PluginDeploymentSpec};
use mcp_plugin_api::Capabilities;
use mcp_plugin_proto::convert::{body_mode_from_proto, capability_from_proto, stage_from_proto};
use mcp_plugin_proto::{PROTOCOL_VERSIONS, v1};

/// Default `spec.maxBodySize`: 10 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 10 << 20;

/// The host's name in `InitializeRequest.host`.
pub const HOST_NAME: &str = concat!("mcp-dataplane/", env!("CARGO_PKG_VERSION"));

/// What the host and a plugin agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version.
    pub version: u32,
    /// The plugin's `name version`.
    pub plugin: String,
    /// The stages the plugin declared.
    pub stages: Vec<Stage>,
    /// The mutations it may return: declared ∩ granted by the PluginDeployment.
    pub capabilities: Capabilities,
    /// What the host sends of each message.
    pub body_mode: BodyMode,
    /// Largest message (octets) sent with its body.
    pub max_body_size: u64,
    /// Refused step configs: config id → reason.
    pub config_errors: BTreeMap<String, String>,
}

/// Why `Initialize` did not lead to a usable connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No version is in both ranges: nothing to try.
    #[error(
        "no common protocol version: the dataplane speaks {host:?}, spec.protocol allows {spec:?}"
    )]
    NoCommonVersion {
        /// [`PROTOCOL_VERSIONS`].
        host: RangeInclusive<u32>,
        /// `spec.protocol`.
        spec: RangeInclusive<i64>,
    },
    /// The plugin answered a version it was not offered.
    #[error("the plugin chose protocol version {answered}, outside the offered {offered:?}")]
    VersionOutOfRange {
        /// Its answer.
        answered: u32,
        /// The offer.
        offered: RangeInclusive<u32>,
    },
    /// The answer breaks the contract (unknown enum value).
    #[error("Initialize reply: {0}")]
    Protocol(String),
}

/// The versions offered for `spec`: [`PROTOCOL_VERSIONS`] ∩ `spec.protocol`.
///
/// # Errors
/// [`NegotiationError::NoCommonVersion`].
pub fn offered(spec: &PluginDeploymentSpec) -> Result<RangeInclusive<u32>, NegotiationError> {
    let none = || NegotiationError::NoCommonVersion {
        host: PROTOCOL_VERSIONS,
        spec: i64::from(spec.protocol.min)..=i64::from(spec.protocol.max),
    };
    let min = u32::try_from(spec.protocol.min).map_err(|_| none())?;
    let max = u32::try_from(spec.protocol.max).map_err(|_| none())?;
    let low = min.max(*PROTOCOL_VERSIONS.start()).max(1);
    let high = max.min(*PROTOCOL_VERSIONS.end());
    if low > high {
        return Err(none());
    }
    Ok(low..=high)
}

/// The `Initialize` request offering `range` with the step configs `steps`.
pub fn request(range: &RangeInclusive<u32>, steps: &[v1::StepConfig]) -> v1::InitializeRequest {
    v1::InitializeRequest {
        min_protocol_version: *range.start(),
        max_protocol_version: *range.end(),
        host: HOST_NAME.to_owned(),
        steps: steps.to_vec(),
    }
}

fn rank(mode: BodyMode) -> u8 {
    match mode {
        BodyMode::None => 0,
        BodyMode::Headers => 1,
        BodyMode::Buffered => 2,
        BodyMode::Streamed => 3,
    }
}

/// `spec.maxBodySize` in octets (default [`DEFAULT_MAX_BODY_SIZE`]).
///
/// # Errors
/// A message naming `spec.maxBodySize` when it is not a quantity of bytes.
pub fn spec_max_body_size(spec: &PluginDeploymentSpec) -> Result<u64, String> {
    match &spec.max_body_size {
        None => Ok(DEFAULT_MAX_BODY_SIZE),
        Some(q) => crate::quota::quantity_bytes(&q.0).map_err(|e| format!("spec.maxBodySize: {e}")),
    }
}

/// Checks the plugin's answer against the offer and the PluginDeployment and computes what
/// is granted.
///
/// # Errors
/// [`NegotiationError`]: a version outside `offered`, an unknown stage, capability or body
/// mode.
pub fn check(
    offered: &RangeInclusive<u32>,
    spec: &PluginDeploymentSpec,
    spec_max_body_size: u64,
    reply: v1::InitializeResponse,
) -> Result<Negotiated, NegotiationError> {
    if !offered.contains(&reply.protocol_version) {
        return Err(NegotiationError::VersionOutOfRange {
            answered: reply.protocol_version,
            offered: offered.clone(),
        });
    }
    let proto = |e: mcp_plugin_proto::ProtocolError| NegotiationError::Protocol(e.0);
    let stages = reply
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| stage_from_proto(&format!("stages[{i}]"), *s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(proto)?;
    let declared = reply
        .capabilities
        .iter()
        .enumerate()
        .map(|(i, c)| capability_from_proto(&format!("capabilities[{i}]"), *c))
        .collect::<Result<Vec<Capability>, _>>()
        .map_err(proto)?;
    let capabilities: Capabilities = declared
        .into_iter()
        .filter(|c| spec.capabilities.contains(c))
        .collect();
    let plugin_mode = body_mode_from_proto("body_mode", reply.body_mode).map_err(proto)?;
    let body_mode = if rank(plugin_mode) < rank(spec.body_mode) {
        plugin_mode
    } else {
        spec.body_mode
    };
    let max_body_size = match reply.max_body_size {
        0 => spec_max_body_size,
        n => n.min(spec_max_body_size),
    };
    let config_errors = reply
        .config_errors
        .into_iter()
        .map(|e| {
            let why = if e.field.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.field, e.message)
            };
            (e.config_id, why)
        })
        .collect();
    let name = if reply.plugin_version.is_empty() {
        reply.plugin_name
    } else {
        format!("{} {}", reply.plugin_name, reply.plugin_version)
    };
    Ok(Negotiated {
        version: reply.protocol_version,
        plugin: name.chars().filter(|c| !c.is_control()).take(128).collect(),
        stages,
        capabilities,
        body_mode,
        max_body_size,
        config_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_crds::plugin::{PluginMode, PluginTransport, ProtocolRange};

    fn spec(min: i32, max: i32, caps: &[Capability], mode: BodyMode) -> PluginDeploymentSpec {
        PluginDeploymentSpec {
            image: None,
            command: vec![],
            args: vec![],
            env: vec![],
            transport: PluginTransport::Tcp,
            protocol: ProtocolRange { min, max },
            stages: vec![Stage::Deliver],
            capabilities: caps.to_vec(),
            body_mode: mode,
            max_body_size: None,
            default_config: None,
            config_schema: None,
            mode: PluginMode::Sidecar,
            port: 50051,
            replicas: None,
            tls: None,
            sandbox: None,
            suspend: false,
        }
    }

    fn reply(
        version: u32,
        caps: &[v1::Capability],
        mode: v1::BodyMode,
        max: u64,
    ) -> v1::InitializeResponse {
        v1::InitializeResponse {
            protocol_version: version,
            plugin_name: "p".into(),
            plugin_version: "1.0".into(),
            stages: vec![v1::Stage::Deliver.into()],
            capabilities: caps.iter().map(|c| (*c).into()).collect(),
            body_mode: mode.into(),
            max_body_size: max,
            config_errors: vec![v1::ConfigError {
                config_id: "abc".into(),
                field: "$.x".into(),
                message: "bad".into(),
            }],
        }
    }

    #[test]
    fn the_offer_is_the_intersection_of_both_ranges() {
        let s = spec(1, 5, &[], BodyMode::Headers);
        assert_eq!(offered(&s), Ok(1..=1));
        for (min, max) in [(2, 3), (0, 0)] {
            assert!(matches!(
                offered(&spec(min, max, &[], BodyMode::Headers)),
                Err(NegotiationError::NoCommonVersion { .. })
            ));
        }
    }

    #[test]
    fn a_version_outside_the_offer_is_refused() {
        let s = spec(1, 1, &[], BodyMode::Headers);
        for v in [0, 2, 7] {
            let e = check(&(1..=1), &s, 100, reply(v, &[], v1::BodyMode::Headers, 0));
            assert!(
                matches!(e, Err(NegotiationError::VersionOutOfRange { answered, .. }) if answered == v)
            );
        }
    }

    #[test]
    fn grants_are_intersections_and_the_lesser_body_mode() {
        use v1::BodyMode as W;
        let cases = [
            // (spec mode, plugin mode, want)
            (BodyMode::Streamed, W::Headers, BodyMode::Headers),
            (BodyMode::Headers, W::Streamed, BodyMode::Headers),
            (BodyMode::Buffered, W::Streamed, BodyMode::Buffered),
            (BodyMode::Streamed, W::Buffered, BodyMode::Buffered),
            (BodyMode::None, W::Buffered, BodyMode::None),
        ];
        for (spec_mode, plugin_mode, want) in cases {
            let s = spec(
                1,
                1,
                &[Capability::AddHeader, Capability::FileInto],
                spec_mode,
            );
            let n = check(
                &(1..=1),
                &s,
                1000,
                reply(
                    1,
                    &[v1::Capability::AddHeader, v1::Capability::ReplaceBody],
                    plugin_mode,
                    0,
                ),
            )
            .expect("valid");
            assert_eq!(n.body_mode, want, "{spec_mode:?} {plugin_mode:?}");
            assert!(n.capabilities.allows(Capability::AddHeader));
            assert!(
                !n.capabilities.allows(Capability::ReplaceBody),
                "not granted by the spec"
            );
            assert!(
                !n.capabilities.allows(Capability::FileInto),
                "not declared by the plugin"
            );
            assert_eq!(n.max_body_size, 1000);
            assert_eq!(
                n.config_errors.get("abc").map(String::as_str),
                Some("$.x: bad")
            );
            assert_eq!(n.plugin, "p 1.0");
        }
        let s = spec(1, 1, &[], BodyMode::Buffered);
        let n = check(&(1..=1), &s, 1000, reply(1, &[], W::Buffered, 10)).expect("valid");
        assert_eq!(n.max_body_size, 10, "the plugin's smaller limit wins");
    }

    #[test]
    fn unknown_enum_values_are_protocol_errors() {
        let s = spec(1, 1, &[], BodyMode::Headers);
        let mut r = reply(1, &[], v1::BodyMode::Headers, 0);
        r.capabilities.push(99);
        assert!(matches!(
            check(&(1..=1), &s, 1, r),
            Err(NegotiationError::Protocol(_))
        ));
        let mut r = reply(1, &[], v1::BodyMode::Headers, 0);
        r.body_mode = 0;
        assert!(matches!(
            check(&(1..=1), &s, 1, r),
            Err(NegotiationError::Protocol(_))
        ));
    }
}
