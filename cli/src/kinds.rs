//! The collections of the facade and the resource kinds of `apply -f`: where each lives
//! under `/api/v1` (docs/rest-api.md, "Resources") and how `mcp-cli` names it.

use serde_json::Value;

/// `apiVersion` of the MCP custom resources.
pub const API_VERSION: &str = "mcp.dev/v1alpha1";

/// A collection of the facade, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/tenants`.
    Tenants,
    /// `/tenants/{t}/mailboxes`.
    Mailboxes,
    /// `/tenants/{t}/pipelines`.
    Pipelines,
    /// `/tenants/{t}/plugins`: built-in plugins and PluginDeployments.
    Plugins,
    /// `/tenants/{t}/policies`: DLP policies.
    Policies,
    /// `/apikeys`.
    ApiKeys,
    /// `/tenants/{t}/quarantine`.
    Quarantine,
    /// `/tenants/{t}/migrationjobs`.
    MigrationJobs,
}

impl Resource {
    /// Every collection.
    pub const ALL: [Resource; 8] = [
        Resource::Tenants,
        Resource::Mailboxes,
        Resource::Pipelines,
        Resource::Plugins,
        Resource::Policies,
        Resource::ApiKeys,
        Resource::Quarantine,
        Resource::MigrationJobs,
    ];

    /// The path segment of the collection (`mailboxes`).
    pub fn segment(self) -> &'static str {
        match self {
            Resource::Tenants => "tenants",
            Resource::Mailboxes => "mailboxes",
            Resource::Pipelines => "pipelines",
            Resource::Plugins => "plugins",
            Resource::Policies => "policies",
            Resource::ApiKeys => "apikeys",
            Resource::Quarantine => "quarantine",
            Resource::MigrationJobs => "migrationjobs",
        }
    }

    /// Whether the collection lives under a tenant (`/tenants/{t}/...`).
    pub fn tenant_scoped(self) -> bool {
        !matches!(self, Resource::Tenants | Resource::ApiKeys)
    }

    /// The kind its objects have (`Mailbox`), for the custom-resource collections.
    pub fn kind(self) -> Option<Kind> {
        match self {
            Resource::Tenants => Some(Kind::Tenant),
            Resource::Mailboxes => Some(Kind::Mailbox),
            Resource::Pipelines => Some(Kind::Pipeline),
            Resource::Plugins => Some(Kind::PluginDeployment),
            Resource::MigrationJobs => Some(Kind::MigrationJob),
            Resource::Policies | Resource::ApiKeys | Resource::Quarantine => None,
        }
    }

    /// The type part of `-o name` and of the outcome lines (`mailbox.mcp.dev`, `policy`).
    pub fn type_name(self) -> &'static str {
        match self.kind() {
            Some(k) => k.type_name(),
            None => match self {
                Resource::Policies => "policy",
                Resource::ApiKeys => "apikey",
                _ => "quarantine",
            },
        }
    }

    /// The path segments of the collection: `["tenants", t, "mailboxes"]`.
    pub fn collection(self, tenant: Option<&str>) -> Vec<String> {
        match (self, tenant) {
            (Resource::Tenants | Resource::ApiKeys, _) => vec![self.segment().to_owned()],
            (_, Some(t)) => vec!["tenants".into(), t.to_owned(), self.segment().to_owned()],
            // Callers check `tenant_scoped` first; an empty tenant makes a 404, not a panic.
            (_, None) => vec!["tenants".into(), String::new(), self.segment().to_owned()],
        }
    }

    /// The path segments of one object of the collection.
    pub fn object(self, tenant: Option<&str>, name: &str) -> Vec<String> {
        match self {
            // A Tenant is its own collection entry: /tenants/{name}.
            Resource::Tenants => vec!["tenants".into(), name.to_owned()],
            _ => {
                let mut p = self.collection(tenant);
                p.push(name.to_owned());
                p
            }
        }
    }
}

/// A resource kind `apply -f` and `delete -f` understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `Tenant` (cluster-scoped).
    Tenant,
    /// `PluginDeployment`.
    PluginDeployment,
    /// `Pipeline`.
    Pipeline,
    /// `Mailbox`.
    Mailbox,
    /// `MigrationJob` (created once; its spec is not replaced).
    MigrationJob,
}

impl Kind {
    /// The kind of a document: `apiVersion` must be in the `mcp.dev` group (or absent).
    pub fn of(doc: &Value) -> Option<Kind> {
        let api = doc.get("apiVersion").and_then(Value::as_str);
        if api.is_some_and(|a| !a.starts_with("mcp.dev/")) {
            return None;
        }
        Some(match doc.get("kind").and_then(Value::as_str)? {
            "Tenant" => Kind::Tenant,
            "PluginDeployment" => Kind::PluginDeployment,
            "Pipeline" => Kind::Pipeline,
            "Mailbox" => Kind::Mailbox,
            "MigrationJob" => Kind::MigrationJob,
            _ => return None,
        })
    }

    /// The collection of the kind.
    pub fn resource(self) -> Resource {
        match self {
            Kind::Tenant => Resource::Tenants,
            Kind::PluginDeployment => Resource::Plugins,
            Kind::Pipeline => Resource::Pipelines,
            Kind::Mailbox => Resource::Mailboxes,
            Kind::MigrationJob => Resource::MigrationJobs,
        }
    }

