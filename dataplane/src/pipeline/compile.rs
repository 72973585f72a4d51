//! Compiling Pipeline resources into the form the engine runs ([`PipelineSet`]).
//!
//! Compilation checks what the API server's CEL rules check in Kubernetes (standalone has no
//! API server) and what only the dataplane can check: each built-in step's config
//! ([`mcp_plugins_builtin::instantiate`]), one `TenantDefault` Pipeline per stage and
//! tenant, label selectors that parse. A set either compiles whole or not at all, so a
//! reload never runs half a change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::core::Selector;
use kube::core::labels::SelectorExt;
use mcp_crds::Pipeline;
use mcp_crds::dataplane::LoadedPipeline;
use mcp_crds::pipeline::{OnError, PLATFORM_NAMESPACE, ScopeType, Stage};
use mcp_plugin_api::{Capabilities, MessageContext, Plugin, PluginError, StepOutput};

/// A Pipeline that cannot run. Names the resource and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Pipeline {namespace}/{name}: {field}: {message}")]
pub struct CompileError {
    /// The Pipeline's namespace.
    pub namespace: String,
    /// The Pipeline's name.
    pub name: String,
    /// Path of the offending field, e.g. `spec.steps[1].config`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// How a failing step is retried, from `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Further calls after the first failure (1 to 5).
    pub attempts: u32,
    /// Pause before each further call.
    pub backoff: Duration,
}

/// One step, ready to call.
pub struct CompiledStep {
    /// The step's name.
    pub name: String,
    /// The plugin's name for metrics and logs: a built-in's name (`dlp`) or
    /// `deployment/<name>` for a PluginDeployment.
    pub plugin_name: String,
    /// The plugin.
    pub plugin: Arc<dyn Plugin>,
    /// What the plugin may change; checked on every reply.
    pub capabilities: Capabilities,
    /// Longest time one call may take.
    pub timeout: Duration,
    /// What a failure does.
    pub on_error: OnError,
    /// With `onError: retry`.
    pub retry: Option<Retry>,
    /// The step calls a suspended PluginDeployment (`spec.suspend`): the engine passes over
    /// it as if it were absent (no call, no `onError`) and counts the skip; `plugin` is a
    /// stand-in that is never called.
    pub suspended: bool,
}

impl std::fmt::Debug for CompiledStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledStep")
            .field("name", &self.name)
            .field("plugin", &self.plugin_name)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("suspended", &self.suspended)
            .finish_non_exhaustive()
    }
}

/// Where a compiled pipeline applies.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every mailbox of every tenant.
    Global,
    /// Every mailbox of its tenant.
    TenantDefault,
    /// The mailboxes whose labels match.
    Selector(Selector),
}

/// One Pipeline, ready to run.
#[derive(Debug)]
pub struct CompiledPipeline {
    /// The Pipeline's namespace.
    pub namespace: String,
    /// The Pipeline's name.
    pub name: String,
    /// [`mcp_crds::PipelineSpec::revision`].
    pub revision: String,
    /// The tenant it belongs to; `None` for a global pipeline.
    pub tenant: Option<String>,
    /// Where it applies.
    pub scope: Scope,
    /// The stages it runs on.
    pub stages: BTreeSet<Stage>,
    /// Its steps, in order.
    pub steps: Vec<CompiledStep>,
    /// Time budget per message.
    pub deadline: Duration,
    /// Monitor mode.
    pub dry_run: bool,
}

impl CompiledPipeline {
    /// `namespace/name@revision`, as logs and records show it.
    pub fn label(&self) -> String {
        format!("{}/{}@{}", self.namespace, self.name, self.revision)
    }

    /// The names of the steps skipped because their PluginDeployment is suspended, in
    /// step order.
    pub fn skipped_steps(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.suspended)
            .map(|s| s.name.clone())
            .collect()
    }

    fn loaded(&self) -> LoadedPipeline {
        LoadedPipeline {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            revision: self.revision.clone(),
            skipped_steps: self.skipped_steps(),
        }
    }
}

/// Every compiled pipeline of a dataplane; immutable, swapped whole on reload.
#[derive(Debug, Default)]
pub struct PipelineSet {
    global: Vec<Arc<CompiledPipeline>>,
    /// tenant → pipelines, by name.
    tenants: BTreeMap<String, BTreeMap<String, Arc<CompiledPipeline>>>,
    loaded: Vec<LoadedPipeline>,
    ignored: Vec<String>,
}

/// What [`PipelineSet::select`] needs to know about a mailbox.
#[derive(Clone, Copy, Debug)]
pub struct MailboxScope<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The Mailbox's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The Mailbox's `spec.pipelineRef.name`.
    pub pipeline_ref: Option<&'a str>,
}

