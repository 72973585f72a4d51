//! `/api/v1/tenants`: the `Tenant` resources (cluster-scoped).
//!
//! Admins do everything; a tenant-admin reads its own Tenant only (its list holds only
//! that one); a viewer reads all.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_crds::TenantSpec;
use serde_json::Value;

use super::kinds;
use super::{
    IfMatchHeader, ListParams, ResourceList, WriteParams, authorize, authorize_list, backend,
    backend_error, if_match, list_answer, list_query, object_answer, object_path, parse_object,
};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::{Kind, Outcome, Write, WriteMode};
use crate::problem::{ApiError, ApiJson, Problem};
use crate::rbac::{Group, Verb};

/// Lists the Tenants the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    operation_id = "listTenants",
    tag = "tenants",
    params(ListParams),
    responses((status = 200, description = "The Tenants: all for admins and viewers, its own for a tenant-admin.", body = kinds::TenantList))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<ResourceList>, ApiError> {
    let own = authorize_list(&principal, Group::Tenants)?;
    let query = list_query(params, own)?;
    let page = backend(&state)?
        .list(Kind::Tenant, query)
        .await
        .map_err(backend_error)?;
    Ok(list_answer(page))
}

/// Creates a Tenant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    operation_id = "createTenant",
    tag = "tenants",
    params(WriteParams),
    request_body = kinds::TenantObject,
    responses(
        (status = 201, description = "Created.", body = kinds::TenantObject,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the Tenant"))),
        (status = 409, description = "A Tenant of this name exists.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Query(params): Query<WriteParams>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    authorize(&principal, Verb::Create, Group::Tenants, &name)?;
    let parsed = parse_object::<TenantSpec>(Kind::Tenant, body, None, &[], |_, _| {})?;
    let written = backend(&state)?
        .write(Write {
            kind: Kind::Tenant,
            tenant: parsed.name.clone(),
            object: parsed.object,
            secrets: Vec::new(),
            mode: WriteMode::Create,
            dry_run: params.dry_run.unwrap_or(false),
        })
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, tenant = %parsed.name, "REST: Tenant created");
    let location = object_path(Kind::Tenant, &parsed.name, &parsed.name);
    object_answer(StatusCode::CREATED, written.object, Some(location))
}

/// One Tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    operation_id = "getTenant",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The Tenant's name")),
    responses((status = 200, description = "The Tenant.", body = kinds::TenantObject,
        headers(("ETag" = String, description = "resourceVersion"))))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&principal, Verb::Read, Group::Tenants, &tenant)?;
    let v = backend(&state)?
        .get(Kind::Tenant, &tenant, &tenant)
        .await
        .map_err(backend_error)?;
    object_answer(StatusCode::OK, v, None)
}

/// Creates or replaces a Tenant (server-side apply).
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}",
    operation_id = "applyTenant",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The Tenant's name"), IfMatchHeader, WriteParams),
    request_body = kinds::TenantObject,
    responses(
        (status = 200, description = "Replaced (or unchanged).", body = kinds::TenantObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 201, description = "Created.", body = kinds::TenantObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "Defined in a read-only file, or the change conflicts with other resources.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn apply(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    authorize(&principal, Verb::Update, Group::Tenants, &tenant)?;
    let precondition = if_match(&headers)?;
    let parsed = parse_object::<TenantSpec>(Kind::Tenant, body, Some(&tenant), &[], |_, _| {})?;
    let written = backend(&state)?
        .write(Write {
            kind: Kind::Tenant,
            tenant: tenant.clone(),
            object: parsed.object,
            secrets: Vec::new(),
            mode: WriteMode::Apply(precondition),
            dry_run: params.dry_run.unwrap_or(false),
        })
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, outcome = ?written.outcome, "REST: Tenant applied");
    let status = if written.outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    object_answer(status, written.object, None)
}

/// Deletes a Tenant. Its Mailboxes and other resources must be deleted first.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}",
    operation_id = "deleteTenant",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The Tenant's name"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "Defined in a read-only file, or the Tenant still has resources.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(&principal, Verb::Delete, Group::Tenants, &tenant)?;
    let precondition = if_match(&headers)?;
    backend(&state)?
        .delete(Kind::Tenant, &tenant, &tenant, precondition)
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, "REST: Tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}
