//! MCP dataplane: the IMAP server, its storage and the standalone mode (DESIGN.md §1, §3).
//!
//! Layout follows the architecture: [`imap`] speaks the protocol (RFC 9051 and RFC 3501),
//! [`lmtp`] takes delivery from an MTA (RFC 2033),
//! [`store`] keeps metadata (SQLite or PostgreSQL) and message bodies (content-addressed
//! blobs), [`mime`] derives ENVELOPE/BODYSTRUCTURE and sections from a message, [`auth`]
//! checks credentials, and [`quota`] reads mailbox limits. [`pipeline`] runs each message
//! through its tenant's steps; [`plugin_host`] reaches the external plugins among them over
//! gRPC (and, standalone, runs their processes). [`server`] wires it all into one
//! process; two modes configure it: [`standalone`] from a directory of YAML resources, and
//! [`managed`] (`mcp dataplane`) from the configuration file the operator renders, with
//! accounts provisioned through the [`admin`] API.

pub mod admin;
pub mod auth;
pub mod imap;
pub mod ingest;
pub mod lmtp;
pub mod managed;
pub mod metrics;
pub mod mime;
pub mod pipeline;
pub mod plugin_host;
pub mod quota;
pub mod server;
pub mod standalone;
pub mod store;
pub mod tls;
