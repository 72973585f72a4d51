//! Every error of the facade as an RFC 9457 problem document (`application/problem+json`).
//!
//! Handlers return [`ApiError`]; axum's own rejections (malformed or oversized JSON, a wrong
//! content type, an unknown path, a method the path does not serve) are turned into the same
//! shape, by [`ApiJson`] for request bodies and by [`problem_layer`] for everything else, so
//! a client never sees a plain-text error.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Longest plain-text body of an inner error copied into a problem's `detail`, octets.
const MAX_COPIED_DETAIL: usize = 512;

/// An RFC 9457 problem document: the body of every 4xx and 5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Unauthorized",
    "status": 401,
    "detail": "missing or invalid credentials: send X-API-Key or Authorization: Bearer"
}))]
pub struct Problem {
    /// URI of the problem type; `about:blank` when the HTTP status says it all (RFC 9457
    /// §4.2.1).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type: the status's reason phrase.
    pub title: String,
    /// The HTTP status code, repeated (RFC 9457 §3.1.2).
    pub status: u16,
    /// What went wrong with this request, naming the field or header at fault. Never holds
    /// a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid fields of a 422 answer, one entry each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request body (extension member `errors` of a problem document).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field in the request body, as a dotted path: `tenant`, `spec.address`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error answer: status, detail, optional field errors and headers
/// (`WWW-Authenticate`, `Retry-After`, `Allow`). Becomes a [`Problem`] response.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    /// HTTP status, 4xx or 5xx.
    pub status: StatusCode,
    /// What went wrong (no secrets).
    pub detail: String,
    /// Field errors of a 422.
    pub errors: Vec<FieldError>,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 with the `WWW-Authenticate` `challenge` (RFC 9110 §11.6.1). The detail must not
    /// say whether a key exists, is inactive or expired.
    pub fn unauthorized(detail: impl Into<String>, challenge: HeaderValue) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail).with_header(WWW_AUTHENTICATE, challenge)
    }

    /// 403: authenticated, but the role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409: the request conflicts with the current state (a name in use).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422 with one entry per invalid field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
        }
    }

    /// 429 with `Retry-After: retry_after_secs` (RFC 9110 §10.2.3; at least 1).
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let secs = retry_after_secs.max(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit of this credential exceeded; retry in {secs} s"),
        )
        .with_header(RETRY_AFTER, HeaderValue::from(secs))
    }

    /// 503: a dependency (the API key database, the resource backend) is unavailable. The
    /// cause is logged, not sent.
    pub fn unavailable(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "{what} unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} is unavailable; retry later"),
        )
    }

    /// 500: a bug or an unexpected failure. The cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// This error with one more response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The problem document of this error (`type: about:blank`, the reason phrase as
    /// title).
    pub fn problem(&self) -> Problem {
        Problem {
            type_: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: Some(self.detail.clone()),
            errors: self.errors.clone(),
        }
    }
}

/// A problem+json response with `status` and `body` (any serialisable problem shape).
pub fn problem_response(status: StatusCode, body: &impl Serialize) -> Response {
    // Serialising plain strings and numbers cannot fail; fall back to an empty object anyway.
    let body = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = problem_response(self.status, &self.problem());
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// A JSON request body of type `T`, whose rejections are problems: 415 without
/// `Content-Type: application/json`, 400 for malformed JSON, 422 for JSON of the wrong
/// shape (a wrong type, a missing or unknown field), 413 for a body over the router's
/// limit ([`crate::MAX_BODY`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
        JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
        // 413 for a body over the limit, 400 for a broken stream.
        other => other.status(),
    };
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON (Content-Type: application/json)".to_owned()
        }
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {} octets", crate::MAX_BODY)
        }
        other => other.body_text(),
    };
    ApiError::new(status, detail)
}

/// Middleware that turns every 4xx/5xx answer that is not yet a problem document (axum's
/// 404 and 405, rejections of path or query extractors, the Swagger UI's 404) into one,
/// keeping its status and headers (`Allow`, `WWW-Authenticate`, `Retry-After`) and using a
/// short plain-text body as `detail`.
pub async fn problem_layer(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_COPIED_DETAIL).await {
        Ok(bytes) => String::from_utf8(bytes.to_vec())
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains('<')),
        Err(_) => None,
    };
    let detail = text.unwrap_or_else(|| match status {
        StatusCode::NOT_FOUND => "no such endpoint (see /api/v1/openapi.json)".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    });
    let problem = ApiError::new(status, detail).problem();
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
