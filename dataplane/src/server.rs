//! The server assembly both modes share: `mcp standalone` ([`crate::standalone`]) and
//! `mcp dataplane` ([`crate::managed`]).
//!
//! A mode validates its own configuration and then goes through the same steps, in this
//! order, each a function here:
//!
//! 1. [`lock_data_dir`]: create the data directory (and a local blob directory) and take
//!    the data directory's lock, so one process serves one data directory.
//! 2. [`Listeners::bind`] (and [`bind`] for a mode's extra listener): bind before the store
//!    is touched, so an instance that cannot serve (port taken) changes nothing.
//! 3. [`open_storage`]: connect and migrate the metadata store, open the blob store (a
//!    local directory, or an S3 bucket whose reachability is checked).
//! 4. [`tls_acceptor`]: load (or generate) the certificate.
//! 5. [`serve`]: IMAP (STARTTLS), IMAPS, LMTP, metrics and the mode's extra servers until the
//!    shutdown token is cancelled (by [`until_signal`] on Ctrl-C or SIGTERM); open IMAP
//!    sessions are told `* BYE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::imap::{ImapContext, Limits, TlsMode};
use crate::ingest::Ingest;
use crate::lmtp::{LmtpContext, LmtpLimits, StoreDeliverer};
use crate::metrics::Metrics;
use crate::pipeline::Pipelines;
use crate::pipeline::reload::Source;
use crate::plugin_host::PluginHost;
use crate::store::{BlobError, BlobLocation, BlobStore, MetadataStore, StoreError};
use crate::tls::{TlsError, TlsSource};

/// The lock file in the data directory, held (flock) while a process serves from it.
pub const LOCK_FILE: &str = "lock";

/// Why a server could not start, or stopped with an error. Every variant names the
/// directory, file, setting or server involved.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
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
    /// The metadata store could not be opened.
    #[error("metadata store: {0}")]
    Store(#[from] StoreError),
    /// The blob store could not be opened (directory, S3 bucket).
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// A TLS certificate could not be loaded or generated.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("{field} {addr}: cannot listen: {source}")]
    Bind {
        /// The setting, e.g. `--imap` or `imap`.
        field: &'static str,
        /// The address.
        addr: SocketAddr,
        /// I/O error.
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("{name} server failed: {source}")]
    Serve {
        /// `imap`, `imaps`, `lmtp`, `metrics`, `admin` or `rest`.
        name: &'static str,
        /// I/O error.
        source: std::io::Error,
    },
    /// A server task panicked.
    #[error("{name} server panicked")]
    Panicked {
        /// `imap`, `imaps`, `metrics`, `admin`, or `tls` while loading a certificate.
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
    /// LMTP (RFC 2033).
    pub lmtp: SocketAddr,
    /// Metrics HTTP.
    pub metrics: SocketAddr,
    /// The admin API (HTTPS), in `mcp dataplane` only.
    pub admin: Option<SocketAddr>,
    /// The REST API (`/api/v1`, HTTP), in `mcp standalone` only.
    pub rest: Option<SocketAddr>,
}

/// Which mode is serving; only changes log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `mcp standalone`.
    Standalone,
    /// `mcp dataplane`.
    Dataplane,
}

/// The data directory's lock, held until dropped (at process exit).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Creates `data_dir` and `blob_dir` (a local blob directory; `None` with S3) if missing
/// and locks `data_dir/lock`.
///
/// One process per data directory: a second one would serve from the same store, but
/// change notifications (IDLE, NOOP) do not cross processes, and SQLite would see two
/// writers.
///
/// # Errors
/// [`ServerError::CreateDir`] naming the directory or lock file,
/// [`ServerError::DataDirLocked`] when another process holds the lock.
pub fn lock_data_dir(data_dir: &Path, blob_dir: Option<&Path>) -> Result<DataDirLock, ServerError> {
    for dir in std::iter::once(data_dir).chain(blob_dir) {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let lock_path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| ServerError::CreateDir {
            path: lock_path.clone(),
            source,
        })?;
    if file.try_lock().is_err() {
        return Err(ServerError::DataDirLocked { path: lock_path });
    }
    Ok(DataDirLock { _file: file })
}

/// Binds one listener; `field` names the setting in errors (`--imap`, `admin`, ...).
///
/// # Errors
/// [`ServerError::Bind`].
pub async fn bind(field: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            field,
            addr,
            source,
        })
}

/// The address `listener` (bound for `field` at `addr`) actually listens on.
///
/// # Errors
/// [`ServerError::Bind`] when the operating system cannot tell.
pub fn bound_addr(
    field: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        field,
        addr,
        source,
    })
}

/// One address to listen on and the setting it comes from (for errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The setting, e.g. `--imap` or `imap`.
    pub field: &'static str,
    /// The address.
    pub addr: SocketAddr,
}

