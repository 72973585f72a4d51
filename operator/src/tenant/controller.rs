//! The Tenant controller: applies [`super::build`]'s children with server-side apply,
//! issues the Secrets of [`super::issue`], checks that the dataplane answers, and reports
//! status (docs/operator.md).
//!
//! One reconciliation:
//! 1. Build the children. A spec they cannot be built from is reported (`Ready=False`,
//!    reason `InvalidSpec`, a Warning Event) and not retried until the spec changes.
//! 2. Refuse a namespace controlled by something else (`NamespaceConflict`, checked again
//!    every [`NOT_READY_RECHECK`]).
//! 3. Add the namespace's PluginDeployments to the workload and the NetworkPolicy
//!    ([`crate::plugin::pod::inject`]: sidecars, client certificates, egress), and render
//!    the namespace's Pipelines (and the PluginDeployments they name) into the ConfigMap's
//!    `pipelines.yaml`
//!    ([`crate::pipeline::render_for`]; outside the pod-template hash, the dataplane reloads
//!    it in place).
//! 4. Apply the namespace, create the issued Secrets if missing, and apply the ConfigMap,
//!    workload, Service, NetworkPolicy and PodDisruptionBudget, all with field manager
//!    `mcp-operator` (forced). An unchanged child is a no-op on the server: no write, no new
//!    `resourceVersion`.
//! 5. When the spec changed (`metadata.generation` differs from `status.observedGeneration`),
//!    delete what is no longer wanted: the other workload kind, and the budget when one
//!    replica remains.
//! 6. Ask the dataplane's admin API whether it serves.
//! 7. Write status only when it differs from the stored one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use mcp_crds::quota::Usage;
use mcp_crds::tenant::TenantStatus;
use mcp_crds::{ConditionStatus, Tenant};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::ADMIN_TOKEN_KEY;
use super::{Children, Workload, issue, labels, names};
use crate::conditions::{self, Observed, ready};
use crate::context::Context;
use crate::dataplane::{AdminCredentials, DataplaneClient, Dataplanes};
use crate::error::Error;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "tenant";
/// How soon a Tenant whose dataplane does not answer yet is checked again the first time (the
/// delay doubles with each unanswered check up to [`NOT_READY_RECHECK_MAX`]; the workload's
/// status changes when its pods become ready, and that wakes the Tenant at once), and how
/// often a Tenant whose namespace is someone else's is checked again.
pub const NOT_READY_RECHECK: Duration = Duration::from_secs(15);
/// Longest delay between two checks of a dataplane that does not answer.
pub const NOT_READY_RECHECK_MAX: Duration = Duration::from_secs(300);

/// Server-side apply with the operator's one field manager, taking ownership of conflicting
/// fields (the operator is the authority on its children).
pub fn apply_params() -> PatchParams {
    PatchParams::apply(labels::MANAGER).force()
}

/// Applies `object` (which names itself) with [`apply_params`].
///
/// # Errors
/// The API server's refusal.
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
}

fn namespaced<K>(ctx: &Context, namespace: &str) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(ctx.client.clone(), namespace)
}

/// Deletes `name` if it exists; a missing object is success.
async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `secret` unless a Secret of that name exists; returns the stored one.
async fn ensure_issued(api: &Api<Secret>, secret: Secret) -> Result<Secret, Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await? {
        return Ok(existing);
    }
    match api.create(&PostParams::default(), &secret).await {
        Ok(created) => Ok(created),
        // Created concurrently (a previous leader): use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(api.get(&name).await?),
        Err(e) => Err(e.into()),
    }
}

/// The admin credentials in the admin Secret.
///
/// # Errors
/// [`Error::IssuedSecret`] when a key is missing or the token is not UTF-8.
pub fn admin_credentials(secret: &Secret) -> Result<AdminCredentials, Error> {
    let bad = |message: &str| Error::IssuedSecret {
        namespace: secret.namespace().unwrap_or_default(),
        name: secret.name_any(),
        message: message.to_owned(),
    };
    let data = secret.data.as_ref().ok_or_else(|| bad("has no data"))?;
    let cert_pem = data
        .get("tls.crt")
        .ok_or_else(|| bad("has no tls.crt"))?
        .0
        .clone();
    let token = data
        .get(ADMIN_TOKEN_KEY)
        .ok_or_else(|| bad("has no token"))?;
    let token = std::str::from_utf8(&token.0)
        .map_err(|_| bad("token is not UTF-8"))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(bad("token is empty"));
    }
    Ok(AdminCredentials { cert_pem, token })
}

