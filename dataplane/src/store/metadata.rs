//! The metadata store on sqlx: SQLite (default) or PostgreSQL, chosen by URL.
//!
//! CONTRACT STUB: the signatures below are the API the IMAP layer codes against; the bodies
//! are being implemented (store work item). Do not change signatures without coordinating.

use super::ChangeBus;
use super::types::*;

/// Mail metadata: accounts, mailboxes, messages, flags, MODSEQs and tombstones.
///
/// Cheap to clone (a pool handle). Every method is one transaction.
#[derive(Clone)]
pub struct MetadataStore {
    bus: ChangeBus,
}

#[allow(unused_variables, clippy::unused_async)]
impl MetadataStore {
    /// Opens (creating if needed) and migrates the store at `url`:
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST:PORT/DB`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        todo!()
    }
    /// The change bus on which committed changes are announced.
    pub fn bus(&self) -> &ChangeBus {
        &self.bus
    }
    /// Creates or updates an account; a new account gets [`DEFAULT_FOLDERS`].
    pub async fn upsert_account(&self, a: &AccountUpsert) -> Result<AccountRecord, StoreError> {
        todo!()
    }
    /// Looks an account up by address (case-insensitive).
    pub async fn account_by_address(
        &self,
        address: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        todo!()
    }
    /// All mailboxes of an account, ordered by name.
    pub async fn list_mailboxes(
        &self,
        account: AccountId,
    ) -> Result<Vec<MailboxRecord>, StoreError> {
        todo!()
    }
    /// One mailbox by exact name (`INBOX` upper-case).
    pub async fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        todo!()
    }
    /// Creates a mailbox. Errors: `AlreadyExists`.
    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<MailboxRecord, StoreError> {
        todo!()
    }
    /// Deletes a mailbox and its messages. Errors: `NoSuchMailbox`, `HasChildren`.
    pub async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<(), StoreError> {
        todo!()
    }
    /// Renames a mailbox and all its children. Renaming `INBOX` moves its messages into a
    /// new mailbox `to` and leaves INBOX empty (RFC 9051 §6.3.6). Errors: `NoSuchMailbox`,
    /// `AlreadyExists`.
    pub async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        todo!()
    }
    /// Adds or removes a name from the subscription list (the mailbox need not exist).
    pub async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        todo!()
    }
    /// Subscribed names, ordered.
    pub async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>, StoreError> {
        todo!()
    }
    /// Inserts a message, allocating its UID and MODSEQ.
    pub async fn append(
        &self,
        mailbox: MailboxId,
        msg: &NewMessage,
    ) -> Result<(UidValidity, Uid, ModSeq), StoreError> {
        todo!()
    }
    /// All messages of a mailbox, ascending by UID.
    pub async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageRecord>, StoreError> {
        todo!()
    }
    /// What changed after `since`.
    pub async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Changes, StoreError> {
        todo!()
    }
    /// Changes flags of `uids` (missing UIDs are ignored).
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreOutcome, StoreError> {
        todo!()
    }
    /// Removes messages flagged `\Deleted` (only among `only`, if given); returns their UIDs.
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        only: Option<&[Uid]>,
    ) -> Result<Vec<Uid>, StoreError> {
        todo!()
    }
    /// Copies messages to `dest` with new UIDs, keeping flags and INTERNALDATE.
    pub async fn copy(
        &self,
        src: MailboxId,
        dest: MailboxId,
        uids: &[Uid],
    ) -> Result<CopyOutcome, StoreError> {
        todo!()
    }
    /// Moves messages atomically (copy + expunge in one transaction, RFC 6851).
    pub async fn move_messages(
        &self,
        src: MailboxId,
        dest: MailboxId,
        uids: &[Uid],
    ) -> Result<CopyOutcome, StoreError> {
        todo!()
    }
    /// Cached ENVELOPE/BODY/BODYSTRUCTURE of the given messages.
    pub async fn cache(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, MessageCache)>, StoreError> {
        todo!()
    }
    /// STATUS counters.
    pub async fn counts(&self, mailbox: MailboxId) -> Result<MailboxCounts, StoreError> {
        todo!()
    }
}