/// The IMAP, IMAPS, LMTP and metrics listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    imap: TcpListener,
    imaps: TcpListener,
    lmtp: TcpListener,
    metrics: TcpListener,
    /// Where they listen (`admin` and `rest` are `None`; a mode with an admin API or a
    /// REST API fills it in).
    pub bound: BoundAddrs,
}

impl Listeners {
    /// Binds the four listeners in this order.
    ///
    /// # Errors
    /// [`ServerError::Bind`] naming the first setting that could not be bound.
    pub async fn bind(
        imap: Listen,
        imaps: Listen,
        lmtp: Listen,
        metrics: Listen,
    ) -> Result<Self, ServerError> {
        let imap_l = bind(imap.field, imap.addr).await?;
        let imaps_l = bind(imaps.field, imaps.addr).await?;
        let lmtp_l = bind(lmtp.field, lmtp.addr).await?;
        let metrics_l = bind(metrics.field, metrics.addr).await?;
        let bound = BoundAddrs {
            imap: bound_addr(imap.field, &imap_l, imap.addr)?,
            imaps: bound_addr(imaps.field, &imaps_l, imaps.addr)?,
            lmtp: bound_addr(lmtp.field, &lmtp_l, lmtp.addr)?,
            metrics: bound_addr(metrics.field, &metrics_l, metrics.addr)?,
            admin: None,
            rest: None,
        };
        Ok(Self {
            imap: imap_l,
            imaps: imaps_l,
            lmtp: lmtp_l,
            metrics: metrics_l,
            bound,
        })
    }
}

/// Connects (creating and migrating as needed) the metadata store at `store_url` and opens
/// the blob store at `blobs` (for S3: checks that the bucket answers).
///
/// # Errors
/// [`ServerError::Store`] or [`ServerError::Blob`].
pub async fn open_storage(
    store_url: &str,
    blobs: &BlobLocation,
) -> Result<(MetadataStore, BlobStore), ServerError> {
    let store = MetadataStore::connect(store_url).await?;
    let blob_store = BlobStore::open_at(blobs).await?;
    tracing::info!(blobs = %blobs, "blob store opened");
    Ok((store, blob_store))
}

/// A TLS acceptor for `source`, built on a blocking thread (file reads, and key generation
/// for a missing self-signed certificate).
///
/// # Errors
/// [`ServerError::Tls`] naming the file; [`ServerError::Panicked`] (`tls`) if the loader
/// panicked.
pub async fn tls_acceptor(source: TlsSource) -> Result<TlsAcceptor, ServerError> {
    Ok(
        tokio::task::spawn_blocking(move || crate::tls::acceptor(&source))
            .await
            .map_err(|_| ServerError::Panicked { name: "tls" })??,
    )
}

/// What [`serve`] runs for IMAP and LMTP.
pub struct Imap {
    /// The bound listeners.
    pub listeners: Listeners,
    /// Metadata store.
    pub store: MetadataStore,
    /// Message bodies.
    pub blobs: BlobStore,
    /// For IMAPS and STARTTLS.
    pub acceptor: TlsAcceptor,
    /// Interval of IDLE keepalives, seconds.
    pub idle_keepalive_secs: u64,
    /// The pipelines in force (loaded at start-up).
    pub pipelines: Arc<Pipelines>,
    /// Where they come from, polled for changes ([`crate::pipeline::reload::watch`]);
    /// `None` when the configuration names no pipelines.
    pub pipeline_source: Option<Source>,
    /// The connections to external plugins (their state, metrics, and the reloads).
    pub plugins: Arc<PluginHost>,
    /// When orphaned bodies are collected ([`crate::store::gc::run`]).
    pub orphan_gc: crate::store::gc::Schedule,
}

/// A mode's extra server: its name (`admin`) and the future that serves until the shutdown
/// token it was given is cancelled.
pub type Extra = (&'static str, BoxFuture<'static, std::io::Result<()>>);

