//! The `PluginDeployment` kind: an external plugin (gRPC `mcp.plugin.v1.MailProcessor`) the
//! operator runs as a sidecar of the dataplane or as a Service (DESIGN.md §2 and §4).

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, SecurityContext};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::pipeline::Stage;
use crate::reference::SecretRef;

/// An external plugin: its image, the protocol versions and stages it supports, what it may
/// change in a message, and how it is run and sandboxed.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "PluginDeployment",
    plural = "plugindeployments",
    shortname = "mcppd",
    category = "mcp",
    namespaced,
    status = "PluginDeploymentStatus",
    derive = "PartialEq",
    doc = "An external mail-processing plugin (gRPC mcp.plugin.v1.MailProcessor): image, supported protocol versions, declared stages and capabilities, body mode, default config, and how it runs (sidecar or Service) and is sandboxed.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Protocol","type":"integer","jsonPath":".status.negotiatedVersion"}"#,
    printcolumn = r#"{"name":"Endpoints","type":"integer","jsonPath":".status.readyEndpoints"}"#,
    printcolumn = r#"{"name":"Image","type":"string","priority":1,"jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode == 'service' ? has(self.tls) : !has(self.tls)").message("tls (mTLS client and server certificates) is required with mode service and forbidden with mode sidecar").field_path(".tls"))]
#[x_kube(validation = Rule::new("self.mode == 'service' || !has(self.replicas)").message("replicas is only allowed with mode service; a sidecar runs in every dataplane pod").field_path(".replicas"))]
#[x_kube(validation = Rule::new("!has(self.maxBodySize) || self.bodyMode == 'buffered' || self.bodyMode == 'streamed'").message("maxBodySize is only allowed with bodyMode buffered or streamed").field_path(".maxBodySize"))]
#[x_kube(validation = Rule::new("has(self.image)").message("image is required in Kubernetes: the plugin runs as a container (only standalone mode runs command without an image)").field_path(".image"))]
#[x_kube(validation = Rule::new("self.mode == 'sidecar' || self.transport == 'tcp'").message("transport unix is only allowed with mode sidecar; a service-mode plugin is reached over TCP with mutual TLS").field_path(".transport"))]
pub struct PluginDeploymentSpec {
    /// Container image, by digest for reproducibility (`registry/plugin@sha256:...`) or tag.
    /// Changing it rolls the sidecars or the Service's pods. Required in Kubernetes; unused
    /// in standalone mode, which runs `command` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub image: Option<String>,
    /// The program and its arguments. In Kubernetes, the container's `command` (replaces
    /// the image's entrypoint; absent keeps it). In standalone mode, the process the dataplane
    /// starts, supervises (restarts with backoff) and whose output it logs; absent there
    /// means the plugin is run by someone else and only connected to. The plugin finds
    /// where to listen in [`ENV_LISTEN`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub command: Vec<String>,
    /// Arguments appended to `command` (Kubernetes: the container's `args`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub args: Vec<String>,
    /// Extra environment of the plugin. `valueFrom` (Secret and ConfigMap keys) works in
    /// Kubernetes only; standalone mode refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub env: Vec<EnvVar>,
    /// How a sidecar is reached: `tcp` (default) on `127.0.0.1:port`, or `unix`, a socket
    /// named `<name>.sock` in a directory shared by the dataplane and its sidecars
    /// ([`SIDECAR_SOCKET_DIR`] in Kubernetes). A `service` plugin is always reached over TCP.
    #[serde(default)]
    pub transport: PluginTransport,
    /// Plugin protocol versions the image implements; the dataplane picks the highest it
    /// also supports at `Initialize` (reported in `status.negotiatedVersion`).
    pub protocol: ProtocolRange,
    /// Pipeline stages the plugin may be used on. A Pipeline step that uses it on another
    /// stage fails validation.
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub stages: Vec<Stage>,
    /// Mutations the plugin may return. Any other mutation in a reply is a plugin failure
    /// (handled by the step's `onError`). Empty means verdicts only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub capabilities: Vec<Capability>,
    /// How much of each message the plugin receives: `none` (envelope only), `headers`
    /// (default), `buffered` (whole message in one request, up to `maxBodySize`), `streamed`
    /// (chunks). More body costs more latency and memory.
    #[serde(default)]
    pub body_mode: BodyMode,
    /// Largest body sent with `buffered` or `streamed` (`10Mi`). Larger messages are sent
    /// headers-only, with a flag saying the body was withheld. Default `10Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<Quantity>,
    /// Configuration used by every step that calls this plugin; a step's `config` is merged
    /// over it. Free-form object, checked against `configSchema` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub default_config: Option<serde_json::Value>,
    /// JSON Schema (draft 2020-12) the merged config of each step must satisfy. Absent means
    /// any object is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub config_schema: Option<serde_json::Value>,
    /// `sidecar` (default): a container in every dataplane pod, reached over loopback.
    /// `service`: its own Deployment and Service, reached with mutual TLS; shared by all
    /// dataplane pods. Changing it re-creates the workloads.
    #[serde(default)]
    pub mode: PluginMode,
    /// gRPC port the plugin listens on. Default 50051.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Pods of the plugin's Deployment, `service` mode only. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: Option<i32>,
    /// Certificates for mutual TLS, `service` mode only (required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PluginTls>,
    /// Resource limits and security context of the plugin container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    /// Stops the plugin without deleting it (default `false`; as `suspend` of a CronJob).
    /// While `true` the plugin does not run: in Kubernetes no sidecar is rendered (the
    /// dataplane pods roll) and a `service` plugin's Deployment is scaled to 0 replicas
    /// (its Service and certificates stay, the dataplane pods do not roll); in standalone
    /// mode the dataplane stops its process, or stops connecting to it. Every Pipeline step
    /// that calls it is skipped as if absent: the message goes on to the next step without
    /// the step's effect, and without its `onError` (a skip is not a failure). Skips are
    /// counted (`mcp_pipeline_step_skipped_total`), listed in the Pipelines' status
    /// (`suspendedSteps`) and in each message's `pipeline.skipped` metadata. Setting it back
    /// to `false` starts the plugin again and its steps run once it serves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(extend("default" = false))]
    pub suspend: bool,
}

