//! Plain values exchanged with the [`MetadataStore`](super::MetadataStore).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use super::BlobId;

/// Database id of an account (one Mailbox resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// Database id of one IMAP mailbox (folder) of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub i64);

/// A message UID (RFC 9051 §2.3.1.1): non-zero, strictly ascending within a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(pub u32);

/// UIDVALIDITY of a mailbox (RFC 9051 §2.3.1.1): non-zero; changes only if UIDs are reissued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UidValidity(pub u32);

/// A modification sequence number (RFC 7162 §3): per mailbox, grows with every change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ModSeq(pub u64);

/// Special-use attribute of a mailbox (RFC 6154).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// The attribute as written on the wire, e.g. `\Sent`.
    pub fn as_imap(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses `\Sent` etc., case-insensitively; `None` for anything else.
    pub fn from_imap(s: &str) -> Option<Self> {
        let all = [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ];
        all.into_iter()
            .find(|u| u.as_imap().eq_ignore_ascii_case(s))
    }
}

/// The folders every new account gets, with their special use (RFC 6154).
pub const DEFAULT_FOLDERS: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The hierarchy delimiter of mailbox names.
pub const DELIMITER: char = '/';

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Database id.
    pub id: AccountId,
    /// Owning tenant's name.
    pub tenant: String,
    /// Login name and primary address, lower-case.
    pub address: String,
    /// argon2 PHC string (`$argon2id$...`), or empty when login is impossible.
    pub password_hash: String,
    /// False when the Mailbox resource is `Suspended`.
    pub active: bool,
    /// Digest of the resource (spec and password) last applied; lets a re-apply skip work.
    /// Empty for an account retained after its Mailbox was deleted.
    pub spec_digest: String,
    /// Storage limit from the Mailbox's `spec.quota.storage`, octets; `None` means no limit.
    /// Enforced by the store ([`StoreError::OverQuota`], docs/quota.md).
    pub quota_storage: Option<u64>,
    /// Message limit from the Mailbox's `spec.quota.messages`; `None` means no limit.
    /// Enforced like `quota_storage`.
    pub quota_messages: Option<u64>,
    /// The Mailbox's `metadata.labels`, matched by the `mailboxSelector` of selector-scoped
    /// Pipelines. Empty for an account stored before labels were kept.
    pub labels: BTreeMap<String, String>,
    /// The Mailbox's `spec.pipelineRef.name`: the Pipeline (in the tenant's namespace) that
    /// replaces the tenant's pipelines for this account; `None` when they apply.
    pub pipeline_ref: Option<String>,
}

/// What [`MetadataStore::upsert_account`](super::MetadataStore::upsert_account) writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUpsert {
    /// Owning tenant's name.
    pub tenant: String,
    /// Login name and primary address; stored lower-case.
    pub address: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Whether login is allowed.
    pub active: bool,
    /// Digest of the applied resource.
    pub spec_digest: String,
    /// Storage limit, octets; `None` means no limit.
    pub quota_storage: Option<u64>,
    /// Message limit; `None` means no limit.
    pub quota_messages: Option<u64>,
    /// The Mailbox's `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The Mailbox's `spec.pipelineRef.name`.
    pub pipeline_ref: Option<String>,
    /// The Mailbox's `spec.aliases`: further addresses LMTP delivers to this account; stored
    /// lower-case, replacing the previous set. None may be another account's address or
    /// alias ([`StoreError::AddressTaken`]); the account's own address is ignored.
    pub aliases: Vec<String>,
}

/// Usage and limits of an account and of its tenant, read in one snapshot
/// ([`MetadataStore::quota`](super::MetadataStore::quota)); what IMAP GETQUOTA reports
/// (RFC 9208, docs/quota.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaReport {
    /// Messages stored, all folders (the MESSAGE resource).
    pub messages: u64,
    /// Octets stored, the sum of RFC822.SIZE over all folders (the STORAGE resource, which
    /// IMAP reports in units of 1024 octets).
    pub storage: u64,
    /// The account's message limit; `None` means no limit.
    pub messages_limit: Option<u64>,
    /// The account's storage limit, octets; `None` means no limit.
    pub storage_limit: Option<u64>,
    /// The tenant's storage usage and limit; `None` when the tenant has no storage limit.
    pub tenant: Option<TenantStorage>,
}