/// Serves IMAP (STARTTLS), IMAPS, LMTP, metrics and `extra` until `shutdown` is cancelled or one
/// of them stops; calls `ready` with `bound` once every server is accepting. The first
/// server to end brings the others down; open IMAP sessions are told `* BYE`.
///
/// # Errors
/// The first [`ServerError::Serve`] or [`ServerError::Panicked`] of a server that failed.
pub async fn serve(
    mode: Mode,
    imap: Imap,
    extra: Vec<Extra>,
    bound: BoundAddrs,
    shutdown: CancellationToken,
    ready: impl FnOnce(BoundAddrs),
) -> Result<(), ServerError> {
    let metrics = Arc::new(Metrics::with_plugins(imap.plugins.metrics()));
    let pipeline_metrics = Arc::clone(metrics.pipeline());
    pipeline_metrics.reload(true);
    let gc = crate::store::gc::run(
        imap.store.clone(),
        imap.blobs.clone(),
        imap.orphan_gc,
        shutdown.clone(),
    );
    let ingest = Ingest::new(
        imap.store.clone(),
        imap.blobs.clone(),
        Arc::clone(&imap.pipelines),
        Arc::clone(metrics.pipeline()),
    );
    let lmtp_ctx = Arc::new(LmtpContext {
        deliverer: Arc::new(StoreDeliverer::new(imap.store.clone(), Arc::clone(&ingest))),
        hostname: crate::lmtp::default_hostname(),
        limits: LmtpLimits::default(),
        metrics: Arc::clone(&metrics),
    });
    let ctx = Arc::new(ImapContext {
        store: imap.store.clone(),
        blobs: imap.blobs,
        ingest,
        auth: Authenticator::new(imap.store),
        tls: Some(imap.acceptor),
        limits: Limits {
            idle_keepalive_secs: imap.idle_keepalive_secs,
            ..Limits::default()
        },
        metrics: Arc::clone(&metrics),
    });
    let Listeners {
        imap: imap_listener,
        imaps: imaps_listener,
        lmtp: lmtp_listener,
        metrics: metrics_listener,
        ..
    } = imap.listeners;

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
            "lmtp",
            crate::lmtp::serve(lmtp_ctx, lmtp_listener, token).await,
        )
    });
    let token = shutdown.clone();
    // Standalone has no admin API: its read-only plugin state is served next to /metrics
    // (loopback by default). `mcp dataplane` serves it on the authenticated admin API.
    let state_routes = match mode {
        Mode::Standalone => crate::admin::plugins_router(Arc::clone(&imap.plugins)),
        Mode::Dataplane => axum::Router::new(),
    };
    tasks.spawn(async move {
        (
            "metrics",
            crate::metrics::serve(metrics_listener, metrics, state_routes, token).await,
        )
    });
    if let Some(source) = imap.pipeline_source {
        let watcher = crate::pipeline::reload::watch(
            imap.pipelines,
            Arc::clone(&imap.plugins),
            source,
            crate::pipeline::reload::DEFAULT_POLL,
            pipeline_metrics,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            watcher.await;
            ("pipelines", Ok(()))
        });
    }
    tasks.spawn(async move {
        gc.await;
        ("orphan-gc", Ok(()))
    });
    for (name, server) in extra {
        tasks.spawn(async move { (name, server.await) });
    }
    match mode {
        Mode::Standalone => tracing::info!(
            imap = %bound.imap,
            imaps = %bound.imaps,
            lmtp = %bound.lmtp,
            metrics = %bound.metrics,
            rest = %bound.rest.map(|a| a.to_string()).unwrap_or_default(),
            "MCP standalone serving"
        ),
        Mode::Dataplane => tracing::info!(
            imap = %bound.imap,
            imaps = %bound.imaps,
            lmtp = %bound.lmtp,
            metrics = %bound.metrics,
            admin = %bound.admin.map(|a| a.to_string()).unwrap_or_default(),
            "MCP dataplane serving"
        ),
    }
    ready(bound);

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if !shutdown.is_cancelled() {
            tracing::warn!("a server stopped unexpectedly; shutting down the others");
            shutdown.cancel();
        }
        let error = match joined {
            Ok((_, Ok(()))) => None,
            Ok((name, Err(source))) => Some(ServerError::Serve { name, source }),
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                Some(ServerError::Panicked { name: "server" })
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
            match mode {
                Mode::Standalone => tracing::info!("MCP standalone stopped"),
                Mode::Dataplane => tracing::info!("MCP dataplane stopped"),
            }
            Ok(())
        }
    }
}

/// How long [`accept_loop`] waits for open sessions after shutdown before aborting them.
pub const SESSION_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The accept loop of the TCP servers (IMAP, IMAPS, LMTP): accepts connections on
/// `listener` until `shutdown` is cancelled and runs `session(tcp, peer, token)` for each on
/// its own task, with a child token of `shutdown`; then stops accepting, waits up to
/// [`SESSION_DRAIN`] for the sessions to end and aborts the rest. An accept error (EMFILE and
/// friends) is logged under `name` and retried after 100 ms rather than spun on.
pub async fn accept_loop<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    shutdown: CancellationToken,
    mut session: F,
) where
    F: FnMut(tokio::net::TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(server = name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        sessions.spawn(session(tcp, peer, shutdown.child_token()));
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(SESSION_DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
}

/// Runs `run` with a shutdown token that the first Ctrl-C (SIGINT) or SIGTERM cancels.
///
/// # Errors
/// [`ServerError::Signal`] (converted into `E`) when the SIGTERM handler cannot be
/// installed; otherwise whatever `run` returns.
pub async fn until_signal<F, Fut, E>(run: F) -> Result<(), E>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: From<ServerError>,
{
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(signals()?, shutdown.clone()));
    let result = run(shutdown).await;
    signals.abort();
    result
}

#[cfg(unix)]
type Signals = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Signals = ();

/// Installs the SIGTERM handler now, so that a failure is a start-up error.
fn signals() -> Result<Signals, ServerError> {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ServerError::Signal)
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
