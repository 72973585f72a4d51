//! Running pipelines on one message (DESIGN.md §4).
//!
//! [`run`] takes the pipelines [`PipelineSet::select`](super::PipelineSet::select) chose and
//! runs their steps in order. Each call runs under the step's timeout and the pipeline's
//! remaining deadline, with panics caught; a reply is checked (valid verdict, every mutation
//! declared and valid) before anything of it is used. A failure (error, panic, timeout,
//! invalid reply) is not a verdict: the step's `onError` decides:
//!
//! | `onError` | effect |
//! |---|---|
//! | `failOpen` | the step counts as `Continue` with no mutation |
//! | `failClosed` | `TempFail` `4.3.0` (LMTP 451, APPEND `NO [UNAVAILABLE]`) |
//! | `quarantine` | `Quarantine` with the failure as reason |
//! | `retry` | the call is repeated `attempts` times after `backoff`, then fails closed |
//!
//! When the deadline runs out the current step is cancelled and handled by its `onError`;
//! later steps of that pipeline do not run. A dry-run pipeline runs every step on the
//! message as it came, records what it would have done ([`Outcome::dry_run`]) and changes
//! nothing.
//!
//! A step whose PluginDeployment is suspended ([`CompiledStep::suspended`]) is passed over
//! as if absent, in dry-run pipelines too: no call, no verdict, no `onError`. Each skip is
//! counted (`mcp_pipeline_step_skipped_total{reason="suspended"}`) and the message keeps a
//! record of it ([`SKIPPED_KEY`]).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use mcp_crds::pipeline::{OnError, Stage};
use mcp_plugin_api::mutation::apply_to_message;
use mcp_plugin_api::{EnhancedStatus, Envelope, MessageContext, Mutation, StepOutput, Verdict};

use super::compile::{CompiledPipeline, CompiledStep, stage_name};
use super::metrics::PipelineMetrics;

/// The message and what the engine needs to know about where it goes.
#[derive(Clone, Debug)]
pub struct Input {
    /// The stage running.
    pub stage: Stage,
    /// The tenant's name.
    pub tenant: String,
    /// The account's address.
    pub mailbox: String,
    /// The destination folder before any step ran.
    pub folder: String,
    /// Sender and recipient.
    pub envelope: Envelope,
    /// The message as received.
    pub message: Bytes,
    /// Flags and keywords requested (APPEND) or none (delivery).
    pub flags: Vec<String>,
}

/// Which step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRef {
    /// `namespace/name` of the pipeline.
    pub pipeline: String,
    /// Its revision.
    pub revision: String,
    /// The step's name.
    pub step: String,
}

/// The fate of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Store it (possibly changed, possibly elsewhere).
    Store,
    /// Refuse permanently.
    Reject {
        /// Class 5.
        status: EnhancedStatus,
        /// Reason, printable ASCII.
        text: String,
        /// Who decided.
        by: StepRef,
    },
    /// Refuse for now.
    TempFail {
        /// Class 4.
        status: EnhancedStatus,
        /// Reason, printable ASCII.
        text: String,
        /// Who decided.
        by: StepRef,
    },
    /// Accept and drop.
    Discard {
        /// Who decided.
        by: StepRef,
    },
    /// Hold the original message in the tenant's quarantine.
    Quarantine {
        /// Why.
        reason: String,
        /// Who decided.
        by: StepRef,
    },
}

impl Disposition {
    /// `store`, `reject`, `tempfail`, `discard` or `quarantine`.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Store => "store",
            Disposition::Reject { .. } => "reject",
            Disposition::TempFail { .. } => "tempfail",
            Disposition::Discard { .. } => "discard",
            Disposition::Quarantine { .. } => "quarantine",
        }
    }
}

/// What the pipelines decided, and the message as they left it.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The decision.
    pub disposition: Disposition,
    /// The message with every applied header and body mutation.
    pub message: Bytes,
    /// Where to store it.
    pub folder: String,
    /// Flags and keywords to store it with.
    pub flags: Vec<String>,
    /// Metadata to keep with it: `SetMetadata` results, plus `pipeline.revisions` (the
    /// pipelines that ran, `namespace/name@revision`, comma-separated), `pipeline.skipped`
    /// (the steps passed over because their plugin is suspended, `namespace/name/step`,
    /// comma-separated; absent when none was) and, for each dry-run pipeline,
    /// `pipeline.dry-run.<name>` (what it would have done).
    pub metadata: BTreeMap<String, String>,
    /// What dry-run pipelines would have done, one line per action.
    pub dry_run: Vec<String>,
}

