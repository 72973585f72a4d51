//! `/api/v1/tenants/{tenant}/quarantine`: messages a pipeline held (docs/pipeline.md,
//! "Quarantine"): list (by creation, `?mailbox=&limit=&cursor=`), one entry's metadata (not
//! its body), release into the mailbox, delete. Entries of other tenants answer 404, like
//! unknown ids.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mcp_crds::dataplane::{QUARANTINE_DEFAULT_LIMIT, QUARANTINE_MAX_LIMIT};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{authorize, backend, backend_error};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::BackendError;
use crate::problem::{ApiError, Problem};
use crate::rbac::{Group, Verb};

/// A held message, as listed (the dataplane's `QuarantineEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineItem {
    /// Opaque id: 44 lower-case hex digits, ordered by creation time.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// Primary address of the recipient account; absent once that account was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// The address the message was sent to, lower-case.
    pub recipient: String,
    /// The envelope sender; empty for `<>` and for IMAP APPEND.
    pub mail_from: String,
    /// The stage whose pipeline held it (`deliver`, `append`, `post-store`).
    pub stage: String,
    /// The folder it was headed for.
    pub folder: String,
    /// Why it was held.
    pub reason: String,
    /// The Pipeline, `namespace/name`.
    pub pipeline: String,
    /// The step that held it.
    pub step: String,
    /// The Pipeline's compiled revision.
    pub revision: String,
    /// Size, octets.
    pub size: u64,
    /// IMAP flags it gets when released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// INTERNALDATE it gets when released, RFC 3339.
    pub internal_date: String,
    /// When it was held, RFC 3339 UTC.
    pub created_at: String,
}

/// One page of the quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuarantinePage {
    /// Entries, oldest first.
    pub items: Vec<QuarantineItem>,
    /// The `cursor` of the next page; present when this page is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Where a released message went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    /// The former quarantine id.
    pub id: String,
    /// The account it went to.
    pub mailbox: String,
    /// The folder it went to.
    pub folder: String,
    /// UIDVALIDITY of that folder (RFC 9051 §2.3.1.1).
    pub uid_validity: u32,
    /// Its UID there.
    pub uid: u32,
}

/// Query parameters of the quarantine list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuarantineParams {
    /// Only messages for this address (a Mailbox's address or alias).
    pub mailbox: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

fn convert<T: Serialize, U: for<'de> Deserialize<'de>>(t: &T) -> Result<U, ApiError> {
    serde_json::to_value(t)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::internal(&e))
}

/// Lists the tenant's quarantine.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/quarantine",
    operation_id = "listQuarantine",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The Tenant's name"), QuarantineParams),
    responses((status = 200, description = "One page, oldest first.", body = QuarantinePage))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<QuarantineParams>,
) -> Result<Json<QuarantinePage>, ApiError> {
    authorize(&principal, Verb::Read, Group::Quarantine, &tenant)?;
    let limit = params.limit.unwrap_or(QUARANTINE_DEFAULT_LIMIT);
    if !(1..=QUARANTINE_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to {QUARANTINE_MAX_LIMIT}"
        )));
    }
    if params.mailbox.as_ref().is_some_and(|m| m.len() > 254) {
        return Err(ApiError::bad_request("mailbox: longer than 254 characters"));
    }
    let list = backend(&state)?
        .quarantine_list(
            &tenant,
            params.mailbox.as_deref(),
            limit,
            params.cursor.as_deref().filter(|c| !c.is_empty()),
        )
        .await
        .map_err(|e| quarantine_error(&tenant, e))?;
    convert(&list).map(Json)
}

/// One held message's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/quarantine/{id}",
    operation_id = "getQuarantined",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("id" = String, Path, description = "The entry's id")),
    responses((status = 200, description = "The entry.", body = QuarantineItem))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<QuarantineItem>, ApiError> {
    authorize(&principal, Verb::Read, Group::Quarantine, &tenant)?;
    let entry = backend(&state)?
        .quarantine_get(&tenant, &id)
        .await
        .map_err(|e| quarantine_error(&tenant, e))?;
    convert(&entry).map(Json)
}

/// Delivers a held message to the folder it was headed for (or INBOX).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/quarantine/{id}:release",
    operation_id = "releaseQuarantined",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("id" = String, Path, description = "The entry's id")),
    responses(
        (status = 200, description = "Released: where it went.", body = Released),
        (status = 409, description = "Its account was deleted, or the release would exceed the quota.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn release(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Released>, ApiError> {
    authorize(&principal, Verb::Update, Group::Quarantine, &tenant)?;
    let out = backend(&state)?
        .quarantine_release(&tenant, &id)
        .await
        .map_err(|e| quarantine_error(&tenant, e))?;
    tracing::info!(by = %principal.subject, %tenant, %id, "REST: quarantined message released");
    convert(&out).map(Json)
}

/// Drops a held message.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/quarantine/{id}",
    operation_id = "deleteQuarantined",
    tag = "quarantine",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("id" = String, Path, description = "The entry's id")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&principal, Verb::Delete, Group::Quarantine, &tenant)?;
    backend(&state)?
        .quarantine_delete(&tenant, &id)
        .await
        .map_err(|e| quarantine_error(&tenant, e))?;
    tracing::info!(by = %principal.subject, %tenant, %id, "REST: quarantined message deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /tenants/{tenant}/quarantine/{id}:release`, as routed: the segment arrives whole
/// and is split here (see [`super::plugins::action`]).
pub async fn action(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, segment)): Path<(String, String)>,
) -> Result<Json<Released>, ApiError> {
    match segment.rsplit_once(':') {
        Some((id, "release")) => {
            release(State(state), principal, Path((tenant, id.to_owned()))).await
        }
        _ => Err(ApiError::not_found(format!(
            "no such action: POST {segment}:release"
        ))),
    }
}

/// [`backend_error`], with a 503 that says whose quarantine is unavailable: in Kubernetes
/// mode it lives in the tenant's dataplane, which may be down while the API server answers.
fn quarantine_error(tenant: &str, e: BackendError) -> ApiError {
    match e {
        e @ BackendError::Unavailable(_) => {
            ApiError::unavailable(&format!("the quarantine of tenant {tenant:?}"), &e)
        }
        other => backend_error(other),
    }
}
