//! What a tenant's PluginDeployments add to its dataplane (applied by the Tenant controller
//! over [`crate::tenant::build`]'s children, a pure function of both):
//!
//! - each accepted `sidecar` plugin ([`super::verdicts`]) that is not suspended
//!   (`spec.suspend`) becomes a **native sidecar**: an
//!   init container `plugin-<name>` with `restartPolicy: Always`, started before the
//!   dataplane container and stopped after it, with its own `/tmp` (an `emptyDir`);
//! - when one of them uses `transport: unix`, an `emptyDir` [`SOCKETS_VOLUME`] is mounted at
//!   [`SIDECAR_SOCKET_DIR`] in the dataplane container and in each `unix` sidecar;
//! - each accepted `service` plugin's client certificate (`tls.clientSecretRef`: `tls.crt`,
//!   `tls.key`, `ca.crt`) is projected into the dataplane's `/etc/mcp` volume at
//!   `CLIENT_TLS_DIR/<name>/`, `optional` so that a missing Secret costs that plugin only, not
//!   the pod;
//! - the dataplane's NetworkPolicy gains egress to the tenant's plugin pods on the `service`
//!   plugins' ports.
//!
//! All of it is in the pod template, so changing a sidecar rolls the pods (suspending or
//! resuming a `sidecar` plugin too); a status change of a PluginDeployment changes nothing
//! here. A suspended `service` plugin keeps its client certificate and egress rule, so
//! suspending or resuming it does not roll the dataplane pods.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, KeyToPath, PodSpec, SecretProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use mcp_crds::plugin::{CLIENT_TLS_DIR, PluginMode, PluginTransport, SIDECAR_SOCKET_DIR};
use mcp_crds::{PluginDeployment, Tenant};

use super::sandbox;
use crate::tenant::config::CONFIG_DIR;
use crate::tenant::workload::CONTAINER;
use crate::tenant::{BuildError, Children, Workload, labels, names, network_policy};

/// Name of the `emptyDir` holding the `unix` sidecars' sockets.
pub const SOCKETS_VOLUME: &str = "plugin-sockets";
/// Name of the dataplane's projected configuration volume (`workload.rs`).
const ETC_VOLUME: &str = "etc";
/// Mode of the projected client certificate files, as the dataplane's other files.
const FILE_MODE: i32 = 0o440;

/// Name of the sidecar container of PluginDeployment `name`: `plugin-<name>` (a DNS label;
/// shortened with a hash when needed, as [`names::dns_label`] does).
pub fn sidecar_name(name: &str) -> String {
    names::dns_label("plugin", name, "", names::MAX_LABEL)
}

/// Name of the `/tmp` volume of sidecar `name`.
pub fn tmp_volume(name: &str) -> String {
    names::dns_label("plugin-tmp", name, "", names::MAX_LABEL)
}

fn empty_dir(name: String) -> Volume {
    Volume {
        name,
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

/// The native sidecar container of `plugin` (a `sidecar`-mode PluginDeployment accepted by
/// [`super::verdicts`]).
///
/// # Errors
/// As [`sandbox::container`].
pub fn sidecar(plugin: &PluginDeployment) -> Result<Container, super::Refusal> {
    let name = plugin.name_any();
    let mut mounts = vec![mount(&tmp_volume(&name), "/tmp")];
    if plugin.spec.transport == PluginTransport::Unix {
        mounts.push(mount(SOCKETS_VOLUME, SIDECAR_SOCKET_DIR));
    }
    let mut c = sandbox::container(
        plugin,
        sidecar_name(&name),
        super::sidecar_listen(plugin),
        Vec::new(),
        mounts,
    )?;
    // A native sidecar (KEP-753): started before the dataplane, stopped after it.
    c.restart_policy = Some("Always".to_owned());
    Ok(c)
}

/// The projection of `plugin`'s client certificate into the dataplane's `/etc/mcp`.
fn client_tls(plugin: &PluginDeployment) -> Option<VolumeProjection> {
    let secret = &plugin.spec.tls.as_ref()?.client_secret_ref.name;
    let dir = CLIENT_TLS_DIR
        .strip_prefix(CONFIG_DIR)
        .unwrap_or(CLIENT_TLS_DIR)
        .trim_start_matches('/');
    let name = plugin.name_any();
    Some(VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.clone(),
            items: Some(
                ["tls.crt", "tls.key", "ca.crt"]
                    .iter()
                    .map(|k| KeyToPath {
                        key: (*k).to_owned(),
                        path: format!("{dir}/{name}/{k}"),
                        mode: None,
                    })
                    .collect(),
            ),
            // A missing Secret fails this plugin's connection, not the dataplane pod.
            optional: Some(true),
        }),
        ..VolumeProjection::default()
    })
}

