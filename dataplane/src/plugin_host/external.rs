//! [`ExternalPlugin`]: one pipeline step calling a PluginDeployment over its shared
//! [`Connection`].

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use mcp_crds::plugin::BodyMode;
use mcp_plugin_api::{
    Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, StepOutput,
};
use mcp_plugin_proto::convert::CallInfo;

use super::config::StepConfig;
use super::connection::Connection;

/// The metadata key an external step sets when the message was over its size limit and
/// the body was withheld from the plugin: `plugin.<step>.body-withheld`, value `true`. Kept
/// with the stored message, so a body no plugin saw is never mistaken for a scanned one.
pub fn withheld_key(step: &str) -> String {
    format!("plugin.{step}.body-withheld")
}

/// One step's view of an external plugin: its pipeline, step name, config and timeout,
/// and the connection it calls.
pub struct ExternalPlugin {
    conn: Arc<Connection>,
    pipeline: String,
    step: String,
    config: StepConfig,
    timeout: Duration,
    capabilities: Capabilities,
}

impl std::fmt::Debug for ExternalPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalPlugin")
            .field("plugin", &self.conn.label())
            .field("pipeline", &self.pipeline)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl ExternalPlugin {
    /// Step `step` of pipeline `pipeline` (`namespace/name`) calling `conn` with `config`,
    /// each call limited to `timeout`.
    pub fn new(
        conn: Arc<Connection>,
        pipeline: String,
        step: String,
        config: StepConfig,
        timeout: Duration,
    ) -> Self {
        let spec = conn.spec();
        let mut caps: Vec<Capability> = spec.capabilities.clone();
        // The host itself sets the withheld marker on an oversized message.
        if matches!(spec.body_mode, BodyMode::Buffered | BodyMode::Streamed) {
            caps.push(Capability::SetMetadata);
        }
        conn.add_user();
        Self {
            capabilities: caps.into_iter().collect(),
            conn,
            pipeline,
            step,
            config,
            timeout,
        }
    }
}

impl Drop for ExternalPlugin {
    fn drop(&mut self) {
        self.conn.release_user();
    }
}

/// A call id unique in this process: a random prefix per process and a counter.
fn next_call_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(rand::random);
    format!("{prefix:08x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl Plugin for ExternalPlugin {
    /// What the PluginDeployment grants (`spec.capabilities`, plus `setMetadata` for the
    /// host's own withheld marker with a body mode that carries a body). The engine checks
    /// replies against it; the connection also refuses, per call, a mutation the plugin
    /// did not declare at `Initialize` (granted = declared ∩ spec).
    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move {
            let call = CallInfo {
                call_id: next_call_id(),
                pipeline: self.pipeline.clone(),
                step: self.step.clone(),
                config_id: self.config.id.clone(),
                config_json: self.config.json.clone(),
            };
            let called = self.conn.call(message, call, self.timeout).await?;
            let mut output = called.output;
            if called.withheld {
                tracing::info!(
                    plugin = %self.conn.label(),
                    step = %self.step,
                    size = message.size(),
                    "message over the plugin's size limit: body withheld"
                );
                output.mutations.push(Mutation::SetMetadata {
                    key: withheld_key(&self.step),
                    value: "true".into(),
                });
            }
            Ok(output)
        })
    }
}
