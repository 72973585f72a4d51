//! `/api/v1/tenants/{tenant}/migrationjobs`: the tenant's `MigrationJob` resources (create,
//! list, get with status, delete; a job's spec is not replaced: create another). Standalone
//! mode has no migration worker: it stores the jobs and says so in their status.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_crds::MigrationJobSpec;
use serde_json::Value;

use super::generic;
use super::kinds;
use super::{IfMatchHeader, ListParams, Parsed, ResourceList, WriteParams, parse_object};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::Kind;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::rbac::Group;

/// Checks a MigrationJob body ([`parse_object`] with the CRD's spec type).
///
/// # Errors
/// 422 naming every field at fault.
pub fn parse(
    _tenant: &str,
    body: Value,
    path_name: Option<&str>,
) -> Result<(Parsed, Vec<Value>), ApiError> {
    let parsed =
        parse_object::<MigrationJobSpec>(Kind::MigrationJob, body, path_name, &[], |_, _| {})?;
    Ok((parsed, Vec::new()))
}

/// Lists the tenant's MigrationJobs.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/migrationjobs",
    operation_id = "listMigrationJobs",
    tag = "migrationjobs",
    params(("tenant" = String, Path, description = "The Tenant's name"), ListParams),
    responses((status = 200, description = "The MigrationJobs, by name.", body = kinds::MigrationJobList))
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
        Kind::MigrationJob,
        Group::Migrations,
        &tenant,
        params,
    )
    .await
}

/// Creates a MigrationJob.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/migrationjobs",
    operation_id = "createMigrationJob",
    tag = "migrationjobs",
    params(("tenant" = String, Path, description = "The Tenant's name"), WriteParams),
    request_body = kinds::MigrationJobObject,
    responses(
        (status = 201, description = "Created.", body = kinds::MigrationJobObject,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the Mailbox"))),
        (status = 409, description = "A MigrationJob of this name exists.", body = Problem, content_type = "application/problem+json"),
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
        Kind::MigrationJob,
        Group::Migrations,
        &tenant,
        params.dry_run.unwrap_or(false),
        body,
        &parse,
    )
    .await
}

/// One MigrationJob.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/migrationjobs/{name}",
    operation_id = "getMigrationJob",
    tag = "migrationjobs",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The MigrationJob's name")),
    responses((status = 200, description = "The MigrationJob.", body = kinds::MigrationJobObject,
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
        Kind::MigrationJob,
        Group::Migrations,
        &tenant,
        &name,
    )
    .await
}

/// Deletes a MigrationJob.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/migrationjobs/{name}",
    operation_id = "deleteMigrationJob",
    tag = "migrationjobs",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The MigrationJob's name"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "Defined in a read-only file, or other resources depend on it.", body = Problem, content_type = "application/problem+json"),
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
        Kind::MigrationJob,
        Group::Migrations,
        &tenant,
        &name,
        &headers,
    )
    .await
}
