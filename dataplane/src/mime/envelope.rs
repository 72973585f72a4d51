//! ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) from raw header values.
//!
//! Shape: `(date subject from sender reply-to to cc bcc in-reply-to message-id)`. String
//! fields are the raw values made single-line (encoded words are *not* decoded, as in
//! Dovecot), `NIL` when the field is absent; address fields are lists of
//! `(name adl mailbox host)` or `NIL`; Sender and Reply-To default to From. When a field
//! occurs more than once, the last occurrence wins (as in Dovecot).

use super::address::{self, Address};
use super::encode::{nstring, string};
use super::header::{Header, clean_oneline};

/// Appends the ENVELOPE of the message whose header is `header`.
pub(crate) fn write(raw: &[u8], header: &Header, out: &mut Vec<u8>) {
    let text = |name: &str| header.last(raw, name).map(clean_oneline);
    let addrs = |name: &str| {
        header
            .last(raw, name)
            .map(address::parse_list)
            .unwrap_or_default()
    };
    let from = addrs("from");
    let mut sender = addrs("sender");
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addrs("reply-to");
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    out.push(b'(');
    nstring(out, text("date").as_deref());
    out.push(b' ');
    nstring(out, text("subject").as_deref());
    for list in [
        &from,
        &sender,
        &reply_to,
        &addrs("to"),
        &addrs("cc"),
        &addrs("bcc"),
    ] {
        out.push(b' ');
        write_addresses(list, out);
    }
    out.push(b' ');
    nstring(out, text("in-reply-to").as_deref());
    out.push(b' ');
    nstring(out, text("message-id").as_deref());
    out.push(b')');
}

fn write_addresses(list: &[Address], out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref());
        out.push(b' ');
        nstring(out, a.adl.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        match a.host.as_deref() {
            Some(h) => string(out, h),
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}
