//! The command syntax of RFC 7162 (CONDSTORE and QRESYNC) that MCP parses itself: SELECT and
//! EXAMINE parameters (§3.1.8, §3.2.5), FETCH modifiers (§3.1.4 `CHANGEDSINCE`, §3.2.6
//! `VANISHED`) and the STORE modifier (§3.1.3 `UNCHANGEDSINCE`), all in the RFC 4466 form
//! `SP "(" item *(SP item) ")"`.
//!
//! imap-codec parses these too, but rejects `(CHANGEDSINCE 0)` (which clients send and which
//! means "every message"), accepts mod-sequences above 2^63-1 and `*` in QRESYNC's UID sets,
//! and can only say "invalid arguments" when something is wrong. [`extract`] finds the
//! parenthesised group in the tokens of a command, parses it here with a precise reason for
//! every error, and returns the span to cut out so that imap-codec parses the remainder.
//!
//! The SEARCH `MODSEQ` criterion (§3.1.5) stays with imap-codec; [`search_modseq_error`]
//! explains why one failed to parse.

use std::num::NonZeroU32;
use std::ops::Range;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::lex::Token;
use crate::store::ModSeq;

/// The largest mod-sequence a client may send or a server may use: RFC 7162 §7 limits
/// `mod-sequence-value` to 63 bits (1..=9,223,372,036,854,775,807), so that it fits a signed
/// 64-bit SQL integer.
pub const MAX_MODSEQ: u64 = i64::MAX as u64;

/// FETCH modifiers (RFC 7162 §3.1.4, §3.2.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE n`: only messages whose MODSEQ is greater than `n` (0 = all messages).
    pub changed_since: Option<ModSeq>,
    /// `VANISHED`: also report UIDs of the set expunged after `changed_since` as
    /// `VANISHED (EARLIER)`. Only with UID FETCH and CHANGEDSINCE (checked here) and after
    /// ENABLE QRESYNC (checked by the session).
    pub vanished: bool,
}

/// STORE modifiers (RFC 7162 §3.1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreModifiers {
    /// `UNCHANGEDSINCE n`: leave alone (and report in `[MODIFIED]`) messages whose MODSEQ is
    /// greater than `n`; 0 fails for every message.
    pub unchanged_since: Option<ModSeq>,
}

/// The QRESYNC SELECT/EXAMINE parameter (RFC 7162 §3.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client's cache belongs to; another value means a plain SELECT.
    pub uid_validity: NonZeroU32,
    /// The last HIGHESTMODSEQ the client saw (1..=[`MAX_MODSEQ`]).
    pub modseq: ModSeq,
    /// The UIDs the client knows (no `*`); changes and expunges are reported only for these.
    pub known_uids: Option<SequenceSet>,
    /// Sequence numbers and the UIDs the client had for them (same number of messages, no
    /// `*`). A server that forgot old expunges uses them to narrow VANISHED; MCP keeps every
    /// tombstone, so it only checks them.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// SELECT/EXAMINE parameters (RFC 4466 §2.1, RFC 7162 §3.1.8, §3.2.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// `CONDSTORE`: enables CONDSTORE for the session.
    pub condstore: bool,
    /// `QRESYNC (...)`: resynchronise the client's cache during the SELECT.
    pub qresync: Option<QresyncParams>,
}

/// The RFC 4466 parameters or modifiers of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modifiers {
    /// SELECT or EXAMINE parameters.
    Select(SelectParams),
    /// FETCH or UID FETCH modifiers.
    Fetch(FetchModifiers),
    /// STORE or UID STORE modifiers.
    Store(StoreModifiers),
}

type Toks = [(Token, Range<usize>)];

