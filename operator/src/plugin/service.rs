//! The children of a `service`-mode PluginDeployment, all named
//! [`mcp_crds::plugin::service_name`] (`mcp-plugin-<name>`) in its namespace, each with a
//! controller owner reference to it:
//!
//! - a Deployment of `spec.replicas` pods (default 1; 0 while `spec.suspend`) running the
//!   plugin container, which listens on `tcp://0.0.0.0:<port>` and serves with the server
//!   certificate (`tls.serverSecretRef`, mounted at [`SERVER_TLS_DIR`], named by
//!   [`ENV_TLS_CERT`], [`ENV_TLS_KEY`] and [`ENV_TLS_CLIENT_CA`]);
//! - a ClusterIP Service with the port `grpc`;
//! - a NetworkPolicy admitting only the tenant's dataplane pods, on that port (egress is left
//!   open: a scanner may have to fetch its signatures).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ContainerPort, EmptyDirVolumeSource, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use mcp_crds::plugin::{
    ENV_TLS_CERT, ENV_TLS_CLIENT_CA, ENV_TLS_KEY, SERVER_TLS_DIR, service_name,
};
use mcp_crds::{PluginDeployment, Tenant};

use super::{COMPONENT, INVALID_SPEC, PLUGIN_LABEL, Refusal, refuse, sandbox};
use crate::tenant::workload::RUN_AS;
use crate::tenant::{labels, network_policy};

/// Name of the plugin container and of its port.
pub const CONTAINER: &str = "plugin";
/// Name of the gRPC port on the container and the Service.
pub const PORT_NAME: &str = "grpc";
/// Name of the server certificate volume.
const TLS_VOLUME: &str = "tls";
/// Mode of the certificate files: owner and the pod's `fsGroup`.
const FILE_MODE: i32 = 0o440;

/// The three children of a `service` PluginDeployment.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChildren {
    /// The plugin's pods.
    pub deployment: Deployment,
    /// `mcp-plugin-<name>`, port `grpc`.
    pub service: Service,
    /// Ingress from the tenant's dataplane pods only.
    pub network_policy: NetworkPolicy,
}

/// The labels that select `plugin`'s pods (a subset of [`labels_of`], fixed for a
/// PluginDeployment: a Deployment's selector is immutable).
pub fn selector(
    tenant: &Tenant,
    plugin: &PluginDeployment,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut s = crate::plugin::pod::plugin_pods(tenant)
        .map_err(|e| refuse(INVALID_SPEC, e.to_string()))?
        .match_labels
        .unwrap_or_default();
    s.insert(PLUGIN_LABEL.to_owned(), labels::value(&plugin.name_any()));
    Ok(s)
}

/// All labels of `plugin`'s children and pods: the tenant's common labels with component
/// `plugin`, and [`PLUGIN_LABEL`].
pub fn labels_of(
    tenant: &Tenant,
    plugin: &PluginDeployment,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut l =
        labels::common(tenant, COMPONENT).map_err(|e| refuse(INVALID_SPEC, e.to_string()))?;
    l.insert(PLUGIN_LABEL.to_owned(), labels::value(&plugin.name_any()));
    Ok(l)
}

fn metadata(tenant: &Tenant, plugin: &PluginDeployment) -> Result<ObjectMeta, Refusal> {
    Ok(ObjectMeta {
        name: Some(service_name(&plugin.name_any())),
        namespace: plugin.namespace(),
        labels: Some(labels_of(tenant, plugin)?),
        owner_references: Some(vec![super::owner_reference(plugin)?]),
        ..ObjectMeta::default()
    })
}

/// The children of `plugin` (a `service` PluginDeployment of `tenant`'s namespace).
///
/// # Errors
/// [`super::check`]'s refusals, and [`INVALID_SPEC`] without `metadata.uid` or `spec.tls`.
pub fn build(tenant: &Tenant, plugin: &PluginDeployment) -> Result<ServiceChildren, Refusal> {
    super::check(plugin)?;
    let spec = &plugin.spec;
    let tls = spec
        .tls
        .as_ref()
        .ok_or_else(|| refuse(INVALID_SPEC, "spec.tls: required with mode service"))?;
    let meta = metadata(tenant, plugin)?;
    let selector = selector(tenant, plugin)?;
    let file = |k: &str| format!("{SERVER_TLS_DIR}/{k}");
    let container = sandbox::container(
        plugin,
        CONTAINER.to_owned(),
        format!("tcp://0.0.0.0:{}", spec.port),
        vec![
            sandbox::env(ENV_TLS_CERT, file("tls.crt")),
            sandbox::env(ENV_TLS_KEY, file("tls.key")),
            sandbox::env(ENV_TLS_CLIENT_CA, file("ca.crt")),
        ],
        vec![
            VolumeMount {
                name: TLS_VOLUME.to_owned(),
                mount_path: SERVER_TLS_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..VolumeMount::default()
            },
        ],
    )?;
    let container = k8s_openapi::api::core::v1::Container {
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.to_owned()),
            container_port: spec.port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        ..container
    };
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(if spec.suspend {
                0
            } else {
                spec.replicas.unwrap_or(1)
            }),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_of(tenant, plugin)?),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: TLS_VOLUME.to_owned(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(tls.server_secret_ref.name.clone()),
                                items: Some(
                                    ["tls.crt", "tls.key", "ca.crt"]
                                        .iter()
                                        .map(|k| KeyToPath {
                                            key: (*k).to_owned(),
                                            path: (*k).to_owned(),
                                            mode: None,
                                        })
                                        .collect(),
                                ),
                                default_mode: Some(FILE_MODE),
                                optional: Some(false),
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "tmp".to_owned(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                    ]),
                    // A plugin has no business with the Kubernetes API.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    // As the dataplane pod, which a sidecar inherits.
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    let service = Service {
        metadata: meta.clone(),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: spec.port,
                target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let dataplane = labels::selector(tenant).map_err(|e| refuse(INVALID_SPEC, e.to_string()))?;
    let network_policy = NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                ports: Some(vec![network_policy::tcp_port(spec.port)]),
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(dataplane),
                        ..LabelSelector::default()
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
            }]),
            egress: None,
        }),
    };
    Ok(ServiceChildren {
        deployment,
        service,
        network_policy,
    })
}
