//! Limits on storage and traffic, shared by `Tenant` and `Mailbox`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits of one mailbox. An absent field means "no limit".
///
/// Set on a Mailbox (`spec.quota`) or as the tenant-wide default for every mailbox
/// (`Tenant.spec.quota.mailboxDefault`); the Mailbox's own value wins field by field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Storage limit, a Kubernetes quantity in bytes (`512Mi`, `10Gi`), counted as the sum of
    /// RFC822.SIZE over all messages of the mailbox. When it is reached, APPEND and delivery
    /// fail with `NO [OVERQUOTA]` / LMTP 552; existing mail stays readable. Lowering it below
    /// the current usage deletes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
    /// Maximum number of messages across all folders of the mailbox. Reaching it has the same
    /// effect as reaching `storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub messages: Option<i64>,
}

/// Current consumption of a mailbox or tenant, as reported in status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Bytes stored (sum of RFC822.SIZE), as a quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
    /// Number of messages stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub messages: Option<i64>,
}