impl PipelineSet {
    /// The pipelines in force, in file order, for the admin API.
    pub fn loaded(&self) -> &[LoadedPipeline] {
        &self.loaded
    }

    /// Pipelines that compiled but are not used, with why (a `Global` Pipeline outside
    /// [`PLATFORM_NAMESPACE`]).
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// A set of already compiled pipelines, filed by their scope and tenant as [`compile`]
    /// does (without its checks). For tests that run plugins no Pipeline can name, such as
    /// the fault-injection ones.
    pub fn from_compiled(pipelines: Vec<CompiledPipeline>) -> Self {
        let mut set = PipelineSet::default();
        for p in pipelines {
            set.loaded.push(p.loaded());
            let p = Arc::new(p);
            match (&p.scope, &p.tenant) {
                (Scope::Global, _) => set.global.push(p),
                (_, Some(t)) => {
                    set.tenants
                        .entry(t.clone())
                        .or_default()
                        .insert(p.name.clone(), p);
                }
                (_, None) => {}
            }
        }
        set.global.sort_by(|a, b| a.name.cmp(&b.name));
        set
    }

    /// Whether no pipeline is loaded at all.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }

    /// The pipelines that run for `mailbox` on `stage`, in order (DESIGN.md §4, scopes
    /// compose global → tenant → mailbox): the global ones by name; then the Mailbox's
    /// `pipelineRef` if it names a Pipeline of its tenant, otherwise the tenant default
    /// followed by the matching selector-scoped ones by name.
    ///
    /// A `pipelineRef` naming no loaded Pipeline falls back to the tenant's pipelines (the
    /// operator reports the dangling reference; mail keeps flowing through the default
    /// policy rather than none).
    pub fn select(&self, stage: Stage, mailbox: MailboxScope<'_>) -> Vec<Arc<CompiledPipeline>> {
        let mut out: Vec<Arc<CompiledPipeline>> = self
            .global
            .iter()
            .filter(|p| p.stages.contains(&stage))
            .cloned()
            .collect();
        let Some(own) = self.tenants.get(mailbox.tenant) else {
            return out;
        };
        if let Some(p) = mailbox.pipeline_ref.and_then(|r| own.get(r)) {
            if p.stages.contains(&stage) {
                out.push(Arc::clone(p));
            }
            return out;
        }
        let on_stage = || own.values().filter(|p| p.stages.contains(&stage));
        out.extend(
            on_stage()
                .filter(|p| matches!(p.scope, Scope::TenantDefault))
                .cloned(),
        );
        out.extend(
            on_stage()
                .filter(|p| match &p.scope {
                    Scope::Selector(s) => s.matches(mailbox.labels),
                    _ => false,
                })
                .cloned(),
        );
        out
    }
}

/// A step naming a PluginDeployment, as the compiler hands it to [`ExternalPlugins`].
#[derive(Clone, Copy, Debug)]
pub struct ExternalStep<'a> {
    /// The Pipeline's namespace (the PluginDeployment's too).
    pub namespace: &'a str,
    /// The Pipeline's name.
    pub pipeline: &'a str,
    /// The step's name.
    pub step: &'a str,
    /// `spec.steps[].plugin.name`.
    pub deployment: &'a str,
    /// The Pipeline's stages; the PluginDeployment must declare each.
    pub stages: &'a BTreeSet<Stage>,
    /// The step's `config`.
    pub config: Option<&'a serde_json::Value>,
    /// The step's timeout.
    pub timeout: Duration,
}

/// Why an external step cannot compile: the field under `spec.steps[i]` (`.plugin.name`,
/// `.config`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalError {
    /// Path under the step, starting with `.`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// What a step naming a PluginDeployment compiles to.
#[derive(Clone)]
pub enum Resolved {
    /// The plugin to call.
    Plugin(Arc<dyn Plugin>),
    /// The PluginDeployment is unknown, and that is not an error (managed mode: the
    /// operator reports the reference): its calls fail as unavailable and `onError`
    /// applies.
    Unknown,
    /// The PluginDeployment is suspended (`spec.suspend`): the step is skipped as if
    /// absent. Its stages and config were checked all the same, so that resuming the
    /// plugin cannot make the Pipeline invalid.
    Suspended,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resolved::Plugin(_) => "Plugin",
            Resolved::Unknown => "Unknown",
            Resolved::Suspended => "Suspended",
        })
    }
}

