//! `mcp`: the dataplane binary. Only wiring lives here.

use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mcp_dataplane::managed::{self, Overrides};
use mcp_dataplane::standalone::{self, Config, Settings, config};
use mcp_dataplane::store::BlobLocation;
use tracing_subscriber::EnvFilter;

/// MCP, a Kubernetes-native IMAP mail platform: the dataplane.
#[derive(Parser, Debug)]
#[command(name = "mcp", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty, global = true, env = "MCP_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run IMAP (STARTTLS), IMAPS, LMTP, metrics and the REST API in one process from a local
    /// data directory, with the accounts of the YAML resources in --resources.
    Standalone(Box<StandaloneArgs>),
    /// Run one Tenant's dataplane from the configuration file the operator renders
    /// (config.yaml), with the HTTPS admin API through which the operator provisions
    /// accounts.
    Dataplane(DataplaneArgs),
    /// List, show, release or delete the messages a pipeline held in a standalone data
    /// directory's quarantine (works while the server runs).
    Quarantine(QuarantineArgs),
    /// Delete the message bodies that no message or quarantined message refers to (left by
    /// writes interrupted between storing the body and committing), once older than
    /// --min-age-secs; prints {"referenced": N, "deleted": M}. Serving dataplanes do this
    /// every hour by themselves.
    Gc(GcArgs),
}

/// Where an offline command finds a standalone server's storage.
#[derive(clap::Args, Debug)]
struct StorageArgs {
    /// Data directory of the standalone server.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Metadata store URL. [default: sqlite://DATA_DIR/meta.sqlite]
    #[arg(long, value_name = "URL", env = "MCP_STORE_URL")]
    store_url: Option<String>,
    /// Blob directory. [default: DATA_DIR/blobs]
    #[arg(long, value_name = "DIR", conflicts_with = "blob_url")]
    blob_dir: Option<PathBuf>,
    /// Blob store URL of the server's --blob-url:
    /// s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true, with the credentials in
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "URL", env = "MCP_BLOB_URL")]
    blob_url: Option<String>,
}

impl StorageArgs {
    /// The metadata store URL and the blob location; refuses a data directory without a
    /// store rather than creating an empty one.
    fn resolve(self) -> anyhow::Result<(String, BlobLocation)> {
        let data_dir = std::path::absolute(&self.data_dir)?;
        let store_url = match self.store_url {
            Some(url) => url,
            None => {
                let db = data_dir.join("meta.sqlite");
                if !db.is_file() {
                    anyhow::bail!(
                        "{}: not an MCP data directory (no meta.sqlite); give the server's --data-dir",
                        data_dir.display()
                    );
                }
                format!("sqlite://{}", db.display())
            }
        };
        let blobs = match (self.blob_url, self.blob_dir) {
            (Some(url), _) => config::blob_location_from_url(&url)?,
            (None, dir) => BlobLocation::Dir(dir.unwrap_or_else(|| data_dir.join("blobs"))),
        };
        Ok((store_url, blobs))
    }
}

#[derive(clap::Args, Debug)]
struct QuarantineArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(subcommand)]
    action: QuarantineAction,
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Keep bodies younger than this many seconds: they may belong to a write about to
    /// commit. 0 is safe only while no server writes (all stopped).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    min_age_secs: u64,
}

