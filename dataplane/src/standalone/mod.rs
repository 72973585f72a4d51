//! The standalone mode: one process that serves IMAP and LMTP from a local data directory, configured
//! by the YAML resources of a directory (DESIGN.md §1, "Standalone").
//!
//! [`run`] does, in order: validate the resources, lock the data directory, bind the IMAP
//! (STARTTLS), IMAPS, LMTP, metrics and REST listeners, open the store and blob directory,
//! apply the resources ([`apply`]), open the API key database and make sure an admin key
//! exists ([`mcp_api::bootstrap`]; a generated one is printed once on stdout), build the
//! TLS acceptor, and serve (the REST API [`mcp_api`] among the rest) until Ctrl-C (SIGINT) or
//! SIGTERM; then it stops accepting, lets open sessions end (the IMAP server sends `* BYE`)
//! and returns. Every step except reading and applying the resources is the server assembly
//! that `mcp dataplane` shares ([`crate::server`]).
//!
//! Data directory layout (defaults):
//! ```text
//! DATA/
//!   meta.sqlite     metadata store (unless --store-url points elsewhere)
//!   api.sqlite      API keys of the REST API (unless --api-store-url points elsewhere)
//!   blobs/          message bodies, content-addressed (unless --blob-dir or --blob-url)
//!   tls/cert.pem    self-signed certificate for localhost (unless --tls-cert/--tls-key)
//!   tls/key.pem     its private key, mode 0600
//!   apply.key       key of the account digests, mode 0600
//!   lock            held (flock) while a process serves from DATA
//!   plugins/        Unix sockets of `transport: unix` plugins, <namespace>.<name>.sock
//!   resources/      resources written through the REST API, one YAML file each
//!                   (read with --resources; see [`resources`])
//! ```
//!
//! PluginDeployments among the resources are connected to, and those with a `command` are
//! started and supervised by this process ([`crate::plugin_host`]); `GET
//! /internal/v1/plugins` on the metrics listener reports them.

pub mod apply;
pub mod config;
pub mod quarantine;
pub mod resources;

use tokio_util::sync::CancellationToken;

use crate::pipeline::Pipelines;
use crate::pipeline::reload::{LoadError, Source};
use crate::plugin_host::{HostMode, HostSettings, PluginHost};
use crate::server::{self, Imap, Listen, Listeners, Mode, ServerError};

pub use crate::server::BoundAddrs;
pub use apply::ApplyError;
pub use config::{Config, ConfigError, Settings};

/// File name of the digest key inside the data directory.
pub const DIGEST_KEY_FILE: &str = "apply.key";

