//! OIDC bearer tokens: `Authorization: Bearer <JWT>` from the configured issuer, verified
//! against its JWKS and mapped to a [`Role`](crate::auth::Role) (issue 7; docs/rest-api.md, "Authentication:
//! OIDC bearer tokens").
//!
//! [`OidcVerifier::discover`] reads the issuer's discovery document (OpenID Connect
//! Discovery 1.0 §4) and its JWKS (RFC 7517) once; [`OidcVerifier::verify`] then checks a
//! token (RFC 7519, RFC 7515) without network I/O, except for a rate-limited JWKS refresh
//! when the token names a key (`kid`) the cache does not hold. A background task refreshes
//! the JWKS periodically; a failed refresh keeps the previous keys.
//!
//! What a token must satisfy, in this order (the first failure is the answer):
//! 1. at most `maxTokenBytes`, a compact JWS (three base64url parts; a JWE is refused);
//! 2. its header `alg` is one of the configured [`SigningAlgorithm`]s (never `none` or
//!    `HS*`);
//! 3. its `kid` names a key of the issuer's JWKS (keys in the token header, `jwk`, `jku`,
//!    `x5u`, are ignored) whose type and curve fit `alg` (RS*/PS* ↔ RSA ≥ 2048 bits, ES256 ↔
//!    P-256, ES384 ↔ P-384, EdDSA ↔ Ed25519), and whose own `alg`, if any, is `alg`;
//! 4. the signature verifies with that key;
//! 5. `iss` is the configured issuer byte for byte; `aud` (a string or an array) contains
//!    the configured audience; `exp` is present and not past, `nbf` and `iat` (if present)
//!    are not in the future, each with the configured leeway; `sub` is a non-empty string;
//! 6. the claims map to a role.
//!
//! Failures 1–5 are [`OidcErrorKind::Unauthenticated`] (HTTP 401), 6 is
//! [`OidcErrorKind::Forbidden`] (HTTP 403). No error carries the token.

mod http;
mod jwks;
mod roles;
mod settings;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde_json::Value;

pub use settings::{
    ClaimPath, KeyType, OidcConfig, OidcSettings, RoleMappingConfig, SigningAlgorithm,
};

use crate::auth::Principal;
use http::Fetcher;
use jwks::{JwksCache, KeySet};

/// The class of an [`OidcError`], which decides the HTTP answer of the facade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OidcErrorKind {
    /// The settings are wrong: a startup error, never the caller's fault.
    InvalidSettings,
    /// The issuer could not be discovered or its keys are unusable (startup: the facade
    /// should not start with OIDC half-configured).
    IssuerUnavailable,
    /// The token is not a valid token of the issuer for this audience: HTTP 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
    Unauthenticated,
    /// The token is valid but grants no MCP role: HTTP 403 (RFC 6750 §3.1
    /// `insufficient_scope`).
    Forbidden,
}

