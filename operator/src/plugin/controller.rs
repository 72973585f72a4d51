//! The PluginDeployment controller: applies a `service` plugin's children and reports whether
//! the tenant's dataplane reaches the plugin.
//!
//! The `sidecar` containers are the Tenant controller's to render (they are part of the
//! dataplane's pod template, [`super::pod`]); this controller reports on them. One
//! reconciliation:
//! 1. The verdict ([`super::verdicts`], from the cache of the namespace's PluginDeployments):
//!    a refused one (`InsecureSandbox`, `InvalidSpec`, `PortConflict`) is not rendered;
//!    `Ready=False` with the reason, a Warning Event, and a wait for a change.
//! 2. `spec.suspend`: `Suspended` (no sidecar is rendered; a `service` plugin's Deployment
//!    is applied with 0 replicas in step 4), and a wait for a change.
//! 3. A namespace of no Tenant: `NoDataplane`, and a wait for a Tenant.
//! 4. `service` mode: apply the Deployment, Service and NetworkPolicy ([`super::service`])
//!    with server-side apply (an unchanged one is a no-op on the server), and check that the
//!    two certificate Secrets exist (`SecretNotFound`). When the spec changed and the plugin
//!    is a sidecar now (or refused), delete the children it owned.
//! 5. No Pipeline of the namespace names it: `Unused` (the dataplane connects to the plugins
//!    its Pipelines name only); wait for a Pipeline.
//! 6. Ask the tenant's dataplane (`GET /internal/v1/plugins`): `Serving` is `Ready=True` with
//!    the negotiated protocol version, checked again after [`RESYNC`]; `Connecting`,
//!    `NotServing` (also an open circuit breaker) and `NoDataplane` (no answer) are checked
//!    again with backoff from [`RECHECK`] to [`RECHECK_MAX`].
//! 7. Write status only when it differs from the stored one; an Event when `Ready`'s status
//!    or reason changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use mcp_crds::dataplane::PluginPhase;
use mcp_crds::plugin::{PluginDeploymentStatus, PluginMode, service_name};
use mcp_crds::{ConditionStatus, PluginDeployment, Tenant};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{INSECURE_SANDBOX, INVALID_SPEC, PORT_CONFLICT, Refusal, of_namespace, verdicts};
use crate::conditions::{self, Observed, ready};
use crate::context::Context;
use crate::error::Error;
use crate::tenant::controller::{apply, apply_params, dataplane_client};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "plugin";
/// First delay before asking the dataplane again about a plugin that does not serve yet.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Longest delay between two such checks.
pub const RECHECK_MAX: Duration = Duration::from_secs(60);
/// How often a serving plugin is checked again (nothing in Kubernetes says when a plugin
/// stops serving).
pub const RESYNC: Duration = Duration::from_secs(60);

/// `Ready=True`: the dataplane is connected, the plugin initialized and reports `SERVING`.
pub const SERVING: &str = "Serving";
/// `Ready=False`: connected, but not `SERVING`, `Initialize` refused, or the circuit breaker
/// open.
pub const NOT_SERVING: &str = "NotServing";
/// `Ready=False`: the dataplane is connecting (or reconnecting with backoff), or does not
/// know the plugin yet (the kubelet has not updated its `pipelines.yaml`).
pub const CONNECTING: &str = "Connecting";
/// `Ready=False`: no dataplane to ask: the namespace belongs to no Tenant, or its admin API
/// does not answer.
pub const NO_DATAPLANE: &str = "NoDataplane";
/// `Ready=False`: no Pipeline of the namespace names the plugin, so no dataplane connects.
pub const UNUSED: &str = "Unused";
/// `Ready=False`: a `service` plugin's server or client certificate Secret does not exist.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
/// `Ready=False`: `spec.suspend` is `true`. No sidecar is rendered, a `service` plugin's
/// Deployment has 0 replicas, and the dataplane skips the steps that call it.
pub const SUSPENDED: &str = "Suspended";

/// The reasons that are a Warning Event.
const WARNINGS: [&str; 5] = [
    INSECURE_SANDBOX,
    INVALID_SPEC,
    PORT_CONFLICT,
    NOT_SERVING,
    SECRET_NOT_FOUND,
];

fn namespaced<K>(ctx: &Context, namespace: &str) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(ctx.client.clone(), namespace)
}

