//! The OpenAPI 3.1 document of the facade and the Swagger UI.
//!
//! Operations are collected from the handlers' `#[utoipa::path]` attributes; [`complete`]
//! then adds what every operation shares, from one place, so that every status the
//! service can answer is documented (schemathesis checks each answer against the document):
//! the security requirements (an API key or a bearer token; none for health), and the
//! problem+json error answers: 401 (with `WWW-Authenticate`), 403, 429 (with
//! `Retry-After`) and 503 for authenticated operations, 400, 413, 415 and 422 for those
//! with a request body, 400 for those with query or header parameters, 400 (a segment that
//! is not UTF-8) and 404 for those with a path parameter, 500 for all.
//!
//! [`finish`] then turns the document into JSON and adds, from each kind's
//! CustomResourceDefinition ([`crd_schemas`]), the `<Kind>Spec` and `<Kind>Status`
//! components that the kinds' object schemas ([`crate::resources::kinds`]) refer to, so a
//! client sees the real shape of `spec` and `status`.

use axum::Router;
use serde_json::{Map, Value, json};
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
                // A path segment that is not UTF-8 once percent-decoded is axum's 400.
                statuses.extend(["400", "404"]);
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

/// The `spec` and `status` schemas of the five kinds, as components: `(name, schema)` with
/// names `<Kind>Spec` and `<Kind>Status` (`MailboxSpec`, ...), taken from the
/// `openAPIV3Schema` of each CRD of `mcp_crds::manifests::all()` and made JSON Schema 2020-12
/// (OpenAPI 3.1) by [`to_json_schema`].
pub fn crd_schemas() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for crd in mcp_crds::manifests::all() {
        let kind = crd.spec.names.kind.clone();
        let Ok(crd) = serde_json::to_value(&crd) else {
            continue;
        };
        let root = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties")
            .cloned()
            .unwrap_or(Value::Null);
        for (part, suffix) in [("spec", "Spec"), ("status", "Status")] {
            if let Some(schema) = root.get(part) {
                let mut schema = schema.clone();
                to_json_schema(&mut schema);
                out.push((format!("{kind}{suffix}"), schema));
            }
        }
    }
    out
}

/// Rewrites a CRD schema node (OpenAPI 3.0 with Kubernetes extensions) as JSON Schema
/// 2020-12, recursively: `nullable: true` becomes a `"null"` type (and enum member);
/// `x-kubernetes-int-or-string` becomes `anyOf` integer or string; an object with
/// `properties` refuses other members (`additionalProperties: false`: the facade answers
/// unknown fields with 422, and the API server prunes them), unless it preserves unknown
/// fields. The `x-kubernetes-*` members stay (annotations).
pub fn to_json_schema(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(to_json_schema);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            to_json_schema(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = obj.get_mut(key) {
            children.iter_mut().for_each(to_json_schema);
        }
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !obj.contains_key("anyOf")
    {
        obj.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !preserve && !obj.contains_key("additionalProperties") {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.remove("nullable") == Some(Value::Bool(true)) {
        match obj.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                obj.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                types.push(json!("null"));
            }
            _ => {
                // No type (int-or-string): wrap whatever it allows.
                if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
                    any.push(json!({"type": "null"}));
                }
            }
        }
        if let Some(Value::Array(values)) = obj.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
}

/// The served document: `document` as JSON, with the [`crd_schemas`] added to
/// `components.schemas` (they never replace a schema of the same name: a clash is a bug
/// that `tests::every_reference_resolves_and_no_crd_schema_clashes` reports) and the
/// [`add_links`].
pub fn finish(document: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(document).unwrap_or_else(|_| json!({}));
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        for (name, schema) in crd_schemas() {
            schemas.entry(name).or_insert(schema);
        }
    } else if let Some(Value::Object(root)) = Some(&mut doc) {
        let schemas: Map<String, Value> = crd_schemas().into_iter().collect();
        root.insert("components".into(), json!({"schemas": schemas}));
    }
    non_null_parameters(&mut doc);
    close_object_meta(&mut doc);
    add_links(&mut doc);
    doc
}

