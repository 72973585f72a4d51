//! Who is calling the facade, and with which rights.
//!
//! A request is authenticated by an `X-API-Key` header (a key of the `api_keys` table) or
//! an `Authorization: Bearer` JWT from the configured OIDC issuer. Both end as a
//! [`Principal`]; RBAC decisions only look at its [`Role`].
//!
//! - [`oidc`]: the bearer-token verifier (discovery, JWKS cache, claim checks, role
//!   mapping).

pub mod oidc;

use serde::{Deserialize, Serialize};

/// What a caller may do (issue 7: admin; tenant-admin, bound to one tenant; viewer).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "tenant", rename_all = "kebab-case")]
pub enum Role {
    /// Everything, on every tenant, including API keys of any role.
    Admin,
    /// Read and write the resources of one tenant (its name); nothing of other tenants,
    /// no cluster-wide writes.
    TenantAdmin(String),
    /// Read everything; write nothing.
    Viewer,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Who it is, for logs and audit: `apikey:<prefix>` or `oidc:<issuer>#<sub>`. Never a
    /// secret.
    pub subject: String,
    /// What it may do.
    pub role: Role,
}
