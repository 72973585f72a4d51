//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3; still used by IMAP4rev2 clients that
//! have not enabled UTF8=ACCEPT, RFC 9051 §5.1).

use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Why a name is not valid modified UTF-7.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 mailbox name")]
pub struct Mutf7Error;

/// Decodes a modified UTF-7 name to UTF-8.
///
/// # Errors
/// [`Mutf7Error`] for a non-printable or 8-bit octet, an unterminated or empty-but-not-`&-`
/// shift sequence, bad base64, odd UTF-16, unpaired surrogates, or an encoded run that only
/// holds printable ASCII (which RFC 3501 forbids encoding), or any other non-canonical
/// spelling such as two adjacent shift sequences (`&ZeVnLIqe-&U,BTFw-`): like Dovecot, a
/// name is accepted only when it re-encodes to itself, so that the name a client creates
/// is the name LIST shows it.
pub fn decode(name: &[u8]) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if !(0x20..=0x7e).contains(&c) {
            return Err(Mutf7Error);
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = name[i + 1..]
            .iter()
            .position(|&b| b == b'-')
            .ok_or(Mutf7Error)?
            + i
            + 1;
        let run = &name[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(run).map_err(|_| Mutf7Error)?;
            if bytes.len() % 2 != 0 {
                return Err(Mutf7Error);
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).map_err(|_| Mutf7Error)?;
            if text.chars().any(|ch| (' '..='~').contains(&ch)) {
                return Err(Mutf7Error);
            }
            out.push_str(&text);
        }
        i = end + 1;
    }
    if encode(&out).as_bytes() != name {
        return Err(Mutf7Error);
    }
    Ok(out)
}

/// Encodes a UTF-8 name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_examples() {
        let cases = [
            ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
            ("&-", "&"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("&2D3eAA-", "😀"),
            ("plain", "plain"),
            ("&ZeVnLIqe-&-", "日本語&"),
        ];
        for (wire, utf8) in cases {
            assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(utf8), "{wire}");
            assert_eq!(encode(utf8), wire, "{utf8}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in [
            "&",
            "&Jjo",
            "&AGE-",
            "&U,BTFw",
            "a\u{e9}",
            "&Jjo!-",
            "&2D0-",
            "&ZeVnLIqe-&U,BTFw-",
        ] {
            assert_eq!(decode(bad.as_bytes()), Err(Mutf7Error), "{bad:?}");
        }
    }
}
