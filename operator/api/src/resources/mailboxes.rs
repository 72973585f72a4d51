//! `/api/v1/tenants/{tenant}/mailboxes`: the tenant's `Mailbox` resources.
//!
//! A create or apply body may hold `password` (write-only, never returned): it becomes the
//! Secret `<mailbox>-password` (key `password`) in the tenant's namespace, and the Mailbox's
//! `spec.credentials` references it (secrets are only referenced, DESIGN.md §2).
//! `spec.tenant` may be left out: it is the tenant of the path (another value is 422).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_crds::MailboxSpec;
use serde_json::{Map, Value, json};

use super::generic;
use super::kinds;
use super::{IfMatchHeader, ListParams, Parsed, ResourceList, WriteParams, parse_object};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::Kind;
use crate::problem::{ApiError, ApiJson, FieldError, Problem};
use crate::rbac::Group;

/// Suffix of the name of a Mailbox's password Secret.
pub const PASSWORD_SECRET_SUFFIX: &str = "-password";
/// Key of the password in that Secret.
pub const PASSWORD_KEY: &str = "password";
/// Longest password accepted, octets.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The name of the password Secret of Mailbox `name`.
pub fn password_secret(name: &str) -> String {
    format!("{name}{PASSWORD_SECRET_SUFFIX}")
}

/// Checks a Mailbox body for `tenant` (path name `path_name` for a `PUT`); returns the
/// object and, when it holds `password`, the Secret to write with it.
///
/// # Errors
/// 422 naming every field at fault.
pub fn parse_mailbox(
    tenant: &str,
    body: Value,
    path_name: Option<&str>,
) -> Result<(Parsed, Vec<Value>), ApiError> {
    let name = path_name
        .map(str::to_owned)
        .or_else(|| {
            body.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => Some(String::new()),
    };
    let secret_name = password_secret(&name);
    let parsed = parse_object::<MailboxSpec>(
        Kind::Mailbox,
        body,
        path_name,
        &["password"],
        |spec: &mut Map<String, Value>, errors: &mut Vec<FieldError>| {
            match spec.get("tenant") {
                None => {
                    spec.insert("tenant".into(), Value::String(tenant.to_owned()));
                }
                Some(Value::String(t)) if t == tenant => {}
                Some(_) => errors.push(FieldError {
                    field: "spec.tenant".into(),
                    message: format!("must be the tenant of the path, {tenant:?}"),
                }),
            }
            let Some(pw) = &password else { return };
            if pw.is_empty() || pw.len() > MAX_PASSWORD_LEN {
                errors.push(FieldError {
                    field: "password".into(),
                    message: format!("must be a string of 1 to {MAX_PASSWORD_LEN} octets"),
                });
            }
            let own = json!({"secretRef": {"name": secret_name, "key": PASSWORD_KEY}});
            match spec.get("credentials") {
                None => {
                    spec.insert("credentials".into(), own);
                }
                Some(c) if *c == own || *c == json!({"secretRef": {"name": secret_name}}) => {}
                Some(_) => errors.push(FieldError {
                    field: "password".into(),
                    message: format!(
                        "sets the password Secret {secret_name:?}; spec.credentials must then \
                         be absent or reference it"
                    ),
                }),
            }
        },
    )?;
    let secrets = match password {
        Some(pw) => vec![json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name},
            "type": "Opaque",
            "stringData": {PASSWORD_KEY: pw},
        })],
        None => Vec::new(),
    };
    Ok((parsed, secrets))
}

/// Lists the tenant's Mailboxes.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/mailboxes",
    operation_id = "listMailboxes",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), ListParams),
    responses((status = 200, description = "The Mailboxes, by name.", body = kinds::MailboxList))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<ResourceList>, ApiError> {
    generic::list(
        &state,
        &principal,
        Kind::Mailbox,
        Group::Mailboxes,
        &tenant,
        params,
    )
    .await
}

/// Creates a Mailbox (with `password`: and its password Secret).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/mailboxes",
    operation_id = "createMailbox",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), WriteParams),
    request_body(content = kinds::MailboxObject, description = "The Mailbox; may hold `password` (write-only), which becomes the Secret `<name>-password` referenced by `spec.credentials`."),
    responses(
        (status = 201, description = "Created; the account can log in.", body = kinds::MailboxObject,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the Mailbox"))),
        (status = 409, description = "A Mailbox of this name exists, or an address is in use.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<WriteParams>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    generic::create(
        &state,
        &principal,
        Kind::Mailbox,
        Group::Mailboxes,
        &tenant,
        params.dry_run.unwrap_or(false),
        body,
        &parse_mailbox,
    )
    .await
}

/// One Mailbox.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/mailboxes/{name}",
    operation_id = "getMailbox",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Mailbox's name")),
    responses((status = 200, description = "The Mailbox.", body = kinds::MailboxObject,
        headers(("ETag" = String, description = "resourceVersion"))))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    generic::get(
        &state,
        &principal,
        Kind::Mailbox,
        Group::Mailboxes,
        &tenant,
        &name,
    )
    .await
}

/// Creates or replaces a Mailbox (server-side apply).
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/mailboxes/{name}",
    operation_id = "applyMailbox",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Mailbox's name"), IfMatchHeader, WriteParams),
    request_body(content = kinds::MailboxObject, description = "The Mailbox; may hold `password` (write-only)."),
    responses(
        (status = 200, description = "Replaced (or unchanged).", body = kinds::MailboxObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 201, description = "Created.", body = kinds::MailboxObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "Defined in a read-only file, or an address is in use.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn apply(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    generic::apply(
        &state,
        &principal,
        Kind::Mailbox,
        Group::Mailboxes,
        &tenant,
        &name,
        params.dry_run.unwrap_or(false),
        &headers,
        body,
        &parse_mailbox,
    )
    .await
}

/// Deletes a Mailbox and its password Secret; the stored mail follows `spec.retention`.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/mailboxes/{name}",
    operation_id = "deleteMailbox",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Mailbox's name"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted; the account can no longer log in."),
        (status = 409, description = "Defined in a read-only file.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    generic::delete(
        &state,
        &principal,
        Kind::Mailbox,
        Group::Mailboxes,
        &tenant,
        &name,
        &headers,
    )
    .await
}
