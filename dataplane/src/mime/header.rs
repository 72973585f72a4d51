//! Raw header-block scanning (RFC 5322 §2.2): field names and unparsed values with their
//! byte offsets, as IMAP needs them (ENVELOPE uses raw values; `BODY[HEADER]` and
//! `HEADER.FIELDS` return the original octets).

use std::ops::Range;

/// One header field: `name: value` possibly folded over several lines.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// The field name (without the colon, trailing whitespace trimmed).
    pub name: Range<usize>,
    /// The raw value after the colon and the leading whitespace on the first line, up to
    /// (excluding) the line break that ends the field; folding CRLFs are kept.
    pub value: Range<usize>,
    /// The whole field including its final line break.
    pub whole: Range<usize>,
    /// False for a line without a colon (kept so that offsets stay exact, never matched).
    pub has_colon: bool,
}

/// A scanned header block.
#[derive(Clone, Debug, Default)]
pub(crate) struct Header {
    /// The fields in order.
    pub fields: Vec<Field>,
    /// Offset of the first body octet (after the blank line, or `end` if there is none).
    pub body_start: usize,
    /// True when the block ended with a blank line.
    pub terminated: bool,
}

impl Header {
    /// Scans `raw[start..end]` as a header block.
    pub fn scan(raw: &[u8], start: usize, end: usize) -> Header {
        let end = end.min(raw.len());
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = start.min(end);
        while pos < end {
            let line_end = match raw[pos..end].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i + 1,
                None => end,
            };
            let line = &raw[pos..line_end];
            let content = trim_eol(line);
            if content.is_empty() {
                // The blank line that separates header and body.
                return Header {
                    fields,
                    body_start: line_end,
                    terminated: true,
                };
            }
            if (content[0] == b' ' || content[0] == b'\t') && !fields.is_empty() {
                if let Some(f) = fields.last_mut() {
                    f.whole.end = line_end;
                    if f.has_colon {
                        f.value.end = pos + content.len();
                    }
                }
            } else {
                match content.iter().position(|&b| b == b':') {
                    Some(colon) => {
                        let mut name_end = pos + colon;
                        while name_end > pos && matches!(raw[name_end - 1], b' ' | b'\t') {
                            name_end -= 1;
                        }
                        let mut vstart = pos + colon + 1;
                        let vend = pos + content.len();
                        while vstart < vend && matches!(raw[vstart], b' ' | b'\t') {
                            vstart += 1;
                        }
                        fields.push(Field {
                            name: pos..name_end,
                            value: vstart..vend,
                            whole: pos..line_end,
                            has_colon: true,
                        });
                    }
                    None => fields.push(Field {
                        name: pos..pos + content.len(),
                        value: pos + content.len()..pos + content.len(),
                        whole: pos..line_end,
                        has_colon: false,
                    }),
                }
            }
            pos = line_end;
        }
        Header {
            fields,
            body_start: end,
            terminated: false,
        }
    }

    /// The raw value of the last field called `name` (case-insensitive).
    pub fn last<'a>(&self, raw: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .rev()
            .find(|f| f.has_colon && raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &raw[f.value.clone()])
    }
}

/// Strips a trailing LF or CRLF.
pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A raw value made single-line the way Dovecot does for IMAP strings: CR and LF removed,
/// TAB turned into SP.
pub(crate) fn clean_oneline(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .filter(|&&b| b != b'\r' && b != b'\n')
        .map(|&b| if b == b'\t' { b' ' } else { b })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_folded_fields_and_body() {
        let raw = b"Subject: a\r\n b\r\nX:y\r\nno colon\r\n\r\nbody";
        let h = Header::scan(raw, 0, raw.len());
        assert_eq!(h.fields.len(), 3);
        assert_eq!(&raw[h.fields[0].value.clone()], b"a\r\n b");
        assert_eq!(&raw[h.fields[1].value.clone()], b"y");
        assert!(!h.fields[2].has_colon);
        assert_eq!(&raw[h.body_start..], b"body");
        assert_eq!(h.last(raw, "subject"), Some(&b"a\r\n b"[..]));
    }

    #[test]
    fn no_blank_line() {
        let raw = b"A: b\r\n";
        let h = Header::scan(raw, 0, raw.len());
        assert_eq!(h.body_start, raw.len());
        let raw = b"\r\nbody";
        let h = Header::scan(raw, 0, raw.len());
        assert!(h.fields.is_empty());
        assert_eq!(h.body_start, 2);
    }
}
