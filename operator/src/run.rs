//! Assembles and runs the operator: API client, metrics endpoint, leader election and the
//! Tenant, Mailbox, Pipeline and PluginDeployment controllers (docs/operator.md, "Running the operator").
//!
//! Only the holder of the Lease reconciles. A standby serves `/healthz` and `/readyz` and
//! waits. A leader that loses its Lease exits with an error (its pod restarts as a standby)
//! rather than keep writing next to a new leader. SIGTERM or Ctrl-C stop the controllers
//! after the reconciliations in flight and release the Lease.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use mcp_crds::condition::READY;
use mcp_crds::pipeline::{PLATFORM_NAMESPACE, ScopeType};
use mcp_crds::{ConditionStatus, Mailbox, Pipeline, PluginDeployment, Tenant};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::context::{BACKOFF_BASE, BACKOFF_MAX, Context};
use crate::dataplane::Dataplanes;
use crate::pipeline::watch::{Key, reflect, spec_key};
use crate::telemetry::{self, Metrics};
use crate::tenant::{self, Options, labels, names};

/// Seconds a Lease is valid without renewal.
pub const LEASE_DURATION_SECS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECS: u64 = 5;

/// The operator's validated settings (the `mcp-operator` command line).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Image of the dataplane workloads (the operator's own image).
    pub image: String,
    /// `imagePullPolicy` of the dataplane container, if set.
    pub image_pull_policy: Option<String>,
    /// Namespace the operator runs in: its Lease lives there.
    pub namespace: String,
    /// Holder identity in the Lease (the pod name).
    pub identity: String,
    /// `/metrics`, `/healthz`, `/readyz` listen address.
    pub metrics_addr: SocketAddr,
    /// Name of the leader-election Lease; `None` runs without leader election (one replica
    /// only, e.g. in development).
    pub lease_name: Option<String>,
    /// How often a Ready Mailbox is provisioned again (usage refresh, repair).
    pub mailbox_resync: Duration,
    /// Parallel reconciliations per controller.
    pub concurrency: u16,
    /// Admin API base URL per tenant, replacing the Service's DNS name (operator outside the
    /// cluster).
    pub dataplane_endpoints: HashMap<String, String>,
    /// The REST facade (`--rest`), served by every replica; `None`: not served.
    pub rest: Option<crate::rest::RestSettings>,
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The metrics listener could not be bound.
    #[error("metrics listener {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Bind error.
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// The REST facade could not start.
    #[error("REST API: {0}")]
    Rest(#[from] crate::rest::RestError),
    /// This instance lost the Lease while reconciling.
    #[error("lost the leader Lease {0:?}; exiting so that only the new leader writes")]
    LostLease(String),
}

/// A client from the kubeconfig (or the in-cluster configuration) that counts its requests
/// in `mcp_operator_api_requests_total`.
async fn counting_client(metrics: Arc<Metrics>) -> Result<Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let count =
        tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
            metrics.api_request(
                request.method().as_str(),
                request.uri().path(),
                request.uri().query(),
            );
            request
        });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count)
        .build())
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the operator until a signal (`Ok`) or a fatal error.
///
/// # Errors
/// [`RunError`].
pub async fn run(settings: Settings) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let client = counting_client(metrics.clone()).await?;
    let version = client.apiserver_version().await?;
    tracing::info!(
        server = %format!("{}.{}", version.major, version.minor),
        identity = %settings.identity,
        namespace = %settings.namespace,
        "connected to the API server"
    );
    telemetry::serve(settings.metrics_addr, metrics.clone())
        .await
        .map_err(|source| RunError::Metrics {
            addr: settings.metrics_addr,
            source,
        })?;
    metrics.set_ready(true);

    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            stop.cancel();
        });
    }

    if let Some(rest) = &settings.rest {
        crate::rest::start(
            client.clone(),
            Dataplanes::new(settings.dataplane_endpoints.clone()),
            rest,
            stop.clone(),
        )
        .await?;
    }

    let Some(lease_name) = settings.lease_name.clone() else {
        tracing::warn!("leader election disabled: run exactly one operator");
        metrics.set_leader(true);
        run_controllers(client, &settings, metrics, stop).await;
        return Ok(());
    };

    let manager = LeaseManagerBuilder::new(client.clone(), &lease_name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(LEASE_DURATION_SECS)
        .with_grace(LEASE_GRACE_SECS)
        .with_field_manager(labels::MANAGER)
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(lease = %lease_name, "waiting for the leader Lease");
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            changed = leader.changed() => {
                if changed.is_err() {
                    return finish_lease(lease_task).await.and(Err(RunError::LostLease(lease_name)));
                }
            }
        }
    }
    tracing::info!(lease = %lease_name, "acquired the leader Lease");
    metrics.set_leader(true);

    let lost = CancellationToken::new();
    {
        let (lost, stop) = (lost.clone(), stop.clone());
        let mut leader = leader.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = leader.changed() => {
                        if changed.is_err() || !*leader.borrow_and_update() {
                            lost.cancel();
                            stop.cancel();
                            return;
                        }
                    }
                }
            }
        });
    }
    run_controllers(client, &settings, metrics.clone(), stop).await;
    metrics.set_leader(false);
    drop(leader);
    let released = finish_lease(lease_task).await;
    if lost.is_cancelled() {
        return Err(RunError::LostLease(lease_name));
    }
    released
}

