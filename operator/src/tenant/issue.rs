//! The Secrets the operator issues for a Tenant: the self-signed IMAP certificate (when
//! `spec.dataplane.tls` is absent) and the admin API's certificate and bearer token.
//!
//! Unlike the other children these hold generated private keys and a random token, so they
//! are not pure functions of the spec: the controller creates each once (`POST`, never
//! server-side apply) and never rewrites it, so the keys stay stable across reconciliations
//! and operator restarts. They carry the Tenant's owner reference like every child.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use mcp_crds::Tenant;

use super::config::ADMIN_TOKEN_KEY;
use super::{BuildError, child_metadata, labels, names};

/// Secret type of both issued Secrets.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Why a Secret could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The Tenant lacks a field the Secret's metadata needs.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Generating the key pair or certificate failed.
    #[error("generating a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// The DNS names the dataplane answers on inside the cluster: the Service's short, namespaced
/// and fully qualified names.
fn service_names(tenant: &Tenant) -> Result<Vec<String>, BuildError> {
    let service = names::dataplane(tenant)?;
    let namespace = names::namespace(tenant)?;
    Ok(vec![
        service.clone(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ])
}

fn tls_secret(
    tenant: &Tenant,
    name: String,
    sans: Vec<String>,
    extra: &[(&str, Vec<u8>)],
) -> Result<Secret, IssueError> {
    let generated = rcgen::generate_simple_self_signed(sans)?;
    let mut data = BTreeMap::from([
        (
            "tls.crt".to_owned(),
            ByteString(generated.cert.pem().into_bytes()),
        ),
        (
            "tls.key".to_owned(),
            ByteString(generated.signing_key.serialize_pem().into_bytes()),
        ),
    ]);
    for (key, value) in extra {
        data.insert((*key).to_owned(), ByteString(value.clone()));
    }
    Ok(Secret {
        metadata: child_metadata(tenant, name, labels::DATAPLANE)?,
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        data: Some(data),
        ..Secret::default()
    })
}

/// The self-signed IMAP certificate `mcp-<tenant>-dataplane-tls`, for the tenant's domains
/// (and `imap.`/`mail.` names under them are left to a real certificate: set
/// `spec.dataplane.tls`) and the Service's names.
///
/// # Errors
/// [`IssueError`].
pub fn imap_tls(tenant: &Tenant) -> Result<Secret, IssueError> {
    let mut sans = tenant.spec.domains.clone();
    sans.extend(service_names(tenant)?);
    tls_secret(tenant, names::self_signed_tls(tenant)?, sans, &[])
}

/// The admin API's Secret `mcp-<tenant>-dataplane-admin`: a self-signed certificate for the
/// Service's names plus `localhost` and `127.0.0.1` (an operator running outside the cluster
/// reaches a forwarded port), and a random 256-bit bearer token (64 hex digits) in
/// [`ADMIN_TOKEN_KEY`].
///
/// # Errors
/// [`IssueError`].
pub fn admin(tenant: &Tenant) -> Result<Secret, IssueError> {
    let mut sans = service_names(tenant)?;
    sans.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
    let token = hex::encode(rand::random::<[u8; 32]>());
    tls_secret(
        tenant,
        names::admin_secret(tenant)?,
        sans,
        &[(ADMIN_TOKEN_KEY, token.into_bytes())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tenant::test_tenant as tenant;

    #[test]
    fn issued_secrets_are_owned_typed_and_fresh() {
        let t = tenant();
        let a = admin(&t).expect("admin");
        let b = admin(&t).expect("admin");
        assert_eq!(a.metadata.name.as_deref(), Some("mcp-acme-dataplane-admin"));
        assert_eq!(a.metadata.namespace.as_deref(), Some("mcp-acme"));
        assert_eq!(a.type_.as_deref(), Some(TLS_SECRET_TYPE));
        let data = a.data.as_ref().expect("data");
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["tls.crt", "tls.key", "token"]);
        assert_eq!(data["token"].0.len(), 64);
        assert_ne!(data["token"], b.data.as_ref().expect("data")["token"]);
        let owner = &a.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Tenant", Some(true))
        );

        let tls = imap_tls(&t).expect("tls");
        assert_eq!(tls.metadata.name.as_deref(), Some("mcp-acme-dataplane-tls"));
        assert!(tls.data.as_ref().expect("data").contains_key("tls.key"));
    }
}
