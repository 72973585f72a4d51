//! Per-call overhead of an external plugin (issue 5 benchmark; not a test, CI only builds it).
//!
//! Calls the SDK's no-op plugin (`mcp_plugin_sdk::noop::Noop`) on a 64 KiB message three
//! ways, through the same `mcp_plugin_api::Plugin::process` the pipeline engine uses:
//! in-process (the `Noop` object itself), and through the plugin host to the `mcp-plugin-noop`
//! process over a Unix socket and over loopback TCP, in body modes `buffered` and `streamed`.
//! `--concurrency` callers loop for `--seconds` per configuration; configurations alternate
//! for `--rounds`. Prints calls/s, p50 and p99 per configuration, and the p50 added and
//! throughput loss against in-process.
//!
//! ```sh
//! cargo build --release -p mcp-plugin-sdk --bin mcp-plugin-noop
//! cargo run --release -p mcp-dataplane --example plugin_overhead -- --noop target/release/mcp-plugin-noop
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use mcp_crds::dataplane::PluginPhase;
use mcp_crds::{Pipeline, PluginDeployment, Resource};
use mcp_dataplane::pipeline::{MailboxScope, compile};
use mcp_dataplane::plugin_host::{HostMode, HostSettings, PluginHost};
use mcp_plugin_api::{Envelope, MessageContext, Plugin, Stage};

/// Options.
#[derive(Parser)]
struct Args {
    /// The `mcp-plugin-noop` binary (a release build).
    #[arg(long, default_value = "target/release/mcp-plugin-noop")]
    noop: PathBuf,
    /// Message size, octets.
    #[arg(long, default_value_t = 64 * 1024)]
    size: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds per configuration per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds (configurations alternate within each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const NS: &str = "mcp-example";

fn parse<T>(yaml: &str, pick: impl Fn(Resource) -> Option<T>) -> anyhow::Result<T> {
    let r = Resource::parse_stream(yaml)?.pop().context("no resource")?;
    pick(r).context("unexpected kind")
}

fn deployment(
    noop: &str,
    transport: &str,
    mode: &str,
    port: u16,
) -> anyhow::Result<PluginDeployment> {
    parse(
        &format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\nmetadata: {{name: noop-{transport}-{mode}, namespace: {NS}}}\nspec:\n  command: [{noop:?}, --body-mode, {mode}]\n  protocol: {{min: 1, max: 1}}\n  stages: [append]\n  bodyMode: {mode}\n  maxBodySize: 1Mi\n  transport: {transport}\n  port: {port}\n"
        ),
        |r| match r {
            Resource::PluginDeployment(d) => Some(*d),
            _ => None,
        },
    )
}

fn pipeline(plugin: &str) -> anyhow::Result<Pipeline> {
    parse(
        &format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {{name: {plugin}, namespace: {NS}}}\nspec:\n  scope: {{type: TenantDefault}}\n  stages: [append]\n  steps: [{{name: noop, plugin: {{name: {plugin}}}, onError: failClosed}}]\n"
        ),
        |r| match r {
            Resource::Pipeline(p) => Some(*p),
            _ => None,
        },
    )
}

