//! The LMTP server (RFC 2033): local delivery from an MTA such as Postfix into the
//! recipients' mailboxes (DESIGN.md §1, §4 `deliver` stage).
//!
//! - [`session`] is the command state machine (LHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP,
//!   VRFY, QUIT) over the `smtp-proto` receivers; replies carry RFC 3463 enhanced status
//!   codes ([`Reply`]); after the message each accepted recipient gets its own reply, in RCPT
//!   order (RFC 2033 §4.2).
//! - [`deliver`] is the boundary to the rest of the dataplane: [`Deliverer`] checks
//!   recipients and delivers; [`StoreDeliverer`] stores into the INBOX.
//! - Extensions advertised: PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8, SIZE,
//!   CHUNKING. `docs/lmtp.md` lists every reply.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub mod deliver;
pub mod metrics;
pub mod reply;
mod session;
mod trace;

#[cfg(test)]
mod tests;

pub use deliver::{Deliverer, Recipient, StoreDeliverer};
pub use metrics::LmtpMetrics;
pub use reply::{EnhancedStatus, Reply};

use crate::metrics::Metrics;
use session::Session;

/// Limits that protect the server from hostile or broken clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmtpLimits {
    /// Largest message accepted, octets of content as received (before trace fields);
    /// advertised as `SIZE` (RFC 1870). Larger: `552 5.3.4`, the connection stays usable.
    pub max_message_size: usize,
    /// Accepted recipients per transaction; more get `452 4.5.3` (RFC 5321 §4.5.3.1.8
    /// requires at least 100).
    pub max_recipients: usize,
    /// Seconds without input before the connection is closed with `421 4.4.2` (RFC 5321
    /// §4.5.3.2.7: at least 5 minutes).
    pub idle_timeout_secs: u64,
}

impl Default for LmtpLimits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024 * 1024,
            max_recipients: 1000,
            idle_timeout_secs: 300,
        }
    }
}

/// Everything an LMTP session needs, shared by all connections.
pub struct LmtpContext {
    /// Recipient checks and delivery.
    pub deliverer: Arc<dyn Deliverer>,
    /// This server's name in the greeting, LHLO reply and `Received:` field.
    pub hostname: String,
    /// Protection limits.
    pub limits: LmtpLimits,
    /// Metrics sink ([`Metrics::lmtp`]).
    pub metrics: Arc<Metrics>,
}

/// The host name to announce: `$HOSTNAME` (a pod's name in Kubernetes) when it is a
/// plausible host name, else `localhost`.
pub fn default_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Accepts LMTP connections on `listener` until `shutdown` is cancelled, then stops
/// accepting; idle sessions answer `421 4.3.2` and close, sessions busy delivering finish
/// that delivery first. Waits up to 5 s for them.
///
/// # Errors
/// None today: accept failures are logged and retried; per-connection errors end that
/// connection. The `Result` keeps the shape of the other servers of [`crate::server`].
pub async fn serve(
    ctx: Arc<LmtpContext>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "LMTP listening");
    let mut sessions = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "LMTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let session = Session::new(
            Arc::clone(&ctx),
            tcp,
            peer.ip().to_string(),
            shutdown.child_token(),
        );
        sessions.spawn(session.run());
        while sessions.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
    Ok(())
}
