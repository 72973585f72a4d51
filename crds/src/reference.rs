//! References to other objects. Secrets are only ever referenced, never inlined
//! (DESIGN.md §2, "Conventions").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole Secret in the referring resource's namespace (or, for the cluster-scoped Tenant,
/// in the tenant's namespace). The keys it must hold are documented where it is used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret. Changing it makes the controller read the new Secret and roll
    /// the workloads that use it.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One key of a Secret in the referring resource's namespace, usually a password.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's `data` (or `stringData`). Default `password`.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_owned()
}

/// Reference to another MCP resource by name, in the referring resource's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the referenced resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
