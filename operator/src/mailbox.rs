//! The Mailbox controller: provisions each Mailbox as an account in its tenant's dataplane
//! store through the admin API, and honours `spec.retention` on deletion with a finalizer.
//!
//! Apply (the Mailbox exists):
//! 1. Find its Tenant (cache). The Mailbox must live in the tenant's namespace and its
//!    addresses in the tenant's domains; otherwise `Ready=False` with the reason, no retry
//!    until something changes.
//! 2. Read the password from `spec.credentials.secretRef` (one `GET`; the Secret is watched,
//!    so a changed password is applied promptly).
//! 3. `PUT` the account: the dataplane creates it with its default special-use folders, or
//!    updates it; an unchanged request costs it one lookup (keyed digest).
//! 4. Write status (provisioned, usage, `Ready`) only when it changed, and come back after
//!    `mailbox_resync` to refresh the usage.
//!
//! Cleanup (the Mailbox is being deleted, finalizer [`FINALIZER`]): `DELETE` the account with
//! `Retain` (login disabled, mail kept for a later Mailbox of the same address) or `Delete`
//! (mail removed). Until the dataplane confirms, the finalizer stays and the object with it;
//! failures retry with backoff and are reported as `CleanupFailed` Events. When the Tenant
//! itself is gone or going, the dataplane goes with it: the finalizer is removed without a
//! call, and what remains of the data follows the tenant's storage (the StatefulSet's claim
//! is retained; see docs/operator.md). So it is when the call fails while the Mailbox's
//! namespace is being deleted by hand. A Mailbox outside its tenant's namespace was never
//! provisioned: its finalizer goes without a call, since the account of its address is another
//! Mailbox's.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use mcp_crds::dataplane::{AccountRequest, AccountState};
use mcp_crds::mailbox::MailboxStatus;
use mcp_crds::quota::{Quota, Usage};
use mcp_crds::{ConditionStatus, Mailbox, Tenant};

use crate::conditions::{self, Observed, ready};
use crate::context::Context;
use crate::error::Error;
use crate::tenant::controller::{apply_params, dataplane_client};
use crate::tenant::names;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "mailbox";
/// The finalizer that holds a Mailbox until its data has been retained or deleted.
pub const FINALIZER: &str = "mcp.dev/mailbox-data";

/// A reason the Mailbox cannot be provisioned that only a change of the Mailbox, its Tenant
/// or its Secret can cure.
struct Blocked {
    reason: &'static str,
    message: String,
}

fn blocked(reason: &'static str, message: String) -> Blocked {
    Blocked { reason, message }
}

/// The Mailbox's Tenant, from the cache.
fn tenant_of(ctx: &Context, mailbox: &Mailbox) -> Option<Arc<Tenant>> {
    ctx.tenants.get(&ObjectRef::new(&mailbox.spec.tenant))
}

/// Checks that `mailbox` lives in the tenant's namespace.
fn check_namespace(mailbox: &Mailbox, tenant: &Tenant) -> Result<(), Blocked> {
    let want = names::namespace(tenant).map_err(|e| blocked("InvalidTenant", e.to_string()))?;
    let have = mailbox.namespace().unwrap_or_default();
    if have != want {
        return Err(blocked(
            "WrongNamespace",
            format!(
                "Mailboxes of Tenant {:?} live in namespace {want:?}, not {have:?}",
                tenant.name_any()
            ),
        ));
    }
    Ok(())
}

/// The addresses a Mailbox claims (primary and aliases), lower-cased as the dataplane keys
/// accounts.
pub fn claimed_addresses(mailbox: &Mailbox) -> Vec<String> {
    std::iter::once(&mailbox.spec.address)
        .chain(&mailbox.spec.aliases)
        .map(|a| a.to_lowercase())
        .collect()
}

/// Order of precedence between two Mailboxes claiming one address: the older wins, then the
/// smaller namespace/name (a total order every replica computes alike).
fn precedence(m: &Mailbox) -> (Option<String>, String, String) {
    (
        m.meta()
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        m.namespace().unwrap_or_default(),
        m.name_any(),
    )
}

