//! Decoding one complete client message into a [`Request`].
//!
//! The base grammar (RFC 9051 §9) is imap-codec's. Three extensions that imap-codec
//! 2.0.0-alpha.10 does not parse are handled here on top of [`super::lex`]:
//! - LIST-EXTENDED selection/return options, multiple patterns and LIST-STATUS
//!   (RFC 5258, RFC 5819, RFC 6154): the whole LIST command is parsed here;
//! - ESEARCH `RETURN (...)` (RFC 4731, RFC 9051 §6.4.4): cut out before imap-codec parses
//!   the rest of SEARCH;
//! - the SEARCHRES `$` marker (RFC 5182): replaced by [`SAVED_RESULT_SENTINEL`] so that
//!   imap-codec sees a sequence set; the session resolves the sentinel to the saved result;
//! - the STATUS item `APPENDLIMIT` (RFC 7889 §3.2): cut out of the item list
//!   ([`StatusAppendLimit`]) before imap-codec parses the rest of STATUS.

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::status::StatusDataItemName;

use super::lex::{Token, tokenize};
use super::mutf7;

/// The sequence number that stands for `$` after rewriting. No mailbox reaches 2^32-1
/// messages or UIDs, so a command that really names it is answered as if it named `$`.
pub const SAVED_RESULT_SENTINEL: u32 = u32::MAX;

/// ESEARCH result options (RFC 4731 §3.1, RFC 5182 `SAVE`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// `MIN`.
    pub min: bool,
    /// `MAX`.
    pub max: bool,
    /// `ALL` (also implied by `RETURN ()`).
    pub all: bool,
    /// `COUNT`.
    pub count: bool,
    /// `SAVE`.
    pub save: bool,
}

/// LIST selection options (RFC 5258 §3.1, RFC 6154 §3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListSelect {
    /// `SUBSCRIBED`.
    pub subscribed: bool,
    /// `REMOTE` (no effect: MCP has no remote mailboxes).
    pub remote: bool,
    /// `RECURSIVEMATCH`.
    pub recursive_match: bool,
    /// `SPECIAL-USE`.
    pub special_use: bool,
}

/// LIST return options (RFC 5258 §3.2, RFC 5819, RFC 6154).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListReturn {
    /// `SUBSCRIBED`.
    pub subscribed: bool,
    /// `CHILDREN`.
    pub children: bool,
    /// `SPECIAL-USE`.
    pub special_use: bool,
    /// `STATUS (...)`: the items to report per listed mailbox.
    pub status: Option<Vec<StatusDataItemName>>,
    /// `APPENDLIMIT` among the `STATUS (...)` items (RFC 7889 §3.2).
    pub status_append_limit: bool,
}

/// A parsed LIST command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Reference name, UTF-8.
    pub reference: String,
    /// Mailbox patterns with `*`/`%`, UTF-8; several only in the extended form.
    pub patterns: Vec<String>,
    /// Selection options.
    pub select: ListSelect,
    /// Return options.
    pub ret: ListReturn,
    /// True when selection or return options were given (RFC 5258 extended LIST).
    pub extended: bool,
}

/// Whether a STATUS command asked for `APPENDLIMIT` (RFC 7889 §3.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusAppendLimit {
    /// Not asked for (also: not a STATUS command).
    #[default]
    No,
    /// Asked for among other items.
    With,
    /// The only item: imap-codec was given `UIDNEXT` in its place, which is not reported.
    Only,
}

/// What the client asked for.
#[derive(Debug)]
pub enum Request {
    /// A command imap-codec decoded, possibly with extension data attached.
    Command {
        /// The command.
        body: CommandBody<'static>,
        /// ESEARCH `RETURN` options when the command is SEARCH with `RETURN`.
        search_return: Option<SearchReturn>,
        /// True when `$` was used (see [`SAVED_RESULT_SENTINEL`]).
        uses_saved_result: bool,
        /// STATUS `APPENDLIMIT`.
        status_append_limit: StatusAppendLimit,
    },
    /// A LIST command (base or extended form).
    List(ListRequest),
}

