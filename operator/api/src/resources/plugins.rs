//! `/api/v1/tenants/{tenant}/plugins`: the built-in plugins (read-only) and the tenant's
//! `PluginDeployment` resources; `:enable` and `:disable` flip a PluginDeployment's
//! `spec.suspend` ([`SUSPEND_FIELD`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::generic;
use super::kinds;
use super::{
    IfMatchHeader, ListMeta, ListParams, Parsed, WriteParams, authorize, backend, backend_error,
    list_query, object_answer, parse_object,
};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::{IfMatch, Kind, Outcome, Write, WriteMode};
use crate::problem::{ApiError, ApiJson, Problem};
use crate::rbac::{Group, Verb};

/// The field `:enable`/`:disable` set: `spec.suspend` of a PluginDeployment (`true` stops the
/// plugin; its Pipeline steps are skipped as if absent).
pub const SUSPEND_FIELD: &str = "suspend";

/// Checks a PluginDeployment body against the CRD type (`spec.suspend` included).
///
/// # Errors
/// 422 naming every field at fault.
pub fn parse(
    _tenant: &str,
    body: Value,
    path_name: Option<&str>,
) -> Result<(Parsed, Vec<Value>), ApiError> {
    let parsed = parse_object::<mcp_crds::PluginDeploymentSpec>(
        Kind::PluginDeployment,
        body,
        path_name,
        &[],
        |_, _| {},
    )?;
    Ok((parsed, Vec::new()))
}

/// A built-in plugin: run in-process, nothing to deploy, not switchable here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuiltinPlugin {
    /// Name, as a Pipeline step's `plugin.builtin`.
    pub name: String,
    /// Stages it may run in.
    pub stages: Vec<String>,
    /// Mutations it may make (with its most permissive config).
    pub capabilities: Vec<String>,
    /// What it does.
    pub description: String,
}

/// `GET /tenants/{tenant}/plugins` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginList {
    /// The built-in plugins, by name (on every page).
    pub builtin: Vec<BuiltinPlugin>,
    /// The tenant's PluginDeployments, by name.
    #[schema(value_type = Vec<kinds::PluginDeploymentObject>)]
    pub items: Vec<Value>,
    /// Paging of `items`.
    pub metadata: ListMeta,
}

/// Lists the built-in plugins and the tenant's PluginDeployments.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/plugins",
    operation_id = "listPlugins",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ListParams),
    responses((status = 200, description = "Built-in plugins and PluginDeployments.", body = PluginList))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<PluginList>, ApiError> {
    authorize(&principal, Verb::Read, Group::Plugins, &tenant)?;
    let query = list_query(params, Some(tenant))?;
    let backend = backend(&state)?;
    let page = backend
        .list(Kind::PluginDeployment, query)
        .await
        .map_err(backend_error)?;
    Ok(Json(PluginList {
        builtin: backend
            .builtin_plugins()
            .into_iter()
            .map(|b| BuiltinPlugin {
                name: b.name,
                stages: b.stages,
                capabilities: b.capabilities,
                description: b.description,
            })
            .collect(),
        items: page.items.into_iter().map(|v| v.object).collect(),
        metadata: ListMeta {
            continue_: page.next,
        },
    }))
}

/// One PluginDeployment.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/plugins/{name}",
    operation_id = "getPlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The PluginDeployment's name")),
    responses((status = 200, description = "The PluginDeployment.", body = kinds::PluginDeploymentObject,
        headers(("ETag" = String, description = "resourceVersion"))))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&principal, Verb::Read, Group::Plugins, &tenant)?;
    let v = backend(&state)?
        .get(Kind::PluginDeployment, &tenant, &name)
        .await
        .map_err(backend_error)?;
    object_answer(StatusCode::OK, v, None)
}

