//! The Kubernetes [`Backend`] of the REST facade (docs/rest-api.md, "Kubernetes mode").
//!
//! - Reads come from the API server: `get`, and `list` with `limit`, `continue` and
//!   `labelSelector` passed through as they are (the continue token is the API server's).
//!   Answers are the objects as `kubectl get -o json` shows them (without `managedFields`);
//!   the ETag is `metadata.resourceVersion`.
//! - Writes are server-side applies with field manager [`FIELD_MANAGER`], `force = false` and
//!   strict field validation: the applied configuration is `apiVersion`, `kind`,
//!   `metadata.{name, namespace, labels, annotations}` and `spec`, so a PUT replaces what
//!   `mcp-rest` set before, and a field another manager owns with another value is a 409
//!   naming it and the manager. A create (`POST`) reads first and is a 409 if the object
//!   exists. Under `If-Match`, the version is checked on the object read and then sent as
//!   `metadata.resourceVersion` of the applied configuration, so the API server refuses the
//!   apply (412) if the object changed in between.
//! - Deletes read the object (404), check `If-Match`, and send the precondition
//!   `{resourceVersion}`. A Tenant that still has Mailboxes, Pipelines, PluginDeployments or
//!   MigrationJobs is not deleted (409), as in standalone mode: deleting it would delete its
//!   namespace and all of them.
//! - Tenant-scoped kinds live in the Tenant's namespace ([`names::namespace`]); an unknown
//!   tenant is a 404; a write waits up to [`NAMESPACE_WAIT`] for a new Tenant's namespace
//!   (the Tenant controller creates it). A Mailbox's addresses must be in its Tenant's `spec.domains` (422
//!   naming the field, as in standalone mode; the controller would only report it).
//! - A Mailbox's password becomes the Secret `<mailbox>-password` (applied first, by
//!   [`FIELD_MANAGER`], labelled `app.kubernetes.io/managed-by: mcp-rest`), owned by the
//!   Mailbox (an owner reference added once the Mailbox exists), so the garbage collector
//!   deletes it with the Mailbox. A new Mailbox is first applied as a server-side dry run, so
//!   that one the API server refuses leaves no Secret behind.
//! - Quarantine goes to the tenant dataplane's admin API ([`crate::dataplane`]), as the
//!   Mailbox controller reaches it (pinned certificate and token of the admin Secret,
//!   `--dataplane-endpoint` overrides); an unreachable dataplane is a 503.

use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
    ValidationDirective,
};
use kube::{Client, ResourceExt};
use mcp_api::backend::{
    Backend, BackendError, BuiltinPluginInfo, FIELD_MANAGER, IfMatch, Kind, LabelSelector,
    ListQuery, Outcome, Page, Requirement, Versioned, Write, WriteMode, Written,
};
use mcp_crds::dataplane::{QuarantineEntry, QuarantineList, ReleaseOutcome};
use mcp_crds::{Mailbox, MigrationJob, Pipeline, PluginDeployment, Tenant};
use serde_json::{Map, Value, json};

use super::errors::{Op, kube_error};
use crate::dataplane::{DataplaneClient, DataplaneError, Dataplanes};
use crate::tenant::controller::connect_dataplane;
use crate::tenant::names;

/// Label put on the password Secrets the facade writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// How long a write waits for a new Tenant's namespace, which the Tenant controller creates
/// within a second or two of the Tenant.
pub const NAMESPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Writes of one bulk import in flight at once (each is two to four API requests).
pub const BATCH_CONCURRENCY: usize = 8;

/// The Kubernetes backend: an API client and the dataplane clients for quarantine.
pub struct KubeBackend {
    client: Client,
    dataplanes: Dataplanes,
}

impl std::fmt::Debug for KubeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackend").finish_non_exhaustive()
    }
}

