//! The dataplane's configuration file, rendered into a ConfigMap.
//!
//! The document mirrors the dataplane's settings (`dataplane/src/standalone/config.rs`,
//! `Settings`) with the same names in camelCase, plus what Kubernetes mode adds (LMTP, S3,
//! the tenant). Values that are secret never appear: the PostgreSQL URL and the S3 keys are
//! named by the environment variable that carries them (filled from the Secret by a
//! `secretKeyRef`), the TLS key by its path on a projected Secret volume.
//!
//! `mcp dataplane --config` reads it back into the same type,
//! [`mcp_crds::dataplane::DataplaneConfig`] (docs/operator.md, "The configuration file").

use std::collections::BTreeMap;

pub use crate::pipeline::PIPELINES_KEY;
use k8s_openapi::api::core::v1::ConfigMap;
use mcp_crds::Tenant;
pub use mcp_crds::dataplane::{DataplaneConfig, S3Config};
use sha2::{Digest, Sha256};

use super::{
    ADMIN, BuildError, IMAP, IMAPS, LMTP, METRICS, Port, Storage, child_metadata, labels, names,
    storage, tenant_name,
};

/// Key of the configuration in the ConfigMap, and file name in [`CONFIG_DIR`].
pub const CONFIG_KEY: &str = "config.yaml";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/mcp";
/// Where the TLS Secret is projected (`tls.crt`, `tls.key`), relative to [`CONFIG_DIR`].
pub const TLS_DIR: &str = "tls";
/// Where the admin Secret is projected (`tls.crt`, `tls.key`, `token`), relative to
/// [`CONFIG_DIR`].
pub const ADMIN_DIR: &str = "admin";
/// Key of the admin API's bearer token in the admin Secret (`names::admin_secret`); the
/// Secret's type is `kubernetes.io/tls`, so it also holds `tls.crt` and `tls.key`.
pub const ADMIN_TOKEN_KEY: &str = "token";
/// The data directory: the PersistentVolume with embedded storage, an `emptyDir` otherwise.
pub const DATA_DIR: &str = "/var/lib/mcp";
/// Environment variable with the PostgreSQL URL (the dataplane's `--store-url` already reads
/// it).
pub const STORE_URL_ENV: &str = "MCP_STORE_URL";
/// Environment variable with the S3 access key id (the AWS SDK's own name).
pub const S3_ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable with the S3 secret access key (the AWS SDK's own name).
pub const S3_SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
/// Pod-template annotation holding [`hash`] of the ConfigMap: a changed configuration
/// changes the pod template, which rolls the pods. `pipelines.yaml` does not count: the
/// dataplane reloads it in place.
pub const HASH_ANNOTATION: &str = "mcp.dev/config-hash";
/// Default S3 region (`spec.dataplane.storage.s3.region`).
pub const DEFAULT_S3_REGION: &str = "us-east-1";

fn listen(port: Port) -> String {
    format!("0.0.0.0:{}", port.number)
}

/// The configuration of `tenant`'s dataplane. File paths are relative to [`CONFIG_DIR`], where
/// the ConfigMap and the Secrets are projected together.
///
/// # Errors
/// [`BuildError`] for a Tenant without a name or with unusable storage settings.
pub fn dataplane_config(tenant: &Tenant) -> Result<DataplaneConfig, BuildError> {
    let name = tenant_name(tenant)?;
    let mut config = DataplaneConfig {
        tenant: name.to_owned(),
        domains: tenant.spec.domains.clone(),
        imap: listen(IMAP),
        imaps: listen(IMAPS),
        lmtp: listen(LMTP),
        metrics: listen(METRICS),
        admin: listen(ADMIN),
        data_dir: DATA_DIR.to_owned(),
        store_url: None,
        store_url_env: None,
        blob_dir: None,
        s3: None,
        tls_cert: format!("{TLS_DIR}/tls.crt"),
        tls_key: format!("{TLS_DIR}/tls.key"),
        admin_tls_cert: format!("{ADMIN_DIR}/tls.crt"),
        admin_tls_key: format!("{ADMIN_DIR}/tls.key"),
        admin_token_file: format!("{ADMIN_DIR}/{ADMIN_TOKEN_KEY}"),
        pipelines: Some(PIPELINES_KEY.to_owned()),
        plugin_socket_dir: None,
        plugin_client_tls_dir: None,
        tenant_storage_quota: tenant
            .spec
            .quota
            .as_ref()
            .and_then(|q| q.storage.as_ref())
            .map(|q| q.0.clone()),
    };
    match storage(tenant)? {
        Storage::Embedded { .. } => {
            config.store_url = Some(format!("sqlite://{DATA_DIR}/meta.sqlite"));
            config.blob_dir = Some(format!("{DATA_DIR}/blobs"));
        }
        Storage::Postgres { s3, .. } => {
            config.store_url_env = Some(STORE_URL_ENV.to_owned());
            config.s3 = Some(S3Config {
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone().unwrap_or_else(|| format!("{name}/")),
                endpoint: s3.endpoint.clone(),
                region: s3
                    .region
                    .clone()
                    .unwrap_or_else(|| DEFAULT_S3_REGION.to_owned()),
                force_path_style: s3.force_path_style,
                access_key_id_env: S3_ACCESS_KEY_ID_ENV.to_owned(),
                secret_access_key_env: S3_SECRET_ACCESS_KEY_ENV.to_owned(),
                cache_mib: None,
            });
        }
    }
    Ok(config)
}

/// `config` as a YAML document, with a header saying where it comes from.
///
/// # Errors
/// [`BuildError::Render`] if serialization fails.
pub fn to_yaml(config: &DataplaneConfig) -> Result<String, BuildError> {
    let body = yaml_serde::to_string(config).map_err(BuildError::Render)?;
    Ok(format!(
        "# Dataplane configuration of Tenant {:?}, rendered by {}.\n\
         # Edits are overwritten: change the Tenant instead.\n{body}",
        config.tenant,
        labels::MANAGER,
    ))
}

/// The ConfigMap `mcp-<tenant>-dataplane-config` with [`CONFIG_KEY`] and [`PIPELINES_KEY`]
/// (no Pipelines: the Tenant controller sets the tenant's with [`set_pipelines`]).
///
/// # Errors
/// As [`dataplane_config`], and [`BuildError::Missing`] without `metadata.uid`.
pub fn build(tenant: &Tenant) -> Result<ConfigMap, BuildError> {
    let name = tenant_name(tenant)?;
    let yaml = to_yaml(&dataplane_config(tenant)?)?;
    let pipelines = crate::pipeline::render::render(name, &[], &[], None)
        .map_err(|e| BuildError::Render(e.0))?;
    Ok(ConfigMap {
        metadata: child_metadata(tenant, names::config_map(tenant)?, labels::DATAPLANE)?,
        data: Some(BTreeMap::from([
            (CONFIG_KEY.to_owned(), yaml),
            (PIPELINES_KEY.to_owned(), pipelines),
        ])),
        ..ConfigMap::default()
    })
}

/// Puts `pipelines` (the rendered `pipelines.yaml`, [`crate::pipeline::render_for`]) into
/// the ConfigMap. It leaves [`hash`], and so the pod template, unchanged.
pub fn set_pipelines(config_map: &mut ConfigMap, pipelines: String) {
    config_map
        .data
        .get_or_insert_default()
        .insert(PIPELINES_KEY.to_owned(), pipelines);
}

/// SHA-256 (hex) of the ConfigMap's `data` and `binaryData`, except [`PIPELINES_KEY`];
/// metadata does not count.
pub fn hash(config_map: &ConfigMap) -> String {
    let mut digest = Sha256::new();
    // Length prefixes keep ("ab","c") and ("a","bc") apart; the tag keeps data and binaryData
    // apart.
    let mut entry = |tag: &[u8], key: &str, value: &[u8]| {
        digest.update(tag);
        for part in [key.as_bytes(), value] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
    };
    for (key, value) in config_map.data.iter().flatten() {
        if key == PIPELINES_KEY {
            continue;
        }
        entry(b"d", key, value.as_bytes());
    }
    for (key, value) in config_map.binary_data.iter().flatten() {
        entry(b"b", key, &value.0);
    }
    hex::encode(digest.finalize())
}
