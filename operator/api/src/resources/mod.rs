//! The resource endpoints of `/api/v1` (docs/rest-api.md, "Resources"): tenants, mailboxes
//! (with bulk import), pipelines, plugins, policies, quarantine and migration jobs.
//!
//! A resource is the custom resource as `kubectl get -o json` shows it: `apiVersion`,
//! `kind`, `metadata`, `spec`, `status`. What every endpoint shares lives here:
//!
//! - [`parse_object`]: a request body checked against the CRD types of `mcp-crds` (the one
//!   source of truth): unknown top-level, `metadata` or `spec` fields and values of the wrong
//!   shape are 422 naming the field (`spec.address`); `status` and the server-set metadata
//!   are ignored.
//! - `ETag: "<resourceVersion>"` on every single-object answer and `If-Match` on writes
//!   ([`if_match`]; a mismatch is 412).
//! - Lists: `{items, metadata: {continue?}}` with `limit`, `continue` and `labelSelector`.
//! - [`backend_error`]: each [`BackendError`] as its problem answer.
//!
//! Every handler authorizes with [`crate::rbac`] before it touches the backend, so a refused
//! request learns nothing about what exists.

mod generic;
pub mod import;
pub mod kinds;
pub mod mailboxes;
pub mod migrations;
pub mod pipelines;
pub mod plugins;
pub mod policies;
pub mod quarantine;
pub mod tenants;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::backend::{
    Backend, BackendError, IfMatch, Kind, LabelSelector, ListQuery, Page, Versioned,
};
use crate::problem::{ApiError, FieldError};
use crate::rbac::{self, Group, Target, Verb};

/// Default page size of a list.
pub const DEFAULT_LIMIT: u32 = 500;
/// Largest page size of a list.
pub const MAX_LIMIT: u32 = 1000;

/// `metadata` of a resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name: a lower-case RFC 1123 DNS label for a Tenant (at most 63 characters), a DNS
    /// subdomain otherwise (at most 253; 244 for a Mailbox).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        min_length = 1,
        max_length = 253
    )]
    pub name: String,
    /// Namespace (set by the server: the tenant's namespace); absent for a Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels (Kubernetes syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Version of the object (server-set, opaque): the `ETag` of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Spec generation (server-set): grows when the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Creation time, RFC 3339 (server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub creation_timestamp: Option<String>,
    /// Unique id (server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// A custom resource (`mcp.dev/v1alpha1`), as `kubectl get -o json` shows it. In a
/// request, `status` and the server-set metadata are ignored; unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceObject {
    /// `mcp.dev/v1alpha1` (optional in requests).
    #[serde(default)]
    pub api_version: String,
    /// The kind (optional in requests; must match the endpoint).
    #[serde(default)]
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The desired state, as the kind's CRD schema defines it (`kubectl explain`).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// The observed state (server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub status: Option<Value>,
}

/// `metadata` of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListMeta {
    /// Token of the next page (the `continue` query parameter); absent on the last page.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<String>,
}

/// A page of resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceList {
    /// The objects, by name.
    #[schema(value_type = Vec<ResourceObject>)]
    pub items: Vec<Value>,
    /// Paging.
    pub metadata: ListMeta,
}

/// Query parameters of a list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `metadata.continue` of the previous page.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    pub continue_: Option<String>,
    /// Label selector, `kubectl -l` syntax without `in`/`notin`: `a=b,c!=d,e,!f`.
    #[serde(rename = "labelSelector")]
    #[param(rename = "labelSelector")]
    pub label_selector: Option<String>,
}

/// Query parameters of a write.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// `true`: validate only, write nothing; the answer is the object as it would be.
    #[serde(rename = "dryRun", default)]
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// The `If-Match` header parameter of the OpenAPI document.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// `*` or the quoted `ETag` (resourceVersion) of the object the client read; 412 if it
    /// changed since (RFC 9110 §13.1.1).
    #[serde(rename = "If-Match")]
    #[param(
        rename = "If-Match",
        pattern = "^(\\*|[ ,]*((W/)?\"[!#-~]*\"( *,[ ,]*(W/)?\"[!#-~]*\")*[ ,]*)?)$"
    )]
    pub if_match: Option<String>,
}

