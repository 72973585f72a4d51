//! `GET /api/v1/health/live` and `GET /api/v1/health/ready`: no authentication.
//!
//! Liveness says the process serves HTTP. Readiness runs its checks (the `api_keys`
//! database; the resource backend once there is one) and answers 200 with them, or 503 with
//! a problem document that lists them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::{ApiError, Problem, problem_response};

/// Outcome of one readiness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The dependency answers.
    Ok,
    /// It does not.
    Failed,
}

/// One readiness check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// What was checked: `api_keys` (the key database) or `backend` (the resources).
    pub name: String,
    /// Its outcome.
    pub status: CheckStatus,
    /// Why it failed (no secrets, no URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Body of `GET /api/v1/health/live` and of a ready `GET /api/v1/health/ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The readiness checks (empty for liveness).
    pub checks: Vec<Check>,
}

/// Problem document of a 503 readiness answer: the problem and the checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotReady {
    /// The problem (status 503).
    #[serde(flatten)]
    pub problem: Problem,
    /// Every check, the failed ones with a detail.
    pub checks: Vec<Check>,
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/api/v1/health/live",
    operation_id = "healthLive",
    tag = "health",
    responses((status = 200, description = "The process serves HTTP.", body = Health))
)]
pub async fn live() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        checks: Vec::new(),
    })
}

/// Readiness: the API key database (and the resource backend, when configured) answer.
#[utoipa::path(
    get,
    path = "/api/v1/health/ready",
    operation_id = "healthReady",
    tag = "health",
    responses(
        (status = 200, description = "Every check passed.", body = Health),
        (status = 503, description = "A check failed.", body = NotReady,
         content_type = "application/problem+json"),
    )
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let mut checks = Vec::new();
    let keys = state.auth.keys().ping().await;
    checks.push(check("api_keys", keys.map_err(|e| e.to_string())));
    if let Some(backend) = &state.backend {
        let ready = backend.ready().await;
        checks.push(check("backend", ready.map_err(|e| e.to_string())));
    }
    if checks.iter().all(|c| c.status == CheckStatus::Ok) {
        return Json(Health {
            status: "ok".to_owned(),
            checks,
        })
        .into_response();
    }
    let failed: Vec<_> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .map(|c| c.name.as_str())
        .collect();
    let problem = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}", failed.join(", ")),
    )
    .problem();
    problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &NotReady { problem, checks },
    )
}

fn check(name: &str, result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check {
            name: name.to_owned(),
            status: CheckStatus::Ok,
            detail: None,
        },
        Err(e) => {
            tracing::warn!(check = name, error = %e, "REST readiness check failed");
            Check {
                name: name.to_owned(),
                status: CheckStatus::Failed,
                detail: Some("unavailable".to_owned()),
            }
        }
    }
}
