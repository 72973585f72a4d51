//! The quarantine: messages the pipeline held instead of storing (a `Quarantine` verdict, or
//! a step's `onError: quarantine`), kept per tenant with the reason until an administrator
//! releases or deletes them (docs/pipeline.md, "Quarantine").
//!
//! What is kept is the message *as received*, before any pipeline mutation: its body as a
//! blob in the [`BlobStore`] and one row of metadata. [`Quarantine::hold`] writes (and
//! fsyncs) the blob before the row commits, so a hold that returned survives `kill -9`.
//! [`Quarantine::release`] moves the message into the mailbox it was headed for in one
//! transaction that deletes the row and inserts the message, so a crash or a concurrent
//! second release never loses or duplicates it: the loser gets [`QuarantineError::NotFound`].
//!
//! Blobs are not deleted here: a released message references the same blob, and a deleted
//! one leaves it to orphan collection, which counts quarantined blobs as referenced
//! ([`MetadataStore::referenced_blobs`]).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use mcp_crds::pipeline::Stage;

use super::{AccountId, BlobError, BlobId, BlobStore, MessageCache, MetadataStore, StoreError};
use super::{Uid, UidValidity};

/// Number of hex digits of a [`QuarantineId`]: 12 for the creation time in milliseconds,
/// then 32 for 128 random bits.
pub const QUARANTINE_ID_LEN: usize = 44;

/// Most entries one [`Quarantine::list`] call returns.
pub const MAX_LIST_LIMIT: u32 = mcp_crds::dataplane::QUARANTINE_MAX_LIMIT;

/// The id of a quarantined message: 44 lower-case hex digits, the creation time in
/// milliseconds since the epoch (12 digits) followed by 128 random bits (32 digits).
///
/// Unguessable (the random part), and ordered by creation time, so listing pages by id
/// (`after=ID`) works even when the entry named by the cursor was released meanwhile.
/// Ids from several replicas are ordered by their clocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuarantineId(String);

