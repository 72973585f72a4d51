//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 §4.1), with the STORAGE and MESSAGE
//! resources (§5.1, §5.2). The limits come from the custom resources (docs/quota.md).
//!
//! Quota roots, named as Dovecot names its user quota:
//! - `User quota`: the account (every folder), from the Mailbox's `spec.quota`;
//! - `Tenant quota`: the whole tenant's storage, from the Tenant's `spec.quota.storage`.
//!
//! A root is listed only with at least one limit (RFC 9208's `quota-list` needs a
//! resource), and only the resources that have a limit are reported. STORAGE is in units of
//! 1024 octets, rounded up (usage and limit alike, as Dovecot does).

use imap_codec::imap_types::mailbox::Mailbox;

use super::mailbox_arg;
use crate::imap::session::{Completion, OpResult, Session};
use crate::imap::wire::out;
use crate::store::QuotaReport;

/// The quota root of the account's own limits.
pub(crate) const USER_ROOT: &str = "User quota";
/// The quota root of the tenant-wide storage limit.
pub(crate) const TENANT_ROOT: &str = "Tenant quota";

/// Octets as RFC 9208 STORAGE units (1024 octets), rounded up.
fn kib(octets: u64) -> u64 {
    octets.div_ceil(1024)
}

/// The resource list of `root` (`STORAGE u l MESSAGE u l`); `None` when the root has no
/// limit or does not exist.
fn resources(report: &QuotaReport, root: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    if root == USER_ROOT.as_bytes() {
        if let Some(limit) = report.storage_limit {
            parts.push(format!("STORAGE {} {}", kib(report.storage), kib(limit)));
        }
        if let Some(limit) = report.messages_limit {
            parts.push(format!("MESSAGE {} {limit}", report.messages));
        }
    } else if root == TENANT_ROOT.as_bytes()
        && let Some(t) = &report.tenant
    {
        parts.push(format!("STORAGE {} {}", kib(t.used), kib(t.limit)));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `QUOTA "root" (...)`.
fn quota_line(root: &str, resources: &str) -> Vec<u8> {
    let mut line = b"QUOTA ".to_vec();
    out::string(&mut line, root.as_bytes());
    line.extend_from_slice(format!(" ({resources})").as_bytes());
    line
}

/// The session's quota report. Errors: the store failed.
async fn report(s: &Session) -> Result<Result<QuotaReport, Completion>, crate::store::StoreError> {
    let Some(account) = s.account.as_ref() else {
        return Ok(Err(Completion::bad("Not authenticated")));
    };
    s.ctx.store.quota(account.id).await.map(Ok)
}

/// GETQUOTA root (RFC 9208 §4.1.1): `NO [NONEXISTENT]` for a root that does not exist or
/// has no limit.
pub(super) async fn get_quota(s: &mut Session, root: &[u8]) -> OpResult {
    let report = match report(s).await? {
        Ok(r) => r,
        Err(c) => return Ok(c),
    };
    let Some(list) = resources(&report, root) else {
        return Ok(Completion::no_code(
            "NONEXISTENT",
            "Quota root doesn't exist.",
        ));
    };
    let root = String::from_utf8_lossy(root).into_owned();
    s.untagged(quota_line(&root, &list));
    Ok(Completion::ok("Getquota completed."))
}

/// GETQUOTAROOT mailbox (RFC 9208 §4.1.2): the roots that apply to it, each followed by its
/// QUOTA response. Every folder of the account, existing or not, has the same roots (as in
/// Dovecot: the name need not exist).
pub(super) async fn get_quota_root(s: &mut Session, mailbox: &Mailbox<'_>) -> OpResult {
    let name = match mailbox_arg(s, mailbox) {
        Ok(n) => n,
        Err(c) => return Ok(c),
    };
    let report = match report(s).await? {
        Ok(r) => r,
        Err(c) => return Ok(c),
    };
    let roots: Vec<(&str, String)> = [USER_ROOT, TENANT_ROOT]
        .into_iter()
        .filter_map(|root| resources(&report, root.as_bytes()).map(|r| (root, r)))
        .collect();
    let mut line = b"QUOTAROOT ".to_vec();
    out::mailbox(&mut line, &name, s.utf8);
    for (root, _) in &roots {
        line.push(b' ');
        out::string(&mut line, root.as_bytes());
    }
    s.untagged(line);
    for (root, list) in &roots {
        s.untagged(quota_line(root, list));
    }
    Ok(Completion::ok("Getquotaroot completed."))
}

/// SETQUOTA (RFC 9208 §4.1.3): refused, the limits are the custom resources' (QUOTASET is
/// not advertised).
pub(super) fn set_quota() -> Completion {
    Completion::no_code(
        "NOPERM",
        "Quotas are set by the Mailbox and Tenant resources (spec.quota), not over IMAP.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantStorage;

    #[test]
    fn resources_per_root_in_kib_rounded_up() {
        let report = QuotaReport {
            messages: 2,
            storage: 1432,
            messages_limit: Some(3),
            storage_limit: Some(2048),
            tenant: Some(TenantStorage {
                used: 1025,
                limit: 1 << 20,
            }),
        };
        let cases: &[(&str, Option<&str>)] = &[
            (USER_ROOT, Some("STORAGE 2 2 MESSAGE 2 3")),
            (TENANT_ROOT, Some("STORAGE 2 1024")),
            ("", None),
            ("user quota", None),
        ];
        for (root, want) in cases {
            assert_eq!(
                resources(&report, root.as_bytes()).as_deref(),
                *want,
                "{root}"
            );
        }
        let unlimited = QuotaReport::default();
        assert_eq!(resources(&unlimited, USER_ROOT.as_bytes()), None);
        assert_eq!(resources(&unlimited, TENANT_ROOT.as_bytes()), None);
        let only_messages = QuotaReport {
            messages_limit: Some(10),
            ..Default::default()
        };
        assert_eq!(
            resources(&only_messages, USER_ROOT.as_bytes()).as_deref(),
            Some("MESSAGE 0 10")
        );
    }
}
