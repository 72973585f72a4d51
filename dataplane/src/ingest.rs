//! The one path that takes a message in: LMTP delivery and IMAP APPEND both come here
//! (STYLE.md: one implementation of the pipeline semantics).
//!
//! [`Ingest::submit`] takes the pipeline set in force (one snapshot for the whole message),
//! selects the pipelines for the account and stage, runs them, and carries out the
//! disposition: store (the blob first, then the metadata transaction, so an acknowledged
//! message survives `kill -9`), hold the original in quarantine, discard, or refuse. Once a
//! message is stored, the account's `post-store` pipelines run on it in the background
//! ([`Ingest::post_store`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use mcp_crds::pipeline::Stage;
use mcp_plugin_api::{EnhancedStatus, Envelope};
use tokio::sync::Semaphore;

use crate::pipeline::{
    Disposition, Input, MailboxScope, Outcome, PipelineMetrics, Pipelines, StepRef, engine,
};
use crate::store::{
    AccountRecord, BlobStore, FlagOp, HeldMessage, MailboxRecord, MetadataStore, NewMessage,
    Quarantine, StoreError, Uid, UidValidity,
};

/// At most this many post-store runs at a time; more wait their turn.
pub const POST_STORE_CONCURRENCY: usize = 16;

/// Why a message could not be taken in. The caller answers a temporary failure (LMTP
/// `451 4.3.0`, APPEND `NO [SERVERBUG]`/`[UNAVAILABLE]`); nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The metadata store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] crate::store::BlobError),
    /// Analysing the message (ENVELOPE/BODYSTRUCTURE) failed.
    #[error("analysing the message: {0}")]
    Analyze(String),
    /// The message is larger than RFC822.SIZE can say (4 GiB).
    #[error("message too large")]
    TooLarge,
    /// The destination folder does not exist (APPEND answers `[TRYCREATE]`).
    #[error("no folder {0:?}")]
    NoFolder(String),
    /// Holding the message in quarantine failed.
    #[error("quarantine: {0}")]
    Quarantine(String),
}

/// One message to take in.
#[derive(Clone, Debug)]
pub struct Submission {
    /// `deliver` (LMTP) or `append` (IMAP APPEND).
    pub stage: Stage,
    /// The account it is for.
    pub account: AccountRecord,
    /// The destination folder: `INBOX` for delivery, the APPEND target (which must exist).
    pub folder: String,
    /// Sender and recipient.
    pub envelope: Envelope,
    /// The message, CRLF line endings.
    pub message: Bytes,
    /// Flags and keywords requested (APPEND).
    pub flags: Vec<String>,
    /// INTERNALDATE.
    pub internal_date: DateTime<FixedOffset>,
}

/// What happened to a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Stored.
    Stored {
        /// The folder it went to.
        folder: String,
        /// That folder's UIDVALIDITY.
        uid_validity: UidValidity,
        /// Its UID there.
        uid: Uid,
        /// Whether a step filed it somewhere other than the requested folder.
        filed: bool,
    },
    /// Held in the tenant's quarantine (the original, as received).
    Quarantined {
        /// The quarantine entry.
        id: String,
        /// Why.
        reason: String,
    },
    /// Accepted and dropped by a step.
    Discarded,
    /// Refused permanently by a step.
    Rejected {
        /// Class 5.
        status: EnhancedStatus,
        /// Reason.
        text: String,
    },
    /// Refused for now by a step (or a failing one, `failClosed`).
    TempFailed {
        /// Class 4.
        status: EnhancedStatus,
        /// Reason.
        text: String,
    },
}

/// Where a held message was going, for [`Ingest::hold`].
struct Hold<'a> {
    stage: Stage,
    folder: &'a str,
    envelope: &'a Envelope,
    flags: Vec<String>,
    internal_date: DateTime<FixedOffset>,
}

/// The ingest path: store, blobs, quarantine, pipelines in force.
pub struct Ingest {
    store: MetadataStore,
    blobs: BlobStore,
    quarantine: Quarantine,
    pipelines: Arc<Pipelines>,
    metrics: Arc<PipelineMetrics>,
    post_store: Arc<Semaphore>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

fn scope(account: &AccountRecord) -> MailboxScope<'_> {
    MailboxScope {
        tenant: &account.tenant,
        labels: &account.labels,
        pipeline_ref: account.pipeline_ref.as_deref(),
    }
}

