//! How the API server's refusals become [`BackendError`]s (and so HTTP problems of the
//! facade): docs/rest-api.md, "Kubernetes mode".
//!
//! | API server | facade |
//! |---|---|
//! | 404 NotFound | 404 |
//! | 409 AlreadyExists | 409 |
//! | 409 Conflict with `FieldManagerConflict` causes (server-side apply, force = false) | 409, naming the fields and the other manager |
//! | 409 Conflict on a write or delete carrying a `resourceVersion` (the `If-Match`) | 412 |
//! | 409 Conflict otherwise | 409 |
//! | 422 Invalid (schema, CEL rules) | 422, one entry per cause |
//! | 400 BadRequest on a list (a bad `continue`), 410 Gone (an expired `continue`) | 400 |
//! | 400 BadRequest on a write (a strict-decoding error) | 422 |
//! | 403 in a namespace being terminated | 409 |
//! | 401, 403 otherwise (the operator's RBAC), 429, 5xx, no answer | 503 |

use kube::core::response::Status;
use mcp_api::backend::BackendError;
use mcp_api::problem::FieldError;

/// What the failed request was, which decides how a 400 or a 409 reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A get or a list.
    Read,
    /// A write or delete without a precondition.
    Write,
    /// A write or delete carrying the `resourceVersion` of an `If-Match`.
    Locked,
}

/// The [`BackendError`] of a failed API request.
pub fn kube_error(e: kube::Error, op: Op) -> BackendError {
    match e {
        kube::Error::Api(s) => status_error(&s, op),
        other => BackendError::Unavailable(format!("Kubernetes API server: {other}")),
    }
}

/// Whether a 409 is a server-side apply conflict with another field manager.
fn is_manager_conflict(s: &Status) -> bool {
    s.details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
        || s.message.starts_with("Apply failed with")
}

/// The [`BackendError`] of an API server `Status`.
pub fn status_error(s: &Status, op: Op) -> BackendError {
    let msg = if s.message.is_empty() {
        format!("Kubernetes API server answered {} {}", s.code, s.reason)
    } else {
        s.message.clone()
    };
    match s.code {
        404 => BackendError::NotFound(msg),
        409 if s.reason == "AlreadyExists" => BackendError::Conflict(msg),
        409 if is_manager_conflict(s) => BackendError::Conflict(format!(
            "{msg} (server-side apply as field manager {:?}, without force: another manager owns \
             these fields; change them with that manager, or make it give them up)",
            mcp_api::backend::FIELD_MANAGER
        )),
        409 if op == Op::Locked => BackendError::PreconditionFailed(format!(
            "If-Match: the object changed meanwhile ({msg}); read it again"
        )),
        409 => BackendError::Conflict(msg),
        422 => BackendError::Invalid(field_errors(s)),
        400 if op == Op::Read => BackendError::BadRequest(msg),
        410 => BackendError::BadRequest(format!(
            "continue: {msg} (the token expired; list again without it)"
        )),
        400 => BackendError::Invalid(field_errors(s)),
        403 if msg.contains("being terminated") => BackendError::Conflict(msg),
        401 | 403 => BackendError::Unavailable(format!(
            "the operator may not do this ({msg}); check its ServiceAccount's RBAC (chart value \
             rest.enabled)"
        )),
        _ => BackendError::Unavailable(format!("Kubernetes API server: {msg}")),
    }
}