/// Sets `spec.suspend` of PluginDeployment `name` to `suspend`.
async fn set_suspend(
    state: &AppState,
    principal: &Principal,
    tenant: &str,
    name: &str,
    suspend: bool,
) -> Result<Response, ApiError> {
    authorize(principal, Verb::Update, Group::Plugins, tenant)?;
    let backend = backend(state)?;
    if backend.builtin_plugins().iter().any(|b| b.name == name) {
        return Err(ApiError::conflict(format!(
            "{name:?} is a built-in plugin: it runs only where a Pipeline step names it; \
             remove the step instead"
        )));
    }
    let current = backend
        .get(Kind::PluginDeployment, tenant, name)
        .await
        .map_err(backend_error)?;
    let mut object = current.object.clone();
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return Err(ApiError::internal(&"PluginDeployment without spec"));
    };
    if suspend {
        spec.insert(SUSPEND_FIELD.into(), Value::Bool(true));
    } else {
        // The CRD omits `suspend: false`.
        spec.remove(SUSPEND_FIELD);
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    let written = backend
        .write(Write {
            kind: Kind::PluginDeployment,
            tenant: tenant.to_owned(),
            object,
            secrets: Vec::new(),
            // Only over the version just read: a concurrent edit makes this a 412.
            mode: WriteMode::Apply(Some(IfMatch::Versions(vec![current.version]))),
            dry_run: false,
        })
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, %name, suspend, unchanged = written.outcome == Outcome::Unchanged, "REST: plugin suspend set");
    object_answer(StatusCode::OK, written.object, None)
}

/// Starts a suspended PluginDeployment (`spec.suspend` removed).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/plugins/{name}:enable",
    operation_id = "enablePlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The PluginDeployment's name")),
    responses(
        (status = 200, description = "The PluginDeployment, enabled.", body = kinds::PluginDeploymentObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "A built-in plugin, or defined in a read-only file.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "It changed while being switched; retry.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enable(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_suspend(&state, &principal, &tenant, &name, false).await
}

/// Stops a PluginDeployment without deleting it (`spec.suspend: true`).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/plugins/{name}:disable",
    operation_id = "disablePlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The PluginDeployment's name")),
    responses(
        (status = 200, description = "The PluginDeployment, suspended.", body = kinds::PluginDeploymentObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "A built-in plugin, or defined in a read-only file.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "It changed while being switched; retry.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_suspend(&state, &principal, &tenant, &name, true).await
}

/// Creates a PluginDeployment.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/plugins",
    operation_id = "createPlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), WriteParams),
    request_body = kinds::PluginDeploymentObject,
    responses(
        (status = 201, description = "Created.", body = kinds::PluginDeploymentObject,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the PluginDeployment"))),
        (status = 409, description = "A PluginDeployment of this name exists.", body = Problem, content_type = "application/problem+json"),
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
        Kind::PluginDeployment,
        Group::Plugins,
        &tenant,
        params.dry_run.unwrap_or(false),
        body,
        &parse,
    )
    .await
}

/// Creates or replaces a PluginDeployment (server-side apply).
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/plugins/{name}",
    operation_id = "applyPlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The PluginDeployment's name"), IfMatchHeader, WriteParams),
    request_body = kinds::PluginDeploymentObject,
    responses(
        (status = 200, description = "Replaced (or unchanged).", body = kinds::PluginDeploymentObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 201, description = "Created.", body = kinds::PluginDeploymentObject, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "Defined in a read-only file, or the change would make a Pipeline invalid.", body = Problem, content_type = "application/problem+json"),
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
        Kind::PluginDeployment,
        Group::Plugins,
        &tenant,
        &name,
        params.dry_run.unwrap_or(false),
        &headers,
        body,
        &parse,
    )
    .await
}

/// Deletes a PluginDeployment (409 while a Pipeline calls it).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/plugins/{name}",
    operation_id = "deletePlugin",
    tag = "plugins",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The PluginDeployment's name"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "Defined in a read-only file, or a Pipeline calls it.", body = Problem, content_type = "application/problem+json"),
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
        Kind::PluginDeployment,
        Group::Plugins,
        &tenant,
        &name,
        &headers,
    )
    .await
}

/// `POST /tenants/{tenant}/plugins/{name}:enable` and `:disable`, as routed: the router
/// cannot match a parameter followed by text in one segment, so the segment arrives whole
/// and is split here (the document describes the two operations).
pub async fn action(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, segment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match segment.rsplit_once(':') {
        Some((name, "enable")) => set_suspend(&state, &principal, &tenant, name, false).await,
        Some((name, "disable")) => set_suspend(&state, &principal, &tenant, name, true).await,
        _ => Err(ApiError::not_found(format!(
            "no such action: POST {segment}:enable or {segment}:disable"
        ))),
    }
}
