//! The seam between the facade's resource endpoints and where the resources live.
//!
//! The resource endpoints (tenants, mailboxes, pipelines, plugins, policies, migration jobs;
//! a later step of issue 7) validate a request with the CRD types of `mcp-crds` (the one
//! source of truth), authorize it ([`crate::rbac`]) and then call a [`Backend`]:
//!
//! - Kubernetes mode (the operator): reads from the API server; writes are server-side
//!   applies with field manager [`FIELD_MANAGER`]; [`Versioned::version`] is the object's
//!   `metadata.resourceVersion`, so `ETag`/`If-Match` map to Kubernetes' optimistic
//!   concurrency (a stale `If-Match` is [`BackendError::PreconditionFailed`], 412).
//! - Standalone mode (`mcp standalone`): the local resource store, applied through the same
//!   code as the YAML directory; the version is a digest or counter of the stored object.
//!
//! Objects cross the seam as JSON (`apiVersion`, `kind`, `metadata`, `spec`, `status`), so
//! both backends share the endpoints' serialisation; the endpoints convert from and to the
//! typed CRDs. Nothing here is implemented yet; [`crate::Api::backend`] is `None` until a
//! backend exists.

use futures::future::BoxFuture;

/// Field manager of the facade's server-side applies (DESIGN.md §2).
pub const FIELD_MANAGER: &str = "mcp-rest";

/// A kind served by the resource endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `Tenant` (cluster-scoped: `tenant` arguments name the Tenant itself).
    Tenant,
    /// `Mailbox`, in its tenant's namespace.
    Mailbox,
    /// `Pipeline`.
    Pipeline,
    /// `PluginDeployment`.
    PluginDeployment,
    /// `MigrationJob`.
    MigrationJob,
}

/// An object and its version (the `ETag` of the answer, without quotes).
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The whole object as JSON.
    pub object: serde_json::Value,
    /// Opaque version: `resourceVersion` in Kubernetes.
    pub version: String,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The objects, in name order.
    pub items: Vec<Versioned>,
    /// Token for the next page (`continue` in Kubernetes); `None` on the last page.
    pub next: Option<String>,
}

/// Why a backend call failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No such object (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The object exists and a create was asked, or the name belongs to another tenant
    /// (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` does not match the current version (412).
    #[error("the object changed since version {0}")]
    PreconditionFailed(String),
    /// The backend refused the object (admission, CEL rule) (422).
    #[error("{0}")]
    Invalid(String),
    /// The API server or the store is unreachable (503).
    #[error("{0}")]
    Unavailable(String),
}

/// Where resources live. Methods return boxed futures so that the facade can hold a
/// `dyn Backend` chosen at start-up.
pub trait Backend: Send + Sync + 'static {
    /// A page of `kind` objects, of `tenant` only when given, at most `limit`, after the
    /// `from` token of a previous page.
    fn list<'a>(
        &'a self,
        kind: Kind,
        tenant: Option<&'a str>,
        limit: u32,
        from: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page, BackendError>>;

    /// The object `name` of `kind` in `tenant`.
    fn get<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>>;

    /// Creates or updates `object` (validated by the caller) in `tenant`; with `if_match`,
    /// only if the current version is that one.
    fn apply<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        object: serde_json::Value,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>>;

    /// Deletes the object `name` of `kind` in `tenant`; with `if_match`, only if the
    /// current version is that one.
    fn delete<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Whether the backend answers, for readiness (`GET /api/v1/health/ready`).
    fn ready(&self) -> BoxFuture<'_, Result<(), BackendError>>;
}