async fn finish_lease(
    task: tokio::task::JoinHandle<
        Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
    >,
) -> Result<(), RunError> {
    match task.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "lease task ended abnormally");
            Ok(())
        }
    }
}

/// How long reconciliations in flight may take to finish once the operator is told to stop.
pub const CONTROLLER_DRAIN: Duration = Duration::from_secs(10);

/// What of a Tenant wakes its Mailboxes: its generation and its `Ready` status.
type TenantTrigger = (Option<i64>, Option<ConditionStatus>);

/// Whether `tenant`'s generation or `Ready` status differs from what `seen` last recorded
/// for it (and records it): a Tenant status write that changes neither wakes nobody.
fn tenant_changed(seen: &Mutex<HashMap<String, TenantTrigger>>, tenant: &Tenant) -> bool {
    let ready = tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| c.status);
    let key = (tenant.meta().generation, ready);
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tenant.name_any(), key)
        != Some(key)
}

/// What of a PluginDeployment matters to the others: its spec key, and its `Ready` status
/// and reason (which a Pipeline naming it reports).
type PluginKey = (Key, Option<(ConditionStatus, String)>);

fn plugin_key(p: &PluginDeployment) -> PluginKey {
    let ready = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| (c.status, c.reason.clone()));
    (spec_key(p), ready)
}

/// Only the children the operator made (label `app.kubernetes.io/managed-by`).
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER))
}

/// The Tenant that controls `child` (its controller owner reference), as a cluster-scoped
/// reference.
///
/// `Controller::owns` would give the Tenant the child's namespace (kube-runtime copies it from
/// the child), and `Tenant/acme` and `Tenant/acme.mcp-acme` are different keys of the
/// scheduler: one Tenant could be reconciled twice at once, and each requeue ran twice.
pub fn owning_tenant<K: Resource>(child: K) -> Option<ObjectRef<Tenant>> {
    child
        .owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == Tenant::kind(&())
                && o.api_version == Tenant::api_version(&())
        })
        .map(|o| ObjectRef::new(&o.name))
}

/// The Tenants whose `pipelines.yaml` depends on the Pipelines and PluginDeployments of
/// `namespace`: those whose namespace it is (one, unless two claim it), and every Tenant for
/// the platform namespace, whose `Global` Pipelines are rendered for all of them.
fn tenants_in(tenants: &reflector::Store<Tenant>, namespace: &str) -> Vec<ObjectRef<Tenant>> {
    tenants
        .state()
        .iter()
        .filter(|t| {
            namespace == PLATFORM_NAMESPACE
                || names::namespace(t).ok().as_deref() == Some(namespace)
        })
        .map(|t| ObjectRef::new(&t.name_any()))
        .collect()
}

