//! LMTP replies: a reply code (RFC 5321 §4.2) with an RFC 3463 enhanced status code
//! (advertised as ENHANCEDSTATUSCODES, RFC 2034) and a text.

use std::fmt;

pub use mcp_plugin_api::EnhancedStatus;

/// One reply, e.g. `250 2.1.5 Recipient OK`. Multi-line replies (LHLO) are several lines
/// of one code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200..=599.
    pub code: u16,
    /// The enhanced status code; its class equals the first digit of `code` for 2xx, 4xx
    /// and 5xx replies (RFC 2034 §3); `None` for 220/221/354, where RFC 2034 allows none.
    pub status: Option<EnhancedStatus>,
    /// The text lines, printable ASCII; one line for all but multi-line replies.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code. Control characters in `text` are
    /// replaced by `?` so that a reply can never break the line framing.
    pub fn new(code: u16, status: EnhancedStatus, text: impl Into<String>) -> Self {
        Self {
            code,
            status: Some(status),
            lines: vec![sanitize(&text.into())],
        }
    }

    /// A one-line reply without an enhanced status code (greeting, 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            status: None,
            lines: vec![sanitize(&text.into())],
        }
    }

    /// A reply with `code` and enhanced status `class.subject.detail`; see [`Reply::new`].
    pub fn code(code: u16, class: u8, subject: u16, detail: u16, text: &str) -> Self {
        Self::new(code, EnhancedStatus::new(class, subject, detail), text)
    }

    /// The first digit of the code: 2 (success), 3 (intermediate), 4 (transient failure)
    /// or 5 (permanent failure).
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// True for a 2xx reply.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// The wire form: every line `CODE-[STATUS ]TEXT\r\n`, the last with `CODE SP`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// `250 2.1.0 Sender OK`.
    pub fn sender_ok() -> Self {
        Self::code(250, 2, 1, 0, "Sender OK")
    }

    /// `250 2.1.5 Recipient OK`.
    pub fn recipient_ok() -> Self {
        Self::code(250, 2, 1, 5, "Recipient OK")
    }

    /// `250 2.0.0 OK`.
    pub fn ok() -> Self {
        Self::code(250, 2, 0, 0, "OK")
    }

    /// `503 5.5.1 <text>`: bad sequence of commands (RFC 5321 §4.2.4).
    pub fn bad_sequence(text: &str) -> Self {
        Self::code(503, 5, 5, 1, text)
    }

    /// `550 5.1.1 <address>: no such user here` (RFC 3463 X.1.1, bad destination mailbox).
    pub fn no_such_user(address: &str) -> Self {
        Self::code(550, 5, 1, 1, &format!("<{address}>: no such user here"))
    }

    /// `550 5.2.1 <address>: mailbox disabled` (RFC 3463 X.2.1).
    pub fn mailbox_disabled(address: &str) -> Self {
        Self::code(
            550,
            5,
            2,
            1,
            &format!("<{address}>: mailbox disabled, not accepting messages"),
        )
    }

    /// `552 5.3.4 Message too big (limit N octets)` (RFC 1870 §6.1, RFC 3463 X.3.4).
    pub fn too_big(limit: usize) -> Self {
        Self::code(
            552,
            5,
            3,
            4,
            &format!("Message too big for system (limit {limit} octets)"),
        )
    }

    /// `452 4.2.2 <address>: mailbox full` (RFC 3463 X.2.2, "mailbox full", which "should
    /// be used as a persistent transient failure"): the copy would take the recipient over
    /// quota (docs/quota.md). The sender's MTA keeps the message queued and retries, so it
    /// is delivered once the user frees room, or bounced when the queue lifetime ends.
    pub fn mailbox_full(address: &str, why: &str) -> Self {
        Self::code(
            452,
            4,
            2,
            2,
            &format!("<{address}>: mailbox full, over quota ({why})"),
        )
    }

    /// `451 4.3.0 <text>`: a local error; the client retries later (RFC 3463 X.3.0).
    pub fn local_error(text: &str) -> Self {
        Self::code(451, 4, 3, 0, text)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        if self.lines.is_empty() {
            return write!(f, "{}\r\n", self.code);
        }
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            match self.status {
                Some(s) => write!(f, "{}{sep}{s} {line}\r\n", self.code)?,
                None => write!(f, "{}{sep}{line}\r\n", self.code)?,
            }
        }
        Ok(())
    }
}

/// Text safe to put on a reply line: printable ASCII and spaces, at most 400 characters.
fn sanitize(text: &str) -> String {
    text.chars()
        .take(400)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_multi_line_wire_forms() {
        let cases = [
            (Reply::recipient_ok(), "250 2.1.5 Recipient OK\r\n"),
            (Reply::plain(354, "Go ahead"), "354 Go ahead\r\n"),
            (
                Reply {
                    code: 250,
                    status: None,
                    lines: vec!["host".into(), "PIPELINING".into()],
                },
                "250-host\r\n250 PIPELINING\r\n",
            ),
            (
                Reply::code(550, 5, 1, 1, "bad\r\nRCPT TO:<x>"),
                "550 5.1.1 bad??RCPT TO:<x>\r\n",
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(reply.to_string(), wire);
        }
    }

    #[test]
    fn class_follows_the_code() {
        assert!(Reply::ok().is_positive());
        assert_eq!(Reply::too_big(10).class(), 5);
        assert_eq!(Reply::local_error("x").class(), 4);
    }
}
