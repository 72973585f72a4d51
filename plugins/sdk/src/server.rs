//! Serving a plugin: `mcp.plugin.v1.MailProcessor` and `grpc.health.v1.Health` on a TCP
//! address, a Unix socket, or TCP with mutual TLS; graceful shutdown on SIGTERM/SIGINT or a
//! caller's future.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mcp_crds::plugin::{ENV_TLS_CERT, ENV_TLS_CLIENT_CA, ENV_TLS_KEY};
use mcp_plugin_proto::v1::mail_processor_server::MailProcessorServer;
use tokio::net::{TcpListener, UnixListener};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Largest HTTP/2 frame the plugin accepts, octets: a whole 64 KiB body chunk (and its
/// gRPC framing) arrives in one DATA frame instead of five of the 16 KiB default.
const MAX_FRAME: u32 = 128 * 1024;
/// HTTP/2 flow-control window per stream, octets: a 1 MiB buffered body or sixteen 64 KiB
/// chunks are sent without waiting for a WINDOW_UPDATE.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// HTTP/2 flow-control window per connection, octets (several concurrent calls).
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
use tonic_health::ServingStatus;

use crate::config::{ConfigCache, Configure};
use crate::info::PluginInfo;
use crate::listen::{Listen, ListenError};
use crate::service::Service;

/// The gRPC name of the plugin service, as health checks name it.
const SERVICE_NAME: &str = <MailProcessorServer<Service> as tonic::server::NamedService>::NAME;

/// Default [`Server::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a plugin could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is invalid.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The declaration cannot be served ([`PluginInfo::validate`]).
    #[error("invalid plugin declaration: {0}")]
    Info(String),
    /// Binding the address (or removing a stale socket) failed.
    #[error("cannot listen on {listen}: {source}")]
    Bind {
        /// The address.
        listen: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS environment is incomplete or its files are unreadable or invalid.
    #[error("TLS: {0}")]
    Tls(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// PEM files of mutual TLS (service mode): the server's certificate chain and key, and the CA
/// that client certificates must chain to (a client without one is refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain ([`ENV_TLS_CERT`]).
    pub cert: PathBuf,
    /// PEM private key ([`ENV_TLS_KEY`]).
    pub key: PathBuf,
    /// PEM CA bundle for client certificates ([`ENV_TLS_CLIENT_CA`]).
    pub client_ca: PathBuf,
}

impl TlsFiles {
    /// The files named by [`ENV_TLS_CERT`], [`ENV_TLS_KEY`] and [`ENV_TLS_CLIENT_CA`]; `None`
    /// when none is set.
    ///
    /// # Errors
    /// [`ServeError::Tls`] when only some are set.
    pub fn from_env() -> Result<Option<Self>, ServeError> {
        let vars = [ENV_TLS_CERT, ENV_TLS_KEY, ENV_TLS_CLIENT_CA].map(std::env::var_os);
        match vars {
            [None, None, None] => Ok(None),
            [Some(cert), Some(key), Some(client_ca)] => Ok(Some(Self {
                cert: cert.into(),
                key: key.into(),
                client_ca: client_ca.into(),
            })),
            _ => Err(ServeError::Tls(format!(
                "set all of {ENV_TLS_CERT}, {ENV_TLS_KEY} and {ENV_TLS_CLIENT_CA}, or none"
            ))),
        }
    }

    async fn server_config(&self) -> Result<ServerTlsConfig, ServeError> {
        let read = |p: &Path| {
            let p = p.to_owned();
            async move {
                tokio::fs::read(&p)
                    .await
                    .map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())))
            }
        };
        let cert = read(&self.cert).await?;
        let key = read(&self.key).await?;
        let ca = read(&self.client_ca).await?;
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca))
            .client_auth_optional(false))
    }
}

