//! A small IMAP value writer for the cached FETCH forms (RFC 9051 §4, §9 `nstring`, `string`,
//! `quoted`, `literal`).
//!
//! We do not go through `imap-codec` here: its `BodyStructure`/`Envelope` model normalises
//! values (e.g. it cannot carry an empty parameter value or the exact, un-normalised
//! parameter lists Dovecot returns), and the differential test against Dovecot needs
//! the values byte for byte. The rules implemented are the ones RFC 9051 §4.3 gives: a
//! quoted string when every octet is a 7-bit `QUOTED-CHAR` (with `"` and `\` escaped),
//! otherwise a synchronizing literal `{n}\r\n...`.

/// Appends `s` as an IMAP `string`: quoted when safe, a literal otherwise. NUL octets are
/// dropped, as IMAP forbids them in both forms.
pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    let needs_literal = s.iter().any(|&b| b >= 0x80 || b == b'\r' || b == b'\n');
    if needs_literal {
        let clean: Vec<u8> = s.iter().copied().filter(|&b| b != 0).collect();
        out.push(b'{');
        out.extend_from_slice(clean.len().to_string().as_bytes());
        out.extend_from_slice(b"}\r\n");
        out.extend_from_slice(&clean);
    } else {
        out.push(b'"');
        for &b in s {
            match b {
                0 => {}
                b'"' | b'\\' => {
                    out.push(b'\\');
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
        out.push(b'"');
    }
}

/// Appends `s` as an IMAP `nstring`: `NIL` for `None`, else [`string`].
pub(crate) fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends a decimal `number`.
pub(crate) fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, v);
        out
    }

    #[test]
    fn quoted_when_safe() {
        assert_eq!(s(b"hello world"), b"\"hello world\"");
        assert_eq!(s(b""), b"\"\"");
        assert_eq!(s(b"a\"b\\c"), b"\"a\\\"b\\\\c\"");
    }

    #[test]
    fn literal_for_8bit_and_newlines() {
        assert_eq!(s("grüß".as_bytes()), b"{6}\r\ngr\xc3\xbc\xc3\x9f");
        assert_eq!(s(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(s(b"\xff\x00"), b"{1}\r\n\xff");
    }

    #[test]
    fn nil_and_numbers() {
        let mut out = Vec::new();
        nstring(&mut out, None);
        out.push(b' ');
        number(&mut out, 42);
        assert_eq!(out, b"NIL 42");
    }
}
