//! Typed mutations: the changes a step may make to a message (DESIGN.md §4), and how the
//! engine applies the header and body ones to the raw message ([`apply_to_message`]).

use std::fmt;

use bytes::Bytes;

use mcp_crds::plugin::Capability;

/// One change to a message. Each variant needs the [`Capability`] of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Adds a header field at the top of the header section (where trace fields go), below a
    /// leading `Return-Path` (RFC 5321 §4.4 keeps that one first).
    AddHeader {
        /// Field name.
        name: HeaderName,
        /// Field body, without CR or LF.
        value: String,
    },
    /// Replaces every field named `name` with one field carrying `value`, where the first one
    /// was; adds it as `AddHeader` does when there is none.
    ChangeHeader {
        /// Field name.
        name: HeaderName,
        /// Field body, without CR or LF.
        value: String,
    },
    /// Removes every field named `name`.
    RemoveHeader {
        /// Field name.
        name: HeaderName,
    },
    /// Replaces everything after the header section's empty line. The plugin is responsible
    /// for the body matching the MIME headers (it changes those with `ChangeHeader`).
    ReplaceBody {
        /// New body, CRLF line endings.
        body: Bytes,
    },
    /// Sets an IMAP keyword on the stored message.
    AddKeyword {
        /// An IMAP atom without `\` (RFC 9051 §2.3.2), 1 to 64 characters.
        keyword: String,
    },
    /// Sets a system flag on the stored message.
    AddFlag {
        /// The flag.
        flag: SystemFlag,
    },
    /// Stores the message in this folder instead of the stage's destination. A folder that
    /// does not exist is created.
    FileInto {
        /// Folder name as IMAP shows it (`Archive/2026`), 1 to 255 characters, `/`-separated.
        folder: String,
    },
    /// Attaches a key/value pair to the message, visible to later steps and kept with it.
    SetMetadata {
        /// `[a-z0-9._/-]`, 1 to 128 characters.
        key: String,
        /// Up to 4096 characters, no control characters.
        value: String,
    },
}

/// IMAP system flags a plugin may set (RFC 9051 §2.3.2); `\Recent` is not settable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemFlag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
}

impl SystemFlag {
    /// The flag as IMAP writes it, e.g. `\Flagged`.
    pub fn as_imap(self) -> &'static str {
        match self {
            SystemFlag::Seen => "\\Seen",
            SystemFlag::Answered => "\\Answered",
            SystemFlag::Flagged => "\\Flagged",
            SystemFlag::Deleted => "\\Deleted",
            SystemFlag::Draft => "\\Draft",
        }
    }
}

/// A header field name: 1 to 76 printable US-ASCII characters other than `:` (RFC 5322
/// §2.2, `ftext`). Compared case-insensitively.
#[derive(Clone, Debug, Eq)]
pub struct HeaderName(String);