/// Pattern of a label or annotation key: `[DNS-subdomain prefix/]name` (Kubernetes).
pub const LABEL_KEY_PATTERN: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// Pattern of a label value: empty, or at most 63 of `A-Z a-z 0-9 - _ .`, alphanumeric at
/// both ends.
pub const LABEL_VALUE_PATTERN: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";

/// Makes the `ObjectMeta` schema say what the facade accepts: no member but the listed
/// ones (a request's other `metadata` members are 422), label and annotation keys and label
/// values in Kubernetes' syntax. The server-set members Kubernetes may show (`finalizers`,
/// `ownerReferences`, `deletionTimestamp`, `deletionGracePeriodSeconds`, `managedFields`,
/// `selfLink`) are listed too: answers may hold them, requests' are ignored.
pub fn close_object_meta(doc: &mut Value) {
    let Some(Value::Object(meta)) = doc.pointer_mut("/components/schemas/ObjectMeta") else {
        return;
    };
    meta.insert("additionalProperties".into(), Value::Bool(false));
    let Some(Value::Object(props)) = meta.get_mut("properties") else {
        return;
    };
    let server_set = "Server-set (Kubernetes); ignored in a request.";
    // Every member the parser ignores is listed (crate::resources::SERVER_METADATA).
    for (name, schema) in [
        (
            "finalizers",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        (
            "ownerReferences",
            json!({"type": "array", "items": {"type": "object"}}),
        ),
        (
            "deletionTimestamp",
            json!({"type": "string", "format": "date-time"}),
        ),
        ("deletionGracePeriodSeconds", json!({"type": "integer"})),
        (
            "managedFields",
            json!({"type": "array", "items": {"type": "object"}}),
        ),
        ("selfLink", json!({"type": "string"})),
    ] {
        let mut schema = schema;
        schema["description"] = json!(server_set);
        props.entry(name).or_insert(schema);
    }
    for (which, values) in [
        (
            "labels",
            json!({"type": "string", "pattern": LABEL_VALUE_PATTERN}),
        ),
        ("annotations", json!({"type": "string"})),
    ] {
        if let Some(Value::Object(m)) = props.get_mut(which) {
            m.insert(
                "propertyNames".into(),
                json!({"pattern": LABEL_KEY_PATTERN, "maxLength": 317}),
            );
            m.insert("additionalProperties".into(), values);
        }
    }
}

/// Drops `"null"` from the type of every parameter (utoipa makes an `Option` field of
/// `IntoParams` nullable): a query parameter or header is absent or a string, never JSON
/// `null` (a client sending the text `null` would get a 400).
pub fn non_null_parameters(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    let params = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("parameters"))
        .filter_map(Value::as_array_mut)
        .flatten();
    for param in params {
        if let Some(Value::Array(types)) = param.pointer_mut("/schema/type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                if let Some(schema) = param.get_mut("schema").and_then(Value::as_object_mut) {
                    schema.insert("type".into(), only);
                }
            }
        }
    }
}

/// Properties of the schema `node` of `doc`, following `$ref` and `allOf`.
fn properties(doc: &Value, node: &Value, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    if depth > 8 {
        return out;
    }
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| doc.pointer(p))
    {
        out.extend(properties(doc, target, depth + 1));
    }
    if let Some(Value::Object(p)) = node.get("properties") {
        out.extend(p.clone());
    }
    if let Some(Value::Array(all)) = node.get("allOf") {
        for part in all {
            out.extend(properties(doc, part, depth + 1));
        }
    }
    out
}

