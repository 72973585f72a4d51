//! Splitting the client's byte stream into messages (a command line plus its literals),
//! with the limits that keep a hostile client from exhausting memory.
//!
//! Built on imap-codec's I/O-free [`Fragmentizer`]. The caller feeds bytes with
//! [`Framer::push`] and calls [`Framer::advance`] until it returns [`Frame::NeedMore`].

use std::collections::VecDeque;

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

/// Above this size a finished message's buffer is released instead of kept for reuse
/// (octets), so that one large APPEND does not pin its size in an idle session.
const KEEP_BUFFER: usize = 64 * 1024;

/// Message framer for one connection.
///
/// Received bytes wait in `pending`; the [`Fragmentizer`] is fed only up to the end of the
/// fragment it is parsing (through the next LF in a line, or the rest of a literal). So it
/// never holds bytes of the next message, and can be replaced by a fresh one between
/// messages, which frees the buffer of a large message.
#[derive(Debug)]
pub struct Framer {
    frag: Fragmentizer,
    pending: VecDeque<u8>,
    max_line: usize,
    max_literal: u32,
    /// Where the line being parsed starts in the message buffer, when not inside a literal.
    line_start: Option<usize>,
    /// Octets of the announced literal not yet fed, while inside a literal.
    literal_left: Option<usize>,
    /// The last returned frame was a complete message.
    complete: bool,
}

impl Framer {
    /// A framer with a maximum line length and maximum literal size, both in octets.
    pub fn new(max_line: usize, max_literal: u32) -> Self {
        Self {
            frag: Self::fragmentizer(max_line, max_literal),
            pending: VecDeque::new(),
            max_line,
            max_literal,
            line_start: Some(0),
            literal_left: None,
            complete: false,
        }
    }

    fn fragmentizer(max_line: usize, max_literal: u32) -> Fragmentizer {
        let lines = u32::try_from(max_line.saturating_mul(4)).unwrap_or(u32::MAX);
        Fragmentizer::new(max_literal.saturating_add(lines))
    }

    /// Feeds bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend(bytes);
    }

    /// True while a literal's octets are being received: a good time for large reads.
    pub fn in_literal(&self) -> bool {
        self.literal_left.is_some()
    }

    /// Moves the next chunk of `pending` into the fragmentizer; false when nothing is pending.
    fn feed(&mut self) -> bool {
        if self.pending.is_empty() {
            if self.pending.capacity() > KEEP_BUFFER {
                self.pending = VecDeque::new();
            }
            return false;
        }
        let n = match self.literal_left {
            Some(left) => left.min(self.pending.len()),
            None => self
                .pending
                .iter()
                .position(|&c| c == b'\n')
                .map_or(self.pending.len(), |i| i + 1),
        };
        let chunk: Vec<u8> = self.pending.drain(..n).collect();
        if let Some(left) = self.literal_left.as_mut() {
            *left -= n;
        }
        self.frag.enqueue_bytes(&chunk);
        true
    }

    /// Advances framing; see [`Frame`].
    pub fn advance(&mut self) -> Frame {
        if std::mem::take(&mut self.complete) && self.frag.message_bytes().len() > KEEP_BUFFER {
            // Between messages the fragmentizer holds nothing else (see `feed`).
            self.frag = Self::fragmentizer(self.max_line, self.max_literal);
        }
        loop {
            let Some(fragment) = self.frag.progress() else {
                if let Some(start) = self.line_start
                    && self.frag.message_bytes().len().saturating_sub(start) > self.max_line
                {
                    return Frame::Fatal("Command line too long");
                }
                if self.feed() {
                    continue;
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
                            self.complete = true;
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
                            self.literal_left = Some(length as usize);
                            if mode == LiteralMode::Sync {
                                return Frame::NeedContinuation;
                            }
                        }
                    }
                }
                FragmentInfo::Literal { end, .. } => {
                    self.literal_left = None;
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
        *self = Self::new(self.max_line, self.max_literal);
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
