//! Message bodies as content-addressed blobs (DESIGN.md §3): a local directory
//! ([`LocalBlobStore`], the default) or an S3 bucket ([`S3BlobStore`]), behind one
//! [`BlobStore`] that the rest of the dataplane uses.
//!
//! Every backend keeps the same contract:
//! - A blob's address ([`BlobId`]) is the SHA-256 of its body, so [`BlobStore::put`] is
//!   idempotent and an existing blob is never a conflict.
//! - [`BlobStore::put`] returns only once the body is durable (fsynced file and directory;
//!   a completed S3 PUT or multipart upload), *before* the metadata transaction that
//!   references it commits: an acknowledged message survives `kill -9`.
//! - Orphans (blobs no message or quarantined message references: a crash between the PUT
//!   and the commit, a deleted mailbox or account) are removed by
//!   [`BlobStore::collect_orphans`], but only once older than a grace period, so that a blob
//!   whose metadata transaction is still in flight is never taken.

pub mod cache;
mod local;
mod s3;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use cache::DEFAULT_CACHE_BYTES;
pub use local::LocalBlobStore;
pub use s3::{MULTIPART_THRESHOLD, PART_SIZE, S3BlobStore, S3Settings, S3SettingsError};

/// SHA-256 of a body, lower-case hex (64 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub String);

impl BlobId {
    /// The address of `body`.
    pub fn of(body: &[u8]) -> Self {
        BlobId(hex::encode(Sha256::digest(body)))
    }