/// Metadata key listing the pipelines that processed a message.
pub const REVISIONS_KEY: &str = "pipeline.revisions";

/// Metadata key listing the steps skipped on a message because their PluginDeployment is
/// suspended: `namespace/pipeline/step`, comma-separated.
pub const SKIPPED_KEY: &str = "pipeline.skipped";

/// Reason label of a step skipped because its PluginDeployment is suspended.
pub const SKIP_SUSPENDED: &str = "suspended";

/// Counts and records a skipped step; `true` when `step` is one (the caller passes over it).
fn skipped(
    p: &CompiledPipeline,
    step: &CompiledStep,
    stage: &'static str,
    metrics: &PipelineMetrics,
    record: &mut Vec<String>,
) -> bool {
    if !step.suspended {
        return false;
    }
    metrics.skipped(stage, &step.plugin_name, SKIP_SUSPENDED);
    record.push(format!("{}/{}/{}", p.namespace, p.name, step.name));
    true
}

/// Why a call did not produce a usable reply.
#[derive(Debug)]
enum Failure {
    Plugin(mcp_plugin_api::PluginError),
    Timeout(Duration),
    Deadline,
    Panic(String),
    Undeclared(&'static str),
    Invalid(String),
}

impl Failure {
    fn kind(&self) -> &'static str {
        match self {
            Failure::Plugin(mcp_plugin_api::PluginError::Unavailable(_)) => "unavailable",
            // An external plugin's reply that breaks the contract (checked by the host).
            Failure::Plugin(mcp_plugin_api::PluginError::Protocol(_)) => "invalid_reply",
            Failure::Plugin(_) => "error",
            Failure::Timeout(_) => "timeout",
            Failure::Deadline => "deadline",
            Failure::Panic(_) => "panic",
            Failure::Undeclared(_) => "undeclared_mutation",
            Failure::Invalid(_) => "invalid_reply",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Plugin(e) => write!(f, "{e}"),
            Failure::Timeout(t) => write!(f, "timed out after {} ms", t.as_millis()),
            Failure::Deadline => f.write_str("pipeline deadline exceeded"),
            Failure::Panic(m) => write!(f, "plugin panicked: {m}"),
            Failure::Undeclared(kind) => write!(f, "undeclared mutation {kind}"),
            Failure::Invalid(m) => write!(f, "invalid reply: {m}"),
        }
    }
}

/// Keeps only printable ASCII (SMTP reply texts and quarantine reasons), at most 200.
fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(200)
        .collect();
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string payload".into())
}

/// Calls one step once, under `limit`, and checks the reply.
async fn call(
    step: &CompiledStep,
    ctx: &MessageContext,
    limit: Duration,
    deadline_bound: bool,
) -> Result<StepOutput, Failure> {
    // A plugin may panic while building its future as well as while it runs.
    let fut = std::panic::catch_unwind(AssertUnwindSafe(|| step.plugin.process(ctx)))
        .map_err(|panic| Failure::Panic(panic_message(panic.as_ref())))?;
    let out = match tokio::time::timeout(limit, AssertUnwindSafe(fut).catch_unwind()).await {
        Err(_) if deadline_bound => return Err(Failure::Deadline),
        Err(_) => return Err(Failure::Timeout(limit)),
        Ok(Err(panic)) => return Err(Failure::Panic(panic_message(panic.as_ref()))),
        Ok(Ok(Err(e))) => return Err(Failure::Plugin(e)),
        Ok(Ok(Ok(out))) => out,
    };
    if let Some(m) = step.capabilities.first_undeclared(&out.mutations) {
        return Err(Failure::Undeclared(m.kind()));
    }
    out.verdict
        .validate()
        .map_err(|e| Failure::Invalid(e.to_string()))?;
    for m in &out.mutations {
        m.validate().map_err(|e| Failure::Invalid(e.to_string()))?;
    }
    Ok(out)
}