/// The backend, or 503 when the facade has none.
pub(crate) fn backend(state: &AppState) -> Result<&Arc<dyn Backend>, ApiError> {
    state
        .backend
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the resource backend", &"none configured"))
}

/// The problem answer of a backend error.
pub fn backend_error(e: BackendError) -> ApiError {
    match e {
        BackendError::NotFound(d) => ApiError::not_found(d),
        BackendError::Conflict(d) => ApiError::conflict(d),
        BackendError::BadRequest(d) => ApiError::bad_request(d),
        BackendError::PreconditionFailed(d) => ApiError::new(StatusCode::PRECONDITION_FAILED, d),
        BackendError::Invalid(errors) => ApiError::invalid(errors),
        e @ BackendError::Unavailable(_) => ApiError::unavailable("the resource backend", &e),
    }
}

/// 403 of an RBAC denial.
pub(crate) fn forbidden(e: rbac::Denied) -> ApiError {
    ApiError::forbidden(e.0)
}

/// Authorizes `verb` on `group` of `tenant`.
pub(crate) fn authorize(
    principal: &Principal,
    verb: Verb,
    group: Group,
    tenant: &str,
) -> Result<(), ApiError> {
    rbac::authorize(&principal.role, verb, group, Target::Tenant(tenant)).map_err(forbidden)
}

/// Authorizes a list of `group` across tenants: a tenant-admin is narrowed to its own
/// tenant (the returned filter).
pub(crate) fn authorize_list(
    principal: &Principal,
    group: Group,
) -> Result<Option<String>, ApiError> {
    match &principal.role {
        Role::TenantAdmin(own) => {
            rbac::authorize(&principal.role, Verb::Read, group, Target::Tenant(own))
                .map_err(forbidden)?;
            Ok(Some(own.clone()))
        }
        role => {
            rbac::authorize(role, Verb::Read, group, Target::All).map_err(forbidden)?;
            Ok(None)
        }
    }
}

fn field(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A list query from the parameters.
pub(crate) fn list_query(
    params: ListParams,
    tenant: Option<String>,
) -> Result<ListQuery, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let selector = match params.label_selector.as_deref() {
        Some(s) => LabelSelector::parse(s)
            .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?,
        None => LabelSelector::default(),
    };
    Ok(ListQuery {
        tenant,
        limit,
        from: params.continue_.filter(|c| !c.is_empty()),
        selector,
    })
}

/// A list answer of `page`.
pub(crate) fn list_answer(page: Page) -> Json<ResourceList> {
    Json(ResourceList {
        items: page.items.into_iter().map(|v| v.object).collect(),
        metadata: ListMeta {
            continue_: page.next,
        },
    })
}

/// The `ETag` value of `version` (a strong entity tag, RFC 9110 §8.8.3).
pub(crate) fn etag(version: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("\"{version}\"")).map_err(|e| ApiError::internal(&e))
}

/// A single-object answer: `status`, `ETag`, and `Location` when given.
pub(crate) fn object_answer(
    status: StatusCode,
    v: Versioned,
    location: Option<String>,
) -> Result<Response, ApiError> {
    let mut response = (status, Json(v.object)).into_response();
    let headers = response.headers_mut();
    headers.insert(ETAG, etag(&v.version)?);
    if let Some(l) = location {
        headers.insert(
            LOCATION,
            HeaderValue::from_str(&l).map_err(|e| ApiError::internal(&e))?,
        );
    }
    Ok(response)
}

/// The `If-Match` precondition of a request (RFC 9110 §13.1.1): `*` or a list of entity
/// tags (`"3"`, `W/"3"`; a tag holds any `etagc`, commas included), over one or more header
/// lines, empty list elements skipped (RFC 9110 §5.6.1.2). Weak tags never match (strong
/// comparison); a tag with obs-text octets is kept (it matches no version). An empty list
/// (`If-Match:` with no tag, allowed by the `#entity-tag` grammar) matches nothing: 412.
///
/// # Errors
/// 400 for a value that is neither.
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let bad =
        || ApiError::bad_request("If-Match: must be * or a list of quoted entity tags (\"3\")");
    let mut versions = Vec::new();
    let mut any = false;
    let mut seen = false;
    for value in headers.get_all(IF_MATCH) {
        seen = true;
        if !if_match_line(value.as_bytes(), &mut any, &mut versions) {
            return Err(bad());
        }
    }
    Ok(match (seen, any) {
        (false, _) => None,
        (true, true) => Some(IfMatch::Any),
        (true, false) => Some(IfMatch::Versions(versions)),
    })
}