impl QuarantineId {
    /// A fresh id for a message held now.
    pub fn generate() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // 12 hex digits hold milliseconds until the year 10889.
        let ms = ms & 0xffff_ffff_ffff;
        QuarantineId(format!("{ms:012x}{:032x}", rand::random::<u128>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QuarantineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a [`QuarantineId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a quarantine id: expected {QUARANTINE_ID_LEN} lower-case hex digits")]
pub struct InvalidQuarantineId;

impl FromStr for QuarantineId {
    type Err = InvalidQuarantineId;

    /// Accepts exactly [`QUARANTINE_ID_LEN`] characters `0-9a-f`; nothing else (no upper
    /// case, no separators), so an id is safe in paths, logs and SQL.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == QUARANTINE_ID_LEN
            && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| QuarantineId(s.to_owned()))
            .ok_or(InvalidQuarantineId)
    }
}

/// The stage name as stored: `deliver`, `append` or `post-store`.
pub(crate) fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Deliver => "deliver",
        Stage::Append => "append",
        Stage::PostStore => "post-store",
    }
}

/// The stage of a stored name.
pub(crate) fn stage_from_name(name: &str) -> Option<Stage> {
    [Stage::Deliver, Stage::Append, Stage::PostStore]
        .into_iter()
        .find(|s| stage_name(*s) == name)
}

/// Where a held message came from and why it was held: what the pipeline engine passes to
/// [`Quarantine::hold`].
#[derive(Clone, Debug)]
pub struct HeldMessage {
    /// The recipient account's tenant.
    pub tenant: String,
    /// The recipient account.
    pub account: AccountId,
    /// The address the message was sent to (`RCPT TO`, maybe an alias), or the account's
    /// address for APPEND; stored lower-case.
    pub recipient: String,
    /// The envelope sender (`MAIL FROM`), empty for the null sender `<>` and for APPEND.
    pub mail_from: String,
    /// The stage whose pipeline held the message.
    pub stage: Stage,
    /// The folder the message was headed for (`INBOX` for delivery, the APPEND target, or a
    /// folder a step chose); release puts it there, or in `INBOX` if it no longer exists.
    pub folder: String,
    /// Why: the verdict's reason or the failed step's error.
    pub reason: String,
    /// The Pipeline resource, `namespace/name`.
    pub pipeline: String,
    /// Name of the step that held the message.
    pub step: String,
    /// The Pipeline's compiled revision ([`mcp_crds::PipelineSpec::revision`]).
    pub revision: String,
    /// Flags the message is to get when released (APPEND's flags; none for delivery).
    pub flags: Vec<String>,
    /// INTERNALDATE the message is to get when released.
    pub internal_date: DateTime<FixedOffset>,
    /// The message as received, before any mutation.
    pub message: Bytes,
}

/// A quarantined message's metadata, as [`Quarantine::list`] and [`Quarantine::get`] return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedMessage {
    /// Its id.
    pub id: QuarantineId,
    /// The recipient account's tenant.
    pub tenant: String,
    /// The recipient account; `None` once that account was deleted.
    pub account: Option<AccountId>,
    /// The recipient account's primary address; `None` once it was deleted.
    pub account_address: Option<String>,
    /// The address the message was sent to, lower-case.
    pub recipient: String,
    /// The envelope sender, empty for `<>` and APPEND.
    pub mail_from: String,
    /// The stage whose pipeline held it.
    pub stage: Stage,
    /// The folder it was headed for.
    pub folder: String,
    /// Why it was held.
    pub reason: String,
    /// The Pipeline's name.
    pub pipeline: String,
    /// The step's name.
    pub step: String,
    /// The Pipeline's revision.
    pub revision: String,
    /// Content address of the original message.
    pub blob: BlobId,
    /// Size of the original message, octets.
    pub size: u32,
    /// Flags it gets when released (normalised).
    pub flags: Vec<String>,
    /// INTERNALDATE it gets when released.
    pub internal_date: DateTime<FixedOffset>,
    /// When it was held (millisecond precision).
    pub created_at: DateTime<Utc>,
}

/// Which quarantined messages [`Quarantine::list`] returns: those of `tenant` (and of
/// `account` if given), ascending by id (creation order), after the cursor `after`, at most
/// `limit` (clamped to 1..=[`MAX_LIST_LIMIT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineQuery {
    /// The tenant.
    pub tenant: String,
    /// Only messages held for this account.
    pub account: Option<AccountId>,
    /// Only ids greater than this one (the last id of the previous page; it need not exist
    /// any more).
    pub after: Option<QuarantineId>,
    /// Most entries to return.
    pub limit: u32,
}

/// Where [`Quarantine::release`] put a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The account it went to.
    pub account: AccountId,
    /// Name of the folder it went to: the one it was headed for, or `INBOX`.
    pub folder: String,
    /// UIDVALIDITY of that folder.
    pub uid_validity: UidValidity,
    /// The message's UID there.
    pub uid: Uid,
}

/// Errors of the [`Quarantine`] API.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// No quarantined message has this id: never held, or already released or deleted.
    #[error("no quarantined message {0}")]
    NotFound(QuarantineId),
    /// The recipient account was deleted after the message was held; it can only be
    /// deleted (or fetched) now.
    #[error("quarantined message {id}: its account ({recipient}) no longer exists")]
    AccountGone {
        /// The message.
        id: QuarantineId,
        /// The address it was sent to.
        recipient: String,
    },
    /// The account has neither the folder the message was headed for nor `INBOX`.
    #[error("quarantined message {id}: the account has neither {folder:?} nor INBOX")]
    NoFolder {
        /// The message.
        id: QuarantineId,
        /// The folder it was headed for.
        folder: String,
    },
    /// The message is larger than RFC822.SIZE can say (4 GiB).
    #[error("message too large to hold: {0} octets")]
    TooLarge(usize),
    /// The metadata store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed (or the original message's blob is missing).
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Analysing the message for the IMAP cache failed (a panic in the parser).
    #[error("message analysis failed: {0}")]
    Analyze(String),
}

/// The quarantine of one store: metadata rows plus blobs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Quarantine {
    store: MetadataStore,
    blobs: BlobStore,
}

impl Quarantine {
    /// The quarantine kept in `store` with bodies in `blobs`.
    pub fn new(store: MetadataStore, blobs: BlobStore) -> Self {
        Self { store, blobs }
    }

    /// Holds a message: stores the original body (fsynced) and then its row, and returns the
    /// new id. Once this returns, the message survives a crash; the caller may then
    /// acknowledge it (LMTP 250 / APPEND OK, as the pipeline decides).
    ///
    /// Errors: `TooLarge` over 4 GiB, `Blob`, `Store` (the blob may stay as an orphan).
    pub async fn hold(&self, held: HeldMessage) -> Result<QuarantineId, QuarantineError> {
        let size = u32::try_from(held.message.len())
            .map_err(|_| QuarantineError::TooLarge(held.message.len()))?;
        let blob = self.blobs.put(&held.message).await?;
        let id = QuarantineId::generate();
        self.store
            .insert_quarantined(&id, &held, &blob, size, Utc::now())
            .await?;
        tracing::info!(
            %id, tenant = %held.tenant, recipient = %held.recipient,
            pipeline = %held.pipeline, step = %held.step, reason = %held.reason,
            "message quarantined"
        );
        Ok(id)
    }

    /// One page of quarantined messages ([`QuarantineQuery`]). Errors: `Store`.
    pub async fn list(
        &self,
        query: &QuarantineQuery,
    ) -> Result<Vec<QuarantinedMessage>, QuarantineError> {
        Ok(self.store.list_quarantined(query).await?)
    }

