//! `/api/v1/tenants/{tenant}/pipelines`: the tenant's `Pipeline` resources. The backend
//! compiles them with the PluginDeployments (a step's config the plugin cannot use is 422).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_crds::PipelineSpec;
use serde_json::Value;

use super::generic;
use super::kinds;
use super::{IfMatchHeader, ListParams, Parsed, ResourceList, WriteParams, parse_object};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::Kind;
use crate::problem::{ApiError, ApiJson, Problem};
use crate::rbac::Group;

/// Checks a Pipeline body ([`parse_object`] with the CRD's spec type).
///
/// # Errors
/// 422 naming every field at fault.
pub fn parse(
    _tenant: &str,
    body: Value,
    path_name: Option<&str>,
) -> Result<(Parsed, Vec<Value>), ApiError> {
    let parsed = parse_object::<PipelineSpec>(Kind::Pipeline, body, path_name, &[], |_, _| {})?;
    Ok((parsed, Vec::new()))
}

/// Lists the tenant's Pipelines.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/pipelines",
    operation_id = "listPipelines",
    tag = "pipelines",
    params(("tenant" = String, Path, description = "The Tenant's name"), ListParams),
    responses((status = 200, description = "The Pipelines, by name.", body = kinds::PipelineList))
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
        Kind::Pipeline,
        Group::Pipelines,
        &tenant,
        params,
    )
    .await
}

/// Creates a Pipeline.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/pipelines",
    operation_id = "createPipeline",
    tag = "pipelines",
    params(("tenant" = String, Path, description = "The Tenant's name"), WriteParams),
    request_body = kinds::PipelineObject,
    responses(
        (status = 201, description = "Created.", body = kinds::PipelineObject,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the Mailbox"))),
        (status = 409, description = "A Pipeline of this name exists.", body = Problem, content_type = "application/problem+json"),
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
        Kind::Pipeline,
        Group::Pipelines,
        &tenant,
        params.dry_run.unwrap_or(false),
        body,
        &parse,
    )
    .await
}

/// One Pipeline.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/pipelines/{name}",
    operation_id = "getPipeline",
    tag = "pipelines",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Pipeline's name")),
    responses((status = 200, description = "The Pipeline.", body = kinds::PipelineObject,
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
        Kind::Pipeline,
        Group::Pipelines,
        &tenant,
        &name,
    )
    .await
}

/// Creates or replaces a Pipeline (server-side apply).
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/pipelines/{name}",
    operation_id = "applyPipeline",
    tag = "pipelines",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Pipeline's name"), IfMatchHeader, WriteParams),
    request_body = kinds::PipelineObject,
    responses(
        (status = 200, description = "Replaced (or unchanged).", body = kinds::PipelineObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 201, description = "Created.", body = kinds::PipelineObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "Defined in a read-only file, or the change would make another resource invalid.", body = Problem, content_type = "application/problem+json"),
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
        Kind::Pipeline,
        Group::Pipelines,
        &tenant,
        &name,
        params.dry_run.unwrap_or(false),
        &headers,
        body,
        &parse,
    )
    .await
}

/// Deletes a Pipeline.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/pipelines/{name}",
    operation_id = "deletePipeline",
    tag = "pipelines",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The Pipeline's name"), IfMatchHeader),
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
        Kind::Pipeline,
        Group::Pipelines,
        &tenant,
        &name,
        &headers,
    )
    .await
}
