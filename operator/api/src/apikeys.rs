//! `/api/v1/apikeys`: list, create, get, update and delete API keys.
//!
//! Answers never hold a key's hash; the whole key is in the answer to its creation only
//! ([`CreatedApiKey::key`]). Who may do what is [`crate::rbac`]'s: an admin everything; a
//! tenant-admin the tenant-admin keys of its own tenant (others' keys answer 404, as if
//! absent); a viewer nothing (403).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::key::ApiKey;
use crate::auth::{Principal, Role};
use crate::problem::{ApiError, ApiJson, FieldError};
use crate::rbac::{self, Group, Target, Verb};
use crate::store::{ApiKeyPatch, ApiKeyRecord, NewApiKey, StoreError, now_secs};

/// Path of the collection.
pub const PATH: &str = "/api/v1/apikeys";

/// Longest key name, characters.
pub const MAX_NAME_LEN: usize = 63;

/// A role as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RoleName {
    /// Everything on every tenant.
    Admin,
    /// The resources of one tenant (`tenant`).
    TenantAdmin,
    /// Read-only, every tenant except API keys.
    Viewer,
}

/// An API key as listed: everything but the secret and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// Id (path segment of the key's URL).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The key's lookup prefix: the 8 characters after `mcp_`, not secret; logs name the
    /// key `apikey:<prefix>`.
    pub prefix: String,
    /// Its role.
    pub role: RoleName,
    /// The tenant of a `tenant-admin` key; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Whether it is accepted.
    pub active: bool,
    /// Creation time, RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Expiry, RFC 3339 UTC; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Last use, RFC 3339 UTC, at most a minute stale; absent: never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// The answer to a creation: the key's metadata and, this once, the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The key's metadata.
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The whole key (`mcp_<prefix>_<secret>`), for the `X-API-Key` header. Shown only
    /// here: MCP keeps only its SHA-256.
    pub key: String,
}

/// `GET /api/v1/apikeys` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys the caller may see, by id.
    pub items: Vec<ApiKeyView>,
}

/// `POST /api/v1/apikeys` body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// Unique name: 1 to 63 characters of `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,63}$", min_length = 1, max_length = 63)]
    pub name: String,
    /// Its role.
    pub role: RoleName,
    /// The tenant: required for `tenant-admin`, refused otherwise. A lower-case DNS label
    /// (RFC 1123), at most 63 characters.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length = 63)]
    pub tenant: Option<String>,
    /// Expiry, RFC 3339, in the future; absent: never.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `PATCH /api/v1/apikeys/{id}` body: the fields to change (JSON merge patch, RFC 7386).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiKey {
    /// New name: 1 to 63 characters of `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,63}$", min_length = 1, max_length = 63)]
    pub name: Option<String>,
    /// Accept the key or not.
    #[serde(default)]
    pub active: Option<bool>,
    /// New expiry, RFC 3339; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<String>>,
}

/// Tells `null` (`Some(None)`) from an absent field (`None`, via `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(r: &ApiKeyRecord) -> Self {
        let (role, tenant) = match &r.role {
            Role::Admin => (RoleName::Admin, None),
            Role::TenantAdmin(t) => (RoleName::TenantAdmin, Some(t.clone())),
            Role::Viewer => (RoleName::Viewer, None),
        };
        Self {
            id: r.id,
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            role,
            tenant,
            active: r.active,
            created_at: rfc3339(r.created_at),
            expires_at: r.expires_at.map(rfc3339),
            last_used_at: r.last_used_at.map(rfc3339),
        }
    }
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Checks a key name.
fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        errors.push(field(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        errors.push(field(
            "name",
            "may hold only A-Z, a-z, 0-9, '.', '_' and '-'",
        ));
    }
}

/// Whether `t` is a lower-case RFC 1123 DNS label (a Tenant's `metadata.name`).
pub fn is_tenant_name(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Parses an RFC 3339 time into Unix seconds.
fn parse_time(name: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.timestamp()),
        Err(_) => {
            errors.push(field(
                name,
                "must be an RFC 3339 time, e.g. 2030-01-31T12:00:00Z",
            ));
            None
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(what) => {
            ApiError::conflict(format!("an API key with this {what} exists"))
        }
        StoreError::Corrupt { .. } => ApiError::internal(&e),
        other => ApiError::unavailable("the API key database", &other),
    }
}

fn forbidden(e: rbac::Denied) -> ApiError {
    ApiError::forbidden(e.0)
}

