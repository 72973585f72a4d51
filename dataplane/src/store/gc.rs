//! Orphan collection: bodies that no message and no quarantined message refers to
//! (DESIGN.md §3, docs/storage.md).
//!
//! A body is written before the metadata transaction that refers to it, so a process killed
//! in between (or a refused write: over quota, pipeline rejection after the body was
//! stored) leaves a body nothing refers to. [`collect`] deletes those older than a grace
//! period: the referenced set is read first, then the store is listed, and a body younger
//! than `min_age` is kept because its transaction may still be about to commit. [`run`]
//! repeats it in the background of a serving dataplane; `mcp gc` runs it once.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::{BlobError, BlobStore, MetadataStore, StoreError};

/// How often and how carefully a serving dataplane collects orphans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Mean time between two collections (each waits a random 50–150 % of it, so replicas
    /// do not list the store together); zero disables collection.
    pub every: Duration,
    /// The grace period: a body younger than this is kept.
    pub min_age: Duration,
}

impl Default for Schedule {
    /// Every hour, bodies older than an hour.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(3600),
            min_age: Duration::from_secs(3600),
        }
    }
}

/// What one collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Bodies referenced by messages or quarantined messages.
    pub referenced: usize,
    /// Bodies deleted.
    pub deleted: usize,
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Reading the referenced bodies failed.
    #[error("reading the referenced bodies: {0}")]
    Store(#[from] StoreError),
    /// Listing or deleting bodies failed (those deleted before stay deleted).
    #[error("collecting orphaned bodies: {0}")]
    Blob(#[from] BlobError),
}

/// Deletes the bodies of `blobs` that nothing in `meta` refers to and that are older than
/// `min_age`.
///
/// # Errors
/// [`GcError`]; nothing referenced is ever deleted.
pub async fn collect(
    meta: &MetadataStore,
    blobs: &BlobStore,
    min_age: Duration,
) -> Result<Report, GcError> {
    let referenced = meta.referenced_blobs().await?;
    let deleted = blobs.collect_orphans(&referenced, min_age).await?;
    Ok(Report {
        referenced: referenced.len(),
        deleted,
    })
}

/// Collects orphans on `schedule` until `cancel`; failures are logged and retried at the
/// next turn.
pub async fn run(
    meta: MetadataStore,
    blobs: BlobStore,
    schedule: Schedule,
    cancel: CancellationToken,
) {
    if schedule.every.is_zero() {
        cancel.cancelled().await;
        return;
    }
    loop {
        let wait = schedule.every.mul_f64(rand::rng().random_range(0.5..1.5));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        match collect(&meta, &blobs, schedule.min_age).await {
            Ok(r) if r.deleted > 0 => {
                tracing::info!(
                    deleted = r.deleted,
                    referenced = r.referenced,
                    "orphaned bodies collected"
                );
            }
            Ok(r) => tracing::debug!(referenced = r.referenced, "no orphaned bodies"),
            Err(e) => tracing::warn!(error = %e, "orphan collection failed; retrying later"),
        }
    }
}