    /// `kubectl`'s name of the type: `<lower-case kind>.mcp.dev`.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant.mcp.dev",
            Kind::PluginDeployment => "plugindeployment.mcp.dev",
            Kind::Pipeline => "pipeline.mcp.dev",
            Kind::Mailbox => "mailbox.mcp.dev",
            Kind::MigrationJob => "migrationjob.mcp.dev",
        }
    }

    /// Whether the facade replaces objects of the kind with `PUT` (server-side apply); a
    /// MigrationJob is only created (`POST`).
    pub fn applies_with_put(self) -> bool {
        self != Kind::MigrationJob
    }

    /// The order of `apply -f`: Tenants first (the others live in them), then what
    /// Pipelines call, Pipelines, what they select, and jobs last. `delete -f` goes the other
    /// way. (The derived `Ord` is this order.)
    pub fn apply_rank(self) -> u8 {
        self as u8
    }
}

/// The tenant's namespace as the facade sets it: `spec.namespace`, default `mcp-<name>`
/// (docs/rest-api.md, "Resources").
pub fn tenant_namespace(tenant: &Value) -> Option<String> {
    let name = tenant.pointer("/metadata/name").and_then(Value::as_str)?;
    Some(
        tenant
            .pointer("/spec/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("mcp-{name}"), str::to_owned),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_map_to_endpoints() {
        type Want = Option<(Kind, &'static [&'static str])>;
        let cases: &[(Value, Want)] = &[
            (
                json!({"apiVersion": API_VERSION, "kind": "Tenant"}),
                Some((Kind::Tenant, &["tenants", "n"])),
            ),
            (
                json!({"apiVersion": API_VERSION, "kind": "Mailbox"}),
                Some((Kind::Mailbox, &["tenants", "t", "mailboxes", "n"])),
            ),
            (
                json!({"apiVersion": API_VERSION, "kind": "Pipeline"}),
                Some((Kind::Pipeline, &["tenants", "t", "pipelines", "n"])),
            ),
            (
                json!({"apiVersion": API_VERSION, "kind": "PluginDeployment"}),
                Some((Kind::PluginDeployment, &["tenants", "t", "plugins", "n"])),
            ),
            (
                json!({"apiVersion": API_VERSION, "kind": "MigrationJob"}),
                Some((Kind::MigrationJob, &["tenants", "t", "migrationjobs", "n"])),
            ),
            (
                json!({"kind": "Mailbox"}),
                Some((Kind::Mailbox, &["tenants", "t", "mailboxes", "n"])),
            ),
            (json!({"apiVersion": "v1", "kind": "Secret"}), None),
            (json!({"apiVersion": "apps/v1", "kind": "Mailbox"}), None),
            (json!({"apiVersion": API_VERSION, "kind": "Bogus"}), None),
            (json!({"apiVersion": API_VERSION}), None),
        ];
        for (doc, want) in cases {
            let got = Kind::of(doc).map(|k| (k, k.resource().object(Some("t"), "n")));
            let want = want.map(|(k, p)| (k, p.iter().map(|s| s.to_string()).collect()));
            assert_eq!(got, want, "{doc}");
        }
    }

    #[test]
    fn collections_and_names() {
        let cases: &[(Resource, &[&str], &str)] = &[
            (Resource::Tenants, &["tenants"], "tenant.mcp.dev"),
            (Resource::ApiKeys, &["apikeys"], "apikey"),
            (
                Resource::Mailboxes,
                &["tenants", "t", "mailboxes"],
                "mailbox.mcp.dev",
            ),
            (Resource::Policies, &["tenants", "t", "policies"], "policy"),
            (
                Resource::Quarantine,
                &["tenants", "t", "quarantine"],
                "quarantine",
            ),
            (
                Resource::Plugins,
                &["tenants", "t", "plugins"],
                "plugindeployment.mcp.dev",
            ),
        ];
        for (r, path, name) in cases {
            assert_eq!(r.collection(Some("t")), path.to_vec(), "{r:?}");
            assert_eq!(r.type_name(), *name, "{r:?}");
        }
        assert_eq!(Resource::ApiKeys.object(None, "7"), vec!["apikeys", "7"]);
    }

    #[test]
    fn apply_order_puts_tenants_first_and_jobs_last() {
        let mut kinds = vec![
            Kind::MigrationJob,
            Kind::Mailbox,
            Kind::Tenant,
            Kind::Pipeline,
            Kind::PluginDeployment,
        ];
        kinds.sort_by_key(|k| k.apply_rank());
        assert_eq!(
            kinds,
            [
                Kind::Tenant,
                Kind::PluginDeployment,
                Kind::Pipeline,
                Kind::Mailbox,
                Kind::MigrationJob
            ]
        );
    }

    #[test]
    fn tenant_namespaces() {
        let cases = [
            (
                json!({"metadata": {"name": "acme"}, "spec": {}}),
                Some("mcp-acme"),
            ),
            (
                json!({"metadata": {"name": "acme"}, "spec": {"namespace": "mail"}}),
                Some("mail"),
            ),
            (json!({"spec": {}}), None),
        ];
        for (t, want) in cases {
            assert_eq!(tenant_namespace(&t).as_deref(), want, "{t}");
        }
    }
}
