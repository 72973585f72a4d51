//! Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4-8),
//! NAMESPACE (§6.3.10, RFC 2342) and STATUS (§6.3.11, RFC 8438 SIZE, RFC 9208 §4.2
//! DELETED-STORAGE, RFC 7889 APPENDLIMIT).

use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::status::StatusDataItemName;

use super::{mailbox_arg, validate_name};
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::out;
use crate::imap::wire::parse::StatusAppendLimit;
use crate::store::{AccountId, MailboxRecord, StoreError};

fn account(s: &Session) -> Result<AccountId, Completion> {
    s.account
        .as_ref()
        .map(|a| a.id)
        .ok_or_else(|| Completion::bad("Not authenticated"))
}

/// The account and the decoded mailbox name a command operates on.
fn target(s: &Session, mailbox: &Mailbox<'_>) -> Result<(AccountId, String), Completion> {
    Ok((account(s)?, mailbox_arg(s, mailbox)?))
}

/// Creates every missing ancestor of `name` (RFC 9051 §6.3.4: "create any superior
/// hierarchical names").
async fn create_parents(s: &Session, account: AccountId, name: &str) -> Result<(), StoreError> {
    let mut prefix = String::new();
    let levels: Vec<&str> = name.split('/').collect();
    for level in &levels[..levels.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(level);
        match s.ctx.store.create_mailbox(account, &prefix, None).await {
            Ok(_) | Err(StoreError::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// CREATE.
pub(super) async fn create(s: &mut Session, mailbox: &Mailbox<'_>) -> OpResult {
    let account = match account(s) {
        Ok(a) => a,
        Err(c) => return Ok(c),
    };
    let name = match mailbox {
        Mailbox::Inbox => {
            return Ok(Completion::no_code(
                "ALREADYEXISTS",
                "Mailbox already exists.",
            ));
        }
        Mailbox::Other(o) => {
            let raw = o.inner().as_ref();
            let raw = raw.strip_suffix(b"/").unwrap_or(raw);
            match crate::imap::wire::parse::mailbox_name(raw, s.utf8) {
                Ok(n) => n,
                Err(e) => return Ok(Completion::bad(e)),
            }
        }
    };
    if let Err(c) = validate_name(&name) {
        return Ok(c);
    }
    if name == "INBOX" {
        return Ok(Completion::no_code(
            "ALREADYEXISTS",
            "Mailbox already exists.",
        ));
    }
    create_parents(s, account, &name).await?;
    match s.ctx.store.create_mailbox(account, &name, None).await {
        Ok(_) => Ok(Completion::ok("Create completed.")),
        Err(StoreError::AlreadyExists) => Ok(Completion::no_code(
            "ALREADYEXISTS",
            "Mailbox already exists.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// DELETE. INBOX cannot be deleted; a mailbox with children is refused, as Dovecot does.
pub(super) async fn delete(s: &mut Session, mailbox: &Mailbox<'_>) -> OpResult {
    let (account, name) = match target(s, mailbox) {
        Ok(t) => t,
        Err(c) => return Ok(c),
    };
    if name == "INBOX" {
        return Ok(Completion::no("INBOX can't be deleted."));
    }
    match s.ctx.store.delete_mailbox(account, &name).await {
        Ok(()) => {
            if s.selected
                .as_ref()
                .is_some_and(|sel| sel.mailbox.name == name)
            {
                s.selected = None;
            }
            Ok(Completion::ok("Delete completed."))
        }
        Err(StoreError::NoSuchMailbox) => {
            Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."))
        }
        Err(StoreError::HasChildren) => Ok(Completion::no_code(
            "INUSE",
            "Mailbox has children, delete them first.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// RENAME, including RENAME INBOX (its messages move; INBOX stays, empty).
pub(super) async fn rename(s: &mut Session, from: &Mailbox<'_>, to: &Mailbox<'_>) -> OpResult {
    let account = match account(s) {
        Ok(a) => a,
        Err(c) => return Ok(c),
    };
    let (from, to) = match (mailbox_arg(s, from), mailbox_arg(s, to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(c), _) | (_, Err(c)) => return Ok(c),
    };
    if to == "INBOX" {
        return Ok(Completion::no_code(
            "ALREADYEXISTS",
            "Target mailbox already exists.",
        ));
    }
    if to.starts_with(&format!("{from}/")) || to == from {
        return Ok(Completion::no(
            "Can't rename a mailbox to itself or its child.",
        ));
    }
    if s.ctx.store.mailbox(account, &from).await?.is_none() {
        return Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."));
    }
    if s.ctx.store.mailbox(account, &to).await?.is_some() {
        return Ok(Completion::no_code(
            "ALREADYEXISTS",
            "Target mailbox already exists.",
        ));
    }
    create_parents(s, account, &to).await?;
    match s.ctx.store.rename_mailbox(account, &from, &to).await {
        Ok(()) => Ok(Completion::ok("Rename completed.")),
        Err(StoreError::NoSuchMailbox) => {
            Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."))
        }
        Err(StoreError::AlreadyExists) => Ok(Completion::no_code(
            "ALREADYEXISTS",
            "Target mailbox already exists.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// SUBSCRIBE / UNSUBSCRIBE. Subscribing to a nonexistent name is allowed (RFC 9051 §6.3.7).
pub(super) async fn subscribe(s: &mut Session, mailbox: &Mailbox<'_>, on: bool) -> OpResult {
    let (account, name) = match target(s, mailbox) {
        Ok(t) => t,
        Err(c) => return Ok(c),
    };
    if on && s.ctx.store.mailbox(account, &name).await?.is_none() {
        return Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."));
    }
    s.ctx.store.set_subscribed(account, &name, on).await?;
    Ok(Completion::ok(if on {
        "Subscribe completed."
    } else {
        "Unsubscribe completed."
    }))
}

/// NAMESPACE: one personal namespace, empty prefix, `/` delimiter.
pub(super) fn namespace(s: &mut Session) -> OpResult {
    s.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
    Ok(Completion::ok("Namespace completed."))
}

/// STATUS.
pub(super) async fn status(
    s: &mut Session,
    mailbox: &Mailbox<'_>,
    items: &[StatusDataItemName],
    append_limit: StatusAppendLimit,
) -> OpResult {
    let (account, name) = match target(s, mailbox) {
        Ok(t) => t,
        Err(c) => return Ok(c),
    };
    let Some(record) = s.ctx.store.mailbox(account, &name).await? else {
        return Ok(Completion::no_code("NONEXISTENT", "Mailbox doesn't exist."));
    };
    // With APPENDLIMIT alone, the parser gave imap-codec a stand-in item: not reported.
    let items = if append_limit == StatusAppendLimit::Only {
        &[]
    } else {
        items
    };
    let line = status_line(s, &record, items, append_limit != StatusAppendLimit::No).await?;
    s.untagged(line);
    Ok(Completion::ok("Status completed."))
}

/// The `STATUS name (item value ...)` response body for one mailbox (also LIST-STATUS),
/// with `APPENDLIMIT` last when `append_limit` (RFC 7889 §3.2: the same limit for every
/// mailbox, the one the CAPABILITY advertises). DELETED-STORAGE is in octets: the sum of
/// RFC822.SIZE of the `\Deleted` messages, which RFC 9208 §4.2 allows.
pub(super) async fn status_line(
    s: &Session,
    record: &MailboxRecord,
    items: &[StatusDataItemName],
    append_limit: bool,
) -> Result<Vec<u8>, StoreError> {
    let needs_counts = items.iter().any(|i| {
        matches!(
            i,
            StatusDataItemName::Messages
                | StatusDataItemName::Unseen
                | StatusDataItemName::Deleted
                | StatusDataItemName::DeletedStorage
                | StatusDataItemName::Size
        )
    });
    let counts = if needs_counts {
        s.ctx.store.counts(record.id).await?
    } else {
        Default::default()
    };
    let mut line = b"STATUS ".to_vec();
    out::mailbox(&mut line, &record.name, s.utf8);
    let mut parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusDataItemName::Messages => format!("MESSAGES {}", counts.messages),
            StatusDataItemName::Recent => "RECENT 0".to_owned(),
            StatusDataItemName::UidNext => format!("UIDNEXT {}", record.uid_next.0),
            StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", record.uid_validity.0),
            StatusDataItemName::Unseen => format!("UNSEEN {}", counts.unseen),
            StatusDataItemName::Deleted => format!("DELETED {}", counts.deleted),
            StatusDataItemName::Size => format!("SIZE {}", counts.size),
            StatusDataItemName::HighestModSeq => {
                format!("HIGHESTMODSEQ {}", record.highest_modseq.0)
            }
            StatusDataItemName::DeletedStorage => {
                format!("DELETED-STORAGE {}", counts.deleted_storage)
            }
        })
        .collect();
    if append_limit {
        parts.push(format!("APPENDLIMIT {}", s.ctx.limits.max_literal));
    }
    line.extend_from_slice(format!(" ({})", parts.join(" ")).as_bytes());
    Ok(line)
}