/// A tagged message with its tag.
#[derive(Debug)]
pub struct Parsed {
    /// The command tag.
    pub tag: String,
    /// The command, or why it is not valid (answered with `BAD`).
    pub request: Result<Request, String>,
}

/// Decodes one complete message (ending with CRLF). `utf8` says whether the client enabled
/// UTF8=ACCEPT, which changes how mailbox names are read (RFC 6855 §3).
///
/// Returns `None` when not even a tag can be found (answered with untagged `BAD`).
pub fn parse(msg: &[u8], utf8: bool) -> Option<Parsed> {
    let tokens = match tokenize(msg) {
        Ok(t) => t,
        Err(e) => {
            let tag = leading_tag(msg)?;
            return Some(Parsed {
                tag,
                request: Err(e.to_string()),
            });
        }
    };
    let tag = match tokens.first() {
        Some((Token::Atom(t), _)) if valid_tag(t) => String::from_utf8_lossy(t).into_owned(),
        _ => return None,
    };
    let Some((name_tok, _)) = tokens.get(1) else {
        return Some(Parsed {
            tag,
            request: Err("Missing command".into()),
        });
    };
    let uid = name_tok.is_atom("UID");
    let cmd_index = if uid { 2 } else { 1 };
    let cmd = match tokens.get(cmd_index) {
        Some((Token::Atom(a), _)) => String::from_utf8_lossy(a).to_ascii_uppercase(),
        _ => {
            return Some(Parsed {
                tag,
                request: Err("Missing command".into()),
            });
        }
    };
    let args = &tokens[cmd_index + 1..];
    if cmd == "LIST" && !uid {
        let request = parse_list(args, utf8).map(Request::List);
        return Some(Parsed { tag, request });
    }

    let mut rewrites: Vec<Rewrite> = Vec::new();
    let mut search_return = None;
    let mut uses_saved_result = false;
    let mut status_append_limit = StatusAppendLimit::No;
    let sentinel = SAVED_RESULT_SENTINEL.to_string().into_bytes();
    match cmd.as_str() {
        "FETCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" => {
            if let Some((tok, span)) = args.first()
                && tok.is_atom("$")
            {
                rewrites.push((span.clone(), sentinel.clone()));
                uses_saved_result = true;
            }
        }
        "SEARCH" => {
            let mut rest = args;
            if let Some((tok, span)) = rest.first()
                && tok.is_atom("RETURN")
            {
                match parse_search_return(&rest[1..]) {
                    Ok((ret, used)) => {
                        let end = rest[used + 1].1.end;
                        rewrites.push((span.start..end, Vec::new()));
                        search_return = Some(ret);
                        rest = &rest[used + 2..];
                    }
                    Err(e) => {
                        return Some(Parsed {
                            tag,
                            request: Err(e),
                        });
                    }
                }
            }
            let mut skip = 0usize;
            for (tok, span) in rest {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if let Token::Atom(a) = tok {
                    let word = String::from_utf8_lossy(a).to_ascii_uppercase();
                    skip = match word.as_str() {
                        "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" | "KEYWORD"
                        | "UNKEYWORD" | "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON"
                        | "SENTSINCE" | "LARGER" | "SMALLER" | "CHARSET" | "OLDER" | "YOUNGER" => 1,
                        "HEADER" => 2,
                        _ => 0,
                    };
                    if word == "$" {
                        rewrites.push((span.clone(), sentinel.clone()));
                        uses_saved_result = true;
                    }
                }
            }
        }
        "STATUS" if !uid => {
            if let Some((rewrite, found)) = cut_append_limit(msg, args) {
                rewrites.push(rewrite);
                status_append_limit = found;
            }
        }
        _ => {}
    }

    let owned;
    let input: &[u8] = if rewrites.is_empty() {
        msg
    } else {
        let mut buf = Vec::with_capacity(msg.len());
        let mut pos = 0;
        for (span, with) in &rewrites {
            buf.extend_from_slice(&msg[pos..span.start]);
            buf.extend_from_slice(with);
            pos = span.end;
        }
        buf.extend_from_slice(&msg[pos..]);
        // Removing `RETURN (...)` may leave two spaces; imap-codec wants exactly one.
        owned = collapse_double_spaces_outside_literals(&buf);
        &owned
    };

    let request = match CommandCodec::default().decode(input) {
        Ok(([], command)) => Ok(Request::Command {
            body: command.body.into_static(),
            search_return,
            uses_saved_result,
            status_append_limit,
        }),
        Ok(_) => Err(format!("Unexpected data after {cmd} command")),
        Err(CommandDecodeError::Failed | CommandDecodeError::Incomplete) => {
            if cmd == "SEARCH" && search_depth(args) > MAX_SEARCH_DEPTH {
                Err(format!(
                    "SEARCH criteria nested more than {MAX_SEARCH_DEPTH} levels deep are not supported"
                ))
            } else {
                Err(syntax_reason(&cmd))
            }
        }
        Err(CommandDecodeError::LiteralFound { .. }) => Err("Unexpected literal".into()),
    };
    Some(Parsed { tag, request })
}

