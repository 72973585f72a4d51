//! The MCP API: custom resource types of group `mcp.dev`, version `v1alpha1` (DESIGN.md §2).
//!
//! These types are the single source of truth for every resource: the operator reconciles
//! them, the standalone dataplane reads them from YAML ([`resource::Resource`]), and the REST
//! facade serves them. Every field carries the documentation that `kubectl explain` shows.
//!
//! | Kind | Scope | Module |
//! |---|---|---|
//! | `Tenant` | cluster | [`tenant`] |
//! | `Mailbox` | namespaced | [`mailbox`] |
//! | `Pipeline` | namespaced | [`pipeline`] |
//! | `PluginDeployment` | namespaced | [`plugin`] |
//! | `MigrationJob` | namespaced | [`migration`] |
//!
//! Shared pieces: [`condition`], [`quota`], [`reference`] (Secret and object references),
//! [`duration`]. [`dataplane`] is the contract between the operator and a tenant's
//! dataplane (configuration file and admin API). [`manifests`] renders the CRDs; [`schema`] checks they are structural.

pub mod condition;
pub mod dataplane;
pub mod duration;
pub mod mailbox;
pub mod manifests;
pub mod migration;
pub mod pipeline;
pub mod plugin;
pub mod quota;
pub mod reference;
pub mod resource;
pub mod schema;
pub mod tenant;

pub use condition::{Condition, ConditionStatus};
pub use duration::Duration;
pub use mailbox::{Mailbox, MailboxSpec, MailboxStatus};
pub use migration::{MigrationJob, MigrationJobSpec, MigrationJobStatus};
pub use pipeline::{Pipeline, PipelineSpec, PipelineStatus};
pub use plugin::{PluginDeployment, PluginDeploymentSpec, PluginDeploymentStatus};
pub use quota::Quota;
pub use reference::{LocalObjectRef, SecretKeyRef, SecretRef};
pub use resource::{Resource, ResourceError, SecretResource};
pub use tenant::{Tenant, TenantSpec, TenantStatus};

/// The API group of every MCP resource.
pub const GROUP: &str = "mcp.dev";
/// The API version this crate defines.
pub const VERSION: &str = "v1alpha1";

#[cfg(test)]
mod tests;
