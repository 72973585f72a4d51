//! Where accepted mail goes: the [`Deliverer`] interface between the LMTP session and the
//! rest of the dataplane, and [`StoreDeliverer`], which stores into the recipient's INBOX.
//!
//! The session only ever calls [`Deliverer::lookup`] (at RCPT time) and
//! [`Deliverer::deliver`] (after the final dot or `BDAT LAST`); the pipeline ingest path
//! (DESIGN.md §4, `deliver` stage) plugs in by replacing the inside of
//! [`StoreDeliverer::deliver`] or by providing another [`Deliverer`].

use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;

use super::reply::Reply;
use crate::store::{AccountId, AccountRecord, BlobId, BlobStore, MessageCache, MetadataStore};
use crate::store::{NewMessage, StoreError};

/// A recipient accepted at RCPT time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as given in `RCPT TO:<...>` (for replies and the `Received: ... for`
    /// clause).
    pub rcpt: String,
    /// The account the mail is for.
    pub account: AccountId,
    /// The account's canonical address (lower-case), which may differ from `rcpt` (case,
    /// and later aliases).
    pub address: String,
    /// The Tenant owning the account (for per-tenant pipelines and quarantine).
    pub tenant: String,
}

/// Checks recipients and delivers messages. Implementations must never return a 2xx reply
/// for a recipient whose copy is not durably committed.
pub trait Deliverer: Send + Sync + 'static {
    /// Checks a `RCPT TO` address: `Ok(recipient)`, or the reply to send for it (e.g.
    /// `550 5.1.1` unknown user, `550 5.2.1` disabled, `451 4.3.0` lookup failure).
    fn lookup<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<Recipient, Reply>>;

    /// Delivers `message` (trace headers already prepended, CRLF line endings) from
    /// `mail_from` (empty for the null reverse-path `<>`) to each recipient. Returns exactly
    /// one reply per recipient, in the order of `recipients` (RFC 2033 §4.2); the session
    /// replaces missing replies by `451 4.3.0`.
    fn deliver<'a>(
        &'a self,
        mail_from: &'a str,
        recipients: &'a [Recipient],
        message: Bytes,
    ) -> BoxFuture<'a, Vec<Reply>>;
}

/// Delivers into each recipient account's INBOX with the same steps as IMAP APPEND: the blob
/// is written (and fsynced) first, ENVELOPE/BODYSTRUCTURE are derived on a blocking thread,
/// then one metadata transaction per recipient; [`MetadataStore::append`] publishes the
/// change on the store's [`crate::store::ChangeBus`], which wakes IDLE sessions.
#[derive(Clone, Debug)]
pub struct StoreDeliverer {
    store: MetadataStore,
    blobs: BlobStore,
}

impl StoreDeliverer {
    /// A deliverer over `store` and `blobs`.
    pub fn new(store: MetadataStore, blobs: BlobStore) -> Self {
        Self { store, blobs }
    }

    /// The account an address delivers to.
    ///
    /// Alias hook: addresses are matched against account addresses only; once the store
    /// knows aliases, resolve them here (and keep returning the target account).
    async fn find_account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.store.account_by_address(address).await
    }

    async fn check(&self, address: &str) -> Result<Recipient, Reply> {
        match self.find_account(address).await {
            Ok(Some(account)) if account.active => Ok(Recipient {
                rcpt: address.to_owned(),
                account: account.id,
                address: account.address,
                tenant: account.tenant,
            }),
            Ok(Some(_)) => Err(Reply::mailbox_disabled(address)),
            Ok(None) => Err(Reply::no_such_user(address)),
            Err(e) => {
                tracing::error!(error = %e, "LMTP recipient lookup failed");
                Err(Reply::local_error(
                    "Temporary lookup failure, try again later",
                ))
            }
        }
    }

    /// Writes the body once (content-addressed: one blob for every recipient) and derives
    /// its cached ENVELOPE/BODYSTRUCTURE.
    async fn prepare(&self, message: &Bytes) -> Result<(BlobId, MessageCache, u32), String> {
        let size = u32::try_from(message.len()).map_err(|_| "message too large".to_owned())?;
        let blob = self
            .blobs
            .put(message)
            .await
            .map_err(|e| format!("blob store: {e}"))?;
        let data = message.clone();
        let cache = tokio::task::spawn_blocking(move || crate::mime::analyze(&data))
            .await
            .map_err(|e| format!("MIME analysis: {e}"))?;
        Ok((blob, cache, size))
    }

    /// Stores one copy into `recipient`'s INBOX; `250` only after the commit.
    async fn store_one(&self, recipient: &Recipient, msg: &NewMessage) -> Reply {
        let result = async {
            let inbox = self
                .store
                .mailbox(recipient.account, "INBOX")
                .await?
                .ok_or(StoreError::NoSuchMailbox)?;
            self.store.append(inbox.id, msg).await
        }
        .await;
        match result {
            Ok((validity, uid, _)) => Reply::code(
                250,
                2,
                0,
                0,
                &format!(
                    "<{}> delivered (UIDVALIDITY {} UID {})",
                    recipient.rcpt, validity.0, uid.0
                ),
            ),
            Err(e) => {
                tracing::error!(rcpt = %recipient.rcpt, error = %e, "LMTP delivery failed");
                Reply::local_error(&format!(
                    "<{}> delivery failed, try again later",
                    recipient.rcpt
                ))
            }
        }
    }
}

impl Deliverer for StoreDeliverer {
    fn lookup<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<Recipient, Reply>> {
        Box::pin(self.check(address))
    }

    fn deliver<'a>(
        &'a self,
        _mail_from: &'a str,
        recipients: &'a [Recipient],
        message: Bytes,
    ) -> BoxFuture<'a, Vec<Reply>> {
        Box::pin(async move {
            let (blob, cache, size) = match self.prepare(&message).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "LMTP delivery failed before storing");
                    let reply = Reply::local_error("Cannot store the message, try again later");
                    return vec![reply; recipients.len()];
                }
            };
            let msg = NewMessage {
                flags: Vec::new(),
                internal_date: Utc::now().fixed_offset(),
                size,
                blob,
                cache,
            };
            let mut replies = Vec::with_capacity(recipients.len());
            for recipient in recipients {
                replies.push(self.store_one(recipient, &msg).await);
            }
            replies
        })
    }
}