impl HeaderName {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`InvalidMutation`] when it is empty, too long or has a character outside `ftext`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidMutation> {
        let name = name.into();
        if name.is_empty() || name.len() > 76 {
            return Err(InvalidMutation(format!(
                "header name {name:?} must be 1 to 76 characters"
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|&c| !('!'..='~').contains(&c) || c == ':')
        {
            return Err(InvalidMutation(format!(
                "header name {name:?} has {c:?}, outside RFC 5322 ftext"
            )));
        }
        Ok(Self(name))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, field_name: &[u8]) -> bool {
        field_name.eq_ignore_ascii_case(self.0.as_bytes())
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mutation that breaks the contract (bad header name, value with a line break, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid mutation: {0}")]
pub struct InvalidMutation(pub String);

impl Mutation {
    /// `AddHeader`, checked.
    ///
    /// # Errors
    /// [`InvalidMutation`] for a bad name or value.
    pub fn add_header(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, InvalidMutation> {
        let m = Mutation::AddHeader {
            name: HeaderName::new(name)?,
            value: value.into(),
        };
        m.validate()?;
        Ok(m)
    }

    /// `ChangeHeader`, checked.
    ///
    /// # Errors
    /// [`InvalidMutation`] for a bad name or value.
    pub fn change_header(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, InvalidMutation> {
        let m = Mutation::ChangeHeader {
            name: HeaderName::new(name)?,
            value: value.into(),
        };
        m.validate()?;
        Ok(m)
    }

    /// The capability this mutation needs.
    pub fn capability(&self) -> Capability {
        match self {
            Mutation::AddHeader { .. } => Capability::AddHeader,
            Mutation::ChangeHeader { .. } => Capability::ChangeHeader,
            Mutation::RemoveHeader { .. } => Capability::RemoveHeader,
            Mutation::ReplaceBody { .. } => Capability::ReplaceBody,
            Mutation::AddKeyword { .. } => Capability::AddKeyword,
            Mutation::AddFlag { .. } => Capability::AddFlag,
            Mutation::FileInto { .. } => Capability::FileInto,
            Mutation::SetMetadata { .. } => Capability::SetMetadata,
        }
    }

    /// The mutation's kind as used in metrics and records (`addHeader`, `fileInto`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Mutation::AddHeader { .. } => "addHeader",
            Mutation::ChangeHeader { .. } => "changeHeader",
            Mutation::RemoveHeader { .. } => "removeHeader",
            Mutation::ReplaceBody { .. } => "replaceBody",
            Mutation::AddKeyword { .. } => "addKeyword",
            Mutation::AddFlag { .. } => "addFlag",
            Mutation::FileInto { .. } => "fileInto",
            Mutation::SetMetadata { .. } => "setMetadata",
        }
    }

    /// Checks the values (the type already checks header names): header values at most 900
    /// octets without CR, LF or NUL; keywords are IMAP atoms; folders are non-empty, at most
    /// 255 characters, without control characters or empty `/` levels; metadata keys and
    /// values as documented on [`Mutation::SetMetadata`]; a body at most 64 MiB.
    ///
    /// # Errors
    /// [`InvalidMutation`] naming the problem.
    pub fn validate(&self) -> Result<(), InvalidMutation> {
        match self {
            Mutation::AddHeader { name, value } | Mutation::ChangeHeader { name, value } => {
                if value.len() > 900 {
                    return Err(InvalidMutation(format!(
                        "header {name} value is {} octets, over 900",
                        value.len()
                    )));
                }
                if value.contains(['\r', '\n', '\0']) {
                    return Err(InvalidMutation(format!(
                        "header {name} value must not contain CR, LF or NUL"
                    )));
                }
                Ok(())
            }
            Mutation::RemoveHeader { .. } => Ok(()),
            Mutation::ReplaceBody { body } => {
                if body.len() > 64 << 20 {
                    Err(InvalidMutation("replacement body over 64 MiB".into()))
                } else {
                    Ok(())
                }
            }
            Mutation::AddKeyword { keyword } => {
                let atom = |c: char| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c);
                if keyword.is_empty() || keyword.len() > 64 || !keyword.chars().all(atom) {
                    Err(InvalidMutation(format!(
                        "keyword {keyword:?} must be an IMAP atom of 1 to 64 characters without \\"
                    )))
                } else {
                    Ok(())
                }
            }
            Mutation::AddFlag { .. } => Ok(()),
            Mutation::FileInto { folder } => {
                if folder.is_empty()
                    || folder.chars().count() > 255
                    || folder.chars().any(char::is_control)
                    || folder.split('/').any(str::is_empty)
                {
                    Err(InvalidMutation(format!(
                        "folder {folder:?} must be 1 to 255 characters, no control characters or empty levels"
                    )))
                } else {
                    Ok(())
                }
            }
            Mutation::SetMetadata { key, value } => {
                let key_ok = !key.is_empty()
                    && key.len() <= 128
                    && key.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b)
                    });
                if !key_ok {
                    return Err(InvalidMutation(format!(
                        "metadata key {key:?} must be 1 to 128 of [a-z0-9._/-]"
                    )));
                }
                if value.chars().count() > 4096 || value.chars().any(char::is_control) {
                    return Err(InvalidMutation(format!(
                        "metadata {key} value must be at most 4096 characters without control characters"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// The header section and body of a raw message: the offset just past the empty line that
/// ends the header section (CRLF CRLF, or LF LF for a bare-LF message), or the message length
/// when there is no body.
pub fn body_offset(message: &[u8]) -> usize {
    let mut i = 0;
    while i < message.len() {
        // At the start of a line: an empty line ends the header section.
        if message[i..].starts_with(b"\r\n") {
            return i + 2;
        }
        if message[i] == b'\n' {
            return i + 1;
        }
        match message[i..].iter().position(|&b| b == b'\n') {
            Some(n) => i += n + 1,
            None => return message.len(),
        }
    }
    message.len()
}

/// One header field: its byte range (including its terminating line break and any folded
/// continuation lines) and name.
struct Field {
    start: usize,
    end: usize,
    name_end: usize,
}

fn fields(header: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut i = 0;
    while i < header.len() {
        let line_end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |n| i + n + 1);
        let line = &header[i..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match (continuation, out.last_mut()) {
            (true, Some(last)) => last.end = line_end,
            _ => {
                let name_end = line.iter().position(|&b| b == b':').map_or(i, |n| i + n);
                out.push(Field {
                    start: i,
                    end: line_end,
                    name_end,
                });
            }
        }
        i = line_end;
    }
    out
}

/// Applies the header and body mutations of `mutations` to `message` (raw RFC 5322 octets)
/// and returns the new message; other mutations (flags, folder, metadata) do not touch the
/// octets and are skipped. Line endings follow the message's own (CRLF unless it uses bare
/// LF). Mutations are assumed valid ([`Mutation::validate`]).
pub fn apply_to_message(message: &[u8], mutations: &[Mutation]) -> Bytes {
    if !mutations.iter().any(|m| {
        matches!(
            m,
            Mutation::AddHeader { .. }
                | Mutation::ChangeHeader { .. }
                | Mutation::RemoveHeader { .. }
                | Mutation::ReplaceBody { .. }
        )
    }) {
        return Bytes::copy_from_slice(message);
    }
    let eol: &[u8] = if message.windows(2).any(|w| w == b"\r\n") || !message.contains(&b'\n') {
        b"\r\n"
    } else {
        b"\n"
    };
    let split = body_offset(message);
    let (mut header, mut body) = (message[..split].to_vec(), message[split..].to_vec());
    // The empty line that ends the header section belongs to neither fields nor body.
    let mut had_separator = false;
    for sep in [&b"\r\n"[..], b"\n"] {
        if header.ends_with(sep)
            && fields(&header)
                .last()
                .is_some_and(|f| f.start == header.len() - sep.len())
        {
            header.truncate(header.len() - sep.len());
            had_separator = true;
            break;
        }
    }
    if !header.is_empty() && !header.ends_with(b"\n") {
        header.extend_from_slice(eol);
    }
    let line = |name: &HeaderName, value: &str| -> Vec<u8> {
        let mut l = Vec::with_capacity(name.as_str().len() + value.len() + 4);
        l.extend_from_slice(name.as_str().as_bytes());
        l.extend_from_slice(b": ");
        l.extend_from_slice(value.as_bytes());
        l.extend_from_slice(eol);
        l
    };
    // New fields go at the top, below a leading Return-Path (RFC 5321 §4.4 puts it first).
    let top = |header: &[u8]| -> usize {
        match fields(header).first() {
            Some(f) if header[f.start..f.name_end].eq_ignore_ascii_case(b"Return-Path") => f.end,
            _ => 0,
        }
    };
    for m in mutations {
        match m {
            Mutation::AddHeader { name, value } => {
                let at = top(&header);
                header.splice(at..at, line(name, value));
            }
            Mutation::ChangeHeader { name, value } => {
                let fs = fields(&header);
                let matching: Vec<&Field> = fs
                    .iter()
                    .filter(|f| name.matches(&header[f.start..f.name_end]))
                    .collect();
                let mut out = Vec::with_capacity(header.len() + value.len());
                match matching.first() {
                    None => {
                        let at = top(&header);
                        out.extend_from_slice(&header[..at]);
                        out.extend_from_slice(&line(name, value));
                        out.extend_from_slice(&header[at..]);
                    }
                    Some(first) => {
                        let first_start = first.start;
                        for f in &fs {
                            let is_match = matching.iter().any(|m| m.start == f.start);
                            if f.start == first_start {
                                out.extend_from_slice(&line(name, value));
                            } else if !is_match {
                                out.extend_from_slice(&header[f.start..f.end]);
                            }
                        }
                    }
                }
                header = out;
            }
            Mutation::RemoveHeader { name } => {
                let fs = fields(&header);
                let mut out = Vec::with_capacity(header.len());
                for f in fs
                    .iter()
                    .filter(|f| !name.matches(&header[f.start..f.name_end]))
                {
                    out.extend_from_slice(&header[f.start..f.end]);
                }
                header = out;
            }
            Mutation::ReplaceBody { body: new } => body = new.to_vec(),
            _ => {}
        }
    }
    let mut out = header;
    if had_separator || !body.is_empty() {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(&body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(msg: &str, ms: &[Mutation]) -> String {
        String::from_utf8(apply_to_message(msg.as_bytes(), ms).to_vec()).expect("utf-8")
    }

    fn name(n: &str) -> HeaderName {
        HeaderName::new(n).expect("valid")
    }

    const MSG: &str =
        "Received: a\r\nSubject: hi\r\nX-Spam: yes\r\n\tfolded\r\nx-spam: again\r\n\r\nbody\r\n";

    #[test]
    fn header_mutations_edit_the_header_section_only() {
        let cases: Vec<(&str, Vec<Mutation>, &str)> = vec![
            (
                "add goes on top",
                vec![Mutation::add_header("X-Tag", "1").expect("valid")],
                "X-Tag: 1\r\nReceived: a\r\nSubject: hi\r\nX-Spam: yes\r\n\tfolded\r\nx-spam: again\r\n\r\nbody\r\n",
            ),
            (
                "change replaces every occurrence at the first one's place",
                vec![Mutation::change_header("x-SPAM", "no").expect("valid")],
                "Received: a\r\nSubject: hi\r\nx-SPAM: no\r\n\r\nbody\r\n",
            ),
            (
                "change of an absent field adds it",
                vec![Mutation::change_header("X-New", "v").expect("valid")],
                "X-New: v\r\nReceived: a\r\nSubject: hi\r\nX-Spam: yes\r\n\tfolded\r\nx-spam: again\r\n\r\nbody\r\n",
            ),
            (
                "remove drops folded lines too",
                vec![Mutation::RemoveHeader {
                    name: name("X-Spam"),
                }],
                "Received: a\r\nSubject: hi\r\n\r\nbody\r\n",
            ),
            (
                "replace body keeps the header",
                vec![Mutation::ReplaceBody {
                    body: Bytes::from_static(b"new\r\n"),
                }],
                "Received: a\r\nSubject: hi\r\nX-Spam: yes\r\n\tfolded\r\nx-spam: again\r\n\r\nnew\r\n",
            ),
            (
                "flags do not touch octets",
                vec![Mutation::AddFlag {
                    flag: SystemFlag::Flagged,
                }],
                MSG,
            ),
        ];
        for (what, ms, want) in cases {
            assert_eq!(apply(MSG, &ms), want, "{what}");
        }
    }

    #[test]
    fn new_fields_stay_below_a_leading_return_path() {
        let msg = "Return-Path: <a@b>\r\nReceived: x\r\n\r\nbody\r\n";
        assert_eq!(
            apply(msg, &[Mutation::add_header("X-Tag", "1").expect("valid")]),
            "Return-Path: <a@b>\r\nX-Tag: 1\r\nReceived: x\r\n\r\nbody\r\n"
        );
        assert_eq!(
            apply(
                msg,
                &[Mutation::change_header("X-New", "2").expect("valid")]
            ),
            "Return-Path: <a@b>\r\nX-New: 2\r\nReceived: x\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn bare_lf_messages_and_header_only_messages() {
        assert_eq!(
            apply(
                "Subject: a\n\nb\n",
                &[Mutation::add_header("X", "1").expect("valid")]
            ),
            "X: 1\nSubject: a\n\nb\n"
        );
        assert_eq!(
            apply(
                "Subject: a\r\n",
                &[Mutation::add_header("X", "1").expect("valid")]
            ),
            "X: 1\r\nSubject: a\r\n"
        );
        assert_eq!(
            apply(
                "Subject: a",
                &[Mutation::add_header("X", "1").expect("valid")]
            ),
            "X: 1\r\nSubject: a\r\n"
        );
        assert_eq!(body_offset(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(body_offset(b"\r\nbody"), 2);
        assert_eq!(body_offset(b"A: b"), 4);
    }

    #[test]
    fn validation_refuses_hostile_values() {
        let bad = [
            Mutation::add_header("X", "a\r\nBcc: evil").err(),
            HeaderName::new("Bad:Name").err(),
            HeaderName::new("").err(),
            HeaderName::new("Sp ace").err(),
            Mutation::AddKeyword {
                keyword: "\\Seen".into(),
            }
            .validate()
            .err(),
            Mutation::AddKeyword { keyword: "".into() }.validate().err(),
            Mutation::FileInto {
                folder: "a//b".into(),
            }
            .validate()
            .err(),
            Mutation::FileInto {
                folder: "a\u{7}".into(),
            }
            .validate()
            .err(),
            Mutation::SetMetadata {
                key: "Up".into(),
                value: "v".into(),
            }
            .validate()
            .err(),
            Mutation::SetMetadata {
                key: "k".into(),
                value: "\n".into(),
            }
            .validate()
            .err(),
        ];
        for (i, e) in bad.iter().enumerate() {
            assert!(e.is_some(), "case {i} was accepted");
        }
        assert!(
            Mutation::AddKeyword {
                keyword: "$Junk".into()
            }
            .validate()
            .is_ok()
        );
        assert!(
            Mutation::FileInto {
                folder: "Archive/2026".into()
            }
            .validate()
            .is_ok()
        );
    }
}
