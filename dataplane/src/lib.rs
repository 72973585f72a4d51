//! MCP dataplane: the IMAP server, its storage and the standalone mode (DESIGN.md §1, §3).
//!
//! Layout follows the architecture: [`imap`] speaks the protocol (RFC 9051 and RFC 3501),
//! [`store`] keeps metadata (SQLite or PostgreSQL) and message bodies (content-addressed
//! blobs), [`mime`] derives ENVELOPE/BODYSTRUCTURE and sections from a message, [`auth`]
//! checks credentials, and [`standalone`] wires it all into one process configured from YAML.

pub mod auth;
pub mod imap;
pub mod metrics;
pub mod mime;
pub mod standalone;
pub mod store;
pub mod tls;
