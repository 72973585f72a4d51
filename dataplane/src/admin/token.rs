//! The admin API's bearer token (RFC 6750 §2.1), kept only as its SHA-256.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest token accepted, characters: the operator generates long random ones, and a
/// short one would be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// The expected bearer token. Holds only the token's SHA-256, so neither `Debug` nor a
/// memory dump shows it; [`AdminToken::matches`] compares in constant time.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Why a token file cannot be used. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The token is empty, too short, or holds characters that cannot be sent in an
    /// `Authorization` header.
    #[error("{}: {message}", path.display())]
    Unusable {
        /// The token file.
        path: PathBuf,
        /// What is wrong (never the token itself).
        message: String,
    },
}

impl AdminToken {
    /// The token in `path`: the file's content with surrounding white space removed. It
    /// must be at least [`MIN_TOKEN_LEN`] visible ASCII characters (`!` to `~`).
    ///
    /// # Errors
    /// [`TokenError`] naming the file.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let bytes = std::fs::read(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        let unusable = |message: &str| TokenError::Unusable {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err(unusable("is empty"));
        }
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(unusable(
                "holds characters other than visible ASCII (! to ~)",
            ));
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(unusable(&format!(
                "the token is shorter than {MIN_TOKEN_LEN} characters"
            )));
        }
        Ok(Self::new(token))
    }

    /// A token from its bytes, unchecked (tests; [`AdminToken::from_file`] checks).
    pub fn new(token: &[u8]) -> Self {
        Self {
            digest: Sha256::digest(token).into(),
        }
    }

    /// Whether `presented` is the token. Compares the SHA-256 of both in constant time, so
    /// the time taken reveals neither the token nor its length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_trimmed_and_checked_without_revealing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "  0123456789abcdef-secret\n").expect("write");
        let token = AdminToken::from_file(&file).expect("valid");
        assert!(token.matches(b"0123456789abcdef-secret"));
        assert!(!token.matches(b"0123456789abcdef-secreT"));
        assert!(!token.matches(b" 0123456789abcdef-secret"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "AdminToken(..)");

        for (content, want) in [
            ("\n \t\n", "is empty"),
            ("short-token", "shorter than 16"),
            ("0123456789abcdef secret", "visible ASCII"),
            ("0123456789abcdef\u{e9}", "visible ASCII"),
        ] {
            std::fs::write(&file, content).expect("write");
            let e = AdminToken::from_file(&file).expect_err(content).to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("0123456789abcdef"), "token leaked: {e}");
        }
        let e = AdminToken::from_file(&dir.path().join("none")).expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
