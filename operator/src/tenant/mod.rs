//! The children of a [`Tenant`]: its namespace, the dataplane's configuration, workload,
//! Service, NetworkPolicy and PodDisruptionBudget.
//!
//! Every builder is a pure function of the Tenant (and the [`Options`] the operator was
//! started with). None reads a Secret: PostgreSQL, S3 and TLS Secrets are referenced from the
//! pod spec, never copied. Every child carries a controller owner reference to the Tenant, so
//! the garbage collector removes it when the Tenant goes.
//!
//! ```
//! use mcp_operator::tenant::{self, Options};
//! let tenant: mcp_crds::Tenant = yaml_serde::from_str(
//!     "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\n\
//!      metadata: {name: example, uid: 6b1c0c1e-0000-4000-8000-000000000001}\n\
//!      spec: {domains: [example.com]}",
//! ).unwrap();
//! let children = tenant::build(&tenant, &Options::new("registry.example/mcp:0.1.0")).unwrap();
//! assert_eq!(children.namespace.metadata.name.as_deref(), Some("mcp-example"));
//! assert!(matches!(children.workload, tenant::Workload::StatefulSet(_)));
//! ```

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use mcp_crds::Tenant;
use mcp_crds::tenant::{DataplaneSpec, PostgresStorage, S3Storage, StorageBackend};

pub mod config;
pub mod controller;
pub mod issue;
pub mod labels;
pub mod names;
pub mod namespace;
pub mod network_policy;
pub mod pdb;
pub mod service;
pub mod workload;

#[cfg(test)]
mod tests;

/// A minimal Tenant `acme` (uid `u-1`, domain `acme.example`) for unit tests.
#[cfg(test)]
pub(crate) fn test_tenant() -> Tenant {
    yaml_serde::from_str(
        "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\n\
         metadata: {name: acme, uid: u-1}\nspec: {domains: [acme.example]}",
    )
    .expect("tenant")
}

/// Settings of the operator itself that the children depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Container image of the dataplane, e.g. `registry.example/mcp:0.1.0`. The operator
    /// passes its own image: one image serves `mcp operator`, `mcp standalone` and
    /// `mcp dataplane` (docs/operator.md).
    pub image: String,
    /// `imagePullPolicy` of the dataplane container. `None` leaves the Kubernetes default
    /// (`Always` for `:latest`, `IfNotPresent` otherwise).
    pub image_pull_policy: Option<String>,
    /// Namespace the operator runs in: the NetworkPolicy admits the admin API port from the
    /// operator's pods there. Default [`DEFAULT_OPERATOR_NAMESPACE`].
    pub operator_namespace: String,
}

/// Default of [`Options::operator_namespace`], the chart's usual release namespace.
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "mcp-system";

impl Options {
    /// Options with the given image and the default pull policy.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            image_pull_policy: None,
            operator_namespace: DEFAULT_OPERATOR_NAMESPACE.to_owned(),
        }
    }
}

/// Why the children of a Tenant cannot be built. Each variant names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A field the children need is absent, e.g. `metadata.uid` for the owner references
    /// (a Tenant read from the API server always has it).
    #[error("Tenant has no {field}, needed for {needed_for}")]
    Missing {
        /// JSON path of the field, e.g. `metadata.uid`.
        field: &'static str,
        /// What the field is needed for.
        needed_for: &'static str,
    },
    /// A field has a value the builders cannot use (the CRD's CEL rules reject most of these
    /// before they reach the operator).
    #[error("Tenant {field}: {message}")]
    Invalid {
        /// JSON path of the field, e.g. `spec.dataplane.replicas`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The dataplane configuration could not be rendered as YAML.
    #[error("rendering the dataplane configuration: {0}")]
    Render(#[source] yaml_serde::Error),
}

/// The dataplane workload: its kind follows the storage backend.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// `Embedded` storage: one pod with a PersistentVolumeClaim (SQLite and blob directory).
    StatefulSet(Box<StatefulSet>),
    /// `Postgres` storage: stateless pods, scaled by `spec.dataplane.replicas`.
    Deployment(Box<Deployment>),
}

/// Every child object of one Tenant, as the operator wants it to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The tenant's namespace ([`namespace::build`]).
    pub namespace: Namespace,
    /// The rendered dataplane configuration ([`config::build`]).
    pub config_map: ConfigMap,
    /// StatefulSet or Deployment ([`workload::build`]).
    pub workload: Workload,
    /// IMAP, IMAPS, LMTP, metrics and admin ports ([`service::build`]).
    pub service: Service,
    /// Who may talk to the dataplane and where it may connect ([`network_policy::build`]).
    pub network_policy: NetworkPolicy,
    /// Present when more than one replica runs ([`pdb::build`]); when absent the controller
    /// deletes any PodDisruptionBudget it made before.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
}

/// Builds every child of `tenant`.
///
/// # Errors
/// The first [`BuildError`] of any builder.
pub fn build(tenant: &Tenant, options: &Options) -> Result<Children, BuildError> {
    let config_map = config::build(tenant)?;
    Ok(Children {
        namespace: namespace::build(tenant)?,
        workload: workload::build(tenant, options, &config_map)?,
        service: service::build(tenant)?,
        network_policy: network_policy::build(tenant, options)?,
        pod_disruption_budget: pdb::build(tenant)?,
        config_map,
    })
}