/// A span of the message and what replaces it.
type Rewrite = (std::ops::Range<usize>, Vec<u8>);

/// The rewrite of a STATUS item list without its `APPENDLIMIT` items (RFC 7889 §3.2), or
/// `None` when the list has none. A list of only `APPENDLIMIT` becomes `(UIDNEXT)`.
fn cut_append_limit(
    msg: &[u8],
    args: &[(Token, std::ops::Range<usize>)],
) -> Option<(Rewrite, StatusAppendLimit)> {
    let open = args.iter().position(|(t, _)| *t == Token::Open)?;
    let close = open + args[open..].iter().position(|(t, _)| *t == Token::Close)?;
    let items = &args[open + 1..close];
    if !items.iter().any(|(t, _)| t.is_atom("APPENDLIMIT")) {
        return None;
    }
    let kept: Vec<&[u8]> = items
        .iter()
        .filter(|(t, _)| !t.is_atom("APPENDLIMIT"))
        .map(|(_, span)| &msg[span.clone()])
        .collect();
    let (list, found) = if kept.is_empty() {
        (b"(UIDNEXT)".to_vec(), StatusAppendLimit::Only)
    } else {
        (
            [b"(".as_slice(), &kept.join(b" ".as_slice()), b")"].concat(),
            StatusAppendLimit::With,
        )
    };
    Some(((args[open].1.start..args[close].1.end, list), found))
}

/// How deeply imap-codec lets search keys nest (its parser's fixed recursion limit).
const MAX_SEARCH_DEPTH: usize = 9;

/// An upper bound of the nesting depth of search criteria: parentheses plus chains of
/// `OR`/`NOT`, whose operands nest in the grammar.
fn search_depth(args: &[(Token, std::ops::Range<usize>)]) -> usize {
    let (mut parens, mut operators, mut max) = (0usize, 0usize, 0usize);
    for (tok, _) in args {
        match tok {
            Token::Open => parens += 1,
            Token::Close => parens = parens.saturating_sub(1),
            t if t.is_atom("OR") || t.is_atom("NOT") => operators += 1,
            _ => {}
        }
        max = max.max(parens + operators);
    }
    max
}

fn syntax_reason(cmd: &str) -> String {
    const KNOWN: &[&str] = &[
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "AUTHENTICATE",
        "LOGIN",
        "ENABLE",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "ID",
        "CHECK",
        "GETQUOTA",
        "GETQUOTAROOT",
        "SETQUOTA",
    ];
    if KNOWN.contains(&cmd) {
        format!("Error in IMAP command {cmd}: invalid arguments")
    } else {
        format!("Unknown command {cmd}")
    }
}