/// Another live Mailbox of the same tenant that claims one of `mailbox`'s addresses (primary
/// or alias) and takes precedence over it, from the cache.
fn rival(ctx: &Context, mailbox: &Mailbox) -> Option<(Arc<Mailbox>, String)> {
    let mine = claimed_addresses(mailbox);
    let me = precedence(mailbox);
    ctx.mailboxes.state().into_iter().find_map(|other| {
        if other.spec.tenant != mailbox.spec.tenant
            || other.meta().deletion_timestamp.is_some()
            || (other.namespace(), other.name_any()) == (mailbox.namespace(), mailbox.name_any())
            || precedence(&other) >= me
        {
            return None;
        }
        let theirs = claimed_addresses(&other);
        let shared = mine.iter().find(|a| theirs.contains(a))?.clone();
        Some((other, shared))
    })
}

/// Checks that `mailbox` belongs where it is: the tenant's namespace and domains.
fn check_placement(mailbox: &Mailbox, tenant: &Tenant) -> Result<(), Blocked> {
    check_namespace(mailbox, tenant)?;
    let domains = &tenant.spec.domains;
    for (field, address) in std::iter::once(("spec.address", &mailbox.spec.address))
        .chain(mailbox.spec.aliases.iter().map(|a| ("spec.aliases", a)))
    {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return Err(blocked(
                "AddressOutsideDomains",
                format!(
                    "{field}: the domain of {address:?} is not one of Tenant {:?}'s spec.domains {domains:?}",
                    tenant.name_any()
                ),
            ));
        }
    }
    Ok(())
}

/// The password from the credentials Secret.
async fn password(ctx: &Context, mailbox: &Mailbox) -> Result<Result<String, Blocked>, Error> {
    let Some(secret_ref) = &mailbox.spec.credentials.secret_ref else {
        return Ok(Err(blocked(
            "ExternalIdentityUnsupported",
            "spec.credentials.external: the dataplane does not support external identity \
             providers yet; use spec.credentials.secretRef"
                .to_owned(),
        )));
    };
    let namespace = mailbox
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(secret) = api.get_opt(&secret_ref.name).await? else {
        return Ok(Err(blocked(
            "SecretNotFound",
            format!(
                "spec.credentials.secretRef: Secret {namespace}/{} not found",
                secret_ref.name
            ),
        )));
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&secret_ref.key))
        .map(|v| v.0.clone());
    let missing = || {
        blocked(
            "SecretKeyMissing",
            format!(
                "spec.credentials.secretRef: Secret {namespace}/{} has no non-empty key {:?}",
                secret_ref.name, secret_ref.key
            ),
        )
    };
    let Some(bytes) = value.filter(|v| !v.is_empty()) else {
        return Ok(Err(missing()));
    };
    match String::from_utf8(bytes) {
        Ok(p) => Ok(Ok(p)),
        Err(_) => Ok(Err(blocked(
            "SecretKeyMissing",
            format!(
                "spec.credentials.secretRef: key {:?} of Secret {namespace}/{} is not UTF-8",
                secret_ref.key, secret_ref.name
            ),
        ))),
    }
}

/// The Mailbox's limits: each field of `spec.quota` that is set, else the tenant's
/// `spec.quota.mailboxDefault` for that field. `None` when neither sets anything.
pub fn effective_quota(tenant: &Tenant, mailbox: &Mailbox) -> Option<Quota> {
    let default = tenant
        .spec
        .quota
        .as_ref()
        .and_then(|q| q.mailbox_default.as_ref());
    Quota::effective(mailbox.spec.quota.as_ref(), default)
}

fn usage(state: &AccountState) -> Usage {
    Usage {
        storage: Some(Quantity(state.bytes.to_string())),
        messages: Some(i64::try_from(state.messages).unwrap_or(i64::MAX)),
    }
}

/// Writes `status` through the status subresource unless it equals the stored one.
async fn write_status(
    ctx: &Context,
    mailbox: &Mailbox,
    status: MailboxStatus,
) -> Result<(), Error> {
    if mailbox.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = mailbox
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let api: Api<Mailbox> = Api::namespaced(ctx.client.clone(), &namespace);
    Ok(conditions::apply_status(&api, &mailbox.name_any(), &apply_params(), &status).await?)
}

