//! `/api/v1/tenants/{tenant}/policies`: DLP policies, a simpler view of Pipelines.
//!
//! A policy is a Pipeline labelled [`POLICY_LABEL`]`: dlp` whose steps all call the built-in
//! `dlp` plugin; the API shows it as [`Policy`] `{name, scope, stages, dryRun, rules}`, one
//! rule per step (the step's `config`, as docs/pipeline.md describes the dlp config). Writes
//! produce that Pipeline (steps `rule-1`, `rule-2`, ... with the CRD's default timeout and
//! `onError`), validated like any Pipeline (a rule the dlp plugin cannot use is 422 naming
//! `rules[i]...`). Other Pipelines are not policies: reading one here is 404, writing over
//! one 409.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mcp_crds::PipelineSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    IfMatchHeader, ListMeta, ListParams, WriteParams, authorize, backend, backend_error, etag,
    if_match, list_query, parse_object,
};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::{Kind, Outcome, Requirement, Versioned, Write, WriteMode};
use crate::problem::{ApiError, ApiJson, FieldError, Problem};
use crate::rbac::{Group, Verb};

/// The label that marks a Pipeline as a DLP policy (value `dlp`).
pub const POLICY_LABEL: &str = "mcp.dev/policy";

/// A DLP policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Name (of its Pipeline).
    pub name: String,
    /// Which mailboxes it applies to: the Pipeline scope (`{"type": "TenantDefault"}`,
    /// `{"type": "MailboxSelector", "mailboxSelector": {...}}`).
    #[schema(value_type = Object)]
    pub scope: Value,
    /// Stages it runs on (`deliver`, `append`, `post-store`).
    pub stages: Vec<String>,
    /// Monitor mode: record what it would do without doing it.
    pub dry_run: bool,
    /// The rules: each a config of the built-in `dlp` plugin (docs/pipeline.md).
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Value>,
    /// Version (the Pipeline's resourceVersion; also the ETag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// A policy in a request.
#[derive(Clone, Debug, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyBody {
    /// Name: required on `POST`; on `PUT` the path's (if given, it must be equal).
    #[serde(default)]
    pub name: Option<String>,
    /// Scope (required; see [`Policy::scope`]).
    #[schema(value_type = Object)]
    pub scope: Value,
    /// Stages; default `["deliver"]`.
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// Monitor mode; default `false`.
    #[serde(default)]
    pub dry_run: bool,
    /// 1 to 32 rules, each a `dlp` config.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Value>,
    /// Ignored (server-set).
    #[serde(default)]
    #[schema(ignore)]
    pub resource_version: Option<Value>,
}

/// The policies of a tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    /// The policies, by name.
    pub items: Vec<Policy>,
    /// Paging.
    pub metadata: ListMeta,
}

fn is_policy(o: &Value) -> bool {
    let labelled = o
        .pointer(&format!(
            "/metadata/labels/{}",
            POLICY_LABEL.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("dlp");
    let steps = o.pointer("/spec/steps").and_then(Value::as_array);
    labelled
        && steps.is_some_and(|s| {
            !s.is_empty()
                && s.iter()
                    .all(|st| st.pointer("/plugin/builtin").and_then(Value::as_str) == Some("dlp"))
        })
}

/// The policy view of a Pipeline.
fn view(v: &Versioned) -> Policy {
    let o = &v.object;
    let spec = |p: &str| o.pointer(&format!("/spec/{p}")).cloned();
    Policy {
        name: o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        scope: spec("scope").unwrap_or(Value::Null),
        stages: spec("stages")
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default(),
        dry_run: spec("dryRun").and_then(|d| d.as_bool()).unwrap_or(false),
        rules: o
            .pointer("/spec/steps")
            .and_then(Value::as_array)
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| s.get("config").cloned().unwrap_or(json!({})))
                    .collect()
            })
            .unwrap_or_default(),
        resource_version: Some(v.version.clone()),
    }
}