/// The admin API client of `tenant`: cached, or built from its admin Secret (read once).
///
/// # Errors
/// The Secret cannot be read or is malformed, or the client cannot be built.
pub async fn dataplane_client(
    ctx: &Context,
    tenant: &Tenant,
) -> Result<Arc<DataplaneClient>, Error> {
    connect_dataplane(&ctx.client, &ctx.dataplanes, tenant).await
}

/// [`dataplane_client`] with an explicit API client and client cache (the REST facade
/// keeps its own, [`crate::rest`]).
///
/// # Errors
/// As [`dataplane_client`].
pub async fn connect_dataplane(
    client: &kube::Client,
    dataplanes: &Dataplanes,
    tenant: &Tenant,
) -> Result<Arc<DataplaneClient>, Error> {
    let name = tenant.name_any();
    if let Some(client) = dataplanes.cached(&name) {
        return Ok(client);
    }
    let namespace = names::namespace(tenant)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = secrets.get(&names::admin_secret(tenant)?).await?;
    let credentials = admin_credentials(&secret)?;
    let base = dataplanes.base_url(&name, &names::dataplane(tenant)?, &namespace);
    Ok(dataplanes.connect(&name, &base, &credentials)?)
}

/// Whether the namespace may be used: absent, or controlled by this Tenant.
fn namespace_conflict(existing: &Namespace, tenant: &Tenant) -> Option<String> {
    let uid = tenant.uid().unwrap_or_default();
    match existing
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    {
        Some(o) if o.uid == uid => None,
        Some(o) => Some(format!(
            "namespace {:?} is controlled by {} {:?}; choose another spec.namespace",
            existing.name_any(),
            o.kind,
            o.name
        )),
        None => Some(format!(
            "namespace {:?} already exists and is not managed by this Tenant; \
             choose another spec.namespace or delete it",
            existing.name_any()
        )),
    }
}

async fn apply_children(ctx: &Context, tenant: &Tenant, children: &Children) -> Result<(), Error> {
    let namespace = names::namespace(tenant)?;
    apply(
        &Api::<Namespace>::all(ctx.client.clone()),
        &children.namespace,
    )
    .await?;
    let secrets: Api<Secret> = namespaced(ctx, &namespace);
    if tenant
        .spec
        .dataplane
        .as_ref()
        .and_then(|d| d.tls.as_ref())
        .is_none()
    {
        ensure_issued(&secrets, issue::imap_tls(tenant).map_err(issue_error)?).await?;
    }
    ensure_issued(&secrets, issue::admin(tenant).map_err(issue_error)?).await?;
    apply(&namespaced(ctx, &namespace), &children.config_map).await?;
    match &children.workload {
        Workload::StatefulSet(s) => {
            apply(&namespaced::<StatefulSet>(ctx, &namespace), s.as_ref()).await?;
        }
        Workload::Deployment(d) => {
            apply(&namespaced::<Deployment>(ctx, &namespace), d.as_ref()).await?;
        }
    }
    apply(&namespaced(ctx, &namespace), &children.service).await?;
    apply(&namespaced(ctx, &namespace), &children.network_policy).await?;
    if let Some(pdb) = &children.pod_disruption_budget {
        apply(&namespaced(ctx, &namespace), pdb).await?;
    }
    Ok(())
}

fn issue_error(e: issue::IssueError) -> Error {
    match e {
        issue::IssueError::Build(b) => Error::Build(b),
        issue::IssueError::Certificate(c) => Error::Certificate(c),
    }
}

/// Deletes the children a changed spec no longer wants.
async fn prune(ctx: &Context, tenant: &Tenant, children: &Children) -> Result<(), Error> {
    let namespace = names::namespace(tenant)?;
    let workload = names::dataplane(tenant)?;
    match children.workload {
        Workload::StatefulSet(_) => {
            delete_if_present(&namespaced::<Deployment>(ctx, &namespace), &workload).await?
        }
        Workload::Deployment(_) => {
            delete_if_present(&namespaced::<StatefulSet>(ctx, &namespace), &workload).await?
        }
    }
    if children.pod_disruption_budget.is_none() {
        delete_if_present(
            &namespaced::<PodDisruptionBudget>(ctx, &namespace),
            &workload,
        )
        .await?;
    }
    Ok(())
}

