//! Plugins that misbehave on purpose, for the fault-injection tests of the engine and the
//! ingest path (issue 4: a plugin that panics, one that hangs past its timeout, one that
//! returns an undeclared mutation). Not used by the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::future::BoxFuture;
use mcp_plugin_api::{
    Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, StepOutput,
};

/// What a [`FaultPlugin`] does when called.
pub enum Behaviour {
    /// Panics.
    Panic,
    /// Never answers.
    Hang,
    /// Returns a plugin error.
    Fail,
    /// Fails this many times, then passes.
    FlakyThenPass(u32),
    /// Returns this reply.
    Reply(StepOutput),
    /// Adds `X-Seen: <n>` where n counts the X-Seen headers already there.
    CountSeen,
}

/// A plugin for fault-injection tests: it panics, hangs, fails, flakes, or replies as told.
pub struct FaultPlugin {
    behaviour: Behaviour,
    caps: Vec<Capability>,
    /// How many times it was called.
    pub calls: AtomicU32,
}

impl FaultPlugin {
    /// A plugin that behaves as `behaviour` and declares `caps`.
    pub fn new(behaviour: Behaviour, caps: &[Capability]) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            caps: caps.to_vec(),
            calls: AtomicU32::new(0),
        })
    }
}

impl Plugin for FaultPlugin {
    fn capabilities(&self) -> Capabilities {
        self.caps.iter().copied().collect()
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match &self.behaviour {
                Behaviour::Panic => panic!("injected panic"),
                Behaviour::Hang => {
                    futures::future::pending::<()>().await;
                    unreachable!()
                }
                Behaviour::Fail => Err(PluginError::Failed("injected".into())),
                Behaviour::FlakyThenPass(k) if n < *k => {
                    Err(PluginError::Unavailable("flaky".into()))
                }
                Behaviour::FlakyThenPass(_) => Ok(StepOutput::pass()),
                Behaviour::Reply(out) => Ok(out.clone()),
                Behaviour::CountSeen => {
                    let seen = String::from_utf8_lossy(message.header_section())
                        .matches("X-Seen:")
                        .count();
                    Ok(StepOutput::mutate(vec![
                        Mutation::add_header("X-Seen", seen.to_string()).expect("valid"),
                    ]))
                }
            }
        })
    }
}