/// Adds OpenAPI links (3.1 §4.8.20) from every `201` of a `POST` on a collection `P` to
/// every operation under `P/{x}` (the object, its actions and, for a Tenant, its
/// sub-collections, when every path parameter is known): `x` is the created object's name
/// (`metadata.name`, or `id`/`name` for an API key or a policy) and the other path
/// parameters are the request's. Clients and
/// schemathesis' state machine follow them: create, then read, replace, act on and delete.
pub fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object).cloned() else {
        return;
    };
    let mut found: Vec<(String, Map<String, Value>)> = Vec::new();
    for (path, item) in &paths {
        if path.ends_with('}') {
            continue;
        }
        let Some(created) = item.pointer("/post/responses/201") else {
            continue;
        };
        let Some(schema) = created.pointer("/content/application~1json/schema") else {
            continue;
        };
        let props = properties(doc, schema, 0);
        let pointer = if props.contains_key("metadata") {
            "/metadata/name"
        } else if props.contains_key("id") {
            "/id"
        } else if props.contains_key("name") {
            "/name"
        } else {
            continue;
        };
        let prefix = format!("{path}/{{");
        let mut links = Map::new();
        for (target, target_item) in &paths {
            let Some(rest) = target.strip_prefix(&prefix) else {
                continue;
            };
            let Some((param, _)) = rest.split_once('}') else {
                continue;
            };
            let Some(ops) = target_item.as_object() else {
                continue;
            };
            for op in ops.values() {
                let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let mut parameters = Map::new();
                let mut known = true;
                for (name, _) in target.split('{').skip(1).filter_map(|s| s.split_once('}')) {
                    let value = if name == param {
                        format!("$response.body#{pointer}")
                    } else if path.contains(&format!("{{{name}}}")) {
                        format!("$request.path.{name}")
                    } else {
                        // A parameter neither the request nor the answer gives (a Mailbox
                        // under a Tenant just created): no link.
                        known = false;
                        break;
                    };
                    parameters.insert(name.to_owned(), Value::String(value));
                }
                if !known {
                    continue;
                }
                links.insert(
                    id.to_owned(),
                    json!({"operationId": id, "parameters": parameters}),
                );
            }
        }
        if !links.is_empty() {
            found.push((path.clone(), links));
        }
    }
    for (path, links) in found {
        let pointer = format!(
            "/paths/{}/post/responses/201",
            path.replace('~', "~0").replace('/', "~1")
        );
        if let Some(Value::Object(created)) = doc.pointer_mut(&pointer) {
            created.insert("links".into(), Value::Object(links));
        }
    }
}

