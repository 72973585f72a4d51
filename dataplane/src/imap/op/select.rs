//! SELECT and EXAMINE (RFC 9051 §6.3.2-3) with the CONDSTORE and QRESYNC parameters
//! (RFC 7162 §3.1.8, §3.2.5), CLOSE (§6.4.1) and UNSELECT (§6.4.2).

use std::io::Write;

use imap_codec::imap_types::mailbox::Mailbox;

use super::mailbox_arg;
use crate::imap::session::selected::{compact_set, flag_list, uid_in_set};
use crate::imap::session::{Completion, OpResult, Selected, Session};
use crate::imap::wire::condstore::{QresyncParams, SelectParams};

/// SELECT (`read_only == false`) or EXAMINE, with RFC 7162 parameters.
pub(super) async fn select(
    s: &mut Session,
    mailbox: &Mailbox<'_>,
    read_only: bool,
    params: SelectParams,
) -> OpResult {
    if params.qresync.is_some() && !s.qresync {
        // RFC 7162 §3.2.5: "A server MUST respond with a tagged BAD response if the Quick
        // Resynchronization parameter to SELECT/EXAMINE command is specified and the client
        // hasn't issued ENABLE QRESYNC". The current selection stays.
        return Ok(Completion::bad(
            "QRESYNC parameter given without ENABLE QRESYNC first (RFC 7162 §3.2.5)",
        ));
    }
    let had_selection = s.selected.take().is_some();
    if had_selection && (s.rev2 || s.qresync) {
        s.untagged("OK [CLOSED] Previous mailbox closed.");
    }
    if params.condstore {
        s.enable_condstore();
    }
    let name = match mailbox_arg(s, mailbox) {
        Ok(n) => n,
        Err(c) => return Ok(c),
    };
    let Some(account) = s.account.as_ref().map(|a| a.id) else {
        return Ok(Completion::bad("Not authenticated"));
    };
    let Some(record) = s.ctx.store.mailbox(account, &name).await? else {
        return Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."));
    };
    // Read messages first, then drain notifications: anything after this read will be
    // reported by the next sync because it has a greater MODSEQ.
    let messages = s.ctx.store.messages(record.id).await?;
    while s.changes.try_recv().is_ok() {}
    let mut known = record.clone();
    if let Some(max) = messages.iter().map(|m| m.modseq).max() {
        known.highest_modseq = known.highest_modseq.max(max);
    }
    let sel = Selected::new(known, read_only, messages);
    let first_unseen = sel
        .messages
        .iter()
        .position(|m| !m.flags.iter().any(|f| f == "\\Seen"));
    s.untagged(sel.flags_response());
    s.untagged(sel.permanent_flags_response());
    s.untagged(format!("{} EXISTS", sel.messages.len()));
    if !s.rev2 {
        s.untagged("0 RECENT");
        if let Some(i) = first_unseen {
            s.untagged(format!("OK [UNSEEN {}] First unseen.", i + 1));
        }
    }
    s.untagged(format!(
        "OK [UIDVALIDITY {}] UIDs valid",
        sel.mailbox.uid_validity.0
    ));
    s.untagged(format!(
        "OK [UIDNEXT {}] Predicted next UID",
        sel.mailbox.uid_next.0
    ));
    s.untagged(format!(
        "OK [HIGHESTMODSEQ {}] Highest",
        sel.mailbox.highest_modseq.0
    ));
    if s.rev2 {
        let mut line = b"LIST () \"/\" ".to_vec();
        crate::imap::wire::out::mailbox(&mut line, &sel.mailbox.name, s.utf8);
        s.untagged(line);
    }
    if let Some(q) = params.qresync
        && q.uid_validity.get() == sel.mailbox.uid_validity.0
    {
        // Another UIDVALIDITY means the client's cache is void: a plain SELECT (§3.2.5.1).
        resync(s, &sel, &q).await?;
    }
    s.selected = Some(sel);
    Ok(if read_only {
        Completion::ok_code("READ-ONLY", "Examine completed.")
    } else {
        Completion::ok_code("READ-WRITE", "Select completed.")
    })
}

/// The QRESYNC part of SELECT (RFC 7162 §3.2.5): `VANISHED (EARLIER)` for the UIDs expunged
/// since the client's mod-sequence, then `FETCH (UID FLAGS MODSEQ)` for the messages changed
/// since, both limited to the client's known UIDs when it gave them. Expunges that happened
/// after the view was read (UIDs still in it) are left to the usual VANISHED, so the view
/// and the client's message count agree. seq-match-data only narrows VANISHED for servers
/// that forgot old expunges; MCP keeps every tombstone, so its answer is already exact.
async fn resync(
    s: &mut Session,
    sel: &Selected,
    q: &QresyncParams,
) -> Result<(), crate::imap::session::OpError> {
    let known = |uid| {
        q.known_uids
            .as_ref()
            .is_none_or(|set| uid_in_set(set, uid, None))
    };
    let gone: Vec<u32> = s
        .ctx
        .store
        .expunged_since(sel.mailbox.id, q.modseq)
        .await?
        .into_iter()
        .filter(|uid| sel.seq_of(*uid).is_none() && known(*uid))
        .map(|uid| uid.0)
        .collect();
    if !gone.is_empty() {
        s.untagged(format!("VANISHED (EARLIER) {}", compact_set(gone)));
    }
    for (i, m) in sel.messages.iter().enumerate() {
        if m.modseq > q.modseq && known(m.uid) {
            let _ = write!(
                s.out,
                "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))\r\n",
                i + 1,
                m.uid.0,
                flag_list(&m.flags),
                m.modseq.0
            );
        }
    }
    Ok(())
}

/// UNSELECT (RFC 3691 / RFC 9051 §6.4.2): leave without expunging.
pub(super) fn unselect(s: &mut Session) -> OpResult {
    s.selected = None;
    Ok(Completion::ok("Unselect completed."))
}

/// CLOSE: silently expunge `\Deleted` messages (unless read-only), then leave.
pub(super) async fn close(s: &mut Session) -> OpResult {
    if let Some(sel) = s.selected.take()
        && !sel.read_only
    {
        s.ctx.store.expunge(sel.mailbox.id, None).await?;
    }
    Ok(Completion::ok("Close completed."))
}
