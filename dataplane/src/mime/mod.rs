//! MIME analysis of stored messages: ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]` and
//! `BINARY[section]` extraction, and the decoded views SEARCH needs (RFC 9051 §6.4.4, §7.5.2).
//!
//! Layout: [`tree`] locates parts as byte ranges (boundary rules as Dovecot applies them),
//! [`header`]/[`lexer`]/[`address`]/[`params`] read raw header values, [`envelope`] and
//! [`bodystructure`] write the IMAP forms with the small writer in [`encode`], [`section`]
//! extracts `BODY[...]`/`BINARY[...]`, and [`search`] uses `mail-parser` for every decoding
//! (RFC 2047, RFC 2231, transfer encodings, charsets, dates).

mod address;
mod bodystructure;
mod encode;
mod envelope;
mod header;
mod lexer;
mod params;
mod search;
mod section;
mod tree;

#[cfg(test)]
mod tests;

use crate::store::MessageCache;
use tree::Part;

fn parse_tree(raw: &[u8]) -> Part {
    Part::parse(raw, 0, raw.len(), false, 0)
}

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

/// Computes the cached IMAP forms of a message (RFC 9051 §7.5.2): `envelope` is the
/// ENVELOPE list, `body` the BODY list (no extension data), `bodystructure` the
/// BODYSTRUCTURE list, each exactly as it follows the item name in a FETCH response. Never
/// fails: malformed input still yields a syntactically valid ENVELOPE/BODYSTRUCTURE.
pub fn analyze(raw: &[u8]) -> MessageCache {
    let root = parse_tree(raw);
    let mut envelope = Vec::new();
    envelope::write(raw, &root.header, &mut envelope);
    let mut body = Vec::new();
    bodystructure::write(raw, &root, false, &mut body);
    let mut bodystructure = Vec::new();
    bodystructure::write(raw, &root, true, &mut bodystructure);
    MessageCache {
        envelope,
        body,
        bodystructure,
    }
}

/// The octets of `BODY[section]` (RFC 9051 §6.4.5, before any `<partial>`), byte-exact
/// from `raw`, or empty when the part does not exist. `HEADER.FIELDS` output keeps the
/// selected fields in message order and ends with the blank line.
pub fn section(raw: &[u8], spec: &SectionSpec) -> Vec<u8> {
    section::extract(raw, &parse_tree(raw), spec)
}

/// The header blocks of every MIME part below the top level (multipart children and
/// embedded messages, recursively), concatenated. SEARCH TEXT looks in them: "in the
/// header (including MIME header fields) or body of the message" (RFC 9051 §6.4.4).
pub fn mime_headers(raw: &[u8]) -> Vec<u8> {
    fn walk(raw: &[u8], part: &Part, top: bool, out: &mut Vec<u8>) {
        if !top {
            out.extend_from_slice(&raw[part.header_range.clone()]);
        }
        match &part.kind {
            tree::Kind::Leaf => {}
            tree::Kind::Multipart(children) => {
                for c in children {
                    walk(raw, c, false, out);
                }
            }
            tree::Kind::Message(inner) => walk(raw, inner, false, out),
        }
    }
    let mut out = Vec::new();
    walk(raw, &parse_tree(raw), true, &mut out);
    out
}

/// The decoded content of `BINARY[part]` (RFC 3516): base64 and quoted-printable removed,
/// 7bit/8bit/binary returned as is. An empty `part` means the whole message, a multipart
/// part its body unchanged.
pub fn binary(raw: &[u8], part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    section::binary(raw, &parse_tree(raw), part)
}

/// Decoded views of one message for SEARCH (RFC 9051 §6.4.4).
pub struct SearchDoc {
    decoded: search::Decoded,
}

impl SearchDoc {
    /// Parses a message for searching (with `mail-parser`; never fails, unparsable input
    /// gives an empty document).
    pub fn new(raw: &[u8]) -> Self {
        SearchDoc {
            decoded: search::decode(raw),
        }
    }
    /// Decoded (RFC 2047) and unfolded values of every top-level header field `name`
    /// (case-insensitive), in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.decoded
            .headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// Every top-level header field as a `name: value` line, values decoded (RFC 2047) and
    /// unfolded: what SEARCH TEXT matches in the header (RFC 9051 §6.4.4).
    pub fn header_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.decoded.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
        out
    }
    /// Decoded text of all text parts (transfer encoding and charset removed, HTML reduced
    /// to text), including parts of embedded messages, joined with newlines.
    pub fn body_text(&self) -> String {
        self.decoded.body.clone()
    }
    /// The `Date:` header as a date (RFC 5322 §3.3, parsed leniently), if it parses.
    pub fn sent_date(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.decoded.date
    }
}
