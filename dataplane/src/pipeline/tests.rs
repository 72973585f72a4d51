//! Engine and compiler tests, with fault-injecting plugins: one that panics, one that hangs
//! past its timeout, one that returns an undeclared mutation, one that fails a few times.
//! Time is tokio's paused clock: timeouts elapse instantly and deterministically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use mcp_crds::Pipeline;
use mcp_crds::pipeline::{OnError, Stage};
use mcp_plugin_api::{Capability, Envelope, Mutation, Plugin, StepOutput, Verdict};
use prometheus_client::registry::Registry;

use super::compile::NoExternalPlugins;
use super::testing::{Behaviour, FaultPlugin as Fake};
use super::*;

fn step(name: &str, plugin: Arc<Fake>, on_error: OnError) -> CompiledStep {
    CompiledStep {
        name: name.into(),
        plugin_name: format!("fake-{name}"),
        capabilities: plugin.capabilities(),
        plugin,
        timeout: Duration::from_secs(1),
        on_error,
        retry: (on_error == OnError::Retry).then_some(Retry {
            attempts: 2,
            backoff: Duration::from_millis(100),
        }),
        suspended: false,
    }
}

fn pipeline(name: &str, scope: Scope, steps: Vec<CompiledStep>) -> CompiledPipeline {
    CompiledPipeline {
        namespace: if matches!(scope, Scope::Global) {
            "mcp-system".into()
        } else {
            "mcp-example".into()
        },
        name: name.into(),
        revision: format!("rev-{name}"),
        tenant: (!matches!(scope, Scope::Global)).then(|| "example".into()),
        scope,
        stages: BTreeSet::from([Stage::Deliver, Stage::Append]),
        steps,
        deadline: Duration::from_secs(10),
        dry_run: false,
    }
}

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nbody\r\n";

fn input() -> Input {
    Input {
        stage: Stage::Deliver,
        tenant: "example".into(),
        mailbox: "alice@example.com".into(),
        folder: "INBOX".into(),
        envelope: Envelope {
            mail_from: "bob@example.net".into(),
            rcpt_to: "alice@example.com".into(),
        },
        message: Bytes::from_static(MESSAGE),
        flags: Vec::new(),
    }
}

fn metrics() -> PipelineMetrics {
    PipelineMetrics::register(&mut Registry::default())
}

async fn run_one(p: CompiledPipeline) -> Outcome {
    engine::run(&[Arc::new(p)], input(), &metrics()).await
}

fn tag(value: &str) -> Arc<Fake> {
    Fake::new(
        Behaviour::Reply(StepOutput::mutate(vec![
            Mutation::add_header("X-Tag", value).expect("valid"),
        ])),
        &[Capability::AddHeader],
    )
}

