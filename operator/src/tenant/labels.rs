//! Labels of a Tenant's children: the recommended `app.kubernetes.io/*` set and
//! `mcp.dev/tenant`, plus the labels the NetworkPolicy admits traffic by.

use std::collections::BTreeMap;

use mcp_crds::Tenant;

use super::names::short_hash;
use super::{BuildError, tenant_name};

/// `app.kubernetes.io/name`: always [`APP`].
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the tenant (as a label value).
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/component`: `tenant` on the namespace, `dataplane` on the rest.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/part-of`: always [`APP`].
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`: always [`MANAGER`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The tenant (as a label value) on every child, so `kubectl get -A -l mcp.dev/tenant=acme`
/// finds them all.
pub const TENANT: &str = "mcp.dev/tenant";

/// Value of `app.kubernetes.io/name` and `part-of`.
pub const APP: &str = "mcp";
/// Value of `app.kubernetes.io/managed-by`; also the operator's field manager.
pub const MANAGER: &str = "mcp-operator";
/// Component of the dataplane's objects.
pub const DATAPLANE: &str = "dataplane";
/// Component of the tenant's namespace.
pub const NAMESPACE_COMPONENT: &str = "tenant";

/// Pods with this label and value (in any namespace) may deliver over LMTP: label your MTA's
/// pods (Postfix, ...) with it.
pub const MTA: (&str, &str) = ("mcp.dev/role", "mta");
/// Namespaces with this label and value may scrape the metrics port: label the namespace of
/// Prometheus with it.
pub const MONITORING: (&str, &str) = ("mcp.dev/monitoring", "true");

/// Component label value of the operator's own pods (set by the chart). The NetworkPolicy
/// admits the admin API port from pods with `app.kubernetes.io/name: mcp` and this component
/// in the operator's namespace.
pub const OPERATOR_COMPONENT: &str = "operator";

/// Maximum length of a label value.
const MAX_VALUE: usize = 63;

/// `text` as a label value: unchanged when it has at most 63 characters (a Tenant name's
/// characters are all allowed), otherwise cut and followed by `-` and a hash of the whole,
/// so that long tenant names stay distinct.
pub fn value(text: &str) -> String {
    if text.len() <= MAX_VALUE {
        return text.to_owned();
    }
    let hash = short_hash(text);
    let head = text[..MAX_VALUE - hash.len() - 1].trim_end_matches(['-', '.', '_']);
    format!("{head}-{hash}")
}

/// The labels that select the dataplane's pods. A subset of [`common`] that never changes
/// for a Tenant: workload selectors are immutable.
pub fn selector(tenant: &Tenant) -> Result<BTreeMap<String, String>, BuildError> {
    Ok(BTreeMap::from([
        (NAME.to_owned(), APP.to_owned()),
        (INSTANCE.to_owned(), value(tenant_name(tenant)?)),
        (COMPONENT.to_owned(), DATAPLANE.to_owned()),
    ]))
}

/// All labels of a child of `component`.
pub fn common(tenant: &Tenant, component: &str) -> Result<BTreeMap<String, String>, BuildError> {
    let name = value(tenant_name(tenant)?);
    Ok(BTreeMap::from([
        (NAME.to_owned(), APP.to_owned()),
        (INSTANCE.to_owned(), name.clone()),
        (COMPONENT.to_owned(), component.to_owned()),
        (PART_OF.to_owned(), APP.to_owned()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (TENANT.to_owned(), name),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_to_63_with_a_distinguishing_hash() {
        assert_eq!(value("acme"), "acme");
        let a = format!("{}.a", "x".repeat(70));
        let b = format!("{}.b", "x".repeat(70));
        for v in [value(&a), value(&b)] {
            assert!(v.len() <= 63, "{v}");
            assert!(v.ends_with(|c: char| c.is_ascii_alphanumeric()), "{v}");
        }
        assert_ne!(value(&a), value(&b));
    }
}