fn collapse_double_spaces_outside_literals(buf: &[u8]) -> Vec<u8> {
    // Only called after cutting `RETURN (...)`, which sits before any literal of SEARCH; a
    // literal later in the message is copied verbatim because we stop at the first `{`.
    let cut = buf
        .iter()
        .position(|&c| c == b'{' || c == b'"')
        .unwrap_or(buf.len());
    let mut out = Vec::with_capacity(buf.len());
    for (i, &c) in buf[..cut].iter().enumerate() {
        if c == b' ' && (out.last() == Some(&b' ') || buf.get(i + 1) == Some(&b'\r')) {
            continue;
        }
        out.push(c);
    }
    out.extend_from_slice(&buf[cut..]);
    out
}

fn leading_tag(msg: &[u8]) -> Option<String> {
    let end = msg.iter().position(|&c| c == b' ')?;
    valid_tag(&msg[..end]).then(|| String::from_utf8_lossy(&msg[..end]).into_owned())
}

fn valid_tag(t: &[u8]) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.iter()
            .all(|&c| super::out::is_astring_char(c) && c != b'+')
}

/// Parses `RETURN`'s parenthesised options; returns them and the index of the closing paren.
fn parse_search_return(
    toks: &[(Token, std::ops::Range<usize>)],
) -> Result<(SearchReturn, usize), String> {
    let bad = || "Invalid SEARCH RETURN options".to_string();
    if !matches!(toks.first(), Some((Token::Open, _))) {
        return Err(bad());
    }
    let mut ret = SearchReturn::default();
    for (i, (tok, _)) in toks.iter().enumerate().skip(1) {
        match tok {
            Token::Close => {
                if ret == SearchReturn::default() {
                    ret.all = true;
                }
                return Ok((ret, i));
            }
            Token::Atom(a) => match String::from_utf8_lossy(a).to_ascii_uppercase().as_str() {
                "MIN" => ret.min = true,
                "MAX" => ret.max = true,
                "ALL" => ret.all = true,
                "COUNT" => ret.count = true,
                "SAVE" => ret.save = true,
                other => return Err(format!("Unknown SEARCH RETURN option {other}")),
            },
            _ => return Err(bad()),
        }
    }
    Err(bad())
}

/// Decodes a mailbox name or pattern argument to UTF-8.
pub fn mailbox_name(raw: &[u8], utf8: bool) -> Result<String, String> {
    let name = if utf8 {
        String::from_utf8(raw.to_vec())
            .map_err(|_| "Mailbox name is not valid UTF-8".to_string())?
    } else {
        mutf7::decode(raw).map_err(|_| "Mailbox name is not valid modified UTF-7".to_string())?
    };
    Ok(normalize_inbox(name))
}

/// `INBOX` is case-insensitive, also as the first level of a hierarchy (RFC 9051 §5.1).
pub fn normalize_inbox(name: String) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    match name.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
        _ => name,
    }
}

