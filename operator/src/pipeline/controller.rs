//! The Pipeline controller: validates each Pipeline and reports whether its tenant's
//! dataplane runs it.
//!
//! One reconciliation:
//! 1. Validate ([`super::validate`]) from the caches: the namespace's Tenant, the other
//!    Pipelines of the namespace, its PluginDeployments.
//! 2. Invalid: `Validated=False` and `Ready=False` with the reason, a Warning Event when the
//!    verdict changes, `compiledRevision` left at the last good revision (which the dataplane
//!    keeps running); wait for a change.
//! 3. Valid: `compiledRevision` is `spec.revision()`; ask the tenant's dataplane which
//!    revision it runs (`GET /internal/v1/pipelines`). The same revision is `Ready=True`
//!    (checked again after [`RESYNC`]); another one, or none, is `RolloutPending`; no answer is
//!    `DataplaneUnavailable`; a PluginDeployment a step names that is not `Ready` is
//!    `PluginNotReady` (checked before the dataplane is asked). All three are checked again
//!    with backoff from [`RECHECK`] to [`RECHECK_MAX`], at once when the Tenant's readiness
//!    changes, and when a named PluginDeployment's readiness does.
//! 4. Steps whose PluginDeployment is suspended (`spec.suspend`) are skipped by the
//!    dataplane: they are listed in `status.suspendedSteps` and the condition
//!    [`STEPS_SKIPPED`], do not make the Pipeline `PluginNotReady`, and the tenant's
//!    dataplane must skip exactly them for `Ready=True` (else `RolloutPending`: it has not
//!    loaded the suspension, or the resumption, yet).
//! 5. Write status only when it differs from the stored one.
//!
//! The rendering into the dataplane ConfigMap is the Tenant controller's
//! ([`super::render_for`]): it runs on every change of a Pipeline's spec or labels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use mcp_crds::pipeline::PipelineStatus;
use mcp_crds::{ConditionStatus, Pipeline, Tenant};

use super::validate::{self, Invalid};
use crate::conditions::{self, Observed, ready};
use crate::context::Context;
use crate::error::Error;
use crate::tenant::controller::{apply_params, dataplane_client};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "pipeline";
/// The condition type of the validation verdict.
pub const VALIDATED: &str = "Validated";
/// First delay before asking a dataplane again that does not run the revision yet (the
/// kubelet takes up to a minute or so to update a mounted ConfigMap).
pub const RECHECK: Duration = Duration::from_secs(2);
/// Longest delay between two such checks.
pub const RECHECK_MAX: Duration = Duration::from_secs(60);
/// How many dataplanes a `Global` Pipeline's reconciliation asks at once.
pub const DATAPLANE_QUERIES: usize = 8;
/// How often a Ready Pipeline is checked again.
pub const RESYNC: Duration = Duration::from_secs(600);

/// `Ready=True`: the dataplane runs `compiledRevision`.
pub const IN_FORCE: &str = "InForce";
/// `Ready=False`: the dataplane runs another revision, or none, of this Pipeline.
pub const ROLLOUT_PENDING: &str = "RolloutPending";
/// `Ready=False`: the dataplane's admin API does not answer.
pub const DATAPLANE_UNAVAILABLE: &str = "DataplaneUnavailable";
/// `Ready=False`: a PluginDeployment a step names exists but is not `Ready` (the Pipeline
/// stays `Validated`; the step's `onError` applies to every message until it is).
pub const PLUGIN_NOT_READY: &str = "PluginNotReady";
/// The condition type saying whether steps are skipped because their PluginDeployment is
/// suspended: `True` with reason [`PLUGIN_SUSPENDED`] (the message names the steps and
/// plugins), `False` with reason [`NO_STEP_SKIPPED`].
pub const STEPS_SKIPPED: &str = "StepsSkipped";
/// `StepsSkipped=True`: some step calls a suspended PluginDeployment.
pub const PLUGIN_SUSPENDED: &str = "PluginSuspended";
/// `StepsSkipped=False`: every step runs.
pub const NO_STEP_SKIPPED: &str = "NoStepSkipped";

