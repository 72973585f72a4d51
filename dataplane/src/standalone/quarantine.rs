//! `mcp quarantine`: the tenant quarantine of a standalone data directory from the command
//! line, until the REST facade serves it (docs/pipeline.md, "Quarantine").
//!
//! It opens the same store the running server uses (SQLite allows a second process; the
//! server's data-directory lock is not taken) and goes through the same [`Quarantine`] API
//! as the admin endpoints, so a release is one transaction and a second release of the same
//! id is `NotFound`.

use std::io::Write;

use crate::admin::quarantine::entry;
use crate::store::{
    AccountId, BlobLocation, BlobStore, MetadataStore, Quarantine, QuarantineError, QuarantineId,
    QuarantineQuery, StoreError,
};

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// One JSON object per line for each held message of `tenant` (oldest first),
    /// optionally only those held for the account `mailbox`.
    List {
        /// The tenant.
        tenant: String,
        /// Only this account's (its primary address).
        mailbox: Option<String>,
        /// Most entries (1 to 1000).
        limit: u32,
    },
    /// The entry as one JSON object.
    Show(String),
    /// The original message, octets as received.
    Message(String),
    /// Stores the message in its folder (or INBOX) and removes it from the quarantine.
    Release(String),
    /// Removes the message from the quarantine.
    Delete(String),
}

/// Why the command failed; the message names the id, account or store.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The id is not one the quarantine hands out.
    #[error("{0:?} is not a quarantine id (44 lower-case hex digits)")]
    BadId(String),
    /// `--limit` out of range.
    #[error("--limit must be 1 to 1000")]
    BadLimit,
    /// No account has that address.
    #[error("no account {0:?}")]
    NoAccount(String),
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blob directory could not be opened.
    #[error("blob store: {0}")]
    Blob(#[from] crate::store::BlobError),
    /// The quarantine refused.
    #[error("{0}")]
    Quarantine(#[from] QuarantineError),
    /// Writing the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `action` on the store at `store_url` with bodies at `blobs`, writing to `out`.
///
/// # Errors
/// [`CliError`].
pub async fn run(
    store_url: &str,
    blobs: &BlobLocation,
    action: Action,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let store = MetadataStore::connect(store_url).await?;
    let blobs = BlobStore::open_at(blobs).await?;
    let q = Quarantine::new(store.clone(), blobs);
    let id = |s: &str| -> Result<QuarantineId, CliError> {
        s.parse().map_err(|_| CliError::BadId(s.to_owned()))
    };
    match action {
        Action::List {
            tenant,
            mailbox,
            limit,
        } => {
            if !(1..=1000).contains(&limit) {
                return Err(CliError::BadLimit);
            }
            let account: Option<AccountId> = match mailbox {
                Some(m) => Some(
                    store
                        .account_by_address(&m)
                        .await?
                        .ok_or(CliError::NoAccount(m))?
                        .id,
                ),
                None => None,
            };
            let query = QuarantineQuery {
                tenant,
                account,
                after: None,
                limit,
            };
            for m in q.list(&query).await? {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&entry(&m)).unwrap_or_default()
                )?;
            }
        }
        Action::Show(s) => {
            let m = q.get(&id(&s)?).await?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&entry(&m)).unwrap_or_default()
            )?;
        }
        Action::Message(s) => {
            let (_, body) = q.message(&id(&s)?).await?;
            out.write_all(&body)?;
        }
        Action::Release(s) => {
            let r = q.release(&id(&s)?).await?;
            writeln!(
                out,
                "released into {} (UIDVALIDITY {} UID {})",
                r.folder, r.uid_validity.0, r.uid.0
            )?;
        }
        Action::Delete(s) => {
            q.delete(&id(&s)?).await?;
            writeln!(out, "deleted")?;
        }
    }
    out.flush()?;
    store.close().await;
    Ok(())
}
