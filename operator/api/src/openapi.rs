//! The OpenAPI 3.1 document of the facade and the Swagger UI.
//!
//! Operations are collected from the handlers' `#[utoipa::path]` attributes; [`complete`]
//! then adds what every operation shares, from one place, so that every status the
//! service can answer is documented (schemathesis checks each answer against the document):
//! the security requirements (an API key or a bearer token; none for health), and the
//! problem+json error answers: 401 (with `WWW-Authenticate`), 403, 429 (with
//! `Retry-After`) and 503 for authenticated operations, 400, 413, 415 and 422 for those
//! with a request body, 400 for those with query or header parameters, 404 for those with a
//! path parameter, 500 for all.

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Type, schema::ObjectBuilder};
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::{FieldError, PROBLEM_JSON, Problem};
use crate::resources::{ListMeta, ObjectMeta, ResourceList, ResourceObject};

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Path of the Swagger UI.
pub const DOCS_PATH: &str = "/api/v1/docs";

/// Name of the API key security scheme.
pub const API_KEY_SCHEME: &str = "apiKey";
/// Name of the bearer (OIDC JWT) security scheme.
pub const BEARER_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MCP REST API",
        description = "Management facade of MCP (issue 7): API keys, health, tenants, mailboxes, \
            pipelines, plugins, policies, quarantine and migration jobs. Every error \
            is an RFC 9457 problem document (application/problem+json). Authenticate with an \
            `X-API-Key` header or an `Authorization: Bearer` OIDC token.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    // Actions in a segment after a parameter (`{name}:enable`) are routed by hand (the
    // router matches one parameter per segment), so their operations are listed here.
    paths(
        crate::resources::plugins::enable,
        crate::resources::plugins::disable,
        crate::resources::quarantine::release
    ),
    components(schemas(Problem, FieldError, ResourceObject, ObjectMeta, ResourceList, ListMeta)),
    tags(
        (name = "health", description = "Liveness and readiness; no authentication."),
        (name = "apikeys", description = "API keys: the `X-API-Key` credentials."),
        (name = "tenants", description = "Tenants (cluster-scoped `Tenant` resources)."),
        (name = "mailboxes", description = "A tenant's `Mailbox` resources, and their bulk import."),
        (name = "pipelines", description = "A tenant's `Pipeline` resources."),
        (name = "plugins", description = "Built-in plugins and a tenant's `PluginDeployment` resources."),
        (name = "policies", description = "DLP policies: Pipelines of built-in `dlp` steps."),
        (name = "quarantine", description = "Messages a pipeline held in a tenant's quarantine."),
        (name = "migrationjobs", description = "A tenant's `MigrationJob` resources."),
    )
)]
struct ApiDoc;

/// The document before the operations are added: info, tags, the problem schema.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
        .description(Some(description))
        .build()
}

/// The shared error answers, by status: (status, component name, response).
fn error_responses() -> Vec<(&'static str, &'static str, utoipa::openapi::Response)> {
    vec![
        (
            "400",
            "BadRequest",
            problem_response("The request is malformed (e.g. invalid JSON).").build(),
        ),
        (
            "401",
            "Unauthorized",
            problem_response(
                "No usable credential: the X-API-Key or bearer token is missing, malformed, \
                 unknown, inactive or expired (which one is not said).",
            )
            .header(
                "WWW-Authenticate",
                string_header("The accepted schemes (RFC 9110 §11.6.1)."),
            )
            .build(),
        ),
        (
            "403",
            "Forbidden",
            problem_response("The caller's role may not do this.").build(),
        ),
        (
            "404",
            "NotFound",
            problem_response("No such object (or not visible to the caller).").build(),
        ),
        (
            "413",
            "PayloadTooLarge",
            problem_response("The request body is too large: over 1 MiB (10 MiB for a bulk import).").build(),
        ),
        (
            "415",
            "UnsupportedMediaType",
            problem_response("The request body is not application/json.").build(),
        ),
        (
            "422",
            "UnprocessableContent",
            problem_response(
                "The JSON has the wrong shape or invalid values; `errors` lists the fields.",
            )
            .build(),
        ),
        (
            "429",
            "TooManyRequests",
            problem_response("The credential's rate limit is exceeded.")
                .header(
                    "Retry-After",
                    string_header("Seconds to wait before retrying (RFC 9110 §10.2.3)."),
                )
                .build(),
        ),
        (
            "500",
            "InternalError",
            problem_response("An unexpected failure (a bug).").build(),
        ),
        (
            "503",
            "Unavailable",
            problem_response("A dependency (the API key database, the token issuer, the resource backend) is unavailable.")
                .build(),
        ),
    ]
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds the security schemes and requirements and the shared error answers (see the
/// module doc) to `document`.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        API_KEY_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An MCP API key: mcp_<8-character prefix>_<43-character secret>.",
        ))),
    );
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("A JWT of the configured OIDC issuer."))
                .build(),
        ),
    );
    let shared = error_responses();
    for (_, name, response) in &shared {
        components
            .responses
            .insert((*name).to_owned(), RefOr::T(response.clone()));
    }
    let shared_ref = |status: &str| {
        shared
            .iter()
            .find(|(s, _, _)| *s == status)
            .map(|(_, name, _)| RefOr::Ref(Ref::from_response_name(*name)))
    };
    for (path, item) in document.paths.paths.iter_mut() {
        let public = path.starts_with("/api/v1/health/");
        let has_path_params = path.contains('{');
        for op in operations(item) {
            let mut statuses = vec!["500"];
            if public {
                op.security = Some(Vec::new());
            } else {
                op.security = Some(vec![
                    SecurityRequirement::new(API_KEY_SCHEME, Vec::<String>::new()),
                    SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new()),
                ]);
                statuses.extend(["401", "403", "429", "503"]);
            }
            if op.request_body.is_some() {
                statuses.extend(["400", "413", "415", "422"]);
            }
            // A malformed query parameter or header (If-Match) is a 400.
            let has_params = op.parameters.iter().flatten().any(|p| {
                matches!(
                    p,
                    RefOr::T(p) if matches!(
                        p.parameter_in,
                        utoipa::openapi::path::ParameterIn::Query
                            | utoipa::openapi::path::ParameterIn::Header
                    )
                )
            });
            if has_params {
                statuses.push("400");
            }
            if has_path_params {
                statuses.push("404");
            }
            for status in statuses {
                if let Some(response) = shared_ref(status) {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert(response);
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json` (the document) and the Swagger UI under `/api/v1/docs/`
/// (assets vendored in the binary), both without authentication.
pub fn docs_router(document: utoipa::openapi::OpenApi) -> Router {
    Router::from(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, document))
}
