//! [`NameGuard`]: the [`Backend`] decorator that answers 404 for a tenant or object name no
//! object can have, before the real backend sees it.
//!
//! A path segment is any text (`/tenants/%04x/mailboxes`); a Tenant's name is a lower-case
//! DNS label and every other object's a DNS subdomain, so a request naming anything else
//! asks for something that cannot exist: 404, as an unknown name. Without the guard, the
//! Kubernetes backend sent such names to the API server and turned its refusal into 503
//! (found by schemathesis in Kubernetes mode); with it, both backends answer alike and
//! neither has to defend itself. [`crate::Api::backend`] wraps every backend in it.

use std::sync::Arc;

use futures::future::BoxFuture;
use mcp_crds::dataplane::{QuarantineEntry, QuarantineList, ReleaseOutcome};

use crate::apikeys::is_tenant_name;
use crate::backend::{
    Backend, BackendError, BuiltinPluginInfo, IfMatch, Kind, ListQuery, Page, Versioned, Write,
    Written,
};
use crate::resources::is_dns_subdomain;

/// Longest object name, characters (a DNS subdomain).
const MAX_NAME: usize = 253;

/// Wraps a backend; see the module doc.
pub struct NameGuard(pub Arc<dyn Backend>);

impl std::fmt::Debug for NameGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameGuard")
    }
}

/// `Ok` when `tenant` can name a Tenant, else the 404 of an unknown tenant.
fn tenant_ok(tenant: &str) -> Result<(), BackendError> {
    if is_tenant_name(tenant) {
        Ok(())
    } else {
        Err(BackendError::NotFound(format!("no tenant {tenant:?}")))
    }
}

/// `Ok` when `name` can name an object of `kind` in `tenant`, else a 404.
fn object_ok(kind: Kind, tenant: &str, name: &str) -> Result<(), BackendError> {
    tenant_ok(tenant)?;
    let ok = match kind {
        Kind::Tenant => is_tenant_name(name),
        _ => is_dns_subdomain(name, MAX_NAME),
    };
    if ok {
        Ok(())
    } else {
        Err(BackendError::NotFound(format!(
            "no {} {name:?} in tenant {tenant:?}",
            kind.name()
        )))
    }
}

impl Backend for NameGuard {
    fn list<'a>(
        &'a self,
        kind: Kind,
        query: ListQuery,
    ) -> BoxFuture<'a, Result<Page, BackendError>> {
        if let Some(Err(e)) = query.tenant.as_deref().map(tenant_ok) {
            return Box::pin(async move { Err(e) });
        }
        self.0.list(kind, query)
    }

    fn get<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>> {
        match object_ok(kind, tenant, name) {
            Ok(()) => self.0.get(kind, tenant, name),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn write<'a>(&'a self, write: Write) -> BoxFuture<'a, Result<Written, BackendError>> {
        match tenant_ok(&write.tenant) {
            Ok(()) => self.0.write(write),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn write_batch<'a>(
        &'a self,
        writes: Vec<Write>,
    ) -> BoxFuture<'a, Vec<Result<Written, BackendError>>> {
        if let Some(w) = writes.first().filter(|w| tenant_ok(&w.tenant).is_err()) {
            let message = format!("no tenant {:?}", w.tenant);
            let n = writes.len();
            return Box::pin(async move {
                (0..n)
                    .map(|_| Err(BackendError::NotFound(message.clone())))
                    .collect()
            });
        }
        self.0.write_batch(writes)
    }

    fn delete<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
        if_match: Option<IfMatch>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        match object_ok(kind, tenant, name) {
            Ok(()) => self.0.delete(kind, tenant, name, if_match),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn builtin_plugins(&self) -> Vec<BuiltinPluginInfo> {
        self.0.builtin_plugins()
    }

    fn quarantine_list<'a>(
        &'a self,
        tenant: &'a str,
        mailbox: Option<&'a str>,
        limit: u32,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QuarantineList, BackendError>> {
        match tenant_ok(tenant) {
            Ok(()) => self.0.quarantine_list(tenant, mailbox, limit, after),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn quarantine_get<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<QuarantineEntry, BackendError>> {
        match tenant_ok(tenant) {
            Ok(()) => self.0.quarantine_get(tenant, id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn quarantine_release<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ReleaseOutcome, BackendError>> {
        match tenant_ok(tenant) {
            Ok(()) => self.0.quarantine_release(tenant, id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn quarantine_delete<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        match tenant_ok(tenant) {
            Ok(()) => self.0.quarantine_delete(tenant, id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.0.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_no_object_can_have_are_404() {
        // (kind, tenant, name, allowed)
        let long = "a".repeat(254);
        let label64 = "a".repeat(64);
        let cases: Vec<(Kind, &str, &str, bool)> = vec![
            (Kind::Mailbox, "acme", "alice", true),
            (Kind::Mailbox, "acme", "a.b-c", true),
            (Kind::Tenant, "acme", "acme", true),
            (Kind::Mailbox, "Acme", "alice", false),
            (Kind::Mailbox, "a_b", "alice", false),
            (Kind::Mailbox, "-a", "alice", false),
            (Kind::Mailbox, "a.b", "alice", false),
            (Kind::Mailbox, &label64, "alice", false),
            (Kind::Mailbox, "", "alice", false),
            (Kind::Mailbox, "8I\u{4}\u{f3b7}", "alice", false),
            (Kind::Mailbox, "acme", "Alice", false),
            (Kind::Mailbox, "acme", "a..b", false),
            (Kind::Mailbox, "acme", "", false),
            (Kind::Mailbox, "acme", &long, false),
            (Kind::Mailbox, "acme", "a\u{0}", false),
            (Kind::Mailbox, "acme", "api_keys", false),
            (Kind::Tenant, "a.b", "a.b", false),
        ];
        for (kind, tenant, name, want) in cases {
            let got = object_ok(kind, tenant, name);
            assert_eq!(got.is_ok(), want, "{kind:?} {tenant:?} {name:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, BackendError::NotFound(_)), "{e:?}");
            }
        }
    }
}
