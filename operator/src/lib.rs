//! The MCP operator (DESIGN.md §1): controllers that reconcile the `mcp.dev/v1alpha1`
//! resources into Kubernetes objects.
//!
//! This crate holds, so far, the *desired state* of a [`Tenant`](mcp_crds::Tenant): pure
//! functions from the Tenant's spec to the child objects the operator applies
//! ([`tenant::build`]). They do no I/O and are tested without a cluster; the reconcile loop
//! that applies them is still to come (`docs/operator.md`).

pub mod tenant;
