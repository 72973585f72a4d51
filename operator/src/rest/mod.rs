//! The REST facade (`/api/v1`, crate `mcp-api`) in Kubernetes mode: `mcp-operator --rest
//! ADDR` serves it over the [`backend::KubeBackend`] (docs/rest-api.md, "Kubernetes mode").
//!
//! Every operator replica serves it, leader or not: reads and writes go to the API server,
//! which orders them, so any replica answers alike. API keys live in PostgreSQL
//! (`--api-store-url`), shared by the replicas; the first admin key comes from
//! `--bootstrap-key-file` or is generated and printed once on stdout (the pod log), as in
//! standalone mode ([`mcp_api::facade`]).

pub mod backend;
pub mod errors;

use std::net::SocketAddr;
use std::sync::Arc;

use kube::Client;
use mcp_api::facade::{FacadeError, FacadeSettings};
use tokio_util::sync::CancellationToken;

use crate::dataplane::Dataplanes;

/// Settings of the facade (`--rest`, `--api-store-url`, `--bootstrap-key-file`,
/// `--rest-rate`, `--rest-burst`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestSettings {
    /// Listen address of the facade (HTTP; put TLS in front, e.g. an Ingress).
    pub addr: SocketAddr,
    /// Key database, bootstrap key and rate limit.
    pub facade: FacadeSettings,
}

/// Why the facade could not start.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The listen address could not be bound.
    #[error("--rest {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Bind error.
        source: std::io::Error,
    },
    /// The key database or the bootstrap key failed.
    #[error(transparent)]
    Facade(#[from] FacadeError),
}

/// Binds `settings.addr`, opens the facade over the API server of `client` (quarantine
/// through `dataplanes`), and serves it in a task until `stop` is cancelled. Returns the
/// bound address.
///
/// # Errors
/// [`RestError`].
pub async fn start(
    client: Client,
    dataplanes: Dataplanes,
    settings: &RestSettings,
    stop: CancellationToken,
) -> Result<SocketAddr, RestError> {
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|source| RestError::Bind {
            addr: settings.addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RestError::Bind {
        addr: settings.addr,
        source,
    })?;
    let backend = Arc::new(backend::KubeBackend::new(client, dataplanes));
    let facade = mcp_api::facade::open(&settings.facade, backend).await?;
    tracing::info!(addr = %bound, "REST API listening (/api/v1)");
    tokio::spawn(async move {
        let served = axum::serve(listener, facade.router)
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "REST API server failed");
        }
        facade.keys.close().await;
    });
    Ok(bound)
}
