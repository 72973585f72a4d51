//! LIST with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE and CHILDREN (RFC 9051 §6.3.9,
//! RFC 5258, RFC 5819, RFC 6154, RFC 3348), and LSUB (RFC 3501 §6.3.9).

use std::collections::{BTreeMap, BTreeSet};

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

use super::mailboxes::status_line;
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::out;
use crate::imap::wire::parse::{ListRequest, mailbox_name, normalize_inbox};
use crate::store::MailboxRecord;

/// Matches `name` against a LIST pattern: `*` matches anything, `%` anything but the
/// hierarchy delimiter (RFC 9051 §6.3.9). Dynamic programming, O(pattern × name), so that
/// hostile patterns like `*a*a*a*...` cannot blow up.
pub(crate) fn matches(pattern: &[char], name: &[char]) -> bool {
    let n = name.len();
    // Every non-wildcard character consumes one character of the name: a pattern with more
    // of them than the name is long cannot match (and costs nothing to reject).
    if pattern.iter().filter(|&&c| c != '*' && c != '%').count() > n {
        return false;
    }
    let mut dp = vec![false; n + 1];
    dp[0] = true;
    for &pc in pattern {
        let mut next = vec![false; n + 1];
        let mut any = false;
        for j in 0..=n {
            match pc {
                '*' | '%' => {
                    if pc == '%' && j > 0 && name[j - 1] == '/' {
                        any = false;
                    }
                    any |= dp[j];
                    next[j] = any;
                }
                c => next[j] = j > 0 && dp[j - 1] && name[j - 1] == c,
            }
        }
        dp = next;
    }
    dp[n]
}

fn full_patterns(reference: &str, patterns: &[String]) -> Vec<Vec<char>> {
    patterns
        .iter()
        .map(|p| {
            let full = if p.starts_with('/') || reference.is_empty() {
                p.clone()
            } else {
                format!("{reference}{p}")
            };
            collapse_wildcards(normalize_inbox(full).chars())
        })
        .collect()
}

/// Replaces each run of wildcards by one: `*` if the run holds a `*`, else `%` (`**`, `*%`
/// and `%*` match what `*` matches; `%%` what `%` matches). Together with the length check
/// in [`matches`] this bounds the matching work by the name's length, not the pattern's:
/// a 64 KiB `*%*%...` pattern costs no more than `*`.
fn collapse_wildcards(chars: impl Iterator<Item = char>) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in chars {
        match (c, out.last_mut()) {
            ('*' | '%', Some(last @ ('*' | '%'))) => {
                if c == '*' {
                    *last = '*';
                }
            }
            _ => out.push(c),
        }
    }
    out
}

struct Entry<'a> {
    name: String,
    record: Option<&'a MailboxRecord>,
    subscribed: bool,
    has_children: bool,
    child_subscribed: bool,
}

/// LIST in every form.
pub(super) async fn list(s: &mut Session, req: ListRequest) -> OpResult {
    let Some(account) = s.account.as_ref().map(|a| a.id) else {
        return Ok(Completion::bad("Not authenticated"));
    };
    if req.patterns.len() == 1 && req.patterns[0].is_empty() && !req.extended {
        s.untagged("LIST (\\Noselect) \"/\" \"\"");
        return Ok(Completion::ok("List completed."));
    }
    let mailboxes = s.ctx.store.list_mailboxes(account).await?;
    let need_subs = req.select.subscribed || req.ret.subscribed;
    let subs: BTreeSet<String> = if need_subs {
        s.ctx
            .store
            .subscriptions(account)
            .await?
            .into_iter()
            .collect()
    } else {
        BTreeSet::new()
    };
    let existing: BTreeSet<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
    let mut names: BTreeSet<String> = existing.iter().map(|n| (*n).to_owned()).collect();
    if req.select.subscribed {
        names.extend(subs.iter().cloned());
    }
    let patterns = full_patterns(&req.reference, &req.patterns);
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for name in &names {
        let chars: Vec<char> = name.chars().collect();
        if !patterns.iter().any(|p| matches(p, &chars)) {
            continue;
        }
        let prefix = format!("{name}/");
        let record = mailboxes.iter().find(|m| &m.name == name);
        entries.push(Entry {
            name: name.clone(),
            record,
            subscribed: subs.contains(name),
            has_children: existing.iter().any(|n| n.starts_with(&prefix)),
            child_subscribed: subs.iter().any(|n| n.starts_with(&prefix)),
        });
    }
    // INBOX first, then by name.
    entries.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    for e in &entries {
        let special = e.record.and_then(|r| r.special_use);
        let selected_by_filter = (!req.select.subscribed || e.subscribed)
            && (!req.select.special_use || special.is_some());
        let childinfo = req.select.recursive_match
            && req.select.subscribed
            && !e.subscribed
            && e.child_subscribed;
        if !selected_by_filter && !childinfo {
            continue;
        }
        let mut attrs: Vec<&str> = Vec::new();
        match e.record {
            None => attrs.push("\\NonExistent"),
            Some(_) => attrs.push(if e.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }),
        }
        if e.subscribed && (req.ret.subscribed || req.select.subscribed) {
            attrs.push("\\Subscribed");
        }
        if let Some(u) = special {
            attrs.push(u.as_imap());
        }
        let mut line = format!("LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
        out::mailbox(&mut line, &e.name, s.utf8);
        if childinfo {
            line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        }
        s.untagged(line);
        if let (Some(items), Some(record)) = (&req.ret.status, e.record) {
            let status = status_line(s, record, items, req.ret.status_append_limit).await?;
            s.untagged(status);
        }
    }
    Ok(Completion::ok("List completed."))
}

