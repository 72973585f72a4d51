//! The `Mailbox` kind: one user account of a tenant (DESIGN.md §2).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::tenant::Quota;

/// A mail account: its address, credentials, quota and lifecycle.
///
/// Namespaced, in the tenant's namespace. `spec.tenant` names the owning Tenant.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "Mailbox",
    plural = "mailboxes",
    shortname = "mcpmb",
    category = "mcp",
    namespaced,
    status = "MailboxStatus",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MailboxSpec {
    /// Name of the owning Tenant (cluster-scoped).
    pub tenant: String,
    /// Primary address, `local@domain`; the IMAP login name. The domain must be one of the
    /// tenant's `spec.domains`. Compared case-insensitively.
    pub address: String,
    /// Further addresses that deliver to this mailbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Display name, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Limits for this mailbox; overrides the tenant's `spec.quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Where the password comes from. Secrets are only referenced, never inlined.
    pub credentials: Credentials,
    /// `Active` accounts may log in; `Suspended` ones are refused with `NO [UNAVAILABLE]`.
    #[serde(default)]
    pub state: MailboxState,
    /// What happens to stored mail when this resource is deleted. Default `Retain`.
    #[serde(default)]
    pub retention: Retention,
}

/// Credentials source for a mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// A Secret in the mailbox's namespace holding the password in clear text; MCP stores
    /// only its argon2 hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

/// Reference to one key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the Secret's data. Default `password`.
    #[serde(default = "default_password_key")]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_owned()
}

/// Account state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MailboxState {
    /// Login and delivery allowed.
    #[default]
    Active,
    /// Login refused; mail is kept.
    Suspended,
}

/// Data retention on deletion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Retention {
    /// Keep the stored mail when the resource goes away.
    #[default]
    Retain,
    /// Delete the stored mail with the resource.
    Delete,
}

/// What the platform observed about a Mailbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailboxStatus {
    /// True once the account exists in the dataplane store.
    #[serde(default)]
    pub provisioned: bool,
    /// Conditions, a list-map keyed on `type`; `Ready` first.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