/// Where the compiler gets the plugin of a step that names a PluginDeployment: the plugin
/// host's [`Plan`](crate::plugin_host::Plan).
pub trait ExternalPlugins {
    /// What `step` calls (see [`Resolved`]).
    ///
    /// # Errors
    /// [`ExternalError`] for an unknown PluginDeployment where that is an error, one that
    /// does not declare a stage of the Pipeline, or a config that cannot be merged (also
    /// for a suspended one).
    fn plugin(&self, step: &ExternalStep<'_>) -> Result<Resolved, ExternalError>;
}

/// No plugin host: every external step fails as unavailable.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExternalPlugins;

impl ExternalPlugins for NoExternalPlugins {
    fn plugin(&self, _step: &ExternalStep<'_>) -> Result<Resolved, ExternalError> {
        Ok(Resolved::Unknown)
    }
}

/// A plugin that cannot be reached: every call fails as unavailable, so the step's
/// `onError` decides at once.
struct Unreachable(String);

impl Plugin for Unreachable {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    fn process<'a>(
        &'a self,
        _message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        let why = self.0.clone();
        Box::pin(async move { Err(PluginError::Unavailable(why)) })
    }
}

/// Compiles `pipelines`; `tenant_of` maps a namespace to its tenant's name, `external`
/// provides the plugins of steps naming a PluginDeployment.
///
/// Global pipelines outside [`PLATFORM_NAMESPACE`] compile (so their errors show) but are
/// listed in [`PipelineSet::ignored`] instead of running. A non-global Pipeline in a
/// namespace of no tenant is an error.
///
/// # Errors
/// The first [`CompileError`], in input order.
pub fn compile(
    pipelines: &[Pipeline],
    tenant_of: &dyn Fn(&str) -> Option<String>,
    external: &dyn ExternalPlugins,
) -> Result<PipelineSet, CompileError> {
    let mut set = PipelineSet::default();
    // (tenant, stage) → name of its TenantDefault pipeline.
    let mut defaults: BTreeMap<(String, Stage), String> = BTreeMap::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for p in pipelines {
        let compiled = compile_one(p, tenant_of, external)?;
        let err = |field: &str, message: String| CompileError {
            namespace: compiled.namespace.clone(),
            name: compiled.name.clone(),
            field: field.into(),
            message,
        };
        if !seen.insert((compiled.namespace.clone(), compiled.name.clone())) {
            return Err(err("metadata.name", "defined twice".into()));
        }
        if let (Scope::TenantDefault, Some(tenant)) = (&compiled.scope, &compiled.tenant) {
            for stage in &compiled.stages {
                let key = (tenant.clone(), *stage);
                if let Some(other) = defaults.get(&key) {
                    return Err(err(
                        "spec.scope",
                        format!(
                            "tenant {tenant:?} already has the TenantDefault pipeline {other:?} on stage {}; at most one per stage",
                            stage_name(*stage)
                        ),
                    ));
                }
                defaults.insert(key, compiled.name.clone());
            }
        }
        set.loaded.push(compiled.loaded());
        let compiled = Arc::new(compiled);
        match (&compiled.scope, &compiled.tenant) {
            (Scope::Global, _) if compiled.namespace != PLATFORM_NAMESPACE => {
                set.ignored.push(format!(
                    "Pipeline {}/{}: scope Global is honoured only in namespace {PLATFORM_NAMESPACE}",
                    compiled.namespace, compiled.name
                ));
            }
            (Scope::Global, _) => set.global.push(compiled),
            (_, Some(tenant)) => {
                set.tenants
                    .entry(tenant.clone())
                    .or_default()
                    .insert(compiled.name.clone(), compiled);
            }
            (_, None) => {}
        }
    }
    set.global.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(set)
}

/// The stage's name as written in a Pipeline.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Deliver => "deliver",
        Stage::Append => "append",
        Stage::PostStore => "post-store",
    }
}

fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn compile_one(
    p: &Pipeline,
    tenant_of: &dyn Fn(&str) -> Option<String>,
    external: &dyn ExternalPlugins,
) -> Result<CompiledPipeline, CompileError> {
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    let err = |field: String, message: String| CompileError {
        namespace: namespace.clone(),
        name: name.clone(),
        field,
        message,
    };
    if namespace.is_empty() || name.is_empty() {
        return Err(err(
            "metadata".into(),
            "name and namespace are required".into(),
        ));
    }
    let spec = &p.spec;
    let scope = match spec.scope.type_ {
        ScopeType::Global => Scope::Global,
        ScopeType::TenantDefault => Scope::TenantDefault,
        ScopeType::MailboxSelector => {
            let Some(sel) = spec.scope.mailbox_selector.clone() else {
                return Err(err(
                    "spec.scope.mailboxSelector".into(),
                    "required with type MailboxSelector".into(),
                ));
            };
            Scope::Selector(
                Selector::try_from(sel)
                    .map_err(|e| err("spec.scope.mailboxSelector".into(), e.to_string()))?,
            )
        }
    };
    if spec.scope.mailbox_selector.is_some() && !matches!(scope, Scope::Selector(_)) {
        return Err(err(
            "spec.scope.mailboxSelector".into(),
            "only allowed with type MailboxSelector".into(),
        ));
    }
    let tenant = match scope {
        Scope::Global => None,
        _ => Some(tenant_of(&namespace).ok_or_else(|| {
            err(
                "metadata.namespace".into(),
                format!("namespace {namespace:?} belongs to no Tenant"),
            )
        })?),
    };
    let stages: BTreeSet<Stage> = spec.stages.iter().copied().collect();
    if stages.is_empty() || stages.len() != spec.stages.len() {
        return Err(err(
            "spec.stages".into(),
            "1 to 3 stages, each at most once".into(),
        ));
    }
    if spec.steps.is_empty() || spec.steps.len() > 32 {
        return Err(err("spec.steps".into(), "1 to 32 steps".into()));
    }
    let deadline = spec.deadline.get();
    let mut names = BTreeSet::new();
    let mut steps = Vec::with_capacity(spec.steps.len());
    for (i, s) in spec.steps.iter().enumerate() {
        let field = |f: &str| format!("spec.steps[{i}]{f}");
        if !dns_label(&s.name) {
            return Err(err(
                field(".name"),
                format!("{:?} is not a DNS label", s.name),
            ));
        }
        if !names.insert(s.name.as_str()) {
            return Err(err(field(".name"), format!("{:?} is used twice", s.name)));
        }
        let timeout = s.timeout.get();
        if timeout > deadline {
            return Err(err(
                field(".timeout"),
                format!(
                    "{} is longer than spec.deadline {}",
                    s.timeout, spec.deadline
                ),
            ));
        }
        if s.retry.is_some() && s.on_error != OnError::Retry {
            return Err(err(
                field(".retry"),
                "only allowed with onError: retry".into(),
            ));
        }
        let retry = match (s.on_error, &s.retry) {
            (OnError::Retry, Some(r)) => Some(Retry {
                attempts: u32::try_from(r.attempts.clamp(1, 5)).unwrap_or(1),
                backoff: r.backoff.get(),
            }),
            (OnError::Retry, None) => Some(Retry {
                attempts: 2,
                backoff: Duration::from_millis(200),
            }),
            _ => None,
        };
        let (plugin_name, plugin, suspended): (String, Arc<dyn Plugin>, bool) =
            match (&s.plugin.builtin, &s.plugin.name) {
                (Some(b), None) => (
                    mcp_plugins_builtin::name(*b).to_owned(),
                    mcp_plugins_builtin::instantiate(*b, s.config.as_ref())
                        .map_err(|e| err(field(".config"), e.to_string()))?,
                    false,
                ),
                (None, Some(d)) => {
                    let step = ExternalStep {
                        namespace: &namespace,
                        pipeline: &name,
                        step: &s.name,
                        deployment: d,
                        stages: &stages,
                        config: s.config.as_ref(),
                        timeout,
                    };
                    let resolved = external
                        .plugin(&step)
                        .map_err(|e| err(field(e.field), e.message))?;
                    let (plugin, suspended): (Arc<dyn Plugin>, bool) = match resolved {
                        Resolved::Plugin(p) => (p, false),
                        Resolved::Unknown => (
                            Arc::new(Unreachable(format!(
                                "PluginDeployment {d:?} is not known to this dataplane"
                            ))),
                            false,
                        ),
                        Resolved::Suspended => (
                            Arc::new(Unreachable(format!("PluginDeployment {d:?} is suspended"))),
                            true,
                        ),
                    };
                    (format!("deployment/{d}"), plugin, suspended)
                }
                _ => {
                    return Err(err(
                        field(".plugin"),
                        "exactly one of builtin and name must be set".into(),
                    ));
                }
            };
        steps.push(CompiledStep {
            name: s.name.clone(),
            plugin_name,
            capabilities: plugin.capabilities(),
            plugin,
            timeout,
            on_error: s.on_error,
            retry,
            suspended,
        });
    }
    Ok(CompiledPipeline {
        revision: spec.revision(),
        namespace,
        name,
        tenant,
        scope,
        stages,
        steps,
        deadline,
        dry_run: spec.dry_run,
    })
}