/// The steps of `pipeline` that call a suspended PluginDeployment of its namespace, as
/// (step, PluginDeployment) in step order.
pub fn suspended_steps(
    pipeline: &Pipeline,
    plugins: &[Arc<mcp_crds::PluginDeployment>],
) -> Vec<(String, String)> {
    let namespace = pipeline.namespace();
    pipeline
        .spec
        .steps
        .iter()
        .filter_map(|s| {
            let name = s.plugin.name.as_deref()?;
            plugins
                .iter()
                .any(|p| p.namespace() == namespace && p.name_any() == name && p.spec.suspend)
                .then(|| (s.name.clone(), name.to_owned()))
        })
        .collect()
}

/// The `StepsSkipped` condition for `skipped` ([`suspended_steps`]).
fn steps_skipped(skipped: &[(String, String)]) -> Observed<'static> {
    if skipped.is_empty() {
        return Observed {
            type_: STEPS_SKIPPED,
            status: ConditionStatus::False,
            reason: NO_STEP_SKIPPED,
            message: "no step calls a suspended PluginDeployment".to_owned(),
        };
    }
    let list: Vec<String> = skipped
        .iter()
        .map(|(step, plugin)| format!("{step} (PluginDeployment {plugin})"))
        .collect();
    Observed {
        type_: STEPS_SKIPPED,
        status: ConditionStatus::True,
        reason: PLUGIN_SUSPENDED,
        message: format!(
            "skipped because their PluginDeployment is suspended (spec.suspend): {}; messages \
             go on to the next step without them, and their onError does not apply",
            list.join(", ")
        ),
    }
}

/// The PluginDeployments `pipeline`'s steps name that are not `Ready`, as a message naming
/// each with its reason; `None` when all are (or none is named). A missing one is
/// validation's `PluginNotFound`, not this.
pub fn unready_plugins(
    pipeline: &Pipeline,
    plugins: &[Arc<mcp_crds::PluginDeployment>],
) -> Option<String> {
    let namespace = pipeline.namespace();
    let mut names: Vec<&str> = pipeline
        .spec
        .steps
        .iter()
        .filter_map(|s| s.plugin.name.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    let unready: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let plugin = plugins
                .iter()
                .find(|p| p.namespace() == namespace && p.name_any() == name)
                // A suspended one is not Ready on purpose: its steps are skipped, not failed.
                .filter(|p| !p.spec.suspend)?;
            crate::plugin::controller::readiness(plugin)
                .err()
                .map(|(reason, message)| {
                    format!("PluginDeployment {name} is not Ready ({reason}: {message})")
                })
        })
        .collect();
    (!unready.is_empty()).then(|| {
        format!(
            "{}; its steps' onError applies until it is",
            unready.join("; ")
        )
    })
}

fn validated(status: ConditionStatus, reason: &str, message: String) -> Observed<'_> {
    Observed {
        type_: VALIDATED,
        status,
        reason,
        message,
    }
}

fn status_with(
    pipeline: &Pipeline,
    valid: bool,
    revision: Option<String>,
    skipped: &[(String, String)],
    observed: &[Observed<'_>],
) -> PipelineStatus {
    let previous = pipeline.status.clone().unwrap_or_default();
    let generation = pipeline.meta().generation;
    let mut observed = observed.to_vec();
    observed.push(steps_skipped(skipped));
    PipelineStatus {
        observed_generation: generation,
        validated: valid,
        compiled_revision: revision.or(previous.compiled_revision.clone()),
        suspended_steps: skipped.iter().map(|(step, _)| step.clone()).collect(),
        conditions: conditions::set(&previous.conditions, &observed, generation),
    }
}

async fn write_status(
    ctx: &Context,
    pipeline: &Pipeline,
    status: PipelineStatus,
) -> Result<(), Error> {
    if pipeline.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = pipeline
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let api: Api<Pipeline> = Api::namespaced(ctx.client.clone(), &namespace);
    Ok(conditions::apply_status(&api, &pipeline.name_any(), &apply_params(), &status).await?)
}

/// The stored `Validated` condition as (status, reason, message).
fn verdict_of(status: Option<&PipelineStatus>) -> Option<(ConditionStatus, String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == VALIDATED)
        .map(|c| (c.status, c.reason.clone(), c.message.clone()))
}

