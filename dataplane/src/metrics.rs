//! Prometheus metrics of the dataplane (prometheus-client), served on `/metrics`.
//!
//! CONTRACT STUB: being implemented (standalone work item).

/// The dataplane's metrics. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {}

#[allow(unused_variables)]
impl Metrics {
    /// A client connected (`mcp_imap_connections` gauge +1, `mcp_imap_connections_total` +1).
    pub fn connection_opened(&self) {}
    /// A client disconnected (`mcp_imap_connections` gauge -1).
    pub fn connection_closed(&self) {}
    /// One IMAP command finished: `command` upper-case name (`FETCH`, `UID FETCH`), `status`
    /// `OK`/`NO`/`BAD`, `seconds` wall time (`mcp_imap_commands_total`,
    /// `mcp_imap_command_duration_seconds`).
    pub fn command(&self, command: &str, status: &str, seconds: f64) {}
}
