//! SELECT and EXAMINE (RFC 9051 §6.3.2-3), CLOSE (§6.4.1) and UNSELECT (§6.4.2).

use imap_codec::imap_types::mailbox::Mailbox;

use super::mailbox_arg;
use crate::imap::session::{Completion, OpResult, Selected, Session};

/// SELECT (`read_only == false`) or EXAMINE.
pub(super) async fn select(s: &mut Session, mailbox: &Mailbox<'_>, read_only: bool) -> OpResult {
    let had_selection = s.selected.take().is_some();
    if had_selection && s.rev2 {
        s.untagged("OK [CLOSED] Previous mailbox closed.");
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
    s.selected = Some(sel);
    Ok(if read_only {
        Completion::ok_code("READ-ONLY", "Examine completed.")
    } else {
        Completion::ok_code("READ-WRITE", "Select completed.")
    })
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
