//! LMTP metrics, registered in the dataplane's registry ([`crate::metrics::Metrics::lmtp`]).
//!
//! Families:
//! - `mcp_lmtp_sessions` (gauge): open LMTP connections.
//! - `mcp_lmtp_sessions_accepted_total` (counter): LMTP connections accepted since start.
//! - `mcp_lmtp_transactions_total` (counter): messages received in full (final dot or
//!   `BDAT LAST`) with at least one recipient, whatever became of them.
//! - `mcp_lmtp_recipient_replies_total{stage,class}` (counter): replies about one recipient,
//!   `stage` `rcpt` (RCPT TO) or `data` (after the message), `class` `2xx`/`4xx`/`5xx`.
//! - `mcp_lmtp_message_size_bytes` (histogram): size of received messages, octets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplyLabels {
    stage: &'static str,
    class: &'static str,
}

/// Where a per-recipient reply was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// At `RCPT TO`.
    Rcpt,
    /// After the message data.
    Data,
}

/// The LMTP metric families. Cheap to clone (shared counters).
#[derive(Clone, Debug)]
pub struct LmtpMetrics {
    sessions: Gauge,
    sessions_accepted: Counter,
    transactions: Counter,
    replies: Family<ReplyLabels, Counter>,
    sizes: Histogram,
}

impl LmtpMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            sessions: Gauge::default(),
            sessions_accepted: Counter::default(),
            transactions: Counter::default(),
            replies: Family::default(),
            // 1 KiB .. 64 MiB.
            sizes: Histogram::new(exponential_buckets(1024.0, 4.0, 9)),
        };
        registry.register(
            "mcp_lmtp_sessions",
            "Open LMTP connections",
            m.sessions.clone(),
        );
        registry.register(
            "mcp_lmtp_sessions_accepted",
            "LMTP connections accepted since start",
            m.sessions_accepted.clone(),
        );
        registry.register(
            "mcp_lmtp_transactions",
            "LMTP messages received in full",
            m.transactions.clone(),
        );
        registry.register(
            "mcp_lmtp_recipient_replies",
            "LMTP replies about one recipient, by stage (rcpt, data) and class (2xx, 4xx, 5xx)",
            m.replies.clone(),
        );
        registry.register(
            "mcp_lmtp_message_size_bytes",
            "Size of LMTP messages received, octets",
            m.sizes.clone(),
        );
        m
    }

    /// A connection was accepted.
    pub fn session_opened(&self) {
        self.sessions.inc();
        self.sessions_accepted.inc();
    }

    /// A connection ended.
    pub fn session_closed(&self) {
        self.sessions.dec();
    }

    /// A message of `size` octets was received in full.
    pub fn transaction(&self, size: usize) {
        self.transactions.inc();
        self.sizes.observe(size as f64);
    }

    /// A reply with `code` about one recipient at `stage`.
    pub fn recipient_reply(&self, stage: Stage, code: u16) {
        let class = match code / 100 {
            2 => "2xx",
            4 => "4xx",
            _ => "5xx",
        };
        let stage = match stage {
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
        };
        self.replies
            .get_or_create(&ReplyLabels { stage, class })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_exposed() {
        let mut registry = Registry::default();
        let m = LmtpMetrics::register(&mut registry);
        m.session_opened();
        m.transaction(2000);
        m.recipient_reply(Stage::Rcpt, 550);
        m.recipient_reply(Stage::Data, 250);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        for want in [
            "mcp_lmtp_sessions 1",
            "mcp_lmtp_sessions_accepted_total 1",
            "mcp_lmtp_transactions_total 1",
            "mcp_lmtp_recipient_replies_total{stage=\"rcpt\",class=\"5xx\"} 1",
            "mcp_lmtp_recipient_replies_total{stage=\"data\",class=\"2xx\"} 1",
            "mcp_lmtp_message_size_bytes_count 1",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }
}
