//! The selected mailbox as one session sees it: the message sequence number view
//! (RFC 9051 §2.3.1.2), deferred expunges, and announced keywords.

use std::collections::BTreeSet;
use std::io::Write;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::imap::wire::parse::SAVED_RESULT_SENTINEL;
use crate::store::{Changes, MailboxRecord, MessageRecord, ModSeq, Uid};

/// The system flags every mailbox permits (RFC 9051 §2.3.2).
pub(crate) const SYSTEM_FLAGS: &[&str] =
    &["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// A selected mailbox.
pub(crate) struct Selected {
    pub mailbox: MailboxRecord,
    /// EXAMINE, or SELECT of a mailbox the user may not change.
    pub read_only: bool,
    /// Messages by sequence number (index + 1), ascending UID.
    pub messages: Vec<MessageRecord>,
    /// Changes up to this MODSEQ are reflected in `messages`.
    pub known_modseq: ModSeq,
    /// Expunged in the store but not yet announced to this client.
    pub pending_expunge: BTreeSet<Uid>,
    /// Keywords announced in FLAGS, ASCII-lower-case for lookup, with their spelling.
    pub keywords: Vec<String>,
}

/// How one session wants message changes reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Include `UID` in FETCH responses about flag changes: in UID commands (RFC 9051
    /// §7.5.2) and always once QRESYNC is enabled (RFC 7162 §3.2.4, as Dovecot).
    pub uid: bool,
    /// Include `MODSEQ` once CONDSTORE is enabled (RFC 7162 §3.1.2).
    pub modseq: bool,
    /// Announce expunges as `VANISHED uid-set` instead of `n EXPUNGE` (RFC 7162 §3.2.10).
    pub vanished: bool,
}

/// `* seq FETCH (...)` reporting a message's flags (when `flags`) and, per `report`, its UID
/// and MODSEQ. With neither flags nor MODSEQ there is nothing to say: `None`.
pub(crate) fn flags_fetch(
    seq: usize,
    m: &MessageRecord,
    report: Report,
    flags: bool,
) -> Option<String> {
    let mut items = Vec::new();
    if report.uid {
        items.push(format!("UID {}", m.uid.0));
    }
    if flags {
        items.push(format!("FLAGS {}", flag_list(&m.flags)));
    }
    if report.modseq {
        items.push(format!("MODSEQ ({})", m.modseq.0));
    }
    (flags || report.modseq).then(|| format!("* {seq} FETCH ({})\r\n", items.join(" ")))
}

/// True when `uid` is in the UID set `set`; `*` is the largest possible UID, so that a set
/// like `5:*` also names expunged UIDs above the current largest one (RFC 7162 §3.2.6
/// VANISHED). `saved` is the SEARCHRES result [`SAVED_RESULT_SENTINEL`] stands for.
pub(crate) fn uid_in_set(set: &SequenceSet, uid: Uid, saved: Option<&[Uid]>) -> bool {
    set.0
        .as_ref()
        .iter()
        .any(|seq| match element(seq, saved, u32::MAX) {
            Element::Saved(saved) => saved.contains(&uid),
            Element::Range(lo, hi) => (lo..=hi).contains(&uid.0),
        })
}

/// One element of a sequence set, resolved.
enum Element<'a> {
    /// The SEARCHRES marker ([`SAVED_RESULT_SENTINEL`]): the saved result it stands for.
    Saved(&'a [Uid]),
    /// Its bounds in ascending order, `*` read as the value given to [`element`].
    Range(u32, u32),
}

/// Resolves `seq` against the saved result `saved` and the value of `*`.
fn element<'a>(seq: &Sequence, saved: Option<&'a [Uid]>, asterisk: u32) -> Element<'a> {
    let (a, b) = match seq {
        Sequence::Single(v) => (v, v),
        Sequence::Range(a, b) => (a, b),
    };
    if let (Some(saved), SeqOrUid::Value(v)) = (saved, a)
        && v.get() == SAVED_RESULT_SENTINEL
        && a == b
    {
        return Element::Saved(saved);
    }
    let val = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => asterisk,
    };
    Element::Range(val(a).min(val(b)), val(a).max(val(b)))
}

