//! The admin API of `mcp dataplane`: the operator provisions a Tenant's accounts through it
//! (contract types in [`mcp_crds::dataplane`]).
//!
//! HTTPS ([`listener`]) with a bearer token ([`token`]) on every request. Paths, under
//! [`ADMIN_PATH`], with `{address}` percent-encoded as one path segment:
//!
//! | Request | Answer |
//! |---|---|
//! | `PUT {ADMIN_PATH}/{address}`, body [`AccountRequest`] (`application/json`) | 200 [`AccountState`] |
//! | `GET {ADMIN_PATH}/{address}` | 200 [`AccountState`], or 404 |
//! | `DELETE {ADMIN_PATH}/{address}?retention=Retain\|Delete` | 200 [`DeleteOutcome`] |
//! | `GET {QUARANTINE_PATH}?mailbox=ADDR&limit=N&after=ID` | 200 [`QuarantineList`](mcp_crds::dataplane::QuarantineList) |
//! | `GET {QUARANTINE_PATH}/{id}` (`?raw=1`: the message) | 200 [`QuarantineEntry`](mcp_crds::dataplane::QuarantineEntry), or 404 |
//! | `GET {QUARANTINE_PATH}/{id}/message` | 200 `message/rfc822`, or 404 |
//! | `POST {QUARANTINE_PATH}/{id}/release` | 200 [`ReleaseOutcome`](mcp_crds::dataplane::ReleaseOutcome), 404, or 409 (account deleted) |
//! | `DELETE {QUARANTINE_PATH}/{id}` | 204, or 404 |
//! | `GET {PIPELINES_PATH}` | 200 [`PipelinesState`](mcp_crds::dataplane::PipelinesState) |
//! | `GET {PLUGINS_PATH}` | 200 [`PluginsState`](mcp_crds::dataplane::PluginsState) |
//!
//! Every error is a [`Problem`](mcp_crds::dataplane::Problem) (`application/problem+json`)
//! whose `detail` names the field at fault: 400 for a malformed request or an invalid field,
//! 401 without the right token (with `WWW-Authenticate: Bearer`), 404 for an unknown path
//! or account, 405 for another method, 409 for an address that belongs to another tenant
//! in a shared store or an alias that is another account's address or alias, 413 for a body over [`MAX_BODY`], 415 for a body that is not JSON,
//! 500 when password hashing fails, 503 when the store fails (the operator retries).
//!
//! `PUT` provisions through the same code as the standalone mode's resources
//! ([`apply::desired_account`] and [`apply::apply_one`]): the account gets the default
//! special-use folders, and an unchanged request (same keyed digest) writes nothing and
//! hashes nothing. `DELETE` with `Retain` keeps folders and messages and makes login
//! impossible ([`MetadataStore::retain_account`]); a later `PUT` of the address finds them.
//! `DELETE` with `Delete` removes the account, its folders and messages from the metadata;
//! their blobs stay until orphan collection.

pub mod listener;
pub mod problem;
pub mod quarantine;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use mcp_crds::dataplane::{
    ADMIN_PATH, AccountRequest, AccountState, DeleteOutcome, PIPELINES_PATH, PLUGINS_PATH,
    QUARANTINE_PATH, QuotaLimits,
};
use mcp_crds::mailbox::Retention;

use crate::pipeline::Pipelines;
use crate::plugin_host::PluginHost;
use crate::standalone::apply::{self, Applied, ApplyError, DigestKey};
use crate::store::{AccountRecord, BlobStore, MetadataStore, StoreError};

pub use listener::serve;
pub use problem::{ApiError, PROBLEM_JSON};
pub use token::AdminToken;

/// Largest request body accepted, octets.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest address accepted, characters (the Mailbox CRD's limit).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Most aliases accepted (the Mailbox CRD's limit).
pub const MAX_ALIASES: usize = 100;
/// Longest display name accepted, characters (the Mailbox CRD's limit).
pub const MAX_DISPLAY_NAME_LEN: usize = 256;
/// Most `PUT`s provisioning at once; more wait. Each may hash a password with argon2id
/// (19 MiB and a CPU for a few tens of milliseconds), so a burst from the operator must not
/// take all memory or starve IMAP logins.
pub const MAX_CONCURRENT_PUTS: usize = 4;

