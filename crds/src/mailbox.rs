//! The `Mailbox` kind: one user account of a tenant (DESIGN.md §2).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::quota::{Quota, Usage};
use crate::reference::{LocalObjectRef, SecretKeyRef};

/// The address rule shared by `spec.address` and each of `spec.aliases`: one `@`, a
/// non-empty local part and a domain, no white space.
const ADDRESS_RULE: &str = "self.matches('^[^@\\\\s]+@[^@\\\\s]+$')";

/// A mail account: its address, credentials, quota and lifecycle.
///
/// Namespaced, in the tenant's namespace. `spec.tenant` names the owning Tenant.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "Mailbox",
    plural = "mailboxes",
    shortname = "mcpmb",
    category = "mcp",
    namespaced,
    status = "MailboxStatus",
    derive = "PartialEq",
    doc = "One mail account of a Tenant: address, aliases, credentials, quota, state and data retention. Lives in the tenant's namespace.",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".spec.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MailboxSpec {
    /// Name of the owning Tenant (cluster-scoped). Immutable: to move a mailbox, migrate it.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenant is immutable"))]
    pub tenant: String,
    /// Primary address, `local@domain`, exactly one `@`; the IMAP login name. The domain
    /// must be one of the tenant's `spec.domains`. Compared case-insensitively and unique
    /// across the tenant. Immutable: the stored mail is keyed on it.
    #[schemars(length(min = 3, max = 254))]
    #[x_kube(validation = Rule::new(ADDRESS_RULE).message("address must be local@domain with exactly one '@'"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("address is immutable"))]
    pub address: String,
    /// Further addresses that deliver to this mailbox, each `local@domain` in one of the
    /// tenant's domains. Changing the list takes effect for the next delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 3, max = 254)))]
    #[x_kube(validation = Rule::new("self.all(a, a.matches('^[^@\\\\s]+@[^@\\\\s]+$'))").message("every alias must be local@domain with exactly one '@'"))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub aliases: Vec<String>,
    /// Display name (`Alice Example`), informational; shown in the admin UI and used as the
    /// default `From` name by clients that ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Limits for this mailbox; each field set here overrides the tenant's
    /// `spec.quota.mailboxDefault`. Absent means the tenant default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Where the login secret comes from: a password Secret, or the tenant's external
    /// identity provider. Secrets are only referenced, never inlined.
    pub credentials: Credentials,
    /// `Active` (default) accounts may log in and receive mail; `Suspended` ones are refused
    /// with `NO [UNAVAILABLE]` at login (open sessions are closed) while delivery still
    /// stores mail. Switching back to `Active` restores access; no mail is lost.
    #[serde(default)]
    pub state: MailboxState,
    /// What happens to the stored mail when this resource is deleted: `Retain` (default)
    /// keeps it, so re-creating the Mailbox with the same address finds it again; `Delete`
    /// removes all messages and folders.
    #[serde(default)]
    pub retention: Retention,
    /// A Pipeline in this namespace that replaces the tenant's default pipeline (and any
    /// selector-scoped one) for this mailbox. Absent means the tenant's pipelines apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_ref: Option<LocalObjectRef>,
}

/// Credentials source for a mailbox: exactly one of `secretRef` and `external`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) != has(self.external)").message("exactly one of secretRef and external must be set"))]
pub struct Credentials {
    /// A Secret in the mailbox's namespace holding the password in clear text; MCP stores
    /// only its argon2id hash. Changing the Secret's value changes the password at the next
    /// reconcile; open sessions stay logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Log in through the tenant's OIDC or LDAP provider (`Tenant.spec.auth`) instead of a
    /// password Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalIdentity>,
}

/// An identity held by the tenant's external identity provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIdentity {
    /// Which provider of `Tenant.spec.auth` vouches for this mailbox: `Oidc` or `Ldap`.
    pub provider: IdentityProvider,
    /// The identity at the provider, when it differs from `spec.address`: the OIDC
    /// username-claim value or the LDAP login. Default: the mailbox address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject: Option<String>,
}

/// External identity provider kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IdentityProvider {
    /// `Tenant.spec.auth.oidc`: OAUTHBEARER / XOAUTH2 bearer tokens.
    #[default]
    Oidc,
    /// `Tenant.spec.auth.ldap`: LDAP simple bind with the user's password.
    Ldap,
}

/// Account state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MailboxState {
    /// Login and delivery allowed.
    #[default]
    Active,
    /// Login refused; mail is still delivered and kept.
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
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxStatus {
    /// The `.metadata.generation` the controller last applied to the dataplane store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// True once the account exists in the dataplane store (with its default folders).
    #[serde(default)]
    pub provisioned: bool,
    /// Storage and message count currently used, refreshed periodically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Conditions, a list-map keyed on `type`; `Ready` first. `Ready` is `True` when the
    /// account is provisioned and its credentials resolve.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
