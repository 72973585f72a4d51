//! RFC 5322 §3.2 lexical tokens (CFWS, atoms, quoted strings, comments) over raw header
//! values, and RFC 2045 §5.1 MIME tokens. Used for address lists and MIME parameters, whose
//! raw (undecoded) form IMAP returns.

/// A cursor over a raw header value.
pub(crate) struct Lexer<'a> {
    data: &'a [u8],
    /// Current offset.
    pub pos: usize,
    /// Content of the last comment skipped (used as display name for `addr (Name)`).
    pub last_comment: Vec<u8>,
}

/// RFC 5322 `atext`, plus 8-bit octets (tolerated as Dovecot does).
pub(crate) fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// RFC 2045 `token` octet.
pub(crate) fn is_token(b: u8) -> bool {
    b > b' ' && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

impl<'a> Lexer<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            last_comment: Vec::new(),
        }
    }

    /// The current octet, if any.
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// True at the end of input.
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Skips whitespace, line breaks and comments. Returns false on an unterminated comment
    /// (the rest of the input is consumed).
    pub fn skip_cfws(&mut self) -> bool {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if !self.skip_comment() {
                        return false;
                    }
                }
                _ => break,
            }
        }
        true
    }

    fn skip_comment(&mut self) -> bool {
        self.last_comment.clear();
        let mut level = 0usize;
        let start = self.pos + 1;
        while let Some(b) = self.peek() {
            match b {
                b'(' => level += 1,
                b')' => {
                    level = level.saturating_sub(1);
                    if level == 0 {
                        self.last_comment = self.data[start..self.pos]
                            .iter()
                            .copied()
                            .filter(|&c| c != b'\r' && c != b'\n')
                            .collect();
                        self.pos += 1;
                        return true;
                    }
                }
                b'\\' => self.pos += 1,
                _ => {}
            }
            self.pos += 1;
        }
        self.pos = self.data.len();
        false
    }

    /// Parses an atom into `out`; false if there is none here. Skips trailing CFWS.
    pub fn atom(&mut self, out: &mut Vec<u8>) -> bool {
        self.run_of(is_atext, out)
    }

    /// Appends the longest run of octets matching `class` to `out`, then skips CFWS; false
    /// (and nothing consumed) when the run is empty.
    fn run_of(&mut self, class: fn(u8) -> bool, out: &mut Vec<u8>) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(class) {
            self.pos += 1;
        }
        if self.pos == start {
            return false;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.skip_cfws();
        true
    }

    /// Parses a quoted string (content unescaped, line breaks removed) into `out`; false if
    /// there is none here. Skips trailing CFWS.
    pub fn quoted(&mut self, out: &mut Vec<u8>) -> bool {
        if self.peek() != Some(b'"') {
            return false;
        }
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => {
                    self.skip_cfws();
                    return true;
                }
                b'\\' => {
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        true
    }

    /// Parses a dot-atom (or obsolete `word *("." word)`) into `out`; false if nothing
    /// was parsed.
    pub fn dot_atom(&mut self, out: &mut Vec<u8>) -> bool {
        let mut any = false;
        loop {
            let ok = if self.peek() == Some(b'"') {
                self.quoted(out)
            } else {
                self.atom(out)
            };
            if !ok {
                return any;
            }
            any = true;
            if self.peek() != Some(b'.') {
                return true;
            }
            out.push(b'.');
            self.pos += 1;
            self.skip_cfws();
        }
    }

    /// Parses a phrase (words joined by single spaces; `.` tolerated as in `obs-phrase`).
    pub fn phrase(&mut self, out: &mut Vec<u8>) -> bool {
        let mut any = false;
        loop {
            let ok = match self.peek() {
                Some(b'"') => self.quoted(out),
                Some(b'.') => {
                    out.push(b'.');
                    self.pos += 1;
                    self.skip_cfws();
                    true
                }
                _ => self.atom(out),
            };
            if !ok {
                return any;
            }
            any = true;
            match self.peek() {
                Some(b) if is_atext(b) || b == b'"' || b == b'.' => {
                    if out.last() != Some(&b'.') || b != b'.' {
                        out.push(b' ');
                    }
                }
                _ => return true,
            }
        }
    }

    /// Parses an RFC 2045 token into `out`; false if there is none. Skips trailing CFWS.
    pub fn token(&mut self, out: &mut Vec<u8>) -> bool {
        self.run_of(is_token, out)
    }

    /// Consumes `b` (then CFWS) if it is the current octet.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            self.skip_cfws();
            true
        } else {
            false
        }
    }

    /// Parses a domain: dot-atom or domain literal `[...]`.
    pub fn domain(&mut self, out: &mut Vec<u8>) -> bool {
        if self.peek() == Some(b'[') {
            let start = self.pos;
            while let Some(b) = self.peek() {
                self.pos += 1;
                if b == b']' {
                    break;
                }
            }
            out.extend(
                self.data[start..self.pos]
                    .iter()
                    .filter(|&&c| c != b'\r' && c != b'\n'),
            );
            self.skip_cfws();
            return true;
        }
        self.dot_atom(out)
    }
}
