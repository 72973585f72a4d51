//! Who is calling the facade, and with which rights.
//!
//! A request is authenticated by an `X-API-Key` header (a key of the `api_keys` table,
//! [`key`]) or an `Authorization: Bearer` JWT from the configured OIDC issuer (through the
//! [`BearerVerifier`] hook; [`oidc`] is the verifier: discovery, JWKS cache, claim checks,
//! role mapping). Both end as a [`Principal`]; RBAC decisions ([`crate::rbac`]) only look
//! at its [`Role`].
//!
//! [`Authenticator::authenticate`] answers, for any header it cannot use (missing, two
//! credentials, malformed, unknown, inactive or expired key, invalid token), the same
//! 401 problem with a `WWW-Authenticate` challenge, so a caller cannot tell a deactivated
//! key from a mistyped one; the reason is logged (debug) under `apikey:<prefix>`. After
//! authentication each principal is rate-limited ([`RateLimit`], GCRA, keyed by subject):
//! over the limit it gets 429 with `Retry-After`.

pub mod key;
pub mod oidc;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::problem::ApiError;
use crate::store::{ApiKeyStore, now_secs};
use key::ApiKey;

/// The API key header (lower-case, as `http` stores names).
pub const API_KEY_HEADER: &str = "x-api-key";

/// `last_used_at` is written at most once per this many seconds per key.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// What a caller may do (issue 7: admin; tenant-admin, bound to one tenant; viewer).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "tenant", rename_all = "kebab-case")]
pub enum Role {
    /// Everything, on every tenant, including API keys of any role.
    Admin,
    /// Read and write the resources of one tenant (its name); nothing of other tenants,
    /// no cluster-wide writes.
    TenantAdmin(String),
    /// Read everything; write nothing.
    Viewer,
}

impl Role {
    /// The tenant a tenant-admin is bound to; `None` for the other roles.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Role::TenantAdmin(t) => Some(t),
            Role::Admin | Role::Viewer => None,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Who it is, for logs and audit: `apikey:<prefix>` or `oidc:<issuer>#<sub>`. Never a
    /// secret.
    pub subject: String,
    /// What it may do.
    pub role: Role,
}

/// Why a bearer token was not accepted ([`BearerVerifier::verify`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BearerError {
    /// The token is not valid (signature, issuer, audience, expiry, claims, no role):
    /// answered 401. The message is logged, not sent.
    #[error("invalid bearer token: {0}")]
    Invalid(String),
    /// The token is valid but its claims grant no role of the facade: answered 403
    /// (RFC 6750 §3.1 `insufficient_scope`). The message is logged, not sent.
    #[error("bearer token grants no role: {0}")]
    Forbidden(String),
    /// The issuer's keys could not be fetched: answered 503. The message is logged.
    #[error("token issuer unavailable: {0}")]
    Unavailable(String),
}

/// Verifies an `Authorization: Bearer` JWT and maps it to a [`Principal`] (subject
/// `oidc:<issuer>#<sub>`, role from the configured claims); [`oidc::OidcVerifier`] is the
/// implementation (`--oidc-config`).
///
/// Plug a verifier in with [`Authenticator::with_bearer`]; without one, bearer tokens are
/// refused with 401.
pub trait BearerVerifier: Send + Sync + 'static {
    /// The principal of `bearer_token` (the header value after `Bearer `, unchecked).
    ///
    /// # Errors
    /// [`BearerError::Invalid`] (401) or [`BearerError::Unavailable`] (503).
    fn verify<'a>(&'a self, bearer_token: &'a str)
    -> BoxFuture<'a, Result<Principal, BearerError>>;
}

/// The per-principal rate limit: `per_second` requests per second on average, up to
/// `burst` at once (GCRA, [`governor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate, requests per second (at least 1).
    pub per_second: NonZeroU32,
    /// Largest burst, requests (at least 1).
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    /// 20 requests per second, bursts of 40.
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN),
        }
    }
}

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Forget idle principals' limiter state after this many checks.
const RETAIN_EVERY: u64 = 4096;

/// Turns request headers into a [`Principal`] and rate-limits it.
pub struct Authenticator {
    keys: ApiKeyStore,
    bearer: Option<Arc<dyn BearerVerifier>>,
    limiter: Limiter,
    checks: AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("bearer", &self.bearer.is_some())
            .finish_non_exhaustive()
    }
}

/// The generic 401 detail: the same for every reason.
const UNAUTHORIZED: &str =
    "missing or invalid credentials: send one X-API-Key header or Authorization: Bearer";

