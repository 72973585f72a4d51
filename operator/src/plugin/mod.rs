//! PluginDeployments: how an external plugin (gRPC `mcp.plugin.v1.MailProcessor`) is run
//! in Kubernetes, and the PluginDeployment controller (docs/operator.md, "The
//! PluginDeployment controller").
//!
//! - [`sandbox`]: the plugin container's security context (hardened defaults, a user's
//!   `sandbox.securityContext` merged field by field, anything the `restricted` Pod Security
//!   Standard forbids refused) and resources; the container itself ([`sandbox::container`]).
//! - [`pod`]: what a tenant's PluginDeployments add to its dataplane: a native sidecar per
//!   `sidecar` plugin, the shared socket directory, the client certificate of each `service`
//!   plugin, and the egress towards the plugins' pods. Applied by the Tenant controller.
//! - [`service`]: the Deployment, Service and NetworkPolicy of a `service` plugin.
//! - [`controller`]: applies the `service` children and reports readiness and the
//!   negotiated protocol version from the dataplane's `GET /internal/v1/plugins`.
//!
//! Everything except [`controller`] is a pure function of the PluginDeployments (and the
//! Tenant), tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use mcp_crds::PluginDeployment;
use mcp_crds::plugin::{
    ENV_LISTEN, ENV_TLS_CERT, ENV_TLS_CLIENT_CA, ENV_TLS_KEY, PluginMode, PluginTransport,
    SIDECAR_SOCKET_DIR, service_name,
};

use crate::tenant::{ADMIN, IMAP, IMAPS, LMTP, METRICS, names};

pub mod controller;
pub mod pod;
pub mod sandbox;
pub mod service;

#[cfg(test)]
mod tests;

/// `Ready=False`: `spec.sandbox.securityContext` asks for something the `restricted` Pod
/// Security Standard forbids (the tenant namespace enforces it); not rendered.
pub const INSECURE_SANDBOX: &str = "InsecureSandbox";
/// `Ready=False`: the spec cannot be rendered (no image, a reserved environment variable, a
/// name too long for its Service or socket, ...); not rendered.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// `Ready=False`: a `tcp` sidecar's port is a dataplane port or an older sidecar's; not
/// rendered (every sidecar shares the dataplane pod's network namespace).
pub const PORT_CONFLICT: &str = "PortConflict";

/// Label on a `service` plugin's objects and pods naming its PluginDeployment.
pub const PLUGIN_LABEL: &str = "mcp.dev/plugin";
/// `app.kubernetes.io/component` of a `service` plugin's objects.
pub const COMPONENT: &str = "plugin";

/// Environment variables the operator sets on a plugin container; `spec.env` may not.
pub const RESERVED_ENV: [&str; 4] = [ENV_LISTEN, ENV_TLS_CERT, ENV_TLS_KEY, ENV_TLS_CLIENT_CA];

/// Longest path of a Unix socket (`sun_path` holds 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Why a PluginDeployment is not rendered: a CamelCase reason (one of the constants of this
/// module) and a message naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// [`INSECURE_SANDBOX`], [`INVALID_SPEC`] or [`PORT_CONFLICT`].
    pub reason: &'static str,
    /// What is wrong, naming the field (`spec.sandbox.securityContext.privileged: ...`).
    pub message: String,
}

pub(crate) fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
    }
}

/// Where a `unix` sidecar listens: `<SIDECAR_SOCKET_DIR>/<name>.sock`.
pub fn socket_path(name: &str) -> String {
    format!("{SIDECAR_SOCKET_DIR}/{name}.sock")
}

/// `ENV_LISTEN` of a sidecar: `tcp://127.0.0.1:<port>` or `unix://<socket_path>`.
pub fn sidecar_listen(plugin: &PluginDeployment) -> String {
    match plugin.spec.transport {
        PluginTransport::Tcp => format!("tcp://127.0.0.1:{}", plugin.spec.port),
        PluginTransport::Unix => format!("unix://{}", socket_path(&plugin.name_any())),
    }
}