/// Why the standalone server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The resources are unreadable or invalid, or could not be applied.
    #[error("resources: {0}")]
    Apply(#[from] ApplyError),
    /// A Pipeline among the resources does not compile.
    #[error("pipelines: {0}")]
    Pipelines(#[from] LoadError),
    /// The data directory, a listener, the store, TLS or a server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The API key database could not be opened.
    #[error("API key store: {0}")]
    ApiStore(#[from] mcp_api::store::StoreError),
    /// The bootstrap admin key could not be set up (`--bootstrap-key-file`, the database).
    #[error("bootstrap admin key: {0}")]
    Bootstrap(#[from] mcp_api::bootstrap::BootstrapError),
    /// The OIDC issuer of `--oidc-config` could not be discovered or has no usable key.
    #[error("--oidc-config: {0}")]
    Oidc(#[from] mcp_api::auth::oidc::OidcError),
}

/// Runs the standalone server until Ctrl-C or SIGTERM, then shuts down cleanly.
///
/// # Errors
/// [`StandaloneError`] for anything that prevents start-up (naming the setting, file or
/// resource), or a server that fails while running.
pub async fn run(config: Config) -> Result<(), StandaloneError> {
    server::until_signal(|shutdown| run_until(config, shutdown, |_| {})).await
}

/// Like [`run`], but stops when `shutdown` is cancelled (not on signals), and calls `ready`
/// with the bound addresses once every listener accepts connections.
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    config: Config,
    shutdown: CancellationToken,
    ready: impl FnOnce(BoundAddrs),
) -> Result<(), StandaloneError> {
    // Validate the resources (--resources and the REST API's DATA/resources/) before
    // touching the store, so a typo fails fast.
    let (set, loaded) = resources::read_all(&config.resources, &config.data_dir)?;
    let (tenants, mailboxes, secrets) = set.counts();
    tracing::info!(dir = %config.resources.display(), tenants, mailboxes, secrets, "resources read");
    let pipeline_source = Source::Dirs(vec![
        config.resources.clone(),
        config.data_dir.join(resources::REST_DIR),
    ]);
    let plugins = PluginHost::new(
        HostMode::Standalone {
            data_dir: config.data_dir.clone(),
        },
        HostSettings::default(),
    );
    let (pipelines, plan) = pipeline_source.load(&plugins)?;
    for why in pipelines.ignored() {
        tracing::warn!("{why}");
    }
    tracing::info!(pipelines = pipelines.loaded().len(), "pipelines loaded");

    let _lock = server::lock_data_dir(&config.data_dir, config.blobs.dir())?;
    let listeners = Listeners::bind(
        Listen {
            field: "--imap",
            addr: config.imap,
        },
        Listen {
            field: "--imaps",
            addr: config.imaps,
        },
        Listen {
            field: "--lmtp",
            addr: config.lmtp,
        },
        Listen {
            field: "--metrics",
            addr: config.metrics,
        },
    )
    .await?;
    let rest_listener = server::bind("--rest", config.rest).await?;
    let mut bound = listeners.bound;
    bound.rest = Some(server::bound_addr("--rest", &rest_listener, config.rest)?);

    let key = apply::DigestKey::load_or_create(&config.data_dir.join(DIGEST_KEY_FILE))?;
    let accounts = apply::desired_accounts(&set, &key)?;
    let tenant_quotas = apply::tenant_quotas(&set)?;

    let (store, blobs) = server::open_storage(&config.store_url, &config.blobs).await?;
    apply::apply_tenant_quotas(&store, &tenant_quotas).await?;
    let report = apply::apply(&store, &accounts).await?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        "resources applied"
    );

    let backend = resources::ResourceStore::new(
        loaded,
        key,
        resources::Stores {
            meta: store.clone(),
            blobs: blobs.clone(),
            plugins: std::sync::Arc::clone(&plugins),
        },
    );
    let facade = mcp_api::facade::open(
        &mcp_api::facade::FacadeSettings {
            api_store_url: config.api_store_url.clone(),
            bootstrap_key_file: config.bootstrap_key_file.clone(),
            rate_limit: config.rest_rate_limit,
            oidc: config.oidc.clone(),
        },
        std::sync::Arc::new(backend),
    )
    .await
    .map_err(|e| match e {
        mcp_api::facade::FacadeError::Store(e) => StandaloneError::ApiStore(e),
        mcp_api::facade::FacadeError::Bootstrap(e) => StandaloneError::Bootstrap(e),
        mcp_api::facade::FacadeError::Oidc(e) => StandaloneError::Oidc(e),
    })?;
    let (rest_router, api_keys) = (facade.router, facade.keys);
    let rest_shutdown = shutdown.clone();
    let extra: Vec<server::Extra> = vec![(
        "rest",
        Box::pin(async move {
            axum::serve(rest_listener, rest_router)
                .with_graceful_shutdown(async move { rest_shutdown.cancelled_owned().await })
                .await
        }),
    )];

    let acceptor = server::tls_acceptor(config.tls.clone()).await?;
    // Plugin processes start once nothing can fail any more before serving.
    plugins.commit(plan);
    let imap = Imap {
        listeners,
        store,
        blobs,
        acceptor,
        idle_keepalive_secs: config.idle_keepalive_secs,
        orphan_gc: config.orphan_gc,
        pipelines: Pipelines::new(pipelines),
        pipeline_source: Some(pipeline_source),
        plugins: std::sync::Arc::clone(&plugins),
    };
    let served = server::serve(Mode::Standalone, imap, extra, bound, shutdown, ready).await;
    plugins.shutdown().await;
    api_keys.close().await;
    served?;
    Ok(())
}
