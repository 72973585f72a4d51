//! The plugin host: how pipeline steps reach external plugins (PluginDeployments) over
//! gRPC `mcp.plugin.v1.MailProcessor` (DESIGN.md §4, docs/plugin-host.md).
//!
//! - [`endpoint`]: where a PluginDeployment is reached in each mode (loopback TCP, a Unix
//!   socket, or mutual TLS to a Service) and the channel to it.
//! - [`negotiate`]: `Initialize` — protocol version, granted capabilities, body mode and
//!   size limit, refused step configs.
//! - [`connection`]: one shared connection per PluginDeployment: health gating,
//!   reconnects with backoff, circuit breaker, deadlines.
//! - [`external`]: [`ExternalPlugin`], the [`mcp_plugin_api::Plugin`] a compiled step calls.
//! - [`config`]: a step's config merged over the PluginDeployment's default (RFC 7386).
//! - [`supervise`]: standalone only, the plugin processes the dataplane starts itself.
//! - [`breaker`], [`backoff`]: the small state machines the connection uses.
//! - [`metrics`]: the `mcp_plugin_*` families.
//!
//! [`PluginHost`] holds the connections by `(namespace, name)`. A reload goes in two steps
//! so that a configuration that does not compile changes nothing: [`PluginHost::plan`]
//! resolves the new PluginDeployments (reusing the connection of each unchanged one) and
//! is handed to the pipeline compiler ([`Plan`] implements
//! [`ExternalPlugins`](crate::pipeline::compile::ExternalPlugins)); only when the whole set
//! compiled does [`PluginHost::commit`] start the new connections (and processes), update
//! the step configs of the kept ones, and retire the removed or changed ones (`Shutdown`
//! RPC, then the process is stopped).
//!
//! A suspended PluginDeployment (`spec.suspend`) is checked like any other (fields, port,
//! the stages and configs of the steps that call it) but gets no connection and no process:
//! suspending a running one retires it as a removed one is, and the compiler marks its
//! steps skipped ([`Resolved::Suspended`]). [`PluginHost::state`] lists it with phase
//! `suspended`. Resuming it starts a new connection (and process) as for a new one.

pub mod backoff;
pub mod breaker;
pub mod config;
pub mod connection;
pub mod endpoint;
pub mod external;
pub mod metrics;
pub mod negotiate;
pub mod supervise;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mcp_crds::PluginDeployment;
use mcp_crds::dataplane::{PluginPhase, PluginState, PluginsState};
use mcp_crds::plugin::{BodyMode, PluginDeploymentSpec};
use mcp_plugin_proto::v1;

use crate::pipeline::compile::{
    ExternalError, ExternalPlugins, ExternalStep, Resolved, stage_name,
};

pub use connection::Connection;
pub use endpoint::{Endpoint, HostMode};
pub use external::{ExternalPlugin, withheld_key};
pub use metrics::PluginMetrics;
use supervise::Supervisor;

/// Timings of the plugin host. [`Default`] is what the servers use; tests shorten them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// Longest connection attempt (TCP or Unix connect, TLS handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// Longest `Initialize`. Default 10 s.
    pub initialize_timeout: Duration,
    /// Longest `Shutdown` when a plugin is removed or the dataplane stops. Default 2 s.
    pub shutdown_timeout: Duration,
    /// First reconnect delay, doubling with jitter. Default 100 ms.
    pub reconnect_base: Duration,
    /// Longest reconnect delay. Default 10 s.
    pub reconnect_max: Duration,
    /// Consecutive failed calls that open the circuit breaker. Default 5.
    pub breaker_threshold: u32,
    /// How long the breaker first stays open; doubles after each failed probe. Default 1 s.
    pub breaker_open: Duration,
    /// Longest open period. Default 30 s.
    pub breaker_open_max: Duration,
    /// First restart delay of a supervised process, doubling with jitter. Default 500 ms.
    pub restart_base: Duration,
    /// Longest restart delay. Default 30 s.
    pub restart_max: Duration,
    /// A run at least this long resets the restart delay. Default 30 s.
    pub restart_stable: Duration,
    /// Time between SIGTERM and SIGKILL when stopping a supervised process. Default 5 s.
    pub stop_grace: Duration,
    /// Longest wait, when a reload removes or changes a PluginDeployment, for the messages
    /// still running the previous pipeline set to finish their calls to it before it is
    /// retired. Default 60 s.
    pub retire_drain: Duration,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            initialize_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(2),
            reconnect_base: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_open: Duration::from_secs(1),
            breaker_open_max: Duration::from_secs(30),
            restart_base: Duration::from_millis(500),
            restart_max: Duration::from_secs(30),
            restart_stable: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            retire_drain: Duration::from_secs(60),
        }
    }
}

