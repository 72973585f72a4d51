//! The tenant's namespace, where its Mailboxes, Pipelines, PluginDeployments, MigrationJobs
//! and the dataplane live.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mcp_crds::Tenant;

use super::{BuildError, labels, names, owner_reference};

/// Pod Security Admission level enforced in the namespace. The dataplane's pods meet
/// `restricted`; so must plugin sidecars and Jobs the operator adds later.
pub const POD_SECURITY_LEVEL: &str = "restricted";

/// The Namespace `spec.namespace` (default `mcp-<tenant>`), labelled with the tenant and
/// enforcing the `restricted` Pod Security Standard.
///
/// It carries the Tenant's owner reference (a cluster-scoped owner may own a namespace),
/// so deleting the Tenant deletes the namespace and everything in it.
///
/// # Errors
/// [`BuildError::Missing`] without `metadata.name` or `metadata.uid`.
pub fn build(tenant: &Tenant) -> Result<Namespace, BuildError> {
    let mut labels = labels::common(tenant, labels::NAMESPACE_COMPONENT)?;
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            POD_SECURITY_LEVEL.to_owned(),
        );
    }
    Ok(Namespace {
        metadata: ObjectMeta {
            name: Some(names::namespace(tenant)?),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(tenant)?]),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    })
}
