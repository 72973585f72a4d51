//! The seam between the facade's resource endpoints and where the resources live.
//!
//! The resource endpoints ([`crate::resources`]) parse and check a request with the CRD
//! types of `mcp-crds` (the one source of truth), authorize it ([`crate::rbac`]) and then
//! call a [`Backend`]:
//!
//! - Kubernetes mode (the operator): reads from the API server; writes are server-side
//!   applies with field manager [`FIELD_MANAGER`] (force = false); [`Versioned::version`] is
//!   the object's `metadata.resourceVersion`, so `ETag`/`If-Match` map to Kubernetes'
//!   optimistic concurrency (a stale `If-Match` is [`BackendError::PreconditionFailed`],
//!   412); deletes carry the precondition `{resourceVersion}`.
//! - Standalone mode (`mcp standalone`): the local resource store (YAML files), applied
//!   through the same code as the YAML directory; the version is a persisted counter that
//!   grows on every write.
//!
//! Objects cross the seam as JSON (`apiVersion`, `kind`, `metadata`, `spec`, `status`), the
//! custom resource as `kubectl get -o json` shows it, so both backends share the endpoints'
//! serialisation. Versions are strings (Kubernetes' `resourceVersion` is opaque).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use mcp_crds::dataplane::{QuarantineEntry, QuarantineList, ReleaseOutcome};

use crate::problem::FieldError;

/// Field manager of the facade's server-side applies (DESIGN.md §2).
pub const FIELD_MANAGER: &str = "mcp-rest";

/// `apiVersion` of every MCP kind.
pub const API_VERSION: &str = "mcp.dev/v1alpha1";

/// A kind served by the resource endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `Tenant` (cluster-scoped: `tenant` arguments name the Tenant itself).
    Tenant,
    /// `Mailbox`, in its tenant's namespace.
    Mailbox,
    /// Core `v1` `Secret` in the tenant's namespace: only written, as the password of a
    /// Mailbox created with `password` (never read back over the API).
    Secret,
    /// `Pipeline`, in its tenant's namespace (DLP policies are Pipelines too).
    Pipeline,
    /// `PluginDeployment`, in its tenant's namespace.
    PluginDeployment,
    /// `MigrationJob`, in its tenant's namespace.
    MigrationJob,
}

impl Kind {
    /// The `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::Mailbox => "Mailbox",
            Kind::Secret => "Secret",
            Kind::Pipeline => "Pipeline",
            Kind::PluginDeployment => "PluginDeployment",
            Kind::MigrationJob => "MigrationJob",
        }
    }

    /// The `apiVersion` field.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Secret => "v1",
            _ => API_VERSION,
        }
    }
}

/// An object and its version (the `ETag` of the answer, without quotes).
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The whole object as JSON.
    pub object: serde_json::Value,
    /// Opaque version: `metadata.resourceVersion`.
    pub version: String,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The objects, in (namespace, name) order.
    pub items: Vec<Versioned>,
    /// Token for the next page (`continue` in Kubernetes); `None` on the last page.
    pub next: Option<String>,
}

/// One requirement of a label selector (the equality- and set-based forms of
/// `kubectl -l`, without `in`/`notin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true without the label).
    NotEquals(String, String),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

/// A `labelSelector` query parameter: requirements joined by `,`, all must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e,!f`.
    ///
    /// # Errors
    /// A message naming the bad requirement.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_owned())
            } else {
                Requirement::Exists(part.to_owned())
            };
            let key = match &req {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                return Err(format!("{part:?} is not a label requirement"));
            }
            out.push(req);
        }
        Ok(Self(out))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// What a list asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only objects of this tenant (for Tenants: only this Tenant); `None`: all.
    pub tenant: Option<String>,
    /// At most this many objects (at least 1).
    pub limit: u32,
    /// The `next` token of the previous page.
    pub from: Option<String>,
    /// Only objects whose labels match.
    pub selector: LabelSelector,
}

/// An `If-Match` precondition (RFC 9110 §13.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the object must exist.
    Any,
    /// The object's version must be one of these.
    Versions(Vec<String>),
}

impl IfMatch {
    /// Whether an object at `version` (`None`: absent) satisfies the precondition.
    pub fn holds(&self, version: Option<&str>) -> bool {
        match (self, version) {
            (_, None) => false,
            (IfMatch::Any, Some(_)) => true,
            (IfMatch::Versions(vs), Some(v)) => vs.iter().any(|x| x == v),
        }
    }
}

