//! Splitting the client's byte stream into messages (a command line plus its literals),
//! with the limits that keep a hostile client from exhausting memory.
//!
//! Built on imap-codec's I/O-free [`Fragmentizer`]. The caller feeds bytes with
//! [`Framer::push`] and calls [`Framer::advance`] until it returns [`Frame::NeedMore`].

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    NeedMore,
    /// A complete message is available in [`Framer::message`].
    Message,
    /// The client announced a synchronising literal within the limit: the server must send a
    /// continuation request (`+ ...`) before the client sends it (RFC 9051 §4.3).
    NeedContinuation,
    /// A synchronising literal over the limit: answer the tag with `NO [TOOBIG]` (the client
    /// will not send the literal; framing continues with the next line).
    LiteralTooBig {
        /// Tag of the command, if one could be read.
        tag: Option<String>,
        /// Announced size, octets.
        size: u32,
    },
    /// A non-synchronising literal over the limit, or a line over the limit: the stream
    /// cannot be resynchronised safely; the server says `BYE` and closes.
    Fatal(&'static str),
}

/// Message framer for one connection.
#[derive(Debug)]
pub struct Framer {
    frag: Fragmentizer,
    max_line: usize,
    max_literal: u32,
    /// Where the line being parsed starts in the message buffer, when not inside a literal.
    line_start: Option<usize>,
}

impl Framer {
    /// A framer with a maximum line length and maximum literal size, both in octets.
    pub fn new(max_line: usize, max_literal: u32) -> Self {
        let max_message = max_literal
            .saturating_add(u32::try_from(max_line.saturating_mul(4)).unwrap_or(u32::MAX));
        Self {
            frag: Fragmentizer::new(max_message),
            max_line,
            max_literal,
            line_start: Some(0),
        }
    }

    /// Feeds bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.frag.enqueue_bytes(bytes);
    }

    /// Advances framing; see [`Frame`].
    pub fn advance(&mut self) -> Frame {
        loop {
            let Some(fragment) = self.frag.progress() else {
                if let Some(start) = self.line_start
                    && self.frag.message_bytes().len().saturating_sub(start) > self.max_line
                {
                    return Frame::Fatal("Command line too long");
                }
                return Frame::NeedMore;
            };
            match fragment {
                FragmentInfo::Line {
                    end,
                    start,
                    announcement,
                    ..
                } => {
                    if end - start > self.max_line {
                        return Frame::Fatal("Command line too long");
                    }
                    match announcement {
                        None => {
                            self.line_start = Some(0);
                            return Frame::Message;
                        }
                        Some(LiteralAnnouncement { mode, length }) => {
                            self.line_start = None;
                            if length > self.max_literal {
                                return match mode {
                                    LiteralMode::Sync => {
                                        let tag =
                                            self.frag.decode_tag().map(|t| t.as_ref().to_owned());
                                        self.frag.skip_message();
                                        self.line_start = Some(0);
                                        Frame::LiteralTooBig { tag, size: length }
                                    }
                                    LiteralMode::NonSync => Frame::Fatal("Literal too large"),
                                };
                            }
                            if mode == LiteralMode::Sync {
                                return Frame::NeedContinuation;
                            }
                        }
                    }
                }
                FragmentInfo::Literal { end, .. } => {
                    self.line_start = Some(end);
                }
            }
        }
    }

    /// The current complete message (valid after [`Frame::Message`]), CRLF included.
    pub fn message(&self) -> &[u8] {
        self.frag.message_bytes()
    }

    /// Drops everything buffered, e.g. bytes pipelined after STARTTLS (RFC 9051 §6.2.1:
    /// they must not be executed).
    pub fn discard_buffered(&mut self) {
        self.frag = Fragmentizer::new(
            self.max_literal
                .saturating_add(u32::try_from(self.max_line.saturating_mul(4)).unwrap_or(u32::MAX)),
        );
        self.line_start = Some(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_literals_and_limits() {
        let mut f = Framer::new(100, 10);
        f.push(b"a NOOP\r\nb APPEND x {3}\r\n");
        assert_eq!(f.advance(), Frame::Message);
        assert_eq!(f.message(), b"a NOOP\r\n");
        assert_eq!(f.advance(), Frame::NeedContinuation);
        assert_eq!(f.advance(), Frame::NeedMore);
        f.push(b"abc\r\nc APPEND x {3+}\r\nxyz\r\n");
        assert_eq!(f.advance(), Frame::Message);
        assert_eq!(f.message(), b"b APPEND x {3}\r\nabc\r\n");
        assert_eq!(f.advance(), Frame::Message);
        f.push(b"d APPEND x {11}\r\ne NOOP\r\n");
        assert_eq!(
            f.advance(),
            Frame::LiteralTooBig {
                tag: Some("d".into()),
                size: 11
            }
        );
        assert_eq!(f.advance(), Frame::Message);
        assert_eq!(f.message(), b"e NOOP\r\n");
        f.push(b"f APPEND x {11+}\r\n");
        assert_eq!(f.advance(), Frame::Fatal("Literal too large"));
    }

    #[test]
    fn overlong_line_is_fatal_even_without_newline() {
        let mut f = Framer::new(100, 10);
        f.push(&[b'x'; 150]);
        assert_eq!(f.advance(), Frame::Fatal("Command line too long"));
    }
}