/// Space-separated flags in parentheses, e.g. `(\Seen $Forwarded)`.
pub(crate) fn flag_list(flags: &[String]) -> String {
    format!("({})", flags.join(" "))
}

impl Selected {
    pub fn new(mailbox: MailboxRecord, read_only: bool, messages: Vec<MessageRecord>) -> Self {
        let mut keywords: Vec<String> = Vec::new();
        for m in &messages {
            for f in &m.flags {
                if !f.starts_with('\\') && !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                    keywords.push(f.clone());
                }
            }
        }
        keywords.sort_by_key(|k| k.to_ascii_lowercase());
        let known_modseq = mailbox.highest_modseq;
        Self {
            mailbox,
            read_only,
            messages,
            known_modseq,
            pending_expunge: BTreeSet::new(),
            keywords,
        }
    }

    pub fn has_pending_expunges(&self) -> bool {
        !self.pending_expunge.is_empty()
    }

    /// 1-based sequence number of `uid`.
    pub fn seq_of(&self, uid: Uid) -> Option<usize> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i + 1)
    }

    pub fn flags_response(&self) -> String {
        let mut all: Vec<String> = SYSTEM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        all.extend(self.keywords.iter().cloned());
        format!("FLAGS {}", flag_list(&all))
    }

    pub fn permanent_flags_response(&self) -> String {
        if self.read_only {
            return "OK [PERMANENTFLAGS ()] Read-only mailbox.".into();
        }
        let mut all: Vec<String> = SYSTEM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        all.extend(self.keywords.iter().cloned());
        all.push("\\*".into());
        format!("OK [PERMANENTFLAGS {}] Flags permitted.", flag_list(&all))
    }

    /// Announces keywords of `flags` not seen before with untagged FLAGS and PERMANENTFLAGS,
    /// which must precede a FETCH that shows them (RFC 9051 §7.3.5).
    pub fn announce_keywords(&mut self, flags: &[String], out: &mut Vec<u8>) {
        let mut new = false;
        for f in flags {
            if !f.starts_with('\\') && !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                self.keywords.push(f.clone());
                new = true;
            }
        }
        if new {
            self.keywords.sort_by_key(|k| k.to_ascii_lowercase());
            let _ = write!(
                out,
                "* {}\r\n* {}\r\n",
                self.flags_response(),
                self.permanent_flags_response()
            );
        }
    }

    /// Folds store changes into the view and reports them: FETCH for changed flags (and,
    /// with CONDSTORE, for any MODSEQ change), EXISTS for new messages, expunges when
    /// `allow_expunge`.
    pub fn apply_changes(
        &mut self,
        changes: Changes,
        allow_expunge: bool,
        report: Report,
        out: &mut Vec<u8>,
    ) {
        for uid in &changes.expunged {
            if self.seq_of(*uid).is_some() {
                self.pending_expunge.insert(*uid);
            }
        }
        let mut exists_changed = false;
        for rec in changes.changed {
            if let Some(seq) = self.seq_of(rec.uid) {
                let idx = seq - 1;
                let old = &self.messages[idx];
                if old.flags != rec.flags || (report.modseq && old.modseq != rec.modseq) {
                    self.announce_keywords(&rec.flags, out);
                    if let Some(line) = flags_fetch(seq, &rec, report, true) {
                        out.extend_from_slice(line.as_bytes());
                    }
                }
                self.messages[idx] = rec;
            } else if self.messages.last().is_none_or(|m| m.uid < rec.uid) {
                self.announce_keywords(&rec.flags, out);
                self.messages.push(rec);
                exists_changed = true;
            }
        }
        if allow_expunge {
            self.flush_expunges(report.vanished, out);
        }
        if exists_changed {
            let _ = write!(out, "* {} EXISTS\r\n", self.messages.len());
        }
        if changes.highest_modseq > self.known_modseq {
            self.known_modseq = changes.highest_modseq;
        }
        self.mailbox.highest_modseq = self.known_modseq;
    }

    /// Announces and applies pending expunges: `* n EXPUNGE` (highest first so that each
    /// number is valid when the client reads it), or one `* VANISHED uid-set` once QRESYNC
    /// is enabled (`vanished`, RFC 7162 §3.2.10).
    pub fn flush_expunges(&mut self, vanished: bool, out: &mut Vec<u8>) {
        if self.pending_expunge.is_empty() {
            return;
        }
        let mut gone = Vec::new();
        for uid in std::mem::take(&mut self.pending_expunge).into_iter().rev() {
            if let Some(seq) = self.seq_of(uid) {
                self.messages.remove(seq - 1);
                if vanished {
                    gone.push(uid.0);
                } else {
                    let _ = write!(out, "* {seq} EXPUNGE\r\n");
                }
            }
        }
        if !gone.is_empty() {
            let _ = write!(out, "* VANISHED {}\r\n", compact_set(gone));
        }
    }

    /// Removes `uids` from the view now, announcing them (used by EXPUNGE and MOVE).
    pub fn expunge_now(&mut self, uids: &[Uid], vanished: bool, out: &mut Vec<u8>) {
        self.pending_expunge.extend(uids.iter().copied());
        self.flush_expunges(vanished, out);
    }

    /// Resolves a sequence set to view indexes (0-based, ascending, no duplicates).
    ///
    /// UID sets ignore UIDs that do not exist, and `n:*` always includes the highest UID
    /// (RFC 9051 §6.4.9). Message sequence numbers beyond the mailbox are an error.
    /// `saved` is the SEARCHRES result that [`SAVED_RESULT_SENTINEL`] stands for.
    pub fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
        saved: Option<&[Uid]>,
    ) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        let asterisk = if uid {
            self.messages.last().map_or(0, |m| m.uid.0)
        } else {
            u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
        };
        for seq in set.0.as_ref() {
            match element(seq, saved, asterisk) {
                Element::Saved(saved) => {
                    out.extend(saved.iter().filter_map(|u| self.seq_of(*u).map(|s| s - 1)));
                }
                Element::Range(lo, hi) if uid => {
                    let start = self.messages.partition_point(|m| m.uid.0 < lo);
                    let end = self.messages.partition_point(|m| m.uid.0 <= hi);
                    out.extend(start..end);
                }
                Element::Range(lo, hi) => {
                    if hi > asterisk || lo == 0 {
                        return Err("Invalid messageset".into());
                    }
                    out.extend((lo as usize - 1)..(hi as usize));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Formats UIDs as a compact sequence set (`1:3,7`), for ESEARCH ALL and MODIFIED.
pub(crate) fn compact_set(values: impl IntoIterator<Item = u32>) -> String {
    let mut v: Vec<u32> = values.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    uid_list(v)
}

/// Formats (source, destination) UID pairs in order, keeping their correspondence (COPYUID).
pub(crate) fn uid_list(values: impl IntoIterator<Item = u32>) -> String {
    let v: Vec<u32> = values.into_iter().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{AccountId, BlobId, MailboxId, UidValidity};

    fn msg(uid: u32, modseq: u64, flags: &[&str]) -> MessageRecord {
        MessageRecord {
            uid: Uid(uid),
            modseq: ModSeq(modseq),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            internal_date: chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .expect("date"),
            size: 1,
            blob: BlobId("0".repeat(64)),
        }
    }

    fn view(messages: Vec<MessageRecord>) -> Selected {
        let mailbox = MailboxRecord {
            id: MailboxId(1),
            account: AccountId(1),
            name: "INBOX".into(),
            uid_validity: UidValidity(7),
            uid_next: Uid(100),
            highest_modseq: ModSeq(10),
            special_use: None,
        };
        Selected::new(mailbox, false, messages)
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn fetch_lines_follow_the_enabled_extensions() {
        let m = msg(9, 42, &["\\Seen"]);
        let plain = Report::default();
        let uid = Report {
            uid: true,
            ..Report::default()
        };
        let condstore = Report {
            modseq: true,
            ..Report::default()
        };
        let qresync = Report {
            uid: true,
            modseq: true,
            vanished: true,
        };
        let cases = [
            (plain, true, Some("* 3 FETCH (FLAGS (\\Seen))\r\n")),
            (plain, false, None),
            (uid, true, Some("* 3 FETCH (UID 9 FLAGS (\\Seen))\r\n")),
            (
                condstore,
                true,
                Some("* 3 FETCH (FLAGS (\\Seen) MODSEQ (42))\r\n"),
            ),
            (condstore, false, Some("* 3 FETCH (MODSEQ (42))\r\n")),
            (qresync, false, Some("* 3 FETCH (UID 9 MODSEQ (42))\r\n")),
        ];
        for (report, flags, want) in cases {
            assert_eq!(
                flags_fetch(3, &m, report, flags).as_deref(),
                want,
                "{report:?}"
            );
        }
    }

    #[test]
    fn expunges_are_vanished_once_qresync_is_enabled() {
        let mut sel = view(vec![
            msg(1, 1, &[]),
            msg(2, 1, &[]),
            msg(3, 1, &[]),
            msg(5, 1, &[]),
        ]);
        let mut out = Vec::new();
        sel.expunge_now(&[Uid(2), Uid(3)], false, &mut out);
        assert_eq!(text(&out), "* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n");
        out.clear();
        sel.expunge_now(&[Uid(1), Uid(5), Uid(77)], true, &mut out);
        assert_eq!(
            text(&out),
            "* VANISHED 1,5\r\n",
            "unknown UID 77 is not reported"
        );
        assert!(sel.messages.is_empty());
    }

    #[test]
    fn condstore_reports_modseq_only_changes() {
        let mut sel = view(vec![msg(1, 3, &["\\Seen"]), msg(2, 3, &[])]);
        let changes = Changes {
            highest_modseq: ModSeq(12),
            // Flags back where they were, MODSEQ moved on: only CONDSTORE clients care.
            changed: vec![msg(1, 11, &["\\Seen"]), msg(2, 12, &["\\Flagged"])],
            expunged: vec![],
        };
        let mut out = Vec::new();
        let mut plain = view(sel.messages.clone());
        plain.apply_changes(changes.clone(), true, Report::default(), &mut out);
        assert_eq!(text(&out), "* 2 FETCH (FLAGS (\\Flagged))\r\n");
        out.clear();
        let report = Report {
            uid: true,
            modseq: true,
            vanished: true,
        };
        sel.apply_changes(changes, true, report, &mut out);
        assert_eq!(
            text(&out),
            "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (11))\r\n\
             * 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (12))\r\n"
        );
        assert_eq!(sel.known_modseq, ModSeq(12));
    }

    #[test]
    fn uid_sets_for_vanished_reach_past_the_largest_uid() {
        let set: SequenceSet = "5:*".parse().expect("set");
        assert!(uid_in_set(&set, Uid(6), None));
        assert!(uid_in_set(&set, Uid(u32::MAX - 1), None));
        assert!(!uid_in_set(&set, Uid(4), None));
        let saved: SequenceSet = SAVED_RESULT_SENTINEL.to_string().parse().expect("set");
        assert!(uid_in_set(&saved, Uid(3), Some(&[Uid(3)])));
        assert!(!uid_in_set(&saved, Uid(4), Some(&[Uid(3)])));
    }

    #[test]
    fn compact_sets() {
        assert_eq!(compact_set([5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(compact_set([]), "");
        assert_eq!(uid_list([4, 5, 6, 2]), "4:6,2");
    }
}
