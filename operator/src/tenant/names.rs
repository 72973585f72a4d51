//! Deterministic names of a Tenant's children.
//!
//! Names are DNS-1123 labels: lower-case alphanumerics and `-`, at most 63 characters. A
//! Tenant name is a DNS-1123 *subdomain* (up to 253 characters, dots allowed), so it does
//! not always fit. When it does not, or contains a dot, the name keeps as much of it as fits,
//! with dots turned into dashes, followed by the first 8 hex digits of the SHA-256 of the
//! whole tenant name. The same Tenant therefore always gets the same names, and two Tenants
//! whose names differ only after the cut (or by `.` versus `-`) get different ones.

use mcp_crds::Tenant;
use sha2::{Digest, Sha256};

use super::{BuildError, tenant_name};

/// Maximum length of a DNS-1123 label (namespaces, Services, most object names).
pub const MAX_LABEL: usize = 63;

/// Maximum length of the workload's name.
///
/// A StatefulSet's pods carry the label `controller-revision-hash: <name>-<10 characters>`,
/// and label values are limited to 63 characters; so are the names of the StatefulSet's
/// ControllerRevisions. 52 leaves room for the suffix.
pub const MAX_WORKLOAD: usize = 52;

/// Number of hex digits of the hash suffix.
const HASH_LEN: usize = 8;

/// The first [`HASH_LEN`] hex digits of SHA-256 of `text`.
pub(crate) fn short_hash(text: &str) -> String {
    let mut hex = hex::encode(Sha256::digest(text.as_bytes()));
    hex.truncate(HASH_LEN);
    hex
}

/// `<prefix>-<tenant>-<suffix>` (empty parts left out) as a DNS-1123 label of at most
/// `max` characters; see the module documentation for the hash suffix.
///
/// `prefix` and `suffix` must be DNS-1123 fragments the caller controls; `max` must leave
/// room for them and the hash.
pub fn dns_label(prefix: &str, tenant: &str, suffix: &str, max: usize) -> String {
    let join = |parts: &[&str]| {
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("-")
    };
    let plain = join(&[prefix, tenant, suffix]);
    let clean = tenant
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if clean && plain.len() <= max && !tenant.starts_with('-') && !tenant.ends_with('-') {
        return plain;
    }
    let hash = short_hash(tenant);
    let fixed = join(&[prefix, &hash, suffix]).len();
    let room = max.saturating_sub(fixed + 1);
    let sanitized: String = tenant
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    let head = sanitized.trim_matches('-');
    join(&[prefix, head, &hash, suffix])
}

/// The tenant's namespace: `spec.namespace`, or `mcp-<tenant>`.
pub fn namespace(tenant: &Tenant) -> Result<String, BuildError> {
    if let Some(ns) = tenant.spec.namespace.as_deref() {
        return Ok(ns.to_owned());
    }
    Ok(dns_label("mcp", tenant_name(tenant)?, "", MAX_LABEL))
}

/// The dataplane's StatefulSet or Deployment, Service, NetworkPolicy and
/// PodDisruptionBudget: `mcp-<tenant>-dataplane` (at most [`MAX_WORKLOAD`] characters, so
/// all of them share one name).
pub fn dataplane(tenant: &Tenant) -> Result<String, BuildError> {
    Ok(dns_label(
        "mcp",
        tenant_name(tenant)?,
        "dataplane",
        MAX_WORKLOAD,
    ))
}

/// The ConfigMap of the dataplane's configuration: `mcp-<tenant>-dataplane-config`.
pub fn config_map(tenant: &Tenant) -> Result<String, BuildError> {
    Ok(dns_label(
        "mcp",
        tenant_name(tenant)?,
        "dataplane-config",
        MAX_LABEL,
    ))
}

/// The `kubernetes.io/tls` Secret the operator issues (self-signed) when
/// `spec.dataplane.tls` is absent: `mcp-<tenant>-dataplane-tls`. The workload mounts it; the
/// controller creates it (not a pure builder: it holds a private key).
pub fn self_signed_tls(tenant: &Tenant) -> Result<String, BuildError> {
    Ok(dns_label(
        "mcp",
        tenant_name(tenant)?,
        "dataplane-tls",
        MAX_LABEL,
    ))
}

/// The `kubernetes.io/tls` Secret of the admin API: `mcp-<tenant>-dataplane-admin`, with a
/// self-signed certificate (`tls.crt`, `tls.key`) the operator pins and the bearer token
/// (`token`). The controller issues it; the workload mounts it.
pub fn admin_secret(tenant: &Tenant) -> Result<String, BuildError> {
    Ok(dns_label(
        "mcp",
        tenant_name(tenant)?,
        "dataplane-admin",
        MAX_LABEL,
    ))
}

/// Whether `name` is a DNS-1123 label of at most `max` characters.
pub fn is_dns_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_written() {
        assert_eq!(
            dns_label("mcp", "acme", "dataplane", 52),
            "mcp-acme-dataplane"
        );
        assert_eq!(dns_label("mcp", "acme", "", 63), "mcp-acme");
    }

    #[test]
    fn every_name_is_a_bounded_dns_label_and_stable() {
        let long = "a".repeat(253);
        let dotted_long = format!("{}.example.com", "x-".repeat(100) + "y");
        let tenants = [
            "a",
            "acme",
            "mail.acme.example",
            long.as_str(),
            dotted_long.as_str(),
            "a-b",
            "0tenant9",
        ];
        for tenant in tenants {
            for (suffix, max) in [
                ("", MAX_LABEL),
                ("dataplane", MAX_WORKLOAD),
                ("dataplane-config", MAX_LABEL),
                ("dataplane-tls", MAX_LABEL),
            ] {
                let name = dns_label("mcp", tenant, suffix, max);
                assert!(is_dns_label(&name, max), "{tenant:?}/{suffix}: {name:?}");
                assert_eq!(name, dns_label("mcp", tenant, suffix, max), "not stable");
                assert!(name.starts_with("mcp-"), "{name}");
                assert!(name.ends_with(suffix), "{name}");
            }
        }
    }

    #[test]
    fn truncated_or_rewritten_names_carry_a_hash_that_tells_tenants_apart() {
        let a = format!("{}a", "t".repeat(100));
        let b = format!("{}b", "t".repeat(100));
        let (na, nb) = (
            dns_label("mcp", &a, "dataplane", MAX_WORKLOAD),
            dns_label("mcp", &b, "dataplane", MAX_WORKLOAD),
        );
        assert_ne!(na, nb);
        assert_eq!(na.len(), MAX_WORKLOAD);
        assert!(na.contains(&short_hash(&a)), "{na}");

        let (dotted, dashed) = (
            dns_label("mcp", "a.b", "dataplane", MAX_WORKLOAD),
            dns_label("mcp", "a-b", "dataplane", MAX_WORKLOAD),
        );
        assert_eq!(dashed, "mcp-a-b-dataplane");
        assert_eq!(dotted, format!("mcp-a-b-{}-dataplane", short_hash("a.b")));
    }
}
