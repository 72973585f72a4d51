//! The MIME structure of a message as byte ranges into the raw message (RFC 2045, RFC 2046
//! §5.1 multipart, §5.2.1 message/rfc822), located the way IMAP servers (Dovecot) do:
//!
//! - a part's header runs up to and including the blank line; its body follows;
//! - a boundary delimiter is `--boundary` at the start of a line, optionally followed by
//!   `--` (close delimiter) and trailing whitespace; the line break before a delimiter
//!   belongs to the delimiter, not to the preceding part;
//! - preamble and epilogue belong to no part; a missing close delimiter ends the last part at
//!   the end of the enclosing body; a multipart without any delimiter gets one empty
//!   `text/plain` part;
//! - `message/rfc822` bodies (and parts of `multipart/digest` without Content-Type) are
//!   parsed as embedded messages.
//!
//! Decoding (transfer encodings, charsets, RFC 2047/2231) is left to `mail-parser`; this
//! module only finds octet ranges, which `mail-parser` does not expose with these rules.

use std::ops::Range;

use super::header::Header;
use super::params::{self, ContentType};

/// Nesting beyond this depth is treated as opaque leaf content (no panic, bounded stack).
const MAX_DEPTH: usize = 64;

/// What a part contains.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// A single-part body.
    Leaf,
    /// `multipart/*` with its children.
    Multipart(Vec<Part>),
    /// `message/rfc822`: the embedded message, itself a [`Part`] whose header is the
    /// embedded message's header.
    Message(Box<Part>),
}

/// One MIME entity.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    /// Header block (including the terminating blank line, if any).
    pub header_range: Range<usize>,
    /// The scanned header fields.
    pub header: Header,
    /// The body octets.
    pub body: Range<usize>,
    /// The effective content type (defaults applied).
    pub content_type: ContentType,
    /// Structure.
    pub kind: Kind,
    /// For a multipart: its body ends right after a delimiter line whose line break was
    /// taken as the one preceding the enclosing delimiter.
    tail_delimiter: bool,
}

impl Part {
    /// Parses the entity at `raw[start..end]`. `digest` selects the multipart/digest default
    /// content type (message/rfc822).
    pub fn parse(raw: &[u8], start: usize, end: usize, digest: bool, depth: usize) -> Part {
        let header = Header::scan(raw, start, end);
        let body = header.body_start..end.max(header.body_start);
        let content_type = match header
            .last(raw, "content-type")
            .and_then(params::content_type)
        {
            Some(ct) => ct,
            None if digest => ContentType {
                kind: b"message".to_vec(),
                subtype: b"rfc822".to_vec(),
                params: Vec::new(),
            },
            None => ContentType {
                kind: b"text".to_vec(),
                subtype: b"plain".to_vec(),
                params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
            },
        };
        let mut part = Part {
            header_range: start..header.body_start,
            header,
            body,
            content_type,
            kind: Kind::Leaf,
            tail_delimiter: false,
        };
        if depth >= MAX_DEPTH {
            return part;
        }
        let ct = &part.content_type;
        if ct.kind.eq_ignore_ascii_case(b"multipart") {
            let boundary = ct
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"boundary"))
                .map(|(_, v)| v.clone());
            // Without a usable boundary (or without any delimiter) a multipart gets one empty
            // text/plain part, as in Dovecot.
            if let Some(boundary) = boundary.filter(|b| !b.is_empty()) {
                let digest = ct.subtype.eq_ignore_ascii_case(b"digest");
                let (ranges, tail) = split_multipart(raw, part.body.clone(), &boundary);
                part.tail_delimiter = tail;
                let children = ranges
                    .into_iter()
                    .map(|(r, line_break)| {
                        let mut child = Part::parse(raw, r.start, r.end, digest, depth + 1);
                        // A delimiter line consumes its own line break, so that line break
                        // cannot also precede the next (enclosing) delimiter: the child
                        // keeps it (this is what Dovecot does).
                        if line_break > 0 && child.ends_with_delimiter() {
                            child.extend_to(r.end + line_break);
                        }
                        child
                    })
                    .collect::<Vec<_>>();
                let children = if children.is_empty() {
                    let at = part.body.end;
                    vec![Part::parse(raw, at, at, false, depth + 1)]
                } else {
                    children
                };
                part.kind = Kind::Multipart(children);
            } else {
                let at = part.body.end;
                part.kind = Kind::Multipart(vec![Part::parse(raw, at, at, false, depth + 1)]);
            }
        } else if ct.kind.eq_ignore_ascii_case(b"message")
            && ct.subtype.eq_ignore_ascii_case(b"rfc822")
        {
            // Parsed as a message whatever its transfer encoding (as Dovecot does; an
            // encoded one yields an empty envelope and body).
            let inner = Part::parse(raw, part.body.start, part.body.end, false, depth + 1);
            part.kind = Kind::Message(Box::new(inner));
        }
        part
    }

    /// True when the last line of this entity was consumed whole (a delimiter line, or a
    /// header line of a header block without blank line), so the line break before an
    /// enclosing delimiter belongs to this entity.
    fn ends_with_delimiter(&self) -> bool {
        if !self.header.terminated && !self.header_range.is_empty() && self.body.is_empty() {
            return true;
        }
        match &self.kind {
            Kind::Multipart(_) => self.tail_delimiter,
            Kind::Message(inner) => inner.body.end == self.body.end && inner.ends_with_delimiter(),
            Kind::Leaf => false,
        }
    }

    fn extend_to(&mut self, end: usize) {
        let old = self.body.end;
        if !self.header.terminated && self.body.is_empty() {
            self.header_range.end = end;
            self.header.body_start = end;
            self.body = end..end;
            return;
        }
        self.body.end = end;
        if let Kind::Message(inner) = &mut self.kind
            && inner.body.end == old
        {
            inner.extend_to(end);
        }
    }

    /// The raw Content-Transfer-Encoding value, if present.
    pub fn cte<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        self.header.last(raw, "content-transfer-encoding")
    }

    /// True for `text/*`.
    pub fn is_text(&self) -> bool {
        self.content_type.kind.eq_ignore_ascii_case(b"text")
    }
}

