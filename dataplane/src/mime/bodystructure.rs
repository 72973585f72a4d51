//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 `body`, RFC 3501 §7.4.2).
//!
//! Single part: `(type subtype params id description encoding size [lines] ...)` with
//! `lines` for `text/*`, and for `message/rfc822` the embedded `envelope body lines`;
//! BODYSTRUCTURE adds `md5 disposition language location`. Multipart: `(part1)(part2)...
//! subtype`, BODYSTRUCTURE adds `params disposition language location`. Defaults: missing
//! Content-Type is `text/plain; charset=us-ascii`, a text part without charset gets
//! `("charset" "us-ascii")` appended, missing Content-Transfer-Encoding is `7bit`. Sizes are
//! in octets counting a bare LF as CRLF; lines count LFs.

use super::encode::{nstring, number, string};
use super::envelope;
use super::header::clean_oneline;
use super::params::{self, Params};
use super::tree::{Kind, Part};

/// Appends BODY (`extended == false`) or BODYSTRUCTURE (`extended == true`) of `part`.
pub(crate) fn write(raw: &[u8], part: &Part, extended: bool, out: &mut Vec<u8>) {
    out.push(b'(');
    match &part.kind {
        Kind::Multipart(children) => {
            for child in children {
                write(raw, child, extended, out);
            }
            out.push(b' ');
            string(out, &part.content_type.subtype);
            if extended {
                out.push(b' ');
                write_params(&part.content_type.params, out);
                write_extension(raw, part, out);
            }
        }
        kind => {
            let ct = &part.content_type;
            string(out, &ct.kind);
            out.push(b' ');
            string(out, &ct.subtype);
            out.push(b' ');
            let mut p = ct.params.clone();
            if part.is_text() && !p.iter().any(|(k, _)| k.eq_ignore_ascii_case(b"charset")) {
                p.push((b"charset".to_vec(), b"us-ascii".to_vec()));
            }
            write_params(&p, out);
            out.push(b' ');
            nstring(out, field(raw, part, "content-id").as_deref());
            out.push(b' ');
            nstring(out, field(raw, part, "content-description").as_deref());
            out.push(b' ');
            let cte = field(raw, part, "content-transfer-encoding")
                .map(|v| v.trim_ascii().to_vec())
                .unwrap_or_else(|| b"7bit".to_vec());
            string(out, &cte);
            out.push(b' ');
            let body = &raw[part.body.clone()];
            number(out, virtual_size(body));
            if let Kind::Message(inner) = kind {
                out.push(b' ');
                envelope::write(raw, &inner.header, out);
                out.push(b' ');
                write(raw, inner, extended, out);
                out.push(b' ');
                number(out, lines(body));
            } else if part.is_text() {
                out.push(b' ');
                number(out, lines(body));
            }
            if extended {
                out.push(b' ');
                nstring(out, field(raw, part, "content-md5").as_deref());
                write_extension(raw, part, out);
            }
        }
    }
    out.push(b')');
}

/// ` disposition language location`.
fn write_extension(raw: &[u8], part: &Part, out: &mut Vec<u8>) {
    out.push(b' ');
    match part
        .header
        .last(raw, "content-disposition")
        .and_then(params::disposition)
    {
        Some((kind, p)) => {
            out.push(b'(');
            string(out, &kind);
            out.push(b' ');
            write_params(&p, out);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let langs = part
        .header
        .last(raw, "content-language")
        .map(params::languages)
        .unwrap_or_default();
    if langs.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in langs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(out, l);
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring(out, field(raw, part, "content-location").as_deref());
}

fn write_params(p: &Params, out: &mut Vec<u8>) {
    if p.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k);
        out.push(b' ');
        string(out, v);
    }
    out.push(b')');
}

fn field(raw: &[u8], part: &Part, name: &str) -> Option<Vec<u8>> {
    part.header.last(raw, name).map(clean_oneline)
}

/// Size in octets with every bare LF counted as CRLF (RFC 9051 §2.3.4 canonical form).
pub(crate) fn virtual_size(body: &[u8]) -> u64 {
    let bare_lf = body
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || body[i - 1] != b'\r'))
        .count();
    (body.len() + bare_lf) as u64
}

/// Number of lines (LF octets).
pub(crate) fn lines(body: &[u8]) -> u64 {
    body.iter().filter(|&&b| b == b'\n').count() as u64
}