/// A PluginDeployment that cannot be used. Names the resource and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("PluginDeployment {namespace}/{name}: {message}")]
pub struct PlanError {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The field and what is wrong with it (`spec.port: ...`).
    pub message: String,
}

type Key = (String, String);

struct Entry {
    conn: Arc<Connection>,
    supervisor: Option<Supervisor>,
}

/// The dataplane's connections to its external plugins.
pub struct PluginHost {
    mode: HostMode,
    settings: Arc<HostSettings>,
    metrics: PluginMetrics,
    entries: Mutex<BTreeMap<Key, Entry>>,
    /// The suspended PluginDeployments in force, with their endpoint (for [`Self::state`]).
    suspended: Mutex<BTreeMap<Key, Endpoint>>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

struct Planned {
    conn: Arc<Connection>,
    reused: bool,
    steps: Mutex<Vec<v1::StepConfig>>,
}

/// The PluginDeployments of a configuration being loaded, resolved but not started; the
/// pipeline compiler asks it for each external step ([`ExternalPlugins`]).
pub struct Plan {
    planned: BTreeMap<Key, Planned>,
    /// Suspended PluginDeployments: their spec (to check the steps that call them) and
    /// endpoint.
    suspended: BTreeMap<Key, (PluginDeploymentSpec, Endpoint)>,
    strict: bool,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("deployments", &self.planned.keys().collect::<Vec<_>>())
            .field("suspended", &self.suspended.keys().collect::<Vec<_>>())
            .field("strict", &self.strict)
            .finish()
    }
}

