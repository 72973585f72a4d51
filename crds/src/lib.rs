//! MCP's Kubernetes API: the custom resource types of group `mcp.dev`, version `v1alpha1`
//! (DESIGN.md §2).
//!
//! These types are the single source of truth for every resource: the operator reconciles
//! them, the standalone dataplane reads them from YAML ([`resource::Resource`]), and the REST
//! facade serves them. Every field carries the documentation that `kubectl explain` shows.

pub mod condition;
pub mod mailbox;
pub mod resource;
pub mod tenant;

pub use condition::Condition;
pub use mailbox::{Mailbox, MailboxSpec, MailboxStatus};
pub use resource::{Resource, ResourceError, SecretResource};
pub use tenant::{Tenant, TenantSpec, TenantStatus};

/// The API group of every MCP resource.
pub const GROUP: &str = "mcp.dev";
/// The API version this crate defines.
pub const VERSION: &str = "v1alpha1";
