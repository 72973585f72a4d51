//! The IMAP server (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).
//!
//! Work in progress (IMAP work item).

use std::sync::Arc;

pub mod conn;
mod op;
mod server;
mod session;
pub mod wire;

pub use server::serve;

use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::store::{BlobStore, MetadataStore};

/// Limits that protect the server from hostile clients.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest command line without literals, octets. Longer: `BAD` and the line is skipped.
    pub max_line: usize,
    /// Largest literal (and so largest APPEND), octets. Larger: `NO [TOOBIG]` / `BAD`.
    pub max_literal: u32,
    /// Idle time before an unauthenticated connection is closed, seconds (RFC 9051 §5.4: ≥ 60).
    pub login_timeout_secs: u64,
    /// Idle time before an authenticated connection is closed, seconds (≥ 30 minutes).
    pub idle_timeout_secs: u64,
    /// Interval of `* OK Still here` keepalives during IDLE, seconds (≤ 300).
    pub idle_keepalive_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            login_timeout_secs: 60,
            idle_timeout_secs: 30 * 60,
            idle_keepalive_secs: 120,
        }
    }
}

/// Everything a session needs, shared by all connections.
pub struct ImapContext {
    /// Metadata store.
    pub store: MetadataStore,
    /// Message bodies.
    pub blobs: BlobStore,
    /// The path APPEND stores through (pipeline `append` stage).
    pub ingest: Arc<crate::ingest::Ingest>,
    /// Credential checks.
    pub auth: Authenticator,
    /// TLS acceptor for STARTTLS (and implicit TLS listeners); `None` disables STARTTLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Protection limits.
    pub limits: Limits,
    /// Metrics sink.
    pub metrics: Arc<Metrics>,
}

/// How a listener speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text, STARTTLS offered when [`ImapContext::tls`] is set (port 143/1143).
    StartTls,
    /// TLS from the first byte (IMAPS, port 993/1993).
    Implicit,
}
