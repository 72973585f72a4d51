//! The no-op plugin: `Continue`, no mutation, whatever the message. The yardstick of the
//! plugin benchmark (the same code in-process and behind the gRPC contract) and a peer for the
//! plugin host's tests (binary `mcp-plugin-noop`).

use futures::future::BoxFuture;
use mcp_plugin_api::{Capabilities, MessageContext, Plugin, PluginError, StepOutput};

/// Returns `Continue` with no mutation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Noop;

impl Plugin for Noop {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    fn process<'a>(
        &'a self,
        _message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(std::future::ready(Ok(StepOutput::pass())))
    }
}