    /// One quarantined message's metadata. Errors: `NotFound`, `Store`.
    pub async fn get(&self, id: &QuarantineId) -> Result<QuarantinedMessage, QuarantineError> {
        self.store
            .quarantined(id)
            .await?
            .ok_or_else(|| QuarantineError::NotFound(id.clone()))
    }

    /// The original message (RFC 5322 octets, as received) and its metadata.
    /// Errors: `NotFound`, `Store`, `Blob`.
    pub async fn message(
        &self,
        id: &QuarantineId,
    ) -> Result<(QuarantinedMessage, Bytes), QuarantineError> {
        let entry = self.get(id).await?;
        let body = self.blobs.get(&entry.blob).await?;
        Ok((entry, body))
    }

    /// Releases a message into its account: appended to the folder it was headed for (or
    /// `INBOX` if that folder no longer exists) with its flags and INTERNALDATE, through the
    /// same store insert as IMAP APPEND (UID and MODSEQ allocated in the transaction; IDLE
    /// sessions are notified). The quarantine row is deleted in that same transaction, so
    /// the message is never both quarantined and stored, nor stored twice.
    ///
    /// Errors: `NotFound` (also when a concurrent release or delete won), `AccountGone`,
    /// `NoFolder`, `Blob` (the original is missing), `Analyze`, `Store`; on any error the
    /// message stays quarantined.
    pub async fn release(&self, id: &QuarantineId) -> Result<Released, QuarantineError> {
        let entry = self.get(id).await?;
        if entry.account.is_none() {
            return Err(QuarantineError::AccountGone {
                id: id.clone(),
                recipient: entry.recipient,
            });
        }
        let body = self.blobs.get(&entry.blob).await?;
        let cache: MessageCache = tokio::task::spawn_blocking(move || crate::mime::analyze(&body))
            .await
            .map_err(|e| QuarantineError::Analyze(e.to_string()))?;
        let released = self
            .store
            .release_quarantined(id, cache)
            .await
            .map_err(|e| match e {
                StoreError::NoSuchQuarantined(_) => QuarantineError::NotFound(id.clone()),
                StoreError::NoSuchAccount => QuarantineError::AccountGone {
                    id: id.clone(),
                    recipient: entry.recipient.clone(),
                },
                StoreError::NoSuchMailbox => QuarantineError::NoFolder {
                    id: id.clone(),
                    folder: entry.folder.clone(),
                },
                other => QuarantineError::Store(other),
            })?;
        tracing::info!(
            %id, recipient = %entry.recipient, folder = %released.folder, uid = released.uid.0,
            "quarantined message released"
        );
        Ok(released)
    }

    /// Deletes a quarantined message (its blob is left to orphan collection).
    /// Errors: `NotFound` (also when a concurrent release or delete won), `Store`.
    pub async fn delete(&self, id: &QuarantineId) -> Result<(), QuarantineError> {
        if self.store.delete_quarantined(id).await? {
            tracing::info!(%id, "quarantined message deleted");
            Ok(())
        } else {
            Err(QuarantineError::NotFound(id.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_grow_with_time() {
        let a = QuarantineId::generate();
        assert_eq!(a.as_str().len(), QUARANTINE_ID_LEN);
        assert_eq!(a.as_str().parse::<QuarantineId>(), Ok(a.clone()));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = QuarantineId::generate();
        assert!(b > a, "{b} after {a}");
        assert_ne!(a.as_str()[12..], b.as_str()[12..]);
    }

    #[test]
    fn only_lower_case_hex_of_the_right_length_is_an_id() {
        let good = "0".repeat(QUARANTINE_ID_LEN);
        assert!(good.parse::<QuarantineId>().is_ok());
        let bad = [
            String::new(),
            "0".repeat(QUARANTINE_ID_LEN - 1),
            "0".repeat(QUARANTINE_ID_LEN + 1),
            "A".repeat(QUARANTINE_ID_LEN),
            format!("../{}", "0".repeat(QUARANTINE_ID_LEN - 3)),
            format!("{}%2f", "0".repeat(QUARANTINE_ID_LEN - 3)),
            format!("{}' OR 1=1", "0".repeat(QUARANTINE_ID_LEN - 8)),
            format!("{}é", "0".repeat(QUARANTINE_ID_LEN - 2)),
        ];
        for s in bad {
            assert_eq!(s.parse::<QuarantineId>(), Err(InvalidQuarantineId), "{s:?}");
        }
    }

    #[test]
    fn stage_names_round_trip() {
        for stage in [Stage::Deliver, Stage::Append, Stage::PostStore] {
            assert_eq!(stage_from_name(stage_name(stage)), Some(stage));
        }
        assert_eq!(stage_from_name("Deliver"), None);
    }
}
