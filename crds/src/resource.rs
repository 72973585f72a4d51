//! Reading MCP resources from YAML, for the standalone mode and for tests (DESIGN.md §1,
//! "Standalone").
//!
//! A YAML stream may hold several documents (`---`), each one of the five MCP kinds or a
//! core `v1` `Secret`. Unknown kinds are an error naming the document, never silently skipped.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Mailbox, MigrationJob, Pipeline, PluginDeployment, Tenant};

/// A `v1` Secret as far as MCP reads it: name, namespace and its decoded key/value pairs.
///
/// `stringData` and `data` (base64) are both accepted, as the API server does; `stringData`
/// wins on a key present in both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretResource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// Decoded values by key.
    pub data: BTreeMap<String, String>,
}

/// One resource read from YAML.
#[derive(Clone, Debug)]
pub enum Resource {
    /// `mcp.dev/v1alpha1` `Tenant`.
    Tenant(Box<Tenant>),
    /// `mcp.dev/v1alpha1` `Mailbox`.
    Mailbox(Box<Mailbox>),
    /// `mcp.dev/v1alpha1` `Pipeline`.
    Pipeline(Box<Pipeline>),
    /// `mcp.dev/v1alpha1` `PluginDeployment`.
    PluginDeployment(Box<PluginDeployment>),
    /// `mcp.dev/v1alpha1` `MigrationJob`.
    MigrationJob(Box<MigrationJob>),
    /// `v1` `Secret`.
    Secret(SecretResource),
}

/// Why a YAML document could not be read as a resource.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// Not valid YAML.
    #[error("document {index}: invalid YAML: {source}")]
    Yaml {
        /// Zero-based position of the document in the stream.
        index: usize,
        /// Parser error.
        source: yaml_serde::Error,
    },
    /// Valid YAML but not a valid resource of its kind (missing field, wrong type...).
    #[error("document {index} ({kind}): {}{source}", at(.field))]
    Invalid {
        /// Zero-based position of the document in the stream.
        index: usize,
        /// The document's `kind`.
        kind: String,
        /// Path of the offending field (`spec.suspend`, `spec.steps[0].timeout`); empty
        /// when the error is about the document as a whole.
        field: String,
        /// Schema error.
        source: serde_json::Error,
    },
    /// An `apiVersion`/`kind` pair MCP does not read.
    #[error("document {index}: unsupported apiVersion/kind {api_version}/{kind}")]
    Unsupported {
        /// Zero-based position of the document in the stream.
        index: usize,
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// A Secret whose `data` value is not base64.
    #[error("document {index}: Secret key {key:?} is not valid base64")]
    Base64 {
        /// Zero-based position of the document in the stream.
        index: usize,
        /// The offending key.
        key: String,
    },
}

