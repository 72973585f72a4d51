//! `status.conditions` entries, shaped like `metav1.Condition` so that kstatus-based health
//! checks (Argo CD, Flux) read them (DESIGN.md §2, "Conventions").
//!
//! Every status struct holds its conditions in a list-map keyed on `type`
//! (`x-kubernetes-list-type: map`, `x-kubernetes-list-map-keys: [type]`), so server-side
//! apply merges them per type and a controller owns only the conditions it writes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition type every MCP resource reports: the resource is fully reconciled and serving.
pub const READY: &str = "Ready";

/// One observation of an aspect of a resource's state, as `metav1.Condition`.
///
/// The list that holds these is a list-map keyed on `type`; `Ready` comes first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition, in CamelCase (`Ready`, `Provisioned`, `Validated`, ...). Unique
    /// within the list.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// Whether the condition holds: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The `.metadata.generation` this condition was computed from. Lower than the resource's
    /// current generation means the condition is out of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// When `status` last changed, RFC 3339 UTC (`2026-01-31T12:00:00Z`).
    #[schemars(length(min = 1, max = 64))]
    pub last_transition_time: String,
    /// Machine-readable CamelCase reason for the last transition (`Reconciled`,
    /// `SecretNotFound`, ...).
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Human-readable detail; may be empty.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The truth value of a [`Condition`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell (yet).
    #[default]
    Unknown,
}