/// What the handlers need: the tenant they serve and its store.
#[derive(Clone, Debug)]
pub struct Admin {
    /// Metadata store.
    pub store: MetadataStore,
    /// Blob store (quarantined messages' bodies).
    pub blobs: BlobStore,
    /// The Tenant's name: requests for other tenants are refused.
    pub tenant: String,
    /// The Tenant's mail domains (lower-case): every address and alias is in one.
    pub domains: Vec<String>,
    /// Key of the account digests (kept in the data directory).
    pub key: DigestKey,
    /// The pipelines in force, reported by `GET {PIPELINES_PATH}`.
    pub pipelines: Arc<Pipelines>,
    /// The external plugins, reported by `GET {PLUGINS_PATH}`.
    pub plugins: Arc<PluginHost>,
}

struct AppState {
    admin: Admin,
    token: AdminToken,
    puts: tokio::sync::Semaphore,
}

/// The admin API's routes, every one behind the bearer `token`.
pub fn router(admin: Admin, token: AdminToken) -> Router {
    let state = Arc::new(AppState {
        admin,
        token,
        puts: tokio::sync::Semaphore::new(MAX_CONCURRENT_PUTS),
    });
    let routes = Router::new()
        .route(
            &format!("{ADMIN_PATH}/{{address}}"),
            put(put_account).get(get_account).delete(delete_account),
        )
        .route(PIPELINES_PATH, get(get_pipelines))
        .route(PLUGINS_PATH, get(get_plugins))
        .route(QUARANTINE_PATH, get(quarantine::list))
        .route(
            &format!("{QUARANTINE_PATH}/{{id}}"),
            get(quarantine::get_entry).delete(quarantine::delete),
        )
        .route(
            &format!("{QUARANTINE_PATH}/{{id}}/message"),
            get(quarantine::get_message),
        )
        .route(
            &format!("{QUARANTINE_PATH}/{{id}}/release"),
            post(quarantine::release),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(Arc::clone(&state));
    // Authentication wraps the routes as a whole, so it runs before routing: an
    // unauthenticated request learns nothing, not even which methods a path allows.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// `GET {PLUGINS_PATH}` alone, unauthenticated: what `mcp standalone` serves next to
/// `/metrics` (it has no admin API). The answer is
/// [`PluginsState`](mcp_crds::dataplane::PluginsState).
pub fn plugins_router(plugins: Arc<PluginHost>) -> Router {
    Router::new().route(
        PLUGINS_PATH,
        get(move || {
            let plugins = Arc::clone(&plugins);
            async move { json(&plugins.state()) }
        }),
    )
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "{}: no such endpoint (the admin API serves {ADMIN_PATH}/{{address}} and \
             {QUARANTINE_PATH})",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let allow = if path == QUARANTINE_PATH || path.ends_with("/message") {
        "GET"
    } else if path.ends_with("/release") {
        "POST"
    } else if path.starts_with(QUARANTINE_PATH) {
        "GET, DELETE"
    } else {
        "PUT, GET, DELETE"
    };
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method}: use {allow}"),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static(allow),
    );
    response
}