impl Resource {
    /// The resource's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Tenant(_) => "Tenant",
            Resource::Mailbox(_) => "Mailbox",
            Resource::Pipeline(_) => "Pipeline",
            Resource::PluginDeployment(_) => "PluginDeployment",
            Resource::MigrationJob(_) => "MigrationJob",
            Resource::Secret(_) => "Secret",
        }
    }

    /// Parses every document of a YAML stream. Empty documents are skipped.
    ///
    /// # Errors
    /// The first document that is not valid YAML, not a supported kind, or not valid for its
    /// kind, as a [`ResourceError`] naming the document index and field.
    pub fn parse_stream(yaml: &str) -> Result<Vec<Resource>, ResourceError> {
        let mut out = Vec::new();
        for (index, doc) in yaml_serde::Deserializer::from_str(yaml).enumerate() {
            let value = serde_json::Value::deserialize(doc)
                .map_err(|source| ResourceError::Yaml { index, source })?;
            if value.is_null() {
                continue;
            }
            out.push(Self::from_value(index, value)?);
        }
        Ok(out)
    }

    fn from_value(index: usize, value: serde_json::Value) -> Result<Resource, ResourceError> {
        let text = |k: &str| {
            value
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let api_version = text("apiVersion");
        let kind = text("kind");
        let invalid = |(field, source)| ResourceError::Invalid {
            index,
            kind: kind.clone(),
            field,
            source,
        };
        match (api_version.as_str(), kind.as_str()) {
            ("mcp.dev/v1alpha1", "Tenant") => {
                Ok(Resource::Tenant(Box::new(typed(value).map_err(invalid)?)))
            }
            ("mcp.dev/v1alpha1", "Mailbox") => {
                Ok(Resource::Mailbox(Box::new(typed(value).map_err(invalid)?)))
            }
            ("mcp.dev/v1alpha1", "Pipeline") => {
                Ok(Resource::Pipeline(Box::new(typed(value).map_err(invalid)?)))
            }
            ("mcp.dev/v1alpha1", "PluginDeployment") => Ok(Resource::PluginDeployment(Box::new(
                typed(value).map_err(invalid)?,
            ))),
            ("mcp.dev/v1alpha1", "MigrationJob") => Ok(Resource::MigrationJob(Box::new(
                typed(value).map_err(invalid)?,
            ))),
            ("v1", "Secret") => {
                let raw: RawSecret = typed(value).map_err(invalid)?;
                let mut data = BTreeMap::new();
                for (key, b64) in raw.data {
                    let bytes = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        b64.trim(),
                    )
                    .map_err(|_| ResourceError::Base64 {
                        index,
                        key: key.clone(),
                    })?;
                    let text = String::from_utf8(bytes).map_err(|_| ResourceError::Base64 {
                        index,
                        key: key.clone(),
                    })?;
                    data.insert(key, text);
                }
                data.extend(raw.string_data);
                Ok(Resource::Secret(SecretResource {
                    name: raw.metadata.name,
                    namespace: raw.metadata.namespace,
                    data,
                }))
            }
            _ => Err(ResourceError::Unsupported {
                index,
                api_version,
                kind,
            }),
        }
    }
}

/// `field: ` for a non-empty field path, nothing for the document itself.
fn at(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Deserialises `value`, keeping the path of the field an error is about (`spec.suspend`
/// for `suspend: "yes"`), which serde_json's own message lacks.
fn typed<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, (String, serde_json::Error)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        (field, e.into_inner())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSecret {
    metadata: RawMeta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawMeta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tenant_mailbox_and_secret_stream() {
        let yaml = r#"
apiVersion: mcp.dev/v1alpha1
kind: Tenant
metadata: {name: example}
spec: {domains: [example.com]}
---
apiVersion: v1
kind: Secret
metadata: {name: alice, namespace: mcp-example}
stringData: {password: alice-demo}
data: {other: aGVsbG8=}
---
apiVersion: mcp.dev/v1alpha1
kind: Mailbox
metadata: {name: alice, namespace: mcp-example}
spec:
  tenant: example
  address: alice@example.com
  credentials: {secretRef: {name: alice}}
"#;
        let res = Resource::parse_stream(yaml).expect("valid stream");
        assert_eq!(res.len(), 3);
        match &res[1] {
            Resource::Secret(s) => {
                assert_eq!(s.data["password"], "alice-demo");
                assert_eq!(s.data["other"], "hello");
            }
            other => panic!("expected Secret, got {other:?}"),
        }
        match &res[2] {
            Resource::Mailbox(m) => {
                assert_eq!(
                    m.spec
                        .credentials
                        .secret_ref
                        .as_ref()
                        .map(|r| r.key.as_str()),
                    Some("password")
                )
            }
            other => panic!("expected Mailbox, got {other:?}"),
        }
    }

    #[test]
    fn hostile_documents_get_errors_naming_the_document() {
        let cases = [
            (
                "kind: Tenant\napiVersion: mcp.dev/v1alpha1\nmetadata: {name: x}\nspec: {}",
                "document 0 (Tenant)",
            ),
            (
                "apiVersion: v9\nkind: Pod",
                "unsupported apiVersion/kind v9/Pod",
            ),
            (
                "---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!'}",
                "not valid base64",
            ),
            (": : :\n  - [", "invalid YAML"),
        ];
        for (yaml, want) in cases {
            let err = Resource::parse_stream(yaml).expect_err(yaml).to_string();
            assert!(err.contains(want), "{yaml:?}: {err}");
        }
    }
}