/// Parses one `If-Match` line into `any` and the strong `versions`; false when malformed.
fn if_match_line(line: &[u8], any: &mut bool, versions: &mut Vec<String>) -> bool {
    let ows = |b: &[u8]| -> usize { b.iter().take_while(|c| matches!(c, b' ' | b'\t')).count() };
    let etagc = |c: &u8| *c == 0x21 || (0x23..=0x7e).contains(c) || *c >= 0x80;
    let mut rest = line;
    loop {
        rest = &rest[ows(rest)..];
        match rest.first() {
            None => break,
            Some(b',') => {
                rest = &rest[1..];
                continue;
            }
            Some(b'*') => {
                *any = true;
                rest = &rest[1..];
            }
            Some(_) => {
                let weak = rest.starts_with(b"W/");
                if weak {
                    rest = &rest[2..];
                }
                let Some(body) = rest.strip_prefix(b"\"") else {
                    return false;
                };
                let Some(end) = body.iter().position(|c| *c == b'"') else {
                    return false;
                };
                let tag = &body[..end];
                if !tag.iter().all(etagc) {
                    return false;
                }
                if !weak {
                    versions.push(String::from_utf8_lossy(tag).into_owned());
                }
                rest = &body[end + 1..];
            }
        }
        rest = &rest[ows(rest)..];
        match rest.first() {
            None => break,
            Some(b',') => rest = &rest[1..],
            Some(_) => return false,
        }
    }
    true
}

/// Whether `s` is a lower-case RFC 1123 DNS subdomain of at most `max` characters.
pub fn is_dns_subdomain(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Whether `s` is the name part of a label key or a label value: at most 63 of
/// `A-Z a-z 0-9 - _ .`, alphanumeric at both ends (empty allowed for values).
fn is_label_word(s: &str, empty_ok: bool) -> bool {
    if s.is_empty() {
        return empty_ok;
    }
    let b = s.as_bytes();
    b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Whether `key` is a Kubernetes label or annotation key: `[prefix/]name`.
fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix, 253) && is_label_word(name, false),
        None => is_label_word(key, false),
    }
}

/// Longest name of each kind: a Tenant is a DNS label (its namespace is `mcp-<name>`); a
/// Mailbox leaves room for the `-password` suffix of its password Secret.
fn max_name(kind: Kind) -> usize {
    match kind {
        Kind::Tenant => 63,
        Kind::Mailbox => 253 - mailboxes::PASSWORD_SECRET_SUFFIX.len(),
        _ => 253,
    }
}

/// Server-set `metadata` fields a request may carry (ignored), and those the facade does not
/// manage (`finalizers`, `ownerReferences`: controllers' and the garbage collector's), so that
/// an object read in Kubernetes mode can be sent back as it is.
pub const SERVER_METADATA: &[&str] = &[
    "namespace",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "managedFields",
    "selfLink",
    "finalizers",
    "ownerReferences",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// A request body checked as a resource of `kind`.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The object to write: `apiVersion`, `kind`, `metadata` (`name`, `labels`,
    /// `annotations`), `spec` (as the typed spec serialises, defaults filled in).
    pub object: Value,
    /// `metadata.name`.
    pub name: String,
    /// The top-level extra fields the endpoint allowed (`password`).
    pub extra: Map<String, Value>,
}

