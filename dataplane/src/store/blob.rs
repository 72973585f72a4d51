//! Content-addressed message bodies on the local filesystem.
//!
//! CONTRACT STUB: being implemented (store work item).

use bytes::Bytes;

/// SHA-256 of a body, lower-case hex (64 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub String);

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob does not exist.
    #[error("blob {0} not found")]
    NotFound(String),
    /// Filesystem error.
    #[error("blob I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Message bodies addressed by their SHA-256, stored under a directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: std::path::PathBuf,
}

#[allow(unused_variables, clippy::unused_async)]
impl BlobStore {
    /// Opens (creating) the store rooted at `root`.
    pub async fn open(root: impl Into<std::path::PathBuf>) -> Result<Self, BlobError> {
        todo!()
    }
    /// Stores `body` durably (fsync before returning) and returns its address; idempotent.
    pub async fn put(&self, body: &[u8]) -> Result<BlobId, BlobError> {
        todo!()
    }
    /// Reads a whole body.
    pub async fn get(&self, id: &BlobId) -> Result<Bytes, BlobError> {
        todo!()
    }
}
