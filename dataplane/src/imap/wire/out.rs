//! Response encoding helpers (RFC 9051 §4, §7): strings as atoms, quoted strings or literals.

/// Appends `s` as an IMAP `string`: quoted when every octet allows it, else a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if quotable(s) {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `s` as an `astring`: a bare atom when it is one, else as [`string`].
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&c| is_astring_char(c)) {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// Appends `s` as an `nstring`: `NIL` for `None`.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends a synchronising literal `{n}\r\n` followed by `s`.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends a mailbox name: modified UTF-7 (RFC 3501 §5.1.3) unless the client enabled
/// UTF8=ACCEPT (RFC 6855/9051), then UTF-8; always as a quoted string or literal, as
/// Dovecot does, so that names like `INBOX` and `a b` are uniform.
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        string(out, name.as_bytes());
    } else {
        string(out, super::mutf7::encode(name).as_bytes());
    }
}

fn quotable(s: &[u8]) -> bool {
    s.len() < 1024
        && s.iter()
            .all(|&c| c != 0 && c != b'\r' && c != b'\n' && c < 0x80)
}

/// `ASTRING-CHAR` of RFC 9051 §9: ATOM-CHAR or `]`.
pub fn is_astring_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_choose_the_right_form() {
        let cases: [(&[u8], &str); 5] = [
            (b"abc", "\"abc\""),
            (b"a\"b\\", "\"a\\\"b\\\\\""),
            (b"l\r\n", "{3}\r\nl\r\n"),
            ("\u{e9}".as_bytes(), "{2}\r\n\u{e9}"),
            (b"", "\"\""),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            string(&mut out, input);
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
        let mut out = Vec::new();
        astring(&mut out, b"INBOX");
        astring(&mut out, b" x");
        assert_eq!(out, b"INBOX\" x\"");
    }
}
