//! The trace fields prepended to a delivered message (RFC 5321 §4.4) and line-ending
//! normalisation.

use chrono::{DateTime, FixedOffset};

/// What the trace fields say about one transaction.
#[derive(Clone, Debug)]
pub(super) struct Trace<'a> {
    /// The reverse-path, empty for `<>`.
    pub mail_from: &'a str,
    /// The LHLO argument of the client.
    pub lhlo: &'a str,
    /// The client's IP address.
    pub peer_ip: &'a str,
    /// This server's host name.
    pub hostname: &'a str,
    /// Queue id of the transaction, for log correlation.
    pub id: &'a str,
    /// `for <...>`: only with exactly one recipient (RFC 5321 §4.4: the clause must not
    /// reveal other recipients).
    pub single_rcpt: Option<&'a str>,
    /// SMTPUTF8 was requested: protocol `UTF8LMTP` instead of `LMTP` (RFC 6531 §3.7.3).
    pub utf8: bool,
    /// Time of receipt.
    pub date: DateTime<FixedOffset>,
}

impl Trace<'_> {
    /// `Return-Path:` and `Received:` fields, CRLF-terminated, folded at the clauses.
    pub fn header(&self) -> Vec<u8> {
        let with = if self.utf8 { "UTF8LMTP" } else { "LMTP" };
        let mut out = format!(
            "Return-Path: <{}>\r\nReceived: from {} ({})\r\n\tby {} (MCP) with {with} id {}",
            field(self.mail_from),
            host(self.lhlo),
            host(self.peer_ip),
            host(self.hostname),
            host(self.id),
        );
        if let Some(rcpt) = self.single_rcpt {
            out.push_str(&format!("\r\n\tfor <{}>", field(rcpt)));
        }
        out.push_str(&format!("; {}\r\n", self.date.to_rfc2822()));
        out.into_bytes()
    }
}

/// An address for a header field: CR, LF and other controls dropped, so a hostile value
/// cannot add a field.
fn field(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// A host name or literal for a trace clause: anything that is not a letter, digit or one
/// of `-._:[]` becomes `_` (LHLO arguments are client-chosen); at most 255 characters;
/// `unknown` when empty.
fn host(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._:[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

/// `body` with every bare LF turned into CRLF (the store keeps CRLF line endings, as IMAP
/// serves them). Bare CRs are left alone.
pub(super) fn crlf(body: &[u8]) -> Vec<u8> {
    let bare = body
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || body[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len() + bare);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc2822("Tue, 1 Jul 2025 10:00:00 +0000").expect("date")
    }

    #[test]
    fn trace_fields_name_sender_client_and_single_recipient() {
        let t = Trace {
            mail_from: "",
            lhlo: "mx.example.net",
            peer_ip: "127.0.0.1",
            hostname: "mcp",
            id: "abc",
            single_rcpt: Some("alice@example.com"),
            utf8: false,
            date: date(),
        };
        assert_eq!(
            String::from_utf8(t.header()).expect("utf8"),
            "Return-Path: <>\r\nReceived: from mx.example.net (127.0.0.1)\r\n\tby mcp (MCP) \
             with LMTP id abc\r\n\tfor <alice@example.com>; Tue, 1 Jul 2025 10:00:00 +0000\r\n"
        );
    }

    #[test]
    fn hostile_values_cannot_add_header_fields() {
        let t = Trace {
            mail_from: "a@b\r\nX-Evil: 1",
            lhlo: "x\r\nX-Evil: 2",
            peer_ip: "::1",
            hostname: "h",
            id: "i",
            single_rcpt: None,
            utf8: true,
            date: date(),
        };
        let h = String::from_utf8(t.header()).expect("utf8");
        assert_eq!(h.matches("\r\n").count(), 3, "{h}");
        assert!(h.contains("with UTF8LMTP"), "{h}");
        assert!(!h.contains("\r\nX-Evil"), "{h}");
    }

    #[test]
    fn bare_lf_becomes_crlf() {
        for (input, want) in [
            (&b"a\r\nb\r\n"[..], &b"a\r\nb\r\n"[..]),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"\n", b"\r\n"),
            (b"a\rb\r\n", b"a\rb\r\n"),
            (b"", b""),
        ] {
            assert_eq!(crlf(input), want, "{input:?}");
        }
    }
}
