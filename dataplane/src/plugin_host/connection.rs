//! One connection to one PluginDeployment, shared by every step that uses it and kept
//! across pipeline reloads while its spec is unchanged.
//!
//! A background task ([`Connection::run`]) connects, calls `Initialize` (see
//! [`super::negotiate`]), then watches `grpc.health.v1` (service
//! `mcp.plugin.v1.MailProcessor`, or the server as a whole, `""`, when the plugin does not
//! know that name). Calls go through only while the plugin is initialized and reports
//! `SERVING`; otherwise they fail at once with [`PluginError::Unavailable`], so the step's
//! `onError` applies without waiting for a timeout. When the connection or the health
//! stream breaks, the task reconnects with exponential backoff and jitter and calls
//! `Initialize` again; a change of the step configs also re-sends `Initialize`.
//!
//! Every call runs under the step timeout, sent as `grpc-timeout` too. A per-connection
//! [`Breaker`] counts consecutive failed calls; while it is open calls fail at once.
//! Every failure is a [`PluginError`], never a verdict.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mcp_crds::dataplane::PluginPhase;
use mcp_crds::plugin::PluginDeploymentSpec;
use mcp_plugin_api::{MessageContext, PluginError, StepOutput};
use mcp_plugin_proto::client::{CallError, Client, process_message};
use mcp_plugin_proto::convert::{CallInfo, context_to_proto};
use mcp_plugin_proto::v1;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::HostSettings;
use super::backoff::Backoff;
use super::breaker::{Admission, Breaker};
use super::endpoint::Endpoint;
use super::metrics::{PluginMetrics, phase_name};
use super::negotiate::{self, Negotiated, NegotiationError};

/// The health service name a plugin reports under.
pub const HEALTH_SERVICE: &str = "mcp.plugin.v1.MailProcessor";

/// Largest reply accepted: a replacement body (64 MiB) and the rest of the reply.
const MAX_REPLY: usize = (64 << 20) + (1 << 20);

/// What a successful call returns.
#[derive(Debug)]
pub struct Called {
    /// The checked reply: every mutation granted.
    pub output: StepOutput,
    /// The message was over the size limit, so its body was not sent (`body_withheld`).
    pub withheld: bool,
}

struct State {
    /// Connecting, Serving or NotServing; CircuitOpen is derived from the breaker.
    phase: PluginPhase,
    client: Option<Client>,
    negotiated: Option<Arc<Negotiated>>,
    last_error: Option<String>,
    breaker: Breaker,
    reported: Option<PluginPhase>,
}

impl State {
    fn effective_phase(&self, now: Instant) -> PluginPhase {
        if self.phase == PluginPhase::Serving && self.breaker.is_open(now) {
            PluginPhase::CircuitOpen
        } else {
            self.phase
        }
    }
}

/// What `GET /internal/v1/plugins` shows of a connection.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The phase, with the breaker taken into account.
    pub phase: PluginPhase,
    /// The agreed protocol version.
    pub version: Option<u32>,
    /// The plugin's `name version`.
    pub plugin: Option<String>,
    /// Why it is not serving; `None` while serving.
    pub last_error: Option<String>,
    /// Restarts of the supervised process.
    pub restarts: u32,
}

