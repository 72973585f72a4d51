//! A small tokenizer over one complete client message (literals already inline).
//!
//! imap-codec parses the base grammar; this lexer serves the extensions it does not parse
//! (LIST-EXTENDED, ESEARCH `RETURN`, the SEARCHRES `$` marker) by locating tokens and their
//! byte spans so that the message can be read or rewritten without touching the contents of
//! quoted strings and literals.

use std::ops::Range;

/// One token of a client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// An atom, including list wildcards `%`/`*` and `]`, as raw bytes.
    Atom(Vec<u8>),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// A literal's contents (`{n}`, `{n+}` or `~{n}`).
    Literal(Vec<u8>),
    /// `(`.
    Open,
    /// `)`.
    Close,
}

impl Token {
    /// The token as a string argument (atom, quoted or literal), if it is one.
    pub fn string(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(b) | Token::Quoted(b) | Token::Literal(b) => Some(b),
            Token::Open | Token::Close => None,
        }
    }

    /// True when the token is an atom equal to `word`, ASCII case-insensitively.
    pub fn is_atom(&self, word: &str) -> bool {
        matches!(self, Token::Atom(a) if a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// Why a message could not be tokenized.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A quoted string without its closing quote, or with a bad escape.
    #[error("unterminated or invalid quoted string")]
    Quoted,
    /// A malformed literal announcement.
    #[error("invalid literal")]
    Literal,
}

/// Splits `msg` (without its final CRLF, or with it) into tokens with their byte spans.
///
/// # Errors
/// [`LexError`] for an unterminated quoted string or a malformed literal.
pub fn tokenize(msg: &[u8]) -> Result<Vec<(Token, Range<usize>)>, LexError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < msg.len() {
        let start = i;
        match msg[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((Token::Open, start..start + 1));
                i += 1;
            }
            b')' => {
                out.push((Token::Close, start..start + 1));
                i += 1;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match msg.get(i) {
                        None | Some(b'\r') | Some(b'\n') => return Err(LexError::Quoted),
                        Some(b'"') => break,
                        Some(b'\\') => match msg.get(i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                s.push(c);
                                i += 2;
                            }
                            _ => return Err(LexError::Quoted),
                        },
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((Token::Quoted(s), start..i));
            }
            b'{' | b'~' if msg[i] == b'{' || msg.get(i + 1) == Some(&b'{') => {
                if msg[i] == b'~' {
                    i += 1;
                }
                let close = msg[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or(LexError::Literal)?
                    + i;
                let digits = msg[i + 1..close]
                    .strip_suffix(b"+")
                    .unwrap_or(&msg[i + 1..close]);
                let digits = digits.strip_suffix(b"-").unwrap_or(digits);
                let len: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(LexError::Literal)?;
                let mut body = close + 1;
                if msg.get(body) == Some(&b'\r') {
                    body += 1;
                }
                if msg.get(body) != Some(&b'\n') {
                    return Err(LexError::Literal);
                }
                body += 1;
                let end = body.checked_add(len).ok_or(LexError::Literal)?;
                let data = msg.get(body..end).ok_or(LexError::Literal)?;
                out.push((Token::Literal(data.to_vec()), start..end));
                i = end;
            }
            _ => {
                while i < msg.len() && !matches!(msg[i], b' ' | b'(' | b')' | b'"' | b'\r' | b'\n')
                {
                    if msg[i] == b'{' {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    // A lone '{' not starting a literal: take it as an atom character.
                    i += 1;
                }
                out.push((Token::Atom(msg[start..i].to_vec()), start..i));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_every_kind() {
        let toks: Vec<Token> =
            tokenize(b"a1 LIST (SUBSCRIBED) \"\" {3}\r\nf%* RETURN (STATUS (MESSAGES))\r\n")
                .expect("valid")
                .into_iter()
                .map(|(t, _)| t)
                .collect();
        assert_eq!(
            toks,
            vec![
                Token::Atom(b"a1".to_vec()),
                Token::Atom(b"LIST".to_vec()),
                Token::Open,
                Token::Atom(b"SUBSCRIBED".to_vec()),
                Token::Close,
                Token::Quoted(vec![]),
                Token::Literal(b"f%*".to_vec()),
                Token::Atom(b"RETURN".to_vec()),
                Token::Open,
                Token::Atom(b"STATUS".to_vec()),
                Token::Open,
                Token::Atom(b"MESSAGES".to_vec()),
                Token::Close,
                Token::Close,
            ]
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for bad in [
            &b"a \"open"[..],
            b"a {99}\r\nshort",
            b"a {x}\r\n",
            b"a {3}xyz",
            b"a \"\\q\"",
        ] {
            assert!(tokenize(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(tokenize(b"a {18446744073709551615}\r\n").is_err());
    }
}