fn pod_spec(workload: &mut Workload) -> Option<&mut PodSpec> {
    let template = match workload {
        Workload::StatefulSet(s) => &mut s.spec.as_mut()?.template,
        Workload::Deployment(d) => &mut d.spec.as_mut()?.template,
    };
    template.spec.as_mut()
}

/// The selector of every `service` plugin pod of `tenant`.
pub fn plugin_pods(tenant: &Tenant) -> Result<LabelSelector, BuildError> {
    let mut selector = labels::selector(tenant)?;
    selector.insert(labels::COMPONENT.to_owned(), super::COMPONENT.to_owned());
    Ok(LabelSelector {
        match_labels: Some(selector),
        ..LabelSelector::default()
    })
}

/// Adds `plugins` (the tenant namespace's PluginDeployments, as [`super::of_namespace`]
/// gives them) to `children` (see the module documentation). Refused PluginDeployments are
/// left out.
///
/// # Errors
/// [`BuildError::Missing`] for a Tenant without a name.
pub fn inject(
    children: &mut Children,
    tenant: &Tenant,
    plugins: &[&PluginDeployment],
) -> Result<(), BuildError> {
    let verdicts = super::verdicts(plugins);
    let mut accepted: Vec<&PluginDeployment> = plugins
        .iter()
        .copied()
        .filter(|p| matches!(verdicts.get(&p.name_any()), Some(Ok(()))))
        .collect();
    accepted.sort_by_key(|p| p.name_any());
    let sidecars: Vec<&PluginDeployment> = accepted
        .iter()
        .copied()
        .filter(|p| p.spec.mode == PluginMode::Sidecar && !p.spec.suspend)
        .collect();
    let services: Vec<&PluginDeployment> = accepted
        .iter()
        .copied()
        .filter(|p| p.spec.mode == PluginMode::Service)
        .collect();
    if sidecars.is_empty() && services.is_empty() {
        return Ok(());
    }

    if let Some(pod) = pod_spec(&mut children.workload) {
        let volumes = pod.volumes.get_or_insert_default();
        let mut containers = Vec::new();
        for p in &sidecars {
            if let Ok(c) = sidecar(p) {
                volumes.push(empty_dir(tmp_volume(&p.name_any())));
                containers.push(c);
            }
        }
        if !containers.is_empty() {
            pod.init_containers
                .get_or_insert_default()
                .extend(containers);
        }
        if sidecars
            .iter()
            .any(|p| p.spec.transport == PluginTransport::Unix)
        {
            volumes.push(empty_dir(SOCKETS_VOLUME.to_owned()));
            if let Some(dataplane) = pod.containers.iter_mut().find(|c| c.name == CONTAINER) {
                dataplane
                    .volume_mounts
                    .get_or_insert_default()
                    .push(mount(SOCKETS_VOLUME, SIDECAR_SOCKET_DIR));
            }
        }
        if let Some(sources) = volumes
            .iter_mut()
            .find(|v| v.name == ETC_VOLUME)
            .and_then(|v| v.projected.as_mut())
        {
            if sources.default_mode.is_none() {
                sources.default_mode = Some(FILE_MODE);
            }
            sources
                .sources
                .get_or_insert_default()
                .extend(services.iter().filter_map(|p| client_tls(p)));
        }
    }

    let ports: BTreeSet<i32> = services.iter().map(|p| p.spec.port).collect();
    if !ports.is_empty()
        && let Some(spec) = children.network_policy.spec.as_mut()
    {
        spec.egress
            .get_or_insert_default()
            .push(NetworkPolicyEgressRule {
                ports: Some(ports.into_iter().map(network_policy::tcp_port).collect()),
                to: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(plugin_pods(tenant)?),
                    ..NetworkPolicyPeer::default()
                }]),
            });
    }
    Ok(())
}
