//! The dataplane workload: a StatefulSet with a PersistentVolumeClaim for `Embedded`
//! storage, a Deployment for `Postgres` storage.
//!
//! Both run the same pod: one `dataplane` container started as
//! `mcp dataplane --config /etc/mcp/config.yaml`, non-root, with a read-only root
//! filesystem, no privilege escalation, no capabilities and the runtime's default seccomp
//! profile (the `restricted` Pod Security Standard). It binds the standard ports 143, 993
//! and 24 without `CAP_NET_BIND_SERVICE`: the pod sets the namespaced sysctl
//! `net.ipv4.ip_unprivileged_port_start=0`, which Pod Security Admission allows at every
//! level.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecretProjection, SecurityContext, Sysctl, TopologySpreadConstraint, Volume, VolumeMount,
    VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mcp_crds::Tenant;

use super::config::{
    self, ADMIN_DIR, ADMIN_TOKEN_KEY, CONFIG_DIR, CONFIG_KEY, DATA_DIR, PIPELINES_KEY,
    S3_ACCESS_KEY_ID_ENV, S3_SECRET_ACCESS_KEY_ENV, STORE_URL_ENV, TLS_DIR,
};
use super::{
    ADMIN, BuildError, IMAP, IMAPS, LMTP, METRICS, Options, Storage, Workload, child_metadata,
    dataplane, labels, names, storage,
};

/// Name of the dataplane container.
pub const CONTAINER: &str = "dataplane";
/// UID and GID the dataplane runs as (and the `fsGroup` of its volumes).
pub const RUN_AS: i64 = 65532;
/// Arguments of the container: the `mcp` image's `dataplane` subcommand.
pub const ARGS: [&str; 3] = ["dataplane", "--config", "/etc/mcp/config.yaml"];
/// The sysctl that lets a non-root process bind ports below 1024.
pub const UNPRIVILEGED_PORT_SYSCTL: &str = "net.ipv4.ip_unprivileged_port_start";
/// Key of the PostgreSQL URL in `spec.dataplane.storage.postgres.secretRef`.
pub const POSTGRES_URI_KEY: &str = "uri";
/// Keys of the S3 credentials in `spec.dataplane.storage.s3.secretRef`.
pub const S3_ACCESS_KEY_ID_KEY: &str = "accessKeyId";
/// See [`S3_ACCESS_KEY_ID_KEY`].
pub const S3_SECRET_ACCESS_KEY_KEY: &str = "secretAccessKey";
/// Requests and limits when `spec.dataplane.resources` is absent: (resource, request, limit).
pub const DEFAULT_RESOURCES: [(&str, &str, Option<&str>); 2] =
    [("cpu", "100m", None), ("memory", "256Mi", Some("1Gi"))];
/// Name of the volume (and of the StatefulSet's claim template) holding [`DATA_DIR`].
pub const DATA_VOLUME: &str = "data";
/// Mode of the projected configuration and TLS files: readable by the owner and by the
/// pod's `fsGroup`, which the dataplane runs in.
const FILE_MODE: i32 = 0o440;

