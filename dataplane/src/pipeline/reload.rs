//! The pipelines in force, and their hot reload.
//!
//! [`Pipelines`] holds one immutable [`PipelineSet`]; [`Pipelines::current`] hands out a
//! snapshot (`Arc`) that a message keeps for its whole run, so every message is processed
//! by exactly one revision of the configuration even while it changes. [`watch`] polls the
//! configuration's source and swaps in a new set when its bytes change and it compiles; a
//! change that does not load is refused with a logged reason, reported by
//! [`Pipelines::state`], and the previous set stays in force. Connections are never touched.
//!
//! Polling (by default every second, reading a few kilobytes) rather than inotify: a
//! Kubernetes ConfigMap volume changes by swapping a symlink, which file watches miss.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mcp_crds::dataplane::PipelinesState;
use mcp_crds::pipeline::PLATFORM_NAMESPACE;
use mcp_crds::{Pipeline, PluginDeployment, Resource};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::compile::{PipelineSet, compile};
use super::metrics::PipelineMetrics;
use crate::plugin_host::{Plan, PluginHost};

/// How often [`watch`] looks at the source.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// How long changed bytes must stay unchanged before [`watch`] loads them.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The pipeline set in force.
#[derive(Debug, Default)]
pub struct Pipelines {
    current: RwLock<Arc<PipelineSet>>,
    last_error: Mutex<Option<String>>,
}

impl Pipelines {
    /// Starts with `set` in force.
    pub fn new(set: PipelineSet) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(set)),
            last_error: Mutex::new(None),
        })
    }

    /// The set in force now; keep it for the whole of one message.
    pub fn current(&self) -> Arc<PipelineSet> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `set` in force and clears the last error.
    pub fn replace(&self, set: PipelineSet) {
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        self.set_error(None);
    }

    fn set_error(&self, error: Option<String>) {
        match self.last_error.lock() {
            Ok(mut g) => *g = error,
            Err(poisoned) => *poisoned.into_inner() = error,
        }
    }

    /// What is in force, and why the newest change was refused (if it was).
    pub fn state(&self) -> PipelinesState {
        let last_error = match self.last_error.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        PipelinesState {
            pipelines: self.current().loaded().to_vec(),
            last_error,
        }
    }
}

/// Why a pipeline configuration could not be loaded. The message names the file and, for
/// a Pipeline that does not compile, the resource and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Where the pipelines come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `mcp dataplane`: the `pipelines` file the operator renders (a YAML stream of
    /// Pipelines), all of one tenant except `Global` ones from the platform namespace.
    File {
        /// The file; a missing file means no pipeline.
        path: PathBuf,
        /// The dataplane's tenant.
        tenant: String,
    },
    /// `mcp standalone`: the Pipelines among the resources of directories (`--resources`
    /// and the REST API's `DATA/resources/`); tenants by namespace from the Tenants there.
    Dirs(Vec<PathBuf>),
}

impl Source {
    /// Reads the source's bytes (for change detection).
    fn fingerprint(&self) -> Result<[u8; 32], LoadError> {
        let mut h = Sha256::new();
        match self {
            Source::File { path, .. } => match std::fs::read(path) {
                Ok(b) => h.update(&b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LoadError(format!("{}: {e}", path.display()))),
            },
            Source::Dirs(dirs) => {
                for dir in dirs {
                    let mut files = Vec::new();
                    let entries = std::fs::read_dir(dir)
                        .map_err(|e| LoadError(format!("{}: {e}", dir.display())))?;
                    for entry in entries.flatten() {
                        let p = entry.path();
                        if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                            files.push(p);
                        }
                    }
                    files.sort();
                    for p in files {
                        h.update(p.as_os_str().as_encoded_bytes());
                        h.update(std::fs::read(&p).unwrap_or_default());
                    }
                }
            }
        }
        Ok(h.finalize().into())
    }

    /// Reads the PluginDeployments and Pipelines, plans the former with `host` and compiles
    /// the latter against that plan. Nothing is started: put the result in force with
    /// [`Pipelines::replace`] and [`PluginHost::commit`].
    ///
    /// # Errors
    /// [`LoadError`] naming the file and, for a resource that cannot be used, the resource
    /// and field.
    pub fn load(&self, host: &PluginHost) -> Result<(PipelineSet, Plan), LoadError> {
        let loaded = self.load_inner(host)?;
        for p in loaded.0.loaded() {
            if !p.skipped_steps.is_empty() {
                tracing::warn!(
                    pipeline = %format!("{}/{}@{}", p.namespace, p.name, p.revision),
                    steps = %p.skipped_steps.join(","),
                    "pipeline steps skipped: the PluginDeployment they call is suspended"
                );
            }
        }
        Ok(loaded)
    }

    fn load_inner(&self, host: &PluginHost) -> Result<(PipelineSet, Plan), LoadError> {
        match self {
            Source::File { path, tenant } => load_file(path, tenant, host),
            Source::Dirs(dirs) => {
                let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
                let set = crate::standalone::apply::read_dirs(&dirs)
                    .map_err(|e| LoadError(e.to_string()))?;
                let plan = host.plan(&set.plugin_deployments(), true).map_err(|e| {
                    let file = set
                        .plugin_deployment_file(&e.namespace, &e.name)
                        .map(|p| format!("{}: ", p.display()))
                        .unwrap_or_default();
                    LoadError(format!("{file}{e}"))
                })?;
                let pipelines = set.pipelines();
                let compiled =
                    compile(&pipelines, &|ns| set.tenant_of(ns), &plan).map_err(|e| {
                        let file = set
                            .pipeline_file(&e.namespace, &e.name)
                            .map(|p| format!("{}: ", p.display()))
                            .unwrap_or_default();
                        LoadError(format!("{file}{e}"))
                    })?;
                Ok((compiled, plan))
            }
        }
    }
}