/// The key `id` if the caller may `verb` it: 403 first when the caller's role may not
/// `verb` any key (a viewer: it learns nothing about which ids exist), then 404 when there
/// is no such key or the caller cannot see it (a tenant-admin, another tenant's key), 403
/// when it sees it but may not `verb` it.
async fn visible(
    state: &AppState,
    principal: &Principal,
    id: &str,
    verb: Verb,
) -> Result<ApiKeyRecord, ApiError> {
    let own = principal.role.tenant().map_or(Target::All, Target::Tenant);
    rbac::authorize(&principal.role, verb, Group::ApiKeys, own).map_err(forbidden)?;
    let not_found = || ApiError::not_found(format!("API key {id:?} not found"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let record = state
        .auth
        .keys()
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let target = rbac::key_target(&record.role);
    if let Err(denied) = rbac::authorize(&principal.role, Verb::Read, Group::ApiKeys, target) {
        return Err(match principal.role {
            Role::TenantAdmin(_) => not_found(),
            _ => forbidden(denied),
        });
    }
    rbac::authorize(&principal.role, verb, Group::ApiKeys, target).map_err(forbidden)?;
    Ok(record)
}

/// Lists the API keys the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/apikeys",
    operation_id = "listApiKeys",
    tag = "apikeys",
    responses((status = 200, description = "The keys: every key for an admin, the keys of its tenant for a tenant-admin.", body = ApiKeyList))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<ApiKeyList>, ApiError> {
    let tenant = principal.role.tenant();
    let target = tenant.map_or(Target::All, Target::Tenant);
    rbac::authorize(&principal.role, Verb::Read, Group::ApiKeys, target).map_err(forbidden)?;
    let keys = state.auth.keys().list(tenant).await.map_err(store_error)?;
    Ok(Json(ApiKeyList {
        items: keys.iter().map(ApiKeyView::from).collect(),
    }))
}

/// Creates an API key; the answer holds the whole key, once.
#[utoipa::path(
    post,
    path = "/api/v1/apikeys",
    operation_id = "createApiKey",
    tag = "apikeys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created. `key` is shown only in this answer.", body = CreatedApiKey,
         headers(("Location" = String, description = "URL of the new key"))),
        (status = 409, description = "The name is in use.", body = crate::problem::Problem,
         content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<Response, ApiError> {
    // A role that may create no key at all learns nothing about the body.
    let own = principal.role.tenant().map_or(Target::All, Target::Tenant);
    rbac::authorize(&principal.role, Verb::Create, Group::ApiKeys, own).map_err(forbidden)?;
    let mut errors = Vec::new();
    check_name(&body.name, &mut errors);
    let role = match (body.role, body.tenant) {
        (RoleName::TenantAdmin, Some(t)) if is_tenant_name(&t) => Some(Role::TenantAdmin(t)),
        (RoleName::TenantAdmin, Some(_)) => {
            errors.push(field(
                "tenant",
                "must be a lower-case DNS label of at most 63 characters",
            ));
            None
        }
        (RoleName::TenantAdmin, None) => {
            errors.push(field("tenant", "is required for role tenant-admin"));
            None
        }
        (_, Some(_)) => {
            errors.push(field("tenant", "is only allowed with role tenant-admin"));
            None
        }
        (RoleName::Admin, None) => Some(Role::Admin),
        (RoleName::Viewer, None) => Some(Role::Viewer),
    };
    let now = now_secs();
    let expires_at = body
        .expires_at
        .as_deref()
        .and_then(|t| parse_time("expiresAt", t, &mut errors));
    if expires_at.is_some_and(|e| e <= now) {
        errors.push(field("expiresAt", "must be in the future"));
    }
    let role = match role {
        Some(role) if errors.is_empty() => role,
        _ => return Err(ApiError::invalid(errors)),
    };
    rbac::authorize(
        &principal.role,
        Verb::Create,
        Group::ApiKeys,
        rbac::key_target(&role),
    )
    .map_err(forbidden)?;
    rbac::may_grant(&principal.role, &role).map_err(forbidden)?;

    let key = ApiKey::generate().map_err(|e| ApiError::internal(&e))?;
    let record = state
        .auth
        .keys()
        .insert(
            &NewApiKey {
                name: body.name,
                prefix: key.prefix().to_owned(),
                hash: key.hash(),
                role,
                expires_at,
            },
            now,
        )
        .await
        .map_err(store_error)?;
    tracing::info!(by = %principal.subject, key = %format!("apikey:{}", record.prefix), "REST: API key created");
    let location = HeaderValue::from_str(&format!("{PATH}/{}", record.id))
        .map_err(|e| ApiError::internal(&e))?;
    let body = CreatedApiKey {
        api_key: ApiKeyView::from(&record),
        key: key.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(body)).into_response())
}

/// One API key.
#[utoipa::path(
    get,
    path = "/api/v1/apikeys/{id}",
    operation_id = "getApiKey",
    tag = "apikeys",
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "The key.", body = ApiKeyView))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let record = visible(&state, &principal, &id, Verb::Read).await?;
    Ok(Json(ApiKeyView::from(&record)))
}

/// Changes a key's name, active flag or expiry.
#[utoipa::path(
    patch,
    path = "/api/v1/apikeys/{id}",
    operation_id = "updateApiKey",
    tag = "apikeys",
    params(("id" = String, Path, description = "The key's id")),
    request_body = UpdateApiKey,
    responses(
        (status = 200, description = "The changed key.", body = ApiKeyView),
        (status = 409, description = "The new name is in use.", body = crate::problem::Problem,
         content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateApiKey>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let record = visible(&state, &principal, &id, Verb::Update).await?;
    let mut errors = Vec::new();
    if let Some(name) = &body.name {
        check_name(name, &mut errors);
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(parse_time("expiresAt", t, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let patch = ApiKeyPatch {
        name: body.name,
        active: body.active,
        expires_at,
    };
    let updated = state
        .auth
        .keys()
        .update(record.id, &patch)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("API key {id:?} not found")))?;
    tracing::info!(by = %principal.subject, key = %format!("apikey:{}", updated.prefix), "REST: API key updated");
    Ok(Json(ApiKeyView::from(&updated)))
}

/// Deletes a key; requests with it are refused from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/apikeys/{id}",
    operation_id = "deleteApiKey",
    tag = "apikeys",
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = visible(&state, &principal, &id, Verb::Delete).await?;
    if !state
        .auth
        .keys()
        .delete(record.id)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::not_found(format!("API key {id:?} not found")));
    }
    tracing::info!(by = %principal.subject, key = %format!("apikey:{}", record.prefix), "REST: API key deleted");
    Ok(StatusCode::NO_CONTENT)
}