fn message(size: usize) -> Bytes {
    let head = b"From: bench@example.net\r\nTo: alice@example.com\r\nSubject: 64 KiB\r\n\r\n";
    let mut m = head.to_vec();
    while m.len() + 76 <= size {
        m.extend_from_slice(&[b'x'; 74]);
        m.extend_from_slice(b"\r\n");
    }
    m.resize(size, b'y');
    Bytes::from(m)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Calls `plugin` from `concurrency` tasks for `seconds`; returns every call's latency.
async fn drive(
    plugin: Arc<dyn Plugin>,
    ctx: Arc<MessageContext>,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Vec<Duration>> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (plugin, ctx) = (Arc::clone(&plugin), Arc::clone(&ctx));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                plugin
                    .process(&ctx)
                    .await
                    .map_err(|e| anyhow::anyhow!("call failed: {e}"))?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.noop.is_file() {
        bail!(
            "{}: not found (cargo build --release -p mcp-plugin-sdk --bin mcp-plugin-noop)",
            args.noop.display()
        );
    }
    let noop = std::fs::canonicalize(&args.noop)?.display().to_string();
    let dir = tempfile::tempdir()?;
    let host = PluginHost::new(
        HostMode::Standalone {
            data_dir: dir.path().to_owned(),
        },
        HostSettings::default(),
    );
    let mut deployments = Vec::new();
    let mut pipelines = Vec::new();
    let mut names = Vec::new();
    for mode in ["buffered", "streamed"] {
        for transport in ["unix", "tcp"] {
            let d = deployment(&noop, transport, mode, free_port()?)?;
            let name = d.metadata.name.clone().context("name")?;
            pipelines.push(pipeline(&name)?);
            names.push((
                format!("{}-{mode}", if transport == "unix" { "uds" } else { "tcp" }),
                name,
            ));
            deployments.push(d);
        }
    }
    let plan = host.plan(&deployments, true)?;
    // One set per pipeline: each is its tenant's default on `append`.
    let sets = pipelines
        .iter()
        .map(|p| compile(std::slice::from_ref(p), &|_| Some("example".into()), &plan))
        .collect::<Result<Vec<_>, _>>()?;
    host.commit(plan);

    let mut configs: Vec<(String, Arc<dyn Plugin>)> =
        vec![("in-process".into(), Arc::new(mcp_plugin_sdk::noop::Noop))];
    let labels = Default::default();
    for ((label, name), set) in names.iter().zip(&sets) {
        let chosen = set.select(
            Stage::Append,
            MailboxScope {
                tenant: "example",
                labels: &labels,
                pipeline_ref: None,
            },
        );
        let step = chosen
            .iter()
            .find(|p| &p.name == name)
            .and_then(|p| p.steps.first())
            .context("compiled step")?;
        configs.push((label.clone(), Arc::clone(&step.plugin)));
    }
    // Wait until every plugin process serves.
    let start = Instant::now();
    while host
        .state()
        .plugins
        .iter()
        .any(|p| p.phase != PluginPhase::Serving)
    {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("plugins not serving: {:?}", host.state());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ctx = Arc::new(MessageContext {
        stage: Stage::Append,
        tenant: "example".into(),
        mailbox: "alice@example.com".into(),
        folder: "INBOX".into(),
        envelope: Envelope::default(),
        message: message(args.size),
        flags: Vec::new(),
        metadata: Default::default(),
    });
    let mut results: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    let mut secs = vec![0.0; configs.len()];
    for round in 0..args.rounds {
        for (i, (label, plugin)) in configs.iter().enumerate() {
            let lat = drive(
                Arc::clone(plugin),
                Arc::clone(&ctx),
                args.concurrency,
                args.seconds,
            )
            .await?;
            println!(
                "round {} {label:13} {:10.0} calls/s",
                round + 1,
                lat.len() as f64 / args.seconds
            );
            results[i].extend(lat);
            secs[i] += args.seconds;
        }
    }
    println!(
        "\n{}-octet message, {} concurrent callers, {} x {}s per configuration\n",
        args.size, args.concurrency, args.rounds, args.seconds
    );
    println!(
        "{:13} {:>10} {:>8} {:>8}",
        "config", "calls/s", "p50 ms", "p99 ms"
    );
    let mut summary = Vec::new();
    for (i, (label, _)) in configs.iter().enumerate() {
        let lat = &mut results[i];
        lat.sort();
        let rate = lat.len() as f64 / secs[i];
        println!(
            "{label:13} {rate:10.0} {:8.3} {:8.3}",
            pct(lat, 0.5),
            pct(lat, 0.99)
        );
        summary.push((label.clone(), rate, pct(lat, 0.5)));
    }
    println!();
    let (_, base_rate, base_p50) = summary[0].clone();
    for (label, rate, p50) in &summary[1..] {
        println!(
            "{label}: p50 added {:+.3} ms per call; {:.1} µs more wall time per call at saturation with {} callers",
            p50 - base_p50,
            1e6 / rate - 1e6 / base_rate,
            args.concurrency
        );
    }
    host.shutdown().await;
    Ok(())
}