/// Deletes `name` if it exists and `plugin` controls it.
async fn delete_owned<K>(api: &Api<K>, name: &str, plugin: &PluginDeployment) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let uid = plugin.uid().unwrap_or_default();
    let Some(existing) = api.get_metadata_opt(name).await? else {
        return Ok(());
    };
    let ours = existing
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid);
    if !ours {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the `service` children `plugin` owns (a sidecar now, or refused).
async fn prune(ctx: &Context, plugin: &PluginDeployment, namespace: &str) -> Result<(), Error> {
    let name = service_name(&plugin.name_any());
    delete_owned(&namespaced::<Deployment>(ctx, namespace), &name, plugin).await?;
    delete_owned(&namespaced::<Service>(ctx, namespace), &name, plugin).await?;
    delete_owned(&namespaced::<NetworkPolicy>(ctx, namespace), &name, plugin).await
}

/// The Secrets a `service` plugin needs that do not exist, as `field name` pairs.
async fn missing_secrets(
    ctx: &Context,
    plugin: &PluginDeployment,
    namespace: &str,
) -> Result<Vec<String>, Error> {
    let Some(tls) = &plugin.spec.tls else {
        return Ok(Vec::new());
    };
    let api: Api<Secret> = namespaced(ctx, namespace);
    let mut missing = Vec::new();
    for (field, name) in [
        ("spec.tls.serverSecretRef", &tls.server_secret_ref.name),
        ("spec.tls.clientSecretRef", &tls.client_secret_ref.name),
    ] {
        if api.get_metadata_opt(name).await?.is_none() {
            missing.push(format!("{field} {name:?}"));
        }
    }
    Ok(missing)
}

/// Whether a Pipeline of `namespace` (not being deleted) names PluginDeployment `name`.
fn referenced(ctx: &Context, namespace: &str, name: &str) -> bool {
    ctx.pipelines.state().iter().any(|p| {
        p.namespace().as_deref() == Some(namespace)
            && p.meta().deletion_timestamp.is_none()
            && p.spec
                .steps
                .iter()
                .any(|s| s.plugin.name.as_deref() == Some(name))
    })
}

/// What the dataplane says about one plugin, as status.
struct Seen<'a> {
    observed: Observed<'a>,
    ready_endpoints: i32,
    negotiated_version: Option<i32>,
    action: Action,
}

/// Asks `tenant`'s dataplane about `namespace/name`.
async fn ask_dataplane<'a>(
    ctx: &Context,
    tenant: &Tenant,
    plugin: &PluginDeployment,
    namespace: &str,
    name: &str,
) -> Seen<'a> {
    let key = ObjectRef::from_obj(plugin);
    let answer = async {
        let client = dataplane_client(ctx, tenant).await?;
        Ok::<_, Error>(client.get_plugins().await?)
    }
    .await;
    let retry = |ctx: &Context| Action::requeue(ctx.plugin_recheck.failed(key.clone()));
    let state = match answer {
        Ok(state) => state,
        Err(e) => {
            ctx.dataplanes.forget(&tenant.name_any());
            return Seen {
                observed: ready(
                    ConditionStatus::False,
                    NO_DATAPLANE,
                    format!("cannot ask the dataplane about it: {e}"),
                ),
                ready_endpoints: 0,
                negotiated_version: None,
                action: retry(ctx),
            };
        }
    };
    let Some(p) = state
        .plugins
        .into_iter()
        .find(|p| p.namespace == namespace && p.name == name)
    else {
        return Seen {
            observed: ready(
                ConditionStatus::False,
                CONNECTING,
                "the dataplane does not know it yet (it reads the PluginDeployment from its \
                 pipelines.yaml once the kubelet has updated it)"
                    .to_owned(),
            ),
            ready_endpoints: 0,
            negotiated_version: None,
            action: retry(ctx),
        };
    };
    let error = p
        .last_error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let (status, reason, message) = match p.phase {
        PluginPhase::Serving => {
            ctx.plugin_recheck.succeeded(&key);
            let version = p
                .negotiated_version
                .map(|v| format!(", protocol version {v}"))
                .unwrap_or_default();
            let who = p.plugin.map(|w| format!(" ({w})")).unwrap_or_default();
            return Seen {
                observed: ready(
                    ConditionStatus::True,
                    SERVING,
                    format!("the dataplane calls it at {}{version}{who}", p.endpoint),
                ),
                ready_endpoints: 1,
                negotiated_version: p.negotiated_version,
                action: Action::requeue(RESYNC),
            };
        }
        PluginPhase::Connecting => (
            ConditionStatus::False,
            CONNECTING,
            format!("the dataplane is connecting to {}{error}", p.endpoint),
        ),
        PluginPhase::NotServing => (
            ConditionStatus::False,
            NOT_SERVING,
            format!("{} does not serve{error}", p.endpoint),
        ),
        PluginPhase::CircuitOpen => (
            ConditionStatus::False,
            NOT_SERVING,
            format!(
                "{} failed too often; the dataplane's circuit breaker is open{error}",
                p.endpoint
            ),
        ),
        // Resumed, but the dataplane has not loaded the new pipelines.yaml yet.
        PluginPhase::Suspended => (
            ConditionStatus::False,
            CONNECTING,
            "resumed; the dataplane still has it suspended (it loads the change once the \
             kubelet has updated its pipelines.yaml)"
                .to_owned(),
        ),
    };
    Seen {
        observed: ready(status, reason, message),
        ready_endpoints: 0,
        negotiated_version: p.negotiated_version,
        action: retry(ctx),
    }
}