/// Whether `name` is a DNS-1035 label (a Service name): lower-case alphanumerics and `-`,
/// starting with a letter, at most 63 characters. (A Service name always starts with
/// `mcp-`, so in practice this checks the characters and the length.)
fn is_dns1035_label(name: &str) -> bool {
    names::is_dns_label(name, names::MAX_LABEL)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The checks of one PluginDeployment's spec alone (see [`verdicts`] for those that need
/// its neighbours): an image, no reserved or repeated environment variable, a name that fits
/// its Service or socket, and a sandbox the `restricted` Pod Security Standard allows.
///
/// # Errors
/// The first [`Refusal`].
pub fn check(plugin: &PluginDeployment) -> Result<(), Refusal> {
    let name = plugin.name_any();
    let spec = &plugin.spec;
    if spec.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        return Err(refuse(
            INVALID_SPEC,
            "spec.image: required in Kubernetes (the plugin runs as a container)",
        ));
    }
    if !(1..=65535).contains(&spec.port) {
        return Err(refuse(
            INVALID_SPEC,
            format!("spec.port: {} is not 1-65535", spec.port),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, e) in spec.env.iter().enumerate() {
        if RESERVED_ENV.contains(&e.name.as_str()) {
            return Err(refuse(
                INVALID_SPEC,
                format!(
                    "spec.env[{i}].name: {} is set by the operator (where the plugin listens and its certificates)",
                    e.name
                ),
            ));
        }
        if !seen.insert(e.name.as_str()) {
            return Err(refuse(
                INVALID_SPEC,
                format!("spec.env[{i}].name: {} appears twice", e.name),
            ));
        }
    }
    match spec.mode {
        PluginMode::Service => {
            if spec.tls.is_none() {
                return Err(refuse(
                    INVALID_SPEC,
                    "spec.tls: required with mode service (mutual TLS between dataplane and plugin)",
                ));
            }
            if spec.transport == PluginTransport::Unix {
                return Err(refuse(
                    INVALID_SPEC,
                    "spec.transport: unix is only possible with mode sidecar",
                ));
            }
            let service = service_name(&name);
            if !is_dns1035_label(&service) {
                return Err(refuse(
                    INVALID_SPEC,
                    format!(
                        "metadata.name: the Service {service:?} of a service-mode plugin must be a DNS label \
                         (lower-case letters, digits and '-', at most 63 characters): use a name of at most 52 \
                         such characters"
                    ),
                ));
            }
        }
        PluginMode::Sidecar => {
            if spec.transport == PluginTransport::Unix && socket_path(&name).len() > MAX_SOCKET_PATH
            {
                return Err(refuse(
                    INVALID_SPEC,
                    format!(
                        "metadata.name: the socket {} would exceed the {MAX_SOCKET_PATH}-byte limit of a Unix socket path; \
                         use a shorter name or transport tcp",
                        socket_path(&name)
                    ),
                ));
            }
        }
    }
    sandbox::security_context(spec.sandbox.as_ref()).map(|_| ())
}

/// The dataplane's own ports, which a `tcp` sidecar (sharing the pod's network namespace)
/// may not use: (port, what it is).
pub const DATAPLANE_PORTS: [(i32, &str); 5] = [
    (IMAP.number, "IMAP"),
    (IMAPS.number, "IMAPS"),
    (LMTP.number, "LMTP"),
    (METRICS.number, "metrics"),
    (ADMIN.number, "admin API"),
];

/// The PluginDeployments of `namespace` that are not being deleted, in precedence order:
/// older first (`creationTimestamp`), then by name.
pub fn of_namespace<'a>(
    plugins: &'a [Arc<PluginDeployment>],
    namespace: &str,
) -> Vec<&'a PluginDeployment> {
    let mut out: Vec<&PluginDeployment> = plugins
        .iter()
        .map(Arc::as_ref)
        .filter(|p| {
            p.namespace().as_deref() == Some(namespace) && p.meta().deletion_timestamp.is_none()
        })
        .collect();
    out.sort_by_key(|p| {
        (
            p.meta().creation_timestamp.as_ref().map(|t| t.0),
            p.name_any(),
        )
    });
    out
}

/// The verdict on each of `plugins` (one namespace's, as [`of_namespace`] gives them), by
/// name: [`check`], then for `tcp` sidecars a port that is neither a dataplane port
/// ([`DATAPLANE_PORTS`]) nor the port of an older sidecar that is itself accepted
/// ([`PORT_CONFLICT`]). The Tenant controller renders the accepted ones; the
/// PluginDeployment controller reports the refusals.
pub fn verdicts(plugins: &[&PluginDeployment]) -> BTreeMap<String, Result<(), Refusal>> {
    let mut used: BTreeMap<i32, String> = DATAPLANE_PORTS
        .iter()
        .map(|(port, what)| (*port, format!("the dataplane's {what} port")))
        .collect();
    let mut out = BTreeMap::new();
    for p in plugins {
        let name = p.name_any();
        let mut verdict = check(p);
        if verdict.is_ok()
            && p.spec.mode == PluginMode::Sidecar
            && p.spec.transport == PluginTransport::Tcp
        {
            let port = p.spec.port;
            match used.get(&port) {
                Some(holder) => {
                    verdict = Err(refuse(
                        PORT_CONFLICT,
                        format!(
                            "spec.port: {port} is {holder}; every sidecar shares the dataplane pod's network, \
                             so choose another port (or transport unix)"
                        ),
                    ))
                }
                None => {
                    used.insert(
                        port,
                        format!("the port of sidecar {name} (created earlier)"),
                    );
                }
            }
        }
        out.insert(name, verdict);
    }
    out
}

/// The controller owner reference to `plugin` that its `service` children carry.
///
/// # Errors
/// [`INVALID_SPEC`] without `metadata.uid` (an object read from the API server has one).
pub fn owner_reference(plugin: &PluginDeployment) -> Result<OwnerReference, Refusal> {
    let uid = plugin
        .meta()
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| refuse(INVALID_SPEC, "metadata.uid: missing"))?;
    Ok(OwnerReference {
        api_version: PluginDeployment::api_version(&()).into_owned(),
        kind: PluginDeployment::kind(&()).into_owned(),
        name: plugin.name_any(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}
