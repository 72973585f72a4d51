//! The mail-processing pipeline (DESIGN.md §4, docs/pipeline.md).
//!
//! - [`compile`]: Pipeline resources → [`PipelineSet`], checked as a whole.
//! - [`engine`]: runs the selected pipelines on one message: verdicts, typed mutations,
//!   timeouts, `onError`, deadlines, dry-run.
//! - [`reload`]: keeps the set in force and swaps it when the configuration changes; every
//!   message runs on the one snapshot it started with.
//! - [`metrics`]: per stage and plugin.
//!
//! The one path that stores a message through the pipeline, shared by LMTP and IMAP
//! APPEND, is [`crate::ingest`].

pub mod compile;
pub mod engine;
pub mod metrics;
pub mod reload;
pub mod testing;

pub use compile::{
    CompileError, CompiledPipeline, CompiledStep, MailboxScope, PipelineSet, Resolved, Retry,
    Scope, compile, stage_name,
};
pub use engine::{Disposition, Input, Outcome, StepRef};
pub use metrics::PipelineMetrics;
pub use reload::Pipelines;

#[cfg(test)]
mod tests;
