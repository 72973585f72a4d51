//! TLS for IMAPS and STARTTLS with rustls (ring provider only: no aws-lc, no OpenSSL).
//!
//! The certificate comes from PEM files ([`TlsSource::Files`]) or, when none is configured,
//! from a self-signed certificate for `localhost`/`127.0.0.1` that is generated once with
//! rcgen and kept under a directory ([`TlsSource::SelfSigned`]) so restarts reuse it and
//! clients that pinned it keep working.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Name of the certificate chain file inside a [`TlsSource::SelfSigned`] directory.
pub const SELF_SIGNED_CERT: &str = "cert.pem";
/// Name of the private key file inside a [`TlsSource::SelfSigned`] directory (mode 0600).
pub const SELF_SIGNED_KEY: &str = "key.pem";

/// Where the server certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files given by the operator: a certificate chain (leaf first) and its private key
    /// (PKCS#8, PKCS#1 or SEC1).
    Files {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file.
        key: PathBuf,
    },
    /// A self-signed certificate for `localhost` and `127.0.0.1` kept in this directory as
    /// [`SELF_SIGNED_CERT`] and [`SELF_SIGNED_KEY`]; generated when either file is missing.
    SelfSigned {
        /// Directory, created if missing.
        dir: PathBuf,
    },
}

/// Why no TLS acceptor could be built. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: cannot read PEM: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Reader or parser error.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("{path}: no certificate found")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block.
    #[error("{path}: no private key found")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate/key pair (e.g. the key does not match).
    #[error("{cert} with key {key}: {source}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the generated certificate or key failed.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
}

/// Builds the acceptor used by the IMAPS listener and by STARTTLS.
///
/// Does blocking file I/O (and, for a missing self-signed certificate, key generation):
/// call it at start-up, not on a busy runtime thread.
///
/// # Errors
/// [`TlsError`] naming the file that could not be read, parsed or written.
pub fn acceptor(source: &TlsSource) -> Result<TlsAcceptor, TlsError> {
    let (cert, key) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { dir } => ensure_self_signed(dir)?,
    };
    let chain = load_certs(&cert)?;
    let private = load_key(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|source| TlsError::Rejected {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// Returns the certificate and key paths in `dir`, generating both when either is missing.
fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join(SELF_SIGNED_CERT);
    let key = dir.join(SELF_SIGNED_KEY);
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let generated = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    // Key first: a crash in between leaves no certificate, so the next start regenerates.
    write_file(
        &key,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&cert, generated.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate for localhost");
    Ok((cert, key))
}

/// Writes `bytes` to `path` through a temporary file created with `mode` and renamed into
/// place, so a reader never sees a partial file and a secret is never world-readable.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    write_atomically(path, bytes, mode).map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        let source = TlsSource::SelfSigned { dir: tls.clone() };
        acceptor(&source).expect("first start generates");
        let cert = std::fs::read(tls.join(SELF_SIGNED_CERT)).expect("cert written");
        let key = std::fs::read(tls.join(SELF_SIGNED_KEY)).expect("key written");
        acceptor(&source).expect("second start reuses");
        assert_eq!(
            std::fs::read(tls.join(SELF_SIGNED_CERT)).expect("cert"),
            cert
        );
        assert_eq!(std::fs::read(tls.join(SELF_SIGNED_KEY)).expect("key"), key);
    }

    #[cfg(unix)]
    #[test]
    fn generated_key_is_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        acceptor(&TlsSource::SelfSigned {
            dir: dir.path().to_owned(),
        })
        .expect("generate");
        let meta = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY)).expect("key");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn configured_files_are_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        acceptor(&TlsSource::SelfSigned {
            dir: dir.path().to_owned(),
        })
        .expect("generate");
        acceptor(&TlsSource::Files {
            cert: dir.path().join(SELF_SIGNED_CERT),
            key: dir.path().join(SELF_SIGNED_KEY),
        })
        .expect("load the files");
    }

    #[test]
    fn errors_name_the_offending_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").expect("write");
        acceptor(&TlsSource::SelfSigned {
            dir: dir.path().join("ok"),
        })
        .expect("generate");
        let good_cert = dir.path().join("ok").join(SELF_SIGNED_CERT);
        let good_key = dir.path().join("ok").join(SELF_SIGNED_KEY);
        let missing = dir.path().join("missing.pem");
        let cases = [
            (missing.clone(), good_key.clone(), "missing.pem"),
            (empty.clone(), good_key.clone(), "empty.pem: no certificate"),
            (
                good_cert.clone(),
                empty.clone(),
                "empty.pem: no private key",
            ),
            (good_cert.clone(), missing.clone(), "missing.pem"),
        ];
        for (cert, key, want) in cases {
            let err = acceptor(&TlsSource::Files { cert, key })
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }
}