/// Runs one step with its retries; `Err` when every attempt failed.
async fn run_step(
    step: &CompiledStep,
    ctx: &MessageContext,
    deadline: Instant,
    metrics: &PipelineMetrics,
) -> Result<StepOutput, Failure> {
    let stage = stage_name(ctx.stage);
    let attempts = step.retry.map_or(0, |r| r.attempts);
    let mut attempt = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            metrics.error(stage, &step.plugin_name, "deadline");
            return Err(Failure::Deadline);
        }
        let (limit, deadline_bound) = if remaining < step.timeout {
            (remaining, true)
        } else {
            (step.timeout, false)
        };
        let started = Instant::now();
        let result = call(step, ctx, limit, deadline_bound).await;
        metrics.invoked(stage, &step.plugin_name, started.elapsed().as_secs_f64());
        match result {
            Ok(out) => {
                metrics.verdict(stage, &step.plugin_name, out.verdict.name());
                return Ok(out);
            }
            Err(f) => {
                metrics.error(stage, &step.plugin_name, f.kind());
                tracing::warn!(
                    step = %step.name,
                    plugin = %step.plugin_name,
                    attempt,
                    error = %f,
                    "pipeline step failed"
                );
                let retry = step.retry.filter(|_| attempt < attempts);
                let Some(r) = retry else { return Err(f) };
                if matches!(f, Failure::Deadline) || Instant::now() + r.backoff >= deadline {
                    return Err(f);
                }
                tokio::time::sleep(r.backoff).await;
                attempt += 1;
            }
        }
    }
}

/// The verdict a failure turns into under the step's `onError`.
fn on_error(step: &CompiledStep, failure: &Failure) -> Verdict {
    let what = printable(&format!("step {} failed: {failure}", step.name));
    match step.on_error {
        OnError::FailOpen => Verdict::Continue,
        OnError::Quarantine => Verdict::Quarantine { reason: what },
        OnError::FailClosed | OnError::Retry => Verdict::TempFail {
            status: EnhancedStatus::new(4, 3, 0),
            text: what,
        },
    }
}

