//! Building `status.conditions` so that an unchanged observation writes nothing.
//!
//! [`set`] keeps a condition's `lastTransitionTime` when its `status` did not change, so a
//! controller can compute the whole status, compare it with the stored one and skip the
//! write when they are equal (the "no write on an unchanged object" rule of issue 3).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use mcp_crds::condition::READY;
use mcp_crds::{Condition, ConditionStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The current time as RFC 3339 UTC with seconds (`2026-01-31T12:00:00Z`), as
/// `metav1.Time` serialises.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One condition to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed<'a> {
    /// `type`, e.g. `Ready`.
    pub type_: &'a str,
    /// `status`.
    pub status: ConditionStatus,
    /// CamelCase `reason`.
    pub reason: &'a str,
    /// Human-readable `message`.
    pub message: String,
}

/// The `Ready` condition with `status`, `reason` and `message`.
pub fn ready(status: ConditionStatus, reason: &str, message: String) -> Observed<'_> {
    Observed {
        type_: READY,
        status,
        reason,
        message,
    }
}

/// Writes `status` to `name`'s status subresource with server-side apply and `params` (the
/// operator's field manager). Callers compare with the stored status first and skip equal
/// ones.
///
/// # Errors
/// The API server's refusal.
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    params: &PatchParams,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, params, &Patch::Apply(&patch))
        .await?;
    Ok(())
}

/// The conditions `observed` (in that order: put `Ready` first) with `observedGeneration`
/// `generation`, keeping each `lastTransitionTime` from `previous` when the type's status is
/// unchanged. Conditions of `previous` whose type is not observed are kept after them (a
/// list-map: another writer may own them).
pub fn set(
    previous: &[Condition],
    observed: &[Observed<'_>],
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = observed
        .iter()
        .map(|o| {
            let since = previous
                .iter()
                .find(|c| c.type_ == o.type_ && c.status == o.status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(now);
            Condition {
                type_: o.type_.to_owned(),
                status: o.status,
                observed_generation: generation,
                last_transition_time: since,
                reason: o.reason.to_owned(),
                message: o.message.clone(),
            }
        })
        .collect();
    out.extend(
        previous
            .iter()
            .filter(|c| !observed.iter().any(|o| o.type_ == c.type_))
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: ConditionStatus, reason: &str) -> Observed<'_> {
        Observed {
            type_: "Ready",
            status,
            reason,
            message: String::new(),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let old = Condition {
            type_: "Ready".into(),
            status: ConditionStatus::True,
            observed_generation: Some(1),
            last_transition_time: "2020-01-01T00:00:00Z".into(),
            reason: "Provisioned".into(),
            message: String::new(),
        };
        let other = Condition {
            type_: "Other".into(),
            ..old.clone()
        };
        let previous = [old.clone(), other.clone()];

        let same = set(
            &previous,
            &[ready(ConditionStatus::True, "Provisioned")],
            Some(1),
        );
        assert_eq!(same, previous, "unchanged observation, unchanged list");

        let regen = set(
            &previous,
            &[ready(ConditionStatus::True, "Provisioned")],
            Some(2),
        );
        assert_eq!(regen[0].last_transition_time, old.last_transition_time);
        assert_eq!(regen[0].observed_generation, Some(2));

        let flipped = set(
            &previous,
            &[ready(ConditionStatus::False, "TenantNotFound")],
            Some(1),
        );
        assert_ne!(flipped[0].last_transition_time, old.last_transition_time);
        assert_eq!(flipped[0].reason, "TenantNotFound");
        assert_eq!(flipped[1], other, "a type we do not observe is kept");
    }
}
