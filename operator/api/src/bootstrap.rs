//! The first admin key: without one nobody could create keys.
//!
//! At start-up, [`ensure_admin`] either hashes in the key of a `--bootstrap-key-file` (kept
//! as it is on later starts, so a deactivation through the API sticks), or, when the table
//! has no usable admin key (active and not expired), generates one and returns it for the
//! caller to print once on stdout. It never logs a key; the log names `apikey:<prefix>`.

use std::path::{Path, PathBuf};

use crate::auth::Role;
use crate::auth::key::{ApiKey, KeyFormatError};
use crate::store::{ApiKeyStore, NewApiKey, StoreError, now_secs};

/// What [`ensure_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// A usable admin key exists: nothing done.
    Present,
    /// The key file's key was inserted (first start with it) or found unchanged.
    FromFile {
        /// Its lookup prefix.
        prefix: String,
        /// Whether this start inserted it.
        inserted: bool,
    },
    /// A key was generated: show it to the operator once, never log it.
    Generated(ApiKey),
}

/// Why the bootstrap key could not be set up. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The file could not be read or inspected.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// Other users may read or write the file.
    #[error(
        "{}: mode {mode:04o} lets other users read or write the key; run chmod 600 (or 640) on it",
        path.display()
    )]
    WorldAccessible {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold one key.
    #[error("{}: {source} (generate one: see docs/rest-api.md)", path.display())]
    Format {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        source: KeyFormatError,
    },
    /// The table holds another key with the same prefix.
    #[error("{}: another API key has the prefix {prefix}; use a new key", path.display())]
    PrefixTaken {
        /// The key file.
        path: PathBuf,
        /// The prefix.
        prefix: String,
    },
    /// A key could not be generated.
    #[error("{0}")]
    Generate(KeyFormatError),
    /// The key database failed.
    #[error("API key database: {0}")]
    Store(#[from] StoreError),
}

/// Reads the key of `path`: one key, surrounding white space ignored; the file must not
/// be readable or writable by other users (mode `& 0o007 == 0`).
///
/// # Errors
/// [`BootstrapError::Read`], [`BootstrapError::WorldAccessible`], [`BootstrapError::Format`].
pub fn read_key_file(path: &Path) -> Result<ApiKey, BootstrapError> {
    let read = |source| BootstrapError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Err(BootstrapError::WorldAccessible {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path).map_err(read)?;
    ApiKey::parse(text.trim()).map_err(|source| BootstrapError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Makes sure an admin key exists: the key of `key_file` if given, else a generated one
/// when no usable admin key is in `store`.
///
/// # Errors
/// [`BootstrapError`] naming the file; nothing is changed then.
pub async fn ensure_admin(
    store: &ApiKeyStore,
    key_file: Option<&Path>,
) -> Result<Bootstrap, BootstrapError> {
    let now = now_secs();
    if let Some(path) = key_file {
        let path = path.to_owned();
        let key = tokio::task::spawn_blocking(move || read_key_file(&path).map(|k| (k, path)))
            .await
            .map_err(|e| BootstrapError::Read {
                path: PathBuf::from("--bootstrap-key-file"),
                source: std::io::Error::other(e),
            })?;
        let (key, path) = key?;
        let prefix = key.prefix().to_owned();
        if let Some(existing) = store.by_prefix(&prefix).await? {
            if existing.hash.matches(&key) {
                return Ok(Bootstrap::FromFile {
                    prefix,
                    inserted: false,
                });
            }
            return Err(BootstrapError::PrefixTaken { path, prefix });
        }
        store
            .insert(
                &NewApiKey {
                    name: format!("bootstrap-{prefix}"),
                    prefix: prefix.clone(),
                    hash: key.hash(),
                    role: Role::Admin,
                    expires_at: None,
                },
                now,
            )
            .await?;
        tracing::info!(key = %format!("apikey:{prefix}"), "REST: bootstrap admin key from file added");
        return Ok(Bootstrap::FromFile {
            prefix,
            inserted: true,
        });
    }
    if store.has_usable_admin(now).await? {
        return Ok(Bootstrap::Present);
    }
    let key = ApiKey::generate().map_err(BootstrapError::Generate)?;
    store
        .insert(
            &NewApiKey {
                name: format!("bootstrap-{}", key.prefix()),
                prefix: key.prefix().to_owned(),
                hash: key.hash(),
                role: Role::Admin,
                expires_at: None,
            },
            now,
        )
        .await?;
    tracing::info!(
        key = %format!("apikey:{}", key.prefix()),
        "REST: no usable admin API key; generated a bootstrap admin key (printed once on stdout)"
    );
    Ok(Bootstrap::Generated(key))
}

/// The stdout line that shows a generated key, once; `e2e` and scripts match its start,
/// [`BOOTSTRAP_LINE_PREFIX`].
pub fn bootstrap_line(key: &ApiKey) -> String {
    format!("{BOOTSTRAP_LINE_PREFIX}{}", key.expose())
}

/// Start of the stdout line with a generated bootstrap admin key.
pub const BOOTSTRAP_LINE_PREFIX: &str =
    "MCP REST API bootstrap admin key (shown only now; store it, send it as X-API-Key): ";