/// The shared connection to one PluginDeployment.
pub struct Connection {
    label: String,
    endpoint: Endpoint,
    offered: Result<RangeInclusive<u32>, NegotiationError>,
    spec: PluginDeploymentSpec,
    spec_max_body_size: u64,
    settings: Arc<HostSettings>,
    metrics: PluginMetrics,
    state: Mutex<State>,
    steps: watch::Sender<Arc<Vec<v1::StepConfig>>>,
    cancel: CancellationToken,
    restarts: AtomicU32,
    /// Compiled steps ([`ExternalPlugin`](super::external::ExternalPlugin)) that call this
    /// connection, in any pipeline set still in use.
    users: watch::Sender<usize>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("plugin", &self.label)
            .field("endpoint", &self.endpoint.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a session ended: the phase to show and the reason.
struct Ended {
    phase: PluginPhase,
    why: String,
}

fn connecting(why: String) -> Ended {
    Ended {
        phase: PluginPhase::Connecting,
        why,
    }
}

fn not_serving(why: String) -> Ended {
    Ended {
        phase: PluginPhase::NotServing,
        why,
    }
}

impl Connection {
    /// A connection to `endpoint` for PluginDeployment `label` (`namespace/name`) with
    /// `spec`, not yet started ([`Connection::run`]).
    ///
    /// # Errors
    /// A message naming `spec.maxBodySize` when it is not a quantity.
    pub fn new(
        label: String,
        endpoint: Endpoint,
        spec: PluginDeploymentSpec,
        settings: Arc<HostSettings>,
        metrics: PluginMetrics,
    ) -> Result<Arc<Self>, String> {
        let spec_max_body_size = negotiate::spec_max_body_size(&spec)?;
        let breaker = Breaker::new(
            settings.breaker_threshold,
            settings.breaker_open,
            settings.breaker_open_max,
        );
        Ok(Arc::new(Self {
            offered: negotiate::offered(&spec),
            label,
            endpoint,
            spec,
            spec_max_body_size,
            settings,
            metrics,
            state: Mutex::new(State {
                phase: PluginPhase::Connecting,
                client: None,
                negotiated: None,
                last_error: None,
                breaker,
                reported: None,
            }),
            steps: watch::Sender::new(Arc::new(Vec::new())),
            cancel: CancellationToken::new(),
            restarts: AtomicU32::new(0),
            users: watch::Sender::new(0),
        }))
    }

    /// `namespace/name`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where it connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The PluginDeployment's spec.
    pub fn spec(&self) -> &PluginDeploymentSpec {
        &self.spec
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Changes the state and reports a phase change to the metrics and the log.
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.lock();
        let r = f(&mut s);
        let now = s.effective_phase(Instant::now());
        if s.reported != Some(now) {
            s.reported = Some(now);
            let why = s.last_error.clone().unwrap_or_default();
            drop(s);
            self.metrics.phase(&self.label, now);
            match now {
                PluginPhase::Serving => {
                    tracing::info!(plugin = %self.label, endpoint = %self.endpoint, "plugin serving");
                }
                PluginPhase::Connecting if why.is_empty() => {
                    tracing::info!(plugin = %self.label, endpoint = %self.endpoint, "plugin connecting");
                }
                _ => tracing::warn!(
                    plugin = %self.label,
                    endpoint = %self.endpoint,
                    phase = phase_name(now),
                    error = %why,
                    "plugin not serving"
                ),
            }
        }
        r
    }

    /// Sets the step configs sent at `Initialize`; a change re-sends `Initialize` on a live
    /// connection.
    pub fn set_steps(&self, steps: Vec<v1::StepConfig>) {
        self.steps.send_if_modified(|current| {
            if **current == steps {
                false
            } else {
                *current = Arc::new(steps);
                true
            }
        });
    }

    /// Records why the plugin is not reachable (the supervisor's view: a process that
    /// exited or could not start).
    pub fn note_error(&self, why: String) {
        self.update(|s| s.last_error = Some(why));
    }

    /// Records one more compiled step calling this connection; [`Self::release_user`] when
    /// it is dropped.
    pub fn add_user(&self) {
        self.users.send_modify(|n| *n += 1);
    }

    /// Records that a compiled step calling this connection was dropped.
    pub fn release_user(&self) {
        self.users.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Waits until no compiled step calls this connection any more (the pipeline sets that
    /// named it were replaced and the messages they were running are done), for at most
    /// `limit`. Returns whether that happened in time.
    pub async fn wait_unused(&self, limit: Duration) -> bool {
        let mut users = self.users.subscribe();
        tokio::time::timeout(limit, users.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Counts one restart of the supervised process.
    pub fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.metrics.restart(&self.label);
    }

    /// The state for `GET /internal/v1/plugins`.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        let phase = s.effective_phase(Instant::now());
        Snapshot {
            phase,
            version: s.negotiated.as_ref().map(|n| n.version),
            plugin: s.negotiated.as_ref().map(|n| n.plugin.clone()),
            last_error: if phase == PluginPhase::Serving {
                None
            } else {
                s.last_error.clone()
            },
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    /// Connects and reconnects until [`Connection::shutdown`]; spawn it once.
    pub async fn run(self: Arc<Self>) {
        self.update(|_| {});
        let mut backoff = Backoff::new(self.settings.reconnect_base, self.settings.reconnect_max);
        let mut steps = self.steps.subscribe();
        let mut last_logged: Option<String> = None;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let ended = self.session(&mut steps, &mut backoff).await;
            if self.cancel.is_cancelled() {
                return;
            }
            if last_logged.as_deref() != Some(ended.why.as_str()) {
                tracing::debug!(plugin = %self.label, error = %ended.why, "plugin session ended");
                last_logged = Some(ended.why.clone());
            }
            self.update(|s| {
                s.client = None;
                s.phase = ended.phase;
                s.last_error = Some(ended.why);
            });
            let delay = backoff.next_delay();
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection, from connecting until it breaks.
    async fn session(
        &self,
        steps: &mut watch::Receiver<Arc<Vec<v1::StepConfig>>>,
        backoff: &mut Backoff,
    ) -> Ended {
        let offered = match &self.offered {
            Ok(r) => r.clone(),
            Err(e) => return not_serving(e.to_string()),
        };
        let channel = tokio::select! {
            () = self.cancel.cancelled() => return connecting("shut down".into()),
            c = self.endpoint.connect(self.settings.connect_timeout) => match c {
                Ok(c) => c,
                Err(e) => return connecting(e),
            },
        };
        // A buffered message carries its header section twice (raw and as fields) plus the
        // body (docs/plugin-protocol.md, "Message size").
        let max_request = usize::try_from(self.spec_max_body_size)
            .unwrap_or(usize::MAX)
            .saturating_mul(2)
            .saturating_add(1 << 20);
        let mut client = mcp_plugin_proto::client::client(channel.clone(), MAX_REPLY)
            .max_encoding_message_size(max_request);
        let current = steps.borrow_and_update().clone();
        let negotiated = match self.initialize(&mut client, &offered, &current).await {
            Ok(n) => n,
            Err(e) => return e,
        };
        let (mut health, first) = match watch_health(channel).await {
            Ok(v) => v,
            Err(e) => return e,
        };
        self.update(|s| {
            s.client = Some(client.clone());
            s.negotiated = Some(Arc::new(negotiated));
            s.breaker.reset();
            // The phase stays `Connecting` until the first health answer, applied just below:
            // a healthy start logs "serving" without a "not serving" warning first.
        });
        let mut status = Some(first);
        loop {
            if let Some(st) = status.take() {
                if st == ServingStatus::Serving {
                    backoff.reset();
                    self.update(|s| {
                        s.phase = PluginPhase::Serving;
                        s.last_error = None;
                    });
                } else {
                    self.update(|s| {
                        s.phase = PluginPhase::NotServing;
                        s.last_error = Some(format!("grpc.health.v1 reports {}", st.as_str_name()));
                    });
                }
            }
            tokio::select! {
                () = self.cancel.cancelled() => return connecting("shut down".into()),
                changed = steps.changed() => {
                    if changed.is_err() {
                        return connecting("shut down".into());
                    }
                    let current = steps.borrow_and_update().clone();
                    match self.initialize(&mut client, &offered, &current).await {
                        Ok(n) => self.update(|s| s.negotiated = Some(Arc::new(n))),
                        Err(e) => return e,
                    }
                }
                next = health.message() => match next {
                    Ok(Some(HealthCheckResponse { status: st })) => {
                        status = Some(ServingStatus::try_from(st).unwrap_or(ServingStatus::Unknown));
                    }
                    Ok(None) => return connecting("the grpc.health.v1 Watch stream ended".into()),
                    Err(e) => return connecting(format!("grpc.health.v1 Watch: {}", status_text(&e))),
                },
            }
        }
    }

    async fn initialize(
        &self,
        client: &mut Client,
        offered: &RangeInclusive<u32>,
        steps: &[v1::StepConfig],
    ) -> Result<Negotiated, Ended> {
        let mut request = tonic::Request::new(negotiate::request(offered, steps));
        request.set_timeout(self.settings.initialize_timeout);
        let reply =
            tokio::time::timeout(self.settings.initialize_timeout, client.initialize(request))
                .await
                .map_err(|_| connecting("Initialize: no reply in time".into()))?
                .map_err(|e| {
                    let why = format!("Initialize: {}", status_text(&e));
                    if is_transport(&e) {
                        connecting(why)
                    } else {
                        not_serving(why)
                    }
                })?
                .into_inner();
        let n = negotiate::check(offered, &self.spec, self.spec_max_body_size, reply)
            .map_err(|e| not_serving(e.to_string()))?;
        for (id, why) in &n.config_errors {
            let step = steps
                .iter()
                .filter(|s| &s.config_id == id)
                .map(|s| format!("{}/{}", s.pipeline, s.step))
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(plugin = %self.label, steps = %step, error = %why, "plugin refused a step config; that step fails");
        }
        tracing::info!(
            plugin = %self.label,
            version = n.version,
            name = %n.plugin,
            body_mode = ?n.body_mode,
            max_body_size = n.max_body_size,
            "plugin initialized"
        );
        Ok(n)
    }

    /// Calls `ProcessMessage` for `ctx` as `call`, under `timeout`.
    ///
    /// # Errors
    /// [`PluginError::Unavailable`] at once when the plugin is not initialized and serving
    /// or the breaker is open, and when the connection breaks; [`PluginError::Failed`] for
    /// a refused step config, an undeclared stage, a gRPC error status or the timeout;
    /// [`PluginError::Protocol`] for a reply that breaks the contract or carries a mutation
    /// not granted.
    pub async fn call(
        &self,
        ctx: &MessageContext,
        call: CallInfo,
        timeout: Duration,
    ) -> Result<Called, PluginError> {
        let admitted = self.update(|s| -> Result<_, (&'static str, PluginError)> {
            let (Some(client), Some(neg), PluginPhase::Serving) =
                (&s.client, &s.negotiated, s.phase)
            else {
                return Err((
                    "unavailable",
                    PluginError::Unavailable(format!(
                        "plugin {} is {}: {}",
                        self.label,
                        phase_name(s.phase),
                        s.last_error.as_deref().unwrap_or("not connected")
                    )),
                ));
            };
            if let Some(why) = neg.config_errors.get(&call.config_id) {
                return Err((
                    "config_refused",
                    PluginError::Failed(format!("the plugin refused this step's config: {why}")),
                ));
            }
            if !neg.stages.contains(&ctx.stage) {
                return Err((
                    "stage_not_declared",
                    PluginError::Failed(format!(
                        "the plugin does not declare stage {}",
                        crate::pipeline::stage_name(ctx.stage)
                    )),
                ));
            }
            match s.breaker.admit(Instant::now()) {
                Admission::Rejected => Err((
                    "circuit_open",
                    PluginError::Unavailable(format!(
                        "plugin {}: circuit open after consecutive failures",
                        self.label
                    )),
                )),
                a => Ok((client.clone(), Arc::clone(neg), a)),
            }
        });
        let (mut client, neg, admission) = match admitted {
            Ok(v) => v,
            Err((outcome, e)) => {
                self.metrics.call(&self.label, outcome, None);
                return Err(e);
            }
        };
        let outgoing = context_to_proto(ctx, call, neg.body_mode, neg.max_body_size);
        let withheld = outgoing.context.body_withheld;
        let mut guard = ProbeGuard {
            conn: self,
            armed: admission == Admission::Probe,
        };
        let started = Instant::now();
        let result =
            tokio::time::timeout(timeout, process_message(&mut client, outgoing, timeout)).await;
        guard.armed = false;
        let seconds = started.elapsed().as_secs_f64();
        let result: Result<StepOutput, (&'static str, PluginError)> = match result {
            Err(_) => Err((
                "timeout",
                PluginError::Failed(format!("no reply within {} ms", timeout.as_millis())),
            )),
            Ok(Err(CallError::Status(s))) => Err(from_status(&s)),
            Ok(Err(CallError::Protocol(p))) => Err(("protocol", p.into())),
            Ok(Ok(out)) => match neg.capabilities.first_undeclared(&out.mutations) {
                Some(m) => Err((
                    "protocol",
                    PluginError::Protocol(format!(
                        "undeclared mutation {}: not both declared by the plugin and granted by spec.capabilities",
                        m.kind()
                    )),
                )),
                None => Ok(out),
            },
        };
        self.update(|s| match &result {
            Ok(_) => s.breaker.success(),
            Err(_) => s.breaker.failure(Instant::now()),
        });
        match result {
            Ok(output) => {
                self.metrics.call(&self.label, "ok", Some(seconds));
                Ok(Called { output, withheld })
            }
            Err((outcome, e)) => {
                self.metrics.call(&self.label, outcome, Some(seconds));
                Err(e)
            }
        }
    }

    /// Stops the connection: sends `Shutdown` (best effort, bounded by the settings'
    /// `shutdown_timeout`) and ends [`Connection::run`]. Calls fail as unavailable from then
    /// on.
    pub async fn shutdown(&self, reason: &str) {
        let client = self.lock().client.clone();
        self.cancel.cancel();
        if let Some(mut c) = client {
            let t = self.settings.shutdown_timeout;
            let mut request = tonic::Request::new(v1::ShutdownRequest {
                reason: reason.to_owned(),
            });
            request.set_timeout(t);
            match tokio::time::timeout(t, c.shutdown(request)).await {
                Ok(Ok(_)) => {
                    tracing::debug!(plugin = %self.label, reason, "plugin told to shut down")
                }
                Ok(Err(e)) => {
                    tracing::debug!(plugin = %self.label, error = %status_text(&e), "Shutdown failed")
                }
                Err(_) => tracing::debug!(plugin = %self.label, "Shutdown timed out"),
            }
        }
        self.update(|s| {
            s.client = None;
            s.phase = PluginPhase::Connecting;
            s.last_error = Some(format!("removed ({reason})"));
        });
        self.metrics.forget(&self.label);
    }
}

/// Releases a half-open probe whose call was cancelled (dropped by the engine's deadline)
/// before it had an outcome, so the breaker does not wait for it for ever.
struct ProbeGuard<'a> {
    conn: &'a Connection,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.lock().breaker.probe_abandoned();
        }
    }
}

/// Watches the plugin's health: [`HEALTH_SERVICE`], or `""` when the plugin does not know
/// that name. Returns the stream and the first status.
async fn watch_health(
    channel: Channel,
) -> Result<(tonic::Streaming<HealthCheckResponse>, ServingStatus), Ended> {
    let mut client = HealthClient::new(channel);
    for service in [HEALTH_SERVICE, ""] {
        let stream = client
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(e) if e.code() == Code::NotFound && !service.is_empty() => continue,
            Err(e) => {
                let why = format!("grpc.health.v1 Watch: {}", status_text(&e));
                return Err(if is_transport(&e) {
                    connecting(why)
                } else {
                    not_serving(why)
                });
            }
        };
        let first = match stream.message().await {
            Ok(Some(r)) => ServingStatus::try_from(r.status).unwrap_or(ServingStatus::Unknown),
            Ok(None) => return Err(connecting("the grpc.health.v1 Watch stream ended".into())),
            Err(e) => {
                return Err(connecting(format!(
                    "grpc.health.v1 Watch: {}",
                    status_text(&e)
                )));
            }
        };
        if first == ServingStatus::ServiceUnknown && !service.is_empty() {
            continue;
        }
        return Ok((stream, first));
    }
    Err(not_serving(
        "grpc.health.v1: the plugin reports no health status".into(),
    ))
}

fn status_text(s: &tonic::Status) -> String {
    let mut out = format!("{:?}: {}", s.code(), s.message());
    if let Some(source) = std::error::Error::source(s) {
        out.push_str(": ");
        out.push_str(&super::endpoint::error_chain(source));
    }
    out
}

/// Whether `s` comes from the connection rather than from the plugin.
fn is_transport(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Cancelled)
        || (matches!(s.code(), Code::Unknown | Code::Internal)
            && std::error::Error::source(s).is_some())
}

/// A gRPC error status as a plugin failure: a broken connection is `Unavailable`, the
/// deadline `timeout`, anything the plugin answered `error`.
fn from_status(s: &tonic::Status) -> (&'static str, PluginError) {
    let text = status_text(s);
    if s.code() == Code::DeadlineExceeded {
        ("timeout", PluginError::Failed(text))
    } else if is_transport(s) {
        ("unavailable", PluginError::Unavailable(text))
    } else {
        ("error", PluginError::Failed(text))
    }
}
