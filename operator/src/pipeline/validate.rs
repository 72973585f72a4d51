//! Validation of one Pipeline against its namespace: pure, from cached objects.
//!
//! The checks, in order (the first failure is the reason):
//! 1. A `Global` Pipeline lives in the platform namespace [`PLATFORM_NAMESPACE`]
//!    (`GlobalOutsidePlatformNamespace`: the dataplane honours it nowhere else); any other
//!    Pipeline lives in a namespace that belongs to a Tenant (`TenantNotFound`).
//! 2. Each step, in order: a built-in plugin must accept the step's `config`
//!    (`mcp_plugins_builtin::instantiate`, the function the dataplane runs it with:
//!    `InvalidConfig`, the message naming the step and the field); a PluginDeployment
//!    must exist in the namespace (`PluginNotFound`) and declare every stage of the Pipeline
//!    (`StageNotDeclared`).
//! 3. At most one `TenantDefault` Pipeline per stage and namespace: of two that share a stage
//!    the older one (`creationTimestamp`, then name) wins; the other is `ScopeConflict`.

use std::sync::Arc;

use kube::{Resource, ResourceExt};
use mcp_crds::pipeline::{PLATFORM_NAMESPACE, PipelineStep, ScopeType, Stage};
use mcp_crds::{Pipeline, PluginDeployment};

/// The namespace belongs to no Tenant.
pub const TENANT_NOT_FOUND: &str = "TenantNotFound";
/// A `Global` Pipeline outside the platform namespace [`PLATFORM_NAMESPACE`].
pub const GLOBAL_OUTSIDE_PLATFORM_NAMESPACE: &str = "GlobalOutsidePlatformNamespace";
/// A built-in plugin refused a step's config.
pub const INVALID_CONFIG: &str = "InvalidConfig";
/// A step names a PluginDeployment that does not exist.
pub const PLUGIN_NOT_FOUND: &str = "PluginNotFound";
/// A step's PluginDeployment does not declare one of the Pipeline's stages.
pub const STAGE_NOT_DECLARED: &str = "StageNotDeclared";
/// Another, older `TenantDefault` Pipeline of the namespace runs on one of the same stages.
pub const SCOPE_CONFLICT: &str = "ScopeConflict";
/// Every check passed.
pub const VALID: &str = "Valid";

/// Why a Pipeline is invalid: a CamelCase reason (one of the constants of this module) and a
/// message naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// CamelCase reason, e.g. [`INVALID_CONFIG`].
    pub reason: &'static str,
    /// What is wrong, naming the step and field (`spec.steps[1] "limit": size-limit config
    /// maxSize: ...`).
    pub message: String,
}

fn invalid(reason: &'static str, message: String) -> Invalid {
    Invalid { reason, message }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Deliver => "deliver",
        Stage::Append => "append",
        Stage::PostStore => "post-store",
    }
}