#[tokio::test(start_paused = true)]
async fn each_on_error_policy_does_what_it_says_for_each_fault() {
    type Fault = (&'static str, fn() -> Behaviour, &'static str);
    let faults: [Fault; 4] = [
        (
            "panic",
            || Behaviour::Panic,
            "plugin panicked: injected panic",
        ),
        ("hang", || Behaviour::Hang, "timed out after 1000 ms"),
        ("error", || Behaviour::Fail, "plugin failed: injected"),
        (
            "undeclared",
            || {
                Behaviour::Reply(StepOutput::mutate(vec![Mutation::ReplaceBody {
                    body: Bytes::from_static(b"evil\r\n"),
                }]))
            },
            "undeclared mutation replaceBody",
        ),
    ];
    for (fault, behaviour, why) in faults {
        for policy in [
            OnError::FailOpen,
            OnError::FailClosed,
            OnError::Quarantine,
            OnError::Retry,
        ] {
            let bad = Fake::new(behaviour(), &[Capability::AddHeader]);
            let after = tag("after");
            let out = run_one(pipeline(
                "p",
                Scope::TenantDefault,
                vec![
                    step("bad", Arc::clone(&bad), policy),
                    step("tag", Arc::clone(&after), OnError::FailClosed),
                ],
            ))
            .await;
            let what = format!("{fault} with {policy:?}");
            // No mutation of a failed step is ever applied.
            assert!(!out.message.starts_with(b"evil"), "{what}");
            assert!(
                !String::from_utf8_lossy(&out.message).contains("evil"),
                "{what}"
            );
            match policy {
                OnError::FailOpen => {
                    assert_eq!(out.disposition, Disposition::Store, "{what}");
                    assert!(
                        out.message.starts_with(b"X-Tag: after\r\n"),
                        "{what}: later steps run"
                    );
                    assert_eq!(bad.calls.load(Ordering::SeqCst), 1, "{what}");
                }
                OnError::FailClosed | OnError::Retry => {
                    let Disposition::TempFail { status, text, by } = &out.disposition else {
                        panic!("{what}: {:?}", out.disposition);
                    };
                    assert_eq!(status.to_string(), "4.3.0", "{what}");
                    assert!(text.contains(why), "{what}: {text}");
                    assert_eq!(by.step, "bad");
                    assert_eq!(
                        after.calls.load(Ordering::SeqCst),
                        0,
                        "{what}: later steps do not run"
                    );
                    let calls = if policy == OnError::Retry { 3 } else { 1 };
                    assert_eq!(bad.calls.load(Ordering::SeqCst), calls, "{what}");
                }
                OnError::Quarantine => {
                    let Disposition::Quarantine { reason, .. } = &out.disposition else {
                        panic!("{what}: {:?}", out.disposition);
                    };
                    assert!(reason.contains(why), "{what}: {reason}");
                    assert_eq!(after.calls.load(Ordering::SeqCst), 0, "{what}");
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_recovers_a_flaky_plugin_within_its_attempts() {
    let flaky = Fake::new(Behaviour::FlakyThenPass(2), &[]);
    let out = run_one(pipeline(
        "p",
        Scope::TenantDefault,
        vec![step("flaky", Arc::clone(&flaky), OnError::Retry)],
    ))
    .await;
    assert_eq!(out.disposition, Disposition::Store);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cancels_the_current_step_and_skips_the_rest() {
    let mut p = pipeline(
        "p",
        Scope::TenantDefault,
        vec![
            step("hang", Fake::new(Behaviour::Hang, &[]), OnError::FailOpen),
            step("tag", tag("never"), OnError::FailClosed),
        ],
    );
    p.deadline = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let out = run_one(p).await;
    assert_eq!(
        out.disposition,
        Disposition::Store,
        "failOpen lets the message through"
    );
    assert_eq!(&out.message[..], MESSAGE, "later steps did not run");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "cut at the deadline, not the 1 s timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn mutations_apply_in_order_and_later_steps_see_them() {
    let out = run_one(pipeline(
        "p",
        Scope::TenantDefault,
        vec![
            step(
                "one",
                Fake::new(Behaviour::CountSeen, &[Capability::AddHeader]),
                OnError::FailClosed,
            ),
            step(
                "two",
                Fake::new(Behaviour::CountSeen, &[Capability::AddHeader]),
                OnError::FailClosed,
            ),
            step(
                "state",
                Fake::new(
                    Behaviour::Reply(StepOutput::mutate(vec![
                        Mutation::AddKeyword {
                            keyword: "$Scanned".into(),
                        },
                        Mutation::AddFlag {
                            flag: mcp_plugin_api::SystemFlag::Flagged,
                        },
                        Mutation::FileInto {
                            folder: "Archive".into(),
                        },
                        Mutation::SetMetadata {
                            key: "scan.result".into(),
                            value: "clean".into(),
                        },
                    ])),
                    &[
                        Capability::AddKeyword,
                        Capability::AddFlag,
                        Capability::FileInto,
                        Capability::SetMetadata,
                    ],
                ),
                OnError::FailClosed,
            ),
        ],
    ))
    .await;
    assert_eq!(
        &out.message[..],
        b"X-Seen: 1\r\nX-Seen: 0\r\nSubject: hi\r\n\r\nbody\r\n"
    );
    assert_eq!(out.folder, "Archive");
    assert_eq!(out.flags, ["$Scanned", "\\Flagged"]);
    assert_eq!(
        out.metadata.get("scan.result").map(String::as_str),
        Some("clean")
    );
    assert_eq!(
        out.metadata.get(engine::REVISIONS_KEY).map(String::as_str),
        Some("mcp-example/p@rev-p")
    );
}

#[tokio::test(start_paused = true)]
async fn verdicts_end_the_run_with_their_disposition() {
    let cases = [
        (Verdict::reject("no thanks"), "reject"),
        (Verdict::temp_fail("later"), "tempfail"),
        (Verdict::Discard, "discard"),
        (Verdict::quarantine("suspicious"), "quarantine"),
    ];
    for (verdict, name) in cases {
        let after = tag("x");
        let out = run_one(pipeline(
            "p",
            Scope::TenantDefault,
            vec![
                step(
                    "decide",
                    Fake::new(Behaviour::Reply(StepOutput::verdict(verdict)), &[]),
                    OnError::FailClosed,
                ),
                step("after", Arc::clone(&after), OnError::FailClosed),
            ],
        ))
        .await;
        assert_eq!(out.disposition.name(), name);
        assert_eq!(after.calls.load(Ordering::SeqCst), 0, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn accept_stores_at_once_and_skips_later_pipelines() {
    let accept = Fake::new(
        Behaviour::Reply(StepOutput {
            verdict: Verdict::Accept,
            mutations: vec![Mutation::add_header("X-Accepted", "1").expect("valid")],
        }),
        &[Capability::AddHeader],
    );
    let later = tag("later");
    let set = PipelineSet::from_compiled(vec![
        pipeline(
            "global",
            Scope::Global,
            vec![step("ok", accept, OnError::FailClosed)],
        ),
        pipeline(
            "tenant",
            Scope::TenantDefault,
            vec![step("t", Arc::clone(&later), OnError::FailClosed)],
        ),
    ]);
    let labels = BTreeMap::new();
    let chosen = set.select(
        Stage::Deliver,
        MailboxScope {
            tenant: "example",
            labels: &labels,
            pipeline_ref: None,
        },
    );
    let out = engine::run(&chosen, input(), &metrics()).await;
    assert_eq!(out.disposition, Disposition::Store);
    assert!(out.message.starts_with(b"X-Accepted: 1\r\n"));
    assert_eq!(later.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn dry_run_records_what_it_would_do_and_changes_nothing() {
    let mut p = pipeline(
        "watch",
        Scope::TenantDefault,
        vec![
            step("tag", tag("x"), OnError::FailClosed),
            step(
                "deny",
                Fake::new(
                    Behaviour::Reply(StepOutput::verdict(Verdict::reject("policy"))),
                    &[],
                ),
                OnError::FailClosed,
            ),
            step(
                "crash",
                Fake::new(Behaviour::Panic, &[]),
                OnError::FailClosed,
            ),
        ],
    );
    p.dry_run = true;
    let out = run_one(p).await;
    assert_eq!(out.disposition, Disposition::Store);
    assert_eq!(&out.message[..], MESSAGE);
    assert_eq!(out.dry_run.len(), 4, "{:?}", out.dry_run);
    let record = out
        .metadata
        .get("pipeline.dry-run.watch")
        .expect("recorded");
    assert!(record.contains("tag: addHeader X-Tag"), "{record}");
    assert!(record.contains("deny: reject 5.7.1 policy"), "{record}");
    assert!(
        record.contains("crash: failed (plugin panicked"),
        "{record}"
    );
    assert!(record.contains("crash: tempfail 4.3.0"), "{record}");
}

#[test]
fn scopes_compose_global_then_tenant_default_then_matching_selectors() {
    let sel = |k: &str, v: &str| {
        Scope::Selector(
            kube::core::Selector::try_from(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(BTreeMap::from([(k.into(), v.into())])),
                    ..Default::default()
                },
            )
            .expect("selector"),
        )
    };
    let empty = || Vec::new();
    let set = PipelineSet::from_compiled(vec![
        pipeline("z-vip", sel("tier", "vip"), empty()),
        pipeline("default", Scope::TenantDefault, empty()),
        pipeline("a-legal", sel("team", "legal"), empty()),
        pipeline("platform", Scope::Global, empty()),
        pipeline("override", sel("never", "matches"), empty()),
    ]);
    let names = |labels: &[(&str, &str)], pipeline_ref: Option<&str>, tenant: &str| {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        set.select(
            Stage::Deliver,
            MailboxScope {
                tenant,
                labels: &labels,
                pipeline_ref,
            },
        )
        .iter()
        .map(|p| p.name.clone())
        .collect::<Vec<_>>()
    };
    assert_eq!(names(&[], None, "example"), ["platform", "default"]);
    assert_eq!(
        names(&[("tier", "vip"), ("team", "legal")], None, "example"),
        ["platform", "default", "a-legal", "z-vip"]
    );
    assert_eq!(
        names(&[("tier", "vip")], Some("override"), "example"),
        ["platform", "override"]
    );
    assert_eq!(
        names(&[], Some("missing"), "example"),
        ["platform", "default"],
        "a dangling pipelineRef falls back to the tenant's pipelines"
    );
    assert_eq!(names(&[], None, "other-tenant"), ["platform"]);
    assert!(
        set.select(
            Stage::PostStore,
            MailboxScope {
                tenant: "example",
                labels: &BTreeMap::new(),
                pipeline_ref: None
            }
        )
        .is_empty()
    );
}

fn parse(yaml: &str) -> Vec<Pipeline> {
    mcp_crds::Resource::parse_stream(yaml)
        .expect("parses")
        .into_iter()
        .map(|r| match r {
            mcp_crds::Resource::Pipeline(p) => *p,
            other => panic!("not a Pipeline: {}", other.kind()),
        })
        .collect()
}

fn compile_err(yaml: &str) -> String {
    let tenant_of = |ns: &str| (ns == "mcp-example").then(|| "example".to_owned());
    compile(&parse(yaml), &tenant_of, &NoExternalPlugins)
        .map(|_| ())
        .expect_err("compiled")
        .to_string()
}

const EXTERNAL: &str = "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: NAME, namespace: NS}\nspec:\n  scope: {type: TenantDefault}\n  stages: [deliver]\n  steps: [{name: s, plugin: {name: scanner}}]\n";

fn external(name: &str, ns: &str) -> String {
    EXTERNAL.replace("NAME", name).replace("NS", ns)
}

#[test]
fn invalid_pipelines_are_refused_naming_resource_and_field() {
    let two_defaults = format!(
        "{}---\n{}",
        external("a", "mcp-example"),
        external("b", "mcp-example")
    );
    let cases: Vec<(String, &str)> = vec![
        (
            two_defaults,
            "Pipeline mcp-example/b: spec.scope: tenant \"example\" already has the TenantDefault pipeline \"a\" on stage deliver",
        ),
        (
            external("a", "nowhere"),
            "Pipeline nowhere/a: metadata.namespace: namespace \"nowhere\" belongs to no Tenant",
        ),
        (
            external("a", "mcp-example").replace(
                "plugin: {name: scanner}}",
                "plugin: {name: scanner}, timeout: 40s}",
            ),
            "Pipeline mcp-example/a: spec.steps[0].timeout: 40s is longer than spec.deadline 30s",
        ),
        (
            external("a", "mcp-example").replace(
                "plugin: {name: scanner}}",
                "plugin: {name: scanner}, retry: {attempts: 2}}",
            ),
            "spec.steps[0].retry: only allowed with onError: retry",
        ),
        (
            external("a", "mcp-example").replace(
                "[{name: s, plugin: {name: scanner}}]",
                "[{name: s, plugin: {name: x}}, {name: s, plugin: {name: y}}]",
            ),
            "spec.steps[1].name: \"s\" is used twice",
        ),
        (
            external("a", "mcp-example").replace("plugin: {name: scanner}", "plugin: {}"),
            "spec.steps[0].plugin: exactly one of builtin and name must be set",
        ),
        (
            external("a", "mcp-example")
                .replace("{type: TenantDefault}", "{type: MailboxSelector}"),
            "spec.scope.mailboxSelector: required with type MailboxSelector",
        ),
        (
            external("a", "mcp-example").replace("[deliver]", "[deliver, deliver]"),
            "spec.stages: 1 to 3 stages, each at most once",
        ),
    ];
    for (yaml, want) in cases {
        let got = compile_err(&yaml);
        assert!(got.contains(want), "want {want:?}\n got {got:?}");
    }
}

#[test]
fn global_pipelines_outside_the_platform_namespace_are_ignored_with_a_reason() {
    let yaml = external("g", "mcp-example").replace("TenantDefault", "Global");
    let set = compile(
        &parse(&yaml),
        &|_| Some("example".into()),
        &NoExternalPlugins,
    )
    .expect("compiles");
    assert_eq!(set.ignored().len(), 1);
    assert!(set.ignored()[0].contains("honoured only in namespace mcp-system"));
    let labels = BTreeMap::new();
    assert!(
        set.select(
            Stage::Deliver,
            MailboxScope {
                tenant: "example",
                labels: &labels,
                pipeline_ref: None
            }
        )
        .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn an_external_plugin_not_served_yet_gets_its_on_error_at_once() {
    let yaml = external("a", "mcp-example").replace(
        "plugin: {name: scanner}}",
        "plugin: {name: scanner}, onError: failOpen}",
    );
    let set = compile(
        &parse(&yaml),
        &|_| Some("example".into()),
        &NoExternalPlugins,
    )
    .expect("compiles");
    let labels = BTreeMap::new();
    let chosen = set.select(
        Stage::Deliver,
        MailboxScope {
            tenant: "example",
            labels: &labels,
            pipeline_ref: None,
        },
    );
    let started = tokio::time::Instant::now();
    let out = engine::run(&chosen, input(), &metrics()).await;
    assert_eq!(out.disposition, Disposition::Store);
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait for a timeout");
}

#[test]
fn the_sample_pipelines_compile_with_the_builtin_plugins() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    for (file, namespace, tenant) in [
        ("standalone/pipeline.yaml", "mcp-example", "example"),
        ("k8s/pipeline.yaml", "mcp-acme", "acme"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("sample");
        let tenant_of = |ns: &str| (ns == namespace).then(|| tenant.to_owned());
        let set = compile(&parse(&text), &tenant_of, &NoExternalPlugins)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!set.is_empty(), "{file}");
    }
}

/// What [`Table`] answers for a PluginDeployment.
#[derive(Clone)]
enum Deployment {
    Serving(Arc<Fake>),
    Suspended,
    Unknown,
}

/// External plugins by PluginDeployment name, as a plugin host's plan resolves them.
struct Table(BTreeMap<&'static str, Deployment>);

impl compile::ExternalPlugins for Table {
    fn plugin(&self, step: &compile::ExternalStep<'_>) -> Result<Resolved, compile::ExternalError> {
        Ok(match self.0.get(step.deployment) {
            Some(Deployment::Serving(p)) => Resolved::Plugin(Arc::clone(p) as Arc<dyn Plugin>),
            Some(Deployment::Suspended) => Resolved::Suspended,
            Some(Deployment::Unknown) | None => Resolved::Unknown,
        })
    }
}

fn metric_text(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

/// A step whose PluginDeployment is suspended is passed over as if it were absent: the
/// message goes on to the next step (built-in taggers before and after it run), whatever
/// the step's `onError` or the plugin's verdict would have been; the skip is counted,
/// recorded on the message and in the compiled pipeline, and no failure is counted.
#[tokio::test(start_paused = true)]
async fn a_step_of_a_suspended_plugin_is_skipped_as_if_absent() {
    let yaml = |on_error: &str, dry_run: bool| {
        format!(
            "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {{name: p, namespace: mcp-example}}\n\
             spec:\n  scope: {{type: TenantDefault}}\n  stages: [deliver]\n  dryRun: {dry_run}\n  steps:\n\
             \x20   - {{name: before, plugin: {{builtin: header-tagger}}, config: {{headers: [{{name: X-Before, value: b, action: add}}]}}}}\n\
             \x20   - {{name: scan, plugin: {{name: scanner}}, onError: {on_error}}}\n\
             \x20   - {{name: after, plugin: {{builtin: header-tagger}}, config: {{headers: [{{name: X-After, value: a, action: add}}]}}}}\n"
        )
    };
    let reject = || {
        Fake::new(
            Behaviour::Reply(StepOutput::verdict(Verdict::Reject {
                status: mcp_plugin_api::EnhancedStatus::new(5, 7, 1),
                text: "no".into(),
            })),
            &[],
        )
    };
    struct Case {
        name: &'static str,
        deployment: Deployment,
        on_error: &'static str,
        dry_run: bool,
        disposition: &'static str,
        skipped: bool,
        both_tags: bool,
    }
    let cases = [
        Case {
            name: "serving plugin rejects",
            deployment: Deployment::Serving(reject()),
            on_error: "failClosed",
            dry_run: false,
            disposition: "reject",
            skipped: false,
            both_tags: false,
        },
        Case {
            name: "suspended plugin that would reject",
            deployment: Deployment::Suspended,
            on_error: "failClosed",
            dry_run: false,
            disposition: "store",
            skipped: true,
            both_tags: true,
        },
        Case {
            name: "suspended, onError quarantine is not applied",
            deployment: Deployment::Suspended,
            on_error: "quarantine",
            dry_run: false,
            disposition: "store",
            skipped: true,
            both_tags: true,
        },
        Case {
            name: "suspended, onError retry is not applied",
            deployment: Deployment::Suspended,
            on_error: "retry",
            dry_run: false,
            disposition: "store",
            skipped: true,
            both_tags: true,
        },
        Case {
            name: "unknown plugin is a failure, not a skip",
            deployment: Deployment::Unknown,
            on_error: "failClosed",
            dry_run: false,
            disposition: "tempfail",
            skipped: false,
            both_tags: false,
        },
        Case {
            name: "suspended in a dry-run pipeline",
            deployment: Deployment::Suspended,
            on_error: "failClosed",
            dry_run: true,
            disposition: "store",
            skipped: true,
            both_tags: false,
        },
    ];
    for case in cases {
        let what = case.name;
        let table = Table(BTreeMap::from([("scanner", case.deployment.clone())]));
        let set = compile(
            &parse(&yaml(case.on_error, case.dry_run)),
            &|_| Some("example".into()),
            &table,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let want_skipped: Vec<String> = if case.skipped {
            vec!["scan".into()]
        } else {
            Vec::new()
        };
        assert_eq!(set.loaded()[0].skipped_steps, want_skipped, "{what}");
        let chosen = set.select(
            Stage::Deliver,
            MailboxScope {
                tenant: "example",
                labels: &BTreeMap::new(),
                pipeline_ref: None,
            },
        );
        assert_eq!(chosen[0].skipped_steps(), want_skipped, "{what}");
        let mut registry = Registry::default();
        let metrics = PipelineMetrics::register(&mut registry);
        let out = engine::run(&chosen, input(), &metrics).await;
        assert_eq!(out.disposition.name(), case.disposition, "{what}");
        let text = String::from_utf8_lossy(&out.message).into_owned();
        assert_eq!(
            text.contains("X-Before: b") && text.contains("X-After: a"),
            case.both_tags,
            "{what}: {text}"
        );
        if case.dry_run {
            assert_eq!(
                out.dry_run.len(),
                2,
                "{what}: the steps around the skipped one still run: {:?}",
                out.dry_run
            );
        }
        let exposed = metric_text(&registry);
        let skip_line = "mcp_pipeline_step_skipped_total{stage=\"deliver\",plugin=\"deployment/scanner\",reason=\"suspended\"} 1";
        assert_eq!(
            exposed.contains(skip_line),
            case.skipped,
            "{what}: {exposed}"
        );
        assert_eq!(
            out.metadata.get(engine::SKIPPED_KEY).map(String::as_str),
            case.skipped.then_some("mcp-example/p/scan"),
            "{what}"
        );
        if case.skipped {
            assert!(
                !exposed.contains("mcp_pipeline_step_errors_total{"),
                "{what}: a skip is no failure: {exposed}"
            );
            assert!(
                !exposed.contains("plugin=\"deployment/scanner\",verdict"),
                "{what}: nothing was called: {exposed}"
            );
            assert!(
                !out.dry_run.iter().any(|l| l.contains(": scan")),
                "{what}: a skip is no dry-run action: {:?}",
                out.dry_run
            );
        }
        if let Deployment::Serving(p) = &case.deployment {
            assert_eq!(p.calls.load(Ordering::SeqCst), 1, "{what}");
        }
    }
}
