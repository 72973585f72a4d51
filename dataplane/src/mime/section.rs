//! `BODY[section]` and `BINARY[section]` extraction (RFC 9051 §6.4.5, RFC 3516).
//!
//! Part numbering: in a multipart, `n` is the n-th child; a `message/rfc822` part's
//! numbers address the parts of the embedded message; a non-multipart message (top level or
//! embedded) has the single part `1`, its body. `HEADER`/`TEXT`/`HEADER.FIELDS` after a
//! non-empty part path require a `message/rfc822` part and address the embedded message;
//! `MIME` is the part's own MIME header.

use super::header::Header;
use super::tree::{Kind, Part};
use super::{BinaryError, SectionSpec, SectionText};

/// Finds the part addressed by `path` (non-empty) below the message `msg`.
///
/// Matches Dovecot's leniency: a non-multipart part reached as a multipart child also
/// answers to one extra `.1` (itself).
pub(crate) fn navigate<'p>(msg: &'p Part, path: &[u32]) -> Option<&'p Part> {
    // (current part, may a `.1` still address the part itself)
    let mut cur: Option<(&Part, bool)> = None;
    for &n in path {
        let idx = usize::try_from(n).ok()?.checked_sub(1)?;
        // The message whose parts `n` numbers: the top-level one, or an embedded one.
        let message = match cur {
            None => msg,
            Some((p, can_self)) => match &p.kind {
                Kind::Message(inner) => inner,
                Kind::Multipart(children) => {
                    cur = Some((children.get(idx)?, true));
                    continue;
                }
                Kind::Leaf if idx == 0 && can_self => {
                    cur = Some((p, false));
                    continue;
                }
                Kind::Leaf => return None,
            },
        };
        cur = Some(match &message.kind {
            Kind::Multipart(children) => (children.get(idx)?, true),
            _ if idx == 0 => (message, false),
            _ => return None,
        });
    }
    cur.map(|(p, _)| p)
}

/// The octets of `BODY[spec]` of the message `root` in `raw`.
pub(crate) fn extract(raw: &[u8], root: &Part, spec: &SectionSpec) -> Vec<u8> {
    let (part, message) = if spec.part.is_empty() {
        (root, Some(root))
    } else {
        let Some(p) = navigate(root, &spec.part) else {
            return Vec::new();
        };
        let inner = match &p.kind {
            Kind::Message(inner) => Some(&**inner),
            _ => None,
        };
        (p, inner)
    };
    match &spec.text {
        None if spec.part.is_empty() => raw.to_vec(),
        None => raw[part.body.clone()].to_vec(),
        Some(SectionText::Mime) if spec.part.is_empty() => Vec::new(),
        Some(SectionText::Mime) => raw[part.header_range.clone()].to_vec(),
        Some(SectionText::Header) => message
            .map(|m| raw[m.header_range.clone()].to_vec())
            .unwrap_or_default(),
        Some(SectionText::Text) => message
            .map(|m| raw[m.body.clone()].to_vec())
            .unwrap_or_default(),
        Some(SectionText::HeaderFields { names, not }) => message
            .map(|m| header_fields(raw, &m.header, names, *not))
            .unwrap_or_default(),
    }
}

/// Selected header fields, byte-exact, followed by the blank line (as Dovecot returns).
/// Lines without a colon never match a name.
fn header_fields(raw: &[u8], header: &Header, names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &header.fields {
        let name = &raw[f.name.clone()];
        // A line without a colon never matches a name (so `.NOT` keeps it, like Dovecot).
        let listed = f.has_colon
            && names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(&raw[f.whole.clone()]);
            if !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    // Dovecot omits the blank line only when nothing matched in a header block that had
    // no blank line itself.
    if header.terminated || !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The decoded content of `BINARY[part]`.
///
/// RFC 3516 §4.2 / RFC 9051 §6.4.5: the section is returned after removing its
/// Content-Transfer-Encoding. `BINARY[]` is the whole message and a multipart part is
/// its body: neither has a transfer encoding of its own to remove (a multipart's must be
/// an identity encoding, RFC 2045 §6.4), so they are returned as stored.
pub(crate) fn binary(raw: &[u8], root: &Part, path: &[u32]) -> Result<Vec<u8>, BinaryError> {
    if path.is_empty() {
        return Ok(raw.to_vec());
    }
    let part = navigate(root, path).ok_or(BinaryError::NoSuchPart)?;
    if matches!(part.kind, Kind::Multipart(_)) {
        return Ok(raw[part.body.clone()].to_vec());
    }
    let body = &raw[part.body.clone()];
    let cte = part
        .cte(raw)
        .map(|v| v.trim_ascii().to_ascii_lowercase())
        .unwrap_or_else(|| b"7bit".to_vec());
    match cte.as_slice() {
        b"7bit" | b"8bit" | b"binary" | b"" => Ok(body.to_vec()),
        b"base64" => Ok(decode_base64(body)),
        b"quoted-printable" => Ok(
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                .unwrap_or_else(|| body.to_vec()),
        ),
        _ => Err(BinaryError::UnknownCte),
    }
}

/// Base64 via mail-parser; on failure retried with everything outside the alphabet dropped
/// (lenient, like most IMAP servers), and whatever complete quanta remain decoded.
fn decode_base64(body: &[u8]) -> Vec<u8> {
    use mail_parser::decoders::base64::base64_decode;
    if let Some(d) = base64_decode(body) {
        return d;
    }
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    clean.truncate(clean.len() / 4 * 4);
    base64_decode(&clean).unwrap_or_default()
}