/// Refuses a request without `Authorization: Bearer <token>` (RFC 6750 §2.1), then logs
/// the request's outcome (never the token or the body).
async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let presented = match (values.next(), values.next()) {
        (Some(value), None) => bearer_token(value.as_bytes()),
        _ => None,
    };
    let refused = match presented {
        None => Some(None),
        Some(token) if !state.token.matches(token) => Some(Some("Bearer error=\"invalid_token\"")),
        Some(_) => None,
    };
    if let Some(challenge) = refused {
        tracing::warn!(%method, %path, "admin API: request refused: missing or wrong bearer token");
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            detail: "Authorization: a valid bearer token is required".into(),
            challenge: Some(challenge.unwrap_or("Bearer")),
        }
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if response.status().is_server_error() {
        tracing::warn!(%method, %path, status, "admin API request failed");
    } else {
        tracing::info!(%method, %path, status, "admin API request");
    }
    response
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Decodes one percent-encoded path segment strictly: `%` must start two hex digits, and
/// the result must be UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Admin {
    /// The address of the request path, lower-case, checked: `local@domain` in one of the
    /// tenant's domains.
    fn path_address(&self, uri: &Uri) -> Result<String, ApiError> {
        let segment = uri
            .path()
            .strip_prefix(ADMIN_PATH)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or("");
        let address = percent_decode(segment).ok_or_else(|| {
            ApiError::bad_request("address: the path segment is not valid percent-encoded UTF-8")
        })?;
        if address.chars().count() > MAX_ADDRESS_LEN {
            return Err(ApiError::bad_request(format!(
                "address: longer than {MAX_ADDRESS_LEN} characters"
            )));
        }
        let spec = mcp_crds::MailboxSpec {
            tenant: self.tenant.clone(),
            address,
            ..Default::default()
        };
        apply::check_addresses(&spec, &self.domains)
            .map_err(|e| ApiError::bad_request(format!("address: {}", e.message)))?;
        Ok(spec.address.to_lowercase())
    }

    /// The account at `address` if it belongs to this tenant (accounts of another tenant
    /// in a shared store are invisible here).
    async fn own_account(&self, address: &str) -> Result<Option<AccountRecord>, ApiError> {
        let account = self
            .store
            .account_by_address(address)
            .await
            .map_err(store_unavailable)?;
        Ok(account.filter(|a| a.tenant == self.tenant))
    }

    /// The [`AccountState`] of `account`.
    async fn state(
        &self,
        account: &AccountRecord,
        created: bool,
        updated: bool,
    ) -> Result<AccountState, ApiError> {
        let usage = self
            .store
            .account_usage(account.id)
            .await
            .map_err(store_unavailable)?;
        Ok(AccountState {
            address: account.address.clone(),
            active: account.active,
            created,
            updated,
            folders: usage.folders,
            messages: usage.messages,
            bytes: usage.bytes,
            quota: QuotaLimits {
                storage: account.quota_storage,
                messages: account.quota_messages,
            },
        })
    }
}

fn store_unavailable(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "admin API: store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the metadata store failed; retry later ({e})"),
    )
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (StatusCode::OK, [(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialise the answer: {e}"),
        )
        .into_response(),
    }
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The body, at most [`MAX_BODY`] octets.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than {MAX_BODY} octets"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("body: cannot be read: {e}")))?;
        if out.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Parses an [`AccountRequest`], naming the field of any error: unknown fields at any
/// depth are errors too (the Mailbox types ignore them otherwise).
fn parse_request(body: &[u8]) -> Result<AccountRequest, ApiError> {
    // serde also reads a struct from a JSON array of its fields in order; only an object
    // is the documented shape.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request("body: must be a JSON object"));
    }
    let mut unknown: Option<String> = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut note = |path: serde_ignored::Path<'_>| {
        unknown.get_or_insert_with(|| mcp_api::resources::ignored_path(&path));
    };
    let ignored = serde_ignored::Deserializer::new(&mut de, &mut note);
    let request: AccountRequest = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request(format!("body: {inner}"))
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if let Some(path) = unknown {
        return Err(ApiError::bad_request(format!("{path}: unknown field")));
    }
    Ok(request)
}

/// Checks of a request that the API server would make for a Mailbox resource (its schema)
/// or that only the admin API needs (tenant and path).
fn check_request(admin: &Admin, address: &str, r: &AccountRequest) -> Result<(), ApiError> {
    let bad =
        |field: &str, message: String| Err(ApiError::bad_request(format!("{field}: {message}")));
    if r.tenant != admin.tenant {
        return bad(
            "tenant",
            format!(
                "{:?} is not this dataplane's tenant {:?}",
                r.tenant, admin.tenant
            ),
        );
    }
    let spec = &r.spec;
    if spec.tenant != admin.tenant {
        return bad(
            "spec.tenant",
            format!(
                "{:?} is not this dataplane's tenant {:?}",
                spec.tenant, admin.tenant
            ),
        );
    }
    if spec.address.chars().count() > MAX_ADDRESS_LEN {
        return bad(
            "spec.address",
            format!("longer than {MAX_ADDRESS_LEN} characters"),
        );
    }
    if spec.address.to_lowercase() != address {
        return bad(
            "spec.address",
            format!(
                "{:?} is not the address of the path {address:?}",
                spec.address
            ),
        );
    }
    if spec.aliases.len() > MAX_ALIASES {
        return bad("spec.aliases", format!("more than {MAX_ALIASES} aliases"));
    }
    if let Some(a) = spec
        .aliases
        .iter()
        .find(|a| a.chars().count() > MAX_ADDRESS_LEN)
    {
        return bad(
            "spec.aliases",
            format!("{a:?} is longer than {MAX_ADDRESS_LEN} characters"),
        );
    }
    if spec
        .display_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_DISPLAY_NAME_LEN)
    {
        return bad(
            "spec.displayName",
            format!("longer than {MAX_DISPLAY_NAME_LEN} characters"),
        );
    }
    let credentials = &spec.credentials;
    if credentials.external.is_some() {
        return bad(
            "spec.credentials.external",
            "external identity providers (OIDC, LDAP) are not implemented yet; use secretRef"
                .into(),
        );
    }
    if credentials.secret_ref.is_none() {
        return bad(
            "spec.credentials",
            "one of secretRef and external is required".into(),
        );
    }
    Ok(())
}