/// Mailbox count and summed usage of the tenant's Mailboxes, from the cache.
fn mailbox_totals(ctx: &Context, tenant: &str, namespace: &str) -> (i32, Option<Usage>) {
    let mut count = 0i32;
    let mut bytes = 0i64;
    let mut messages = 0i64;
    let mut any_usage = false;
    for m in ctx.mailboxes.state() {
        if m.spec.tenant != tenant || m.namespace().as_deref() != Some(namespace) {
            continue;
        }
        count = count.saturating_add(1);
        if let Some(u) = m.status.as_ref().and_then(|s| s.usage.as_ref()) {
            any_usage = true;
            messages = messages.saturating_add(u.messages.unwrap_or(0));
            bytes = bytes.saturating_add(
                u.storage
                    .as_ref()
                    .and_then(|q| q.0.parse::<i64>().ok())
                    .unwrap_or(0),
            );
        }
    }
    let usage = any_usage.then(|| Usage {
        storage: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            bytes.to_string(),
        )),
        messages: Some(messages),
    });
    (count, usage)
}

/// Writes `status` through the status subresource unless it equals the stored one.
async fn write_status(ctx: &Context, tenant: &Tenant, status: TenantStatus) -> Result<(), Error> {
    if tenant.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    Ok(conditions::apply_status(&api, &tenant.name_any(), &apply_params(), &status).await?)
}

fn status(
    ctx: &Context,
    tenant: &Tenant,
    ready: Observed<'_>,
    namespace: Option<String>,
) -> TenantStatus {
    let previous = tenant.status.clone().unwrap_or_default();
    let generation = tenant.meta().generation;
    let (mailboxes, usage) = match &namespace {
        Some(ns) => {
            let (n, u) = mailbox_totals(ctx, &tenant.name_any(), ns);
            (Some(n), u)
        }
        None => (previous.mailboxes, previous.usage.clone()),
    };
    TenantStatus {
        observed_generation: generation,
        namespace: namespace.or(previous.namespace.clone()),
        mailboxes,
        usage,
        conditions: conditions::set(&previous.conditions, &[ready], generation),
    }
}

/// Reports a Tenant that cannot be reconciled until its spec (or the cluster) changes:
/// `Ready=False` with `reason`, a Warning Event when the condition appears, and no retry.
async fn refuse(
    ctx: &Context,
    tenant: &Tenant,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let s = status(
        ctx,
        tenant,
        ready(ConditionStatus::False, reason, message.clone()),
        None,
    );
    if tenant.status.as_ref() != Some(&s) {
        ctx.event(tenant, EventType::Warning, reason, "Reconcile", message)
            .await;
    }
    write_status(ctx, tenant, s).await?;
    Ok(Action::await_change())
}

/// Reconciles one Tenant (see the module documentation).
///
/// # Errors
/// A failed API call or dataplane client setup; the caller retries with backoff.
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&tenant, &ctx).await;
    ctx.metrics.reconciled(
        CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    if result.is_ok() {
        ctx.tenant_backoff
            .succeeded(&ObjectRef::from_obj(tenant.as_ref()));
    }
    result
}

