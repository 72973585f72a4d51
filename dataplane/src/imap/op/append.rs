//! APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315) and literal8 (RFC 3516).

use chrono::Utc;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

use super::mailbox_arg;
use super::store::flag_strings;
use crate::imap::session::{Completion, OpResult, Session};
use crate::store::NewMessage;

/// APPEND. The body is stored (and fsynced) before the metadata transaction; the tagged OK
/// is sent only after both committed, so an acknowledged message survives a crash.
pub(super) async fn append(
    s: &mut Session,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    message: LiteralOrLiteral8<'_>,
) -> OpResult {
    let Some(account) = s.account.as_ref().map(|a| a.id) else {
        return Ok(Completion::bad("Not authenticated"));
    };
    let name = match mailbox_arg(s, mailbox) {
        Ok(n) => n,
        Err(c) => return Ok(c),
    };
    let flags = match flag_strings(flags) {
        Ok(f) => f,
        Err(c) => return Ok(c),
    };
    let Some(record) = s.ctx.store.mailbox(account, &name).await? else {
        return Ok(Completion::no_code("TRYCREATE", "Mailbox doesn't exist."));
    };
    let data: Vec<u8> = match message {
        LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
        LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
    };
    if data.is_empty() {
        return Ok(Completion::no("Can't save a zero byte message."));
    }
    let Ok(size) = u32::try_from(data.len()) else {
        return Ok(Completion::no_code("TOOBIG", "Message too large."));
    };
    let internal_date = date
        .map(|d| *d.as_ref())
        .unwrap_or_else(|| Utc::now().fixed_offset());
    let blob = s.ctx.blobs.put(&data).await?;
    let cache = tokio::task::spawn_blocking(move || crate::mime::analyze(&data))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let msg = NewMessage {
        flags,
        internal_date,
        size,
        blob,
        cache,
        metadata: Default::default(),
    };
    let (validity, uid, _) = s.ctx.store.append(record.id, &msg).await?;
    Ok(Completion::ok_code(
        format!("APPENDUID {} {}", validity.0, uid.0),
        "Append completed.",
    ))
}
