//! MIME analysis of stored messages: ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]` and
//! `BINARY[section]` extraction, and the decoded views SEARCH needs (RFC 9051 §6.4.4, §7.5.2).
//!
//! CONTRACT STUB: the signatures below are the API the IMAP layer codes against; the bodies
//! are being implemented (mime work item).

use crate::store::MessageCache;

/// The text part of a section specifier (RFC 9051 §6.4.5, `section-text`/`section-msgtext`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`: the header of the message or of an embedded message/rfc822 part.
    Header,
    /// `HEADER.FIELDS (..)` (`not == false`) or `HEADER.FIELDS.NOT (..)` (`not == true`).
    HeaderFields {
        /// Field names, compared case-insensitively.
        names: Vec<String>,
        /// True for `.NOT`.
        not: bool,
    },
    /// `TEXT`: the body without header.
    Text,
    /// `MIME`: the MIME header of a part (only with a non-empty part path).
    Mime,
}

/// A section specifier: a part path (`1.2.3`, empty for the whole message) and optional text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionSpec {
    /// Part numbers, 1-based; empty means the whole message.
    pub part: Vec<u32>,
    /// What of the part; `None` means the whole part (for the top level: the whole message).
    pub text: Option<SectionText>,
}

/// Why `BINARY[section]` failed (RFC 3516 §4.2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is unknown: `NO [UNKNOWN-CTE]`.
    #[error("unknown content-transfer-encoding")]
    UnknownCte,
    /// The part does not exist or is multipart.
    #[error("no such part")]
    NoSuchPart,
}

/// Computes the cached IMAP forms of a message. Never fails: malformed input still yields a
/// syntactically valid ENVELOPE/BODYSTRUCTURE.
#[allow(unused_variables)]
pub fn analyze(raw: &[u8]) -> MessageCache {
    todo!()
}

/// The octets of `BODY[section]` (before any `<partial>`), or empty when the part does not
/// exist.
#[allow(unused_variables)]
pub fn section(raw: &[u8], spec: &SectionSpec) -> Vec<u8> {
    todo!()
}

/// The decoded content of `BINARY[part]` (transfer encoding removed).
#[allow(unused_variables)]
pub fn binary(raw: &[u8], part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    todo!()
}

/// Decoded views of one message for SEARCH (RFC 9051 §6.4.4).
pub struct SearchDoc {
    _private: (),
}

#[allow(unused_variables)]
impl SearchDoc {
    /// Parses a message for searching.
    pub fn new(raw: &[u8]) -> Self {
        todo!()
    }
    /// Decoded (RFC 2047) and unfolded values of every header field `name`
    /// (case-insensitive), in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        todo!()
    }
    /// Decoded text of all text parts (transfer encoding and charset removed).
    pub fn body_text(&self) -> String {
        todo!()
    }
    /// The `Date:` header as a date, if it parses.
    pub fn sent_date(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        todo!()
    }
}
