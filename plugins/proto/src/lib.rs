//! The MCP plugin contract: gRPC service `mcp.plugin.v1.MailProcessor` (DESIGN.md §4).
//!
//! - [`v1`]: the tonic client ([`v1::mail_processor_client`]) and server
//!   ([`v1::mail_processor_server`]) generated from `mcp/plugin/v1/plugin.proto`, the
//!   contract's source of truth. How the contract may evolve: `docs/plugin-protocol.md`.
//! - [`convert`]: the mapping between the wire messages and the in-process plugin API
//!   (`mcp_plugin_api`), so the dataplane's plugin host and the SDK speak the same terms. Every
//!   conversion from the wire checks what it reads: a reply that breaks the contract is a
//!   [`ProtocolError`], never a verdict.
//! - [`client`]: one call from the host's side (request stream with body chunks, deadline,
//!   checked reply), and the chunk reassembly a plugin's side needs.

pub mod client;
pub mod convert;

pub use convert::ProtocolError;

/// Code generated from `mcp/plugin/v1/plugin.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("mcp.plugin.v1");
}

/// Protocol versions this build speaks, lowest first. Version 1 is the first contract.
pub const PROTOCOL_VERSIONS: std::ops::RangeInclusive<u32> = 1..=1;

/// Largest `BodyChunk.data`, octets (64 KiB).
pub const MAX_CHUNK: usize = 64 * 1024;

/// The highest protocol version in both inclusive ranges `a` and `b`, if any (the rule a
/// plugin follows at `Initialize`).
pub fn negotiate(
    a: std::ops::RangeInclusive<u32>,
    b: std::ops::RangeInclusive<u32>,
) -> Option<u32> {
    let high = (*a.end()).min(*b.end());
    let low = (*a.start()).max(*b.start());
    (low <= high && high >= 1).then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        for (a, b, want) in [
            (1..=1, 1..=1, Some(1)),
            (1..=3, 2..=5, Some(3)),
            (2..=5, 1..=3, Some(3)),
            (1..=1, 2..=3, None),
            (4..=6, 1..=3, None),
            (0..=0, 0..=0, None),
        ] {
            assert_eq!(negotiate(a.clone(), b.clone()), want, "{a:?} {b:?}");
        }
    }
}