fn parse_list(args: &[(Token, std::ops::Range<usize>)], utf8: bool) -> Result<ListRequest, String> {
    let bad = |what: &str| format!("Error in IMAP command LIST: {what}");
    let mut req = ListRequest::default();
    let mut i = 0;
    let toks: Vec<&Token> = args.iter().map(|(t, _)| t).collect();
    if matches!(toks.first(), Some(Token::Open)) {
        req.extended = true;
        i = 1;
        loop {
            match toks.get(i) {
                Some(Token::Close) => break,
                Some(Token::Atom(a)) => {
                    match String::from_utf8_lossy(a).to_ascii_uppercase().as_str() {
                        "SUBSCRIBED" => req.select.subscribed = true,
                        "REMOTE" => req.select.remote = true,
                        "RECURSIVEMATCH" => req.select.recursive_match = true,
                        "SPECIAL-USE" => req.select.special_use = true,
                        other => return Err(bad(&format!("unknown selection option {other}"))),
                    }
                }
                _ => return Err(bad("invalid selection options")),
            }
            i += 1;
        }
        i += 1;
        if req.select.recursive_match && !(req.select.subscribed || req.select.special_use) {
            return Err(bad("RECURSIVEMATCH needs another selection option"));
        }
    }
    let reference = toks
        .get(i)
        .and_then(|t| t.string())
        .ok_or_else(|| bad("missing reference"))?;
    req.reference = mailbox_name(reference, utf8).map_err(|e| bad(&e))?;
    i += 1;
    match toks.get(i) {
        Some(Token::Open) => {
            req.extended = true;
            i += 1;
            while let Some(t) = toks.get(i) {
                if matches!(t, Token::Close) {
                    break;
                }
                let p = t.string().ok_or_else(|| bad("invalid pattern list"))?;
                req.patterns
                    .push(mailbox_name(p, utf8).map_err(|e| bad(&e))?);
                i += 1;
            }
            if toks.get(i).is_none() || req.patterns.is_empty() {
                return Err(bad("invalid pattern list"));
            }
        }
        Some(t) => {
            let p = t.string().ok_or_else(|| bad("missing mailbox pattern"))?;
            req.patterns
                .push(mailbox_name(p, utf8).map_err(|e| bad(&e))?);
        }
        None => return Err(bad("missing mailbox pattern")),
    }
    i += 1;
    if let Some(t) = toks.get(i) {
        if !t.is_atom("RETURN") || !matches!(toks.get(i + 1), Some(Token::Open)) {
            return Err(bad("unexpected arguments"));
        }
        req.extended = true;
        i += 2;
        loop {
            match toks.get(i) {
                Some(Token::Close) => break,
                Some(Token::Atom(a)) => {
                    match String::from_utf8_lossy(a).to_ascii_uppercase().as_str() {
                        "SUBSCRIBED" => req.ret.subscribed = true,
                        "CHILDREN" => req.ret.children = true,
                        "SPECIAL-USE" => req.ret.special_use = true,
                        "STATUS" => {
                            if !matches!(toks.get(i + 1), Some(Token::Open)) {
                                return Err(bad("STATUS needs a list"));
                            }
                            i += 2;
                            let mut items = Vec::new();
                            loop {
                                match toks.get(i) {
                                    Some(Token::Close) => break,
                                    Some(t) if t.is_atom("APPENDLIMIT") => {
                                        req.ret.status_append_limit = true;
                                    }
                                    Some(Token::Atom(a)) => items.push(
                                        status_item(a).ok_or_else(|| bad("unknown STATUS item"))?,
                                    ),
                                    _ => return Err(bad("invalid STATUS items")),
                                }
                                i += 1;
                            }
                            req.ret.status = Some(items);
                        }
                        other => return Err(bad(&format!("unknown return option {other}"))),
                    }
                }
                _ => return Err(bad("invalid return options")),
            }
            i += 1;
        }
        if i + 1 != toks.len() {
            return Err(bad("unexpected arguments after RETURN"));
        }
    }
    Ok(req)
}