/// Publishes an Event when `Ready`'s status or reason differs from the stored one.
async fn event_on_change(ctx: &Context, plugin: &PluginDeployment, new: &PluginDeploymentStatus) {
    let pick = |s: Option<&PluginDeploymentStatus>| {
        s.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == mcp_crds::condition::READY)
        })
        .map(|c| (c.status, c.reason.clone(), c.message.clone()))
    };
    let before = pick(plugin.status.as_ref());
    let Some((status, reason, message)) = pick(Some(new)) else {
        return;
    };
    if before
        .as_ref()
        .is_some_and(|(s, r, _)| *s == status && *r == reason)
    {
        return;
    }
    let type_ = if WARNINGS.contains(&reason.as_str()) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.event(plugin, type_, &reason, "Reconcile", message)
        .await;
}

async fn write_status(
    ctx: &Context,
    plugin: &PluginDeployment,
    status: PluginDeploymentStatus,
) -> Result<(), Error> {
    if plugin.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = plugin
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let api: Api<PluginDeployment> = namespaced(ctx, &namespace);
    Ok(conditions::apply_status(&api, &plugin.name_any(), &apply_params(), &status).await?)
}

/// The `Ready` message of a suspended PluginDeployment: what stopped, and what it means.
pub fn suspended_message(plugin: &PluginDeployment) -> String {
    let stopped = match plugin.spec.mode {
        PluginMode::Sidecar => "no sidecar is rendered in the dataplane pods".to_owned(),
        PluginMode::Service => format!(
            "Deployment {} is scaled to 0 replicas",
            service_name(&plugin.name_any())
        ),
    };
    format!(
        "spec.suspend is true: {stopped}; the dataplane skips the Pipeline steps that call it \
         (the message goes on to the next step); set spec.suspend to false to resume"
    )
}

fn refused(r: &Refusal) -> Observed<'static> {
    ready(
        ConditionStatus::False,
        r.reason,
        format!("not rendered: {}", r.message),
    )
}

