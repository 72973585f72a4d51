//! COPY (RFC 9051 §6.4.7) and MOVE (RFC 6851), with COPYUID (RFC 4315).

use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::mailbox_arg;
use crate::imap::session::selected::uid_list;
use crate::imap::session::{Completion, OpResult, Session};
use crate::store::Uid;

/// COPY or MOVE (`is_move`).
pub(super) async fn copy_or_move(
    s: &mut Session,
    set: &SequenceSet,
    mailbox: &Mailbox<'_>,
    uid: bool,
    is_move: bool,
    saved: Option<&[Uid]>,
) -> OpResult {
    let name = match mailbox_arg(s, mailbox) {
        Ok(n) => n,
        Err(c) => return Ok(c),
    };
    let (Some(sel), Some(account)) = (s.selected.as_ref(), s.account.as_ref().map(|a| a.id)) else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    if is_move && sel.read_only {
        return Ok(Completion::no_code("READ-ONLY", "Mailbox is read-only."));
    }
    let uids: Vec<Uid> = match sel.resolve(set, uid, saved) {
        Ok(idx) => idx.into_iter().map(|i| sel.messages[i].uid).collect(),
        Err(e) => return Ok(Completion::bad(e)),
    };
    let src = sel.mailbox.id;
    let Some(dest) = s.ctx.store.mailbox(account, &name).await? else {
        return Ok(Completion::no_code("TRYCREATE", "Mailbox doesn't exist."));
    };
    let verb = if is_move { "Move" } else { "Copy" };
    if uids.is_empty() {
        return Ok(Completion::ok(format!(
            "No messages found; {verb} completed."
        )));
    }
    let outcome = if is_move {
        s.ctx.store.move_messages(src, dest.id, &uids).await?
    } else {
        s.ctx.store.copy(src, dest.id, &uids).await?
    };
    if outcome.pairs.is_empty() {
        return Ok(Completion::no(format!(
            "Messages were expunged; nothing to {}.",
            verb.to_lowercase()
        )));
    }
    let code = format!(
        "COPYUID {} {} {}",
        outcome.uid_validity.0,
        uid_list(outcome.pairs.iter().map(|p| p.0.0)),
        uid_list(outcome.pairs.iter().map(|p| p.1.0))
    );
    if is_move {
        s.untagged(format!("OK [{code}] Moved"));
        let moved: Vec<Uid> = outcome.pairs.iter().map(|p| p.0).collect();
        let vanished = s.qresync;
        if let Some(sel) = s.selected.as_mut() {
            sel.expunge_now(&moved, vanished, &mut s.out);
        }
        return Ok(Completion::ok("Move completed."));
    }
    Ok(Completion::ok_code(code, format!("{verb} completed.")))
}
