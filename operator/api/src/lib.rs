//! The REST management facade of MCP (`/api/v1`, issue 7, DESIGN.md §1).
//!
//! One axum service, served by the operator in Kubernetes mode and by `mcp standalone` on
//! 127.0.0.1:8080. It is a thin, validated door onto the same declarative resources
//! (`Tenant`, `Mailbox`, `Pipeline`, `PluginDeployment`, `MigrationJob`): in Kubernetes
//! its writes are server-side applies (field manager `mcp-rest`) and its reads come from
//! the API server; standalone, the same endpoints are served from the local resource
//! store, applied through the same code as the YAML directory.
//!
//! Layout (one job per module):
//! - [`auth`]: who is calling ([`auth::Principal`]) and with which [`auth::Role`]; API keys
//!   ([`auth::key`]), the OIDC hook ([`auth::BearerVerifier`]), per-key rate limits.
//! - [`rbac`]: the table of what each role may do.
//! - [`store`]: the `api_keys` table (SQLite or PostgreSQL); [`bootstrap`]: the first admin
//!   key.
//! - [`problem`]: RFC 9457 problem documents for every error.
//! - [`health`], [`apikeys`]: health and API keys; [`resources`]: the resource endpoints
//!   (tenants, mailboxes, ...), served from a [`backend::Backend`] (Kubernetes or the
//!   standalone resource store).
//! - [`facade`]: start-up shared by both modes (key database, bootstrap key, router).
//! - [`openapi`]: the OpenAPI 3.1 document (`/api/v1/openapi.json`) and Swagger UI
//!   (`/api/v1/docs/`).
//!
//! [`Api::router`] assembles it all; [`openapi_document`] is the document alone
//! (`cargo run -p mcp-api --example openapi` prints it).

pub mod apikeys;
pub mod auth;
pub mod backend;
pub mod bootstrap;
pub mod facade;
pub mod health;
pub mod name_guard;
pub mod openapi;
pub mod problem;
pub mod rbac;
pub mod resources;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::post;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticator;
use crate::backend::Backend;

/// Prefix of every path of the facade.
pub const BASE_PATH: &str = "/api/v1";
/// Largest request body accepted, octets (413 above).
pub const MAX_BODY: usize = 1024 * 1024;

/// Routes without authentication: health.
fn public_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
}

/// Routes that need a [`auth::Principal`] (the caller adds the authentication layer).
fn protected_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(apikeys::list, apikeys::create))
        .routes(routes!(apikeys::get, apikeys::update, apikeys::delete))
        .routes(routes!(
            resources::tenants::list,
            resources::tenants::create
        ))
        .routes(routes!(
            resources::tenants::get,
            resources::tenants::apply,
            resources::tenants::delete
        ))
        .routes(routes!(
            resources::mailboxes::list,
            resources::mailboxes::create
        ))
        .routes(routes!(
            resources::mailboxes::get,
            resources::mailboxes::apply,
            resources::mailboxes::delete
        ))
        .routes(routes!(
            resources::pipelines::list,
            resources::pipelines::create
        ))
        .routes(routes!(
            resources::pipelines::get,
            resources::pipelines::apply,
            resources::pipelines::delete
        ))
        .routes(routes!(
            resources::plugins::list,
            resources::plugins::create
        ))
        .routes(routes!(
            resources::plugins::get,
            resources::plugins::apply,
            resources::plugins::delete
        ))
        .route(
            "/api/v1/tenants/{tenant}/plugins/{name}",
            post(resources::plugins::action),
        )
        .routes(routes!(
            resources::policies::list,
            resources::policies::create
        ))
        .routes(routes!(
            resources::policies::get,
            resources::policies::apply,
            resources::policies::delete
        ))
        .routes(routes!(resources::quarantine::list))
        .routes(routes!(
            resources::quarantine::get,
            resources::quarantine::delete
        ))
        .route(
            "/api/v1/tenants/{tenant}/quarantine/{id}",
            post(resources::quarantine::action),
        )
        .routes(routes!(
            resources::migrations::list,
            resources::migrations::create
        ))
        .routes(routes!(
            resources::migrations::get,
            resources::migrations::delete
        ))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(resources::import::import))
                .layer(DefaultBodyLimit::max(resources::import::MAX_IMPORT_BODY)),
        )
}

/// The complete OpenAPI 3.1 document as JSON, exactly as served at `/api/v1/openapi.json`
/// (no state needed: for tools, docs and tests): [`utoipa_document`] with the `spec` and
/// `status` schemas of the CRDs ([`openapi::finish`]).
pub fn openapi_document() -> serde_json::Value {
    openapi::finish(&utoipa_document())
}

/// The document as utoipa collects it from the handlers, before [`openapi::finish`] adds
/// the CRD schemas (so its `<Kind>Spec`/`<Kind>Status` references do not resolve yet).
pub fn utoipa_document() -> utoipa::openapi::OpenApi {
    let mut document = OpenApiRouter::with_openapi(openapi::base())
        .merge(public_routes())
        .merge(protected_routes())
        .into_openapi();
    openapi::complete(&mut document);
    document
}

/// What the handlers share.
pub struct AppState {
    /// Authentication, the API key store and rate limits.
    pub auth: Arc<Authenticator>,
    /// Where resources live; `None`: the resource endpoints answer 503.
    pub backend: Option<Arc<dyn Backend>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("auth", &self.auth)
            .field("backend", &self.backend.is_some())
            .finish()
    }
}

/// The facade, ready to be turned into a router.
#[derive(Debug)]
pub struct Api {
    state: Arc<AppState>,
}

impl Api {
    /// A facade authenticating with `auth`, without a resource backend.
    pub fn new(auth: Authenticator) -> Self {
        Self {
            state: Arc::new(AppState {
                auth: Arc::new(auth),
                backend: None,
            }),
        }
    }

    /// Serves the resource endpoints from `backend`, behind a [`name_guard::NameGuard`] (a
    /// tenant or object name no object can have is 404 before `backend` sees it).
    pub fn backend(self, backend: Arc<dyn Backend>) -> Self {
        Self {
            state: Arc::new(AppState {
                auth: Arc::clone(&self.state.auth),
                backend: Some(Arc::new(name_guard::NameGuard(backend))),
            }),
        }
    }

    /// The facade's router: every route under [`BASE_PATH`], the OpenAPI document, the
    /// Swagger UI, problem documents for every error, bodies up to [`MAX_BODY`].
    pub fn router(self) -> Router {
        let protected = protected_routes().route_layer(middleware::from_fn_with_state(
            Arc::clone(&self.state.auth),
            auth::require_principal,
        ));
        let (router, mut document) = OpenApiRouter::with_openapi(openapi::base())
            .merge(public_routes())
            .merge(protected)
            .with_state(Arc::clone(&self.state))
            .split_for_parts();
        openapi::complete(&mut document);
        router
            .merge(openapi::docs_router(openapi::finish(&document)))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(middleware::from_fn(problem::problem_layer))
    }
}
