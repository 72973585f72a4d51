//! The five operations every tenant-scoped collection shares (list, create, get, apply,
//! delete), parameterised by kind and RBAC group; the handlers of each collection are thin
//! wrappers that carry its OpenAPI description.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{
    ListParams, Parsed, ResourceList, authorize, backend, backend_error, if_match, list_answer,
    list_query, object_answer, object_path,
};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::{Kind, Outcome, Write, WriteMode};
use crate::problem::ApiError;
use crate::rbac::{Group, Verb};

/// How a collection turns a request body into a write: the parsed object and its Secrets.
pub(crate) type Parse<'a> =
    &'a (dyn Fn(&str, Value, Option<&str>) -> Result<(Parsed, Vec<Value>), ApiError> + Sync);

/// `GET /tenants/{tenant}/<collection>`.
pub(crate) async fn list(
    state: &Arc<AppState>,
    principal: &Principal,
    kind: Kind,
    group: Group,
    tenant: &str,
    params: ListParams,
) -> Result<Json<ResourceList>, ApiError> {
    authorize(principal, Verb::Read, group, tenant)?;
    let query = list_query(params, Some(tenant.to_owned()))?;
    let page = backend(state)?
        .list(kind, query)
        .await
        .map_err(backend_error)?;
    Ok(list_answer(page))
}

/// `GET /tenants/{tenant}/<collection>/{name}`.
pub(crate) async fn get(
    state: &Arc<AppState>,
    principal: &Principal,
    kind: Kind,
    group: Group,
    tenant: &str,
    name: &str,
) -> Result<Response, ApiError> {
    authorize(principal, Verb::Read, group, tenant)?;
    let v = backend(state)?
        .get(kind, tenant, name)
        .await
        .map_err(backend_error)?;
    object_answer(StatusCode::OK, v, None)
}

/// `POST /tenants/{tenant}/<collection>`: 201 with `Location`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create(
    state: &Arc<AppState>,
    principal: &Principal,
    kind: Kind,
    group: Group,
    tenant: &str,
    dry_run: bool,
    body: Value,
    parse: Parse<'_>,
) -> Result<Response, ApiError> {
    authorize(principal, Verb::Create, group, tenant)?;
    let (parsed, secrets) = parse(tenant, body, None)?;
    let written = backend(state)?
        .write(Write {
            kind,
            tenant: tenant.to_owned(),
            object: parsed.object,
            secrets,
            mode: WriteMode::Create,
            dry_run,
        })
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, name = %parsed.name, kind = kind.name(), dry_run, "REST: created");
    let location = object_path(kind, tenant, &parsed.name);
    object_answer(StatusCode::CREATED, written.object, Some(location))
}

/// `PUT /tenants/{tenant}/<collection>/{name}`: 201 when created, 200 otherwise. Creating
/// needs the `create` right, replacing the `update` right.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply(
    state: &Arc<AppState>,
    principal: &Principal,
    kind: Kind,
    group: Group,
    tenant: &str,
    name: &str,
    dry_run: bool,
    headers: &HeaderMap,
    body: Value,
    parse: Parse<'_>,
) -> Result<Response, ApiError> {
    // The roles that may update a group may also create in it (rbac.rs), so one check
    // covers both outcomes.
    authorize(principal, Verb::Update, group, tenant)?;
    authorize(principal, Verb::Create, group, tenant)?;
    let precondition = if_match(headers)?;
    let (parsed, secrets) = parse(tenant, body, Some(name))?;
    let written = backend(state)?
        .write(Write {
            kind,
            tenant: tenant.to_owned(),
            object: parsed.object,
            secrets,
            mode: WriteMode::Apply(precondition),
            dry_run,
        })
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, %name, kind = kind.name(), outcome = ?written.outcome, dry_run, "REST: applied");
    let status = if written.outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    object_answer(status, written.object, None)
}

/// `DELETE /tenants/{tenant}/<collection>/{name}`: 204.
pub(crate) async fn delete(
    state: &Arc<AppState>,
    principal: &Principal,
    kind: Kind,
    group: Group,
    tenant: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(principal, Verb::Delete, group, tenant)?;
    let precondition = if_match(headers)?;
    backend(state)?
        .delete(kind, tenant, name, precondition)
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, %name, kind = kind.name(), "REST: deleted");
    Ok(StatusCode::NO_CONTENT)
}