#[derive(Subcommand, Debug)]
enum QuarantineAction {
    /// One JSON object per line for each held message, oldest first.
    List {
        /// The tenant.
        #[arg(long, default_value = "example")]
        tenant: String,
        /// Only the messages held for this account.
        #[arg(long, value_name = "ADDRESS")]
        mailbox: Option<String>,
        /// Most entries (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One held message's entry, as JSON.
    Show {
        /// The quarantine id.
        id: String,
    },
    /// The held message as received, on stdout.
    Message {
        /// The quarantine id.
        id: String,
    },
    /// Store the message in the folder it was headed for (or INBOX).
    Release {
        /// The quarantine id.
        id: String,
    },
    /// Remove the message from the quarantine.
    Delete {
        /// The quarantine id.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
struct DataplaneArgs {
    /// The configuration file. Relative paths in it resolve against its directory.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Data directory instead of the file's dataDir. Paths of the file under dataDir (the
    /// SQLite file, the blob directory) move with it.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// IMAP listen address instead of the file's imap.
    #[arg(long, value_name = "ADDR")]
    imap: Option<String>,
    /// IMAPS listen address instead of the file's imaps.
    #[arg(long, value_name = "ADDR")]
    imaps: Option<String>,
    /// LMTP listen address instead of the file's lmtp.
    #[arg(long, value_name = "ADDR")]
    lmtp: Option<String>,
    /// Metrics listen address instead of the file's metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Admin API listen address instead of the file's admin.
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Connect to mode: service plugins at this host (IP address or DNS name) instead of
    /// their Service's name mcp-plugin-NAME.NAMESPACE.svc, which resolves only in the
    /// cluster; their certificate is still checked against the Service's name. For running
    /// the rendered configuration outside a pod.
    #[arg(long, value_name = "HOST")]
    plugin_service_host: Option<String>,
}

#[derive(clap::Args, Debug)]
struct StandaloneArgs {
    /// Directory of Tenant, Mailbox and Secret YAML files (*.yaml, *.yml).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_RESOURCES)]
    resources: PathBuf,
    /// Data directory: SQLite store, blobs, generated TLS certificate. Created if missing.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// IMAP listen address (plain text with STARTTLS).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_IMAP)]
    imap: String,
    /// IMAPS listen address (implicit TLS).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_IMAPS)]
    imaps: String,
    /// LMTP listen address (RFC 2033, plain text; for the local MTA).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_LMTP)]
    lmtp: String,
    /// Metrics listen address (HTTP: /metrics, /healthz).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_METRICS)]
    metrics: String,
    /// REST API listen address (HTTP: /api/v1, OpenAPI at /api/v1/openapi.json).
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_REST)]
    rest: String,
    /// Metadata store URL: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB.
    /// [default: sqlite://DATA_DIR/meta.sqlite]
    #[arg(long, value_name = "URL", env = "MCP_STORE_URL")]
    store_url: Option<String>,
    /// API key database of the REST API: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB
    /// (its own database, not the metadata store's). [default: sqlite://DATA_DIR/api.sqlite]
    #[arg(long, value_name = "URL", env = "MCP_API_STORE_URL")]
    api_store_url: Option<String>,
    /// File holding the bootstrap admin API key (mcp_<8>_<43>; not readable by other
    /// users), added on first use. Without it a key is generated when no usable admin key
    /// exists and printed once on stdout.
    #[arg(long, value_name = "FILE")]
    bootstrap_key_file: Option<PathBuf>,
    /// REST requests per second per API key or token. [default: 20]
    #[arg(long, value_name = "N")]
    rest_rate: Option<u32>,
    /// REST burst per API key or token. [default: 40]
    #[arg(long, value_name = "N")]
    rest_burst: Option<u32>,
    /// OIDC settings of the REST API (YAML or JSON: issuer, audience, roles; see
    /// docs/rest-api.md): bearer tokens of that issuer are accepted besides API keys.
    #[arg(long, value_name = "FILE", env = "MCP_OIDC_CONFIG")]
    oidc_config: Option<PathBuf>,
    /// Blob directory. [default: DATA_DIR/blobs]
    #[arg(long, value_name = "DIR", conflicts_with = "blob_url")]
    blob_dir: Option<PathBuf>,
    /// Blob store in S3 instead of a directory:
    /// s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true (region defaults to
    /// us-east-1, path_style to false, endpoint to AWS); the credentials come from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_name = "URL", env = "MCP_BLOB_URL")]
    blob_url: Option<String>,
    /// PEM certificate chain for IMAPS/STARTTLS. [default: self-signed, in DATA_DIR/tls]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds between `* OK Still here` keepalives during IDLE (1-300). [default: 120]
    #[arg(long, value_name = "SECS")]
    idle_keepalive_secs: Option<u64>,
    /// Mean seconds between two collections of orphaned message bodies; 0 turns it off.
    /// [default: 3600]
    #[arg(long, value_name = "SECS")]
    gc_interval_secs: Option<u64>,
    /// Keep orphaned bodies younger than this (at least 60). [default: 3600]
    #[arg(long, value_name = "SECS")]
    gc_min_age_secs: Option<u64>,
}

/// stderr for logs, ignoring write errors: with a closed stderr (a `| tee` that was
/// interrupted) tracing-subscriber would otherwise report the failure with `eprintln!`, which
/// panics, and a panicking log line in the signal task stopped the shutdown.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Pins glibc's mmap threshold at its initial 128 KiB.
///
/// By default glibc raises the threshold (up to 32 MiB) each time a large mmapped block is
/// freed, after which blocks that size come from the per-thread heaps and stay resident
/// when freed. One burst of logins (each argon2 check allocates 19 MiB) or of large APPENDs
/// then leaves hundreds of MiB resident for good; measured: 1,000 logins left 210 MiB
/// without this setting, 3 MiB with it. Setting the threshold explicitly disables the
/// adjustment (mallopt(3)).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only changes allocator parameters; it is called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() {}

fn main() -> ExitCode {
    pin_mmap_threshold();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli.command)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors carry their causes in their message; print it once, no backtrace.
            eprintln!("mcp: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Quarantine(a) => {
            use mcp_dataplane::standalone::quarantine::{self, Action};
            let (store_url, blobs) = a.storage.resolve()?;
            let action = match a.action {
                QuarantineAction::List {
                    tenant,
                    mailbox,
                    limit,
                } => Action::List {
                    tenant,
                    mailbox,
                    limit,
                },
                QuarantineAction::Show { id } => Action::Show(id),
                QuarantineAction::Message { id } => Action::Message(id),
                QuarantineAction::Release { id } => Action::Release(id),
                QuarantineAction::Delete { id } => Action::Delete(id),
            };
            let mut out = std::io::stdout();
            quarantine::run(&store_url, &blobs, action, &mut out).await?;
        }
        Command::Gc(a) => {
            let (store_url, blobs) = a.storage.resolve()?;
            let (meta, blobs) = mcp_dataplane::server::open_storage(&store_url, &blobs).await?;
            let report = mcp_dataplane::store::gc::collect(
                &meta,
                &blobs,
                std::time::Duration::from_secs(a.min_age_secs),
            )
            .await;
            meta.close().await;
            println!("{}", serde_json::to_string(&report?)?);
        }
        Command::Standalone(a) => {
            let settings = Settings {
                resources: Some(a.resources),
                data_dir: Some(a.data_dir),
                imap: Some(a.imap),
                imaps: Some(a.imaps),
                lmtp: Some(a.lmtp),
                metrics: Some(a.metrics),
                rest: Some(a.rest),
                store_url: a.store_url,
                api_store_url: a.api_store_url,
                bootstrap_key_file: a.bootstrap_key_file,
                rest_rate: a.rest_rate,
                rest_burst: a.rest_burst,
                oidc_config: a.oidc_config,
                blob_dir: a.blob_dir,
                blob_url: a.blob_url,
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                idle_keepalive_secs: a.idle_keepalive_secs,
                gc_interval_secs: a.gc_interval_secs,
                gc_min_age_secs: a.gc_min_age_secs,
            };
            let config = Config::from_settings(&settings)?;
            standalone::run(config).await?;
        }
        Command::Dataplane(a) => {
            let overrides = Overrides {
                data_dir: a.data_dir,
                imap: a.imap,
                imaps: a.imaps,
                lmtp: a.lmtp,
                metrics: a.metrics,
                admin: a.admin,
                plugin_service_host: a.plugin_service_host,
            };
            let config = managed::Config::load(&a.config, &overrides)?;
            managed::run(config).await?;
        }
    }
    Ok(())
}
