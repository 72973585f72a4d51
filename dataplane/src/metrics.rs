//! Prometheus metrics of the dataplane (prometheus-client), served on `/metrics`.
//!
//! Families (OpenMetrics text format):
//! - `mcp_imap_connections` (gauge): open IMAP connections.
//! - `mcp_imap_connections_accepted_total` (counter): connections accepted since start. (A
//!   counter family cannot be called `mcp_imap_connections` next to the gauge of that name:
//!   both would claim the metric family name and scrapers reject the page.)
//! - `mcp_imap_commands_total{command,status}` (counter): finished commands.
//! - `mcp_imap_command_duration_seconds{command}` (histogram): command wall time, seconds.
//! - `mcp_pipeline_*`: the pipeline engine's, listed in [`crate::pipeline::metrics`].
//! - `mcp_lmtp_*`: LMTP sessions, transactions and per-recipient replies
//!   ([`crate::lmtp::metrics`]).
//! - `mcp_plugin_*`: external plugins ([`crate::plugin_host::metrics`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::pipeline::PipelineMetrics;

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandStatus {
    command: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandOnly {
    command: String,
}

/// The dataplane's metrics. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    connections_accepted: Counter,
    commands: Family<CommandStatus, Counter>,
    durations: Family<CommandOnly, Histogram, fn() -> Histogram>,
    pipeline: Arc<PipelineMetrics>,
    /// The LMTP families.
    pub lmtp: crate::lmtp::LmtpMetrics,
}

fn command_histogram() -> Histogram {
    // 0.5 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.0005, 3.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::with_plugins(&crate::plugin_host::PluginMetrics::default())
    }
}

impl Metrics {
    /// The dataplane's families plus the plugin host's (`mcp_plugin_*`), which `plugins`
    /// keeps counting into.
    pub fn with_plugins(plugins: &crate::plugin_host::PluginMetrics) -> Self {
        let mut registry = Registry::default();
        let connections = Gauge::default();
        let connections_accepted = Counter::default();
        let commands = Family::<CommandStatus, Counter>::default();
        let durations = Family::<CommandOnly, Histogram, fn() -> Histogram>::new_with_constructor(
            command_histogram,
        );
        registry.register(
            "mcp_imap_connections",
            "Open IMAP connections",
            connections.clone(),
        );
        registry.register(
            "mcp_imap_connections_accepted",
            "IMAP connections accepted since start",
            connections_accepted.clone(),
        );
        registry.register(
            "mcp_imap_commands",
            "IMAP commands finished, by command and status (OK, NO, BAD)",
            commands.clone(),
        );
        registry.register(
            "mcp_imap_command_duration_seconds",
            "Wall time of IMAP commands, seconds",
            durations.clone(),
        );
        let pipeline = Arc::new(PipelineMetrics::register(&mut registry));
        let lmtp = crate::lmtp::LmtpMetrics::register(&mut registry);
        plugins.register(&mut registry);
        Self {
            registry,
            lmtp,
            connections,
            connections_accepted,
            commands,
            durations,
            pipeline,
        }
    }
}

/// Keeps label cardinality bounded whatever a caller passes: anything that is not a short
/// upper-case command name (letters and single spaces, as in `UID FETCH`) becomes `OTHER`.
fn label(value: &str) -> String {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value.bytes().all(|b| b.is_ascii_uppercase() || b == b' ');
    if ok {
        value.to_owned()
    } else {
        "OTHER".to_owned()
    }
}

impl Metrics {
    /// The pipeline engine's families ([`crate::pipeline::metrics`]).
    pub fn pipeline(&self) -> &Arc<PipelineMetrics> {
        &self.pipeline
    }

    /// A client connected (`mcp_imap_connections` gauge +1,
    /// `mcp_imap_connections_accepted_total` +1).
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_accepted.inc();
    }

    /// A client disconnected (`mcp_imap_connections` gauge -1).
    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// One IMAP command finished: `command` upper-case name (`FETCH`, `UID FETCH`), `status`
    /// `OK`/`NO`/`BAD`, `seconds` wall time (`mcp_imap_commands_total`,
    /// `mcp_imap_command_duration_seconds`). Other names or statuses are counted as `OTHER`.
    pub fn command(&self, command: &str, status: &str, seconds: f64) {
        let command = label(command);
        self.commands
            .get_or_create(&CommandStatus {
                command: command.clone(),
                status: label(status),
            })
            .inc();
        self.durations
            .get_or_create(&CommandOnly { command })
            .observe(seconds);
    }

    /// All metrics in the OpenMetrics text format ([`CONTENT_TYPE_OPENMETRICS`]), ending in
    /// `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would be a bug in an encoder.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// The HTTP routes of the metrics listener: `GET /metrics` (OpenMetrics text) and
/// `GET /healthz` (`ok`, status 200 while the process serves), plus `extra` (standalone:
/// the read-only state endpoints).
pub fn router(metrics: Arc<Metrics>, extra: Router) -> Router {
    extra
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move { ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], metrics.encode()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n".into_response() }))
}

/// Serves [`router`] (with `extra`) on `listener` until `shutdown` is cancelled, then
/// finishes in-flight requests and returns.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    extra: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "metrics listening");
    axum::serve(listener, router(metrics, extra))
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_exposes_every_family() {
        let m = Metrics::default();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed();
        m.command("UID FETCH", "OK", 0.002);
        m.command("LOGIN", "NO", 0.1);
        let text = m.encode();
        for want in [
            "mcp_imap_connections 1",
            "mcp_imap_connections_accepted_total 2",
            "mcp_imap_commands_total{command=\"UID FETCH\",status=\"OK\"} 1",
            "mcp_imap_commands_total{command=\"LOGIN\",status=\"NO\"} 1",
            "mcp_imap_command_duration_seconds_count{command=\"LOGIN\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn hostile_labels_collapse_to_other() {
        let m = Metrics::default();
        m.command("x\"}\n evil", "ok", 0.0);
        m.command(&"A".repeat(100), "OK", 0.0);
        let text = m.encode();
        assert!(
            text.contains("mcp_imap_commands_total{command=\"OTHER\",status=\"OTHER\"} 1"),
            "{text}"
        );
        assert!(!text.contains("evil"));
    }

    #[tokio::test]
    async fn http_serves_metrics_and_healthz_until_shutdown() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = CancellationToken::new();
        let metrics = Arc::new(Metrics::default());
        metrics.connection_opened();
        let server = tokio::spawn(serve(listener, metrics, Router::new(), token.clone()));
        for (path, want) in [("/metrics", "mcp_imap_connections 1"), ("/healthz", "ok")] {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.expect("write");
            let mut resp = String::new();
            s.read_to_string(&mut resp).await.expect("read");
            assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
            assert!(resp.contains(want), "{resp}");
        }
        token.cancel();
        server.await.expect("join").expect("serve");
    }
}
