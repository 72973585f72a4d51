//! APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315) and literal8 (RFC 3516).

use chrono::Utc;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

use bytes::Bytes;
use mcp_crds::pipeline::Stage;
use mcp_plugin_api::Envelope;

use super::mailbox_arg;
use super::store::flag_strings;
use crate::imap::session::{Completion, OpResult, Session};
use crate::ingest::{IngestError, Ingested, Submission};

/// APPEND, through the `append` stage of the pipeline ([`crate::ingest`]). The body is
/// stored (and fsynced) before the metadata transaction; the tagged OK is sent only after
/// both committed (or the message is held in quarantine), so an acknowledged message
/// survives a crash. A pipeline's `Reject` answers `NO [CANNOT]` and `TempFail` (or a
/// failing step under `failClosed`) `NO [UNAVAILABLE]`, each with the enhanced status code.
pub(super) async fn append(
    s: &mut Session,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    message: LiteralOrLiteral8<'_>,
) -> OpResult {
    let Some(account) = s.account.clone() else {
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
    let Some(record) = s.ctx.store.mailbox(account.id, &name).await? else {
        return Ok(Completion::no_code("TRYCREATE", "Mailbox doesn't exist."));
    };
    let data: Vec<u8> = match message {
        LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
        LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
    };
    if data.is_empty() {
        return Ok(Completion::no("Can't save a zero byte message."));
    }
    if u32::try_from(data.len()).is_err() {
        return Ok(Completion::no_code("TOOBIG", "Message too large."));
    }
    let internal_date = date
        .map(|d| *d.as_ref())
        .unwrap_or_else(|| Utc::now().fixed_offset());
    let envelope = Envelope {
        mail_from: String::new(),
        rcpt_to: account.address.clone(),
    };
    let submission = Submission {
        stage: Stage::Append,
        account,
        folder: record.name,
        envelope,
        message: Bytes::from(data),
        flags,
        internal_date,
    };
    let ingested = match s.ctx.ingest.submit(submission).await {
        Ok(i) => i,
        Err(IngestError::TooLarge) => {
            return Ok(Completion::no_code("TOOBIG", "Message too large."));
        }
        Err(IngestError::NoFolder(_)) => {
            return Ok(Completion::no_code("TRYCREATE", "Mailbox doesn't exist."));
        }
        Err(IngestError::Store(e)) => return Err(e.into()),
        Err(IngestError::Blob(e)) => return Err(e.into()),
        Err(e @ (IngestError::Analyze(_) | IngestError::Quarantine(_))) => {
            tracing::error!(error = %e, "APPEND failed");
            return Ok(Completion::no_code("UNAVAILABLE", "Try again later."));
        }
    };
    Ok(match ingested {
        Ingested::Stored {
            uid_validity,
            uid,
            filed: false,
            ..
        } => Completion::ok_code(
            format!("APPENDUID {} {}", uid_validity.0, uid.0),
            "Append completed.",
        ),
        // APPENDUID names the target mailbox (RFC 4315 §3); a filed message is elsewhere.
        Ingested::Stored { folder, .. } => {
            Completion::ok(format!("Append completed; filed into {folder}."))
        }
        Ingested::Quarantined { .. } => Completion::ok("Append completed; held in quarantine."),
        Ingested::Discarded => Completion::ok("Append completed; discarded by policy."),
        Ingested::Rejected { status, text } => {
            Completion::no_code("CANNOT", format!("{status} {text}"))
        }
        Ingested::TempFailed { status, text } => {
            Completion::no_code("UNAVAILABLE", format!("{status} {text}"))
        }
    })
}
