//! The MCP operator (DESIGN.md §1): controllers that reconcile the `mcp.dev/v1alpha1`
//! resources into Kubernetes objects and dataplane accounts (docs/operator.md).
//!
//! - [`tenant`]: the children of a Tenant as pure functions of its spec, the Secrets the
//!   operator issues, and the Tenant controller.
//! - [`mailbox`]: the Mailbox controller, which provisions accounts through the tenant
//!   dataplane's admin API ([`dataplane`]) and honours `spec.retention` with a finalizer.
//! - [`pipeline`]: Pipeline validation, its rendering into the tenant's dataplane
//!   configuration (`pipelines.yaml`), and the Pipeline controller.
//! - [`plugin`]: how PluginDeployments run (sidecars in the dataplane pod, or a Deployment
//!   and Service of their own, sandboxed) and the PluginDeployment controller.
//! - [`rest`]: the REST facade (`mcp-api`) over the API server, `mcp-operator --rest`.
//! - [`run`]: leader election and the controllers' assembly; [`telemetry`]: metrics and
//!   health endpoints; [`context`], [`conditions`], [`backoff`], [`error`]: what the
//!   controllers share.

pub mod backoff;
pub mod conditions;
pub mod context;
pub mod dataplane;
pub mod error;
pub mod mailbox;
pub mod pipeline;
pub mod plugin;
pub mod rest;
pub mod run;
pub mod telemetry;
pub mod tenant;
