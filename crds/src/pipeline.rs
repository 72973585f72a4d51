//! The `Pipeline` kind: ordered plugin steps run on mail at delivery, APPEND or after it is
//! stored (DESIGN.md §2 and §4).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::duration::Duration;
use crate::reference::LocalObjectRef;

/// A mail-processing pipeline: where it applies, on which stages, and its ordered steps.
///
/// Scopes compose global → tenant default → mailbox selector; a Mailbox's
/// `spec.pipelineRef` replaces them for that mailbox.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "mcp.dev",
    version = "v1alpha1",
    kind = "Pipeline",
    plural = "pipelines",
    shortname = "mcppl",
    category = "mcp",
    namespaced,
    status = "PipelineStatus",
    derive = "PartialEq",
    doc = "An ordered list of plugin steps run on mail at delivery (LMTP), IMAP APPEND, or after storage, for the tenant's mailboxes or a label-selected subset.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Scope","type":"string","jsonPath":".spec.scope.type"}"#,
    printcolumn = r#"{"name":"Stages","type":"string","jsonPath":".spec.stages"}"#,
    printcolumn = r#"{"name":"Dry-Run","type":"boolean","jsonPath":".spec.dryRun"}"#,
    printcolumn = r#"{"name":"Skipped","type":"string","jsonPath":".status.suspendedSteps"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","priority":1,"jsonPath":".status.compiledRevision"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.steps.all(s, duration(s.timeout) <= duration(self.deadline))").message("every step timeout must be at most spec.deadline").field_path(".steps"))]
pub struct PipelineSpec {
    /// Which mailboxes of the tenant this pipeline runs for.
    pub scope: PipelineScope,
    /// The stages it runs on, each at most once: `deliver` (LMTP, per recipient, before the
    /// message is stored), `append` (IMAP APPEND, before storing), `post-store`
    /// (asynchronously after storing; verdicts cannot reject any more, mutations still
    /// apply).
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub stages: Vec<Stage>,
    /// The steps, run in this order; each sees the previous steps' mutations. 1 to 32 steps,
    /// names unique.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub steps: Vec<PipelineStep>,
    /// Time budget for the whole pipeline per message (`30s`, default). When it runs out the
    /// current step is cancelled and handled by its `onError`; later steps do not run. Every
    /// step's `timeout` must be at most this.
    #[serde(default = "default_deadline")]
    pub deadline: Duration,
    /// Monitor mode: run every step and record the verdicts and mutations it would apply (in
    /// status, metrics and logs) without changing or rejecting any message. Default `false`.
    #[serde(default)]
    pub dry_run: bool,
}

impl PipelineSpec {
    /// The compiled revision of this spec: the first 16 hex digits of the SHA-256 of its
    /// canonical JSON form. Operator (`status.compiledRevision`) and dataplane (metrics,
    /// logs, the dry-run record) compute it the same way, so they can be compared.
    pub fn revision(&self) -> String {
        use sha2::Digest;
        // serde_json writes struct fields in declaration order and maps (free-form configs)
        // sorted, so equal specs give equal bytes.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = sha2::Sha256::digest(&json);
        hex::encode(&digest[..8])
    }
}

fn default_deadline() -> Duration {
    Duration::from_secs(30)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The namespace whose `Global` Pipelines apply to every tenant: the operator's own namespace
/// in Kubernetes, and the same name in standalone mode.
pub const PLATFORM_NAMESPACE: &str = "mcp-system";

/// Where a pipeline applies.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'MailboxSelector' ? has(self.mailboxSelector) : !has(self.mailboxSelector)").message("mailboxSelector is required with type MailboxSelector and forbidden with the other types"))]
pub struct PipelineScope {
    /// `Global`: every mailbox of every tenant, run first; honoured only in the platform
    /// namespace (`mcp-system`, the operator's), ignored with a warning elsewhere.
    /// `TenantDefault`: every mailbox of the namespace's tenant (at most one such Pipeline
    /// per stage), run after the global ones. `MailboxSelector`: the Mailboxes whose labels
    /// match `mailboxSelector`, run after the tenant default, in name order.
    #[serde(rename = "type")]
    pub type_: ScopeType,
    /// Label selector over the Mailboxes of this namespace; required with
    /// `type: MailboxSelector`. A Mailbox whose labels change starts or stops matching at
    /// its next message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_selector: Option<LabelSelector>,
}

/// Kinds of pipeline scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ScopeType {
    /// All mailboxes of all tenants (platform policy), from the platform namespace only.
    Global,
    /// All mailboxes of the tenant.
    #[default]
    TenantDefault,
    /// Mailboxes matching a label selector.
    MailboxSelector,
}

