//! Admin API errors as RFC 9457 problem documents ([`Problem`]).

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mcp_crds::dataplane::Problem;

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An admin API error: a status and a detail naming the field at fault. Turned into a
/// [`Problem`] response with `type: about:blank` and the status's reason phrase as title.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    /// HTTP status, 4xx or 5xx.
    pub status: StatusCode,
    /// What went wrong, naming the field (`spec.address: ...`). Never holds a password or
    /// the token.
    pub detail: String,
    /// `WWW-Authenticate` value for 401 answers (RFC 6750 §3).
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            challenge: None,
        }
    }

    /// 400: the request is malformed or a field is invalid.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: Some(self.detail.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Serialising four plain fields cannot fail; fall back to an empty object anyway.
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