fn status_with(
    mailbox: &Mailbox,
    provisioned: Option<bool>,
    usage: Option<Usage>,
    ready: Observed<'_>,
) -> MailboxStatus {
    let previous = mailbox.status.clone().unwrap_or_default();
    let generation = mailbox.meta().generation;
    MailboxStatus {
        observed_generation: generation,
        provisioned: provisioned.unwrap_or(previous.provisioned),
        usage: usage.or(previous.usage.clone()),
        conditions: conditions::set(&previous.conditions, &[ready], generation),
    }
}

/// Reports a [`Blocked`] Mailbox (`Ready=False`, a Warning Event when the status changes)
/// and waits for a change.
async fn report_blocked(ctx: &Context, mailbox: &Mailbox, b: Blocked) -> Result<Action, Error> {
    let s = status_with(
        mailbox,
        None,
        None,
        ready(ConditionStatus::False, b.reason, b.message.clone()),
    );
    if mailbox.status.as_ref() != Some(&s) {
        ctx.event(
            mailbox,
            EventType::Warning,
            b.reason,
            "Provision",
            b.message,
        )
        .await;
    }
    write_status(ctx, mailbox, s).await?;
    Ok(Action::await_change())
}

async fn provision(mailbox: Arc<Mailbox>, ctx: &Context) -> Result<Action, Error> {
    let Some(tenant) = tenant_of(ctx, &mailbox) else {
        let message = format!("spec.tenant: Tenant {:?} not found", mailbox.spec.tenant);
        return report_blocked(ctx, &mailbox, blocked("TenantNotFound", message)).await;
    };
    if let Err(b) = check_placement(&mailbox, &tenant) {
        return report_blocked(ctx, &mailbox, b).await;
    }
    if let Some((owner, address)) = rival(ctx, &mailbox) {
        let message = format!(
            "{address:?} is already claimed by Mailbox {}/{}, created earlier; addresses and \
             aliases are unique in a tenant, compared case-insensitively",
            owner.namespace().unwrap_or_default(),
            owner.name_any()
        );
        return report_blocked(ctx, &mailbox, blocked("AddressConflict", message)).await;
    }
    let password = match password(ctx, &mailbox).await? {
        Ok(p) => p,
        Err(b) => return report_blocked(ctx, &mailbox, b).await,
    };
    let mut spec = mailbox.spec.clone();
    spec.quota = effective_quota(&tenant, &mailbox);
    let request = AccountRequest {
        tenant: tenant.name_any(),
        spec,
        labels: mailbox.labels().clone(),
        password,
    };
    let client = dataplane_client(ctx, &tenant).await?;
    let state = match client.put_account(&request).await {
        Ok(s) => s,
        Err(e) if e.is_permanent() => {
            return report_blocked(ctx, &mailbox, blocked("DataplaneRefused", e.to_string())).await;
        }
        Err(e) => {
            ctx.dataplanes.forget(&tenant.name_any());
            let s = status_with(
                &mailbox,
                None,
                None,
                ready(ConditionStatus::False, e.reason(), e.to_string()),
            );
            write_status(ctx, &mailbox, s).await?;
            return Err(e.into());
        }
    };
    if state.created {
        ctx.event(
            mailbox.as_ref(),
            EventType::Normal,
            "Provisioned",
            "Provision",
            format!(
                "account {} created with folders {}",
                state.address,
                state.folders.join(", ")
            ),
        )
        .await;
    }
    let s = status_with(
        &mailbox,
        Some(true),
        Some(usage(&state)),
        ready(
            ConditionStatus::True,
            "Provisioned",
            format!(
                "account {} provisioned in the tenant's store",
                state.address
            ),
        ),
    );
    write_status(ctx, &mailbox, s).await?;
    Ok(Action::requeue(ctx.mailbox_resync))
}

/// Whether the Mailbox's namespace is being deleted (`false` when that cannot be read).
async fn namespace_terminating(ctx: &Context, mailbox: &Mailbox) -> bool {
    let Some(name) = mailbox.namespace() else {
        return false;
    };
    match Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&name)
        .await
    {
        Ok(Some(ns)) => ns.meta().deletion_timestamp.is_some(),
        Ok(None) => true,
        Err(e) => {
            tracing::debug!(error = %e, namespace = %name, "namespace of a deleted Mailbox not read");
            false
        }
    }
}

