//! Where accepted mail goes: the [`Deliverer`] interface between the LMTP session and the
//! rest of the dataplane, and [`StoreDeliverer`], which takes each copy in through the pipeline.
//!
//! The session only ever calls [`Deliverer::lookup`] (at RCPT time) and
//! [`Deliverer::deliver`] (after the final dot or `BDAT LAST`); [`StoreDeliverer`] runs each
//! recipient's copy through the pipeline ingest path (DESIGN.md §4, `deliver` stage).

use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;

use std::sync::Arc;

use mcp_crds::pipeline::Stage;
use mcp_plugin_api::Envelope;

use super::reply::Reply;
use crate::ingest::{Ingest, IngestError, Ingested, Submission};
use crate::store::{AccountRecord, MetadataStore, StoreError};

/// A recipient accepted at RCPT time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as given in `RCPT TO:<...>` (for replies and the `Received: ... for`
    /// clause).
    pub rcpt: String,
    /// The account the mail is for, as read at RCPT time (its address may differ from
    /// `rcpt`: case, aliases); delivery uses it as is, without reading it again.
    pub account: AccountRecord,
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

/// Delivers through the pipeline ingest path ([`crate::ingest`], `deliver` stage), once per
/// recipient: the recipient's pipelines decide, and their outcome becomes that recipient's
/// reply. Stored and quarantined copies are committed before their `250`; a `Reject` is a
/// `550`/`552` with the step's enhanced status code, a `TempFail` (or a failing step under
/// `failClosed`) a `451`/`452`, a copy over the recipient's quota `452 4.2.2`
/// ([`Reply::mailbox_full`]). Recipients are matched by address or alias.
#[derive(Clone, Debug)]
pub struct StoreDeliverer {
    store: MetadataStore,
    ingest: Arc<Ingest>,
}

impl StoreDeliverer {
    /// A deliverer that looks recipients up in `store` and takes messages in through
    /// `ingest`.
    pub fn new(store: MetadataStore, ingest: Arc<Ingest>) -> Self {
        Self { store, ingest }
    }

    /// The account an address delivers to: its own address or one of its aliases.
    async fn find_account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.store.account_by_recipient(address).await
    }

    async fn check(&self, address: &str) -> Result<Recipient, Reply> {
        match self.find_account(address).await {
            Ok(Some(account)) if account.active => Ok(Recipient {
                rcpt: address.to_owned(),
                account,
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

    /// Takes one copy in for `recipient`; the reply follows the pipeline's outcome.
    async fn deliver_one(&self, mail_from: &str, recipient: &Recipient, message: Bytes) -> Reply {
        let rcpt = &recipient.rcpt;
        let submission = Submission {
            stage: Stage::Deliver,
            account: recipient.account.clone(),
            folder: "INBOX".into(),
            envelope: Envelope {
                mail_from: mail_from.to_owned(),
                rcpt_to: rcpt.to_lowercase(),
            },
            message,
            flags: Vec::new(),
            internal_date: Utc::now().fixed_offset(),
        };
        match self.ingest.submit(submission).await {
            Ok(Ingested::Stored {
                folder,
                uid_validity,
                uid,
                ..
            }) => Reply::code(
                250,
                2,
                0,
                0,
                &format!(
                    "<{rcpt}> delivered to {folder} (UIDVALIDITY {} UID {})",
                    uid_validity.0, uid.0
                ),
            ),
            Ok(Ingested::Quarantined { .. }) => Reply::code(
                250,
                2,
                0,
                0,
                &format!("<{rcpt}> accepted, held in quarantine"),
            ),
            Ok(Ingested::Discarded) => Reply::code(250, 2, 0, 0, &format!("<{rcpt}> accepted")),
            Ok(Ingested::Rejected { status, text }) => {
                let code = match (status.subject, status.detail) {
                    (3, 4) | (2, 2) => 552,
                    _ => 550,
                };
                Reply::new(code, status, format!("<{rcpt}> {text}"))
            }
            Ok(Ingested::TempFailed { status, text }) => {
                let code = match (status.subject, status.detail) {
                    (2, 2) | (3, 1) => 452,
                    _ => 451,
                };
                Reply::new(code, status, format!("<{rcpt}> {text}"))
            }
            Err(IngestError::Store(StoreError::OverQuota(q))) => {
                tracing::info!(rcpt = %rcpt, over = %q, "LMTP delivery refused: over quota");
                Reply::mailbox_full(rcpt, &format!("would exceed {q}"))
            }
            Err(e) => {
                tracing::error!(rcpt = %rcpt, error = %e, "LMTP delivery failed");
                Reply::local_error(&format!("<{rcpt}> delivery failed, try again later"))
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
        mail_from: &'a str,
        recipients: &'a [Recipient],
        message: Bytes,
    ) -> BoxFuture<'a, Vec<Reply>> {
        Box::pin(async move {
            let mut replies = Vec::with_capacity(recipients.len());
            for recipient in recipients {
                replies.push(
                    self.deliver_one(mail_from, recipient, message.clone())
                        .await,
                );
            }
            replies
        })
    }
}