async fn reconcile_inner(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    ctx.caches_ready().await?;
    let name = tenant.name_any();
    if tenant.meta().deletion_timestamp.is_some() {
        // The garbage collector removes the children; nothing to do.
        ctx.dataplanes.forget(&name);
        return Ok(Action::await_change());
    }
    let mut children = match super::build(tenant, &ctx.options) {
        Ok(c) => c,
        Err(e) => return refuse(ctx, tenant, "InvalidSpec", e.to_string()).await,
    };
    let namespace = names::namespace(tenant)?;
    if let Some(existing) = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&namespace)
        .await?
        && let Some(message) = namespace_conflict(&existing, tenant)
    {
        // Checked again: nothing tells this Tenant when the other owner lets the namespace go
        // (a namespace it does not control is not watched).
        return refuse(ctx, tenant, "NamespaceConflict", message)
            .await
            .map(|_| Action::requeue(NOT_READY_RECHECK));
    }

    // The namespace's PluginDeployments: sidecars, client certificates and egress, in the
    // pod template (a changed sidecar rolls the pods).
    let plugins = ctx.plugins.state();
    crate::plugin::pod::inject(
        &mut children,
        tenant,
        &crate::plugin::of_namespace(&plugins, &namespace),
    )?;

    // The namespace's Pipelines, rendered from the caches; outside the pod-template hash.
    let pipelines = crate::pipeline::render_for(ctx, tenant, &namespace).await?;
    super::config::set_pipelines(&mut children.config_map, pipelines);

    let first_time = tenant
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .is_none();
    if let Err(e) = apply_children(ctx, tenant, &children).await {
        ctx.event(
            tenant,
            EventType::Warning,
            "ApplyFailed",
            "Apply",
            e.to_string(),
        )
        .await;
        return Err(e);
    }
    let spec_changed =
        tenant.status.as_ref().and_then(|s| s.observed_generation) != tenant.meta().generation;
    if spec_changed {
        prune(ctx, tenant, &children).await?;
    }
    if first_time {
        ctx.event(
            tenant,
            EventType::Normal,
            "Applied",
            "Apply",
            format!("created namespace {namespace:?} and the dataplane's objects"),
        )
        .await;
    }

    // Does the dataplane serve? Any authenticated answer of its admin API counts.
    let probe = async {
        let client = dataplane_client(ctx, tenant).await?;
        let postmaster = format!(
            "postmaster@{}",
            tenant
                .spec
                .domains
                .first()
                .map(String::as_str)
                .unwrap_or("invalid")
        );
        client.get_account(&postmaster).await.map_err(Error::from)
    };
    let key = ObjectRef::from_obj(tenant);
    let (observed, action) = match probe.await {
        Ok(_) => {
            ctx.dataplane_recheck.succeeded(&key);
            (
                ready(
                    ConditionStatus::True,
                    "Reconciled",
                    "children applied; the dataplane serves".to_owned(),
                ),
                Action::await_change(),
            )
        }
        Err(e) => {
            ctx.dataplanes.forget(&name);
            (
                ready(
                    ConditionStatus::False,
                    e.reason(),
                    format!("children applied; waiting for the dataplane: {e}"),
                ),
                Action::requeue(ctx.dataplane_recheck.failed(key)),
            )
        }
    };
    let s = status(ctx, tenant, observed, Some(namespace));
    write_status(ctx, tenant, s).await?;
    Ok(action)
}

/// What to do after a failed reconciliation: retry with this Tenant's backoff.
pub fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .tenant_backoff
        .failed(ObjectRef::from_obj(tenant.as_ref()));
    tracing::warn!(
        tenant = %tenant.name_any(),
        reason = error.reason(),
        error = %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use crate::tenant::test_tenant as tenant;

    fn ns(owner: Option<(&str, bool)>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("mcp-acme".into()),
                owner_references: owner.map(|(uid, controller)| {
                    vec![OwnerReference {
                        api_version: "mcp.dev/v1alpha1".into(),
                        kind: "Tenant".into(),
                        name: "x".into(),
                        uid: uid.into(),
                        controller: Some(controller),
                        block_owner_deletion: None,
                    }]
                }),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[test]
    fn only_our_own_namespace_is_adopted() {
        let t = tenant();
        let cases = [
            (Some(("u-1", true)), false),
            (Some(("u-2", true)), true),
            (Some(("u-1", false)), true),
            (None, true),
        ];
        for (owner, conflict) in cases {
            assert_eq!(
                namespace_conflict(&ns(owner), &t).is_some(),
                conflict,
                "{owner:?}"
            );
        }
    }

    #[test]
    fn admin_credentials_need_cert_and_token() {
        let t = tenant();
        let good = issue::admin(&t).expect("admin");
        assert!(admin_credentials(&good).is_ok());
        for key in ["tls.crt", "token"] {
            let mut s = good.clone();
            s.data.as_mut().expect("data").remove(key);
            let e = admin_credentials(&s).expect_err(key);
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
