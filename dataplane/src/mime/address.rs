//! RFC 5322 §3.4 address lists parsed from raw header values into IMAP ENVELOPE address
//! structures (RFC 9051 §7.5.2: `(name adl mailbox host)`, group start `(NIL NIL name NIL)`,
//! group end `(NIL NIL NIL NIL)`).
//!
//! The parser follows Dovecot's lenient behaviour so that results match it: encoded words
//! stay encoded, a trailing comment becomes the name of a bare `addr-spec`, a missing
//! local part or domain is reported as `MISSING_MAILBOX`/`MISSING_DOMAIN`, and parsing stops
//! (keeping what was parsed) at the first syntax error.

use super::lexer::Lexer;

/// One ENVELOPE address element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Address {
    /// Display name (`addr-name`), or group name for a group start.
    pub name: Option<Vec<u8>>,
    /// Source route (`addr-adl`).
    pub adl: Option<Vec<u8>>,
    /// Local part (`addr-mailbox`).
    pub mailbox: Option<Vec<u8>>,
    /// Domain (`addr-host`).
    pub host: Option<Vec<u8>>,
}

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// Parses an address list. An empty result means the field is written as `NIL`.
pub(crate) fn parse_list(value: &[u8]) -> Vec<Address> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    lx.skip_cfws();
    // An empty element before a comma yields an all-missing address, a trailing comma
    // does not (Dovecot's behaviour).
    while !lx.at_end() {
        // A syntax error inside one element only stops the list if no comma follows.
        let _ = address(&mut lx, &mut out);
        if lx.at_end() || !lx.eat(b',') {
            break;
        }
    }
    out
}

/// `address = mailbox / group`. Returns false on a syntax error.
fn address(lx: &mut Lexer<'_>, out: &mut Vec<Address>) -> bool {
    let start = lx.pos;
    let mut name = Vec::new();
    if lx.peek() != Some(b'<') && lx.phrase(&mut name) && lx.peek() == Some(b':') {
        lx.eat(b':');
        out.push(Address {
            name: None,
            adl: None,
            mailbox: Some(name),
            host: None,
        });
        let mut ok = true;
        loop {
            while lx.eat(b',') {}
            if lx.at_end() || lx.peek() == Some(b';') {
                break;
            }
            let before = lx.pos;
            if !mailbox(lx, out) || lx.pos == before {
                ok = false;
                break;
            }
            if !lx.eat(b',') {
                break;
            }
        }
        out.push(Address::default());
        if ok && lx.eat(b';') {
            return true;
        }
        return ok && lx.at_end();
    }
    lx.pos = start;
    mailbox(lx, out)
}

/// `mailbox = name-addr / addr-spec`. Always records an address; false on syntax error.
fn mailbox(lx: &mut Lexer<'_>, out: &mut Vec<Address>) -> bool {
    let start = lx.pos;
    let mut addr = Address::default();
    let mut name = Vec::new();
    let ok = if lx.peek() == Some(b'<') {
        angle_addr(lx, &mut addr)
    } else if lx.phrase(&mut name) && lx.peek() == Some(b'<') {
        if !name.is_empty() {
            addr.name = Some(name);
        }
        angle_addr(lx, &mut addr)
    } else {
        lx.pos = start;
        addr_spec(lx, &mut addr)
    };
    fill_missing(&mut addr);
    out.push(addr);
    ok
}

fn fill_missing(addr: &mut Address) {
    if addr.mailbox.as_deref().is_none_or(|m| m.is_empty()) {
        addr.mailbox = Some(MISSING_MAILBOX.to_vec());
    }
    if addr.host.as_deref().is_none_or(|h| h.is_empty()) {
        addr.host = Some(MISSING_DOMAIN.to_vec());
    }
}

/// `angle-addr = "<" [route ":"] addr-spec ">"`.
fn angle_addr(lx: &mut Lexer<'_>, addr: &mut Address) -> bool {
    lx.eat(b'<');
    if lx.peek() == Some(b'@') {
        let mut route = Vec::new();
        loop {
            if !lx.eat(b'@') {
                break;
            }
            route.push(b'@');
            lx.domain(&mut route);
            if lx.eat(b',') {
                route.push(b',');
                continue;
            }
            break;
        }
        if !lx.eat(b':') {
            return false;
        }
        addr.adl = Some(route);
    }
    if lx.peek() == Some(b'>') {
        lx.eat(b'>');
        return true;
    }
    let name = addr.name.take();
    let ok = addr_spec(lx, addr);
    if name.is_some() {
        addr.name = name;
    }
    ok && lx.eat(b'>')
}

/// `addr-spec = local-part "@" domain`; a trailing comment becomes the name.
fn addr_spec(lx: &mut Lexer<'_>, addr: &mut Address) -> bool {
    lx.last_comment.clear();
    let mut local = Vec::new();
    let mut ok = lx.dot_atom(&mut local);
    addr.mailbox = Some(local);
    if lx.peek() == Some(b'@') {
        lx.eat(b'@');
        let mut host = Vec::new();
        if !lx.domain(&mut host) {
            ok = false;
        }
        addr.host = Some(host);
    }
    if !lx.last_comment.is_empty() {
        addr.name = Some(std::mem::take(&mut lx.last_comment));
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn simple_and_named() {
        assert_eq!(
            parse_list(b"Alice <alice@example.com>, bob@example.org (Bob B)"),
            vec![
                a(Some("Alice"), "alice", "example.com"),
                a(Some("Bob B"), "bob", "example.org")
            ]
        );
        assert_eq!(
            parse_list(b"\"Doe, John \\\"JD\\\"\" <j@x>"),
            vec![a(Some("Doe, John \"JD\""), "j", "x")]
        );
    }

    #[test]
    fn groups() {
        let l = parse_list(b"undisclosed-recipients:;");
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0].mailbox.as_deref(),
            Some(&b"undisclosed-recipients"[..])
        );
        assert_eq!(l[1], Address::default());
        let l = parse_list(b"G: a@b, c@d;, e@f");
        assert_eq!(l.len(), 5);
        assert_eq!(l[4], a(None, "e", "f"));
    }

    #[test]
    fn missing_parts() {
        assert_eq!(
            parse_list(b"Undisclosed <>"),
            vec![a(Some("Undisclosed"), "MISSING_MAILBOX", "MISSING_DOMAIN")]
        );
        assert_eq!(
            parse_list(b"localonly"),
            vec![a(None, "localonly", "MISSING_DOMAIN")]
        );
        assert!(parse_list(b"").is_empty());
    }

    #[test]
    fn route() {
        let l = parse_list(b"<@a.example,@b.example:x@y>");
        assert_eq!(l[0].adl.as_deref(), Some(&b"@a.example,@b.example"[..]));
        assert_eq!(l[0].mailbox.as_deref(), Some(&b"x"[..]));
    }
}