fn answer(status: StatusCode, v: &Versioned) -> Result<Response, ApiError> {
    let mut r = (status, Json(view(v))).into_response();
    r.headers_mut().insert("etag", etag(&v.version)?);
    Ok(r)
}

/// Renames the Pipeline's fields in field errors: `spec.steps[i].config.x` -> `rules[i].x`.
fn policy_fields(mut e: ApiError) -> ApiError {
    for f in &mut e.errors {
        let renamed = f
            .field
            .replace("spec.steps", "rules")
            .replace("].config", "]")
            .replace("spec.", "");
        f.field = renamed;
    }
    e
}

/// The Pipeline object of a policy body.
fn pipeline_of(body: Value, path_name: Option<&str>) -> Result<(String, Value), ApiError> {
    let p: PolicyBody = super::typed("", &body).map_err(|mut errors| {
        for e in &mut errors {
            e.field = e.field.trim_start_matches('.').to_owned();
            if e.field.is_empty() {
                e.field = "body".into();
            }
        }
        ApiError::invalid(errors)
    })?;
    let mut errors = Vec::new();
    if p.rules.is_empty() || p.rules.len() > 32 {
        errors.push(FieldError {
            field: "rules".into(),
            message: "must hold 1 to 32 rules".into(),
        });
    }
    let name = match (p.name, path_name) {
        (Some(n), Some(q)) if n != q => {
            errors.push(FieldError {
                field: "name".into(),
                message: format!("must be the name in the path, {q:?}"),
            });
            n
        }
        (Some(n), _) => n,
        (None, Some(q)) => q.to_owned(),
        (None, None) => {
            errors.push(FieldError {
                field: "name".into(),
                message: "is required".into(),
            });
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let steps: Vec<Value> = p
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            json!({"name": format!("rule-{}", i + 1), "plugin": {"builtin": "dlp"}, "config": rule})
        })
        .collect();
    let object = json!({
        "metadata": {"name": name, "labels": {POLICY_LABEL: "dlp"}},
        "spec": {
            "scope": p.scope,
            "stages": p.stages.unwrap_or_else(|| vec!["deliver".to_owned()]),
            "steps": steps,
            "dryRun": p.dry_run,
        },
    });
    let parsed = parse_object::<PipelineSpec>(Kind::Pipeline, object, path_name, &[], |_, _| {})
        .map_err(policy_fields)?;
    Ok((parsed.name, parsed.object))
}

/// Lists the tenant's DLP policies.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/policies",
    operation_id = "listPolicies",
    tag = "policies",
    params(("tenant" = String, Path, description = "The Tenant's name"), ListParams),
    responses((status = 200, description = "The policies, by name.", body = PolicyList))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<PolicyList>, ApiError> {
    authorize(&principal, Verb::Read, Group::Policies, &tenant)?;
    let mut query = list_query(params, Some(tenant))?;
    query
        .selector
        .0
        .push(Requirement::Equals(POLICY_LABEL.into(), "dlp".into()));
    let page = backend(&state)?
        .list(Kind::Pipeline, query)
        .await
        .map_err(backend_error)?;
    Ok(Json(PolicyList {
        items: page
            .items
            .iter()
            .filter(|v| is_policy(&v.object))
            .map(view)
            .collect(),
        metadata: ListMeta {
            continue_: page.next,
        },
    }))
}

async fn current(
    state: &AppState,
    tenant: &str,
    name: &str,
) -> Result<Option<Versioned>, ApiError> {
    match backend(state)?.get(Kind::Pipeline, tenant, name).await {
        Ok(v) => Ok(Some(v)),
        Err(crate::backend::BackendError::NotFound(_)) => Ok(None),
        Err(e) => Err(backend_error(e)),
    }
}

