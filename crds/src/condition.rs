//! `status.conditions` entries, shaped like `metav1.Condition` so that kstatus-based health
//! checks (Argo CD, Flux) read them (DESIGN.md §2, "Conventions").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation of an aspect of a resource's state, as `metav1.Condition`.
///
/// The list that holds these is a list-map keyed on `type`; `Ready` comes first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition, in CamelCase (`Ready`, `Provisioned`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The `.metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed, RFC 3339 UTC.
    pub last_transition_time: String,
    /// Machine-readable CamelCase reason for the last transition.
    pub reason: String,
    /// Human-readable detail; may be empty.
    #[serde(default)]
    pub message: String,
}