/// Applies the non-octet mutations to the running state.
fn apply_state(
    mutations: &[Mutation],
    folder: &mut String,
    flags: &mut Vec<String>,
    metadata: &mut BTreeMap<String, String>,
) {
    for m in mutations {
        match m {
            Mutation::AddKeyword { keyword } => push_flag(flags, keyword),
            Mutation::AddFlag { flag } => push_flag(flags, flag.as_imap()),
            Mutation::FileInto { folder: f } => f.clone_into(folder),
            Mutation::SetMetadata { key, value } => {
                metadata.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
}

fn push_flag(flags: &mut Vec<String>, flag: &str) {
    if !flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
        flags.push(flag.to_owned());
    }
}

fn describe(m: &Mutation) -> String {
    match m {
        Mutation::AddHeader { name, .. } => format!("addHeader {name}"),
        Mutation::ChangeHeader { name, .. } => format!("changeHeader {name}"),
        Mutation::RemoveHeader { name } => format!("removeHeader {name}"),
        Mutation::ReplaceBody { body } => format!("replaceBody ({} octets)", body.len()),
        Mutation::AddKeyword { keyword } => format!("addKeyword {keyword}"),
        Mutation::AddFlag { flag } => format!("addFlag {}", flag.as_imap()),
        Mutation::FileInto { folder } => format!("fileInto {folder}"),
        Mutation::SetMetadata { key, .. } => format!("setMetadata {key}"),
    }
}

fn describe_verdict(v: &Verdict) -> String {
    match v {
        Verdict::Reject { status, text } => format!("reject {status} {text}"),
        Verdict::TempFail { status, text } => format!("tempfail {status} {text}"),
        Verdict::Quarantine { reason } => format!("quarantine ({reason})"),
        other => other.name().to_owned(),
    }
}

/// Runs `pipelines` (in order) on `input`.
///
/// Never fails: every plugin failure is resolved by its step's `onError`.
pub async fn run(
    pipelines: &[Arc<CompiledPipeline>],
    input: Input,
    metrics: &PipelineMetrics,
) -> Outcome {
    let stage = stage_name(input.stage);
    let mut ctx = MessageContext {
        stage: input.stage,
        tenant: input.tenant,
        mailbox: input.mailbox,
        folder: input.folder,
        envelope: input.envelope,
        message: input.message,
        flags: input.flags,
        metadata: BTreeMap::new(),
    };
    let mut dry_run_lines = Vec::new();
    let mut revisions = Vec::new();
    let mut skips = Vec::new();
    let mut disposition = Disposition::Store;
    'pipelines: for p in pipelines {
        revisions.push(p.label());
        let deadline = Instant::now() + p.deadline;
        if p.dry_run {
            let lines = dry_run(p, &ctx, deadline, metrics, &mut skips).await;
            if !lines.is_empty() {
                let value = printable_long(&lines.join("; "));
                ctx.metadata
                    .insert(format!("pipeline.dry-run.{}", p.name), value);
            }
            dry_run_lines.extend(lines.into_iter().map(|l| format!("{}: {l}", p.label())));
            continue;
        }
        for step in &p.steps {
            if skipped(p, step, stage, metrics, &mut skips) {
                continue;
            }
            let by = || StepRef {
                pipeline: format!("{}/{}", p.namespace, p.name),
                revision: p.revision.clone(),
                step: step.name.clone(),
            };
            let (verdict, mutations) = match run_step(step, &ctx, deadline, metrics).await {
                Ok(out) => (out.verdict, out.mutations),
                Err(f) => {
                    let v = on_error(step, &f);
                    let last = matches!(f, Failure::Deadline);
                    if last && v.continues() {
                        // The deadline ran out: the rest of this pipeline does not run.
                        continue 'pipelines;
                    }
                    (v, Vec::new())
                }
            };
            match verdict {
                Verdict::Continue | Verdict::Accept => {
                    if !mutations.is_empty() {
                        ctx.message = apply_to_message(&ctx.message, &mutations);
                        apply_state(
                            &mutations,
                            &mut ctx.folder,
                            &mut ctx.flags,
                            &mut ctx.metadata,
                        );
                    }
                    if matches!(verdict, Verdict::Accept) {
                        break 'pipelines;
                    }
                }
                Verdict::Reject { status, text } => {
                    disposition = Disposition::Reject {
                        status,
                        text,
                        by: by(),
                    };
                    break 'pipelines;
                }
                Verdict::TempFail { status, text } => {
                    disposition = Disposition::TempFail {
                        status,
                        text,
                        by: by(),
                    };
                    break 'pipelines;
                }
                Verdict::Discard => {
                    disposition = Disposition::Discard { by: by() };
                    break 'pipelines;
                }
                Verdict::Quarantine { reason } => {
                    disposition = Disposition::Quarantine { reason, by: by() };
                    break 'pipelines;
                }
            }
        }
    }
    if !revisions.is_empty() {
        ctx.metadata.insert(
            REVISIONS_KEY.to_owned(),
            printable_long(&revisions.join(",")),
        );
    }
    if !skips.is_empty() {
        ctx.metadata
            .insert(SKIPPED_KEY.to_owned(), printable_long(&skips.join(",")));
    }
    metrics.run(stage, disposition.name());
    Outcome {
        disposition,
        message: ctx.message,
        folder: ctx.folder,
        flags: ctx.flags,
        metadata: ctx.metadata,
        dry_run: dry_run_lines,
    }
}

/// At most 4096 characters without control characters (a metadata value).
fn printable_long(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(4096)
        .collect()
}

/// Runs every step of a dry-run pipeline on the message as it is; returns what would have
/// happened, one line per verdict other than `Continue` and per mutation.
async fn dry_run(
    p: &CompiledPipeline,
    ctx: &MessageContext,
    deadline: Instant,
    metrics: &PipelineMetrics,
    skips: &mut Vec<String>,
) -> Vec<String> {
    let stage = stage_name(ctx.stage);
    let mut lines = Vec::new();
    for step in &p.steps {
        if skipped(p, step, stage, metrics, skips) {
            continue;
        }
        let (verdict, mutations) = match run_step(step, ctx, deadline, metrics).await {
            Ok(out) => (out.verdict, out.mutations),
            Err(f) => {
                lines.push(format!("{}: failed ({f}), onError would apply", step.name));
                (on_error(step, &f), Vec::new())
            }
        };
        if !verdict.continues() {
            metrics.dry_run(stage, &step.plugin_name, verdict.name());
            lines.push(format!("{}: {}", step.name, describe_verdict(&verdict)));
        }
        for m in &mutations {
            metrics.dry_run(stage, &step.plugin_name, m.kind());
            lines.push(format!("{}: {}", step.name, describe(m)));
        }
    }
    if !lines.is_empty() {
        tracing::info!(pipeline = %p.label(), actions = %lines.join("; "), "dry-run pipeline would have acted");
    }
    lines
}