/// Runs the controllers until `stop` is cancelled.
async fn run_controllers(
    client: Client,
    settings: &Settings,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let all = watcher::Config::default;
    // Pipelines and PluginDeployments: caches that wake the Tenant (render) and the Pipelines
    // concerned once they hold the change (pipeline/watch.rs).
    let (pipelines, pipelines_writer) = reflector::store::<Pipeline>();
    let (plugins, plugins_writer) = reflector::store::<PluginDeployment>();
    let (wake_tenant, tenant_wakes) = futures::channel::mpsc::unbounded::<ObjectRef<Tenant>>();
    let (wake_pipeline, pipeline_wakes) =
        futures::channel::mpsc::unbounded::<ObjectRef<Pipeline>>();
    let (wake_plugin, plugin_wakes) =
        futures::channel::mpsc::unbounded::<ObjectRef<PluginDeployment>>();
    // Children map to their Tenant with `owning_tenant`, not `owns`: see there.
    let tenant_ctrl = Controller::new(Api::<Tenant>::all(client.clone()), all())
        .watches(
            Api::<Namespace>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<StatefulSet>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<Deployment>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<Service>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<NetworkPolicy>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        .watches(
            Api::<PodDisruptionBudget>::all(client.clone()),
            managed(),
            owning_tenant,
        )
        // The issued Secrets: one deleted by hand is issued again at once, not at the next
        // reconciliation for another reason (the pod cannot start without it).
        .watches(Api::<Secret>::all(client.clone()), managed(), owning_tenant)
        // Mailbox changes move the tenant's counts; the debounce folds a burst into one pass.
        .watches(Api::<Mailbox>::all(client.clone()), all(), |m| {
            Some(ObjectRef::<Tenant>::new(&m.spec.tenant))
        })
        // A Pipeline or PluginDeployment of its namespace changed: render again.
        .reconcile_on(tenant_wakes)
        .with_config(
            controller::Config::default()
                .debounce(Duration::from_secs(1))
                .concurrency(settings.concurrency),
        );
    let mailbox_ctrl = Controller::new(Api::<Mailbox>::all(client.clone()), all())
        .with_config(controller::Config::default().concurrency(settings.concurrency));
    let tenants = tenant_ctrl.store();
    let mailboxes = mailbox_ctrl.store();

    // A Pipeline's spec, labels or existence changed: its Tenant renders again (every Tenant
    // for one of the platform namespace, which may be Global), and the other
    // TenantDefault Pipelines of its namespace are validated again (ScopeConflict).
    let pipeline_events = {
        let (tenants, pipelines, plugins) = (tenants.clone(), pipelines.clone(), plugins.clone());
        let (wake_tenant, wake_pipeline, wake_plugin) = (
            wake_tenant.clone(),
            wake_pipeline.clone(),
            wake_plugin.clone(),
        );
        reflect(
            Api::<Pipeline>::all(client.clone()),
            pipelines_writer,
            spec_key::<Pipeline>,
            move |changed: &ObjectRef<Pipeline>, _, _| {
                let namespace = changed.namespace.clone().unwrap_or_default();
                for t in tenants_in(&tenants, &namespace) {
                    let _ = wake_tenant.unbounded_send(t);
                }
                // Whether a PluginDeployment is used (`Unused`) depends on the Pipelines.
                for p in plugins.state() {
                    if p.namespace().as_deref() == Some(namespace.as_str()) {
                        let _ = wake_plugin.unbounded_send(ObjectRef::from_obj(p.as_ref()));
                    }
                }
                for p in pipelines.state() {
                    if p.namespace().as_deref() == Some(namespace.as_str())
                        && p.name_any() != changed.name
                        && p.spec.scope.type_ == ScopeType::TenantDefault
                    {
                        let _ = wake_pipeline.unbounded_send(ObjectRef::from_obj(p.as_ref()));
                    }
                }
            },
            stop.clone(),
        )
    };
    // A PluginDeployment's spec or existence changed: the Tenant renders again (sidecars,
    // pipelines.yaml) and the other PluginDeployments of the namespace are judged again
    // (PortConflict). Its spec or its readiness changed: the Pipelines naming it are
    // validated again and report PluginNotReady or not.
    let plugin_events = {
        let (tenants, pipelines, plugins) = (tenants.clone(), pipelines.clone(), plugins.clone());
        reflect(
            Api::<PluginDeployment>::all(client.clone()),
            plugins_writer,
            plugin_key,
            move |changed: &ObjectRef<PluginDeployment>, now, before: Option<&PluginKey>| {
                let namespace = changed.namespace.clone().unwrap_or_default();
                let spec_changed = match (now, before) {
                    (Some(p), Some((spec, _))) => spec_key(p) != *spec,
                    _ => true,
                };
                if spec_changed {
                    for t in tenants_in(&tenants, &namespace) {
                        let _ = wake_tenant.unbounded_send(t);
                    }
                    for p in plugins.state() {
                        if p.namespace().as_deref() == Some(namespace.as_str())
                            && p.name_any() != changed.name
                        {
                            let _ = wake_plugin.unbounded_send(ObjectRef::from_obj(p.as_ref()));
                        }
                    }
                }
                for p in pipelines.state() {
                    if p.namespace().as_deref() == Some(namespace.as_str())
                        && p.spec
                            .steps
                            .iter()
                            .any(|s| s.plugin.name.as_deref() == Some(changed.name.as_str()))
                    {
                        let _ = wake_pipeline.unbounded_send(ObjectRef::from_obj(p.as_ref()));
                    }
                }
            },
            stop.clone(),
        )
    };
    // A Tenant that appears, changes or changes readiness wakes the Pipelines of its
    // namespace (TenantNotFound; a dataplane that now answers) and the platform's Global
    // Pipelines (one more dataplane must run them).
    let pipeline_seen: Arc<Mutex<HashMap<String, TenantTrigger>>> = Arc::default();
    let by_namespace = pipelines.clone();
    let pipeline_ctrl = Controller::new(Api::<Pipeline>::all(client.clone()), all())
        .watches(
            Api::<Tenant>::all(client.clone()),
            all(),
            move |t: Tenant| {
                let changed = tenant_changed(&pipeline_seen, &t);
                let namespace = names::namespace(&t).ok();
                let wake: Vec<ObjectRef<Pipeline>> = if changed {
                    by_namespace
                        .state()
                        .iter()
                        .filter(|p| {
                            p.namespace() == namespace
                                || crate::pipeline::validate::is_platform_global(p)
                        })
                        .map(|p| ObjectRef::from_obj(p.as_ref()))
                        .collect()
                } else {
                    Vec::new()
                };
                wake
            },
        )
        .reconcile_on(pipeline_wakes)
        .with_config(controller::Config::default().concurrency(settings.concurrency));

    // A Tenant wakes its Mailboxes when its spec or its readiness changes, not on every status
    // write (the mailbox counts change with each Mailbox).
    let seen: Arc<Mutex<HashMap<String, TenantTrigger>>> = Arc::default();
    let by_tenant = mailboxes.clone();
    let by_secret = mailboxes.clone();
    let by_address = mailboxes.clone();
    let mailbox_ctrl = mailbox_ctrl
        .watches(
            Api::<Tenant>::all(client.clone()),
            all(),
            move |t: Tenant| {
                let ready = t
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
                    .map(|c| c.status);
                let key = (t.meta().generation, ready);
                let changed = seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(t.name_any(), key)
                    != Some(key);
                let name = t.name_any();
                let wake: Vec<ObjectRef<Mailbox>> = if changed {
                    by_tenant
                        .state()
                        .iter()
                        .filter(|m| m.spec.tenant == name)
                        .map(|m| ObjectRef::from_obj(m.as_ref()))
                        .collect()
                } else {
                    Vec::new()
                };
                wake
            },
        )
        // A Mailbox that appears, changes or goes wakes the others of its tenant that claim one
        // of its addresses: a Mailbox blocked by AddressConflict takes over when the owner goes.
        .watches(
            Api::<Mailbox>::all(client.clone()),
            all(),
            move |m: Mailbox| {
                let mine = crate::mailbox::claimed_addresses(&m);
                by_address
                    .state()
                    .iter()
                    .filter(|o| {
                        o.spec.tenant == m.spec.tenant
                            && (o.namespace(), o.name_any()) != (m.namespace(), m.name_any())
                            && crate::mailbox::claimed_addresses(o)
                                .iter()
                                .any(|a| mine.contains(a))
                    })
                    .map(|o| ObjectRef::from_obj(o.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // A changed password Secret re-provisions the Mailboxes that use it.
        .watches(
            Api::<Secret>::all(client.clone()),
            all(),
            move |s: Secret| {
                let (ns, name) = (s.namespace(), s.name_any());
                by_secret
                    .state()
                    .iter()
                    .filter(|m| {
                        m.namespace() == ns
                            && m.spec.credentials.secret_ref.as_ref().map(|r| &r.name)
                                == Some(&name)
                    })
                    .map(|m| ObjectRef::from_obj(m.as_ref()))
                    .collect::<Vec<_>>()
            },
        );

    // The PluginDeployment controller: its own changes, its service children (a deleted one
    // comes back), the wakes of the caches (Pipelines: used or not; neighbours: ports), and
    // a Tenant that appears, changes or changes readiness (a dataplane to ask).
    let plugin_seen: Arc<Mutex<HashMap<String, TenantTrigger>>> = Arc::default();
    let plugins_by_namespace = plugins.clone();
    let plugin_ctrl = Controller::new(Api::<PluginDeployment>::all(client.clone()), all())
        .owns(Api::<Deployment>::all(client.clone()), managed())
        .owns(Api::<Service>::all(client.clone()), managed())
        .owns(Api::<NetworkPolicy>::all(client.clone()), managed())
        .watches(
            Api::<Tenant>::all(client.clone()),
            all(),
            move |t: Tenant| {
                let changed = tenant_changed(&plugin_seen, &t);
                let namespace = names::namespace(&t).ok();
                let wake: Vec<ObjectRef<PluginDeployment>> = if changed {
                    plugins_by_namespace
                        .state()
                        .iter()
                        .filter(|p| p.namespace() == namespace)
                        .map(|p| ObjectRef::from_obj(p.as_ref()))
                        .collect()
                } else {
                    Vec::new()
                };
                wake
            },
        )
        .reconcile_on(plugin_wakes)
        .with_config(controller::Config::default().concurrency(settings.concurrency));

    let ctx = Arc::new(Context {
        client: client.clone(),
        options: Options {
            image: settings.image.clone(),
            image_pull_policy: settings.image_pull_policy.clone(),
            operator_namespace: settings.namespace.clone(),
        },
        mailbox_resync: settings.mailbox_resync,
        tenants,
        mailboxes,
        pipelines,
        plugins,
        dataplanes: Dataplanes::new(settings.dataplane_endpoints.clone()),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: labels::MANAGER.to_owned(),
                instance: Some(settings.identity.clone()),
            },
        ),
        metrics,
        tenant_backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
        dataplane_recheck: Backoff::new(
            tenant::controller::NOT_READY_RECHECK,
            tenant::controller::NOT_READY_RECHECK_MAX,
        ),
        mailbox_backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
        pipeline_backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
        pipeline_recheck: Backoff::new(
            crate::pipeline::controller::RECHECK,
            crate::pipeline::controller::RECHECK_MAX,
        ),
        plugin_backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
        plugin_recheck: Backoff::new(
            crate::plugin::controller::RECHECK,
            crate::plugin::controller::RECHECK_MAX,
        ),
    });

    let tenants = tenant_ctrl
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            tenant::controller::reconcile,
            tenant::controller::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "tenant controller");
            }
        });
    let mailboxes = mailbox_ctrl
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            crate::mailbox::reconcile,
            crate::mailbox::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "mailbox controller");
            }
        });
    let plugin_deployments = plugin_ctrl
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            crate::plugin::controller::reconcile,
            crate::plugin::controller::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "plugin controller");
            }
        });
    let pipelines = pipeline_ctrl
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            crate::pipeline::controller::reconcile,
            crate::pipeline::controller::error_policy,
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "pipeline controller");
            }
        });
    tracing::info!("controllers running");
    let all = async {
        futures::join!(
            tenants,
            mailboxes,
            pipelines,
            plugin_deployments,
            pipeline_events,
            plugin_events
        );
    };
    // Reconciliations in flight get CONTROLLER_DRAIN to finish after the stop; one that hangs
    // (a slow API server, a dataplane that never answers) must not keep the Lease, and the
    // next operator waiting for it, beyond that.
    let drain = async {
        stop.cancelled().await;
        tokio::time::sleep(CONTROLLER_DRAIN).await;
    };
    tokio::select! {
        () = all => tracing::info!("controllers stopped"),
        () = drain => tracing::warn!(
            seconds = CONTROLLER_DRAIN.as_secs(),
            "controllers did not stop in time after the stop request; leaving them"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn config_map(owners: Vec<OwnerReference>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("mcp-acme-dataplane-config".into()),
                namespace: Some("mcp-acme".into()),
                owner_references: Some(owners),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn owner(kind: &str, name: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "mcp.dev/v1alpha1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: "u-1".into(),
            controller: Some(controller),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn a_child_maps_to_its_cluster_scoped_tenant() {
        let got = owning_tenant(config_map(vec![
            owner("Mailbox", "x", false),
            owner("Tenant", "acme", true),
        ]))
        .expect("owner");
        assert_eq!(got, ObjectRef::<Tenant>::new("acme"));
        assert_eq!(got.namespace, None, "one scheduler key per Tenant");
        assert_eq!(
            owning_tenant(config_map(vec![owner("Tenant", "acme", false)])),
            None
        );
        assert_eq!(owning_tenant(config_map(vec![])), None);
    }
}