/// How a write treats an existing object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// `POST`: the object must not exist ([`BackendError::Conflict`] otherwise).
    Create,
    /// `PUT`: create or replace (server-side apply), under the precondition if any.
    Apply(Option<IfMatch>),
}

/// One write: an object and the Secrets it references (a Mailbox's password Secret),
/// validated by the endpoint, applied together by the backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    /// The object's kind.
    pub kind: Kind,
    /// The tenant it belongs to (a Tenant: its own name).
    pub tenant: String,
    /// The object: `apiVersion`, `kind`, `metadata` (`name`, `labels`, `annotations`), `spec`.
    /// The backend sets `metadata.namespace` and the server-side metadata.
    pub object: serde_json::Value,
    /// Core `v1` Secrets to write first, in the object's namespace (`metadata.name` and
    /// `stringData`).
    pub secrets: Vec<serde_json::Value>,
    /// Create or apply.
    pub mode: WriteMode,
    /// Validate only: nothing is written.
    pub dry_run: bool,
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The object did not exist.
    Created,
    /// The object existed and changed.
    Updated,
    /// The object existed and was already like this: nothing was written.
    Unchanged,
}

/// A write's outcome and the object afterwards (for a dry run: as it would be).
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// Created, updated or unchanged.
    pub outcome: Outcome,
    /// The object.
    pub object: Versioned,
}

/// A built-in plugin as `GET /tenants/{t}/plugins` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinPluginInfo {
    /// Name as written in a Pipeline step (`plugin.builtin`).
    pub name: String,
    /// Stages it may run in.
    pub stages: Vec<String>,
    /// Mutations it may make (with the most permissive config).
    pub capabilities: Vec<String>,
    /// What it does.
    pub description: String,
}

/// Why a backend call failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No such object (404).
    #[error("{0}")]
    NotFound(String),
    /// The object exists and a create was asked, the name or an address belongs to
    /// another object, or the object may not be changed here (a file of `--resources`)
    /// (409).
    #[error("{0}")]
    Conflict(String),
    /// A request parameter the backend cannot use: a `continue` token of another list, a
    /// malformed cursor (400).
    #[error("{0}")]
    BadRequest(String),
    /// `If-Match` does not match the current version (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The backend refused the object (validation, admission, a CEL rule) (422), naming
    /// the fields.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The API server or the store is unreachable (503).
    #[error("{0}")]
    Unavailable(String),
}

impl BackendError {
    /// A 422 about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// Where resources live. Methods return boxed futures so that the facade can hold a
/// `dyn Backend` chosen at start-up.
pub trait Backend: Send + Sync + 'static {
    /// A page of `kind` objects ([`ListQuery`]), in (namespace, name) order.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] for an unknown tenant; [`BackendError::BadRequest`] for
    /// a bad `from` token; [`BackendError::Unavailable`].
    fn list<'a>(
        &'a self,
        kind: Kind,
        query: ListQuery,
    ) -> BoxFuture<'a, Result<Page, BackendError>>;

    /// The object `name` of `kind` in `tenant`.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] (no such tenant or object), [`BackendError::Unavailable`].
    fn get<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>>;

    /// Creates or replaces an object ([`Write`]).
    ///
    /// # Errors
    /// [`BackendError::Conflict`] (exists on create, read-only, an address in use),
    /// [`BackendError::PreconditionFailed`], [`BackendError::Invalid`],
    /// [`BackendError::NotFound`] (no such tenant), [`BackendError::Unavailable`].
    fn write<'a>(&'a self, write: Write) -> BoxFuture<'a, Result<Written, BackendError>>;

    /// Several writes at once (bulk import): one result per write, in order; a failed
    /// write does not stop the others. The default does them one by one.
    fn write_batch<'a>(
        &'a self,
        writes: Vec<Write>,
    ) -> BoxFuture<'a, Vec<Result<Written, BackendError>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                out.push(self.write(w).await);
            }
            out
        })
    }

    /// Deletes the object `name` of `kind` in `tenant` (a Mailbox: also its password
    /// Secret); with `if_match`, only under that precondition.
    ///
    /// # Errors
    /// As [`Backend::write`].
    fn delete<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
        if_match: Option<IfMatch>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The built-in plugins, in name order.
    fn builtin_plugins(&self) -> Vec<BuiltinPluginInfo>;

    /// A page of `tenant`'s quarantine, ascending by id: of `mailbox` only when given, at
    /// most `limit` entries, after the id `after`.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] (tenant), [`BackendError::Unavailable`].
    fn quarantine_list<'a>(
        &'a self,
        tenant: &'a str,
        mailbox: Option<&'a str>,
        limit: u32,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QuarantineList, BackendError>>;

    /// One quarantined message of `tenant` (metadata only).
    ///
    /// # Errors
    /// [`BackendError::NotFound`], [`BackendError::Unavailable`].
    fn quarantine_get<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<QuarantineEntry, BackendError>>;

    /// Delivers a quarantined message of `tenant` to the folder it was headed for.
    ///
    /// # Errors
    /// [`BackendError::NotFound`], [`BackendError::Conflict`] (account gone, over quota),
    /// [`BackendError::Unavailable`].
    fn quarantine_release<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ReleaseOutcome, BackendError>>;

    /// Drops a quarantined message of `tenant`.
    ///
    /// # Errors
    /// [`BackendError::NotFound`], [`BackendError::Unavailable`].
    fn quarantine_delete<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Whether the backend answers, for readiness (`GET /api/v1/health/ready`).
    fn ready(&self) -> BoxFuture<'_, Result<(), BackendError>>;
}