/// Finds the modifier group of a SELECT, EXAMINE, FETCH or STORE (`cmd` upper-case, `args`
/// the tokens after the command name, `uid` for the UID forms) and parses it.
///
/// Returns `Ok(None)` when the command has no such group, `Ok(Some((span, modifiers)))` with
/// the byte span to remove (including the space before the group), or the reason for a
/// tagged BAD.
///
/// # Errors
/// A human-readable reason naming the command and what is wrong.
pub fn extract(
    cmd: &str,
    uid: bool,
    args: &Toks,
    msg: &[u8],
) -> Result<Option<(Range<usize>, Modifiers)>, String> {
    let (open, what) = match cmd {
        // SELECT mailbox [params]
        "SELECT" | "EXAMINE" if !uid => (1, cmd),
        // STORE sequence-set [modifiers] store-att-flags
        "STORE" => (1, cmd),
        // FETCH sequence-set items [modifiers]: the group is the trailing one, after at
        // least one item token. A section's header list (`BODY[HEADER.FIELDS (A)]`) is
        // always followed by `]`, so it never ends the command.
        "FETCH" => match trailing_group(args) {
            Some(o) if o >= 2 => (o, cmd),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let name = if uid {
        format!("UID {what}")
    } else {
        what.to_owned()
    };
    if !matches!(args.get(open), Some((Token::Open, _))) {
        return Ok(None);
    }
    let close = matching_close(args, open)
        .ok_or_else(|| format!("Error in IMAP command {name}: unbalanced parentheses"))?;
    if cmd != "STORE" && close + 1 != args.len() {
        return Err(format!(
            "Error in IMAP command {name}: unexpected data after the parameter list"
        ));
    }
    let inner = &args[open + 1..close];
    let err = |e: String| format!("Error in IMAP command {name}: {e}");
    let modifiers = match cmd {
        "SELECT" | "EXAMINE" => Modifiers::Select(parse_select_params(inner).map_err(err)?),
        "FETCH" => Modifiers::Fetch(parse_fetch_modifiers(inner, uid).map_err(err)?),
        _ => Modifiers::Store(parse_store_modifiers(inner).map_err(err)?),
    };
    let mut start = args[open].1.start;
    if start > 0 && msg.get(start - 1) == Some(&b' ') {
        start -= 1;
    }
    Ok(Some((start..args[close].1.end, modifiers)))
}

/// Index of the `(` of the group that ends `args`, if `args` ends with `)`.
fn trailing_group(args: &Toks) -> Option<usize> {
    if !matches!(args.last(), Some((Token::Close, _))) {
        return None;
    }
    let mut depth = 0usize;
    for (i, (tok, _)) in args.iter().enumerate().rev() {
        match tok {
            Token::Close => depth += 1,
            Token::Open => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn matching_close(args: &Toks, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, (tok, _)) in args.iter().enumerate().skip(open) {
        match tok {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses a mod-sequence (`mod-sequence-value`, or `mod-sequence-valzer` when `zero_ok`).
///
/// # Errors
/// The reason: not a number, zero where not allowed, or above [`MAX_MODSEQ`].
pub fn parse_modseq(tok: Option<&Token>, zero_ok: bool, what: &str) -> Result<ModSeq, String> {
    let digits = match tok {
        Some(Token::Atom(a)) if !a.is_empty() && a.iter().all(u8::is_ascii_digit) => a,
        Some(Token::Atom(a)) => {
            return Err(format!(
                "{what} needs a mod-sequence, not {:?}",
                String::from_utf8_lossy(a)
            ));
        }
        _ => return Err(format!("{what} needs a mod-sequence")),
    };
    let text = String::from_utf8_lossy(digits);
    let value = text
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= MAX_MODSEQ)
        .ok_or_else(|| {
            format!("{what} mod-sequence {text} is out of range (at most {MAX_MODSEQ})")
        })?;
    if value == 0 && !zero_ok {
        return Err(format!("{what} mod-sequence must not be 0"));
    }
    Ok(ModSeq(value))
}

fn atom_upper(tok: &Token) -> Option<String> {
    match tok {
        Token::Atom(a) => Some(String::from_utf8_lossy(a).to_ascii_uppercase()),
        _ => None,
    }
}

/// Parses the items inside `(...)` of FETCH modifiers.
fn parse_fetch_modifiers(inner: &Toks, uid: bool) -> Result<FetchModifiers, String> {
    if inner.is_empty() {
        return Err("empty FETCH modifier list".into());
    }
    let mut out = FetchModifiers::default();
    let mut i = 0;
    while let Some((tok, _)) = inner.get(i) {
        match atom_upper(tok).as_deref() {
            Some("CHANGEDSINCE") => {
                if out.changed_since.is_some() {
                    return Err("CHANGEDSINCE given twice".into());
                }
                out.changed_since = Some(parse_modseq(
                    inner.get(i + 1).map(|t| &t.0),
                    true,
                    "CHANGEDSINCE",
                )?);
                i += 2;
            }
            Some("VANISHED") => {
                if out.vanished {
                    return Err("VANISHED given twice".into());
                }
                out.vanished = true;
                i += 1;
            }
            Some(other) => return Err(format!("unknown FETCH modifier {other}")),
            None => return Err("invalid FETCH modifiers".into()),
        }
    }
    if out.vanished && !uid {
        return Err("VANISHED is only allowed in UID FETCH (RFC 7162 §3.2.6)".into());
    }
    if out.vanished && out.changed_since.is_none() {
        return Err("VANISHED needs CHANGEDSINCE (RFC 7162 §3.2.6)".into());
    }
    Ok(out)
}

/// Parses the items inside `(...)` of STORE modifiers.
fn parse_store_modifiers(inner: &Toks) -> Result<StoreModifiers, String> {
    if inner.is_empty() {
        return Err("empty STORE modifier list".into());
    }
    let mut out = StoreModifiers::default();
    let mut i = 0;
    while let Some((tok, _)) = inner.get(i) {
        match atom_upper(tok).as_deref() {
            Some("UNCHANGEDSINCE") => {
                if out.unchanged_since.is_some() {
                    return Err("UNCHANGEDSINCE given twice".into());
                }
                out.unchanged_since = Some(parse_modseq(
                    inner.get(i + 1).map(|t| &t.0),
                    true,
                    "UNCHANGEDSINCE",
                )?);
                i += 2;
            }
            Some(other) => return Err(format!("unknown STORE modifier {other}")),
            None => return Err("invalid STORE modifiers".into()),
        }
    }
    Ok(out)
}

/// Parses the items inside `(...)` of SELECT/EXAMINE parameters.
fn parse_select_params(inner: &Toks) -> Result<SelectParams, String> {
    if inner.is_empty() {
        return Err("empty SELECT parameter list".into());
    }
    let mut out = SelectParams::default();
    let mut i = 0;
    while let Some((tok, _)) = inner.get(i) {
        match atom_upper(tok).as_deref() {
            Some("CONDSTORE") => {
                out.condstore = true;
                i += 1;
            }
            Some("QRESYNC") => {
                if out.qresync.is_some() {
                    return Err("QRESYNC given twice".into());
                }
                if !matches!(inner.get(i + 1), Some((Token::Open, _))) {
                    return Err("QRESYNC needs a parenthesised parameter list".into());
                }
                let close = matching_close(inner, i + 1)
                    .ok_or_else(|| "unbalanced QRESYNC parameters".to_string())?;
                out.qresync = Some(parse_qresync(&inner[i + 2..close])?);
                i = close + 1;
            }
            Some(other) => return Err(format!("unknown SELECT parameter {other}")),
            None => return Err("invalid SELECT parameters".into()),
        }
    }
    Ok(out)
}

/// `uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data]`.
fn parse_qresync(toks: &Toks) -> Result<QresyncParams, String> {
    const FORM: &str = "QRESYNC needs (uidvalidity mod-sequence [known-uids [(known-sequence-set known-uid-set)]])";
    let uid_validity = match toks.first() {
        Some((Token::Atom(a), _)) if !a.is_empty() && a.iter().all(u8::is_ascii_digit) => {
            String::from_utf8_lossy(a)
                .parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or("QRESYNC UIDVALIDITY must be a number from 1 to 4294967295")?
        }
        _ => return Err(FORM.into()),
    };
    let modseq = parse_modseq(toks.get(1).map(|t| &t.0), false, "QRESYNC")?;
    let mut rest = &toks[2.min(toks.len())..];
    let mut known_uids = None;
    if let Some((Token::Atom(a), _)) = rest.first() {
        known_uids = Some(uid_set(a, "QRESYNC known-uids")?);
        rest = &rest[1..];
    }
    let mut seq_match = None;
    if let Some((Token::Open, _)) = rest.first() {
        let (seqs, uids) = match rest {
            [
                (Token::Open, _),
                (Token::Atom(s), _),
                (Token::Atom(u), _),
                (Token::Close, _),
                ..,
            ] => (
                uid_set(s, "QRESYNC known-sequence-set")?,
                uid_set(u, "QRESYNC known-uid-set")?,
            ),
            _ => {
                return Err(
                    "QRESYNC seq-match-data needs (known-sequence-set known-uid-set)".into(),
                );
            }
        };
        if set_len(&seqs) != set_len(&uids) {
            return Err("QRESYNC known-sequence-set and known-uid-set differ in length".into());
        }
        seq_match = Some((seqs, uids));
        rest = &rest[4..];
    }
    if !rest.is_empty() {
        return Err(FORM.into());
    }
    Ok(QresyncParams {
        uid_validity,
        modseq,
        known_uids,
        seq_match,
    })
}

/// A sequence set without `*` (RFC 7162 §7: "known-uids = sequence-set ;; `*` is not
/// allowed").
fn uid_set(raw: &[u8], what: &str) -> Result<SequenceSet, String> {
    let text = std::str::from_utf8(raw).map_err(|_| format!("invalid {what}"))?;
    let set: SequenceSet = text
        .parse()
        .map_err(|_| format!("invalid {what} {text:?}"))?;
    let star = set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => matches!(v, SeqOrUid::Asterisk),
        Sequence::Range(a, b) => matches!(a, SeqOrUid::Asterisk) || matches!(b, SeqOrUid::Asterisk),
    });
    if star {
        return Err(format!("{what} must not contain *"));
    }
    Ok(set)
}

/// How many numbers a `*`-free set names (ranges counted, not expanded).
fn set_len(set: &SequenceSet) -> u64 {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => u64::from(n.get()),
        SeqOrUid::Asterisk => u64::from(u32::MAX),
    };
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(_) => 1,
            Sequence::Range(a, b) => value(a).abs_diff(value(b)) + 1,
        })
        .sum()
}

/// Why the SEARCH `MODSEQ` criterion in `args` is invalid, if it is (RFC 7162 §3.1.5:
/// `MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer`); `None` when every
/// MODSEQ criterion is well formed, so the syntax error is elsewhere.
pub fn search_modseq_error(args: &Toks) -> Option<String> {
    let bad = |e: String| Some(format!("Error in IMAP command SEARCH: {e}"));
    let mut i = 0;
    while let Some((tok, _)) = args.get(i) {
        let word = atom_upper(tok).unwrap_or_default();
        if word != "MODSEQ" {
            i += 1 + super::parse::search_key_arity(&word);
            continue;
        }
        let mut at = i + 1;
        if let Some((Token::Quoted(name), _)) = args.get(at) {
            if let Err(e) = entry_name(name) {
                return bad(e);
            }
            match args.get(at + 1).and_then(|t| atom_upper(&t.0)).as_deref() {
                Some("PRIV" | "SHARED" | "ALL") => {}
                _ => return bad("MODSEQ entry type must be priv, shared or all".into()),
            }
            at += 2;
        }
        if let Err(e) = parse_modseq(args.get(at).map(|t| &t.0), true, "MODSEQ") {
            return bad(e);
        }
        i = at + 1;
    }
    None
}

/// Checks a MODSEQ search entry name, `/flags/<flag>` without `\Recent` or other unknown
/// system flags (RFC 7162 §3.1.5, `attr-flag`).
fn entry_name(name: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(name);
    let flag = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("/flags/"))
        .map(|_| &text[7..])
        .ok_or_else(|| format!("MODSEQ entry name {text:?} is not /flags/<flag>"))?;
    if let Some(system) = flag.strip_prefix('\\') {
        let known = ["Answered", "Flagged", "Deleted", "Seen", "Draft"];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(system)) {
            return Err(format!("MODSEQ entry names unknown system flag \\{system}"));
        }
    } else if flag.is_empty() || !flag.bytes().all(super::out::is_astring_char) {
        return Err(format!("MODSEQ entry name {text:?} has an invalid flag"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::wire::lex::tokenize;

    fn run(line: &str) -> Result<Option<Modifiers>, String> {
        let msg = format!("t {line}\r\n");
        let toks = tokenize(msg.as_bytes()).expect("lexes");
        let uid = toks[1].0.is_atom("UID");
        let at = if uid { 2 } else { 1 };
        let cmd = atom_upper(&toks[at].0).expect("command");
        extract(&cmd, uid, &toks[at + 1..], msg.as_bytes()).map(|o| o.map(|(_, m)| m))
    }

    fn cut(line: &str) -> String {
        let msg = format!("t {line}\r\n");
        let toks = tokenize(msg.as_bytes()).expect("lexes");
        let uid = toks[1].0.is_atom("UID");
        let at = if uid { 2 } else { 1 };
        let cmd = atom_upper(&toks[at].0).expect("command");
        match extract(&cmd, uid, &toks[at + 1..], msg.as_bytes()) {
            Ok(Some((span, _))) => {
                let mut s = msg.clone();
                s.replace_range(span, "");
                s
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn modifiers_are_cut_out_cleanly() {
        let cases = [
            (
                "FETCH 1:* (FLAGS) (CHANGEDSINCE 0)",
                "t FETCH 1:* (FLAGS)\r\n",
            ),
            ("FETCH 1 FLAGS (CHANGEDSINCE 5)", "t FETCH 1 FLAGS\r\n"),
            (
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
                "t UID FETCH 1:* (FLAGS)\r\n",
            ),
            (
                "FETCH 1 BODY.PEEK[HEADER.FIELDS (A B)] (CHANGEDSINCE 2)",
                "t FETCH 1 BODY.PEEK[HEADER.FIELDS (A B)]\r\n",
            ),
            (
                "STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)",
                "t STORE 1:3 +FLAGS (\\Seen)\r\n",
            ),
            ("SELECT \"a b\" (CONDSTORE)", "t SELECT \"a b\"\r\n"),
            (
                "EXAMINE {5}\r\nINBOX (QRESYNC (1 2 1:5 (1:2 4:5)))",
                "t EXAMINE {5}\r\nINBOX\r\n",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(cut(line), want, "{line}");
        }
    }

    #[test]
    fn commands_without_modifiers_are_untouched() {
        for line in [
            "FETCH 1 (FLAGS)",
            "FETCH 1 FLAGS",
            "FETCH 1 BODY[HEADER.FIELDS (FROM)]",
            "FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM)]<0.5>",
            "STORE 1 +FLAGS (\\Seen)",
            "SELECT INBOX",
            "UID SEARCH MODSEQ 5",
        ] {
            assert_eq!(run(line), Ok(None), "{line}");
        }
    }

    #[test]
    fn valid_modifiers_parse() {
        let m = |cs: Option<u64>, v: bool| {
            Ok(Some(Modifiers::Fetch(FetchModifiers {
                changed_since: cs.map(ModSeq),
                vanished: v,
            })))
        };
        assert_eq!(run("FETCH 1 (FLAGS) (CHANGEDSINCE 0)"), m(Some(0), false));
        assert_eq!(run("FETCH 1 (FLAGS) (changedsince 007)"), m(Some(7), false));
        assert_eq!(
            run("UID FETCH 1 (FLAGS) (VANISHED CHANGEDSINCE 9223372036854775807)"),
            m(Some(MAX_MODSEQ), true)
        );
        assert_eq!(
            run("UID STORE 1 (UNCHANGEDSINCE 0) FLAGS ()"),
            Ok(Some(Modifiers::Store(StoreModifiers {
                unchanged_since: Some(ModSeq(0))
            })))
        );
        match run(
            "SELECT INBOX (CONDSTORE QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 41,43,45)))",
        ) {
            Ok(Some(Modifiers::Select(SelectParams {
                condstore: true,
                qresync: Some(q),
            }))) => {
                assert_eq!(q.uid_validity.get(), 67890007);
                assert_eq!(q.modseq, ModSeq(20050715194045000));
                assert!(q.known_uids.is_some() && q.seq_match.is_some());
            }
            other => panic!("{other:?}"),
        }
        match run("SELECT INBOX (QRESYNC (1 1))") {
            Ok(Some(Modifiers::Select(SelectParams {
                condstore: false,
                qresync: Some(q),
            }))) => assert!(q.known_uids.is_none() && q.seq_match.is_none()),
            other => panic!("{other:?}"),
        }
    }

    /// Hostile and malformed RFC 7162 syntax: every case is a BAD with a reason.
    #[test]
    fn hostile_modifiers_are_rejected_with_a_reason() {
        let cases = [
            (
                "FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)",
                "out of range",
            ),
            (
                "FETCH 1 (FLAGS) (CHANGEDSINCE 18446744073709551616)",
                "out of range",
            ),
            (
                "FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999999999999)",
                "out of range",
            ),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE -1)", "needs a mod-sequence"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE +1)", "needs a mod-sequence"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE x)", "needs a mod-sequence"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE)", "needs a mod-sequence"),
            (
                "FETCH 1 (FLAGS) (CHANGEDSINCE \"5\")",
                "needs a mod-sequence",
            ),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)", "twice"),
            ("FETCH 1 (FLAGS) (FOO)", "unknown FETCH modifier FOO"),
            ("FETCH 1 (FLAGS) ()", "empty"),
            (
                "FETCH 1 (FLAGS) ((CHANGEDSINCE 1))",
                "invalid FETCH modifiers",
            ),
            (
                "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                "only allowed in UID FETCH",
            ),
            ("UID FETCH 1 (FLAGS) (VANISHED)", "needs CHANGEDSINCE"),
            (
                "UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
                "twice",
            ),
            (
                "STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\\Seen)",
                "out of range",
            ),
            (
                "STORE 1 (UNCHANGEDSINCE -5) +FLAGS (\\Seen)",
                "needs a mod-sequence",
            ),
            (
                "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                "needs a mod-sequence",
            ),
            (
                "STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)",
                "twice",
            ),
            (
                "STORE 1 (FOO 1) +FLAGS (\\Seen)",
                "unknown STORE modifier FOO",
            ),
            ("STORE 1 () +FLAGS (\\Seen)", "empty"),
            ("STORE 1 (UNCHANGEDSINCE 1 +FLAGS (\\Seen)", "unbalanced"),
            ("SELECT INBOX ()", "empty"),
            ("SELECT INBOX (FOO)", "unknown SELECT parameter FOO"),
            ("SELECT INBOX (CONDSTORE) junk", "unexpected data"),
            ("SELECT INBOX (QRESYNC)", "parenthesised"),
            ("SELECT INBOX (QRESYNC 1 1)", "parenthesised"),
            ("SELECT INBOX (QRESYNC (1))", "needs a mod-sequence"),
            ("SELECT INBOX (QRESYNC ())", "QRESYNC needs (uidvalidity"),
            ("SELECT INBOX (QRESYNC (0 1))", "UIDVALIDITY must be"),
            (
                "SELECT INBOX (QRESYNC (4294967296 1))",
                "UIDVALIDITY must be",
            ),
            (
                "SELECT INBOX (QRESYNC (-1 1))",
                "QRESYNC needs (uidvalidity",
            ),
            ("SELECT INBOX (QRESYNC (1 0))", "must not be 0"),
            (
                "SELECT INBOX (QRESYNC (1 9223372036854775808))",
                "out of range",
            ),
            (
                "SELECT INBOX (QRESYNC (1 18446744073709551616))",
                "out of range",
            ),
            ("SELECT INBOX (QRESYNC (1 1 1:*))", "must not contain *"),
            (
                "SELECT INBOX (QRESYNC (1 1 0:5))",
                "invalid QRESYNC known-uids",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 abc))",
                "invalid QRESYNC known-uids",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 1:5 (1:2)))",
                "seq-match-data needs",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 1:5 (1:2 3:4 5)))",
                "seq-match-data needs",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 1:5 (1:3 3:4)))",
                "differ in length",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 1:5 (1:* 3:4)))",
                "must not contain *",
            ),
            (
                "SELECT INBOX (QRESYNC (1 1 1:5 (1:2 3:4) extra))",
                "QRESYNC needs (uidvalidity",
            ),
            ("SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))", "twice"),
            ("EXAMINE INBOX (QRESYNC (1 1)", "unbalanced"),
        ];
        for (line, want) in cases {
            match run(line) {
                Err(e) => assert!(e.contains(want), "{line:?}: {e}"),
                Ok(m) => panic!("{line:?} accepted: {m:?}"),
            }
        }
    }

    #[test]
    fn search_modseq_reasons() {
        let check = |line: &str| {
            let msg = format!("t SEARCH {line}\r\n");
            let toks = tokenize(msg.as_bytes()).expect("lexes");
            search_modseq_error(&toks[2..])
        };
        let cases = [
            ("MODSEQ 18446744073709551616", Some("out of range")),
            ("MODSEQ 9223372036854775808", Some("out of range")),
            ("MODSEQ -1", Some("needs a mod-sequence")),
            ("MODSEQ", Some("needs a mod-sequence")),
            (
                "MODSEQ \"/flags/\\\\Recent\" all 1",
                Some("unknown system flag"),
            ),
            ("MODSEQ \"/foo/bar\" all 1", Some("is not /flags/")),
            ("MODSEQ \"/flags/\\\\Seen\" 1", Some("entry type")),
            ("MODSEQ \"/flags/\\\\Seen\" mine 1", Some("entry type")),
            ("MODSEQ \"/flags/\\\\Seen\" priv 0", None),
            ("MODSEQ \"/flags/$Junk\" shared 12", None),
            ("OR MODSEQ 1 SEEN", None),
            ("SUBJECT MODSEQ", None),
            ("HEADER X-A MODSEQ MODSEQ 3", None),
        ];
        for (line, want) in cases {
            let got = check(line);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{line:?}: {got:?}"),
            }
        }
    }
}
