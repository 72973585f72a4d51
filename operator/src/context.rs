//! What every reconciliation shares: the API client, the operator's options, caches of the
//! watched objects, the dataplane clients, Events, metrics and backoff.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};
use mcp_crds::{Mailbox, Pipeline, PluginDeployment, Tenant};

use crate::backoff::Backoff;
use crate::dataplane::Dataplanes;
use crate::telemetry::Metrics;
use crate::tenant::Options;

/// First retry delay after a failed reconciliation.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay after repeated failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Shared state of the controllers.
pub struct Context {
    /// The API client (the operator's ServiceAccount, or an impersonating kubeconfig).
    pub client: Client,
    /// Settings the children depend on (image, operator namespace).
    pub options: Options,
    /// How often a Ready Mailbox is provisioned again, to refresh `status.usage` and repair a
    /// dataplane store that lost the account.
    pub mailbox_resync: Duration,
    /// Cache of every Tenant (the Tenant controller's reflector).
    pub tenants: Store<Tenant>,
    /// Cache of every Mailbox (the Mailbox controller's reflector).
    pub mailboxes: Store<Mailbox>,
    /// Cache of every Pipeline ([`crate::pipeline::watch::reflect`]): what the Tenant
    /// controller renders and the Pipeline controller validates against.
    pub pipelines: Store<Pipeline>,
    /// Cache of every PluginDeployment ([`crate::pipeline::watch::reflect`]).
    pub plugins: Store<PluginDeployment>,
    /// Admin API clients, one per tenant.
    pub dataplanes: Dataplanes,
    /// Publishes Kubernetes Events (`events.k8s.io/v1`, created then patched as a series).
    pub recorder: Recorder,
    /// Reconciliation metrics.
    pub metrics: Arc<Metrics>,
    /// Backoff of failed Tenants.
    pub tenant_backoff: Backoff<ObjectRef<Tenant>>,
    /// Delays between checks of a Tenant's dataplane that does not answer yet.
    pub dataplane_recheck: Backoff<ObjectRef<Tenant>>,
    /// Backoff of failed Mailboxes.
    pub mailbox_backoff: Backoff<ObjectRef<Mailbox>>,
    /// Backoff of failed Pipelines.
    pub pipeline_backoff: Backoff<ObjectRef<Pipeline>>,
    /// Delays between checks of a Pipeline whose dataplane does not run it yet.
    pub pipeline_recheck: Backoff<ObjectRef<Pipeline>>,
    /// Backoff of failed PluginDeployments.
    pub plugin_backoff: Backoff<ObjectRef<PluginDeployment>>,
    /// Delays between checks of a PluginDeployment that is not serving yet.
    pub plugin_recheck: Backoff<ObjectRef<PluginDeployment>>,
}

/// How often a reconciliation looks again whether a cache is listed (see [`listed`]).
const LISTED_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits until `store` holds its first complete listing.
///
/// `Store::wait_until_ready` wakes only the last of several tasks waiting at once (kube's
/// `DelayedInit` keeps one waker), and reconciliations of several objects wait at once right
/// after start-up: the others would wait forever, holding the controller's shutdown too. So
/// the wait is polled again every [`LISTED_POLL`]; once one waiter has seen the store ready,
/// every later poll returns at once.
async fn listed<K>(
    store: &kube::runtime::reflector::Store<K>,
    what: &'static str,
) -> Result<(), crate::error::Error>
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(LISTED_POLL, store.wait_until_ready()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(crate::error::Error::Incomplete(what)),
            Err(_) => {}
        }
    }
}

impl Context {
    /// Waits until every cache holds a complete first listing, so that a reconciliation right
    /// after start-up does not mistake "not listed yet" for "absent" (and write a status that
    /// the next pass reverts).
    ///
    /// # Errors
    /// [`crate::error::Error::Incomplete`] if a cache's writer is gone (the controllers are
    /// shutting down).
    pub async fn caches_ready(&self) -> Result<(), crate::error::Error> {
        listed(&self.tenants, "a listed Tenant cache").await?;
        listed(&self.mailboxes, "a listed Mailbox cache").await?;
        listed(&self.pipelines, "a listed Pipeline cache").await?;
        listed(&self.plugins, "a listed PluginDeployment cache").await
    }

    /// Publishes an Event about `object`; a failure to publish is logged, not returned (an
    /// Event is a courtesy, the reconciliation's outcome does not depend on it).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let reference: ObjectReference = object.object_ref(&());
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        match self.recorder.publish(&event, &reference).await {
            Ok(()) => {}
            // The namespace is going away (a deleted Tenant): nobody will read the Event.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                tracing::debug!(reason, "Event not published: namespace terminating");
            }
            Err(e) => tracing::warn!(error = %e, reason, "could not publish an Event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event as WatchEvent;

    /// kube's `Store::wait_until_ready` wakes one of several concurrent waiters only; the
    /// operator hung at start-up and shutdown with several Pipelines (found in e2e).
    #[tokio::test]
    async fn every_concurrent_waiter_sees_the_listing() {
        let (store, mut writer) = reflector::store::<Pipeline>();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { listed(&store, "pipelines").await })
            })
            .collect();
        tokio::task::yield_now().await;
        writer.apply_watcher_event(&WatchEvent::Init);
        writer.apply_watcher_event(&WatchEvent::InitDone);
        for w in waiters {
            let done = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
            assert!(matches!(done, Ok(Ok(Ok(())))), "a waiter was never woken");
        }
    }
}