/// The managed `pipelines` file: a YAML stream of PluginDeployments and Pipelines (the
/// operator renders the PluginDeployments first). A step naming a PluginDeployment that is
/// not in the file compiles and fails at call time (`onError`); the operator reports the
/// reference.
fn load_file(
    path: &Path,
    tenant: &str,
    host: &PluginHost,
) -> Result<(PipelineSet, Plan), LoadError> {
    let in_file = |e: &dyn std::fmt::Display| LoadError(format!("{}: {e}", path.display()));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((PipelineSet::default(), Plan::empty(false)));
        }
        Err(e) => return Err(in_file(&e)),
    };
    let resources = Resource::parse_stream(&text).map_err(|e| in_file(&e))?;
    let mut pipelines: Vec<Pipeline> = Vec::new();
    let mut deployments: Vec<PluginDeployment> = Vec::new();
    for r in resources {
        match r {
            Resource::Pipeline(p) => pipelines.push(*p),
            Resource::PluginDeployment(d) => deployments.push(*d),
            other => {
                return Err(LoadError(format!(
                    "{}: only PluginDeployments and Pipelines belong here, found a {}",
                    path.display(),
                    other.kind()
                )));
            }
        }
    }
    let plan = host.plan(&deployments, false).map_err(|e| in_file(&e))?;
    let tenant_of = |ns: &str| (ns != PLATFORM_NAMESPACE).then(|| tenant.to_owned());
    let set = compile(&pipelines, &tenant_of, &plan).map_err(|e| in_file(&e))?;
    Ok((set, plan))
}

/// Polls `source` every `interval` until `shutdown`; when its bytes change and then stay
/// the same for [`SETTLE`], loads it and puts the new set in force (and the new
/// PluginDeployments, through `host`), or keeps the old ones and records why. The first poll only
/// records the fingerprint of what [`Source::load`] loaded at start-up.
pub async fn watch(
    pipelines: Arc<Pipelines>,
    host: Arc<PluginHost>,
    source: Source,
    interval: Duration,
    metrics: Arc<PipelineMetrics>,
    shutdown: CancellationToken,
) {
    let fp = {
        let s = source.clone();
        tokio::task::spawn_blocking(move || s.fingerprint()).await
    };
    let mut last = fp.ok().and_then(Result::ok);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let s = source.clone();
        let polled = tokio::task::spawn_blocking(move || {
            let fp = s.fingerprint()?;
            Ok::<_, LoadError>((fp, s))
        })
        .await;
        let (fp, s) = match polled {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the pipeline configuration");
                continue;
            }
            Err(_) => continue,
        };
        if last == Some(fp) {
            continue;
        }
        // An editor that truncates and then writes (`cat new > file`) can be caught half
        // way; an empty or cut file may even parse. Load only bytes that stay put for a
        // moment; a file still changing is looked at again on the next poll.
        tokio::time::sleep(SETTLE).await;
        let s2 = s.clone();
        let settled = tokio::task::spawn_blocking(move || s2.fingerprint()).await;
        if !matches!(settled, Ok(Ok(again)) if again == fp) {
            continue;
        }
        last = Some(fp);
        let h = Arc::clone(&host);
        let loaded = tokio::task::spawn_blocking(move || s.load(&h)).await;
        match loaded {
            Ok(Ok((set, plan))) => {
                for why in set.ignored() {
                    tracing::warn!("{why}");
                }
                let revisions: Vec<String> = set
                    .loaded()
                    .iter()
                    .map(|p| format!("{}/{}@{}", p.namespace, p.name, p.revision))
                    .collect();
                host.commit(plan);
                pipelines.replace(set);
                metrics.reload(true);
                tracing::info!(pipelines = %revisions.join(","), "pipelines reloaded");
            }
            Ok(Err(e)) => {
                metrics.reload(false);
                tracing::error!(error = %e, "pipeline change refused; the previous pipelines stay in force");
                pipelines.set_error(Some(e.0));
            }
            Err(_) => {
                metrics.reload(false);
                tracing::error!("pipeline loader panicked; the previous pipelines stay in force");
            }
        }
    }
}