    /// Whether this is a well-formed address (64 lower-case hex digits).
    pub fn is_valid(&self) -> bool {
        self.0.len() == 64
            && self
                .0
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// Errors of the blob store. None of them carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob does not exist (or the id is malformed).
    #[error("blob {0} not found")]
    NotFound(String),
    /// Filesystem error (local directory).
    #[error("blob I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The S3 settings cannot be used (checked before any request).
    #[error("S3 settings: {0}")]
    Settings(#[from] S3SettingsError),
    /// An S3 request failed: the server's error code and message, or why no answer came
    /// (connection refused, timeout).
    #[error("S3 {op} s3://{bucket}/{key}: {}", s3_detail(*status, code.as_deref(), message))]
    S3 {
        /// The S3 operation, e.g. `GetObject`.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key (empty for bucket-wide operations).
        key: String,
        /// The HTTP status of the answer; `None` when none came.
        status: Option<u16>,
        /// The S3 error code, e.g. `NoSuchBucket`, `InvalidAccessKeyId`,
        /// `SignatureDoesNotMatch`; `None` when the answer had none (HEAD) or none came.
        code: Option<String>,
        /// The server's message, or the client's description of the failure.
        message: String,
    },
}

/// `CODE (HTTP nnn): message`, leaving out what is unknown.
fn s3_detail(status: Option<u16>, code: Option<&str>, message: &str) -> String {
    let mut out = String::new();
    if let Some(c) = code {
        out.push_str(c);
        out.push(' ');
    }
    if let Some(s) = status {
        out.push_str(&format!("(HTTP {s}) "));
    }
    if out.is_empty() {
        message.to_owned()
    } else {
        format!("{}: {message}", out.trim_end())
    }
}

impl BlobError {
    /// The S3 error code of an [`BlobError::S3`] (`NoSuchBucket`, `InvalidAccessKeyId`,
    /// ...); `None` for other errors or when the answer had none.
    pub fn s3_code(&self) -> Option<&str> {
        match self {
            BlobError::S3 { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Where the blobs live: what a configuration names, before anything is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    /// A local directory (absolute), created if missing.
    Dir(PathBuf),
    /// An S3 bucket and key prefix.
    S3(S3Settings),
}

impl BlobLocation {
    /// The local directory, for a [`BlobLocation::Dir`].
    pub fn dir(&self) -> Option<&std::path::Path> {
        match self {
            BlobLocation::Dir(d) => Some(d),
            BlobLocation::S3(_) => None,
        }
    }
}

impl std::fmt::Display for BlobLocation {
    /// `dir /path` or `s3://bucket/prefix` (never a credential), for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobLocation::Dir(d) => write!(f, "dir {}", d.display()),
            BlobLocation::S3(s) => write!(f, "s3://{}/{}", s.bucket, s.prefix),
        }
    }
}

/// Message bodies addressed by their SHA-256: in a local directory or an S3 bucket. Cheap
/// to clone (the clones share the directory or the S3 client).
#[derive(Clone, Debug)]
pub enum BlobStore {
    /// A local directory.
    Local(LocalBlobStore),
    /// An S3 bucket.
    S3(S3BlobStore),
}

impl BlobStore {
    /// Opens the local store rooted at `root`, creating the directory if needed.
    ///
    /// # Errors
    /// [`BlobError::Io`] when it cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        Ok(BlobStore::Local(LocalBlobStore::open(root).await?))
    }

    /// Opens the store at `location`: creates a local directory, or builds the S3 client
    /// and checks that the bucket answers (HeadBucket), so that a wrong bucket, endpoint or
    /// credential fails at start-up.
    ///
    /// # Errors
    /// [`BlobError::Io`], [`BlobError::Settings`], [`BlobError::S3`].
    pub async fn open_at(location: &BlobLocation) -> Result<Self, BlobError> {
        match location {
            BlobLocation::Dir(d) => Self::open(d.clone()).await,
            BlobLocation::S3(s) => Ok(BlobStore::S3(S3BlobStore::connect(s).await?)),
        }
    }

    /// Stores `body` durably and returns its address. Idempotent: storing an existing
    /// body again succeeds (and refreshes its age for [`BlobStore::collect_orphans`]).
    ///
    /// # Errors
    /// [`BlobError::Io`] or [`BlobError::S3`].
    pub async fn put(&self, body: &[u8]) -> Result<BlobId, BlobError> {
        match self {
            BlobStore::Local(l) => l.put(body).await,
            BlobStore::S3(s) => s.put(body).await,
        }
    }

    /// Reads a whole body.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] for a missing or malformed id, [`BlobError::Io`],
    /// [`BlobError::S3`].
    pub async fn get(&self, id: &BlobId) -> Result<Bytes, BlobError> {
        match self {
            BlobStore::Local(l) => l.get(id).await,
            BlobStore::S3(s) => s.get(id).await,
        }
    }

    /// Reads at most `len` octets of a body from octet `start` (a ranged GET on S3): fewer
    /// when the body ends first, none when `start` is at or past its end or `len` is 0, as
    /// a partial FETCH `BODY[]<start.len>` wants (RFC 9051 §6.4.5).
    ///
    /// # Errors
    /// As [`BlobStore::get`].
    pub async fn get_range(&self, id: &BlobId, start: u64, len: u64) -> Result<Bytes, BlobError> {
        match self {
            BlobStore::Local(l) => l.get_range(id, start, len).await,
            BlobStore::S3(s) => s.get_range(id, start, len).await,
        }
    }

    /// Whether the blob exists (`false` for a malformed id).
    ///
    /// # Errors
    /// [`BlobError::Io`] or [`BlobError::S3`].
    pub async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        match self {
            BlobStore::Local(l) => l.exists(id).await,
            BlobStore::S3(s) => s.exists(id).await,
        }
    }

    /// Removes a blob.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] when it does not exist, [`BlobError::Io`],
    /// [`BlobError::S3`].
    pub async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        match self {
            BlobStore::Local(l) => l.delete(id).await,
            BlobStore::S3(s) => s.delete(id).await,
        }
    }

    /// Deletes every blob that is not in `referenced` and was last written more than
    /// `min_age` ago (younger ones may belong to a message whose metadata transaction has
    /// not committed yet); also removes leftovers of interrupted writes older than
    /// `min_age` (temporary files; unfinished S3 multipart uploads). Take `referenced`
    /// ([`MetadataStore::referenced_blobs`](super::MetadataStore::referenced_blobs)) *before*
    /// calling this. Only well-formed blob names directly under the directory or key prefix
    /// are considered; anything else there is left alone. Returns the number of blobs
    /// deleted.
    ///
    /// # Errors
    /// [`BlobError::Io`] or [`BlobError::S3`]; blobs deleted before the error stay deleted.
    pub async fn collect_orphans(
        &self,
        referenced: &HashSet<BlobId>,
        min_age: Duration,
    ) -> Result<usize, BlobError> {
        match self {
            BlobStore::Local(l) => l.collect_orphans(referenced, min_age).await,
            BlobStore::S3(s) => s.collect_orphans(referenced, min_age).await,
        }
    }
}