/// One [`FieldError`] per cause of a 422/400 (`spec.address`, without the leading dot of
/// server-side apply's paths); without causes, the field named in the message
/// (`... is invalid: spec.x: ...`), else `spec`.
fn field_errors(s: &Status) -> Vec<FieldError> {
    let causes: Vec<FieldError> = s
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .filter(|c| !c.message.is_empty() || !c.field.is_empty())
        .map(|c| FieldError {
            field: if c.field.is_empty() {
                "spec".to_owned()
            } else {
                c.field.trim_start_matches('.').to_owned()
            },
            message: if c.message.is_empty() {
                c.reason.clone()
            } else {
                c.message.clone()
            },
        })
        .collect();
    if !causes.is_empty() {
        return causes;
    }
    let tail = s
        .message
        .split_once("is invalid: ")
        .map_or(s.message.as_str(), |(_, t)| t);
    let field = tail
        .split_once(':')
        .map(|(f, _)| f.trim().trim_start_matches('.'))
        .filter(|f| {
            !f.is_empty()
                && !f.contains(' ')
                && (f.starts_with("spec") || f.starts_with("metadata"))
        })
        .unwrap_or("spec");
    vec![FieldError {
        field: field.to_owned(),
        message: s.message.clone(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn status(code: u16, reason: &str, message: &str, causes: &[(&str, &str, &str)]) -> Status {
        let mut s = Status::failure(message, reason).with_code(code);
        if !causes.is_empty() {
            s = s.with_details(StatusDetails {
                causes: causes
                    .iter()
                    .map(|(r, m, f)| StatusCause {
                        reason: (*r).to_owned(),
                        message: (*m).to_owned(),
                        field: (*f).to_owned(),
                    })
                    .collect(),
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                retry_after_seconds: 0,
            });
        }
        s
    }

    fn kind(e: &BackendError) -> &'static str {
        match e {
            BackendError::NotFound(_) => "404",
            BackendError::Conflict(_) => "409",
            BackendError::BadRequest(_) => "400",
            BackendError::PreconditionFailed(_) => "412",
            BackendError::Invalid(_) => "422",
            BackendError::Unavailable(_) => "503",
        }
    }

    #[test]
    fn api_server_statuses_map_to_the_facades() {
        let ssa = [(
            "FieldManagerConflict",
            "conflict with \"kubectl\" using mcp.dev/v1alpha1",
            ".spec.domains",
        )];
        let cases: Vec<(Status, Op, &str)> = vec![
            (
                status(404, "NotFound", "mailboxes.mcp.dev \"x\" not found", &[]),
                Op::Read,
                "404",
            ),
            (
                status(409, "AlreadyExists", "already exists", &[]),
                Op::Write,
                "409",
            ),
            (
                status(409, "Conflict", "Apply failed with 1 conflict", &ssa),
                Op::Write,
                "409",
            ),
            // A field-manager conflict stays a 409 even under If-Match.
            (
                status(409, "Conflict", "Apply failed with 1 conflict", &ssa),
                Op::Locked,
                "409",
            ),
            (
                status(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes",
                    &[],
                ),
                Op::Locked,
                "412",
            ),
            (
                status(
                    409,
                    "Conflict",
                    "Precondition failed: UID in precondition",
                    &[],
                ),
                Op::Locked,
                "412",
            ),
            (
                status(409, "Conflict", "Operation cannot be fulfilled", &[]),
                Op::Write,
                "409",
            ),
            (
                status(422, "Invalid", "Mailbox.mcp.dev \"x\" is invalid", &[]),
                Op::Write,
                "422",
            ),
            (
                status(400, "BadRequest", "continue key is not valid", &[]),
                Op::Read,
                "400",
            ),
            (
                status(410, "Expired", "too old resource version", &[]),
                Op::Read,
                "400",
            ),
            (
                status(
                    400,
                    "BadRequest",
                    "strict decoding error: unknown field",
                    &[],
                ),
                Op::Write,
                "422",
            ),
            (
                status(
                    403,
                    "Forbidden",
                    "unable to create new content in namespace mcp-a because it is being terminated",
                    &[],
                ),
                Op::Write,
                "409",
            ),
            (
                status(403, "Forbidden", "User cannot patch resource", &[]),
                Op::Write,
                "503",
            ),
            (
                status(401, "Unauthorized", "Unauthorized", &[]),
                Op::Read,
                "503",
            ),
            (
                status(429, "TooManyRequests", "slow down", &[]),
                Op::Read,
                "503",
            ),
            (status(500, "InternalError", "etcd", &[]), Op::Write, "503"),
            (status(504, "Timeout", "", &[]), Op::Read, "503"),
        ];
        for (s, op, want) in cases {
            let got = status_error(&s, op);
            assert_eq!(kind(&got), want, "{} {} {:?}: {got}", s.code, s.reason, op);
        }
    }

    #[test]
    fn conflicts_name_the_other_manager_and_the_field() {
        let s = status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl\" using mcp.dev/v1alpha1: .spec.domains",
            &[(
                "FieldManagerConflict",
                "conflict with \"kubectl\"",
                ".spec.domains",
            )],
        );
        let e = status_error(&s, Op::Write).to_string();
        assert!(
            e.contains("kubectl") && e.contains(".spec.domains") && e.contains("mcp-rest"),
            "{e}"
        );
    }

    #[test]
    fn invalid_objects_name_their_fields() {
        let s = status(
            422,
            "Invalid",
            "Mailbox.mcp.dev \"x\" is invalid: [spec.address: Invalid value, spec.quota: Invalid]",
            &[
                (
                    "FieldValueInvalid",
                    "Invalid value: \"a\": must be an address",
                    "spec.address",
                ),
                (
                    "FieldValueInvalid",
                    "must be positive",
                    ".spec.quota.storage",
                ),
            ],
        );
        let BackendError::Invalid(errors) = status_error(&s, Op::Write) else {
            panic!("not a 422");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.address", "spec.quota.storage"]);
        // Without causes, the field comes from the message.
        let s = status(
            422,
            "Invalid",
            "Tenant.mcp.dev \"t\" is invalid: spec.namespace: Invalid value: \"x\": is immutable",
            &[],
        );
        let BackendError::Invalid(errors) = status_error(&s, Op::Write) else {
            panic!("not a 422");
        };
        assert_eq!(errors[0].field, "spec.namespace");
        let s = status(422, "Invalid", "something odd", &[]);
        let BackendError::Invalid(errors) = status_error(&s, Op::Write) else {
            panic!("not a 422");
        };
        assert_eq!(errors[0].field, "spec");
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let e = kube_error(kube::Error::LinesCodecMaxLineLengthExceeded, Op::Read);
        assert!(matches!(e, BackendError::Unavailable(_)), "{e}");
    }
}