/// Creates a DLP policy.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/policies",
    operation_id = "createPolicy",
    tag = "policies",
    params(("tenant" = String, Path, description = "The Tenant's name"), WriteParams),
    request_body = PolicyBody,
    responses(
        (status = 201, description = "Created.", body = Policy,
         headers(("ETag" = String, description = "resourceVersion"), ("Location" = String, description = "URL of the policy"))),
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
    authorize(&principal, Verb::Create, Group::Policies, &tenant)?;
    let (name, object) = pipeline_of(body, None)?;
    let written = backend(&state)?
        .write(Write {
            kind: Kind::Pipeline,
            tenant: tenant.clone(),
            object,
            secrets: Vec::new(),
            mode: WriteMode::Create,
            dry_run: params.dry_run.unwrap_or(false),
        })
        .await
        .map_err(|e| policy_fields(backend_error(e)))?;
    tracing::info!(by = %principal.subject, %tenant, %name, "REST: policy created");
    let mut r = answer(StatusCode::CREATED, &written.object)?;
    let location = format!("{}/tenants/{tenant}/policies/{name}", crate::BASE_PATH);
    r.headers_mut().insert(
        "location",
        HeaderValue::from_str(&location).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(r)
}

/// One DLP policy.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/policies/{name}",
    operation_id = "getPolicy",
    tag = "policies",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The policy's name")),
    responses((status = 200, description = "The policy.", body = Policy, headers(("ETag" = String, description = "resourceVersion"))))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&principal, Verb::Read, Group::Policies, &tenant)?;
    match current(&state, &tenant, &name).await? {
        Some(v) if is_policy(&v.object) => answer(StatusCode::OK, &v),
        _ => Err(ApiError::not_found(format!("policy {name:?} not found"))),
    }
}

/// Creates or replaces a DLP policy.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/policies/{name}",
    operation_id = "applyPolicy",
    tag = "policies",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The policy's name"), IfMatchHeader, WriteParams),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "Replaced (or unchanged).", body = Policy, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 201, description = "Created.", body = Policy, headers(("ETag" = String, description = "resourceVersion"))),
        (status = 409, description = "A Pipeline of this name that is not a policy, or defined in a read-only file.", body = Problem, content_type = "application/problem+json"),
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
    authorize(&principal, Verb::Update, Group::Policies, &tenant)?;
    authorize(&principal, Verb::Create, Group::Policies, &tenant)?;
    let precondition = if_match(&headers)?;
    let (_, object) = pipeline_of(body, Some(&name))?;
    if let Some(v) = current(&state, &tenant, &name).await?
        && !is_policy(&v.object)
    {
        return Err(ApiError::conflict(format!(
            "Pipeline {name:?} is not a DLP policy; change it through /pipelines"
        )));
    }
    let written = backend(&state)?
        .write(Write {
            kind: Kind::Pipeline,
            tenant: tenant.clone(),
            object,
            secrets: Vec::new(),
            mode: WriteMode::Apply(precondition),
            dry_run: params.dry_run.unwrap_or(false),
        })
        .await
        .map_err(|e| policy_fields(backend_error(e)))?;
    tracing::info!(by = %principal.subject, %tenant, %name, outcome = ?written.outcome, "REST: policy applied");
    let status = if written.outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    answer(status, &written.object)
}

/// Deletes a DLP policy (its Pipeline).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/policies/{name}",
    operation_id = "deletePolicy",
    tag = "policies",
    params(("tenant" = String, Path, description = "The Tenant's name"), ("name" = String, Path, description = "The policy's name"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "Defined in a read-only file.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(&principal, Verb::Delete, Group::Policies, &tenant)?;
    let precondition = if_match(&headers)?;
    match current(&state, &tenant, &name).await? {
        Some(v) if is_policy(&v.object) => {}
        _ => return Err(ApiError::not_found(format!("policy {name:?} not found"))),
    }
    backend(&state)?
        .delete(Kind::Pipeline, &tenant, &name, precondition)
        .await
        .map_err(backend_error)?;
    tracing::info!(by = %principal.subject, %tenant, %name, "REST: policy deleted");
    Ok(StatusCode::NO_CONTENT)
}