/// `GET /api/v1/openapi.json` (the document, from [`finish`]) and the Swagger UI under
/// `/api/v1/docs/` (assets vendored in the binary), both without authentication.
pub fn docs_router(document: Value) -> Router {
    Router::from(SwaggerUi::new(DOCS_PATH).external_url_unchecked(OPENAPI_PATH, document))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_no_crd_schema_clashes() {
        let doc = crate::openapi_document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "dangling {r}");
        }
        let utoipa_only = serde_json::to_value(crate::utoipa_document()).expect("json");
        for (name, _) in crd_schemas() {
            assert!(
                utoipa_only
                    .pointer(&format!("/components/schemas/{name}"))
                    .is_none(),
                "{name} is both a utoipa schema and a CRD schema"
            );
        }
    }

    #[test]
    fn every_kind_has_a_real_spec_and_status() {
        let doc = crate::openapi_document();
        let s = &doc["components"]["schemas"];
        for kind in [
            "Tenant",
            "Mailbox",
            "Pipeline",
            "PluginDeployment",
            "MigrationJob",
        ] {
            assert_eq!(
                s[kind]["properties"]["spec"]["$ref"],
                format!("#/components/schemas/{kind}Spec"),
                "{kind}"
            );
            assert_eq!(s[kind]["additionalProperties"], false, "{kind}");
            let spec = &s[format!("{kind}Spec")];
            assert_eq!(spec["type"], "object", "{kind}Spec");
            assert_eq!(spec["additionalProperties"], false, "{kind}Spec");
            assert!(
                spec["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty()),
                "{kind}Spec"
            );
            let status = &s[format!("{kind}Status")];
            assert!(
                status["type"] == "object" || status["type"] == json!(["object", "null"]),
                "{kind}Status: {}",
                status["type"]
            );
            assert!(status["properties"].is_object(), "{kind}Status");
        }
        assert_eq!(
            s["MailboxSpec"]["properties"]["address"]["type"], "string",
            "{}",
            s["MailboxSpec"]
        );
        let meta = &s["ObjectMeta"];
        assert_eq!(meta["additionalProperties"], false);
        for m in crate::resources::SERVER_METADATA {
            assert!(meta["properties"].get(*m).is_some(), "ObjectMeta lacks {m}");
        }
        assert_eq!(
            meta["properties"]["labels"]["propertyNames"]["pattern"],
            LABEL_KEY_PATTERN
        );
        let text = serde_json::to_string(&doc).expect("text");
        assert!(
            !text.contains("\"nullable\""),
            "no OpenAPI 3.0 nullable in a 3.1 document"
        );
        // No parameter may be JSON null.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for op in item.as_object().expect("item").values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(
                        !p["schema"]["type"].to_string().contains("null"),
                        "{path} {}: {}",
                        p["name"],
                        p["schema"]
                    );
                }
            }
        }
        // Lists and bodies name the kind: no generic ResourceObject left on an operation.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let text = item.to_string();
            assert!(
                !text.contains("/ResourceObject") && !text.contains("/ResourceList"),
                "{path} still uses the generic resource schema"
            );
        }
    }

    #[test]
    fn created_objects_link_to_their_operations() {
        let doc = crate::openapi_document();
        let links = |path: &str| {
            doc["paths"][path]["post"]["responses"]["201"]["links"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let tenant = links("/api/v1/tenants");
        assert_eq!(
            tenant["getTenant"]["parameters"],
            json!({"tenant": "$response.body#/metadata/name"})
        );
        assert!(tenant.contains_key("createMailbox") && tenant.contains_key("importMailboxes"));
        let mailbox = links("/api/v1/tenants/{tenant}/mailboxes");
        assert_eq!(
            mailbox["deleteMailbox"]["parameters"],
            json!({"tenant": "$request.path.tenant", "name": "$response.body#/metadata/name"})
        );
        assert!(links("/api/v1/tenants/{tenant}/plugins").contains_key("disablePlugin"));
        assert!(
            !tenant.contains_key("getMailbox"),
            "a Mailbox's name is not known yet"
        );
        assert_eq!(
            links("/api/v1/apikeys")["updateApiKey"]["parameters"],
            json!({"id": "$response.body#/id"})
        );
        // Every link names an operation of the document.
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(Value::as_object)
            .flat_map(|i| i.values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let links = item
                .pointer("/post/responses/201/links")
                .and_then(Value::as_object);
            for link in links.into_iter().flat_map(|l| l.values()) {
                let id = link["operationId"].as_str().expect("id");
                assert!(ids.contains(&id), "{path}: link to unknown {id}");
                for value in link["parameters"].as_object().expect("parameters").values() {
                    let value = value.as_str().expect("expression");
                    if let Some(p) = value.strip_prefix("$request.path.") {
                        assert!(
                            path.contains(&format!("{{{p}}}")),
                            "{path} -> {id}: {value}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn crd_nodes_become_json_schema() {
        let cases = [
            (
                json!({"type": "string", "nullable": true}),
                json!({"type": ["string", "null"]}),
            ),
            (
                json!({"type": "string", "enum": ["A", "B"], "nullable": true}),
                json!({"type": ["string", "null"], "enum": ["A", "B", null]}),
            ),
            (
                json!({"x-kubernetes-int-or-string": true}),
                json!({"x-kubernetes-int-or-string": true,
                    "anyOf": [{"type": "integer"}, {"type": "string"}]}),
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "nullable": true}}}),
                json!({"type": "object", "additionalProperties": false,
                    "properties": {"a": {"type": ["integer", "null"]}}}),
            ),
            (
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"a": {"type": "integer"}}}),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"a": {"type": "integer"}}}),
            ),
            (
                json!({"type": "array", "items": {"type": "object", "nullable": true,
                    "additionalProperties": {"type": "string"}}}),
                json!({"type": "array", "items": {"type": ["object", "null"],
                    "additionalProperties": {"type": "string"}}}),
            ),
        ];
        for (mut input, want) in cases {
            to_json_schema(&mut input);
            assert_eq!(input, want);
        }
    }
}