/// The points in a message's life where pipelines run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Stage {
    /// LMTP delivery, once per recipient, before the message is stored.
    #[serde(rename = "deliver")]
    Deliver,
    /// IMAP APPEND, before the message is stored.
    #[serde(rename = "append")]
    Append,
    /// After the message is stored, asynchronously.
    #[serde(rename = "post-store")]
    PostStore,
}

/// One step of a pipeline: a plugin call with its configuration and failure policy.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.retry) || self.onError == 'retry'").message("retry is only allowed with onError: retry"))]
pub struct PipelineStep {
    /// Step name, a DNS label unique in the pipeline; used in metrics, logs and the dry-run
    /// record.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    )]
    pub name: String,
    /// The plugin to call: a built-in one or a PluginDeployment in this namespace.
    pub plugin: PluginRef,
    /// Plugin-specific configuration, merged over the PluginDeployment's `defaultConfig` and
    /// checked against its `configSchema`. Free-form object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub config: Option<serde_json::Value>,
    /// Longest time one call of this step may take (`5s`, default). At most
    /// `spec.deadline`. A call that exceeds it counts as a plugin failure (see `onError`).
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// What a plugin failure (error, crash, timeout; not a verdict) does to the message:
    /// `failOpen` continues with the next step as if this one returned `Continue`;
    /// `failClosed` (default) answers a temporary failure (LMTP 451, APPEND `NO
    /// [UNAVAILABLE]`) so the sender retries; `quarantine` stores the message in the
    /// quarantine folder; `retry` calls the plugin again as `retry` says, then fails closed.
    #[serde(default)]
    pub on_error: OnError,
    /// Retry policy, only with `onError: retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// The plugin a step calls: exactly one of `builtin` and `name`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.builtin) != has(self.name)").message("exactly one of builtin and name must be set"))]
pub struct PluginRef {
    /// A plugin built into the dataplane, run in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinPlugin>,
    /// Name of a PluginDeployment in this namespace. Its declared stages must include every
    /// stage of this pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
}

impl PluginRef {
    /// The PluginDeployment this step refers to, if it is not a built-in.
    pub fn deployment(&self) -> Option<LocalObjectRef> {
        self.name.clone().map(|name| LocalObjectRef { name })
    }
}

/// Plugins that run inside the dataplane (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinPlugin {
    /// Data-loss prevention: card numbers (Luhn), IBANs, SSNs, cloud keys.
    Dlp,
    /// Adds or changes headers.
    HeaderTagger,
    /// Rejects or quarantines messages above a size.
    SizeLimit,
    /// Acts on attachment types, names and sizes.
    AttachmentPolicy,
    /// Spam scoring through rspamd's HTTP API.
    Rspamd,
    /// Virus scanning through clamd's INSTREAM command.
    Clamav,
}

/// Policy for a plugin failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// Continue as if the step returned `Continue`.
    FailOpen,
    /// Temporary failure; the sender or client retries later.
    #[default]
    FailClosed,
    /// Store the message in quarantine.
    Quarantine,
    /// Call again per `retry`, then fail closed.
    Retry,
}

/// How a failing step is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Further calls after the first failure (1 to 5). Default 2. Each attempt has its own
    /// `timeout`; all of them together stay within the pipeline's `deadline`.
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 5))]
    pub attempts: i32,
    /// Pause before each retry (`200ms`, default).
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
}

fn two() -> i32 {
    2
}

fn default_backoff() -> Duration {
    Duration::from_millis(200)
}

/// What the platform observed about a Pipeline.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// The `.metadata.generation` last validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// True when every step's plugin exists, declares the pipeline's stages and accepts the
    /// step's config.
    #[serde(default)]
    pub validated: bool,
    /// Content hash of the compiled pipeline the dataplanes run; changes whenever the
    /// effective steps or configs change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_revision: Option<String>,
    /// Names of the steps skipped because the PluginDeployment they call is suspended
    /// (`spec.suspend`), in step order; empty when none is. A skipped step is passed over as
    /// if absent (no call, no `onError`); the condition `StepsSkipped` says the same in
    /// words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub suspended_steps: Vec<String>,
    /// Conditions, a list-map keyed on `type`; `Ready` first. `Ready` is `True` when the
    /// pipeline is validated and every dataplane runs `compiledRevision` (with the same
    /// steps skipped as `suspendedSteps` says).
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
