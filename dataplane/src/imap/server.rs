//! Accepting connections: one task per client, implicit TLS handshake where configured,
//! and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::conn::IoStream;
use super::session::Session;
use super::{ImapContext, TlsMode};

/// Accepts connections on `listener` until `shutdown` is cancelled, then stops accepting,
/// lets sessions send `* BYE`, and waits up to 5 s for them to end.
///
/// # Errors
/// Only a failure of the listener itself; per-connection errors end that connection.
pub async fn serve(
    ctx: Arc<ImapContext>,
    listener: TcpListener,
    mode: TlsMode,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    crate::server::accept_loop("imap", listener, shutdown, move |tcp, peer, token| {
        let ctx = ctx.clone();
        async move {
            let io = match mode {
                TlsMode::StartTls => IoStream::Plain(tcp),
                TlsMode::Implicit => {
                    let Some(acceptor) = ctx.tls.clone() else {
                        return;
                    };
                    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => IoStream::Tls(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            Session::new(ctx, io, peer.to_string(), token).run().await;
        }
    })
    .await;
    Ok(())
}
