//! Why a reconciliation failed. A failed reconciliation is retried with per-object
//! exponential backoff ([`crate::backoff`]); each variant has a CamelCase [`Error::reason`]
//! used in Events, conditions and the `reason` label of the error metric.

use crate::dataplane::DataplaneError;
use crate::tenant::BuildError;

/// A reconciliation error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The tenant's dataplane admin API could not be reached or failed.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// The spec cannot be turned into children (names the field).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A Secret the operator issued itself is malformed (edited by hand?).
    #[error("Secret {namespace}/{name}: {message}")]
    IssuedSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The finalizer helper failed to add or remove the finalizer, or the cleanup failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The object from the watch lacks a field every stored object has (name, namespace).
    #[error("object has no {0}")]
    Incomplete(&'static str),
    /// Issuing a certificate failed.
    #[error("issuing a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The tenant's Pipelines could not be rendered.
    #[error(transparent)]
    Render(#[from] crate::pipeline::render::RenderError),
}

impl Error {
    /// CamelCase reason, for Events, conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Dataplane(e) => e.reason(),
            Error::Build(_) => "InvalidSpec",
            Error::IssuedSecret { .. } => "IssuedSecretInvalid",
            Error::Finalizer(_) => "CleanupFailed",
            Error::Incomplete(_) => "IncompleteObject",
            Error::Certificate(_) => "CertificateFailed",
            Error::Render(_) => "RenderFailed",
        }
    }
}