async fn reconcile_inner(plugin: &PluginDeployment, ctx: &Context) -> Result<Action, Error> {
    ctx.caches_ready().await?;
    if plugin.meta().deletion_timestamp.is_some() {
        // The garbage collector removes the children; the Tenant drops the sidecar.
        return Ok(Action::await_change());
    }
    let namespace = plugin
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = plugin.name_any();
    let all = ctx.plugins.state();
    // The cache may not hold this object yet (just created): judge it alone then.
    let verdict = verdicts(&of_namespace(&all, &namespace))
        .remove(&name)
        .unwrap_or_else(|| super::check(plugin));
    let tenant = crate::pipeline::tenant_of_namespace(ctx, &namespace);
    let previous = plugin.status.clone().unwrap_or_default();
    let generation = plugin.meta().generation;
    let spec_changed = previous.observed_generation != generation;

    let service = match (&verdict, &tenant, plugin.spec.mode) {
        (Ok(()), Some(t), PluginMode::Service) => Some(super::service::build(t, plugin)),
        _ => None,
    };
    let verdict = match service {
        Some(Ok(children)) => {
            apply(&namespaced(ctx, &namespace), &children.deployment).await?;
            apply(&namespaced(ctx, &namespace), &children.service).await?;
            apply(&namespaced(ctx, &namespace), &children.network_policy).await?;
            verdict
        }
        Some(Err(r)) => Err(r),
        None => verdict,
    };
    if spec_changed && (verdict.is_err() || plugin.spec.mode == PluginMode::Sidecar) {
        prune(ctx, plugin, &namespace).await?;
    }

    let seen = match (verdict, tenant) {
        (Err(r), _) => Seen {
            observed: refused(&r),
            ready_endpoints: 0,
            negotiated_version: None,
            action: Action::await_change(),
        },
        (Ok(()), _) if plugin.spec.suspend => Seen {
            observed: ready(ConditionStatus::False, SUSPENDED, suspended_message(plugin)),
            ready_endpoints: 0,
            negotiated_version: None,
            action: Action::await_change(),
        },
        (Ok(()), None) => Seen {
            observed: ready(
                ConditionStatus::False,
                NO_DATAPLANE,
                format!(
                    "namespace {namespace:?} belongs to no Tenant: no dataplane runs the plugin"
                ),
            ),
            ready_endpoints: 0,
            negotiated_version: None,
            action: Action::await_change(),
        },
        (Ok(()), Some(tenant)) => {
            let missing = if plugin.spec.mode == PluginMode::Service {
                missing_secrets(ctx, plugin, &namespace).await?
            } else {
                Vec::new()
            };
            if !missing.is_empty() {
                Seen {
                    observed: ready(
                        ConditionStatus::False,
                        SECRET_NOT_FOUND,
                        format!(
                            "Secret(s) not found: {}; the plugin's pods cannot start, or the dataplane cannot \
                             authenticate to it",
                            missing.join(", ")
                        ),
                    ),
                    ready_endpoints: 0,
                    negotiated_version: None,
                    action: Action::requeue(ctx.plugin_recheck.failed(ObjectRef::from_obj(plugin))),
                }
            } else if !referenced(ctx, &namespace, &name) {
                Seen {
                    observed: ready(
                        ConditionStatus::False,
                        UNUSED,
                        "no Pipeline of the namespace names it, so the dataplane does not connect to it"
                            .to_owned(),
                    ),
                    ready_endpoints: 0,
                    negotiated_version: None,
                    action: Action::await_change(),
                }
            } else {
                ask_dataplane(ctx, &tenant, plugin, &namespace, &name).await
            }
        }
    };
    let status = PluginDeploymentStatus {
        observed_generation: generation,
        ready_endpoints: seen.ready_endpoints,
        negotiated_version: seen.negotiated_version,
        conditions: conditions::set(&previous.conditions, &[seen.observed], generation),
    };
    event_on_change(ctx, plugin, &status).await;
    write_status(ctx, plugin, status).await?;
    Ok(seen.action)
}

/// Reconciles one PluginDeployment (see the module documentation).
///
/// # Errors
/// A failed API call; the caller retries with backoff. A dataplane that does not answer is
/// not an error: it is reported in `Ready` and checked again.
pub async fn reconcile(plugin: Arc<PluginDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&plugin, &ctx).await;
    ctx.metrics.reconciled(
        CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    if result.is_ok() {
        ctx.plugin_backoff
            .succeeded(&ObjectRef::from_obj(plugin.as_ref()));
    }
    result
}

/// What to do after a failed reconciliation: retry with this PluginDeployment's backoff.
pub fn error_policy(plugin: Arc<PluginDeployment>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .plugin_backoff
        .failed(ObjectRef::from_obj(plugin.as_ref()));
    tracing::warn!(
        plugin = %plugin.name_any(),
        namespace = %plugin.namespace().unwrap_or_default(),
        reason = error.reason(),
        error = %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// Whether the stored `Ready` of `plugin` is `True`, and its reason and message otherwise
/// (for the Pipelines that name it).
pub fn readiness(plugin: &PluginDeployment) -> Result<(), (String, String)> {
    match plugin.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == mcp_crds::condition::READY)
    }) {
        Some(c) if c.status == ConditionStatus::True => Ok(()),
        Some(c) => Err((c.reason.clone(), c.message.clone())),
        None => Err(("Unknown".to_owned(), "not reconciled yet".to_owned())),
    }
}