/// The API resource of `kind`.
fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Tenant => ApiResource::erase::<Tenant>(&()),
        Kind::Mailbox => ApiResource::erase::<Mailbox>(&()),
        Kind::Secret => ApiResource::erase::<Secret>(&()),
        Kind::Pipeline => ApiResource::erase::<Pipeline>(&()),
        Kind::PluginDeployment => ApiResource::erase::<PluginDeployment>(&()),
        Kind::MigrationJob => ApiResource::erase::<MigrationJob>(&()),
    }
}

/// The `labelSelector` query parameter of `selector` (empty: none).
pub fn selector_string(selector: &LabelSelector) -> Option<String> {
    let parts: Vec<String> = selector
        .0
        .iter()
        .map(|r| match r {
            Requirement::Equals(k, v) => format!("{k}={v}"),
            Requirement::NotEquals(k, v) => format!("{k}!={v}"),
            Requirement::Exists(k) => k.clone(),
            Requirement::NotExists(k) => format!("!{k}"),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The object as the facade answers it: `apiVersion` and `kind` set, `managedFields` left
/// out (as `kubectl get -o json` shows it).
fn answer(kind: Kind, object: &DynamicObject) -> Result<Versioned, BackendError> {
    let version = object.metadata.resource_version.clone().unwrap_or_default();
    let mut value = serde_json::to_value(object)
        .map_err(|e| BackendError::Unavailable(format!("unreadable object: {e}")))?;
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "apiVersion".into(),
            Value::String(kind.api_version().into()),
        );
        o.insert("kind".into(), Value::String(kind.name().into()));
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    Ok(Versioned {
        object: value,
        version,
    })
}

/// The configuration applied for `object` (a request's object: only its name, labels,
/// annotations and spec count), in `namespace`, at `version` when given.
pub fn applied(
    kind: Kind,
    namespace: Option<&str>,
    object: &Value,
    version: Option<&str>,
) -> Value {
    let mut meta = Map::new();
    if let Some(name) = object.pointer("/metadata/name") {
        meta.insert("name".into(), name.clone());
    }
    if let Some(ns) = namespace {
        meta.insert("namespace".into(), Value::String(ns.to_owned()));
    }
    for field in ["labels", "annotations"] {
        if let Some(v) = object
            .pointer(&format!("/metadata/{field}"))
            .filter(|v| !v.is_null())
        {
            meta.insert(field.into(), v.clone());
        }
    }
    if let Some(v) = version {
        meta.insert("resourceVersion".into(), Value::String(v.to_owned()));
    }
    let mut out = json!({
        "apiVersion": kind.api_version(),
        "kind": kind.name(),
        "metadata": meta,
    });
    if let (Some(o), Some(spec)) = (out.as_object_mut(), object.get("spec")) {
        o.insert("spec".into(), spec.clone());
    }
    out
}

/// The Secret configuration of a request's Secret (`metadata.name`, `stringData`): `data`
/// base64-encoded, labelled, owned by `owner` when given.
fn applied_secret(namespace: &str, secret: &Value, owner: Option<&Value>) -> Value {
    let name = secret
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let data: Map<String, Value> = secret
        .get("stringData")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v.as_str().unwrap_or_default();
                    (
                        k.clone(),
                        Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut meta = json!({
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: FIELD_MANAGER},
    });
    if let (Some(m), Some(owner)) = (meta.as_object_mut(), owner) {
        m.insert("ownerReferences".into(), json!([owner]));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": data,
    })
}

/// The owner reference to a Mailbox (its Secrets go with it).
fn owner_ref(name: &str, object: &DynamicObject) -> Option<Value> {
    let uid = object.metadata.uid.clone()?;
    Some(json!({
        "apiVersion": Kind::Mailbox.api_version(),
        "kind": Kind::Mailbox.name(),
        "name": name,
        "uid": uid,
    }))
}

/// Checks that a Mailbox's address and aliases are in the tenant's domains (422 naming the
/// field otherwise).
fn check_domains(object: &Value, tenant: &Tenant) -> Result<(), BackendError> {
    let domains = &tenant.spec.domains;
    let address = object.pointer("/spec/address").and_then(Value::as_str);
    let aliases = object
        .pointer("/spec/aliases")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut errors = Vec::new();
    let all = address
        .map(|a| ("spec.address", a.to_owned()))
        .into_iter()
        .chain(
            aliases
                .iter()
                .filter_map(Value::as_str)
                .map(|a| ("spec.aliases", a.to_owned())),
        );
    for (field, a) in all {
        let domain = a.rsplit_once('@').map_or("", |(_, d)| d);
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            errors.push(mcp_api::problem::FieldError {
                field: field.to_owned(),
                message: format!(
                    "the domain of {a:?} is not one of Tenant {:?}'s spec.domains {domains:?}",
                    tenant.name_any()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(BackendError::Invalid(errors))
    }
}

fn precondition(kind: Kind, name: &str, version: Option<&str>) -> BackendError {
    BackendError::PreconditionFailed(match version {
        Some(v) => format!(
            "If-Match: {} {name:?} is at resourceVersion {v:?}",
            kind.name()
        ),
        None => format!("If-Match: {} {name:?} does not exist", kind.name()),
    })
}

fn not_found(kind: Kind, name: &str) -> BackendError {
    BackendError::NotFound(format!("{} {name:?} not found", kind.name()))
}

/// The [`BackendError`] of a failed admin API call of `tenant`'s dataplane.
fn dataplane_error(tenant: &str, e: DataplaneError) -> BackendError {
    match e {
        DataplaneError::Refused {
            status: 404,
            detail,
            ..
        } => BackendError::NotFound(detail),
        DataplaneError::Refused {
            status: 409,
            detail,
            ..
        } => BackendError::Conflict(detail),
        DataplaneError::Refused {
            status: 400,
            detail,
            ..
        } => BackendError::BadRequest(detail),
        other => BackendError::Unavailable(format!("tenant {tenant:?}'s dataplane: {other}")),
    }
}

/// An id that is not one is 404, as standalone answers (the admin API says 400).
fn malformed_id(e: BackendError, id: &str) -> BackendError {
    match e {
        BackendError::BadRequest(_) => {
            BackendError::NotFound(format!("no quarantined message {id:?}"))
        }
        other => other,
    }
}

impl KubeBackend {
    /// A backend over `client`; `dataplanes` reaches the tenants' admin APIs.
    pub fn new(client: Client, dataplanes: Dataplanes) -> Self {
        Self { client, dataplanes }
    }

    fn api(&self, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = resource(kind);
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// The Tenant `name` (404 if absent).
    async fn tenant(&self, name: &str) -> Result<Tenant, BackendError> {
        Api::<Tenant>::all(self.client.clone())
            .get_opt(name)
            .await
            .map_err(|e| kube_error(e, Op::Read))?
            .ok_or_else(|| BackendError::NotFound(format!("tenant {name:?} not found")))
    }

    /// The namespace of `tenant`'s objects (404 for an unknown tenant).
    async fn namespace(&self, tenant: &str) -> Result<(Tenant, String), BackendError> {
        let t = self.tenant(tenant).await?;
        let ns = names::namespace(&t).map_err(|e| BackendError::Conflict(e.to_string()))?;
        Ok((t, ns))
    }

    /// `(namespace, tenant)` of an object of `kind` in `tenant`: none for a Tenant.
    async fn scope(
        &self,
        kind: Kind,
        tenant: &str,
    ) -> Result<(Option<String>, Option<Tenant>), BackendError> {
        if kind == Kind::Tenant {
            return Ok((None, None));
        }
        let (t, ns) = self.namespace(tenant).await?;
        Ok((Some(ns), Some(t)))
    }

    /// Waits until `namespace` (of `tenant`) exists, for up to [`NAMESPACE_WAIT`]: a write
    /// right after its Tenant's creation would otherwise fail.
    ///
    /// # Errors
    /// [`BackendError::Conflict`] when it does not come or is being deleted.
    async fn wait_namespace(&self, tenant: &str, namespace: &str) -> Result<(), BackendError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let deadline = tokio::time::Instant::now() + NAMESPACE_WAIT;
        loop {
            match api
                .get_metadata_opt(namespace)
                .await
                .map_err(|e| kube_error(e, Op::Read))?
            {
                Some(ns) if ns.metadata.deletion_timestamp.is_some() => {
                    return Err(BackendError::Conflict(format!(
                        "tenant {tenant:?}'s namespace {namespace:?} is being deleted"
                    )));
                }
                Some(_) => return Ok(()),
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(BackendError::Conflict(format!(
                        "tenant {tenant:?}'s namespace {namespace:?} does not exist yet (the \
                         operator creates it; see the Tenant's status); retry"
                    )));
                }
                None => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            }
        }
    }

    async fn do_list(&self, kind: Kind, query: ListQuery) -> Result<Page, BackendError> {
        let selector = selector_string(&query.selector);
        if kind == Kind::Tenant
            && let Some(t) = &query.tenant
        {
            // One Tenant (a tenant-admin's list).
            let found = self
                .api(kind, None)
                .get_opt(t)
                .await
                .map_err(|e| kube_error(e, Op::Read))?;
            let items = found
                .filter(|o| query.selector.matches(o.labels()))
                .map(|o| answer(kind, &o))
                .transpose()?
                .into_iter()
                .collect();
            return Ok(Page { items, next: None });
        }
        let namespace = match (&query.tenant, kind) {
            (Some(t), k) if k != Kind::Tenant => Some(self.namespace(t).await?.1),
            _ => None,
        };
        let mut params = ListParams::default().limit(query.limit.max(1));
        if let Some(s) = selector {
            params = params.labels(&s);
        }
        if let Some(from) = query.from {
            params = params.continue_token(&from);
        }
        let list = self
            .api(kind, namespace.as_deref())
            .list(&params)
            .await
            .map_err(|e| kube_error(e, Op::Read))?;
        let next = list.metadata.continue_.clone().filter(|c| !c.is_empty());
        let items = list
            .items
            .iter()
            .map(|o| answer(kind, o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next })
    }

    async fn do_get(
        &self,
        kind: Kind,
        tenant: &str,
        name: &str,
    ) -> Result<Versioned, BackendError> {
        if kind == Kind::Secret {
            return Err(not_found(kind, name));
        }
        let (namespace, _) = self.scope(kind, tenant).await?;
        let object = self
            .api(kind, namespace.as_deref())
            .get_opt(name)
            .await
            .map_err(|e| kube_error(e, Op::Read))?
            .ok_or_else(|| not_found(kind, name))?;
        answer(kind, &object)
    }

    /// Applies a password Secret; returns whether it changed.
    async fn apply_secret(
        &self,
        namespace: &str,
        secret: &Value,
        owner: Option<&Value>,
        params: &PatchParams,
    ) -> Result<bool, BackendError> {
        let name = secret
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let before = api
            .get_metadata_opt(name)
            .await
            .map_err(|e| kube_error(e, Op::Read))?
            .and_then(|m| m.metadata.resource_version);
        let body = applied_secret(namespace, secret, owner);
        let after = api
            .patch(name, params, &Patch::Apply(&body))
            .await
            .map_err(|e| match kube_error(e, Op::Write) {
                BackendError::Invalid(errors) => BackendError::Invalid(
                    errors
                        .into_iter()
                        .map(|mut e| {
                            e.field = "password".into();
                            e
                        })
                        .collect(),
                ),
                other => other,
            })?;
        Ok(before != after.metadata.resource_version)
    }

    async fn do_write(&self, w: Write) -> Result<Written, BackendError> {
        if w.kind == Kind::Secret {
            return Err(BackendError::invalid(
                "kind",
                "Secrets are written with their Mailbox",
            ));
        }
        let name = w
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (namespace, tenant) = self.scope(w.kind, &w.tenant).await?;
        if let (Kind::Mailbox, Some(t)) = (w.kind, &tenant) {
            check_domains(&w.object, t)?;
        }
        if let Some(ns) = &namespace {
            self.wait_namespace(&w.tenant, ns).await?;
        }
        let api = self.api(w.kind, namespace.as_deref());
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| kube_error(e, Op::Read))?;
        let current_version = current
            .as_ref()
            .and_then(|c| c.metadata.resource_version.clone());
        let lock = match &w.mode {
            WriteMode::Create => {
                if current.is_some() {
                    return Err(BackendError::Conflict(format!(
                        "{} {name:?} already exists",
                        w.kind.name()
                    )));
                }
                None
            }
            WriteMode::Apply(Some(pre)) => {
                if !pre.holds(current_version.as_deref()) {
                    return Err(precondition(w.kind, &name, current_version.as_deref()));
                }
                current_version.clone()
            }
            WriteMode::Apply(None) => None,
        };
        let params = PatchParams {
            dry_run: w.dry_run,
            force: false,
            field_manager: Some(FIELD_MANAGER.to_owned()),
            field_validation: Some(ValidationDirective::Strict),
        };
        let secret_ns = namespace.clone().unwrap_or_default();
        let owner = current.as_ref().and_then(|c| owner_ref(&name, c));
        let body = applied(w.kind, namespace.as_deref(), &w.object, lock.as_deref());
        let op = if lock.is_some() {
            Op::Locked
        } else {
            Op::Write
        };
        if owner.is_none() && !w.secrets.is_empty() && !w.dry_run {
            // A new object's Secret is written first and owned only once the object exists:
            // check the object with a server-side dry run first, so that a refused object
            // leaves no Secret without an owner behind.
            let dry = PatchParams {
                dry_run: true,
                ..params.clone()
            };
            api.patch(&name, &dry, &Patch::Apply(&body))
                .await
                .map_err(|e| kube_error(e, op))?;
        }
        let mut secrets_changed = false;
        for s in &w.secrets {
            secrets_changed |= self
                .apply_secret(&secret_ns, s, owner.as_ref(), &params)
                .await?;
        }
        let after = api
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| kube_error(e, op))?;
        if owner.is_none()
            && !w.dry_run
            && let Some(owner) = owner_ref(&name, &after)
        {
            for s in &w.secrets {
                self.apply_secret(&secret_ns, s, Some(&owner), &params)
                    .await?;
            }
        }
        let outcome = if current.is_none() {
            Outcome::Created
        } else if current_version == after.metadata.resource_version && !secrets_changed {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        };
        Ok(Written {
            outcome,
            object: answer(w.kind, &after)?,
        })
    }

    /// Up to five objects of `namespace` that a Tenant's deletion would take with it.
    async fn leftovers(&self, namespace: &str) -> Result<Vec<String>, BackendError> {
        let mut out = Vec::new();
        for kind in [
            Kind::Mailbox,
            Kind::Pipeline,
            Kind::PluginDeployment,
            Kind::MigrationJob,
        ] {
            let list = self
                .api(kind, Some(namespace))
                .list(&ListParams::default().limit(5))
                .await
                .map_err(|e| kube_error(e, Op::Read))?;
            out.extend(
                list.items
                    .iter()
                    .filter(|o| o.metadata.deletion_timestamp.is_none())
                    .map(|o| format!("{} {:?}", kind.name(), o.name_any())),
            );
        }
        out.truncate(5);
        Ok(out)
    }

    async fn do_delete(
        &self,
        kind: Kind,
        tenant: &str,
        name: &str,
        if_match: Option<IfMatch>,
    ) -> Result<(), BackendError> {
        if kind == Kind::Secret {
            return Err(BackendError::invalid(
                "kind",
                "Secrets are deleted with their Mailbox",
            ));
        }
        let (namespace, _) = self.scope(kind, tenant).await?;
        let api = self.api(kind, namespace.as_deref());
        let current = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(e, Op::Read))?
            .ok_or_else(|| not_found(kind, name))?;
        let version = current.metadata.resource_version.clone();
        if let Some(pre) = &if_match
            && !pre.holds(version.as_deref())
        {
            return Err(precondition(kind, name, version.as_deref()));
        }
        if kind == Kind::Tenant {
            let (_, ns) = self.namespace(name).await?;
            let left = self.leftovers(&ns).await?;
            if !left.is_empty() {
                return Err(BackendError::Conflict(format!(
                    "tenant {name:?} still has resources ({}, ...): delete them first",
                    left.join(", ")
                )));
            }
        }
        let mut params = DeleteParams::background();
        let op = if if_match.is_some() {
            params.preconditions = Some(Preconditions {
                resource_version: version,
                uid: None,
            });
            Op::Locked
        } else {
            Op::Write
        };
        api.delete(name, &params)
            .await
            .map_err(|e| kube_error(e, op))?;
        Ok(())
    }

    /// The admin API client of `tenant`'s dataplane (404 for an unknown tenant).
    async fn dataplane(&self, tenant: &str) -> Result<Arc<DataplaneClient>, BackendError> {
        let t = self.tenant(tenant).await?;
        connect_dataplane(&self.client, &self.dataplanes, &t)
            .await
            .map_err(|e| {
                BackendError::Unavailable(format!(
                    "tenant {tenant:?}'s dataplane admin API: {e} (is the Tenant Ready?)"
                ))
            })
    }

    /// Runs `call` on `tenant`'s dataplane; forgets the client after a failure to connect
    /// (a re-issued admin Secret is read again next time).
    async fn on_dataplane<T, F>(&self, tenant: &str, call: F) -> Result<T, BackendError>
    where
        F: AsyncFnOnce(&DataplaneClient) -> Result<T, DataplaneError>,
    {
        let client = self.dataplane(tenant).await?;
        match call(&client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if !matches!(e, DataplaneError::Refused { status, .. } if (400..500).contains(&status) && status != 401)
                {
                    self.dataplanes.forget(tenant);
                }
                Err(dataplane_error(tenant, e))
            }
        }
    }
}

