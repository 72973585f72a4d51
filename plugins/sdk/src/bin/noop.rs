//! `mcp-plugin-noop`: the no-op plugin ([`mcp_plugin_sdk::noop::Noop`]) behind the gRPC
//! contract, for the plugin benchmark and the plugin host's tests. Listens on
//! `MCP_PLUGIN_LISTEN`; the body mode it declares is `--body-mode` or `MCP_NOOP_BODY_MODE`
//! (`none`, `headers`, `buffered`, `streamed`; default `headers`).

use clap::{Parser, ValueEnum};
use mcp_plugin_sdk::{BodyMode, PluginInfo, ServeError};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    None,
    Headers,
    Buffered,
    Streamed,
}

/// The no-op MCP plugin: Continue, no mutation.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The body mode declared at Initialize.
    #[arg(
        long,
        env = "MCP_NOOP_BODY_MODE",
        value_enum,
        default_value = "headers"
    )]
    body_mode: Mode,
    /// The largest message with a body, octets.
    #[arg(long, env = "MCP_NOOP_MAX_BODY_SIZE", default_value_t = mcp_plugin_sdk::DEFAULT_MAX_BODY_SIZE)]
    max_body_size: u64,
}

#[tokio::main]
async fn main() -> Result<(), ServeError> {
    let args = Args::parse();
    let mode = match args.body_mode {
        Mode::None => BodyMode::None,
        Mode::Headers => BodyMode::Headers,
        Mode::Buffered => BodyMode::Buffered,
        Mode::Streamed => BodyMode::Streamed,
    };
    let info = PluginInfo::new("noop", env!("CARGO_PKG_VERSION"))
        .body_mode(mode)
        .max_body_size(args.max_body_size);
    mcp_plugin_sdk::serve(mcp_plugin_sdk::noop::Noop, info).await
}