/// Is the line starting at `pos` a delimiter for `boundary`? Returns Some(is_close).
fn delimiter_at(raw: &[u8], pos: usize, end: usize, boundary: &[u8]) -> Option<bool> {
    let line = &raw[pos..end];
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let rest = &rest[..line_end];
    let (close, tail) = match rest.strip_prefix(b"--") {
        Some(t) => (true, t),
        None => (false, rest),
    };
    if tail.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r')) {
        Some(close)
    } else {
        None
    }
}

/// The ranges of the body parts of a multipart body, each with the length of the line
/// break excluded before the following delimiter, and whether the body ends right after a
/// delimiter line that has no line break of its own.
fn split_multipart(
    raw: &[u8],
    body: Range<usize>,
    boundary: &[u8],
) -> (Vec<(Range<usize>, usize)>, bool) {
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = body.start;
    while pos < body.end {
        let line_end = match raw[pos..body.end].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => body.end,
        };
        if let Some(close) = delimiter_at(raw, pos, body.end, boundary) {
            if let Some(start) = current.take() {
                let mut end = pos;
                if end > start && raw[end - 1] == b'\n' {
                    end -= 1;
                    if end > start && raw[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let end = end.max(start);
                parts.push((start..end, pos - end));
            }
            let tail = line_end == body.end && raw[line_end - 1] != b'\n';
            if close {
                return (parts, tail);
            }
            if tail {
                // A delimiter as the very last line: one empty part follows it.
                parts.push((body.end..body.end, 0));
                return (parts, true);
            }
            current = Some(line_end);
        }
        pos = line_end;
    }
    if let Some(start) = current {
        parts.push((start.min(body.end)..body.end, 0));
    }
    (parts, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_parts() {
        let raw = b"pre\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n--b--\r\nepi";
        let (parts, tail) = split_multipart(raw, 0..raw.len(), b"b");
        assert!(!tail);
        assert_eq!(parts.len(), 2);
        assert_eq!(&raw[parts[0].0.clone()], b"A: 1\r\n\r\none");
        assert_eq!(parts[0].1, 2);
        assert_eq!(&raw[parts[1].0.clone()], b"\r\ntwo");
    }

    #[test]
    fn missing_close_and_prefix_boundaries() {
        let raw = b"--b\r\n\r\nx\r\n--bb\r\ny\r\n";
        let (parts, _) = split_multipart(raw, 0..raw.len(), b"b");
        assert_eq!(parts.len(), 1);
        assert_eq!(&raw[parts[0].0.clone()], b"\r\nx\r\n--bb\r\ny\r\n");
    }
}
