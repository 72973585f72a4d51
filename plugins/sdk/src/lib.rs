//! The MCP plugin SDK: write a mail-processing plugin in Rust and serve it over the gRPC
//! contract `mcp.plugin.v1.MailProcessor` (DESIGN.md §4; `docs/plugin-protocol.md`,
//! `docs/plugin-sdk.md`).
//!
//! A plugin implements [`mcp_plugin_api::Plugin`] — the trait the built-in plugins implement,
//! so the same code also runs in-process — and declares itself with a [`PluginInfo`]. The SDK
//! does the rest: it listens where [`ENV_LISTEN`] says (`tcp://IP:PORT` or
//! `unix:///path.sock`; mutual TLS when the `MCP_PLUGIN_TLS_*` variables are set), serves
//! `grpc.health.v1` (`SERVING` once started, `NOT_SERVING` while shutting down), negotiates
//! the protocol version at `Initialize`, builds and caches a plugin per step config
//! (refusals go to `config_errors`), reassembles streamed bodies, refuses requests that break
//! the contract with `INVALID_ARGUMENT`, turns a panic into `INTERNAL`, checks every reply
//! against the declaration, and stops gracefully on SIGTERM or SIGINT.
//!
//! ```no_run
//! use futures::future::BoxFuture;
//! use mcp_plugin_sdk::api::{Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, StepOutput};
//! use mcp_plugin_sdk::{ConfigError, PluginInfo};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { keyword: String }
//!
//! struct Tagger { keyword: String }
//!
//! impl Plugin for Tagger {
//!     fn capabilities(&self) -> Capabilities {
//!         [Capability::AddKeyword].into_iter().collect()
//!     }
//!     fn process<'a>(&'a self, _m: &'a MessageContext) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
//!         let keyword = self.keyword.clone();
//!         Box::pin(async move { Ok(StepOutput::mutate(vec![Mutation::AddKeyword { keyword }])) })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), mcp_plugin_sdk::ServeError> {
//!     let info = PluginInfo::new("tagger", "0.1.0").capabilities([Capability::AddKeyword]);
//!     mcp_plugin_sdk::serve_configured(info, |c: Config| {
//!         if c.keyword.is_empty() {
//!             return Err(ConfigError::field("$.keyword", "must not be empty"));
//!         }
//!         Ok(Tagger { keyword: c.keyword })
//!     })
//!     .await
//! }
//! ```
//!
//! [`testing`] runs a plugin against recorded messages, as a host would (also the
//! `mcp-plugin-test` CLI).

pub mod config;
pub mod info;
pub mod listen;
pub mod noop;
pub mod server;
mod service;
pub mod testing;

pub use config::{ConfigError, Configure, Fixed, FromConfig};
pub use info::{DEFAULT_MAX_BODY_SIZE, PluginInfo};
pub use listen::{ENV_LISTEN, Listen, ListenError};
pub use mcp_crds::plugin::BodyMode;
/// The plugin API (`mcp-plugin-api`): [`api::Plugin`], [`api::MessageContext`],
/// [`api::StepOutput`], [`api::Verdict`], [`api::Mutation`]…
pub use mcp_plugin_api as api;
pub use server::{Bound, ServeError, Server, TlsFiles};

use serde::de::DeserializeOwned;

/// Logs to stderr (the standalone supervisor forwards it into the dataplane's log; Kubernetes
/// keeps it as the container log), filtered by `RUST_LOG` (default `info`). Does nothing when
/// a subscriber is already installed.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Serves `plugin` (the same for every step config) as `info` declares, on the address in
/// [`ENV_LISTEN`], until SIGTERM or SIGINT; logs to stderr ([`init_logging`]).
///
/// # Errors
/// [`ServeError`] when the declaration, the address or TLS is invalid, or the server fails.
pub async fn serve(plugin: impl api::Plugin, info: PluginInfo) -> Result<(), ServeError> {
    init_logging();
    Server::new(info, Fixed::new(plugin)).serve().await
}

/// Serves the plugins `build` makes from each step config (deserialised into `C`), as
/// `info` declares; otherwise as [`serve`]. `build` runs once per distinct config: at
/// `Initialize` for the configs the host announces (a refusal goes to `config_errors`), or at
/// the first message with a new config.
///
/// # Errors
/// As [`serve`].
pub async fn serve_configured<C, P, F>(info: PluginInfo, build: F) -> Result<(), ServeError>
where
    C: DeserializeOwned + 'static,
    P: api::Plugin,
    F: Fn(C) -> Result<P, ConfigError> + Send + Sync + 'static,
{
    init_logging();
    Server::new(info, FromConfig::new(build)).serve().await
}