async fn put_account(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let admin = &state.admin;
    let (parts, body) = request.into_parts();
    let address = admin.path_address(&parts.uri)?;
    if !is_json(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: the body must be application/json",
        ));
    }
    let body = read_body(&parts.headers, body).await?;
    let request = parse_request(&body)?;
    check_request(admin, &address, &request)?;
    let desired = apply::desired_account(
        "admin API",
        &admin.domains,
        &request.spec,
        &request.labels,
        &request.password,
        &admin.key,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(other) = admin
        .store
        .account_by_address(&address)
        .await
        .map_err(store_unavailable)?
        .filter(|a| a.tenant != admin.tenant)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "address: {address:?} belongs to tenant {:?} in this store",
                other.tenant
            ),
        ));
    }
    // The semaphore is never closed, so acquiring only waits.
    let _permit = state.puts.acquire().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
    })?;
    let (applied, record) =
        apply::apply_one(&admin.store, &desired)
            .await
            .map_err(|e| match e {
                ApplyError::Store {
                    source: source @ StoreError::AddressTaken { .. },
                    ..
                } => {
                    let field = match &source {
                        StoreError::AddressTaken {
                            address, account, ..
                        } if address == account => "spec.address",
                        _ => "spec.aliases",
                    };
                    ApiError::new(StatusCode::CONFLICT, format!("{field}: {source}"))
                }
                ApplyError::Store { source, .. } => store_unavailable(source),
                other => {
                    tracing::error!(error = %other, "admin API: provisioning failed");
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
                }
            })?;
    let answer = admin
        .state(
            &record,
            applied == Applied::Created,
            applied == Applied::Updated,
        )
        .await?;
    Ok(json(&answer))
}

/// `GET {PIPELINES_PATH}`: the Pipelines in force and the last refused change
/// ([`mcp_crds::dataplane::PipelinesState`]). Query parameters are refused.
async fn get_pipelines(State(state): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(ApiError::bad_request(
            "query: this endpoint takes no parameters",
        ));
    }
    Ok(json(&state.admin.pipelines.state()))
}

async fn get_plugins(State(state): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(ApiError::bad_request(
            "query: this endpoint takes no parameters",
        ));
    }
    Ok(json(&state.admin.plugins.state()))
}

async fn get_account(State(state): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    let admin = &state.admin;
    let address = admin.path_address(&uri)?;
    let account = admin.own_account(&address).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("address: no account {address:?}"),
        )
    })?;
    Ok(json(&admin.state(&account, false, false).await?))
}

/// The `retention` query parameter, the only one accepted.
fn retention(uri: &Uri) -> Result<Retention, ApiError> {
    let params = quarantine::query_params(uri, &["retention"])?;
    match params.first().map(|(_, v)| v.as_str()) {
        Some("Retain") => Ok(Retention::Retain),
        Some("Delete") => Ok(Retention::Delete),
        Some(other) => Err(ApiError::bad_request(format!(
            "retention: {other:?} is neither Retain nor Delete"
        ))),
        None => Err(ApiError::bad_request(
            "retention: required, Retain or Delete",
        )),
    }
}

async fn delete_account(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let admin = &state.admin;
    let address = admin.path_address(&uri)?;
    let retention = retention(&uri)?;
    let existed = match admin.own_account(&address).await? {
        None => false,
        Some(account) => {
            let result = match retention {
                Retention::Retain => admin.store.retain_account(account.id).await.map(|_| ()),
                Retention::Delete => admin.store.delete_account(account.id).await,
            };
            match result {
                // Deleted by a concurrent request since the lookup: the outcome is the same.
                Ok(()) | Err(StoreError::NoSuchAccount) => true,
                Err(e) => return Err(store_unavailable(e)),
            }
        }
    };
    if existed {
        tracing::info!(%address, ?retention, "account removed");
    }
    Ok(json(&DeleteOutcome {
        address,
        existed,
        retention,
    }))
}
