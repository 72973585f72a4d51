//! The IMAP wire format: framing of client messages (lines and literals), command decoding
//! (imap-codec, plus the few extensions it does not parse), response encoding, and
//! modified UTF-7 mailbox names.

pub mod condstore;
pub mod framing;
pub mod lex;
pub mod mutf7;
pub mod out;
pub mod parse;
