//! `mcp-plugin-test`: runs a plugin against recorded messages as the dataplane would, and
//! prints one JSON line per message (`docs/plugin-sdk.md`).
//!
//! ```text
//! mcp-plugin-test --plugin tcp://127.0.0.1:50051 --config cfg.json --stage deliver messages/*.eml
//! mcp-plugin-test --command 'target/debug/mcp-plugin-template' messages/*.eml
//! ```
//!
//! Each line: `{"file": "...", "verdict": {...}, "mutations": [...]}` or
//! `{"file": "...", "error": {"code": "INVALID_ARGUMENT", "message": "..."}}`.
//!
//! Exit codes: 0 every message got a verdict; 1 at least one call failed (gRPC error status
//! or a reply that breaks the contract); 2 usage error, unreadable message, or the plugin
//! could not be started, reached or initialised; 3 the plugin refused the config
//! (`config_errors`, printed on stderr).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use mcp_plugin_proto::convert::body_mode_from_proto;
use mcp_plugin_sdk::api::Stage;
use mcp_plugin_sdk::testing::{Call, Harness, result_json, step_config, temp_socket};
use mcp_plugin_sdk::{BodyMode, Listen};
use serde_json::json;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StageArg {
    Deliver,
    Append,
    PostStore,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    None,
    Headers,
    Buffered,
    Streamed,
}

/// Runs an MCP plugin against recorded messages and prints one JSON line per message.
#[derive(Parser, Debug)]
#[command(version, group = clap::ArgGroup::new("target").required(true).args(["plugin", "command"]))]
struct Args {
    /// A running plugin: tcp://IP:PORT or unix:///path.sock.
    #[arg(long)]
    plugin: Option<Listen>,
    /// Start the plugin with this shell command line (MCP_PLUGIN_LISTEN set to --listen).
    #[arg(long)]
    command: Option<String>,
    /// Where a --command plugin listens (default: a Unix socket in the temporary directory).
    #[arg(long)]
    listen: Option<Listen>,
    /// The step config, a JSON file (default: `{}`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The pipeline stage.
    #[arg(long, value_enum, default_value = "deliver")]
    stage: StageArg,
    /// The body mode to send (default: the one the plugin declares).
    #[arg(long, value_enum)]
    body_mode: Option<ModeArg>,
    /// Messages larger than this are sent with body_withheld (default: the plugin's limit).
    #[arg(long)]
    max_body_size: Option<u64>,
    /// MAIL FROM of the envelope.
    #[arg(long, default_value = "sender@example.net")]
    mail_from: String,
    /// RCPT TO of the envelope, also the mailbox.
    #[arg(long, default_value = "alice@example.com")]
    rcpt_to: String,
    /// Deadline of each call, seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// How long to wait for the plugin to be SERVING, seconds.
    #[arg(long, default_value_t = 30)]
    wait: u64,
    /// RFC 5322 messages (.eml).
    #[arg(required = true)]
    messages: Vec<PathBuf>,
}

fn fail(code: u8, what: impl std::fmt::Display) -> ExitCode {
    eprintln!("mcp-plugin-test: {what}");
    ExitCode::from(code)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config_json = match &args.config {
        Some(p) => match tokio::fs::read_to_string(p).await {
            Ok(s) => s,
            Err(e) => return fail(2, format!("{}: {e}", p.display())),
        },
        None => "{}".to_owned(),
    };
    let wait = Duration::from_secs(args.wait);
    let harness = match (&args.plugin, &args.command) {
        (Some(target), _) => Harness::connect(target, wait).await,
        (None, Some(cmd)) => {
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| Listen::Unix(temp_socket("plugin-test")));
            let script = vec!["-c".to_owned(), format!("exec {cmd}")];
            Harness::spawn("sh", &script, &listen, wait).await
        }
        (None, None) => return fail(2, "--plugin or --command is required"),
    };
    let mut harness = match harness {
        Ok(h) => h,
        Err(e) => return fail(2, e),
    };
    let init = match harness
        .initialize(vec![step_config("default/test", "plugin", &config_json)])
        .await
    {
        Ok(i) => i,
        Err(s) => return fail(2, format!("Initialize: {}: {}", s.code(), s.message())),
    };
    let declared = body_mode_from_proto("body_mode", init.body_mode);
    eprintln!(
        "{}",
        json!({"plugin": init.plugin_name, "version": init.plugin_version,
               "protocolVersion": init.protocol_version,
               "bodyMode": declared.as_ref().map_or(json!(init.body_mode), |m| json!(m)),
               "maxBodySize": init.max_body_size})
    );
    if !init.config_errors.is_empty() {
        for e in &init.config_errors {
            eprintln!(
                "{}",
                json!({"configError": {"field": e.field, "message": e.message}})
            );
        }
        return fail(3, "the plugin refused the config");
    }
    let body_mode = match args.body_mode {
        Some(ModeArg::None) => BodyMode::None,
        Some(ModeArg::Headers) => BodyMode::Headers,
        Some(ModeArg::Buffered) => BodyMode::Buffered,
        Some(ModeArg::Streamed) => BodyMode::Streamed,
        None => match declared {
            Ok(m) => m,
            Err(e) => return fail(2, format!("Initialize: {e}")),
        },
    };
    let call = Call {
        stage: match args.stage {
            StageArg::Deliver => Stage::Deliver,
            StageArg::Append => Stage::Append,
            StageArg::PostStore => Stage::PostStore,
        },
        body_mode,
        max_body_size: args.max_body_size.unwrap_or(if init.max_body_size == 0 {
            mcp_plugin_sdk::DEFAULT_MAX_BODY_SIZE
        } else {
            init.max_body_size
        }),
        config_json,
        envelope: mcp_plugin_sdk::api::Envelope {
            mail_from: args.mail_from.clone(),
            rcpt_to: args.rcpt_to.clone(),
        },
        mailbox: args.rcpt_to.clone(),
        timeout: Duration::from_secs(args.timeout),
        ..Call::default()
    };
    let mut code = 0;
    for path in &args.messages {
        let file = path.display().to_string();
        let message = match tokio::fs::read(path).await {
            Ok(m) => Bytes::from(m),
            Err(e) => {
                println!(
                    "{}",
                    json!({"file": file, "error": {"code": "READ", "message": e.to_string()}})
                );
                code = 2;
                continue;
            }
        };
        let result = harness.run(message, &call).await;
        if result.is_err() && code == 0 {
            code = 1;
        }
        let mut line = result_json(&result);
        line["file"] = json!(file);
        println!("{line}");
    }
    if let Err(s) = harness.shutdown("done").await {
        eprintln!("mcp-plugin-test: Shutdown: {}: {}", s.code(), s.message());
    }
    let _ = harness.terminate(Duration::from_secs(5)).await;
    ExitCode::from(code)
}