/// Checks one step; `index` is its position in `spec.steps`.
fn check_step(
    index: usize,
    step: &PipelineStep,
    stages: &[Stage],
    namespace: &str,
    plugins: &[Arc<PluginDeployment>],
) -> Result<(), Invalid> {
    let at = format!("spec.steps[{index}] {:?}", step.name);
    match (&step.plugin.builtin, &step.plugin.name) {
        (Some(builtin), None) => mcp_plugins_builtin::instantiate(*builtin, step.config.as_ref())
            .map(drop)
            .map_err(|e| invalid(INVALID_CONFIG, format!("{at}: {e}"))),
        (None, Some(name)) => {
            let Some(plugin) = plugins
                .iter()
                .find(|p| p.name_any() == *name && p.namespace().as_deref() == Some(namespace))
            else {
                return Err(invalid(
                    PLUGIN_NOT_FOUND,
                    format!("{at}: PluginDeployment {namespace}/{name} not found"),
                ));
            };
            let missing: Vec<&str> = stages
                .iter()
                .filter(|s| !plugin.spec.stages.contains(s))
                .map(|s| stage_name(*s))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(invalid(
                    STAGE_NOT_DECLARED,
                    format!(
                        "{at}: PluginDeployment {name} does not declare stage(s) {} of spec.stages (it declares {})",
                        missing.join(", "),
                        plugin
                            .spec
                            .stages
                            .iter()
                            .map(|s| stage_name(*s))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        }
        // The CRD's CEL rule refuses both and neither; an object stored before the rule was.
        _ => Err(invalid(
            INVALID_CONFIG,
            format!("{at}.plugin: exactly one of builtin and name must be set"),
        )),
    }
}

/// Order of precedence between two `TenantDefault` Pipelines sharing a stage: the older
/// wins, then the smaller name (a total order every replica computes alike).
fn precedence(p: &Pipeline) -> (Option<k8s_openapi::jiff::Timestamp>, String) {
    (
        p.meta().creation_timestamp.as_ref().map(|t| t.0),
        p.name_any(),
    )
}

/// The older `TenantDefault` Pipeline of the namespace that shares a stage with `pipeline`,
/// if any (Pipelines being deleted do not count).
fn scope_rival<'a>(
    pipeline: &Pipeline,
    namespace: &str,
    siblings: &'a [Arc<Pipeline>],
) -> Option<(&'a Pipeline, Stage)> {
    if pipeline.spec.scope.type_ != ScopeType::TenantDefault {
        return None;
    }
    let me = precedence(pipeline);
    siblings.iter().find_map(|other| {
        if other.namespace().as_deref() != Some(namespace)
            || other.name_any() == pipeline.name_any()
            || other.meta().deletion_timestamp.is_some()
            || other.spec.scope.type_ != ScopeType::TenantDefault
            || precedence(other) >= me
        {
            return None;
        }
        let shared = pipeline
            .spec
            .stages
            .iter()
            .find(|s| other.spec.stages.contains(s))?;
        Some((other.as_ref(), *shared))
    })
}

/// Whether `pipeline` is a `Global` one of the platform namespace: rendered for every tenant.
pub fn is_platform_global(pipeline: &Pipeline) -> bool {
    pipeline.spec.scope.type_ == ScopeType::Global
        && pipeline.namespace().as_deref() == Some(PLATFORM_NAMESPACE)
}

/// Validates `pipeline` (see the module documentation). `tenant` is the name of the Tenant
/// owning the Pipeline's namespace (not needed for a `Global` Pipeline of the platform
/// namespace), `siblings` the Pipelines (any namespace; others are ignored, and so is
/// `pipeline` itself), `plugins` the PluginDeployments (likewise).
///
/// # Errors
/// The first [`Invalid`] reason.
pub fn validate(
    pipeline: &Pipeline,
    tenant: Option<&str>,
    siblings: &[Arc<Pipeline>],
    plugins: &[Arc<PluginDeployment>],
) -> Result<(), Invalid> {
    let namespace = pipeline.namespace().unwrap_or_default();
    if pipeline.spec.scope.type_ == ScopeType::Global {
        if namespace != PLATFORM_NAMESPACE {
            return Err(invalid(
                GLOBAL_OUTSIDE_PLATFORM_NAMESPACE,
                format!(
                    "spec.scope.type: Global is honoured only in the platform namespace \
                     {PLATFORM_NAMESPACE:?}, not in {namespace:?}; use TenantDefault or \
                     MailboxSelector here"
                ),
            ));
        }
    } else if tenant.is_none() {
        return Err(invalid(
            TENANT_NOT_FOUND,
            format!(
                "namespace {namespace:?} belongs to no Tenant; Pipelines live in a tenant's namespace"
            ),
        ));
    }
    for (index, step) in pipeline.spec.steps.iter().enumerate() {
        check_step(index, step, &pipeline.spec.stages, &namespace, plugins)?;
    }
    if let Some((winner, stage)) = scope_rival(pipeline, &namespace, siblings) {
        return Err(invalid(
            SCOPE_CONFLICT,
            format!(
                "spec.scope: Pipeline {} (created earlier) is already the TenantDefault pipeline of stage {}; \
                 a namespace has at most one per stage",
                winner.name_any(),
                stage_name(stage)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pipeline(name: &str, created: &str, yaml_spec: &str) -> Pipeline {
        yaml_serde::from_str(&format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\n\
             metadata: {{name: {name}, namespace: mcp-acme, creationTimestamp: \"{created}\"}}\n\
             spec: {yaml_spec}"
        ))
        .expect("pipeline")
    }

    fn plugin(name: &str, stages: &str) -> Arc<PluginDeployment> {
        Arc::new(
            yaml_serde::from_str(&format!(
                "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\n\
                 metadata: {{name: {name}, namespace: mcp-acme}}\n\
                 spec: {{image: reg/p:1, protocol: {{min: 1, max: 1}}, stages: {stages}}}"
            ))
            .expect("plugin"),
        )
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-02T00:00:00Z";

    fn reason(
        p: &Pipeline,
        tenant: Option<&str>,
        siblings: &[Arc<Pipeline>],
        plugins: &[Arc<PluginDeployment>],
    ) -> (&'static str, String) {
        match validate(p, tenant, siblings, plugins) {
            Ok(()) => (VALID, String::new()),
            Err(e) => (e.reason, e.message),
        }
    }

    /// (what, tenant, siblings, plugins, expected reason, text the message contains)
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<Arc<Pipeline>>,
        Vec<Arc<PluginDeployment>>,
        &'static str,
        &'static str,
    );

    /// Reasons that do not depend on the built-in plugins' configs (those are pinned by
    /// `builtin_configs_are_checked_by_the_plugins`).
    #[test]
    fn validation_reasons() {
        let ext = "{scope: {type: TenantDefault}, stages: [deliver, append], steps: [{name: ext, plugin: {name: scanner}}]}";
        let both = plugin("scanner", "[deliver, append]");
        let deliver_only = plugin("scanner", "[deliver]");
        let elsewhere: Arc<PluginDeployment> = {
            let mut p = (*both).clone();
            p.metadata.namespace = Some("mcp-other".into());
            Arc::new(p)
        };
        let older = Arc::new(pipeline("a-older", T0, ext));
        let older_selector = Arc::new(pipeline(
            "a-selector",
            T0,
            "{scope: {type: MailboxSelector, mailboxSelector: {matchLabels: {x: y}}}, stages: [deliver], steps: [{name: ext, plugin: {name: scanner}}]}",
        ));
        let older_post_store = Arc::new(pipeline(
            "a-post",
            T0,
            "{scope: {type: TenantDefault}, stages: [post-store], steps: [{name: ext, plugin: {name: scanner}}]}",
        ));
        let same_time_smaller_name = Arc::new(pipeline("a-same", T1, ext));
        let me = pipeline("me", T1, ext);
        let cases: Vec<Case> = vec![
            ("valid", Some("acme"), vec![], vec![both.clone()], VALID, ""),
            (
                "no tenant",
                None,
                vec![],
                vec![both.clone()],
                TENANT_NOT_FOUND,
                "mcp-acme",
            ),
            (
                "plugin missing",
                Some("acme"),
                vec![],
                vec![],
                PLUGIN_NOT_FOUND,
                "spec.steps[0] \"ext\": PluginDeployment mcp-acme/scanner not found",
            ),
            (
                "plugin in another namespace",
                Some("acme"),
                vec![],
                vec![elsewhere],
                PLUGIN_NOT_FOUND,
                "not found",
            ),
            (
                "stage not declared",
                Some("acme"),
                vec![],
                vec![deliver_only],
                STAGE_NOT_DECLARED,
                "does not declare stage(s) append",
            ),
            (
                "older default shares a stage",
                Some("acme"),
                vec![older.clone()],
                vec![both.clone()],
                SCOPE_CONFLICT,
                "Pipeline a-older",
            ),
            (
                "same time, smaller name wins",
                Some("acme"),
                vec![same_time_smaller_name],
                vec![both.clone()],
                SCOPE_CONFLICT,
                "a-same",
            ),
            (
                "selector pipelines do not conflict",
                Some("acme"),
                vec![older_selector],
                vec![both.clone()],
                VALID,
                "",
            ),
            (
                "other stages do not conflict",
                Some("acme"),
                vec![older_post_store],
                vec![both.clone()],
                VALID,
                "",
            ),
            (
                "itself is not a rival",
                Some("acme"),
                vec![Arc::new(me.clone())],
                vec![both.clone()],
                VALID,
                "",
            ),
        ];
        for (what, tenant, siblings, plugins, want, text) in cases {
            let (got, message) = reason(&me, tenant, &siblings, &plugins);
            assert_eq!(got, want, "{what}: {message}");
            assert!(message.contains(text), "{what}: {message:?} lacks {text:?}");
        }
        // The older one is not in conflict with the newer one.
        let (got, _) = reason(
            &older,
            Some("acme"),
            &[Arc::new(me.clone())],
            std::slice::from_ref(&both),
        );
        assert_eq!(got, VALID);
        // A rival being deleted lets the newer one win.
        let mut going = (*older).clone();
        going.metadata.deletion_timestamp = going.metadata.creation_timestamp.clone();
        let (got, _) = reason(&me, Some("acme"), &[Arc::new(going)], &[both]);
        assert_eq!(got, VALID);
    }

    #[test]
    fn global_pipelines_are_valid_only_in_the_platform_namespace() {
        let spec = "{scope: {type: Global}, stages: [deliver], steps: [{name: tag, plugin: {builtin: header-tagger}, \
                    config: {headers: [{name: X-Platform, value: v, action: add}]}}]}";
        let mut platform = pipeline("platform", T0, spec);
        platform.metadata.namespace = Some(PLATFORM_NAMESPACE.into());
        // No Tenant owns the platform namespace, and none is needed.
        assert_eq!(reason(&platform, None, &[], &[]).0, VALID);
        assert!(is_platform_global(&platform));
        // Two Globals on one stage are no conflict: the dataplane runs all of them, by name.
        let mut second = platform.clone();
        second.metadata.name = Some("another".into());
        assert_eq!(reason(&platform, None, &[Arc::new(second)], &[]).0, VALID);
        // In a tenant's namespace, or one of nobody, it is refused.
        let misplaced = pipeline("platform", T0, spec);
        assert!(!is_platform_global(&misplaced));
        for tenant in [Some("acme"), None] {
            let (got, message) = reason(&misplaced, tenant, &[], &[]);
            assert_eq!(got, GLOBAL_OUTSIDE_PLATFORM_NAMESPACE, "{message}");
            assert!(
                message.contains("mcp-system") && message.contains("mcp-acme"),
                "{message}"
            );
        }
        // Its steps are checked like any other's.
        let mut broken = platform.clone();
        broken.spec.steps[0].config = Some(serde_json::json!({"headers": "nope"}));
        assert_eq!(reason(&broken, None, &[], &[]).0, INVALID_CONFIG);
        // A TenantDefault Pipeline in the platform namespace still needs a Tenant.
        let mut tenant_default = platform.clone();
        tenant_default.spec.scope.type_ = ScopeType::TenantDefault;
        assert_eq!(reason(&tenant_default, None, &[], &[]).0, TENANT_NOT_FOUND);
        assert!(!is_platform_global(&tenant_default));
    }

    #[test]
    fn scanner_bridges_are_checked_like_any_builtin() {
        let spec = |b: &str, config: &str| {
            pipeline(
                "p",
                T0,
                &format!(
                    "{{scope: {{type: TenantDefault}}, stages: [deliver], steps: [{{name: s, plugin: {{builtin: {b}}}{config}}}]}}"
                ),
            )
        };
        let cases = [
            (
                "clamav",
                ", config: {address: 'tcp://127.0.0.1:3310'}",
                VALID,
                "",
            ),
            (
                "rspamd",
                ", config: {url: 'http://127.0.0.1:11333'}",
                VALID,
                "",
            ),
            (
                "clamav",
                "",
                INVALID_CONFIG,
                "clamav config: missing field `address`",
            ),
            (
                "rspamd",
                "",
                INVALID_CONFIG,
                "rspamd config: missing field `url`",
            ),
            (
                "clamav",
                ", config: {address: 'tcp://127.0.0.1:3310', action: drop}",
                INVALID_CONFIG,
                "clamav config action",
            ),
            (
                "rspamd",
                ", config: {url: 'https://rspamd:11333'}",
                INVALID_CONFIG,
                "rspamd config url",
            ),
        ];
        for (b, config, want, text) in cases {
            let (got, message) = reason(&spec(b, config), Some("acme"), &[], &[]);
            assert_eq!(got, want, "{b}{config}: {message}");
            assert!(message.contains(text), "{message:?} lacks {text:?}");
            if want != VALID {
                assert!(message.starts_with("spec.steps[0] \"s\""), "{message}");
            }
        }
    }

    #[test]
    fn a_refused_builtin_config_names_step_and_field() {
        // Refused by any build of the built-ins: a size that is not a quantity.
        let p = pipeline(
            "p",
            T0,
            "{scope: {type: TenantDefault}, stages: [deliver], steps: [{name: tag, plugin: {builtin: header-tagger}, config: {headers: [{name: X-Tag, value: v, action: add}]}}, {name: limit, plugin: {builtin: size-limit}, config: {maxSize: huge}}]}",
        );
        let (got, message) = reason(&p, Some("acme"), &[], &[]);
        assert_eq!(got, INVALID_CONFIG, "{message}");
        assert!(message.starts_with("spec.steps["), "{message}");
        assert!(
            message.contains("size-limit") || message.contains("header-tagger"),
            "{message}"
        );
    }

    /// The built-in plugins' own config checks (plugins/builtin), named by step and field.
    #[test]
    fn builtin_configs_are_checked_by_the_plugins() {
        let spec = |steps: &str| {
            pipeline(
                "p",
                T0,
                &format!("{{scope: {{type: TenantDefault}}, stages: [deliver], steps: {steps}}}"),
            )
        };
        let cases = [
            (
                "[{name: tag, plugin: {builtin: header-tagger}, config: {headers: [{name: X-Tag, value: v, action: add}]}}, {name: limit, plugin: {builtin: size-limit}, config: {maxSize: 10Mi}}]",
                VALID,
                "",
            ),
            (
                "[{name: tag, plugin: {builtin: header-tagger}, config: {headers: [{name: X-Tag, value: v, action: add}]}}, {name: limit, plugin: {builtin: size-limit}, config: {maxSize: huge}}]",
                INVALID_CONFIG,
                "spec.steps[1] \"limit\": size-limit config maxSize",
            ),
        ];
        for (steps, want, text) in cases {
            let (got, message) = reason(&spec(steps), Some("acme"), &[], &[]);
            assert_eq!(got, want, "{steps}: {message}");
            assert!(message.contains(text), "{message:?} lacks {text:?}");
        }
    }
}
