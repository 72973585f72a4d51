//! STORE (RFC 9051 §6.4.6), with `.SILENT` and UNCHANGEDSINCE (RFC 7162 §3.1.3).

use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::session::selected::{compact_set, flags_fetch};
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::condstore::StoreModifiers;
use crate::store::{FlagOp, Uid};

/// Converts protocol flags to stored spellings. `\Recent` cannot be stored (RFC 9051 §2.3.2
/// removed it; RFC 3501 forbids setting it). Other unknown system flags (`\Foo`,
/// flag-extension) are refused too: a server "MUST NOT generate flag-extension flags except
/// as defined by a future Standard" (RFC 9051 §2.3.2), and a stored one would come back in
/// FETCH FLAGS.
pub(super) fn flag_strings(flags: &[Flag<'_>]) -> Result<Vec<String>, Completion> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for f in flags {
        let text = f.to_string();
        if text.eq_ignore_ascii_case("\\Recent") {
            return Err(Completion::bad("\\Recent can't be stored"));
        }
        if matches!(f, Flag::Extension(_)) {
            return Err(Completion::bad(format!("Unknown system flag {text}")));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&text)) {
            out.push(text);
        }
    }
    Ok(out)
}

/// STORE / UID STORE.
///
/// Messages whose MODSEQ exceeds UNCHANGEDSINCE are left alone and listed in the tagged
/// `OK [MODIFIED set]` (sequence numbers, or UIDs for UID STORE); `UNCHANGEDSINCE 0` fails
/// for every message. Once CONDSTORE is enabled, every changed message is reported with its
/// new MODSEQ, with `.SILENT` too (`* n FETCH (MODSEQ (m))`, RFC 7162 §3.1.3).
#[allow(clippy::too_many_arguments)]
pub(super) async fn store(
    s: &mut Session,
    set: &SequenceSet,
    kind: StoreType,
    response: StoreResponse,
    flags: &[Flag<'_>],
    uid: bool,
    mods: StoreModifiers,
    saved: Option<&[Uid]>,
) -> OpResult {
    let flags = match flag_strings(flags) {
        Ok(f) => f,
        Err(c) => return Ok(c),
    };
    let unchanged_since = mods.unchanged_since;
    if unchanged_since.is_some() {
        s.enable_condstore();
    }
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    if sel.read_only {
        return Ok(Completion::no_code("READ-ONLY", "Mailbox is read-only."));
    }
    let indexes = match sel.resolve(set, uid, saved) {
        Ok(i) => i,
        Err(e) => return Ok(Completion::bad(e)),
    };
    let uids: Vec<Uid> = indexes.iter().map(|&i| sel.messages[i].uid).collect();
    let op = match kind {
        StoreType::Replace => FlagOp::Replace,
        StoreType::Add => FlagOp::Add,
        StoreType::Remove => FlagOp::Remove,
    };
    let id = sel.mailbox.id;
    let outcome = if uids.is_empty() {
        Default::default()
    } else {
        s.ctx
            .store
            .store_flags(id, &uids, op, &flags, unchanged_since)
            .await?
    };
    let report = s.report();
    let Some(sel) = s.selected.as_mut() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    sel.announce_keywords(&flags, &mut s.out);
    let mut changed = Vec::with_capacity(outcome.updated.len());
    for rec in outcome.updated {
        if let Some(seq) = sel.seq_of(rec.uid) {
            changed.push(seq - 1);
            sel.messages[seq - 1] = rec;
        }
    }
    if response == StoreResponse::Answer {
        for &i in &indexes {
            let m = &sel.messages[i];
            if outcome.modified.contains(&m.uid) {
                continue;
            }
            if let Some(line) = flags_fetch(i + 1, m, report, true) {
                s.out.extend_from_slice(line.as_bytes());
            }
        }
    } else if report.modseq {
        changed.sort_unstable();
        for i in changed {
            if let Some(line) = flags_fetch(i + 1, &sel.messages[i], report, false) {
                s.out.extend_from_slice(line.as_bytes());
            }
        }
    }
    if !outcome.modified.is_empty() {
        let set = if uid {
            compact_set(outcome.modified.iter().map(|u| u.0))
        } else {
            compact_set(
                outcome
                    .modified
                    .iter()
                    .filter_map(|u| sel.seq_of(*u))
                    .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
            )
        };
        return Ok(Completion::ok_code(
            format!("MODIFIED {set}"),
            "Conditional STORE failed",
        ));
    }
    Ok(Completion::ok("Store completed."))
}