/// The built-in plugins (plugins/builtin), as both backends list them: they run in every
/// stage; `capabilities` are the mutations each may make with its most permissive config
/// (the union of what its `capabilities()` returns). The name is the serde name of
/// [`mcp_crds::pipeline::BuiltinPlugin`], which is what a Pipeline step writes
/// (`mcp_plugins_builtin::name` gives the same; the operator's tests check it).
pub fn builtin_plugins() -> Vec<BuiltinPluginInfo> {
    use mcp_crds::pipeline::BuiltinPlugin as B;
    use mcp_crds::plugin::Capability as C;
    let all: [(B, &str, &[C]); 6] = [
        (
            B::AttachmentPolicy,
            "acts on attachment types, extensions and sizes anywhere in the MIME tree",
            &[C::ChangeHeader],
        ),
        (
            B::Clamav,
            "scans with clamd (INSTREAM); quarantines, rejects or tags what it finds",
            &[C::ChangeHeader, C::SetMetadata],
        ),
        (
            B::Dlp,
            "finds card numbers, IBANs, SSNs, cloud keys and custom patterns; redacts, quarantines, rejects, tags or alerts",
            &[C::ReplaceBody, C::ChangeHeader, C::SetMetadata],
        ),
        (
            B::HeaderTagger,
            "adds, sets or removes header fields",
            &[C::AddHeader, C::ChangeHeader, C::RemoveHeader],
        ),
        (
            B::Rspamd,
            "asks rspamd (/checkv2); maps its action to a verdict and its header changes to mutations",
            &[C::AddHeader, C::ChangeHeader, C::RemoveHeader],
        ),
        (
            B::SizeLimit,
            "refuses, defers or quarantines large messages",
            &[],
        ),
    ];
    all.iter()
        .map(|(p, what, caps)| BuiltinPluginInfo {
            name: serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            stages: vec!["deliver".into(), "append".into(), "post-store".into()],
            capabilities: caps
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            description: (*what).to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_and_match() {
        let labels: BTreeMap<String, String> = [("team".to_owned(), "finance".to_owned())]
            .into_iter()
            .collect();
        let cases = [
            ("team=finance", true),
            ("team==finance", true),
            ("team!=finance", false),
            ("team", true),
            ("!team", false),
            ("other!=x", true),
            ("team=finance,!other", true),
            ("", true),
        ];
        for (text, want) in cases {
            let s = LabelSelector::parse(text).expect(text);
            assert_eq!(s.matches(&labels), want, "{text}");
        }
        for bad in ["=x", "a b=c", "!", "a=b,=c"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_match_holds() {
        assert!(IfMatch::Any.holds(Some("3")));
        assert!(!IfMatch::Any.holds(None));
        let v = IfMatch::Versions(vec!["3".into(), "4".into()]);
        assert!(v.holds(Some("4")));
        assert!(!v.holds(Some("5")));
    }
}