/// Deserialises `value` as `T`, naming the fields of every error under `prefix`
/// (`spec.quota.storage`); fields `T` does not know are errors too.
///
/// # Errors
/// The field errors.
pub fn typed<T: DeserializeOwned>(prefix: &str, value: &Value) -> Result<T, Vec<FieldError>> {
    let mut unknown = Vec::new();
    let join = |path: &str| {
        if path.is_empty() || path == "." {
            prefix.to_owned()
        } else if path.starts_with('[') {
            format!("{prefix}{path}")
        } else {
            format!("{prefix}.{path}")
        }
    };
    let result: Result<T, _> = {
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
        let ignored = serde_ignored::Deserializer::new(value, &mut note);
        serde_path_to_error::deserialize(ignored)
    };
    match result {
        Err(e) => {
            let path = join(&e.path().to_string());
            let message = e.into_inner().to_string();
            // serde names a missing field in the message, at its parent's path.
            match message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                Some(name) => Err(vec![field(format!("{path}.{name}"), "is required")]),
                None => Err(vec![field(path, message)]),
            }
        }
        Ok(_) if !unknown.is_empty() => Err(unknown
            .iter()
            .map(|p| field(join(p), "unknown field"))
            .collect()),
        Ok(t) => Ok(t),
    }
}

/// A field `serde_ignored` reports as the JSON document names it
/// (`credentials.secretRef.extra`, `steps[2].bogus`): the `Option`, newtype and variant layers
/// serde sees, and a JSON reader does not, are left out. Shared with the dataplane's admin
/// API, whose unknown-field errors name fields the same way.
pub fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Checks a request body as a resource of `kind` whose spec is `S` (docs/rest-api.md,
/// "Representation"): an object with `apiVersion` (`mcp.dev/v1alpha1`) and `kind` if given,
/// `metadata.name` (equal to `path_name` when the path names it; taken from the path when
/// absent), valid labels and annotations, and a `spec` that `S` reads without unknown
/// fields. `status` and server-set metadata are dropped; top-level fields other than these
/// and `extras` are refused. `prepare` may fill in or check spec fields first (a Mailbox's
/// `spec.tenant`).
///
/// # Errors
/// 422 listing every field at fault.
pub fn parse_object<S: DeserializeOwned + Serialize>(
    kind: Kind,
    body: Value,
    path_name: Option<&str>,
    extras: &[&str],
    prepare: impl FnOnce(&mut Map<String, Value>, &mut Vec<FieldError>),
) -> Result<Parsed, ApiError> {
    let Value::Object(mut top) = body else {
        return Err(ApiError::invalid(vec![field(
            "body",
            "must be a JSON object",
        )]));
    };
    let mut errors = Vec::new();
    for key in top.keys() {
        if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str())
            && !extras.contains(&key.as_str())
        {
            errors.push(field(key.clone(), "unknown field"));
        }
    }
    match top.get("apiVersion") {
        None => {}
        Some(Value::String(v)) if v == kind.api_version() => {}
        Some(_) => errors.push(field(
            "apiVersion",
            format!("must be {:?}", kind.api_version()),
        )),
    }
    match top.get("kind") {
        None => {}
        Some(Value::String(k)) if k == kind.name() => {}
        Some(_) => errors.push(field("kind", format!("must be {:?}", kind.name()))),
    }

    let mut meta_out = Map::new();
    let metadata = match top.remove("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            errors.push(field("metadata", "must be an object"));
            Map::new()
        }
    };
    for key in metadata.keys() {
        if !["name", "labels", "annotations"].contains(&key.as_str())
            && !SERVER_METADATA.contains(&key.as_str())
        {
            errors.push(field(format!("metadata.{key}"), "unknown field"));
        }
    }
    let name = match (metadata.get("name"), path_name) {
        (None, Some(p)) => Some(p.to_owned()),
        (None, None) => {
            errors.push(field("metadata.name", "is required"));
            None
        }
        (Some(Value::String(n)), Some(p)) if n != p => {
            errors.push(field(
                "metadata.name",
                format!("must be the name in the path, {p:?}"),
            ));
            None
        }
        (Some(Value::String(n)), _) => Some(n.clone()),
        (Some(_), _) => {
            errors.push(field("metadata.name", "must be a string"));
            None
        }
    };
    if let Some(n) = &name {
        let max = max_name(kind);
        let ok = if kind == Kind::Tenant {
            crate::apikeys::is_tenant_name(n)
        } else {
            is_dns_subdomain(n, max)
        };
        if !ok {
            errors.push(field(
                "metadata.name",
                format!(
                    "must be a lower-case RFC 1123 DNS {} of at most {max} characters",
                    if kind == Kind::Tenant {
                        "label"
                    } else {
                        "subdomain"
                    }
                ),
            ));
        }
        meta_out.insert("name".into(), Value::String(n.clone()));
    }
    for (which, value_check) in [("labels", true), ("annotations", false)] {
        match metadata.get(which) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let f = format!("metadata.{which}.{k}");
                    if !is_label_key(k) {
                        errors.push(field(f.clone(), "is not a valid key ([prefix/]name)"));
                    }
                    match v {
                        Value::String(s) if !value_check || is_label_word(s, true) => {}
                        Value::String(_) => errors.push(field(
                            f,
                            "value must be at most 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends",
                        )),
                        _ => errors.push(field(f, "must be a string")),
                    }
                }
                if !m.is_empty() {
                    meta_out.insert(which.into(), Value::Object(m.clone()));
                }
            }
            Some(_) => errors.push(field(format!("metadata.{which}"), "must be an object")),
        }
    }

    let mut spec = match top.remove("spec") {
        Some(Value::Object(s)) => s,
        None => {
            errors.push(field("spec", "is required"));
            Map::new()
        }
        Some(_) => {
            errors.push(field("spec", "must be an object"));
            Map::new()
        }
    };
    prepare(&mut spec, &mut errors);
    let spec = match typed::<S>("spec", &Value::Object(spec)) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let (Some(name), Some(spec)) = (name, spec) else {
        return Err(ApiError::internal(&"validated object without name or spec"));
    };
    let spec = serde_json::to_value(spec).map_err(|e| ApiError::internal(&e))?;
    let extra: Map<String, Value> = top
        .into_iter()
        .filter(|(k, _)| extras.contains(&k.as_str()))
        .collect();
    let object = serde_json::json!({
        "apiVersion": kind.api_version(),
        "kind": kind.name(),
        "metadata": meta_out,
        "spec": spec,
    });
    Ok(Parsed {
        object,
        name,
        extra,
    })
}