/// Parses one STATUS data item name (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ).
pub fn status_item(a: &[u8]) -> Option<StatusDataItemName> {
    Some(
        match String::from_utf8_lossy(a).to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusDataItemName::Messages,
            "RECENT" => StatusDataItemName::Recent,
            "UIDNEXT" => StatusDataItemName::UidNext,
            "UIDVALIDITY" => StatusDataItemName::UidValidity,
            "UNSEEN" => StatusDataItemName::Unseen,
            "DELETED" => StatusDataItemName::Deleted,
            "SIZE" => StatusDataItemName::Size,
            "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
            "DELETED-STORAGE" => StatusDataItemName::DeletedStorage,
            _ => return None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(msg: &str) -> Request {
        let p = parse(msg.as_bytes(), false).expect("tag");
        p.request.unwrap_or_else(|e| panic!("{msg:?}: {e}"))
    }

    #[test]
    fn list_forms() {
        let cases = [
            ("a LIST \"\" *\r\n", vec!["*"], false),
            (
                "a LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Dr%\") RETURN (CHILDREN)\r\n",
                vec!["INBOX", "Dr%"],
                true,
            ),
            (
                "a LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN SIZE))\r\n",
                vec!["%"],
                true,
            ),
            ("a list \"\" &AOk-t&AOk-\r\n", vec!["été"], false),
        ];
        for (msg, pats, ext) in cases {
            match ok(msg) {
                Request::List(l) => {
                    assert_eq!(l.patterns, pats, "{msg}");
                    assert_eq!(l.extended, ext, "{msg}");
                }
                other => panic!("{msg}: {other:?}"),
            }
        }
    }

    #[test]
    fn search_return_and_saved_result() {
        match ok("t1 UID SEARCH RETURN (MIN COUNT SAVE) UNSEEN SUBJECT $\r\n") {
            Request::Command {
                search_return: Some(r),
                uses_saved_result,
                ..
            } => {
                assert!(r.min && r.count && r.save && !r.all);
                assert!(!uses_saved_result, "SUBJECT's argument is not the $ marker");
            }
            other => panic!("{other:?}"),
        }
        match ok("t2 SEARCH RETURN () $ OR $ 1:3\r\n") {
            Request::Command {
                search_return: Some(r),
                uses_saved_result: true,
                ..
            } => assert!(r.all),
            other => panic!("{other:?}"),
        }
        match ok("t3 UID FETCH $ (FLAGS)\r\n") {
            Request::Command {
                uses_saved_result: true,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_append_limit_is_cut_out_of_the_item_list() {
        let cases = [
            ("s1 STATUS INBOX (MESSAGES)\r\n", StatusAppendLimit::No, 1),
            (
                "s2 STATUS INBOX (APPENDLIMIT)\r\n",
                StatusAppendLimit::Only,
                1,
            ),
            (
                "s3 STATUS \"a b\" (MESSAGES appendlimit SIZE)\r\n",
                StatusAppendLimit::With,
                2,
            ),
            (
                "s4 STATUS {5}\r\nINBOX (APPENDLIMIT UNSEEN APPENDLIMIT)\r\n",
                StatusAppendLimit::With,
                1,
            ),
        ];
        for (msg, want, n) in cases {
            match ok(msg) {
                Request::Command {
                    body: CommandBody::Status { item_names, .. },
                    status_append_limit,
                    ..
                } => {
                    assert_eq!(status_append_limit, want, "{msg:?}");
                    assert_eq!(item_names.len(), n, "{msg:?}");
                }
                other => panic!("{msg:?}: {other:?}"),
            }
        }
        for msg in [
            "s5 STATUS INBOX (APPENDLIMIT BOGUS)\r\n",
            "s6 STATUS INBOX (APPENDLIMIT\r\n",
            "s7 STATUS INBOX\r\n",
        ] {
            let p = parse(msg.as_bytes(), false).expect("tag");
            let err = p.request.expect_err(msg);
            assert!(err.contains("STATUS"), "{msg:?}: {err}");
        }
    }

    #[test]
    fn bad_commands_keep_their_tag() {
        let cases = [
            ("x1 FROB\r\n", "Unknown command FROB"),
            ("x2 FETCH\r\n", "Error in IMAP command FETCH"),
            ("x3 LIST (BOGUS) \"\" *\r\n", "unknown selection option"),
            (
                "x5 SEARCH RETURN (FOO) ALL\r\n",
                "Unknown SEARCH RETURN option",
            ),
            ("x6 LIST \"\" \"a\r\n", "quoted"),
            (
                "x7 SEARCH NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT ALL\r\n",
                "nested more than 9 levels",
            ),
            ("q1 GETQUOTAROOT\r\n", "Error in IMAP command GETQUOTAROOT"),
            ("q2 GETQUOTA\r\n", "Error in IMAP command GETQUOTA"),
            (
                "q3 SETQUOTA \"\" (STORAGE x)\r\n",
                "Error in IMAP command SETQUOTA",
            ),
            ("q4 SETQUOTA \"\"\r\n", "Error in IMAP command SETQUOTA"),
        ];
        for (msg, want) in cases {
            let p = parse(msg.as_bytes(), false).expect("tag");
            assert_eq!(p.tag, msg.split(' ').next().unwrap_or_default());
            let err = p.request.expect_err(msg);
            assert!(err.contains(want), "{msg:?}: {err}");
        }
        assert!(parse(b"\r\n", false).is_none());
        assert!(parse(b"+ x\r\n", false).is_none());
    }
}