fn default_port() -> i32 {
    50051
}

/// Environment variable telling a plugin where to listen: `tcp://IP:PORT` or
/// `unix:///absolute/path.sock`. Set by the operator (container env) and by the standalone
/// supervisor; read by the SDK (`plugins/sdk`).
pub const ENV_LISTEN: &str = "MCP_PLUGIN_LISTEN";
/// Environment variable with the path of the PEM certificate chain a `service` plugin serves.
pub const ENV_TLS_CERT: &str = "MCP_PLUGIN_TLS_CERT";
/// Environment variable with the path of the PEM private key of [`ENV_TLS_CERT`].
pub const ENV_TLS_KEY: &str = "MCP_PLUGIN_TLS_KEY";
/// Environment variable with the path of the PEM CA bundle a `service` plugin requires
/// client certificates (the dataplane's) to chain to.
pub const ENV_TLS_CLIENT_CA: &str = "MCP_PLUGIN_TLS_CLIENT_CA";
/// Directory shared (an `emptyDir`) by the dataplane container and its `unix` sidecars; the
/// socket of PluginDeployment `x` is `<dir>/x.sock`.
pub const SIDECAR_SOCKET_DIR: &str = "/var/run/mcp/plugins";
/// Directory under which the dataplane container finds the client certificate of each
/// `service` plugin: `<dir>/<name>/{tls.crt,tls.key,ca.crt}` (the `clientSecretRef` Secret).
pub const CLIENT_TLS_DIR: &str = "/etc/mcp/plugin-client-tls";
/// Directory where a `service` plugin's container finds its server certificate
/// (`tls.crt`, `tls.key`, `ca.crt` of `serverSecretRef`).
pub const SERVER_TLS_DIR: &str = "/etc/mcp/plugin-tls";

/// Name of the Service (and Deployment) of `service`-mode PluginDeployment `name`.
pub fn service_name(name: &str) -> String {
    format!("mcp-plugin-{name}")
}

/// How a sidecar plugin is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PluginTransport {
    /// Loopback TCP, `127.0.0.1:port`.
    #[default]
    Tcp,
    /// A Unix domain socket in a shared directory.
    Unix,
}

/// An inclusive range of plugin protocol versions.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.min <= self.max").message("protocol.min must not exceed protocol.max"))]
pub struct ProtocolRange {
    /// Lowest protocol version the plugin speaks (≥ 1).
    #[schemars(range(min = 1, max = 1000))]
    pub min: i32,
    /// Highest protocol version the plugin speaks (≥ `min`).
    #[schemars(range(min = 1, max = 1000))]
    pub max: i32,
}

/// A mutation a plugin may return (DESIGN.md §4).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// Add a header field.
    AddHeader,
    /// Change an existing header field.
    ChangeHeader,
    /// Remove a header field.
    RemoveHeader,
    /// Replace the message body.
    ReplaceBody,
    /// Add an IMAP keyword.
    AddKeyword,
    /// Add a system flag (`\Flagged`, `\Seen`, ...).
    AddFlag,
    /// File the message into another folder.
    FileInto,
    /// Attach metadata to the stored message.
    SetMetadata,
}

/// How much of the message a plugin receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BodyMode {
    /// Envelope (sender, recipients) only.
    None,
    /// Envelope and header section.
    #[default]
    Headers,
    /// The whole message in one request.
    Buffered,
    /// The whole message in chunks.
    Streamed,
}

/// How the plugin is run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PluginMode {
    /// A container in each dataplane pod, over loopback.
    #[default]
    Sidecar,
    /// A Deployment and Service of its own, over mutual TLS.
    Service,
}

/// Mutual TLS between dataplane and a `service`-mode plugin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginTls {
    /// A `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt`, as cert-manager
    /// writes it: the plugin serves with it and accepts clients signed by `ca.crt`.
    pub server_secret_ref: SecretRef,
    /// The same kind of Secret for the dataplane's client certificate.
    pub client_secret_ref: SecretRef,
}

/// Isolation of the plugin container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// CPU and memory requests and limits. Absent means 100m CPU / 128Mi requested, 256Mi
    /// memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Container security context. Absent means non-root, read-only root filesystem, no
    /// privilege escalation, all capabilities dropped, RuntimeDefault seccomp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

/// What the platform observed about a PluginDeployment.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginDeploymentStatus {
    /// The `.metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Plugin endpoints that answered the health check (sidecars across dataplane pods, or
    /// Service pods).
    #[serde(default)]
    pub ready_endpoints: i32,
    /// The protocol version agreed at `Initialize`; absent until a dataplane has connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated_version: Option<i32>,
    /// Conditions, a list-map keyed on `type`; `Ready` first. `Ready` is `True` when at
    /// least one endpoint is ready and a protocol version was agreed, and `False` with
    /// reason `Suspended` while `spec.suspend` is `true`.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
