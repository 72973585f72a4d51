//! The standalone mode: one process that serves IMAP from a local data directory, configured
//! by the YAML resources of a directory (DESIGN.md §1, "Standalone").
//!
//! [`run`] does, in order: validate the resources, open the store and blob directory, apply
//! the resources ([`apply`]), build the TLS acceptor, bind the IMAP (STARTTLS), IMAPS and
//! metrics listeners, and serve until Ctrl-C (SIGINT) or SIGTERM; then it stops accepting,
//! lets open sessions end (the IMAP server sends `* BYE`) and returns.
//!
//! Data directory layout (defaults):
//! ```text
//! DATA/
//!   meta.sqlite     metadata store (unless --store-url points elsewhere)
//!   blobs/          message bodies, content-addressed (unless --blob-dir)
//!   tls/cert.pem    self-signed certificate for localhost (unless --tls-cert/--tls-key)
//!   tls/key.pem     its private key, mode 0600
//!   apply.key       key of the account digests, mode 0600
//! ```

pub mod apply;
pub mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::imap::{ImapContext, Limits, TlsMode};
use crate::metrics::Metrics;
use crate::store::{BlobError, BlobStore, MetadataStore, StoreError};
use crate::tls::TlsError;

pub use apply::ApplyError;
pub use config::{Config, ConfigError, Settings};

/// File name of the digest key inside the data directory.
pub const DIGEST_KEY_FILE: &str = "apply.key";

/// Why the standalone server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A directory could not be created.
    #[error("{path}: cannot create directory: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// Another process holds the data directory (its `lock` file).
    #[error("{path}: the data directory is in use by another mcp process")]
    DataDirLocked {
        /// The lock file.
        path: PathBuf,
    },
    /// The resources are unreadable or invalid, or could not be applied.
    #[error("resources: {0}")]
    Apply(#[from] ApplyError),
    /// The metadata store could not be opened.
    #[error("metadata store: {0}")]
    Store(#[from] StoreError),
    /// The blob directory could not be opened.
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// The TLS certificate could not be loaded or generated.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("{field} {addr}: cannot listen: {source}")]
    Bind {
        /// The setting, e.g. `--imap`.
        field: &'static str,
        /// The address.
        addr: SocketAddr,
        /// I/O error.
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("{name} server failed: {source}")]
    Serve {
        /// `imap`, `imaps` or `metrics`.
        name: &'static str,
        /// I/O error.
        source: std::io::Error,
    },
    /// A server task panicked.
    #[error("{name} server panicked")]
    Panicked {
        /// `imap`, `imaps` or `metrics`.
        name: &'static str,
    },
    /// Installing the SIGTERM handler failed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Addresses the servers actually listen on (differs from the configuration for port 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundAddrs {
    /// IMAP (STARTTLS).
    pub imap: SocketAddr,
    /// IMAPS (implicit TLS).
    pub imaps: SocketAddr,
    /// Metrics HTTP.
    pub metrics: SocketAddr,
}

/// Runs the standalone server until Ctrl-C or SIGTERM, then shuts down cleanly.
///
/// # Errors
/// [`StandaloneError`] for anything that prevents start-up (naming the setting, file or
/// resource), or a server that fails while running.
pub async fn run(config: Config) -> Result<(), StandaloneError> {
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(signals()?, shutdown.clone()));
    let result = run_until(config, shutdown, |_| {}).await;
    signals.abort();
    result
}

/// The lock file in the data directory, held (flock) while a process serves from it.
const LOCK_FILE: &str = "lock";

