//! The CRD manifests of all five kinds, as committed under `crds/manifests/` and, byte for
//! byte the same, under `charts/mcp/crds/` (the Helm chart installs CRDs from that folder).
//!
//! Regenerate both with [`REGENERATE`]; a unit test fails when a committed file in either
//! folder drifts from the Rust types.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{Mailbox, MigrationJob, Pipeline, PluginDeployment, Tenant};

/// The command that rewrites the committed manifests in every folder of [`COMMITTED_DIRS`].
pub const REGENERATE: &str =
    "cargo run -p mcp-crds --bin crdgen -- --out crds/manifests --out charts/mcp/crds";

/// The folders, relative to the repository root, that hold a committed copy of every
/// manifest: the API's own, and the Helm chart's `crds/` folder.
pub const COMMITTED_DIRS: [&str; 2] = ["crds/manifests", "charts/mcp/crds"];

/// Every CRD of the API group, in a fixed order (Tenant first).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Tenant::crd(),
        Mailbox::crd(),
        Pipeline::crd(),
        PluginDeployment::crd(),
        MigrationJob::crd(),
    ]
}

/// The file name of a CRD's manifest: `<plural>.<group>.yaml`, i.e. `<metadata.name>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// Why the manifests could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Serialising a CRD to YAML failed.
    #[error("{file}: cannot render YAML: {source}")]
    Render {
        /// The manifest file name.
        file: String,
        /// Serializer error.
        source: yaml_serde::Error,
    },
    /// Writing a manifest failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
}

/// The YAML text of one manifest, with a header naming its generator.
///
/// # Errors
/// [`ManifestError::Render`] if serialisation fails.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, ManifestError> {
    let body = yaml_serde::to_string(crd).map_err(|source| ManifestError::Render {
        file: file_name(crd),
        source,
    })?;
    Ok(format!(
        "# Generated from the Rust types in crds/src by `{REGENERATE}`. Do not edit.\n{body}"
    ))
}

/// Every manifest as (file name, YAML text).
///
/// # Errors
/// [`ManifestError::Render`] for the first CRD that cannot be serialised.
pub fn rendered() -> Result<Vec<(String, String)>, ManifestError> {
    all()
        .iter()
        .map(|crd| Ok((file_name(crd), render(crd)?)))
        .collect()
}

/// Writes every manifest into `dir` (created if missing) and returns the paths written.
///
/// # Errors
/// [`ManifestError`] naming the file that could not be rendered or written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    std::fs::create_dir_all(dir).map_err(|source| ManifestError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, text) in rendered()? {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ManifestError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