/// Why discovery or a token failed. Messages name what failed, never the token; a
/// subject (`oidc:<iss>#<sub>`) appears only once the token has been verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A setting is invalid ([`OidcConfig::validate`]).
    #[error("OIDC settings: {field}: {reason}")]
    InvalidSettings {
        /// The setting, as spelled in [`OidcConfig`] (`issuer`, `roles.groups`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The discovery document could not be fetched or is unusable.
    #[error("OIDC discovery at {url}: {reason}")]
    Discovery {
        /// The discovery URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The JWKS could not be fetched or holds no usable key.
    #[error("OIDC JWKS at {url}: {reason}")]
    Jwks {
        /// The `jwks_uri`.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The token is empty, not a compact JWS, or its header or claims are not JSON.
    #[error("bearer token is not a well-formed signed JWT")]
    Malformed,
    /// The token is longer than `maxTokenBytes`.
    #[error("bearer token is longer than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The header's `alg` is not an accepted algorithm (`none`, `HS256`, one not
    /// configured).
    #[error("token algorithm {alg:?} is not accepted")]
    AlgorithmNotAllowed {
        /// The header's `alg`, shortened to 16 printable characters.
        alg: String,
    },
    /// No key of the issuer's JWKS has the token's `kid` (even after a refresh, when one
    /// was allowed).
    #[error("token key is not in the issuer's JWKS")]
    UnknownKey,
    /// The key named by `kid` is of another type or curve than `alg` needs, or is bound to
    /// another algorithm (algorithm confusion).
    #[error("token algorithm {alg} does not fit the key it names")]
    KeyMismatch {
        /// The header's algorithm.
        alg: SigningAlgorithm,
    },
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience does not include this service")]
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is missing, or a registered claim has
    /// the wrong type.
    #[error("token claim {claim} is missing or malformed")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
    },
    /// Verified, but no role: the token has no role claim and no mapped group.
    #[error("{subject} has no MCP role")]
    NoRole {
        /// `oidc:<iss>#<sub>`.
        subject: String,
    },
    /// Verified, but the role claim is not `admin`, `tenant-admin` or `viewer`.
    #[error("{subject}: claim {claim} is not admin, tenant-admin or viewer")]
    UnknownRole {
        /// `oidc:<iss>#<sub>`.
        subject: String,
        /// The role claim.
        claim: String,
    },
    /// Verified, tenant-admin, but the tenant claim is missing or not a tenant name.
    #[error("{subject} is tenant-admin without a valid tenant in claim {claim}")]
    MissingTenant {
        /// `oidc:<iss>#<sub>`.
        subject: String,
        /// The tenant claim.
        claim: String,
    },
    /// Verified, but the groups give tenant-admin of several tenants (a principal has one
    /// role).
    #[error("{subject}: groups map to tenant-admin of several tenants")]
    AmbiguousRole {
        /// `oidc:<iss>#<sub>`.
        subject: String,
    },
}

impl OidcError {
    /// The class of the error: which HTTP answer it deserves.
    pub fn kind(&self) -> OidcErrorKind {
        match self {
            Self::InvalidSettings { .. } => OidcErrorKind::InvalidSettings,
            Self::Discovery { .. } | Self::Jwks { .. } => OidcErrorKind::IssuerUnavailable,
            Self::NoRole { .. }
            | Self::UnknownRole { .. }
            | Self::MissingTenant { .. }
            | Self::AmbiguousRole { .. } => OidcErrorKind::Forbidden,
            _ => OidcErrorKind::Unauthenticated,
        }
    }

    /// The `error` attribute of the `WWW-Authenticate: Bearer` challenge (RFC 6750 §3.1):
    /// `invalid_token` for a 401, `insufficient_scope` for a 403; `None` for the startup
    /// errors.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self.kind() {
            OidcErrorKind::Unauthenticated => Some("invalid_token"),
            OidcErrorKind::Forbidden => Some("insufficient_scope"),
            OidcErrorKind::InvalidSettings | OidcErrorKind::IssuerUnavailable => None,
        }
    }
}

/// Verifies bearer tokens of one OIDC issuer. Cheap to clone (one shared JWKS cache).
///
/// Dropping the last clone stops the background JWKS refresh (at its next tick).
///
/// # Example
/// ```no_run
/// # async fn run() -> Result<(), mcp_api::auth::oidc::OidcError> {
/// use mcp_api::auth::oidc::{OidcConfig, OidcErrorKind, OidcVerifier};
///
/// let settings = OidcConfig::new("https://idp.example/realms/mcp", "mcp-api").validate()?;
/// let verifier = OidcVerifier::discover(settings).await?;
/// match verifier.verify("eyJhbGciOi...").await {
///     Ok(principal) => println!("{} is {:?}", principal.subject, principal.role),
///     Err(e) if e.kind() == OidcErrorKind::Forbidden => println!("403: {e}"),
///     Err(e) => println!("401: {e}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: OidcSettings,
    jwks: JwksCache,
}

