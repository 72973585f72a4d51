//! Start-up of the facade, shared by both modes (`mcp standalone --rest` and
//! `mcp-operator --rest`): open the API key database, make sure an admin key exists (a
//! generated one is printed once on stdout, never logged), discover the OIDC issuer when one
//! is configured, and build the router over a [`Backend`].

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;

use crate::Api;
use crate::auth::oidc::{OidcError, OidcSettings, OidcVerifier};
use crate::auth::{Authenticator, RateLimit};
use crate::backend::Backend;
use crate::bootstrap::{Bootstrap, BootstrapError, bootstrap_line, ensure_admin};
use crate::store::{ApiKeyStore, StoreError};

/// What the facade needs besides its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacadeSettings {
    /// API key database URL: `sqlite://PATH` or `postgres://...` ([`ApiKeyStore::connect`]).
    pub api_store_url: String,
    /// File holding the bootstrap admin key (`--bootstrap-key-file`); `None`: a key is
    /// generated and printed once when no usable admin key exists.
    pub bootstrap_key_file: Option<PathBuf>,
    /// Per-credential rate limit (`--rest-rate`, `--rest-burst`).
    pub rate_limit: RateLimit,
    /// The OIDC issuer whose bearer tokens are accepted besides API keys (`--oidc-config`,
    /// [`OidcConfig::from_file`](crate::auth::oidc::OidcConfig::from_file)); `None`: API keys
    /// only, bearer tokens get 401.
    pub oidc: Option<OidcSettings>,
}

/// Why the facade could not start.
#[derive(Debug, thiserror::Error)]
pub enum FacadeError {
    /// The API key database could not be opened.
    #[error("API key store: {0}")]
    Store(#[from] StoreError),
    /// The bootstrap admin key could not be set up (`--bootstrap-key-file`, the database).
    #[error("bootstrap admin key: {0}")]
    Bootstrap(#[from] BootstrapError),
    /// The OIDC issuer could not be discovered or has no usable key: the facade does not
    /// start half-configured.
    #[error("--oidc-config: {0}")]
    Oidc(#[from] OidcError),
}

/// The facade, ready to serve: its router and the key database (close it after serving).
#[derive(Debug)]
pub struct Facade {
    /// Every route of the facade ([`Api::router`]).
    pub router: Router,
    /// The API key database.
    pub keys: ApiKeyStore,
}

/// Makes sure the API key database has an admin key ([`ensure_admin`]); prints a generated
/// key once on stdout (never to the log). If stdout is gone (a closed pipe), the key is
/// deleted again and the server goes on without it, like it does with a failing log write:
/// the next start generates another.
///
/// # Errors
/// [`BootstrapError`] (the key file, the database).
pub async fn bootstrap_admin(
    keys: &ApiKeyStore,
    key_file: Option<&std::path::Path>,
) -> Result<(), BootstrapError> {
    if let Bootstrap::Generated(key) = ensure_admin(keys, key_file).await? {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let printed = writeln!(out, "{}", bootstrap_line(&key)).and_then(|()| out.flush());
        drop(out);
        if let Err(e) = printed {
            tracing::warn!(
                error = %e,
                key = %format!("apikey:{}", key.prefix()),
                "REST: cannot print the bootstrap admin key on stdout; it is deleted, the next \
                 start generates another (or use --bootstrap-key-file)"
            );
            if let Some(record) = keys.by_prefix(key.prefix()).await? {
                keys.delete(record.id).await?;
            }
        }
    }
    Ok(())
}

/// Opens the key database of `settings`, bootstraps the admin key and builds the router
/// serving `backend`.
///
/// # Errors
/// [`FacadeError`].
pub async fn open(
    settings: &FacadeSettings,
    backend: Arc<dyn Backend>,
) -> Result<Facade, FacadeError> {
    // The issuer first: nothing is opened or printed when it cannot be used.
    let verifier = match &settings.oidc {
        None => None,
        Some(oidc) => {
            let verifier = OidcVerifier::discover(oidc.clone()).await?;
            tracing::info!(
                issuer = oidc.issuer(),
                audience = oidc.audience(),
                "REST: OIDC bearer tokens accepted"
            );
            Some(verifier)
        }
    };
    let keys = ApiKeyStore::connect(&settings.api_store_url).await?;
    if let Err(e) = bootstrap_admin(&keys, settings.bootstrap_key_file.as_deref()).await {
        keys.close().await;
        return Err(e.into());
    }
    let mut auth = Authenticator::new(keys.clone(), settings.rate_limit);
    if let Some(verifier) = verifier {
        auth = auth.with_bearer(Arc::new(verifier));
    }
    let router = Api::new(auth).backend(backend).router();
    Ok(Facade { router, keys })
}
