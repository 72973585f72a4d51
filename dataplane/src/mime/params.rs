//! MIME header values in their raw IMAP form: `Content-Type` (RFC 2045 §5.1),
//! `Content-Disposition` (RFC 2183), `Content-Language` (RFC 3282) and parameter lists.
//!
//! BODYSTRUCTURE carries parameters as sent (RFC 9051 §7.5.2 `body-fld-param`), so RFC 2231
//! values are *not* decoded here: like Dovecot, continuations `name*0`, `name*1`... are
//! joined into `name` (or `name*` when the first segment is extended, keeping its
//! `charset'lang'` prefix and %-encoding), after the ordinary parameters. Decoded
//! parameters for searching come from `mail-parser` instead.

use super::lexer::{Lexer, is_token};

/// A parameter list `(key, value)` in IMAP order.
pub(crate) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// `type "/" subtype *(";" parameter)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContentType {
    /// Media type as written (case preserved).
    pub kind: Vec<u8>,
    /// Subtype as written.
    pub subtype: Vec<u8>,
    /// Parameters.
    pub params: Params,
}

/// Parses a `Content-Type` value; `None` when there is no type token.
pub(crate) fn content_type(value: &[u8]) -> Option<ContentType> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let mut kind = Vec::new();
    if !lx.token(&mut kind) {
        return None;
    }
    // Like Dovecot, a missing subtype is kept as an empty string.
    let mut subtype = Vec::new();
    if lx.eat(b'/') {
        lx.token(&mut subtype);
    }
    Some(ContentType {
        kind,
        subtype,
        params: params(&mut lx),
    })
}

/// Parses a `Content-Disposition` value: the disposition type and its parameters.
pub(crate) fn disposition(value: &[u8]) -> Option<(Vec<u8>, Params)> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let mut kind = Vec::new();
    if !lx.token(&mut kind) {
        return None;
    }
    Some((kind, params(&mut lx)))
}

/// Parses a `Content-Language` value into its language tags.
pub(crate) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    lx.skip_cfws();
    loop {
        while lx.eat(b',') {}
        let mut tag = Vec::new();
        if !lx.token(&mut tag) {
            break;
        }
        out.push(tag);
    }
    out
}

/// Parses `*(";" key "=" value)` leniently, stopping at the first malformed parameter, then
/// joins RFC 2231 continuations.
fn params(lx: &mut Lexer<'_>) -> Params {
    let mut raw: Params = Vec::new();
    loop {
        if !lx.eat(b';') {
            break;
        }
        if lx.at_end() {
            break;
        }
        let mut key = Vec::new();
        if !lx.token(&mut key) || !lx.eat(b'=') {
            break;
        }
        let mut value = Vec::new();
        if lx.peek() == Some(b'"') {
            lx.quoted(&mut value);
        } else {
            while let Some(b) = lx.peek() {
                if is_token(b) || b == b'=' || b == b'?' || b == b'/' || b >= 0x80 {
                    value.push(b);
                    lx.pos += 1;
                } else {
                    break;
                }
            }
            lx.skip_cfws();
        }
        raw.push((key, value));
    }
    join_rfc2231(raw)
}

/// Splits `name*N` / `name*N*` into (name, N, extended).
fn continuation(key: &[u8]) -> Option<(&[u8], u32, bool)> {
    let star = key.iter().position(|&b| b == b'*')?;
    let (name, rest) = (&key[..star], &key[star + 1..]);
    let (digits, extended) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 4 {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((name, n, extended))
}

fn join_rfc2231(raw: Params) -> Params {
    let mut plain: Params = Vec::new();
    // (lower-case name, name as written, segments)
    type Segments = Vec<(u32, bool, Vec<u8>)>;
    let mut groups: Vec<(Vec<u8>, Vec<u8>, Segments)> = Vec::new();
    for (key, value) in raw {
        match continuation(&key) {
            Some((name, n, ext)) => {
                let lower = name.to_ascii_lowercase();
                match groups.iter_mut().find(|g| g.0 == lower) {
                    Some(g) => g.2.push((n, ext, value)),
                    None => groups.push((lower, name.to_vec(), vec![(n, ext, value)])),
                }
            }
            None => plain.push((key, value)),
        }
    }
    for (_, name, mut segs) in groups {
        segs.sort_by_key(|s| s.0);
        let extended = segs.first().is_some_and(|s| s.1);
        let mut key = name;
        if extended {
            key.push(b'*');
        }
        let mut value = Vec::new();
        for (_, _, v) in segs {
            value.extend_from_slice(&v);
        }
        plain.push((key, value));
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_basic() {
        let ct = content_type(b"text/plain; charset=\"utf-8\"; format=flowed").unwrap();
        assert_eq!(ct.kind, b"text");
        assert_eq!(ct.subtype, b"plain");
        assert_eq!(
            ct.params,
            vec![
                (b"charset".to_vec(), b"utf-8".to_vec()),
                (b"format".to_vec(), b"flowed".to_vec())
            ]
        );
        assert!(content_type(b"text").unwrap().subtype.is_empty());
        assert!(content_type(b";x").is_none());
        let ct = content_type(b"text/plain; charset=").unwrap();
        assert_eq!(ct.params, vec![(b"charset".to_vec(), b"".to_vec())]);
    }

    #[test]
    fn rfc2231_continuations() {
        let ct = content_type(
            b"application/x; a*0=\"x\"; a*1=\"y\"; b*0*=UTF-8''%C3; b*1*=%A4; c*=us-ascii'en'z; d=1",
        )
        .unwrap();
        assert_eq!(
            ct.params,
            vec![
                (b"c*".to_vec(), b"us-ascii'en'z".to_vec()),
                (b"d".to_vec(), b"1".to_vec()),
                (b"a".to_vec(), b"xy".to_vec()),
                (b"b*".to_vec(), b"UTF-8''%C3%A4".to_vec()),
            ]
        );
    }

    #[test]
    fn languages_list() {
        assert_eq!(languages(b"en, de"), vec![b"en".to_vec(), b"de".to_vec()]);
        assert!(languages(b"").is_empty());
    }
}
