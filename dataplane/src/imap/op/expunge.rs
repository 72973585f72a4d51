//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1, RFC 9051 §6.4.9); with QRESYNC
//! the expunges are announced as VANISHED (RFC 7162 §3.2.7, §3.2.9).

use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::session::{Completion, OpResult, Session};
use crate::store::Uid;

/// EXPUNGE (`only == None`) or UID EXPUNGE of a UID set.
pub(super) async fn expunge(
    s: &mut Session,
    only: Option<(&SequenceSet, Option<&[Uid]>)>,
) -> OpResult {
    let Some(sel) = s.selected.as_ref() else {
        return Ok(Completion::bad("No mailbox selected"));
    };
    if sel.read_only {
        return Ok(Completion::no_code("READ-ONLY", "Mailbox is read-only."));
    }
    let uids: Option<Vec<Uid>> = match only {
        None => None,
        Some((set, saved)) => match sel.resolve(set, true, saved) {
            Ok(idx) => Some(idx.into_iter().map(|i| sel.messages[i].uid).collect()),
            Err(e) => return Ok(Completion::bad(e)),
        },
    };
    let id = sel.mailbox.id;
    let removed = s.ctx.store.expunge(id, uids.as_deref()).await?;
    let vanished = s.qresync;
    if let Some(sel) = s.selected.as_mut() {
        sel.expunge_now(&removed, vanished, &mut s.out);
    }
    Ok(Completion::ok("Expunge completed."))
}