impl Plan {
    /// A plan without PluginDeployments; `strict`: a step naming one is an error.
    pub fn empty(strict: bool) -> Self {
        Self {
            planned: BTreeMap::new(),
            suspended: BTreeMap::new(),
            strict,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Checks that `spec` declares every stage of `step`'s Pipeline, and merges the step's
/// config over its default.
fn step_config(
    spec: &PluginDeploymentSpec,
    step: &ExternalStep<'_>,
) -> Result<config::StepConfig, ExternalError> {
    if let Some(stage) = step.stages.iter().find(|s| !spec.stages.contains(s)) {
        return Err(ExternalError {
            field: ".plugin.name",
            message: format!(
                "PluginDeployment {:?} does not declare stage {} (spec.stages: {})",
                step.deployment,
                stage_name(*stage),
                spec.stages
                    .iter()
                    .map(|s| stage_name(*s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    config::merged(spec.default_config.as_ref(), step.config).map_err(|message| ExternalError {
        field: ".config",
        message,
    })
}

impl ExternalPlugins for Plan {
    fn plugin(&self, step: &ExternalStep<'_>) -> Result<Resolved, ExternalError> {
        let key = (step.namespace.to_owned(), step.deployment.to_owned());
        if let Some((spec, _)) = self.suspended.get(&key) {
            step_config(spec, step)?;
            return Ok(Resolved::Suspended);
        }
        let Some(p) = self.planned.get(&key) else {
            if self.strict {
                return Err(ExternalError {
                    field: ".plugin.name",
                    message: format!(
                        "no PluginDeployment {:?} in namespace {:?}",
                        step.deployment, step.namespace
                    ),
                });
            }
            return Ok(Resolved::Unknown);
        };
        let config = step_config(p.conn.spec(), step)?;
        let pipeline = format!("{}/{}", step.namespace, step.pipeline);
        lock(&p.steps).push(v1::StepConfig {
            pipeline: pipeline.clone(),
            step: step.step.to_owned(),
            config_id: config.id.clone(),
            config_json: config.json.clone(),
        });
        Ok(Resolved::Plugin(Arc::new(ExternalPlugin::new(
            Arc::clone(&p.conn),
            pipeline,
            step.step.to_owned(),
            config,
            step.timeout,
        ))))
    }
}

/// Checks what the API server's schema and CEL rules check in Kubernetes (standalone has
/// no API server), and what only a dataplane can (`valueFrom` in standalone).
fn validate(mode: &HostMode, spec: &PluginDeploymentSpec) -> Result<(), String> {
    let p = &spec.protocol;
    if p.min < 1 || p.min > p.max {
        return Err(format!(
            "spec.protocol: min {} and max {} must satisfy 1 <= min <= max",
            p.min, p.max
        ));
    }
    let mut stages = spec.stages.clone();
    stages.sort();
    stages.dedup();
    if spec.stages.is_empty() || stages.len() != spec.stages.len() {
        return Err("spec.stages: 1 to 3 stages, each at most once".into());
    }
    if spec.max_body_size.is_some()
        && !matches!(spec.body_mode, BodyMode::Buffered | BodyMode::Streamed)
    {
        return Err("spec.maxBodySize: only allowed with bodyMode buffered or streamed".into());
    }
    negotiate::spec_max_body_size(spec)?;
    if let HostMode::Standalone { .. } = mode {
        if let Some(i) = spec.env.iter().position(|e| e.value_from.is_some()) {
            return Err(format!(
                "spec.env[{i}].valueFrom: not supported in standalone mode (there are no Secrets or ConfigMaps to read); set value"
            ));
        }
        if spec.command.first().is_some_and(String::is_empty) {
            return Err("spec.command[0]: must not be empty".into());
        }
    }
    Ok(())
}

impl PluginHost {
    /// A host with no plugin yet.
    pub fn new(mode: HostMode, settings: HostSettings) -> Arc<Self> {
        Arc::new(Self {
            mode,
            settings: Arc::new(settings),
            metrics: PluginMetrics::default(),
            entries: Mutex::new(BTreeMap::new()),
            suspended: Mutex::new(BTreeMap::new()),
        })
    }

    /// Where the host runs.
    pub fn mode(&self) -> &HostMode {
        &self.mode
    }

    /// The `mcp_plugin_*` families, to register in the dataplane's registry.
    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    /// Resolves `deployments` for the next configuration without starting anything: each
    /// unchanged one (same spec, same endpoint) keeps its connection. `strict`: a step
    /// naming a PluginDeployment that is not among them is a compile error (standalone);
    /// otherwise it fails at call time as unavailable (managed: the operator reports it).
    ///
    /// # Errors
    /// [`PlanError`] for a PluginDeployment without name or namespace, defined twice, or
    /// with a field that cannot be used.
    pub fn plan(&self, deployments: &[PluginDeployment], strict: bool) -> Result<Plan, PlanError> {
        let entries = lock(&self.entries);
        let mut planned = BTreeMap::new();
        let mut suspended = BTreeMap::new();
        // Loopback ports already taken by a planned sidecar: two plugins cannot listen on
        // one port, and the host would reach the same process for both.
        let mut ports: BTreeMap<std::net::SocketAddr, (String, String)> = BTreeMap::new();
        for d in deployments {
            let namespace = d.metadata.namespace.clone().unwrap_or_default();
            let name = d.metadata.name.clone().unwrap_or_default();
            let err = |message: String| PlanError {
                namespace: namespace.clone(),
                name: name.clone(),
                message,
            };
            if namespace.is_empty() || name.is_empty() {
                return Err(err("metadata: name and namespace are required".into()));
            }
            let key = (namespace.clone(), name.clone());
            if planned.contains_key(&key) || suspended.contains_key(&key) {
                return Err(err("metadata.name: defined twice".into()));
            }
            validate(&self.mode, &d.spec).map_err(err)?;
            let endpoint =
                endpoint::resolve(&self.mode, &namespace, &name, &d.spec).map_err(err)?;
            if let Endpoint::Tcp(addr) = &endpoint {
                if let Some((ns, other)) = ports.get(addr) {
                    return Err(err(format!(
                        "spec.port: {} is already the port of PluginDeployment {ns}/{other}; give each plugin a port of its own",
                        addr.port()
                    )));
                }
                // A suspended sidecar keeps its port: resuming it must not take another's.
                ports.insert(*addr, (namespace.clone(), name.clone()));
            }
            if d.spec.suspend {
                suspended.insert(key, (d.spec.clone(), endpoint));
                continue;
            }
            let kept = entries
                .get(&key)
                .filter(|e| *e.conn.spec() == d.spec && *e.conn.endpoint() == endpoint)
                .map(|e| Arc::clone(&e.conn));
            let (conn, reused) = match kept {
                Some(c) => (c, true),
                None => (
                    Connection::new(
                        format!("{namespace}/{name}"),
                        endpoint,
                        d.spec.clone(),
                        Arc::clone(&self.settings),
                        self.metrics.clone(),
                    )
                    .map_err(err)?,
                    false,
                ),
            };
            planned.insert(
                key,
                Planned {
                    conn,
                    reused,
                    steps: Mutex::new(Vec::new()),
                },
            );
        }
        Ok(Plan {
            planned,
            suspended,
            strict,
        })
    }

    /// Puts `plan` in force: starts the new connections (and, standalone, the processes of
    /// those with a `command`), updates the step configs of the kept ones, and retires the
    /// rest in the background (`Shutdown`, then the process is stopped; a changed one's
    /// new process starts after its old one stopped). Call it inside the runtime.
    pub fn commit(&self, plan: Plan) {
        let supervise = matches!(self.mode, HostMode::Standalone { .. });
        let mut entries = lock(&self.entries);
        *lock(&self.suspended) = plan
            .suspended
            .into_iter()
            .map(|(key, (_, endpoint))| (key, endpoint))
            .collect();
        let mut old = std::mem::take(&mut *entries);
        for (key, planned) in plan.planned {
            let steps = match planned.steps.into_inner() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            planned.conn.set_steps(steps);
            if planned.reused
                && let Some(e) = old.remove(&key)
            {
                entries.insert(key, e);
                continue;
            }
            let drain = self.settings.retire_drain;
            let retiring = old
                .remove(&key)
                .map(|e| tokio::spawn(retire(e, Retire::Reload { drain })));
            let conn = planned.conn;
            tokio::spawn(Arc::clone(&conn).run());
            let supervisor = (supervise && !conn.spec().command.is_empty()).then(|| {
                Supervisor::spawn(Arc::clone(&conn), Arc::clone(&self.settings), retiring)
            });
            entries.insert(key, Entry { conn, supervisor });
        }
        for (_, e) in old {
            let drain = self.settings.retire_drain;
            tokio::spawn(retire(e, Retire::Reload { drain }));
        }
    }

    /// What `GET /internal/v1/plugins` answers.
    pub fn state(&self) -> PluginsState {
        let mut plugins: BTreeMap<Key, PluginState> = lock(&self.entries)
            .iter()
            .map(|((namespace, name), e)| {
                let s = e.conn.snapshot();
                let state = PluginState {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    endpoint: e.conn.endpoint().to_string(),
                    phase: s.phase,
                    negotiated_version: s.version.and_then(|v| i32::try_from(v).ok()),
                    plugin: s.plugin,
                    last_error: s.last_error,
                    restarts: s.restarts,
                };
                ((namespace.clone(), name.clone()), state)
            })
            .collect();
        for ((namespace, name), endpoint) in lock(&self.suspended).iter() {
            let state = PluginState {
                namespace: namespace.clone(),
                name: name.clone(),
                endpoint: endpoint.to_string(),
                phase: PluginPhase::Suspended,
                negotiated_version: None,
                plugin: None,
                last_error: None,
                restarts: 0,
            };
            plugins.insert((namespace.clone(), name.clone()), state);
        }
        PluginsState {
            plugins: plugins.into_values().collect(),
        }
    }

    /// Retires every plugin (`Shutdown`, then stops the supervised processes); for the
    /// dataplane's shutdown.
    pub async fn shutdown(&self) {
        let all = std::mem::take(&mut *lock(&self.entries));
        futures::future::join_all(all.into_values().map(|e| retire(e, Retire::Shutdown))).await;
    }
}

/// Why a plugin is retired.
#[derive(Clone, Copy)]
enum Retire {
    /// A reload removed or changed it: messages that took the previous pipeline set may
    /// still call it, so it keeps serving them (up to `drain`) before it is told to stop.
    Reload { drain: Duration },
    /// The dataplane stops (its listeners are already closed and drained).
    Shutdown,
}

async fn retire(e: Entry, why: Retire) {
    let reason = match why {
        Retire::Reload { drain } => {
            if !e.conn.wait_unused(drain).await {
                tracing::warn!(
                    plugin = %e.conn.label(),
                    drain_s = drain.as_secs(),
                    "messages of the previous pipeline set still call the removed plugin; retiring it anyway"
                );
            }
            "reload"
        }
        Retire::Shutdown => "shutdown",
    };
    e.conn.shutdown(reason).await;
    if let Some(s) = e.supervisor {
        s.stop().await;
    }
}

#[cfg(test)]
mod tests;