/// A port of the dataplane container: name (also the Service port's name) and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// IANA service name, used as port name and `appProtocol`.
    pub name: &'static str,
    /// Port number, the same in the container and on the Service.
    pub number: i32,
}

/// IMAP with STARTTLS (RFC 9051).
pub const IMAP: Port = Port {
    name: "imap",
    number: 143,
};
/// IMAP over implicit TLS (RFC 8314).
pub const IMAPS: Port = Port {
    name: "imaps",
    number: 993,
};
/// LMTP delivery from MTAs (RFC 2033).
pub const LMTP: Port = Port {
    name: "lmtp",
    number: 24,
};
/// HTTP `/metrics` and `/healthz`.
pub const METRICS: Port = Port {
    name: "metrics",
    number: 9090,
};

/// The admin API (HTTPS) the operator provisions Mailboxes through
/// (`mcp_crds::dataplane`).
pub const ADMIN: Port = Port {
    name: "admin",
    number: 9443,
};

/// Default size of the embedded storage volume (`spec.dataplane.storage.embedded.size`).
pub const DEFAULT_EMBEDDED_SIZE: &str = "10Gi";

/// The tenant's storage, with defaults applied and the backend's own fields checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Storage<'a> {
    Embedded {
        size: Quantity,
        storage_class_name: Option<&'a str>,
    },
    Postgres {
        postgres: &'a PostgresStorage,
        s3: &'a S3Storage,
    },
}

/// `spec.dataplane` with its documented defaults (one replica, embedded storage).
pub(crate) fn dataplane(tenant: &Tenant) -> DataplaneSpec {
    tenant.spec.dataplane.clone().unwrap_or(DataplaneSpec {
        replicas: 1,
        ..DataplaneSpec::default()
    })
}

/// The storage backend and its settings.
pub(crate) fn storage(tenant: &Tenant) -> Result<Storage<'_>, BuildError> {
    let spec = tenant
        .spec
        .dataplane
        .as_ref()
        .and_then(|d| d.storage.as_ref());
    let replicas = dataplane(tenant).replicas;
    if replicas < 0 {
        return Err(BuildError::Invalid {
            field: "spec.dataplane.replicas",
            message: format!("{replicas} is negative"),
        });
    }
    match spec.map(|s| s.backend).unwrap_or_default() {
        StorageBackend::Embedded => {
            if replicas > 1 {
                return Err(BuildError::Invalid {
                    field: "spec.dataplane.replicas",
                    message: format!(
                        "{replicas} replicas need storage.backend Postgres: embedded storage has a single writer"
                    ),
                });
            }
            let embedded = spec.and_then(|s| s.embedded.as_ref());
            Ok(Storage::Embedded {
                size: embedded
                    .and_then(|e| e.size.clone())
                    .unwrap_or_else(|| Quantity(DEFAULT_EMBEDDED_SIZE.to_owned())),
                storage_class_name: embedded.and_then(|e| e.storage_class_name.as_deref()),
            })
        }
        StorageBackend::Postgres => {
            let postgres = spec
                .and_then(|s| s.postgres.as_ref())
                .ok_or(BuildError::Missing {
                    field: "spec.dataplane.storage.postgres",
                    needed_for: "storage backend Postgres",
                })?;
            let s3 = spec
                .and_then(|s| s.s3.as_ref())
                .ok_or(BuildError::Missing {
                    field: "spec.dataplane.storage.s3",
                    needed_for: "storage backend Postgres",
                })?;
            Ok(Storage::Postgres { postgres, s3 })
        }
    }
}

/// `metadata.name` of the Tenant.
pub(crate) fn tenant_name(tenant: &Tenant) -> Result<&str, BuildError> {
    tenant
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(BuildError::Missing {
            field: "metadata.name",
            needed_for: "naming the children",
        })
}

/// The controller owner reference to the Tenant that every child carries.
///
/// `blockOwnerDeletion` makes a foreground deletion of the Tenant wait for its children.
pub fn owner_reference(tenant: &Tenant) -> Result<OwnerReference, BuildError> {
    let uid = tenant
        .metadata
        .uid
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or(BuildError::Missing {
            field: "metadata.uid",
            needed_for: "the owner reference of every child",
        })?;
    Ok(OwnerReference {
        api_version: Tenant::api_version(&()).into_owned(),
        kind: Tenant::kind(&()).into_owned(),
        name: tenant_name(tenant)?.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Metadata of a namespaced child: name, the tenant's namespace, labels of `component` and
/// the owner reference.
pub(crate) fn child_metadata(
    tenant: &Tenant,
    name: String,
    component: &str,
) -> Result<ObjectMeta, BuildError> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(names::namespace(tenant)?),
        labels: Some(labels::common(tenant, component)?),
        owner_references: Some(vec![owner_reference(tenant)?]),
        ..ObjectMeta::default()
    })
}