/// The workload of `tenant`'s dataplane, its pod template annotated with
/// [`config::hash`] of `config_map` (the output of [`config::build`]).
///
/// # Errors
/// [`BuildError::Missing`] without `metadata.name`/`metadata.uid`, or Postgres storage
/// without its `postgres`/`s3` sections; [`BuildError::Invalid`] for more than one replica
/// with embedded storage, or negative replicas.
pub fn build(
    tenant: &Tenant,
    options: &Options,
    config_map: &ConfigMap,
) -> Result<Workload, BuildError> {
    let storage = storage(tenant)?;
    let replicas = dataplane(tenant).replicas;
    let metadata = child_metadata(tenant, names::dataplane(tenant)?, labels::DATAPLANE)?;
    let selector = LabelSelector {
        match_labels: Some(labels::selector(tenant)?),
        ..LabelSelector::default()
    };
    let template = pod_template(tenant, options, config_map, &storage)?;
    Ok(match storage {
        Storage::Embedded {
            size,
            storage_class_name,
        } => Workload::StatefulSet(Box::new(StatefulSet {
            metadata,
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                selector,
                template,
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(DATA_VOLUME.to_owned()),
                        labels: Some(labels::common(tenant, labels::DATAPLANE)?),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                            ..VolumeResourceRequirements::default()
                        }),
                        storage_class_name: storage_class_name.map(str::to_owned),
                        ..PersistentVolumeClaimSpec::default()
                    }),
                    ..PersistentVolumeClaim::default()
                }]),
                // The mail is on this volume: neither scaling to zero nor deleting the
                // StatefulSet may drop it. Deleting the Tenant deletes the namespace, and
                // the claim with it.
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Retain".to_owned()),
                        when_scaled: Some("Retain".to_owned()),
                    },
                ),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        })),
        Storage::Postgres { .. } => Workload::Deployment(Box::new(Deployment {
            metadata,
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector,
                template,
                // Start the new pod before stopping an old one: IMAP clients reconnect, but
                // capacity should not dip during a rollout.
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".to_owned()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(1)),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })),
    })
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn probe(period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_owned()),
            port: IntOrString::String(METRICS.name.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn default_resources() -> ResourceRequirements {
    resource_table(&DEFAULT_RESOURCES)
}

/// Requests and limits from `(resource, request, limit)` rows (`("memory", "128Mi",
/// Some("256Mi"))`); shared by the dataplane container and the plugin sandbox defaults.
pub fn resource_table(rows: &[(&str, &str, Option<&str>)]) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for (resource, request, limit) in rows {
        requests.insert((*resource).to_owned(), Quantity((*request).to_owned()));
        if let Some(limit) = limit {
            limits.insert((*resource).to_owned(), Quantity((*limit).to_owned()));
        }
    }
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn key_to_path(key: &str, path: &str) -> KeyToPath {
    KeyToPath {
        key: key.to_owned(),
        path: path.to_owned(),
        mode: None,
    }
}

/// The dataplane's pod template: the container, its Secret references and volumes, and the
/// security settings.
fn pod_template(
    tenant: &Tenant,
    options: &Options,
    config_map: &ConfigMap,
    storage: &Storage<'_>,
) -> Result<PodTemplateSpec, BuildError> {
    let spec = dataplane(tenant);
    let tls_secret = match &spec.tls {
        Some(tls) => tls.secret_ref.name.clone(),
        None => names::self_signed_tls(tenant)?,
    };
    let config_map_name = config_map
        .metadata
        .name
        .clone()
        .unwrap_or(names::config_map(tenant)?);

    let mut env = vec![EnvVar {
        name: "MCP_LOG_FORMAT".to_owned(),
        value: Some("json".to_owned()),
        ..EnvVar::default()
    }];
    let mut volumes = vec![
        // One projected volume for the configuration and the certificates: /etc/mcp/config.yaml,
        // /etc/mcp/tls/tls.{crt,key} and /etc/mcp/admin/{tls.crt,tls.key,token}, without mounting one read-only volume inside
        // another. A renewed certificate appears in place.
        Volume {
            name: "etc".to_owned(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(FILE_MODE),
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: config_map_name,
                            items: Some(vec![
                                key_to_path(CONFIG_KEY, CONFIG_KEY),
                                key_to_path(PIPELINES_KEY, PIPELINES_KEY),
                            ]),
                            optional: Some(false),
                        }),
                        ..VolumeProjection::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: tls_secret,
                            items: Some(vec![
                                key_to_path("tls.crt", &format!("{TLS_DIR}/tls.crt")),
                                key_to_path("tls.key", &format!("{TLS_DIR}/tls.key")),
                            ]),
                            optional: Some(false),
                        }),
                        ..VolumeProjection::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: names::admin_secret(tenant)?,
                            items: Some(vec![
                                key_to_path("tls.crt", &format!("{ADMIN_DIR}/tls.crt")),
                                key_to_path("tls.key", &format!("{ADMIN_DIR}/tls.key")),
                                key_to_path(
                                    ADMIN_TOKEN_KEY,
                                    &format!("{ADMIN_DIR}/{ADMIN_TOKEN_KEY}"),
                                ),
                            ]),
                            optional: Some(false),
                        }),
                        ..VolumeProjection::default()
                    },
                ]),
            }),
            ..Volume::default()
        },
        empty_dir("tmp"),
    ];
    match storage {
        Storage::Embedded { .. } => {} // DATA_VOLUME comes from the claim template.
        Storage::Postgres { postgres, s3 } => {
            env.push(secret_env(
                STORE_URL_ENV,
                &postgres.secret_ref.name,
                POSTGRES_URI_KEY,
            ));
            env.push(secret_env(
                S3_ACCESS_KEY_ID_ENV,
                &s3.secret_ref.name,
                S3_ACCESS_KEY_ID_KEY,
            ));
            env.push(secret_env(
                S3_SECRET_ACCESS_KEY_ENV,
                &s3.secret_ref.name,
                S3_SECRET_ACCESS_KEY_KEY,
            ));
            volumes.push(empty_dir(DATA_VOLUME));
        }
    }

    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(options.image.clone()),
        image_pull_policy: options.image_pull_policy.clone(),
        args: Some(ARGS.iter().map(|a| (*a).to_owned()).collect()),
        ports: Some(
            [IMAP, IMAPS, LMTP, METRICS, ADMIN]
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.to_owned()),
                    container_port: p.number,
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        env: Some(env),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        // Migrations of a large store may take a while on first start.
        startup_probe: Some(probe(2, 150)),
        liveness_probe: Some(probe(10, 3)),
        readiness_probe: Some(probe(5, 2)),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            mount("etc", CONFIG_DIR, true),
            mount(DATA_VOLUME, DATA_DIR, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    };

    let topology_spread_constraints = match storage {
        Storage::Embedded { .. } => None,
        Storage::Postgres { .. } => Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(tenant)?),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }]),
    };

    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::common(tenant, labels::DATAPLANE)?),
            annotations: Some(BTreeMap::from([(
                config::HASH_ANNOTATION.to_owned(),
                config::hash(config_map),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            // The dataplane does not call the Kubernetes API (yet): no token in the pod.
            automount_service_account_token: Some(false),
            // Service environment variables are noise for a process that uses none.
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS),
                run_as_group: Some(RUN_AS),
                fs_group: Some(RUN_AS),
                fs_group_change_policy: Some("OnRootMismatch".to_owned()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    localhost_profile: None,
                }),
                sysctls: Some(vec![Sysctl {
                    name: UNPRIVILEGED_PORT_SYSCTL.to_owned(),
                    value: "0".to_owned(),
                }]),
                ..PodSecurityContext::default()
            }),
            topology_spread_constraints,
            ..PodSpec::default()
        }),
    })
}