/// Publishes an Event when the verdict differs from the stored one.
async fn event_on_change(ctx: &Context, pipeline: &Pipeline, new: &PipelineStatus) {
    let before = verdict_of(pipeline.status.as_ref());
    let after = verdict_of(Some(new));
    if before == after {
        return;
    }
    let Some((status, reason, message)) = after else {
        return;
    };
    let type_ = if status == ConditionStatus::True {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let note = match (status, &new.compiled_revision) {
        (ConditionStatus::True, Some(r)) => format!("valid; compiled revision {r}"),
        _ => message,
    };
    ctx.event(pipeline, type_, &reason, "Validate", note).await;
}

/// What a dataplane answers about one Pipeline: the revision it runs and the steps it skips
/// (`None`: it runs none), and its last load error.
type Running = (Option<(String, Vec<String>)>, Option<String>);

/// The revision of `namespace/name` that `tenant`'s dataplane runs and the steps it skips
/// (`None`: it runs none), and the dataplane's last load error.
async fn running_revision(
    ctx: &Context,
    tenant: &Tenant,
    namespace: &str,
    name: &str,
) -> Result<Running, Error> {
    let client = dataplane_client(ctx, tenant).await?;
    let state = client.get_pipelines().await?;
    let revision = state
        .pipelines
        .into_iter()
        .find(|p| p.namespace == namespace && p.name == name)
        .map(|p| (p.revision, p.skipped_steps));
    Ok((revision, state.last_error))
}

/// Whether the dataplanes run a revision, with the `Ready` message.
enum Rollout {
    /// Every one runs it (or there is none).
    InForce(String),
    /// Some run another revision, or none; all answered.
    Pending(String),
    /// Some did not answer.
    Unavailable(String),
    /// A PluginDeployment it names is not Ready (the dataplanes were not asked).
    PluginNotReady(String),
}

/// How many tenants a message names before "and N more".
const NAMED_TENANTS: usize = 5;

fn some_of(names: &[String]) -> String {
    let mut out = names
        .iter()
        .take(NAMED_TENANTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED_TENANTS {
        out.push_str(&format!(" and {} more", names.len() - NAMED_TENANTS));
    }
    out
}

/// Asks the dataplane of each of `targets` (a few at a time) which revision of
/// `namespace/name` it runs and which steps it skips; `skipped`: the steps it must skip
/// (checked for a tenant's own Pipeline only: a `Global` one's PluginDeployments are not
/// rendered into the tenants' dataplanes). `global`: the message speaks of every tenant.
async fn rollout(
    ctx: &Context,
    targets: &[Arc<Tenant>],
    namespace: &str,
    name: &str,
    revision: &str,
    skipped: &[String],
    global: bool,
) -> Rollout {
    let mut answers: Vec<(String, Result<Running, Error>)> = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(DATAPLANE_QUERIES) {
        let asked: Vec<_> = chunk
            .iter()
            .map(|t| running_revision(ctx, t, namespace, name))
            .collect();
        let got = futures::future::join_all(asked).await;
        answers.extend(chunk.iter().map(|t| t.name_any()).zip(got));
    }
    let mut pending: Vec<String> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    let mut detail: Option<String> = None;
    for (tenant, answer) in answers {
        match answer {
            Ok((Some((running, skips)), _))
                if running == revision && (global || skips == skipped) => {}
            Ok((running, last_error)) => {
                if detail.is_none() {
                    let mut d = match running {
                        Some((r, _)) if r != revision => format!("still runs {r}"),
                        Some((_, skips)) => format!(
                            "skips steps [{}], not [{}] (it has not loaded the latest \
                             spec.suspend of their PluginDeployments yet)",
                            skips.join(", "),
                            skipped.join(", ")
                        ),
                        None => "does not run it yet".to_owned(),
                    };
                    if let Some(e) = last_error {
                        d.push_str(&format!(" (its last load failed: {e})"));
                    }
                    detail = Some(d);
                }
                pending.push(tenant);
            }
            Err(e) => {
                ctx.dataplanes.forget(&tenant);
                if unavailable.is_empty() {
                    detail = Some(format!("cannot ask which it runs: {e}"));
                }
                unavailable.push(tenant);
            }
        }
    }
    let detail = detail.unwrap_or_default();
    match (global, unavailable.is_empty(), pending.is_empty()) {
        (false, true, true) => Rollout::InForce(format!("the dataplane runs revision {revision}")),
        (false, false, _) => {
            Rollout::Unavailable(format!("revision {revision} rendered; {detail}"))
        }
        (false, true, false) => Rollout::Pending(format!(
            "revision {revision} rendered; the dataplane {detail}"
        )),
        (true, true, true) if targets.is_empty() => Rollout::InForce(format!(
            "revision {revision}: no Tenant yet; every tenant's dataplane will load it"
        )),
        (true, true, true) => Rollout::InForce(format!(
            "the dataplanes of all {} tenants run revision {revision}",
            targets.len()
        )),
        (true, false, _) => Rollout::Unavailable(format!(
            "revision {revision} rendered for every tenant; the dataplanes of {} do not answer \
             (first: {detail}); {} of {} run it",
            some_of(&unavailable),
            targets.len() - unavailable.len() - pending.len(),
            targets.len()
        )),
        (true, true, false) => Rollout::Pending(format!(
            "revision {revision} rendered for every tenant; the dataplanes of {} do not run it \
             yet (first: {detail}); {} of {} do",
            some_of(&pending),
            targets.len() - pending.len(),
            targets.len()
        )),
    }
}

async fn reconcile_inner(pipeline: &Pipeline, ctx: &Context) -> Result<Action, Error> {
    ctx.caches_ready().await?;
    if pipeline.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = pipeline
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = pipeline.name_any();
    let global = validate::is_platform_global(pipeline);
    let tenant = if global {
        None
    } else {
        super::tenant_of_namespace(ctx, &namespace)
    };
    let plugins = ctx.plugins.state();
    let verdict = validate::validate(
        pipeline,
        tenant.as_ref().map(|t| t.name_any()).as_deref(),
        &ctx.pipelines.state(),
        &plugins,
    );
    let skipped = suspended_steps(pipeline, &plugins);
    let skipped_names: Vec<String> = skipped.iter().map(|(step, _)| step.clone()).collect();
    // The dataplanes that must run it: every tenant's for a Global Pipeline, else its tenant's.
    let targets: Vec<Arc<Tenant>> = match (global, tenant, verdict) {
        (true, _, Ok(())) => ctx
            .tenants
            .state()
            .into_iter()
            .filter(|t| t.meta().deletion_timestamp.is_none())
            .collect(),
        (false, Some(t), Ok(())) => vec![t],
        (_, _, verdict) => {
            // `validate` answers TenantNotFound without a Tenant.
            let Invalid { reason, message } = verdict.err().unwrap_or_else(|| Invalid {
                reason: validate::TENANT_NOT_FOUND,
                message: format!("namespace {namespace:?} belongs to no Tenant"),
            });
            let s = status_with(
                pipeline,
                false,
                None,
                &skipped,
                &[
                    ready(
                        ConditionStatus::False,
                        reason,
                        format!(
                            "not validated; the dataplane keeps the last valid version, if any: {message}"
                        ),
                    ),
                    validated(ConditionStatus::False, reason, message),
                ],
            );
            event_on_change(ctx, pipeline, &s).await;
            write_status(ctx, pipeline, s).await?;
            return Ok(Action::await_change());
        }
    };
    let revision = pipeline.spec.revision();
    let key = ObjectRef::from_obj(pipeline);
    let rollout = match unready_plugins(pipeline, &plugins) {
        // Woken when the plugin turns Ready (run.rs); checked again meanwhile.
        Some(message) => Rollout::PluginNotReady(message),
        None => {
            rollout(
                ctx,
                &targets,
                &namespace,
                &name,
                &revision,
                &skipped_names,
                global,
            )
            .await
        }
    };
    let (observed, action) = match rollout {
        Rollout::InForce(mut message) => {
            ctx.pipeline_recheck.succeeded(&key);
            if !global && !skipped_names.is_empty() {
                message.push_str(&format!(
                    ", skipping steps [{}] (their PluginDeployment is suspended)",
                    skipped_names.join(", ")
                ));
            }
            (
                ready(ConditionStatus::True, IN_FORCE, message),
                Action::requeue(RESYNC),
            )
        }
        Rollout::Pending(message) => (
            ready(ConditionStatus::False, ROLLOUT_PENDING, message),
            Action::requeue(ctx.pipeline_recheck.failed(key)),
        ),
        Rollout::Unavailable(message) => (
            ready(ConditionStatus::False, DATAPLANE_UNAVAILABLE, message),
            Action::requeue(ctx.pipeline_recheck.failed(key)),
        ),
        Rollout::PluginNotReady(message) => (
            ready(ConditionStatus::False, PLUGIN_NOT_READY, message),
            Action::requeue(ctx.pipeline_recheck.failed(key)),
        ),
    };
    let s = status_with(
        pipeline,
        true,
        Some(revision),
        &skipped,
        &[
            observed,
            validated(
                ConditionStatus::True,
                validate::VALID,
                "every step's plugin exists, declares the pipeline's stages and accepts its config"
                    .to_owned(),
            ),
        ],
    );
    event_on_change(ctx, pipeline, &s).await;
    write_status(ctx, pipeline, s).await?;
    Ok(action)
}

/// Reconciles one Pipeline (see the module documentation).
///
/// # Errors
/// A failed API call; the caller retries with backoff. An unreachable dataplane is not an
/// error: it is reported in `Ready` and checked again.
pub async fn reconcile(pipeline: Arc<Pipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&pipeline, &ctx).await;
    ctx.metrics.reconciled(
        CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    if result.is_ok() {
        ctx.pipeline_backoff
            .succeeded(&ObjectRef::from_obj(pipeline.as_ref()));
    }
    result
}

/// What to do after a failed reconciliation: retry with this Pipeline's backoff.
pub fn error_policy(pipeline: Arc<Pipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .pipeline_backoff
        .failed(ObjectRef::from_obj(pipeline.as_ref()));
    tracing::warn!(
        pipeline = %pipeline.name_any(),
        namespace = %pipeline.namespace().unwrap_or_default(),
        reason = error.reason(),
        error = %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, ready: Option<(&str, &str)>) -> Arc<mcp_crds::PluginDeployment> {
        let status = match ready {
            Some((status, reason)) => format!(
                "\nstatus: {{conditions: [{{type: Ready, status: \"{status}\", reason: {reason}, \
                 message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}}]}}"
            ),
            None => String::new(),
        };
        Arc::new(
            yaml_serde::from_str(&format!(
                "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\n\
                 metadata: {{name: {name}, namespace: mcp-acme}}\n\
                 spec: {{image: reg/p:1, protocol: {{min: 1, max: 1}}, stages: [deliver]}}{status}"
            ))
            .expect("plugin"),
        )
    }

    fn suspended(name: &str, namespace: &str) -> Arc<mcp_crds::PluginDeployment> {
        let mut p = Arc::unwrap_or_clone(plugin(name, Some(("False", SUSPENDED_REASON))));
        p.spec.suspend = true;
        p.metadata.namespace = Some(namespace.to_owned());
        Arc::new(p)
    }

    const SUSPENDED_REASON: &str = crate::plugin::controller::SUSPENDED;

    /// Steps calling a suspended PluginDeployment of the Pipeline's namespace are listed
    /// (in step order, each step once), reported by `StepsSkipped`, and do not make the
    /// Pipeline `PluginNotReady`.
    #[test]
    fn steps_of_suspended_plugins_are_skipped_not_unready() {
        let p: Pipeline = yaml_serde::from_str(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\n\
             metadata: {name: p, namespace: mcp-acme}\n\
             spec: {scope: {type: TenantDefault}, stages: [deliver], steps: [\
             {name: a, plugin: {name: scan}}, {name: t, plugin: {builtin: header-tagger}, \
             config: {headers: [{name: X, value: v, action: add}]}}, \
             {name: b, plugin: {name: other}}, {name: c, plugin: {name: scan}}]}",
        )
        .expect("pipeline");
        type Case = (
            &'static str,
            Vec<Arc<mcp_crds::PluginDeployment>>,
            Vec<(&'static str, &'static str)>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "none suspended",
                vec![
                    plugin("scan", Some(("True", "Serving"))),
                    plugin("other", Some(("True", "Serving"))),
                ],
                vec![],
                false,
            ),
            (
                "scan suspended",
                vec![
                    suspended("scan", "mcp-acme"),
                    plugin("other", Some(("True", "Serving"))),
                ],
                vec![("a", "scan"), ("c", "scan")],
                false,
            ),
            (
                "scan suspended, other not ready",
                vec![
                    suspended("scan", "mcp-acme"),
                    plugin("other", Some(("False", "Connecting"))),
                ],
                vec![("a", "scan"), ("c", "scan")],
                true,
            ),
            (
                "a namesake in another namespace is not ours",
                vec![
                    suspended("scan", "mcp-other"),
                    plugin("scan", Some(("True", "Serving"))),
                    plugin("other", Some(("True", "Serving"))),
                ],
                vec![],
                false,
            ),
            (
                "all suspended",
                vec![
                    suspended("scan", "mcp-acme"),
                    suspended("other", "mcp-acme"),
                ],
                vec![("a", "scan"), ("b", "other"), ("c", "scan")],
                false,
            ),
        ];
        for (what, plugins, want, unready) in cases {
            let got = suspended_steps(&p, &plugins);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(s, d)| ((*s).to_owned(), (*d).to_owned()))
                .collect();
            assert_eq!(got, want, "{what}");
            let c = steps_skipped(&got);
            if want.is_empty() {
                assert_eq!(
                    (c.status, c.reason),
                    (ConditionStatus::False, NO_STEP_SKIPPED)
                );
            } else {
                assert_eq!(
                    (c.status, c.reason),
                    (ConditionStatus::True, PLUGIN_SUSPENDED)
                );
                for (step, plugin) in &want {
                    assert!(
                        c.message
                            .contains(&format!("{step} (PluginDeployment {plugin})")),
                        "{what}: {}",
                        c.message
                    );
                }
            }
            let not_ready = unready_plugins(&p, &plugins);
            assert_eq!(not_ready.is_some(), unready, "{what}: {not_ready:?}");
            if let Some(m) = not_ready {
                assert!(!m.contains("scan"), "{what}: {m}");
            }
        }
    }

    #[test]
    fn unready_plugins_are_named_with_their_reason() {
        let p: Pipeline = yaml_serde::from_str(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\n\
             metadata: {name: p, namespace: mcp-acme}\n\
             spec: {scope: {type: TenantDefault}, stages: [deliver], steps: [\
             {name: a, plugin: {name: scan}}, {name: b, plugin: {name: scan}}, \
             {name: c, plugin: {name: other}}, {name: t, plugin: {builtin: header-tagger}, \
             config: {headers: [{name: X, value: v, action: add}]}}]}",
        )
        .expect("pipeline");
        type Case = (
            Vec<Arc<mcp_crds::PluginDeployment>>,
            Option<Vec<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![
                    plugin("scan", Some(("True", "Serving"))),
                    plugin("other", Some(("True", "Serving"))),
                ],
                None,
            ),
            (
                vec![
                    plugin("scan", Some(("False", "Connecting"))),
                    plugin("other", Some(("True", "Serving"))),
                ],
                Some(vec!["PluginDeployment scan is not Ready (Connecting: m)"]),
            ),
            (
                vec![
                    plugin("scan", None),
                    plugin("other", Some(("False", "Unused"))),
                ],
                Some(vec![
                    "other is not Ready (Unused",
                    "scan is not Ready (Unknown",
                ]),
            ),
            // Missing ones are validation's PluginNotFound, not this.
            (vec![], None),
        ];
        for (plugins, want) in cases {
            let got = unready_plugins(&p, &plugins);
            match (got, want) {
                (None, None) => {}
                (Some(m), Some(parts)) => {
                    for part in parts {
                        assert!(m.contains(part), "{m:?} lacks {part:?}");
                    }
                    assert!(m.matches("scan is not Ready").count() <= 1, "{m}");
                }
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
    }
}