/// Storage of a whole tenant against its limit (Tenant `spec.quota.storage`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantStorage {
    /// Octets stored by all accounts of the tenant.
    pub used: u64,
    /// The limit, octets.
    pub limit: u64,
}

/// The limit a refused write would have exceeded ([`StoreError::OverQuota`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The account's message limit (Mailbox `spec.quota.messages`).
    Messages {
        /// The limit, messages.
        limit: u64,
    },
    /// The account's storage limit (Mailbox `spec.quota.storage`).
    Storage {
        /// The limit, octets.
        limit: u64,
    },
    /// The tenant's storage limit (Tenant `spec.quota.storage`), shared by all its accounts.
    TenantStorage {
        /// The limit, octets.
        limit: u64,
    },
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Messages { limit } => write!(f, "the mailbox's limit of {limit} messages"),
            Self::Storage { limit } => write!(f, "the mailbox's storage limit of {limit} octets"),
            Self::TenantStorage { limit } => {
                write!(f, "the tenant's storage limit of {limit} octets")
            }
        }
    }
}

/// Totals of one account over all its folders, read in one snapshot
/// ([`MetadataStore::account_usage`](super::MetadataStore::account_usage)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUsage {
    /// Folder names in name order (bytewise), `INBOX` and the default folders included.
    pub folders: Vec<String>,
    /// Messages stored (expunged ones not counted).
    pub messages: u64,
    /// Sum of RFC822.SIZE of those messages, octets.
    pub bytes: u64,
}

/// A mailbox (folder) as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRecord {
    /// Database id.
    pub id: MailboxId,
    /// Owning account.
    pub account: AccountId,
    /// Full name in UTF-8 with [`DELIMITER`] between levels; `INBOX` is always upper-case.
    pub name: String,
    /// Current UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// Highest MODSEQ of any change in this mailbox (at least 1).
    pub highest_modseq: ModSeq,
    /// Special-use attribute, if any.
    pub special_use: Option<SpecialUse>,
}

/// A message's metadata as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// The message UID.
    pub uid: Uid,
    /// MODSEQ of the message's last change.
    pub modseq: ModSeq,
    /// System flags (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, written with that
    /// capitalisation) and keywords (as first given), no duplicates (ASCII case-insensitive).
    pub flags: Vec<String>,
    /// INTERNALDATE, with the zone it was given in.
    pub internal_date: DateTime<FixedOffset>,
    /// RFC822.SIZE in octets.
    pub size: u32,
    /// Content address of the body.
    pub blob: BlobId,
}

/// Serialized IMAP forms computed once at append time (see [`crate::mime`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageCache {
    /// `ENVELOPE` value, e.g. `("date" "subject" ...)`.
    pub envelope: Vec<u8>,
    /// `BODY` value (non-extensible BODYSTRUCTURE).
    pub body: Vec<u8>,
    /// `BODYSTRUCTURE` value with extension data.
    pub bodystructure: Vec<u8>,
}

/// A message to insert.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Initial flags (same rules as [`MessageRecord::flags`]).
    pub flags: Vec<String>,
    /// INTERNALDATE.
    pub internal_date: DateTime<FixedOffset>,
    /// RFC822.SIZE in octets.
    pub size: u32,
    /// Content address of the already-stored body.
    pub blob: BlobId,
    /// Cached IMAP forms.
    pub cache: MessageCache,
    /// Results of the pipeline's `SetMetadata` mutations, kept with the message (not shown
    /// over IMAP); read back with
    /// [`MetadataStore::message_metadata`](super::MetadataStore::message_metadata). Empty
    /// for none.
    pub metadata: BTreeMap<String, String>,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// Result of a flag change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Messages whose flags changed (new flags and new MODSEQ), ascending by UID. Messages
    /// whose flags were already as requested are not listed and keep their MODSEQ.
    pub updated: Vec<MessageRecord>,
    /// UIDs not changed because their MODSEQ exceeded UNCHANGEDSINCE (RFC 7162 §3.1.3).
    pub modified: Vec<Uid>,
}

