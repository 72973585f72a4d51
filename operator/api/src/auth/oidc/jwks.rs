//! The issuer's signing keys (RFC 7517 JWK Set): fetched, filtered to the verification keys
//! this verifier can use, cached, and refreshed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use url::Url;

use super::OidcError;
use super::http::Fetcher;
use super::settings::{KeyType, SigningAlgorithm};

/// At most this many keys of a JWKS are looked at (real issuers publish a handful).
const MAX_KEYS: usize = 100;

/// A verification key of the JWKS, bound to its key type (and its `alg`, when the JWK names
/// one): a token is only checked with a key whose type fits the token's algorithm.
#[derive(Clone, Debug)]
pub(crate) struct VerifyKey {
    pub(crate) key_type: KeyType,
    /// The JWK's own `alg`, if it has one: then only that algorithm.
    pub(crate) alg: Option<SigningAlgorithm>,
    pub(crate) key: DecodingKey,
}

impl VerifyKey {
    /// Whether a token signed with `alg` may be checked with this key.
    pub(crate) fn fits(&self, alg: SigningAlgorithm) -> bool {
        alg.key_type() == self.key_type && self.alg.is_none_or(|a| a == alg)
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Vec<VerifyKey>>,
    without_kid: Vec<VerifyKey>,
}

impl KeySet {
    /// The keys a token with this `kid` may be checked with: those with that `kid`; for a
    /// token without `kid`, the keys without one, or the single key of the set. `None`
    /// when no key has that `kid` (a refresh may help).
    pub(crate) fn candidates(&self, kid: Option<&str>) -> Option<&[VerifyKey]> {
        match kid {
            Some(kid) => self.by_kid.get(kid).map(Vec::as_slice),
            None if !self.without_kid.is_empty() => Some(&self.without_kid),
            None => {
                let mut all = self.by_kid.values();
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only.as_slice()),
                    _ => None,
                }
            }
        }
    }

    /// How many keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum::<usize>() + self.without_kid.len()
    }

    /// The usable verification keys of a JWKS document; keys this verifier cannot or must
    /// not use (symmetric `oct` keys, encryption keys, unknown types or curves, RSA moduli
    /// under 2048 bits, malformed points) are skipped.
    ///
    /// # Errors
    /// A description when the document is not a JWK Set or has no usable key.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut set = KeySet::default();
        let mut skipped = 0usize;
        for value in document.keys.into_iter().take(MAX_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                skipped += 1;
                continue;
            };
            match usable_key(&jwk) {
                Some(key) => match jwk.common.key_id {
                    Some(kid) => set.by_kid.entry(kid).or_default().push(key),
                    None => set.without_kid.push(key),
                },
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::debug!(skipped, "JWKS: keys skipped (not usable signature keys)");
        }
        if set.len() == 0 {
            return Err(
                "no usable signature key (RSA ≥ 2048 bits, EC P-256/P-384, Ed25519)".into(),
            );
        }
        Ok(set)
    }
}

/// `jwk` as a verification key, if it is one this verifier may use.
fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    // A JWK `alg` must be one of ours (an `HS256` or `RSA-OAEP` key is not a signature key
    // we accept).
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(SigningAlgorithm::from_name(&a.to_string())?),
    };
    let (key_type, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = URL_SAFE_NO_PAD.decode(&p.n).ok()?;
            let bits = significant_bits(&n);
            if !(2048..=8192).contains(&bits) {
                return None;
            }
            (
                KeyType::Rsa,
                DecodingKey::from_rsa_components(&p.n, &p.e).ok()?,
            )
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (key_type, len) = match p.curve {
                EllipticCurve::P256 => (KeyType::EcP256, 32),
                EllipticCurve::P384 => (KeyType::EcP384, 48),
                _ => return None,
            };
            let x = URL_SAFE_NO_PAD.decode(&p.x).ok()?;
            let y = URL_SAFE_NO_PAD.decode(&p.y).ok()?;
            if x.len() != len || y.len() != len {
                return None;
            }
            (key_type, DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return None;
            }
            // Exactly 32 bytes: jsonwebtoken's Ed25519 verifier slices the first 32 bytes.
            if URL_SAFE_NO_PAD.decode(&p.x).ok()?.len() != 32 {
                return None;
            }
            (
                KeyType::Ed25519,
                DecodingKey::from_ed_components(&p.x).ok()?,
            )
        }
        _ => return None,
    };
    if alg.is_some_and(|a| a.key_type() != key_type) {
        return None;
    }
    // EC points and Ed25519 keys are parsed when a verifier is built: a key that is not on
    // its curve fails here rather than on every token.
    if key_type != KeyType::Rsa {
        let probe = alg.unwrap_or(match key_type {
            KeyType::EcP256 => SigningAlgorithm::ES256,
            KeyType::EcP384 => SigningAlgorithm::ES384,
            _ => SigningAlgorithm::EdDSA,
        });
        jsonwebtoken::crypto::verify("AA", b"probe", &key, probe.jwt()).ok()?;
    }
    Some(VerifyKey { key_type, alg, key })
}

fn significant_bits(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

/// The cached JWKS of the issuer, with its refresh policy.
#[derive(Debug)]
pub(crate) struct JwksCache {
    url: Url,
    fetcher: Fetcher,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching (one fetch at a time); holds when the last refresh triggered by an
    /// unknown `kid` started.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: std::time::Duration,
    /// JWKS fetches so far, successful or not.
    fetches: AtomicU64,
}

impl JwksCache {
    /// Fetches the JWKS at `url` once.
    ///
    /// # Errors
    /// [`OidcError::Jwks`] when it cannot be fetched or has no usable key.
    pub(crate) async fn load(
        url: Url,
        fetcher: Fetcher,
        min_refresh: std::time::Duration,
    ) -> Result<Self, OidcError> {
        let cache = Self {
            url,
            fetcher,
            keys: RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(None),
            min_refresh,
            fetches: AtomicU64::new(0),
        };
        let set = cache.fetch().await?;
        cache.store(set);
        Ok(cache)
    }

    /// The current keys.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn store(&self, set: KeySet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }

    async fn fetch(&self) -> Result<KeySet, OidcError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let jwks_error = |reason: String| OidcError::Jwks {
            url: self.url.to_string(),
            reason,
        };
        let body = self.fetcher.get(&self.url).await.map_err(jwks_error)?;
        KeySet::parse(&body).map_err(jwks_error)
    }

    /// JWKS fetches so far (initial, periodic and on unknown `kid`), successful or not.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The keys after a refresh triggered by a token whose `kid` is not cached. The refresh
    /// happens at most once per `min_refresh`; a failed refresh keeps the old keys.
    pub(crate) async fn refresh_for_unknown_kid(&self, kid: Option<&str>) -> Arc<KeySet> {
        let mut last = self.refresh.lock().await;
        // Another request may have refreshed while this one waited.
        let keys = self.current();
        if keys.candidates(kid).is_some() {
            return keys;
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            tracing::debug!(url = %self.url, "JWKS refresh for an unknown kid rate-limited");
            return keys;
        }
        *last = Some(Instant::now());
        self.refresh_locked().await;
        self.current()
    }

    /// A periodic refresh; a failed one keeps the old keys.
    pub(crate) async fn refresh(&self) {
        let _one_at_a_time = self.refresh.lock().await;
        self.refresh_locked().await;
    }

    async fn refresh_locked(&self) {
        match self.fetch().await {
            Ok(set) => {
                tracing::debug!(url = %self.url, keys = set.len(), "JWKS refreshed");
                self.store(set);
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys"),
        }
    }
}
