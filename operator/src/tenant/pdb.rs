//! The dataplane's PodDisruptionBudget.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mcp_crds::Tenant;

use super::{BuildError, child_metadata, dataplane, labels, names};

/// `maxUnavailable: 1` over the dataplane's pods when more than one replica runs; `None`
/// otherwise.
///
/// With one replica (always the case with embedded storage) a budget can only either block
/// node drains for good (`maxUnavailable: 0`) or allow everything (`1`), so there is none;
/// the controller deletes one left over from a larger replica count. Pods that are not
/// Ready may always be evicted (`unhealthyPodEvictionPolicy: AlwaysAllow`), so a crash-looping
/// pod never blocks a drain.
///
/// # Errors
/// [`BuildError::Missing`] without `metadata.name` or `metadata.uid`.
pub fn build(tenant: &Tenant) -> Result<Option<PodDisruptionBudget>, BuildError> {
    if dataplane(tenant).replicas <= 1 {
        return Ok(None);
    }
    Ok(Some(PodDisruptionBudget {
        metadata: child_metadata(tenant, names::dataplane(tenant)?, labels::DATAPLANE)?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(tenant)?),
                ..LabelSelector::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }))
}