/// Result of COPY or MOVE (RFC 4315 COPYUID data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyOutcome {
    /// UIDVALIDITY of the destination.
    pub uid_validity: UidValidity,
    /// (source UID, destination UID), ascending by source UID.
    pub pairs: Vec<(Uid, Uid)>,
}

/// Everything that changed in a mailbox after some MODSEQ.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The mailbox's HIGHESTMODSEQ at the time of the read.
    pub highest_modseq: ModSeq,
    /// Messages added or changed after the given MODSEQ, ascending by UID.
    pub changed: Vec<MessageRecord>,
    /// UIDs expunged after the given MODSEQ, ascending.
    pub expunged: Vec<Uid>,
}

/// Counters for STATUS (RFC 9051 §6.3.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    /// MESSAGES.
    pub messages: u32,
    /// UNSEEN: messages without `\Seen`.
    pub unseen: u32,
    /// DELETED: messages with `\Deleted`.
    pub deleted: u32,
    /// SIZE: sum of RFC822.SIZE, octets.
    pub size: u64,
    /// DELETED-STORAGE (RFC 9208 §4.2): sum of RFC822.SIZE of the messages with `\Deleted`,
    /// octets: what an EXPUNGE would free.
    pub deleted_storage: u64,
}

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named mailbox does not exist.
    #[error("mailbox does not exist")]
    NoSuchMailbox,
    /// A mailbox with that name already exists.
    #[error("mailbox already exists")]
    AlreadyExists,
    /// The mailbox has child mailboxes and cannot be deleted.
    #[error("mailbox has children")]
    HasChildren,
    /// The account does not exist.
    #[error("account does not exist")]
    NoSuchAccount,
    /// An address or alias of an account is already the address or an alias of another
    /// account in this store (aliases are unique per store, like addresses).
    #[error("{address:?} (wanted by account {account:?}) is already {kind} of account {owner:?}")]
    AddressTaken {
        /// The contested address, lower-case.
        address: String,
        /// The account being written (its primary address).
        account: String,
        /// The account that holds `address` (its primary address).
        owner: String,
        /// `"the address"` or `"an alias"`.
        kind: &'static str,
    },
    /// The write would take the account or its tenant over a quota limit (RFC 9208 §4.3):
    /// nothing was written. IMAP answers `NO [OVERQUOTA]`, LMTP `452 4.2.2`.
    #[error("over quota: the write would exceed {0}")]
    OverQuota(QuotaExceeded),
    /// No quarantined message has this id (never held, or already released or deleted).
    #[error("no quarantined message {0}")]
    NoSuchQuarantined(String),
    /// The database failed; the operation was rolled back.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrating the schema failed at start-up.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (corruption or a bug).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// The system flags (RFC 9051 §2.3.2) with their canonical capitalisation. `\Recent` is not
/// among them: it is session state and never stored.
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// Normalises a flag list as the store keeps it: system flags get their canonical
/// capitalisation ([`SYSTEM_FLAGS`]), keywords stay as first given, duplicates (ASCII
/// case-insensitive) and `\Recent` are dropped, empty strings are ignored; order of first
/// appearance is kept. Flags are IMAP atoms and must not contain whitespace.
pub fn normalize_flags<S: AsRef<str>>(flags: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for flag in flags {
        let flag = flag.as_ref();
        if flag.is_empty() || flag.eq_ignore_ascii_case("\\Recent") {
            continue;
        }
        let flag = SYSTEM_FLAGS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(flag))
            .map_or(flag, |s| s);
        if !out.iter().any(|o| o.eq_ignore_ascii_case(flag)) {
            out.push(flag.to_string());
        }
    }
    out
}
