//! The errors of `mcp-cli` and the exit code of each (docs/cli.md, "Exit codes").
//!
//! An answer of the server that is not 2xx becomes [`Error::Problem`]: its RFC 9457
//! problem document (`title`, `detail`, `errors`), or what the body held when it is not one.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Exit code of success.
pub const EXIT_OK: i32 = 0;
/// Exit code of a server, validation, network or file error.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage error (as clap's own).
pub const EXIT_USAGE: i32 = 2;

/// One field of a 422 problem (`errors[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// The field at fault, as a path in the request (`spec.address`).
    #[serde(default)]
    pub field: String,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
}

/// An RFC 9457 problem document as the facade answers it (docs/rest-api.md, "Errors").
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// HTTP status of the answer.
    #[serde(default)]
    pub status: u16,
    /// Short, human-readable summary (the status's reason phrase).
    #[serde(default)]
    pub title: String,
    /// Explanation of this occurrence.
    #[serde(default)]
    pub detail: Option<String>,
    /// The fields at fault (validation errors).
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// The problem of an answer with `status` and `body`: the body's problem document, or
    /// (any other body) the status with the body's first 300 characters as detail.
    pub fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Problem>(body) {
            Ok(mut p) if !p.title.is_empty() || p.detail.is_some() => {
                if p.status == 0 {
                    p.status = status;
                }
                p
            }
            _ => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.trim().chars().take(300).collect();
                Problem {
                    status,
                    title: reason(status).to_owned(),
                    detail: (!text.is_empty()).then_some(text),
                    errors: Vec::new(),
                }
            }
        }
    }
}

/// The reason phrase of `status` (RFC 9110 §15), or "" for one reqwest does not know.
fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

impl fmt::Display for Problem {
    /// `<status> <title>: <detail>`, then one indented line per field error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        // The facade's detail of a 422 repeats the field errors; show them once, as a list.
        match &self.detail {
            Some(d) if self.errors.is_empty() => write!(f, ": {d}")?,
            Some(d) if !self.errors.iter().any(|e| d.contains(&e.message)) => write!(f, ": {d}")?,
            _ => {}
        }
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or the environment is incomplete or inconsistent (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error.
    #[error("{0}")]
    Problem(Problem),
    /// The server could not be reached or its answer not read.
    #[error("{url}: {source}")]
    Http {
        /// The URL of the request.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered 2xx with something that is not what the API promises.
    #[error("unexpected answer from {url}: {reason}")]
    Answer {
        /// The URL of the request.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is unusable (YAML, JSON, CSV, the config file).
    #[error("{}: {reason}", path.display())]
    Parse {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The command ran but some of its parts failed; each was reported already.
    #[error("{0}")]
    Partial(String),
}

impl Error {
    /// The process exit code of this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// A [`Error::Io`] of `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`Error::Parse`] of `path`.
    pub fn parse(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        Error::Parse {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// The result type of the commands.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_print_title_detail_and_fields() {
        let cases: &[(u16, &str, &str)] = &[
            (
                401,
                r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"a valid API key is required"}"#,
                "401 Unauthorized: a valid API key is required",
            ),
            (
                422,
                r#"{"title":"Unprocessable Entity","status":422,"detail":"spec.address: must hold one @","errors":[{"field":"spec.address","message":"must hold one @"}]}"#,
                "422 Unprocessable Entity\n  spec.address: must hold one @",
            ),
            (
                502,
                "<html>bad gateway</html>",
                "502 Bad Gateway: <html>bad gateway</html>",
            ),
            (500, "", "500 Internal Server Error"),
        ];
        for (status, body, want) in cases {
            let p = Problem::from_answer(*status, body.as_bytes());
            assert_eq!(p.to_string(), *want, "{body}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(Error::Problem(Problem::default()).exit_code(), EXIT_FAILURE);
        assert_eq!(Error::Partial("x".into()).exit_code(), EXIT_FAILURE);
    }
}