impl Ingest {
    /// The ingest path over `store` and `blobs`, running `pipelines`.
    pub fn new(
        store: MetadataStore,
        blobs: BlobStore,
        pipelines: Arc<Pipelines>,
        metrics: Arc<PipelineMetrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            quarantine: Quarantine::new(store.clone(), blobs.clone()),
            store,
            blobs,
            pipelines,
            metrics,
            post_store: Arc::new(Semaphore::new(POST_STORE_CONCURRENCY)),
        })
    }

    /// The pipelines in force.
    pub fn pipelines(&self) -> &Arc<Pipelines> {
        &self.pipelines
    }

    /// Runs the account's pipelines for `sub.stage` on the message and carries out the
    /// outcome. Only [`Ingested::Stored`], `Quarantined` and `Discarded` may be acknowledged
    /// to the sender (LMTP 250, APPEND OK).
    ///
    /// # Errors
    /// [`IngestError`] when storing or holding failed; nothing was stored then.
    pub async fn submit(self: &Arc<Self>, sub: Submission) -> Result<Ingested, IngestError> {
        let set = self.pipelines.current();
        let chosen = set.select(sub.stage, scope(&sub.account));
        let original = sub.message.clone();
        let requested_flags = sub.flags.clone();
        let outcome = if chosen.is_empty() {
            Outcome {
                disposition: Disposition::Store,
                message: sub.message,
                folder: sub.folder.clone(),
                flags: sub.flags,
                metadata: BTreeMap::new(),
                dry_run: Vec::new(),
            }
        } else {
            let input = Input {
                stage: sub.stage,
                tenant: sub.account.tenant.clone(),
                mailbox: sub.account.address.clone(),
                folder: sub.folder.clone(),
                envelope: sub.envelope.clone(),
                message: sub.message,
                flags: sub.flags,
            };
            engine::run(&chosen, input, &self.metrics).await
        };
        match outcome.disposition {
            Disposition::Store => {
                let filed = outcome.folder != sub.folder;
                let mailbox = self
                    .destination(&sub.account, &outcome.folder, filed)
                    .await?;
                let (uid_validity, uid) = self
                    .store_message(
                        &mailbox,
                        outcome.message,
                        outcome.flags,
                        outcome.metadata,
                        sub.internal_date,
                    )
                    .await?;
                let stored = Ingested::Stored {
                    folder: mailbox.name.clone(),
                    uid_validity,
                    uid,
                    filed,
                };
                if !set.select(Stage::PostStore, scope(&sub.account)).is_empty() {
                    self.spawn_post_store(sub.account, sub.envelope, mailbox, uid_validity, uid);
                }
                Ok(stored)
            }
            Disposition::Quarantine { reason, by } => {
                let what = Hold {
                    stage: sub.stage,
                    folder: &sub.folder,
                    envelope: &sub.envelope,
                    flags: requested_flags,
                    internal_date: sub.internal_date,
                };
                let id = self
                    .hold(&sub.account, what, original, &reason, &by)
                    .await?;
                Ok(Ingested::Quarantined { id, reason })
            }
            Disposition::Discard { by } => {
                tracing::info!(mailbox = %sub.account.address, pipeline = %by.pipeline, step = %by.step, "message discarded by the pipeline");
                Ok(Ingested::Discarded)
            }
            Disposition::Reject { status, text, .. } => Ok(Ingested::Rejected { status, text }),
            Disposition::TempFail { status, text, .. } => Ok(Ingested::TempFailed { status, text }),
        }
    }

    /// The folder to store into: `folder` itself; when a step filed the message into a
    /// folder that does not exist, that folder is created (with its missing superiors).
    async fn destination(
        &self,
        account: &AccountRecord,
        folder: &str,
        filed: bool,
    ) -> Result<MailboxRecord, IngestError> {
        if let Some(m) = self.store.mailbox(account.id, folder).await? {
            return Ok(m);
        }
        if !filed {
            return Err(IngestError::NoFolder(folder.to_owned()));
        }
        let mut path = String::new();
        for level in folder.split(crate::store::DELIMITER) {
            if !path.is_empty() {
                path.push(crate::store::DELIMITER);
            }
            path.push_str(level);
            match self.store.create_mailbox(account.id, &path, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.store
            .mailbox(account.id, folder)
            .await?
            .ok_or_else(|| IngestError::NoFolder(folder.to_owned()))
    }

    /// Writes the blob (fsynced), analyses the message, then commits the metadata.
    async fn store_message(
        &self,
        mailbox: &MailboxRecord,
        message: Bytes,
        flags: Vec<String>,
        metadata: BTreeMap<String, String>,
        internal_date: DateTime<FixedOffset>,
    ) -> Result<(UidValidity, Uid), IngestError> {
        let size = u32::try_from(message.len()).map_err(|_| IngestError::TooLarge)?;
        let blob = self.blobs.put(&message).await?;
        let cache = tokio::task::spawn_blocking(move || crate::mime::analyze(&message))
            .await
            .map_err(|e| IngestError::Analyze(e.to_string()))?;
        let msg = NewMessage {
            flags,
            internal_date,
            size,
            blob,
            cache,
            metadata,
        };
        let (validity, uid, _) = self.store.append(mailbox.id, &msg).await?;
        Ok((validity, uid))
    }

    /// Holds `original` in the tenant's quarantine.
    async fn hold(
        &self,
        account: &AccountRecord,
        what: Hold<'_>,
        original: Bytes,
        reason: &str,
        by: &StepRef,
    ) -> Result<String, IngestError> {
        let Hold {
            stage,
            folder,
            envelope,
            flags,
            internal_date,
        } = what;
        let held = HeldMessage {
            tenant: account.tenant.clone(),
            account: account.id,
            recipient: account.address.clone(),
            mail_from: envelope.mail_from.clone(),
            stage,
            folder: folder.to_owned(),
            reason: reason.to_owned(),
            pipeline: by.pipeline.clone(),
            step: by.step.clone(),
            revision: by.revision.clone(),
            flags,
            internal_date,
            message: original,
        };
        let id = self
            .quarantine
            .hold(held)
            .await
            .map_err(|e| IngestError::Quarantine(e.to_string()))?;
        Ok(id.as_str().to_owned())
    }

    fn spawn_post_store(
        self: &Arc<Self>,
        account: AccountRecord,
        envelope: Envelope,
        mailbox: MailboxRecord,
        uid_validity: UidValidity,
        uid: Uid,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(_permit) = Arc::clone(&this.post_store).acquire_owned().await else {
                return;
            };
            if let Err(e) = this
                .post_store(&account, envelope, &mailbox, uid_validity, uid)
                .await
            {
                tracing::error!(mailbox = %account.address, folder = %mailbox.name, uid = uid.0, error = %e, "post-store pipeline failed; the stored message is unchanged");
            }
        });
    }

    /// Runs the `post-store` pipelines on a stored message and applies the result:
    /// flags and keywords are added; `FileInto` moves it; changed octets replace it (the new
    /// version is stored, then the old one expunged); `Quarantine` holds it and expunges it;
    /// `Discard` expunges it. `Reject` and `TempFail` cannot undo a delivery: they are
    /// logged and counted only.
    ///
    /// # Errors
    /// [`IngestError`] when the stored message cannot be read or changed.
    pub async fn post_store(
        &self,
        account: &AccountRecord,
        envelope: Envelope,
        mailbox: &MailboxRecord,
        uid_validity: UidValidity,
        uid: Uid,
    ) -> Result<(), IngestError> {
        let set = self.pipelines.current();
        let chosen = set.select(Stage::PostStore, scope(account));
        if chosen.is_empty() {
            return Ok(());
        }
        let Some(current) = self.store.mailbox(account.id, &mailbox.name).await? else {
            return Ok(());
        };
        if current.uid_validity != uid_validity {
            return Ok(());
        }
        let Some(record) = self
            .store
            .messages(mailbox.id)
            .await?
            .into_iter()
            .find(|m| m.uid == uid)
        else {
            return Ok(()); // expunged meanwhile
        };
        let message = self.blobs.get(&record.blob).await?;
        let input = Input {
            stage: Stage::PostStore,
            tenant: account.tenant.clone(),
            mailbox: account.address.clone(),
            folder: mailbox.name.clone(),
            envelope: envelope.clone(),
            message: message.clone(),
            flags: record.flags.clone(),
        };
        let out = engine::run(&chosen, input, &self.metrics).await;
        let remove = |this: &Self| {
            let store = this.store.clone();
            let id = mailbox.id;
            async move {
                store
                    .store_flags(id, &[uid], FlagOp::Add, &["\\Deleted".to_owned()], None)
                    .await?;
                store.expunge(id, Some(&[uid])).await?;
                Ok::<(), IngestError>(())
            }
        };
        match out.disposition {
            Disposition::Store => {
                if out.message != message {
                    let dest = self.destination(account, &out.folder, true).await?;
                    self.store_message(
                        &dest,
                        out.message,
                        out.flags,
                        out.metadata,
                        record.internal_date,
                    )
                    .await?;
                    remove(self).await?;
                } else {
                    let added: Vec<String> = out
                        .flags
                        .iter()
                        .filter(|f| !record.flags.iter().any(|r| r.eq_ignore_ascii_case(f)))
                        .cloned()
                        .collect();
                    if !added.is_empty() {
                        self.store
                            .store_flags(mailbox.id, &[uid], FlagOp::Add, &added, None)
                            .await?;
                    }
                    if out.folder != mailbox.name {
                        let dest = self.destination(account, &out.folder, true).await?;
                        self.store
                            .move_messages(mailbox.id, dest.id, &[uid])
                            .await?;
                    }
                }
            }
            Disposition::Quarantine { reason, by } => {
                let what = Hold {
                    stage: Stage::PostStore,
                    folder: &mailbox.name,
                    envelope: &envelope,
                    flags: record.flags.clone(),
                    internal_date: record.internal_date,
                };
                self.hold(account, what, message, &reason, &by).await?;
                remove(self).await?;
            }
            Disposition::Discard { .. } => remove(self).await?,
            Disposition::Reject { by, .. } | Disposition::TempFail { by, .. } => {
                tracing::warn!(mailbox = %account.address, pipeline = %by.pipeline, step = %by.step, "a post-store verdict cannot refuse a stored message; ignored");
            }
        }
        Ok(())
    }
}