/// Like [`run`], but stops when `shutdown` is cancelled (not on signals), and calls `ready`
/// with the bound addresses once every listener accepts connections.
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    config: Config,
    shutdown: CancellationToken,
    ready: impl FnOnce(BoundAddrs),
) -> Result<(), StandaloneError> {
    // Validate the resources before touching the store, so a typo fails fast.
    let set = apply::read_dir(&config.resources)?;
    let (tenants, mailboxes, secrets) = set.counts();
    tracing::info!(dir = %config.resources.display(), tenants, mailboxes, secrets, "resources read");

    for dir in [&config.data_dir, &config.blob_dir] {
        std::fs::create_dir_all(dir).map_err(|source| StandaloneError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    // One process per data directory: a second one would apply resources and serve from the
    // same store, but change notifications (IDLE, NOOP) do not cross processes.
    let lock_path = config.data_dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StandaloneError::CreateDir {
            path: lock_path.clone(),
            source,
        })?;
    if lock.try_lock().is_err() {
        return Err(StandaloneError::DataDirLocked { path: lock_path });
    }

    // Bind before touching the store, so that an instance that cannot serve (port taken)
    // changes nothing.
    let bind = |field: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StandaloneError::Bind {
                field,
                addr,
                source,
            })
    };
    let imap_listener = bind("--imap", config.imap).await?;
    let imaps_listener = bind("--imaps", config.imaps).await?;
    let metrics_listener = bind("--metrics", config.metrics).await?;

    let key = apply::DigestKey::load_or_create(&config.data_dir.join(DIGEST_KEY_FILE))?;
    let accounts = apply::desired_accounts(&set, &key)?;

    let store = MetadataStore::connect(&config.store_url).await?;
    let blobs = BlobStore::open(config.blob_dir.clone()).await?;
    let report = apply::apply(&store, &accounts).await?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        "resources applied"
    );

    let tls_source = config.tls.clone();
    let acceptor = tokio::task::spawn_blocking(move || crate::tls::acceptor(&tls_source))
        .await
        .map_err(|_| StandaloneError::Panicked { name: "tls" })??;
    let local = |field: &'static str, l: &TcpListener, addr: SocketAddr| {
        l.local_addr().map_err(|source| StandaloneError::Bind {
            field,
            addr,
            source,
        })
    };
    let bound = BoundAddrs {
        imap: local("--imap", &imap_listener, config.imap)?,
        imaps: local("--imaps", &imaps_listener, config.imaps)?,
        metrics: local("--metrics", &metrics_listener, config.metrics)?,
    };

    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(ImapContext {
        store: store.clone(),
        blobs,
        auth: Authenticator::new(store),
        tls: Some(acceptor),
        limits: Limits {
            idle_keepalive_secs: config.idle_keepalive_secs,
            ..Limits::default()
        },
        metrics: Arc::clone(&metrics),
    });

    let mut tasks: JoinSet<(&'static str, std::io::Result<()>)> = JoinSet::new();
    let token = shutdown.clone();
    let c = Arc::clone(&ctx);
    tasks.spawn(async move {
        (
            "imap",
            crate::imap::serve(c, imap_listener, TlsMode::StartTls, token).await,
        )
    });
    let token = shutdown.clone();
    tasks.spawn(async move {
        (
            "imaps",
            crate::imap::serve(ctx, imaps_listener, TlsMode::Implicit, token).await,
        )
    });
    let token = shutdown.clone();
    tasks.spawn(async move {
        (
            "metrics",
            crate::metrics::serve(metrics_listener, metrics, token).await,
        )
    });
    tracing::info!(
        imap = %bound.imap,
        imaps = %bound.imaps,
        metrics = %bound.metrics,
        "MCP standalone serving"
    );
    ready(bound);

    // The first server to end (normally because of the shutdown) brings the others down.
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if !shutdown.is_cancelled() {
            tracing::warn!("a server stopped unexpectedly; shutting down the others");
            shutdown.cancel();
        }
        let error = match joined {
            Ok((_, Ok(()))) => None,
            Ok((name, Err(source))) => Some(StandaloneError::Serve { name, source }),
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                Some(StandaloneError::Panicked { name: "server" })
            }
        };
        if let Some(e) = error {
            tracing::error!(error = %e, "server error");
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("MCP standalone stopped");
            Ok(())
        }
    }
}

#[cfg(unix)]
type Signals = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Signals = ();

/// Installs the SIGTERM handler now, so that a failure is a start-up error.
fn signals() -> Result<Signals, StandaloneError> {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(StandaloneError::Signal)
    }
    #[cfg(not(unix))]
    Ok(())
}

/// Cancels `token` on the first Ctrl-C (SIGINT) or SIGTERM.
#[cfg_attr(not(unix), allow(unused_mut, unused_variables))]
async fn cancel_on_signal(mut term: Signals, token: CancellationToken) {
    #[cfg(unix)]
    let terminated = term.recv();
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::error!(error = %e, "cannot listen for Ctrl-C; use SIGTERM to stop");
                std::future::pending::<()>().await;
            }
        }
        _ = terminated => {}
    }
    // Cancel first: logging can fail (a closed stderr) and must not stop the shutdown.
    token.cancel();
    tracing::info!("shutdown requested");
}
