//! HTTPS for the admin API: a TCP listener whose connections complete a TLS handshake before
//! axum sees them.
//!
//! Handshakes run in their own tasks, at most [`MAX_HANDSHAKES`] at a time and each within
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and sends nothing holds up neither the
//! accept loop nor other clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections are closed at once.
pub const MAX_HANDSHAKES: usize = 64;

/// Accepted connections after their TLS handshake, for [`axum::serve()`].
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` with `acceptor` until `shutdown` is cancelled.
    ///
    /// # Errors
    /// The I/O error of `tcp.local_addr()`.
    pub fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(MAX_HANDSHAKES);
        tokio::spawn(accept_loop(tcp, acceptor, tx, shutdown));
        Ok(Self { incoming, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "admin API: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::warn!(%peer, "admin API: too many TLS handshakes in progress; connection closed");
            continue;
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "admin API: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "admin API: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop ended (shutdown): axum stops calling once it sees the
            // shutdown too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `router` over HTTPS on `listener` until `shutdown` is cancelled; requests in
/// progress are completed.
///
/// # Errors
/// The I/O error of the listener's local address (the server itself does not fail).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tls = TlsListener::new(listener, acceptor, shutdown.clone())?;
    tracing::info!(addr = %tls.local, "admin API listening (HTTPS)");
    axum::serve(tls, router)
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await
}
