//! Pipelines: validation, rendering into the tenant's dataplane configuration, and the
//! Pipeline controller (docs/operator.md, "Pipeline").
//!
//! - [`validate`]: whether a Pipeline can run, as a pure function of the cached Tenants,
//!   Pipelines and PluginDeployments, with a CamelCase reason when it cannot.
//! - [`render`]: `pipelines.yaml`, the platform's `Global` Pipelines and the tenant's, the
//!   valid ones (and the last good version of the invalid ones), as a pure function; the Tenant controller puts it into the
//!   dataplane ConfigMap ([`render_for`]).
//! - [`controller`]: reports `Validated` and `Ready` (the dataplane runs the revision) in
//!   each Pipeline's status.
//! - [`watch`]: the caches of Pipelines and PluginDeployments and what wakes whom.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Resource, ResourceExt};
use mcp_crds::{Pipeline, Tenant};

use crate::context::Context;
use crate::error::Error;
use crate::tenant::names;

pub mod controller;
pub mod render;
pub mod validate;
pub mod watch;

pub use render::PIPELINES_KEY;

/// The Tenant whose namespace is `namespace`, from the cache. When two claim it (one of them
/// is refused with `NamespaceConflict`), the one whose status names it wins.
pub fn tenant_of_namespace(ctx: &Context, namespace: &str) -> Option<Arc<Tenant>> {
    let mut candidates: Vec<Arc<Tenant>> = ctx
        .tenants
        .state()
        .into_iter()
        .filter(|t| names::namespace(t).ok().as_deref() == Some(namespace))
        .collect();
    candidates.sort_by_key(|t| {
        let claimed = t.status.as_ref().and_then(|s| s.namespace.as_deref()) == Some(namespace);
        (!claimed, t.name_any())
    });
    candidates.into_iter().next()
}

/// `pipelines.yaml` of `tenant`, whose namespace is `namespace`: the `Global` Pipelines of
/// the platform namespace and the Pipelines of `namespace`, the valid ones as they are and
/// the last good version of the invalid ones, read back from the current ConfigMap (one
/// `GET`, only when some Pipeline is invalid).
///
/// # Errors
/// Reading the ConfigMap failed, or the render did.
pub async fn render_for(ctx: &Context, tenant: &Tenant, namespace: &str) -> Result<String, Error> {
    let all = ctx.pipelines.state();
    let plugins = ctx.plugins.state();
    let tenant_name = tenant.name_any();
    let mine: Vec<(Arc<Pipeline>, bool)> = all
        .iter()
        .filter(|p| {
            p.meta().deletion_timestamp.is_none()
                && (p.namespace().as_deref() == Some(namespace) || validate::is_platform_global(p))
        })
        .map(|p| {
            let owner =
                (p.namespace().as_deref() == Some(namespace)).then_some(tenant_name.as_str());
            let valid = validate::validate(p, owner, &all, &plugins).is_ok();
            (p.clone(), valid)
        })
        .collect();
    let entries: Vec<render::Entry<'_>> = mine
        .iter()
        .map(|(p, valid)| {
            if *valid {
                render::Entry::Valid(p.as_ref())
            } else {
                render::Entry::Invalid(p.as_ref())
            }
        })
        .collect();
    let previous = if mine.iter().any(|(_, valid)| !valid) {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
        api.get_opt(&names::config_map(tenant)?)
            .await?
            .and_then(|cm| cm.data.and_then(|mut d| d.remove(PIPELINES_KEY)))
    } else {
        None
    };
    Ok(render::render(
        &tenant_name,
        &entries,
        &crate::plugin::of_namespace(&plugins, namespace),
        previous.as_deref(),
    )?)
}
