//! Caches of Pipelines and PluginDeployments that say when one changed in a way that matters.
//!
//! [`reflect`] drives one watch: it updates the cache first, then calls back for an object
//! that appeared, whose key changed, or that went (also one found missing after a re-list).
//! The key is [`spec_key`] (`generation` and labels) for Pipelines, so status writes do not
//! call back: a Pipeline's own status write must not re-render its Tenant. PluginDeployments
//! add their `Ready` status to it, so that the Pipelines naming one learn when it turns ready;
//! the callback gets the previous key to tell the two apart. Because the cache is updated before the callback, a reconciliation
//! the callback triggers reads a cache that already holds the change (a deleted Pipeline is
//! no longer rendered); a separate `Controller::watches` could be ahead of the cache it reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What of an object's spec a change must move to matter: its generation and labels.
pub type Key = (Option<i64>, BTreeMap<String, String>);

/// The [`Key`] of `object`.
pub fn spec_key<K: Resource>(object: &K) -> Key {
    (
        object.meta().generation,
        object.meta().labels.clone().unwrap_or_default(),
    )
}

/// Watches `api` until `stop`, keeping `writer`'s cache, and calls `changed(reference,
/// object, previous key)` after the cache holds the change: `Some` object for one that
/// appeared or whose `key` changed, `None` for one that went; the previous key is `None` for
/// an object not seen before.
pub async fn reflect<K, S, F>(
    api: Api<K>,
    mut writer: Writer<K>,
    key: fn(&K) -> S,
    mut changed: F,
    stop: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    S: PartialEq,
    F: FnMut(&ObjectRef<K>, Option<&K>, Option<&S>),
{
    let mut seen: HashMap<ObjectRef<K>, S> = HashMap::new();
    // The objects of a re-list in progress: those seen before and missing from it went while
    // the watch was down.
    let mut relisted: Option<HashSet<ObjectRef<K>>> = None;
    let mut events = watcher(api).boxed();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.next() => e,
        };
        let Some(event) = event else { return };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, kind = %K::kind(&()), "watch failed; retrying");
                continue;
            }
        };
        writer.apply_watcher_event(&event);
        match &event {
            Event::Apply(o) | Event::InitApply(o) => {
                let r = ObjectRef::from_obj(o);
                if let Some(set) = relisted.as_mut() {
                    set.insert(r.clone());
                }
                let k = key(o);
                if seen.get(&r) != Some(&k) {
                    let previous = seen.insert(r.clone(), k);
                    changed(&r, Some(o), previous.as_ref());
                }
            }
            Event::Delete(o) => {
                let r = ObjectRef::from_obj(o);
                let previous = seen.remove(&r);
                changed(&r, None, previous.as_ref());
            }
            Event::Init => relisted = Some(HashSet::new()),
            Event::InitDone => {
                if let Some(present) = relisted.take() {
                    let gone: Vec<ObjectRef<K>> = seen
                        .keys()
                        .filter(|r| !present.contains(r))
                        .cloned()
                        .collect();
                    for r in gone {
                        let previous = seen.remove(&r);
                        changed(&r, None, previous.as_ref());
                    }
                }
            }
        }
    }
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}