/// The parts of a JOSE header read before the signature is checked.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl OidcVerifier {
    /// Fetches `<issuer>/.well-known/openid-configuration`, checks that its `issuer` is the
    /// configured one byte for byte, fetches its `jwks_uri`, and starts the periodic JWKS
    /// refresh (every `jwksRefreshSeconds`). Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`OidcError::Discovery`] when the document cannot be fetched (no redirects are
    /// followed; 10 s per request; 256 KiB at most), is not JSON, names another issuer or
    /// an unusable `jwks_uri` (`https`, or `http` on loopback for a loopback issuer);
    /// [`OidcError::Jwks`] when the JWKS cannot be fetched or has no usable signature key;
    /// [`OidcError::InvalidSettings`] when the TLS client cannot be built or the JWT crypto
    /// backend is missing.
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(OidcError::InvalidSettings {
                field: "algorithms",
                reason: "no JWT crypto backend (jsonwebtoken's rust_crypto feature)".into(),
            });
        }
        let fetcher = Fetcher::new(settings.extra_roots.clone()).await?;
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let discovery_error = |reason: String| OidcError::Discovery {
            url: discovery.clone(),
            reason,
        };
        let url = settings::fetchable_url(&discovery).map_err(discovery_error)?;
        let body = fetcher.get(&url).await.map_err(discovery_error)?;
        #[derive(serde::Deserialize)]
        struct Document {
            issuer: String,
            jwks_uri: String,
        }
        let document: Document = serde_json::from_slice(&body)
            .map_err(|e| discovery_error(format!("not a discovery document: {e}")))?;
        if document.issuer != settings.issuer {
            return Err(discovery_error(format!(
                "it names issuer {:?}, not the configured {:?}",
                document.issuer, settings.issuer
            )));
        }
        let jwks_uri = settings::fetchable_url(&document.jwks_uri)
            .map_err(|r| discovery_error(format!("jwks_uri: {r}")))?;
        if settings.issuer_url.scheme() == "https" && jwks_uri.scheme() != "https" {
            return Err(discovery_error(
                "jwks_uri must be https for an https issuer".into(),
            ));
        }
        let jwks = JwksCache::load(jwks_uri, fetcher, settings.jwks_min_refresh).await?;
        tracing::info!(
            issuer = %settings.issuer,
            keys = jwks.current().len(),
            "OIDC issuer discovered"
        );
        let period = settings.jwks_refresh;
        let inner = Arc::new(Inner { settings, jwks });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { break };
                inner.jwks.refresh().await;
            }
        });
        Ok(Self { inner })
    }

    /// How many times the JWKS was fetched so far (at discovery, periodically, and for
    /// unknown `kid`s), successful or not: a counter for metrics.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks.fetch_count()
    }

    /// The settings this verifier was discovered with.
    pub fn settings(&self) -> &OidcSettings {
        &self.inner.settings
    }

    /// The [`Principal`] of `bearer_token` (the JWT alone, without the `Bearer ` prefix):
    /// subject `oidc:<iss>#<sub>`, role from its claims. The checks are listed in the
    /// module documentation.
    ///
    /// # Errors
    /// An [`OidcError`] of kind [`OidcErrorKind::Unauthenticated`] (401) for a token that is
    /// malformed, too large, of a refused algorithm, signed by an unknown or unfitting key,
    /// badly signed, expired, not yet valid, of another issuer or audience, or missing a
    /// required claim; of kind [`OidcErrorKind::Forbidden`] (403) for a valid token without
    /// a role.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future at most abandons a JWKS refresh, which the next
    /// unknown `kid` or the periodic task redoes.
    pub async fn verify(&self, bearer_token: &str) -> Result<Principal, OidcError> {
        let settings = &self.inner.settings;
        if bearer_token.len() > settings.max_token_bytes {
            return Err(OidcError::TooLarge {
                limit: settings.max_token_bytes,
            });
        }
        let header = compact_jws_header(bearer_token)?;
        let alg = SigningAlgorithm::from_name(&header.alg)
            .filter(|a| settings.algorithms.contains(a))
            .ok_or_else(|| OidcError::AlgorithmNotAllowed {
                alg: shown(&header.alg),
            })?;
        let kid = header.kid.as_deref();
        let mut keys = self.inner.jwks.current();
        if keys.candidates(kid).is_none() {
            keys = self.inner.jwks.refresh_for_unknown_kid(kid).await;
        }
        let claims = verify_with(&keys, kid, alg, bearer_token, settings)?;
        // `sub` is required by the validation: present and a string.
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if sub.is_empty() {
            return Err(OidcError::InvalidClaim {
                claim: "sub".into(),
            });
        }
        let subject = format!("oidc:{}#{sub}", settings.issuer);
        let role = roles::role_of(&settings.roles, &claims, &subject)?;
        Ok(Principal { subject, role })
    }
}