async fn cleanup(mailbox: Arc<Mailbox>, ctx: &Context) -> Result<Action, Error> {
    let tenant = tenant_of(ctx, &mailbox);
    let Some(tenant) = tenant.filter(|t| t.meta().deletion_timestamp.is_none()) else {
        ctx.event(
            mailbox.as_ref(),
            EventType::Normal,
            "TenantGone",
            "Cleanup",
            format!(
                "Tenant {:?} is gone or being deleted: its dataplane goes with it; the data \
                 follows the tenant's storage",
                mailbox.spec.tenant
            ),
        )
        .await;
        return Ok(Action::await_change());
    };
    // A Mailbox outside the tenant's namespace was never provisioned (`provision` refuses
    // it, and neither namespace can change), so the account of its address, if any, belongs
    // to another Mailbox: retaining or deleting it would disable or destroy someone else's
    // mail. Anyone allowed to create a Mailbox in any namespace could do that.
    if let Err(b) = check_namespace(&mailbox, &tenant) {
        ctx.event(
            mailbox.as_ref(),
            EventType::Normal,
            "CleanedUp",
            "Cleanup",
            format!(
                "never provisioned, the account of {} was left alone ({})",
                mailbox.spec.address, b.message
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    // This Mailbox lost the claim on its address to an earlier one: the account is that
    // Mailbox's, and retaining or deleting it would take its mail away.
    if let Some((other, address)) = rival(ctx, &mailbox) {
        ctx.event(
            mailbox.as_ref(),
            EventType::Normal,
            "CleanedUp",
            "Cleanup",
            format!(
                "the account {address} belongs to Mailbox {}/{}, created earlier, and was left alone",
                other.namespace().unwrap_or_default(),
                other.name_any()
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    let retention = mailbox.spec.retention;
    let outcome = async {
        let client = dataplane_client(ctx, &tenant).await?;
        Ok::<_, Error>(
            client
                .delete_account(&mailbox.spec.address, retention)
                .await?,
        )
    }
    .await;
    let provisioned = mailbox.status.as_ref().is_some_and(|s| s.provisioned);
    match outcome {
        // Never provisioned, and the dataplane refuses the address (outside the tenant's
        // domains, say): there is no account to retain or delete.
        Err(Error::Dataplane(e)) if !provisioned && e.is_permanent() => {
            ctx.event(
                mailbox.as_ref(),
                EventType::Normal,
                "CleanedUp",
                "Cleanup",
                format!("never provisioned, nothing to clean up ({e})"),
            )
            .await;
            Ok(Action::await_change())
        }
        Ok(o) => {
            ctx.event(
                mailbox.as_ref(),
                EventType::Normal,
                "CleanedUp",
                "Cleanup",
                format!(
                    "account {}: {:?} (existed: {})",
                    o.address, o.retention, o.existed
                ),
            )
            .await;
            Ok(Action::await_change())
        }
        // The namespace is being deleted by hand (not through the Tenant): its dataplane pods,
        // Service and admin Secret go with it and the Tenant cannot re-create them there, so
        // the call can never succeed and holding the finalizer would keep the namespace
        // Terminating for ever. The data follows the tenant's storage, as when the Tenant goes.
        Err(e) if namespace_terminating(ctx, &mailbox).await => {
            ctx.dataplanes.forget(&tenant.name_any());
            ctx.event(
                mailbox.as_ref(),
                EventType::Warning,
                "NamespaceDeleted",
                "Cleanup",
                format!(
                    "namespace {:?} is being deleted and the dataplane with it; {:?} of the \
                     account skipped: {e}",
                    mailbox.namespace().unwrap_or_default(),
                    retention
                ),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.dataplanes.forget(&tenant.name_any());
            let message = format!("{:?} of the account failed, will retry: {e}", retention);
            ctx.event(
                mailbox.as_ref(),
                EventType::Warning,
                "CleanupFailed",
                "Cleanup",
                message.clone(),
            )
            .await;
            let s = status_with(
                &mailbox,
                None,
                None,
                ready(ConditionStatus::False, "CleanupFailed", message),
            );
            // The status write is best effort: the object may be gone the moment after.
            if let Err(we) = write_status(ctx, &mailbox, s).await {
                tracing::debug!(error = %we, "status of a deleting Mailbox not written");
            }
            Err(e)
        }
    }
}

/// Reconciles one Mailbox (see the module documentation).
///
/// # Errors
/// A failed API call, an unreachable dataplane or a failed cleanup; the caller retries with
/// backoff.
pub async fn reconcile(mailbox: Arc<Mailbox>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = ObjectRef::from_obj(mailbox.as_ref());
    let namespace = mailbox
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"));
    let result = match namespace {
        Err(e) => Err(e),
        Ok(_) if let Err(e) = ctx.caches_ready().await => Err(e),
        Ok(namespace) => {
            let api: Api<Mailbox> = Api::namespaced(ctx.client.clone(), &namespace);
            finalizer(&api, FINALIZER, mailbox, |event| async {
                match event {
                    FinalizerEvent::Apply(m) => provision(m, &ctx).await,
                    FinalizerEvent::Cleanup(m) => cleanup(m, &ctx).await,
                }
            })
            .await
            .map_err(|e| match e {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
                other => Error::Finalizer(other.to_string()),
            })
        }
    };
    ctx.metrics.reconciled(
        CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    if result.is_ok() {
        ctx.mailbox_backoff.succeeded(&key);
    }
    result
}

/// What to do after a failed reconciliation: retry with this Mailbox's backoff.
pub fn error_policy(mailbox: Arc<Mailbox>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .mailbox_backoff
        .failed(ObjectRef::from_obj(mailbox.as_ref()));
    tracing::warn!(
        mailbox = %mailbox.name_any(),
        namespace = %mailbox.namespace().unwrap_or_default(),
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

    use crate::tenant::test_tenant as tenant;

    fn mailbox(namespace: &str, address: &str, aliases: &[&str]) -> Mailbox {
        let mut m: Mailbox = yaml_serde::from_str(&format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: Mailbox\n\
             metadata: {{name: alice, namespace: {namespace}}}\n\
             spec: {{tenant: acme, address: {address}, credentials: {{secretRef: {{name: s}}}}}}"
        ))
        .expect("mailbox");
        m.spec.aliases = aliases.iter().map(|a| (*a).to_owned()).collect();
        m
    }

    #[test]
    fn mailbox_quota_fields_override_the_tenant_default_one_by_one() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let q = |s: Option<&str>, m: Option<i64>| Quota {
            storage: s.map(|s| Quantity(s.to_owned())),
            messages: m,
        };
        let cases = [
            (None, None, None),
            (
                Some(q(Some("5Gi"), Some(10))),
                None,
                Some(q(Some("5Gi"), Some(10))),
            ),
            (
                Some(q(Some("5Gi"), Some(10))),
                Some(q(Some("1Gi"), None)),
                Some(q(Some("1Gi"), Some(10))),
            ),
            (None, Some(q(None, Some(3))), Some(q(None, Some(3)))),
        ];
        for (default, own, want) in cases {
            let mut t = tenant();
            t.spec.quota = Some(mcp_crds::tenant::TenantQuota {
                mailbox_default: default.clone(),
                ..Default::default()
            });
            let mut m = mailbox("mcp-acme", "alice@acme.example", &[]);
            m.spec.quota = own.clone();
            assert_eq!(effective_quota(&t, &m), want, "{default:?} {own:?}");
        }
    }

    #[test]
    fn placement_is_checked_against_the_tenant() {
        let t = tenant();
        let cases = [
            ("mcp-acme", "alice@acme.example", &[][..], None),
            ("mcp-acme", "Alice@ACME.example", &[], None),
            ("default", "alice@acme.example", &[], Some("WrongNamespace")),
            (
                "mcp-acme",
                "alice@other.example",
                &[],
                Some("AddressOutsideDomains"),
            ),
            (
                "mcp-acme",
                "alice@acme.example",
                &["al@other.example"],
                Some("AddressOutsideDomains"),
            ),
        ];
        for (ns, address, aliases, want) in cases {
            let got = check_placement(&mailbox(ns, address, aliases), &t)
                .err()
                .map(|b| b.reason);
            assert_eq!(got, want, "{ns} {address} {aliases:?}");
        }
    }
}