impl Backend for KubeBackend {
    fn list<'a>(
        &'a self,
        kind: Kind,
        query: ListQuery,
    ) -> BoxFuture<'a, Result<Page, BackendError>> {
        Box::pin(self.do_list(kind, query))
    }

    fn get<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Versioned, BackendError>> {
        Box::pin(self.do_get(kind, tenant, name))
    }

    fn write<'a>(&'a self, write: Write) -> BoxFuture<'a, Result<Written, BackendError>> {
        Box::pin(self.do_write(write))
    }

    fn write_batch<'a>(
        &'a self,
        writes: Vec<Write>,
    ) -> BoxFuture<'a, Vec<Result<Written, BackendError>>> {
        Box::pin(
            futures::stream::iter(writes)
                .map(|w| self.do_write(w))
                .buffered(BATCH_CONCURRENCY)
                .collect(),
        )
    }

    fn delete<'a>(
        &'a self,
        kind: Kind,
        tenant: &'a str,
        name: &'a str,
        if_match: Option<IfMatch>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.do_delete(kind, tenant, name, if_match))
    }

    fn builtin_plugins(&self) -> Vec<BuiltinPluginInfo> {
        mcp_api::backend::builtin_plugins()
    }

    fn quarantine_list<'a>(
        &'a self,
        tenant: &'a str,
        mailbox: Option<&'a str>,
        limit: u32,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QuarantineList, BackendError>> {
        Box::pin(async move {
            let listed = self
                .on_dataplane(tenant, async |c| {
                    c.quarantine_list(mailbox, limit, after).await
                })
                .await;
            match listed {
                // An address outside the tenant's domains holds nothing (as standalone says).
                Err(BackendError::BadRequest(d)) if d.starts_with("mailbox:") => {
                    Ok(QuarantineList::default())
                }
                Err(BackendError::BadRequest(d)) if d.starts_with("after:") => Err(
                    BackendError::BadRequest(format!("cursor:{}", &d["after:".len()..])),
                ),
                other => other,
            }
        })
    }

    fn quarantine_get<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<QuarantineEntry, BackendError>> {
        Box::pin(async move {
            self.on_dataplane(tenant, async |c| c.quarantine_get(id).await)
                .await
                .map_err(|e| malformed_id(e, id))?
                .ok_or_else(|| BackendError::NotFound(format!("no quarantined message {id:?}")))
        })
    }

    fn quarantine_release<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ReleaseOutcome, BackendError>> {
        Box::pin(async move {
            self.on_dataplane(tenant, async |c| c.quarantine_release(id).await)
                .await
                .map_err(|e| malformed_id(e, id))
        })
    }

    fn quarantine_delete<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.on_dataplane(tenant, async |c| c.quarantine_delete(id).await)
                .await
                .map_err(|e| malformed_id(e, id))
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.client
                .apiserver_version()
                .await
                .map(|_| ())
                .map_err(|e| kube_error(e, Op::Read))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_passed_as_kubectl_writes_them() {
        let s = LabelSelector::parse("a=b,c!=d,e,!f").expect("selector");
        assert_eq!(selector_string(&s).as_deref(), Some("a=b,c!=d,e,!f"));
        assert_eq!(selector_string(&LabelSelector::default()), None);
    }

    #[test]
    fn the_applied_configuration_holds_only_what_the_client_owns() {
        let object = json!({
            "apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
            "metadata": {"name": "carol", "labels": {"team": "x"}, "resourceVersion": "9",
                         "uid": "u", "managedFields": [], "creationTimestamp": "t"},
            "spec": {"address": "carol@a.example"},
            "status": {"provisioned": true},
        });
        let a = applied(Kind::Mailbox, Some("mcp-a"), &object, None);
        assert_eq!(
            a,
            json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
                   "metadata": {"name": "carol", "namespace": "mcp-a", "labels": {"team": "x"}},
                   "spec": {"address": "carol@a.example"}})
        );
        let locked = applied(Kind::Tenant, None, &object, Some("12"));
        assert_eq!(locked["metadata"]["resourceVersion"], "12");
        assert!(locked["metadata"].get("namespace").is_none());
    }

    #[test]
    fn password_secrets_are_data_owned_by_the_mailbox() {
        let s = json!({"metadata": {"name": "carol-password"}, "stringData": {"password": "pw"}});
        let owner = json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox", "name": "carol", "uid": "u"});
        let a = applied_secret("mcp-a", &s, Some(&owner));
        assert_eq!(a["data"]["password"], "cHc=");
        assert_eq!(a["metadata"]["labels"][MANAGED_BY_LABEL], "mcp-rest");
        assert_eq!(a["metadata"]["ownerReferences"][0]["uid"], "u");
        assert!(a.get("stringData").is_none());
    }

    #[test]
    fn builtin_plugin_names_are_the_pipeline_step_names() {
        let names: Vec<String> = mcp_api::backend::builtin_plugins()
            .into_iter()
            .map(|p| p.name)
            .collect();
        use mcp_crds::pipeline::BuiltinPlugin as B;
        for p in [
            B::AttachmentPolicy,
            B::Clamav,
            B::Dlp,
            B::HeaderTagger,
            B::Rspamd,
            B::SizeLimit,
        ] {
            assert!(
                names.iter().any(|n| n == mcp_plugins_builtin::name(p)),
                "{p:?}"
            );
        }
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn dataplane_refusals_map_to_statuses() {
        let refused = |status| DataplaneError::Refused {
            method: "GET",
            url: "u".into(),
            status,
            detail: "d".into(),
        };
        assert!(matches!(
            dataplane_error("t", refused(404)),
            BackendError::NotFound(_)
        ));
        assert!(matches!(
            dataplane_error("t", refused(409)),
            BackendError::Conflict(_)
        ));
        assert!(matches!(
            dataplane_error("t", refused(400)),
            BackendError::BadRequest(_)
        ));
        assert!(matches!(
            dataplane_error("t", refused(503)),
            BackendError::Unavailable(_)
        ));
        let down = DataplaneError::Unavailable {
            url: "u".into(),
            detail: "connection refused".into(),
        };
        let e = dataplane_error("acme", down);
        assert!(
            matches!(&e, BackendError::Unavailable(d) if d.contains("acme") && d.contains("refused")),
            "{e}"
        );
    }
}