/// LSUB (IMAP4rev1 only; deprecated by RFC 9051 but still used).
pub(super) async fn lsub(
    s: &mut Session,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
) -> OpResult {
    let Some(account) = s.account.as_ref().map(|a| a.id) else {
        return Ok(Completion::bad("Not authenticated"));
    };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_owned(),
        Mailbox::Other(o) => match mailbox_name(o.inner().as_ref(), s.utf8) {
            Ok(n) => n,
            Err(e) => return Ok(Completion::bad(e)),
        },
    };
    let raw: &[u8] = match pattern {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(st) => st.as_ref(),
    };
    let pattern = match mailbox_name(raw, s.utf8) {
        Ok(p) => p,
        Err(e) => return Ok(Completion::bad(e)),
    };
    let patterns = full_patterns(&reference, &[pattern]);
    let existing: BTreeSet<String> = s
        .ctx
        .store
        .list_mailboxes(account)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let subs = s.ctx.store.subscriptions(account).await?;
    let subscribed: BTreeSet<&str> = subs.iter().map(String::as_str).collect();
    // Name -> \Noselect. Sorted, and a parent reached from several children is sent once.
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for name in &subs {
        let chars: Vec<char> = name.chars().collect();
        if patterns.iter().any(|p| matches(p, &chars)) {
            found.insert(name.clone(), !existing.contains(name));
            continue;
        }
        // RFC 3501 §6.3.9: when `%` stops the match above a subscribed "foo/bar", LSUB
        // returns the unsubscribed "foo" flagged \Noselect (as Dovecot does).
        for (i, _) in name.match_indices('/') {
            let parent = &name[..i];
            let chars: Vec<char> = parent.chars().collect();
            if !subscribed.contains(parent) && patterns.iter().any(|p| matches(p, &chars)) {
                found.entry(parent.to_owned()).or_insert(true);
            }
        }
    }
    for (name, noselect) in found {
        let attrs = if noselect { "\\Noselect" } else { "" };
        let mut line = format!("LSUB ({attrs}) \"/\" ").into_bytes();
        out::mailbox(&mut line, &name, s.utf8);
        s.untagged(line);
    }
    Ok(Completion::ok("Lsub completed."))
}

#[cfg(test)]
mod tests {
    use super::{collapse_wildcards, matches};

    #[test]
    fn wildcards() {
        let cases = [
            ("*", "a/b/c", true),
            ("%", "a/b", false),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("a*c", "a/b/c", true),
            ("INBOX", "INBOX", true),
            ("D%s", "Drafts", true),
            ("", "x", false),
            ("%%", "a/b", false),
            ("%*%", "a/b", true),
            ("a%%/%", "ab/c", true),
            ("*a*a*a*a", "aaa", false),
            ("*a*a*a", "aaa", true),
        ];
        for (pattern, n, want) in cases {
            let p: Vec<char> = pattern.chars().collect();
            let n: Vec<char> = n.chars().collect();
            assert_eq!(matches(&p, &n), want, "{p:?} {n:?}");
            let collapsed = collapse_wildcards(pattern.chars());
            assert_eq!(matches(&collapsed, &n), want, "collapsed {p:?} {n:?}");
        }
    }
}
