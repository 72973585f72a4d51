//! What a plugin declares at `Initialize` (DESIGN.md §4; `docs/plugin-protocol.md`).

use std::ops::RangeInclusive;

use mcp_crds::plugin::BodyMode;
use mcp_plugin_api::{Capabilities, Capability, Stage};
use mcp_plugin_proto::PROTOCOL_VERSIONS;

/// Default [`PluginInfo::max_body_size`]: 10 MiB, the PluginDeployment's default
/// `maxBodySize`.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 10 << 20;

/// A plugin's declaration: its name and version, the stages it supports, the mutations it may
/// return, the body it wants and the protocol versions it speaks. Sent in
/// `InitializeResponse`; the SDK also enforces it (a mutation not declared here is never sent,
/// a stage not declared is refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name, for the host's logs and status (`template`).
    pub name: String,
    /// The plugin's version (`0.1.0`).
    pub version: String,
    /// The stages the plugin supports. Default: all three.
    pub stages: Vec<Stage>,
    /// The mutations the plugin may return. Default: none (verdicts only).
    pub capabilities: Vec<Capability>,
    /// The body the plugin wants. Default: `headers`.
    pub body_mode: BodyMode,
    /// The largest message (octets) the plugin wants a body for, and the largest body it
    /// accepts. Default [`DEFAULT_MAX_BODY_SIZE`].
    pub max_body_size: u64,
    /// The protocol versions the plugin speaks; must lie within the SDK's
    /// [`PROTOCOL_VERSIONS`] (the default).
    pub protocol: RangeInclusive<u32>,
}

impl PluginInfo {
    /// A plugin `name` of `version` with the defaults above.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            stages: vec![Stage::Deliver, Stage::Append, Stage::PostStore],
            capabilities: Vec::new(),
            body_mode: BodyMode::Headers,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            protocol: PROTOCOL_VERSIONS,
        }
    }

    /// Sets the supported stages.
    pub fn stages(mut self, stages: impl IntoIterator<Item = Stage>) -> Self {
        self.stages = stages.into_iter().collect();
        self
    }

    /// Sets the mutations the plugin may return.
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Sets the body mode.
    pub fn body_mode(mut self, mode: BodyMode) -> Self {
        self.body_mode = mode;
        self
    }

    /// Sets the largest message with a body, octets.
    pub fn max_body_size(mut self, octets: u64) -> Self {
        self.max_body_size = octets;
        self
    }

    /// Sets the protocol versions spoken.
    pub fn protocol(mut self, versions: RangeInclusive<u32>) -> Self {
        self.protocol = versions;
        self
    }

    /// The declared capabilities as a set.
    pub fn capability_set(&self) -> Capabilities {
        self.capabilities.iter().copied().collect()
    }

    /// Checks the declaration can be served.
    ///
    /// # Errors
    /// A message naming the problem: empty name or stages, a protocol range outside
    /// [`PROTOCOL_VERSIONS`], a zero body size with a body mode that carries a body.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("the plugin name is empty".into());
        }
        if self.stages.is_empty() {
            return Err("no stage declared".into());
        }
        if self.protocol.is_empty()
            || self.protocol.start() < PROTOCOL_VERSIONS.start()
            || self.protocol.end() > PROTOCOL_VERSIONS.end()
        {
            return Err(format!(
                "protocol versions {:?} are not within the SDK's {PROTOCOL_VERSIONS:?}",
                self.protocol
            ));
        }
        if self.max_body_size == 0
            && matches!(self.body_mode, BodyMode::Buffered | BodyMode::Streamed)
        {
            return Err("max_body_size is 0 with a body mode that carries a body".into());
        }
        Ok(())
    }
}
