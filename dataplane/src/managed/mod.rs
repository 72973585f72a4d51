//! The managed mode, `mcp dataplane --config FILE`: one Tenant's dataplane, configured by
//! the file the operator renders ([`config`]) and provisioned by the operator through the
//! admin API ([`crate::admin`]) (DESIGN.md §1, "Kubernetes").
//!
//! [`run`] does, in order: lock the data directory, bind the IMAP (STARTTLS), IMAPS, LMTP, metrics
//! and admin listeners, load or create the digest key, open the store and blob directory,
//! load both certificates, and serve until Ctrl-C (SIGINT) or SIGTERM; open IMAP sessions
//! are told `* BYE`. The steps are the server assembly `mcp standalone` uses
//! ([`crate::server`]); only the configuration and the admin API differ.
//!
//! Data directory layout:
//! ```text
//! DATA/
//!   meta.sqlite     metadata store with embedded storage (storeUrl)
//!   blobs/          message bodies, content-addressed (blobDir; none with s3)
//!   apply.key       key of the account digests, mode 0600
//!   lock            held (flock) while a process serves from DATA
//! ```

pub mod config;

use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin};
use crate::pipeline::reload::{LoadError, Source};
use crate::pipeline::{PipelineSet, Pipelines};
use crate::plugin_host::{HostMode, HostSettings, Plan, PluginHost};
use crate::server::{self, BoundAddrs, Extra, Imap, Listeners, Mode, ServerError};
use crate::standalone::DIGEST_KEY_FILE;
use crate::standalone::apply::{ApplyError, DigestKey};

pub use config::{Config, ConfigError, Overrides};

/// Why `mcp dataplane` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The configuration file or a flag is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The digest key in the data directory cannot be read or written.
    #[error("digest key: {0}")]
    DigestKey(#[from] ApplyError),
    /// The Pipelines file does not compile.
    #[error("pipelines: {0}")]
    Pipelines(#[from] LoadError),
    /// The data directory, a listener, the store, TLS or a server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Runs the dataplane until Ctrl-C or SIGTERM, then shuts down cleanly.
///
/// # Errors
/// [`DataplaneError`] for anything that prevents start-up (naming the field, file or
/// listener), or a server that fails while running.
pub async fn run(config: Config) -> Result<(), DataplaneError> {
    server::until_signal(|shutdown| run_until(config, shutdown, |_| {})).await
}

/// Like [`run`], but stops when `shutdown` is cancelled (not on signals), and calls `ready`
/// with the bound addresses (`admin` set) once every listener accepts connections.
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    config: Config,
    shutdown: CancellationToken,
    ready: impl FnOnce(BoundAddrs),
) -> Result<(), DataplaneError> {
    tracing::info!(
        file = %config.file.display(),
        tenant = %config.tenant,
        domains = ?config.domains,
        data_dir = %config.data_dir.display(),
        "configuration loaded"
    );

    let _lock = server::lock_data_dir(&config.data_dir, config.blobs.dir())?;
    let listeners = Listeners::bind(config.imap, config.imaps, config.lmtp, config.metrics).await?;
    let admin_listener = server::bind(config.admin.field, config.admin.addr).await?;
    let bound = BoundAddrs {
        admin: Some(server::bound_addr(
            config.admin.field,
            &admin_listener,
            config.admin.addr,
        )?),
        ..listeners.bound
    };

    let pipeline_source = config.pipelines.clone().map(|path| Source::File {
        path,
        tenant: config.tenant.clone(),
    });
    let plugins = PluginHost::new(
        HostMode::Managed {
            socket_dir: config.plugin_socket_dir.clone(),
            client_tls_dir: config.plugin_client_tls_dir.clone(),
            service_connect_host: config.plugin_service_host.clone(),
        },
        HostSettings::default(),
    );
    let (pipelines, plan) = match &pipeline_source {
        Some(source) => source.load(&plugins)?,
        None => (PipelineSet::default(), Plan::empty(false)),
    };
    let pipelines = Pipelines::new(pipelines);

    let key = DigestKey::load_or_create(&config.data_dir.join(DIGEST_KEY_FILE))?;
    let (store, blobs) = server::open_storage(config.store_url.expose(), &config.blobs).await?;
    store
        .set_tenant_quota(&config.tenant, config.tenant_storage_quota)
        .await
        .map_err(ServerError::Store)?;
    let acceptor = server::tls_acceptor(config.tls.clone()).await?;
    let admin_acceptor = server::tls_acceptor(config.admin_tls.clone()).await?;

    let router = admin::router(
        Admin {
            store: store.clone(),
            blobs: blobs.clone(),
            tenant: config.tenant.clone(),
            domains: config.domains.clone(),
            key,
            pipelines: std::sync::Arc::clone(&pipelines),
            plugins: std::sync::Arc::clone(&plugins),
        },
        config.admin_token.clone(),
    );
    let extra: Vec<Extra> = vec![(
        "admin",
        Box::pin(admin::serve(
            admin_listener,
            admin_acceptor,
            router,
            shutdown.clone(),
        )),
    )];
    let imap = Imap {
        listeners,
        store,
        blobs,
        acceptor,
        idle_keepalive_secs: crate::imap::Limits::default().idle_keepalive_secs,
        orphan_gc: crate::store::gc::Schedule::default(),
        pipelines,
        pipeline_source,
        plugins: std::sync::Arc::clone(&plugins),
    };
    plugins.commit(plan);
    let served = server::serve(Mode::Dataplane, imap, extra, bound, shutdown, ready).await;
    plugins.shutdown().await;
    served?;
    Ok(())
}