/// How the server learns to stop.
enum Stop {
    /// SIGTERM or SIGINT.
    Signals,
    /// A caller's future (tests), besides no signal.
    Future(BoxFuture<'static, ()>),
}

/// A plugin server under construction. [`crate::serve`] is `Server::new(..).serve()` with
/// everything from the environment; tests set the address and the shutdown explicitly.
pub struct Server {
    info: PluginInfo,
    configure: Arc<dyn Configure>,
    listen: Option<Listen>,
    tls: Option<Option<TlsFiles>>,
    stop: Stop,
    drain_timeout: Duration,
}

impl Server {
    /// A server for `info`, building plugins with `configure` ([`crate::Fixed`],
    /// [`crate::FromConfig`]). By default it listens on [`Listen::from_env`], uses TLS when
    /// [`TlsFiles::from_env`] says so and stops on SIGTERM or SIGINT.
    pub fn new(info: PluginInfo, configure: impl Configure) -> Self {
        Self {
            info,
            configure: Arc::new(configure),
            listen: None,
            tls: None,
            stop: Stop::Signals,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// How long calls in progress may finish after the stop signal before the server exits
    /// anyway. Default [`DEFAULT_DRAIN_TIMEOUT`].
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Listens on `listen` instead of the environment's address (`tcp://127.0.0.1:0` picks a
    /// free port: see [`Bound::local_addr`]).
    pub fn listen(mut self, listen: Listen) -> Self {
        self.listen = Some(listen);
        self
    }

    /// Serves with mutual TLS from `tls` (or plain when `None`) instead of the environment.
    pub fn tls(mut self, tls: Option<TlsFiles>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Stops when `shutdown` completes, instead of on SIGTERM/SIGINT.
    pub fn shutdown(mut self, shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        self.stop = Stop::Future(Box::pin(shutdown));
        self
    }

    /// Binds the address (removing a stale Unix socket file first) and loads TLS.
    ///
    /// # Errors
    /// [`ServeError`] for a bad declaration, address or TLS setup, or a failed bind.
    pub async fn bind(self) -> Result<Bound, ServeError> {
        self.info.validate().map_err(ServeError::Info)?;
        let listen = match self.listen {
            Some(l) => l,
            None => Listen::from_env()?,
        };
        let tls = match self.tls {
            Some(t) => t,
            None => TlsFiles::from_env()?,
        };
        let tls = match tls {
            Some(files) => Some(files.server_config().await?),
            None => None,
        };
        let bind_err = |source| ServeError::Bind {
            listen: listen.to_string(),
            source,
        };
        let (listener, local) = match &listen {
            Listen::Tcp(addr) => {
                let l = TcpListener::bind(addr).await.map_err(bind_err)?;
                let local = Listen::Tcp(l.local_addr().map_err(bind_err)?);
                (Listener::Tcp(l), local)
            }
            Listen::Unix(path) => {
                remove_stale_socket(path).await.map_err(bind_err)?;
                let l = UnixListener::bind(path).map_err(bind_err)?;
                (Listener::Unix(l, path.clone()), listen.clone())
            }
        };
        Ok(Bound {
            info: Arc::new(self.info),
            configure: self.configure,
            listener,
            local,
            tls,
            stop: self.stop,
            drain_timeout: self.drain_timeout,
        })
    }

    /// Binds and serves until stopped.
    ///
    /// # Errors
    /// As [`Server::bind`] and [`Bound::serve`].
    pub async fn serve(self) -> Result<(), ServeError> {
        self.bind().await?.serve().await
    }
}

/// Removes a socket file left by an earlier run; refuses to remove anything that is not a
/// socket.
async fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.file_type().is_socket() => tokio::fs::remove_file(path).await,
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A server bound to its address, ready to serve.
pub struct Bound {
    info: Arc<PluginInfo>,
    configure: Arc<dyn Configure>,
    listener: Listener,
    local: Listen,
    tls: Option<ServerTlsConfig>,
    stop: Stop,
    drain_timeout: Duration,
}

impl Bound {
    /// The address bound (with the port chosen for `tcp://IP:0`).
    pub fn local_addr(&self) -> &Listen {
        &self.local
    }

    /// The largest gRPC message accepted or sent, octets: a buffered message carries the
    /// header section twice (raw and as fields) besides the body, plus 1 MiB for the rest.
    fn max_message(&self) -> usize {
        let body = usize::try_from(self.info.max_body_size).unwrap_or(usize::MAX);
        body.saturating_mul(2).saturating_add(1 << 20)
    }

    /// Serves until the stop signal or future, then reports `NOT_SERVING` on the health
    /// service (and ends its Watch streams) and drains the calls in progress for up to the
    /// drain timeout. A Unix socket file is removed at the end.
    ///
    /// # Errors
    /// [`ServeError::Transport`] when the gRPC server fails, [`ServeError::Bind`] when the
    /// signal handlers cannot be installed.
    pub async fn serve(self) -> Result<(), ServeError> {
        let max = self.max_message();
        let configs = Arc::new(ConfigCache::new(self.configure));
        let service = MailProcessorServer::new(Service::new(Arc::clone(&self.info), configs))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<MailProcessorServer<Service>>().await;
        let stop: Pin<Box<dyn Future<Output = ()> + Send>> = match self.stop {
            Stop::Future(f) => f,
            Stop::Signals => {
                let signals = signals().map_err(|source| ServeError::Bind {
                    listen: "SIGTERM/SIGINT handlers".into(),
                    source,
                })?;
                Box::pin(signals)
            }
        };
        let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            stop.await;
            tracing::info!("shutting down: health NOT_SERVING, draining calls");
            let mut health = health;
            for name in [SERVICE_NAME, ""] {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
                // Ends the health Watch streams (after they deliver NOT_SERVING), which would
                // otherwise hold the drain open forever; Check answers NOT_FOUND from here on.
                health.clear_service_status(name).await;
            }
            let _ = draining.send(());
        };
        let drain = self.drain_timeout;
        let drain_timeout = async move {
            if drain_started.await.is_ok() {
                tokio::time::sleep(drain).await;
            } else {
                futures::future::pending::<()>().await;
            }
        };
        let mut builder = tonic::transport::Server::builder()
            .max_frame_size(MAX_FRAME)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW);
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls)?;
        }
        let router = builder.add_service(health_service).add_service(service);
        tracing::info!(listen = %self.local, plugin = %self.info.name, version = %self.info.version, "serving");
        let (served, socket) = match self.listener {
            Listener::Tcp(l) => {
                let incoming = TcpIncoming::from(l).with_nodelay(Some(true));
                let serve = router.serve_with_incoming_shutdown(incoming, shutdown);
                (bounded(serve, drain_timeout).await, None)
            }
            Listener::Unix(l, path) => {
                let incoming = futures::stream::unfold(l, |l| async move {
                    let conn = l.accept().await.map(|(s, _)| s);
                    Some((conn, l))
                });
                let serve = router.serve_with_incoming_shutdown(incoming, shutdown);
                (bounded(serve, drain_timeout).await, Some(path))
            }
        };
        if let Some(path) = socket
            && let Err(e) = tokio::fs::remove_file(&path).await
        {
            tracing::debug!(path = %path.display(), error = %e, "socket file not removed");
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Runs `serve` until it ends, or until `drain_timeout` completes (calls still in progress
/// are then abandoned).
async fn bounded(
    serve: impl Future<Output = Result<(), tonic::transport::Error>>,
    drain_timeout: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tokio::select! {
        r = serve => r,
        () = drain_timeout => {
            tracing::warn!("drain timed out: abandoning the calls in progress");
            Ok(())
        }
    }
}

/// Completes on the first SIGTERM or SIGINT.
fn signals() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    })
}
