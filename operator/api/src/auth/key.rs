//! API key material: generation, parsing and hashing.
//!
//! A key is `mcp_<prefix>_<secret>`: the literal `mcp_`, an 8-character lookup prefix of
//! `[a-z0-9]` (about 41 bits, unique in the table, shown in listings and logs as
//! `apikey:<prefix>`), `_`, and a 43-character secret of unpadded base64url (32 bytes, 256
//! bits) from the operating system's RNG. 56 characters in all.
//!
//! Only the SHA-256 of the whole key is stored. A slow password hash (argon2) protects
//! low-entropy secrets against guessing; a 256-bit random secret cannot be guessed, so a fast
//! hash is as strong and keeps authentication cheap on every request (as GitHub and Stripe
//! tokens do). The stored and presented digests are compared in constant time
//! ([`KeyHash::matches`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Literal start of every key.
pub const KEY_PREFIX_TAG: &str = "mcp_";
/// Characters of the lookup prefix.
pub const PREFIX_LEN: usize = 8;
/// Characters of the secret (32 bytes of unpadded base64url).
pub const SECRET_LEN: usize = 43;
/// Characters of a whole key.
pub const KEY_LEN: usize = KEY_PREFIX_TAG.len() + PREFIX_LEN + 1 + SECRET_LEN;

const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Why a string is not an API key. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Not `mcp_<8 of a-z0-9>_<43 of base64url>`.
    #[error("not an MCP API key (mcp_ + 8 characters a-z0-9 + _ + 43 characters base64url)")]
    Malformed,
    /// The operating system's RNG failed.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// A whole API key, as shown to its owner once. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(apikey:{}..)", self.prefix())
    }
}

impl ApiKey {
    /// A fresh key from the operating system's RNG.
    ///
    /// # Errors
    /// [`KeyFormatError::Rng`] when the RNG fails.
    pub fn generate() -> Result<Self, KeyFormatError> {
        let fill = |buf: &mut [u8]| {
            OsRng
                .try_fill_bytes(buf)
                .map_err(|e| KeyFormatError::Rng(e.to_string()))
        };
        let mut secret = [0u8; 32];
        fill(&mut secret)?;
        // Uniform over the 36 characters: bytes from 252 (7 * 36) up are dropped.
        let mut prefix = String::with_capacity(PREFIX_LEN);
        while prefix.len() < PREFIX_LEN {
            let mut bytes = [0u8; 16];
            fill(&mut bytes)?;
            prefix.extend(
                bytes
                    .iter()
                    .filter(|b| **b < 252)
                    .map(|b| char::from(PREFIX_ALPHABET[usize::from(*b) % PREFIX_ALPHABET.len()]))
                    .take(PREFIX_LEN - prefix.len()),
            );
        }
        Ok(Self(format!(
            "{KEY_PREFIX_TAG}{prefix}_{}",
            URL_SAFE_NO_PAD.encode(secret)
        )))
    }

    /// Parses `text` (no surrounding white space) as a key.
    ///
    /// # Errors
    /// [`KeyFormatError::Malformed`].
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let b = text.as_bytes();
        let tag = KEY_PREFIX_TAG.len();
        let ok = b.len() == KEY_LEN
            && text.starts_with(KEY_PREFIX_TAG)
            && b[tag..tag + PREFIX_LEN]
                .iter()
                .all(|c| PREFIX_ALPHABET.contains(c))
            && b[tag + PREFIX_LEN] == b'_'
            && b[tag + PREFIX_LEN + 1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
            && URL_SAFE_NO_PAD
                .decode(&b[tag + PREFIX_LEN + 1..])
                .is_ok_and(|s| s.len() == 32);
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(KeyFormatError::Malformed)
        }
    }

    /// The lookup prefix (8 characters, not secret).
    pub fn prefix(&self) -> &str {
        let tag = KEY_PREFIX_TAG.len();
        &self.0[tag..tag + PREFIX_LEN]
    }

    /// The whole key: only for showing it to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the whole key, as stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// SHA-256 of a whole key (32 bytes), stored as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

impl KeyHash {
    /// Whether `presented` hashes to this digest, compared in constant time.
    pub fn matches(&self, presented: &ApiKey) -> bool {
        presented.hash().0.ct_eq(&self.0).into()
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From stored hex; `None` if it is not 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_only_themselves() {
        let a = ApiKey::generate().expect("rng");
        let b = ApiKey::generate().expect("rng");
        assert_eq!(a.expose().len(), KEY_LEN);
        assert_ne!(a, b);
        assert_eq!(ApiKey::parse(a.expose()).expect("parses"), a);
        assert!(a.hash().matches(&a));
        assert!(!a.hash().matches(&b));
        assert_eq!(KeyHash::from_hex(&a.hash().to_hex()), Some(a.hash()));
        assert!(
            !format!("{a:?}").contains(&a.expose()[13..]),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = ApiKey::generate().expect("rng");
        let g = good.expose();
        let cases = [
            String::new(),
            "mcp_".into(),
            g[..KEY_LEN - 1].to_owned(),
            format!("{g}x"),
            g.replacen("mcp_", "mcx_", 1),
            format!("mcp_ABCDEFGH{}", &g[12..]),
            format!("{}-{}", &g[..12], &g[13..]),
            format!("{}!{}", &g[..20], &g[21..]),
            format!(" {}", &g[1..]),
        ];
        for case in cases {
            assert_eq!(
                ApiKey::parse(&case),
                Err(KeyFormatError::Malformed),
                "{case:?}"
            );
        }
    }
}
