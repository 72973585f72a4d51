//! The dataplane's Service: IMAP 143, IMAPS 993, LMTP 24, metrics 9090 and admin 9443, by
//! name.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mcp_crds::Tenant;

use super::{ADMIN, BuildError, IMAP, IMAPS, LMTP, METRICS, child_metadata, labels, names};

/// The ClusterIP Service `mcp-<tenant>-dataplane` in front of the dataplane's pods.
///
/// Each port targets the container port of the same name and declares its `appProtocol`
/// (the IANA service name; `http` for metrics), so a ServiceMonitor can select the
/// `metrics` port and a mesh or load balancer knows what it carries. Who may reach which
/// port is the NetworkPolicy's business ([`super::network_policy`]). Exposing IMAP outside
/// the cluster (a LoadBalancer, an Ingress controller's TCP routes) is not modelled yet.
///
/// # Errors
/// [`BuildError::Missing`] without `metadata.name` or `metadata.uid`.
pub fn build(tenant: &Tenant) -> Result<Service, BuildError> {
    let ports = [
        (IMAP, "imap"),
        (IMAPS, "imaps"),
        (LMTP, "lmtp"),
        (METRICS, "http"),
        (ADMIN, "https"),
    ]
    .into_iter()
    .map(|(port, app_protocol)| ServicePort {
        name: Some(port.name.to_owned()),
        port: port.number,
        target_port: Some(IntOrString::String(port.name.to_owned())),
        protocol: Some("TCP".to_owned()),
        app_protocol: Some(app_protocol.to_owned()),
        ..ServicePort::default()
    })
    .collect();
    Ok(Service {
        metadata: child_metadata(tenant, names::dataplane(tenant)?, labels::DATAPLANE)?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(labels::selector(tenant)?),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}