/// The facade's bearer hook ([`Authenticator::with_bearer`](crate::auth::Authenticator)):
/// [`OidcErrorKind::Forbidden`] is 403, [`OidcErrorKind::IssuerUnavailable`] 503, every other
/// failure 401.
impl crate::auth::BearerVerifier for OidcVerifier {
    fn verify<'a>(
        &'a self,
        bearer_token: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Principal, crate::auth::BearerError>> {
        use crate::auth::BearerError;
        Box::pin(async move {
            OidcVerifier::verify(self, bearer_token)
                .await
                .map_err(|e| match e.kind() {
                    OidcErrorKind::Forbidden => BearerError::Forbidden(e.to_string()),
                    OidcErrorKind::IssuerUnavailable => BearerError::Unavailable(e.to_string()),
                    OidcErrorKind::Unauthenticated | OidcErrorKind::InvalidSettings => {
                        BearerError::Invalid(e.to_string())
                    }
                })
        })
    }
}

/// The header of a compact JWS (RFC 7515 §7.1): three non-empty base64url parts.
fn compact_jws_header(token: &str) -> Result<RawHeader, OidcError> {
    let parts: Vec<&str> = token.split('.').collect();
    let well_formed = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !well_formed {
        return Err(OidcError::Malformed);
    }
    let json = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| OidcError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| OidcError::Malformed)
}

/// The claims of `token`, checked with the key of `keys` it names.
fn verify_with(
    keys: &KeySet,
    kid: Option<&str>,
    alg: SigningAlgorithm,
    token: &str,
    settings: &OidcSettings,
) -> Result<Value, OidcError> {
    let candidates = keys.candidates(kid).ok_or(OidcError::UnknownKey)?;
    let key = candidates
        .iter()
        .find(|k| k.fits(alg))
        .ok_or(OidcError::KeyMismatch { alg })?;
    let mut validation = jsonwebtoken::Validation::new(alg.jwt());
    validation.leeway = settings.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation).map_err(|e| match e
        .into_kind()
    {
        ErrorKind::InvalidSignature => OidcError::BadSignature,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
        ErrorKind::InvalidAudience => OidcError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            OidcError::InvalidClaim { claim }
        }
        ErrorKind::InvalidAlgorithm => OidcError::KeyMismatch { alg },
        _ => OidcError::Malformed,
    })?;
    let claims = data.claims;
    if !claims.is_object() {
        return Err(OidcError::Malformed);
    }
    // jsonwebtoken checks `exp` and `nbf`; `iat` in the future means a skewed or forged
    // issuer clock (RFC 7519 §4.1.6).
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_f64().ok_or_else(|| OidcError::InvalidClaim {
            claim: "iat".into(),
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if iat > now.saturating_add(settings.leeway.as_secs()) as f64 {
            return Err(OidcError::NotYetValid);
        }
    }
    Ok(claims)
}

/// `s` for an error message: at most 16 characters, printable ASCII only.
fn shown(s: &str) -> String {
    s.chars()
        .take(16)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