/// The path of an object of `kind` in `tenant`.
pub(crate) fn object_path(kind: Kind, tenant: &str, name: &str) -> String {
    let collection = match kind {
        Kind::Tenant => return format!("{}/tenants/{name}", crate::BASE_PATH),
        Kind::Mailbox | Kind::Secret => "mailboxes",
        Kind::Pipeline => "pipelines",
        Kind::PluginDeployment => "plugins",
        Kind::MigrationJob => "migrationjobs",
    };
    format!("{}/tenants/{tenant}/{collection}/{name}", crate::BASE_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_crds::MailboxSpec;
    use serde_json::json;

    fn fields(e: ApiError) -> Vec<String> {
        e.errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn hostile_bodies_are_422_naming_the_field() {
        let good = json!({"metadata": {"name": "alice"}, "spec": {"tenant": "t1",
            "address": "alice@example.com", "credentials": {"secretRef": {"name": "s"}}}});
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "body"),
            (json!({"metadata": {"name": "alice"}}), "spec"),
            (json!({"spec": good["spec"]}), "metadata.name"),
            (
                json!({"metadata": {"name": "Alice"}, "spec": good["spec"]}),
                "metadata.name",
            ),
            (
                json!({"metadata": {"name": "a", "bogus": 1}, "spec": good["spec"]}),
                "metadata.bogus",
            ),
            (
                json!({"metadata": {"name": "a", "labels": {"k": 3}}, "spec": good["spec"]}),
                "metadata.labels.k",
            ),
            (
                json!({"metadata": {"name": "a", "labels": {"bad key!": "v"}}, "spec": good["spec"]}),
                "metadata.labels.bad key!",
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": good["spec"], "extra": 1}),
                "extra",
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "a"}, "spec": good["spec"]}),
                "apiVersion",
            ),
            (
                json!({"kind": "Tenant", "metadata": {"name": "a"}, "spec": good["spec"]}),
                "kind",
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"tenant": "t1", "address": 5,
                "credentials": {}}}),
                "spec.address",
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"tenant": "t1", "address": "a@b",
                "credentials": {"secretRef": {"name": "s", "x": 1}}}}),
                "spec.credentials.secretRef.x",
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"tenant": "t1", "address": "a@b",
                "credentials": {}, "state": "Bogus"}}),
                "spec.state",
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"address": "a@b", "credentials": {}}}),
                "spec.tenant",
            ),
        ];
        for (body, want) in cases {
            let e = parse_object::<MailboxSpec>(Kind::Mailbox, body.clone(), None, &[], |_, _| {})
                .expect_err(want);
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                fields(e.clone()).iter().any(|f| f == want),
                "{body}: want {want}, got {:?}",
                e.errors
            );
        }
        let ok =
            parse_object::<MailboxSpec>(Kind::Mailbox, good, None, &[], |_, _| {}).expect("valid");
        assert_eq!(
            ok.object["spec"]["state"], "Active",
            "defaults are filled in"
        );
        assert_eq!(ok.object["kind"], "Mailbox");
    }

    #[test]
    fn server_metadata_and_status_are_ignored() {
        let body = json!({"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
            "metadata": {"name": "a", "resourceVersion": "9", "uid": "x", "namespace": "n",
                "finalizers": ["mcp.dev/x"], "ownerReferences": [], "managedFields": [],
                "deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0},
            "spec": {"tenant": "t1", "address": "a@b", "credentials": {}}, "status": {"provisioned": true}});
        let p = parse_object::<MailboxSpec>(Kind::Mailbox, body, Some("a"), &[], |_, _| {})
            .expect("valid");
        assert_eq!(p.object["metadata"], json!({"name": "a"}));
        assert!(p.object.get("status").is_none());
    }

    #[test]
    fn if_match_forms() {
        let h = |v: &[&str]| {
            let mut m = HeaderMap::new();
            for x in v {
                m.append(IF_MATCH, HeaderValue::from_str(x).expect("value"));
            }
            if_match(&m)
        };
        assert_eq!(h(&[]).expect("none"), None);
        assert_eq!(h(&["*, \"1\""]).expect("any"), Some(IfMatch::Any));
        assert_eq!(h(&["*"]).expect("any"), Some(IfMatch::Any));
        assert_eq!(
            h(&["\"3\", W/\"4\"", "\"5\""]).expect("list"),
            Some(IfMatch::Versions(vec!["3".into(), "5".into()]))
        );
        // (header lines, the strong tags): commas inside a tag, empty elements, OWS.
        let good: Vec<(&[&str], &[&str])> = vec![
            (&["\"a,b\""], &["a,b"]),
            (&["\"\""], &[""]),
            (&[" \"1\" ,, \"2\",\t"], &["1", "2"]),
            (&["W/\"x\",\"y,z\""], &["y,z"]),
            (&[""], &[]),
            (&[" , ,"], &[]),
            (
                &["\"!#$%&'()*+-./:;<=>?@[]^_`{|}~\""],
                &["!#$%&'()*+-./:;<=>?@[]^_`{|}~"],
            ),
        ];
        for (lines, want) in good {
            let want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(
                h(lines).expect("valid"),
                Some(IfMatch::Versions(want)),
                "{lines:?}"
            );
        }
        // Malformed: 400, never a panic.
        for bad in [
            "3",
            "\"3",
            "\"a\"b\"",
            "\"a b\"",
            "\"a\"\"b\"",
            "W/",
            "W/3",
            "w/\"3\"",
            "\"1\" \"2\"",
            "*x",
            "\"\t\"",
        ] {
            assert!(h(&[bad]).is_err(), "{bad:?}");
        }
        // obs-text: valid, matches nothing.
        let mut m = HeaderMap::new();
        m.append(
            IF_MATCH,
            HeaderValue::from_bytes(b"\"\xe9\"").expect("obs-text"),
        );
        assert!(matches!(if_match(&m), Ok(Some(IfMatch::Versions(v))) if v.len() == 1));
    }
}