impl Authenticator {
    /// API keys from `keys`, rate-limited by `limit`; no bearer tokens.
    pub fn new(keys: ApiKeyStore, limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            keys,
            bearer: None,
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// Accepts `Authorization: Bearer` tokens through `verifier` (the OIDC hook).
    pub fn with_bearer(mut self, verifier: Arc<dyn BearerVerifier>) -> Self {
        self.bearer = Some(verifier);
        self
    }

    /// The key store.
    pub fn keys(&self) -> &ApiKeyStore {
        &self.keys
    }

    /// The `WWW-Authenticate` challenges of a 401 (RFC 9110 §11.6.1): the API key header
    /// and, with a verifier, `Bearer` (RFC 6750 §3).
    pub fn challenge(&self) -> HeaderValue {
        HeaderValue::from_static(if self.bearer.is_some() {
            "ApiKey realm=\"mcp\", header=\"X-API-Key\", Bearer realm=\"mcp\""
        } else {
            "ApiKey realm=\"mcp\", header=\"X-API-Key\""
        })
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::unauthorized(UNAUTHORIZED, self.challenge())
    }

    /// The principal of a request, from exactly one `X-API-Key` or `Authorization: Bearer`
    /// header, then charged against its rate limit.
    ///
    /// # Errors
    /// 401 (any unusable credential, the reason only logged), 429 over the rate limit, 503
    /// when the key database or the token issuer is unavailable.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let keys: Vec<_> = headers.get_all(API_KEY_HEADER).iter().collect();
        let auths: Vec<_> = headers.get_all(AUTHORIZATION).iter().collect();
        let principal = match (keys.as_slice(), auths.as_slice()) {
            ([key], []) => self.api_key(key.as_bytes()).await?,
            ([], [auth]) => self.bearer(auth.as_bytes()).await?,
            ([], []) => {
                tracing::debug!("REST: no credentials");
                return Err(self.unauthorized());
            }
            _ => {
                tracing::debug!("REST: more than one credential header");
                return Err(self.unauthorized());
            }
        };
        self.charge(&principal)?;
        Ok(principal)
    }

    async fn api_key(&self, value: &[u8]) -> Result<Principal, ApiError> {
        let Some(key) = std::str::from_utf8(value)
            .ok()
            .and_then(|v| ApiKey::parse(v.trim()).ok())
        else {
            tracing::debug!("REST: malformed X-API-Key");
            return Err(self.unauthorized());
        };
        let subject = format!("apikey:{}", key.prefix());
        let record = self
            .keys
            .by_prefix(key.prefix())
            .await
            .map_err(|e| ApiError::unavailable("the API key database", &e))?;
        let now = now_secs();
        let Some(record) = record.filter(|r| r.hash.matches(&key)) else {
            tracing::debug!(%subject, "REST: unknown API key");
            return Err(self.unauthorized());
        };
        if !record.usable_at(now) {
            tracing::debug!(%subject, active = record.active, "REST: inactive or expired API key");
            return Err(self.unauthorized());
        }
        if record
            .last_used_at
            .is_none_or(|t| t <= now - TOUCH_EVERY_SECS)
            && let Err(e) = self.keys.touch(record.id, now, TOUCH_EVERY_SECS).await
        {
            // Bookkeeping only: the request goes on.
            tracing::warn!(%subject, error = %e, "REST: cannot record the API key's last use");
        }
        Ok(Principal {
            subject,
            role: record.role,
        })
    }

    async fn bearer(&self, value: &[u8]) -> Result<Principal, ApiError> {
        let token = std::str::from_utf8(value).ok().and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            let token = token.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        });
        let Some(token) = token else {
            tracing::debug!("REST: Authorization is not a bearer token");
            return Err(self.unauthorized());
        };
        let Some(verifier) = &self.bearer else {
            tracing::debug!("REST: bearer token, but no OIDC issuer is configured");
            return Err(self.unauthorized());
        };
        match verifier.verify(token).await {
            Ok(principal) => Ok(principal),
            Err(BearerError::Invalid(why)) => {
                tracing::debug!(%why, "REST: bearer token refused");
                Err(self.unauthorized())
            }
            Err(BearerError::Forbidden(why)) => {
                tracing::debug!(%why, "REST: bearer token grants no role");
                Err(ApiError::forbidden(
                    "the token is valid but its claims grant no role of this API",
                ))
            }
            Err(BearerError::Unavailable(why)) => {
                Err(ApiError::unavailable("the token issuer", &why))
            }
        }
    }

    /// Charges one request to `principal`'s rate limit.
    fn charge(&self, principal: &Principal) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key(&principal.subject) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                tracing::debug!(subject = %principal.subject, "REST: rate limited");
                Err(ApiError::too_many_requests(secs))
            }
        }
    }
}

/// Middleware of the authenticated routes: puts the request's [`Principal`] into its
/// extensions, or answers the 401/429/503 problem.
pub async fn require_principal(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    /// The principal [`require_principal`] authenticated; a route outside it is a bug
    /// (500), never an anonymous pass.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal(&"route without authentication middleware"))
    }
}
