//! The `Tenant` kind: a cluster-scoped customer of the platform (DESIGN.md §2).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;

/// A tenant: its mail domains, quotas, authentication providers and dataplane settings.
///
/// Cluster-scoped. The operator gives each tenant one namespace, where its `Mailbox`es live.
/// In standalone mode the tenant's namespace is only a label on its mailboxes.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "mcpt",
    category = "mcp",
    status = "TenantStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Mail domains this tenant receives mail for, lower-case DNS names (`example.com`).
    /// Every Mailbox address of the tenant must be in one of them. At least one.
    pub domains: Vec<String>,
    /// Namespace holding the tenant's Mailboxes. Defaults to `mcp-<tenant name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Default limits for every mailbox of the tenant; a Mailbox's own quota overrides them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// Resource limits. Absent fields mean "no limit".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Storage limit per mailbox, in bytes of RFC822.SIZE summed over all messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// Message-count limit per mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
}

/// What the platform observed about a Tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// Conditions, a list-map keyed on `type`; `Ready` first.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
