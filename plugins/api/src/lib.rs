//! The contract between the pipeline engine and a plugin (DESIGN.md §4).
//!
//! A pipeline step hands its plugin a [`MessageContext`] (envelope, tenant, mailbox, the
//! message as changed by the earlier steps) and gets back a [`StepOutput`]: exactly one
//! [`Verdict`] and a list of typed [`Mutation`]s. Verdicts and mutations are kept apart: a
//! verdict decides the message's fate, a mutation changes what is stored. Every mutation needs
//! the [`Capability`] the plugin declared ([`Mutation::capability`]); the engine refuses a
//! reply that carries an undeclared one.
//!
//! A plugin failure (an error, a panic, a timeout) is not a verdict: the engine applies the
//! step's `onError` policy. Plugins therefore return [`PluginError`] for "I could not
//! decide", never a made-up verdict.
//!
//! Built-in plugins (`mcp-plugins-builtin`) implement [`Plugin`] in-process; the gRPC host of
//! external plugins (issue 5) implements it by calling the plugin over the wire.

pub mod message;
pub mod mutation;
pub mod verdict;

use std::collections::BTreeSet;

use futures::future::BoxFuture;

pub use mcp_crds::pipeline::Stage;
pub use mcp_crds::plugin::Capability;
pub use message::{Envelope, MessageContext};
pub use mutation::{HeaderName, InvalidMutation, Mutation, SystemFlag};
pub use verdict::{EnhancedStatus, InvalidVerdict, Verdict};

/// What one plugin call returns: one verdict and the mutations to apply (in order) when the
/// verdict lets the message go on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutput {
    /// The decision.
    pub verdict: Verdict,
    /// Changes to the message, applied in order; each must be declared.
    pub mutations: Vec<Mutation>,
}

impl StepOutput {
    /// `Continue` with no mutation: the step had nothing to say.
    pub fn pass() -> Self {
        Self::default()
    }

    /// `verdict` with no mutation.
    pub fn verdict(verdict: Verdict) -> Self {
        Self {
            verdict,
            mutations: Vec::new(),
        }
    }

    /// `Continue` with `mutations`.
    pub fn mutate(mutations: Vec<Mutation>) -> Self {
        Self {
            verdict: Verdict::Continue,
            mutations,
        }
    }
}

/// Why a plugin could not decide. Handled by the step's `onError` policy, never as a verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The plugin (or the scanner it bridges to) is unavailable, e.g. connection refused.
    #[error("plugin unavailable: {0}")]
    Unavailable(String),
    /// The plugin failed while processing this message.
    #[error("plugin failed: {0}")]
    Failed(String),
    /// The plugin answered something the contract does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// The set of mutations a plugin declared it may return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<CapabilityKey>);

/// [`Capability`] with a total order, so it can live in a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct CapabilityKey(u8);

fn key(c: Capability) -> CapabilityKey {
    CapabilityKey(match c {
        Capability::AddHeader => 0,
        Capability::ChangeHeader => 1,
        Capability::RemoveHeader => 2,
        Capability::ReplaceBody => 3,
        Capability::AddKeyword => 4,
        Capability::AddFlag => 5,
        Capability::FileInto => 6,
        Capability::SetMetadata => 7,
    })
}

impl Capabilities {
    /// No mutation at all: verdicts only.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether `c` was declared.
    pub fn allows(&self, c: Capability) -> bool {
        self.0.contains(&key(c))
    }

    /// The first mutation of `mutations` that needs an undeclared capability, if any.
    pub fn first_undeclared<'a>(&self, mutations: &'a [Mutation]) -> Option<&'a Mutation> {
        mutations.iter().find(|m| !self.allows(m.capability()))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Self(iter.into_iter().map(key).collect())
    }
}

/// An error and its sources, `: `-separated, each source's text once (transport errors of
/// tonic and hyper say little on their own). For logs and `PluginError` texts.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A mail processor: called once per message and stage by each pipeline step using it.
///
/// Implementations must be cheap to call concurrently (`&self`); the engine runs the call
/// under the step's timeout and catches panics, so a plugin needs neither. CPU-heavy work
/// belongs on a blocking thread (`tokio::task::spawn_blocking`), not on the async runtime.
pub trait Plugin: Send + Sync + 'static {
    /// The mutations this plugin may return; checked on every reply.
    fn capabilities(&self) -> Capabilities;

    /// Processes one message.
    ///
    /// # Errors
    /// [`PluginError`] when the plugin cannot decide; the step's `onError` applies.
    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_mutation_is_found() {
        let caps: Capabilities = [Capability::AddHeader].into_iter().collect();
        let add = Mutation::add_header("X-Tag", "yes").expect("valid header");
        let body = Mutation::ReplaceBody {
            body: bytes::Bytes::from_static(b"x\r\n"),
        };
        assert_eq!(caps.first_undeclared(std::slice::from_ref(&add)), None);
        assert_eq!(
            caps.first_undeclared(&[add, body.clone()]),
            Some(&body),
            "ReplaceBody was not declared"
        );
        assert!(!Capabilities::none().allows(Capability::AddHeader));
    }
}
