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
    /// RFC822.SIZE over all messages of the mailbox. A message that would take the mailbox
    /// over it is refused: APPEND, COPY and MOVE with `NO [OVERQUOTA]`, LMTP delivery with
    /// `452 4.2.2` (the sender's MTA retries); existing mail stays readable and can be
    /// expunged. Lowering it below the current usage deletes nothing. IMAP GETQUOTA reports
    /// it as STORAGE in units of 1024 octets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
    /// Maximum number of messages across all folders of the mailbox. A message beyond it is
    /// refused like one beyond `storage` (IMAP GETQUOTA: the MESSAGE resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub messages: Option<i64>,
}

impl Quota {
    /// The limits of a Mailbox: each field of `own` (`spec.quota`) that is set, else that
    /// field of `default` (the Tenant's `spec.quota.mailboxDefault`). `None` when neither
    /// sets anything. The operator and the standalone mode both use this.
    pub fn effective(own: Option<&Quota>, default: Option<&Quota>) -> Option<Quota> {
        let (own, default) = (
            own.cloned().unwrap_or_default(),
            default.cloned().unwrap_or_default(),
        );
        let merged = Quota {
            storage: own.storage.or(default.storage),
            messages: own.messages.or(default.messages),
        };
        (merged.storage.is_some() || merged.messages.is_some()).then_some(merged)
    }
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
