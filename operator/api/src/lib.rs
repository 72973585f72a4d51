//! The REST management facade of MCP (`/api/v1`, issue 7, DESIGN.md §1).
//!
//! One axum service, served by the operator in Kubernetes mode and by `mcp standalone` on
//! 127.0.0.1:8080. It is a thin, validated door onto the same declarative resources
//! (`Tenant`, `Mailbox`, `Pipeline`, `PluginDeployment`, `MigrationJob`): in Kubernetes
//! its writes are server-side applies (field manager `mcp-rest`) and its reads come from
//! the API server; standalone, the same endpoints are served from the local resource
//! store, applied through the same code as the YAML directory.
//!
//! Layout (one job per module):
//! - [`auth`]: who is calling ([`auth::Principal`]) and with which [`auth::Role`].

pub mod auth;
