//! Accepting connections: one task per client, implicit TLS handshake where configured,
//! and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
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
    let mut sessions = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        let token = shutdown.child_token();
        sessions.spawn(async move {
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
        });
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
    Ok(())
}
