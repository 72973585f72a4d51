//! Content-addressed message bodies on the local filesystem.
//!
//! A body with SHA-256 `abcd…` lives at `ROOT/ab/cd/abcd…`. Writes go to a temporary file in
//! the target directory, are fsynced, renamed into place and the directory is fsynced, so a
//! blob that [`LocalBlobStore::put`] returned survives a crash. All filesystem work runs on
//! the blocking thread pool.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{BlobError, BlobId};

/// Message bodies addressed by their SHA-256, stored under a directory.
#[derive(Clone, Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Opens the store rooted at `root`, creating the directory if needed.
    /// Errors: `Io` when it cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `id` lives (`ROOT/ab/cd/<id>`); `None` for a malformed id.
    fn path(&self, id: &BlobId) -> Option<PathBuf> {
        id.is_valid()
            .then(|| self.root.join(&id.0[0..2]).join(&id.0[2..4]).join(&id.0))
    }

    /// Stores `body` durably (file and directory fsynced before returning) and returns its
    /// address. Idempotent: an existing blob is not rewritten, only its modification time is
    /// refreshed (so that orphan collection does not take it right away). Errors: `Io`.
    pub async fn put(&self, body: &[u8]) -> Result<BlobId, BlobError> {
        let body = body.to_vec();
        let store = self.clone();
        blocking(move || store.put_blocking(&body)).await
    }

    fn put_blocking(&self, body: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId::of(body);
        let path = self
            .path(&id)
            .ok_or_else(|| BlobError::NotFound(id.0.clone()))?;
        if let Ok(file) = File::options().append(true).open(&path) {
            file.set_modified(SystemTime::now())?;
            return Ok(id);
        }
        let dir = path.parent().unwrap_or(&self.root);
        let created_dirs = !dir.exists();
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tmp-{}-{:016x}", id.0, rand::random::<u64>()));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(body)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        sync_dir(dir)?;
        if created_dirs {
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            sync_dir(&self.root)?;
        }
        Ok(id)
    }

    /// Reads a whole body. Errors: `NotFound` for a missing or malformed id, `Io`.
    pub async fn get(&self, id: &BlobId) -> Result<Bytes, BlobError> {
        let path = self
            .path(id)
            .ok_or_else(|| BlobError::NotFound(id.0.clone()))?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(BlobError::NotFound(id.0.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads at most `len` octets of a body from offset `start`: fewer when the body ends
    /// first, none when `start` is at or past its end (RFC 9051 §6.4.5 partial semantics).
    /// Errors: `NotFound` for a missing or malformed id, `Io`.
    pub async fn get_range(&self, id: &BlobId, start: u64, len: u64) -> Result<Bytes, BlobError> {
        let path = self
            .path(id)
            .ok_or_else(|| BlobError::NotFound(id.0.clone()))?;
        let missing = id.0.clone();
        blocking(move || {
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(BlobError::NotFound(missing));
                }
                Err(e) => return Err(e.into()),
            };
            let size = file.metadata()?.len();
            if len == 0 || start >= size {
                return Ok(Bytes::new());
            }
            let take = len.min(size - start);
            file.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::with_capacity(usize::try_from(take).unwrap_or(0));
            file.take(take).read_to_end(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    /// Whether the blob exists. Errors: `Io`.
    pub async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        match self.path(id) {
            Some(path) => Ok(tokio::fs::try_exists(path).await?),
            None => Ok(false),
        }
    }

    /// Removes a blob. Errors: `NotFound` when it does not exist, `Io`.
    pub async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        let path = self
            .path(id)
            .ok_or_else(|| BlobError::NotFound(id.0.clone()))?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(BlobError::NotFound(id.0.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every blob that is not in `referenced` and was last written more than
    /// `min_age` ago (younger ones may belong to a message whose metadata transaction has not
    /// committed yet); also removes stale temporary files older than `min_age`. Take
    /// `referenced` ([`MetadataStore::referenced_blobs`](super::MetadataStore::referenced_blobs))
    /// before calling this. Returns the number of blobs deleted. Errors: `Io`.
    pub async fn collect_orphans(
        &self,
        referenced: &HashSet<BlobId>,
        min_age: Duration,
    ) -> Result<usize, BlobError> {
        let referenced = referenced.clone();
        let root = self.root.clone();
        blocking(move || collect_orphans_blocking(&root, &referenced, min_age)).await
    }
}

fn collect_orphans_blocking(
    root: &Path,
    referenced: &HashSet<BlobId>,
    min_age: Duration,
) -> Result<usize, BlobError> {
    let now = SystemTime::now();
    let mut deleted = 0;
    for level1 in read_dirs(root)? {
        for level2 in read_dirs(&level1)? {
            for entry in fs::read_dir(&level2)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_tmp = name.starts_with(".tmp-");
                let id = BlobId(name);
                if !is_tmp && (!id.is_valid() || referenced.contains(&id)) {
                    continue;
                }
                let modified = entry.metadata()?.modified()?;
                if now.duration_since(modified).unwrap_or_default() < min_age {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => deleted += usize::from(!is_tmp),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(deleted)
}

/// The two-hex-digit subdirectories of `dir`.
fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, BlobError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_dir() && name.len() == 2 {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// fsyncs a directory so that entries created or renamed in it are durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Runs filesystem work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
}
