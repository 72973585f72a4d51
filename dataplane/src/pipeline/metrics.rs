//! Metrics of the pipeline engine, per stage and per plugin (issue 4, item 6).
//!
//! Families (registered into the dataplane's registry, served on `/metrics`):
//! - `mcp_pipeline_step_invocations_total{stage,plugin}`: plugin calls, retries included.
//! - `mcp_pipeline_step_verdicts_total{stage,plugin,verdict}`: verdicts returned
//!   (`continue`, `accept`, `reject`, `tempfail`, `discard`, `quarantine`).
//! - `mcp_pipeline_step_errors_total{stage,plugin,error}`: plugin failures by kind
//!   (`error`, `unavailable`, `timeout`, `panic`, `undeclared_mutation`, `invalid_reply`,
//!   `deadline`).
//! - `mcp_pipeline_step_duration_seconds{stage,plugin}`: time of one call, histogram.
//! - `mcp_pipeline_step_skipped_total{stage,plugin,reason}`: steps passed over without a
//!   call, by reason: `suspended` (the PluginDeployment's `spec.suspend`). Dry-run
//!   pipelines count too.
//! - `mcp_pipeline_runs_total{stage,outcome}`: messages through the pipelines (`store`,
//!   `reject`, `tempfail`, `discard`, `quarantine`).
//! - `mcp_pipeline_dry_run_actions_total{stage,plugin,action}`: what dry-run pipelines would
//!   have done (a verdict other than `continue`, or a mutation kind).
//! - `mcp_pipeline_reloads_total{result}`: pipeline (re)loads, `ok` or `error`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StagePlugin {
    stage: &'static str,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    stage: &'static str,
    plugin: String,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    stage: &'static str,
    plugin: String,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkipLabels {
    stage: &'static str,
    plugin: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    stage: &'static str,
    plugin: String,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    stage: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The pipeline engine's metric families.
#[derive(Debug)]
pub struct PipelineMetrics {
    invocations: Family<StagePlugin, Counter>,
    verdicts: Family<VerdictLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<StagePlugin, Histogram, fn() -> Histogram>,
    skipped: Family<SkipLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    dry_run: Family<ActionLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
}

fn step_histogram() -> Histogram {
    // 20 µs .. ~5 s: built-in steps take microseconds, remote ones milliseconds.
    Histogram::new(exponential_buckets(0.000_02, 3.0, 12))
}

impl PipelineMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            invocations: Family::default(),
            verdicts: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(step_histogram),
            skipped: Family::default(),
            runs: Family::default(),
            dry_run: Family::default(),
            reloads: Family::default(),
        };
        registry.register(
            "mcp_pipeline_step_invocations",
            "Plugin calls by pipeline steps, retries included",
            m.invocations.clone(),
        );
        registry.register(
            "mcp_pipeline_step_verdicts",
            "Verdicts returned by pipeline steps",
            m.verdicts.clone(),
        );
        registry.register(
            "mcp_pipeline_step_errors",
            "Plugin failures of pipeline steps, by kind",
            m.errors.clone(),
        );
        registry.register(
            "mcp_pipeline_step_duration_seconds",
            "Time of one plugin call, seconds",
            m.durations.clone(),
        );
        registry.register(
            "mcp_pipeline_step_skipped",
            "Pipeline steps passed over without a call, by reason",
            m.skipped.clone(),
        );
        registry.register(
            "mcp_pipeline_runs",
            "Messages through the pipelines of a stage, by outcome",
            m.runs.clone(),
        );
        registry.register(
            "mcp_pipeline_dry_run_actions",
            "Actions dry-run pipelines would have taken",
            m.dry_run.clone(),
        );
        registry.register(
            "mcp_pipeline_reloads",
            "Loads of the pipeline configuration, by result",
            m.reloads.clone(),
        );
        m
    }

    pub(crate) fn invoked(&self, stage: &'static str, plugin: &str, seconds: f64) {
        let l = StagePlugin {
            stage,
            plugin: plugin.to_owned(),
        };
        self.invocations.get_or_create(&l).inc();
        self.durations.get_or_create(&l).observe(seconds);
    }

    pub(crate) fn verdict(&self, stage: &'static str, plugin: &str, verdict: &'static str) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                stage,
                plugin: plugin.to_owned(),
                verdict,
            })
            .inc();
    }

    pub(crate) fn error(&self, stage: &'static str, plugin: &str, error: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels {
                stage,
                plugin: plugin.to_owned(),
                error,
            })
            .inc();
    }

    pub(crate) fn skipped(&self, stage: &'static str, plugin: &str, reason: &'static str) {
        self.skipped
            .get_or_create(&SkipLabels {
                stage,
                plugin: plugin.to_owned(),
                reason,
            })
            .inc();
    }

    pub(crate) fn dry_run(&self, stage: &'static str, plugin: &str, action: &'static str) {
        self.dry_run
            .get_or_create(&ActionLabels {
                stage,
                plugin: plugin.to_owned(),
                action,
            })
            .inc();
    }

    pub(crate) fn run(&self, stage: &'static str, outcome: &'static str) {
        self.runs.get_or_create(&RunLabels { stage, outcome }).inc();
    }

    /// Counts one load of the pipeline configuration.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }
}
