//! Specification of a Tenant's children, checked without a cluster against the samples in
//! `config/samples/`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use mcp_crds::Tenant;
use serde_json::Value;

use super::*;

const UID: &str = "0f6b3c52-8a41-4d1e-9c57-3f1e2b7a9d10";
/// The production-shaped sample: Postgres + S3, three replicas, a TLS Secret, OIDC.
const ACME: &str = include_str!("../../../config/samples/k8s/tenant.yaml");
/// The standalone sample: nothing but a domain, so embedded storage and one replica.
const EXAMPLE: &str = include_str!("../../../config/samples/standalone/tenant.yaml");

/// Values the sample Secrets `acme-postgres`, `acme-s3` and `acme-tls` would hold.
const SECRET_VALUES: [&str; 4] = [
    "postgres://mcp:pg-Secr3t@db.acme.svc:5432/mail?sslmode=verify-full",
    "AKIAACMESAMPLEKEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYACMESECRET",
    "-----BEGIN PRIVATE KEY-----",
];

fn tenant(yaml: &str) -> Tenant {
    let mut t: Tenant = yaml_serde::from_str(yaml).expect("sample Tenant");
    t.metadata.uid = Some(UID.to_owned());
    t
}

/// `EXAMPLE` with `spec.dataplane` replaced by `dataplane` (a YAML flow mapping).
fn example_with(dataplane: &str) -> Tenant {
    tenant(&format!(
        "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: example}}\n\
         spec: {{domains: [example.com], dataplane: {dataplane}}}"
    ))
}

fn acme_with(edit: impl FnOnce(&mut Tenant)) -> Tenant {
    let mut t = tenant(ACME);
    edit(&mut t);
    t
}

fn options() -> Options {
    Options::new("registry.example/mcp:0.1.0")
}

fn children(t: &Tenant) -> Children {
    build(t, &options()).expect("children build")
}

/// Kind, metadata and JSON of every child.
fn objects(c: &Children) -> Vec<(&'static str, ObjectMeta, Value)> {
    fn one<K: Resource<DynamicType = ()> + serde::Serialize>(
        k: &K,
    ) -> (&'static str, ObjectMeta, Value) {
        let kind: &'static str = match K::kind(&()).as_ref() {
            "Namespace" => "Namespace",
            "ConfigMap" => "ConfigMap",
            "StatefulSet" => "StatefulSet",
            "Deployment" => "Deployment",
            "Service" => "Service",
            "NetworkPolicy" => "NetworkPolicy",
            "PodDisruptionBudget" => "PodDisruptionBudget",
            other => panic!("unexpected kind {other}"),
        };
        (
            kind,
            k.meta().clone(),
            serde_json::to_value(k).expect("json"),
        )
    }
    let mut out = vec![
        one(&c.namespace),
        one(&c.config_map),
        one(&c.service),
        one(&c.network_policy),
    ];
    match &c.workload {
        Workload::StatefulSet(s) => out.push(one(s.as_ref())),
        Workload::Deployment(d) => out.push(one(d.as_ref())),
    }
    if let Some(p) = &c.pod_disruption_budget {
        out.push(one(p));
    }
    out
}

fn template(c: &Children) -> &PodTemplateSpec {
    match &c.workload {
        Workload::StatefulSet(s) => &s.spec.as_ref().expect("spec").template,
        Workload::Deployment(d) => &d.spec.as_ref().expect("spec").template,
    }
}

fn pod(c: &Children) -> &PodSpec {
    template(c).spec.as_ref().expect("pod spec")
}

fn container(c: &Children) -> &Container {
    &pod(c).containers[0]
}

fn config_yaml(c: &Children) -> Value {
    let text = &c.config_map.data.as_ref().expect("data")[config::CONFIG_KEY];
    yaml_serde::from_str(text).expect("config is YAML")
}

fn config_hash(c: &Children) -> String {
    template(c)
        .metadata
        .as_ref()
        .expect("metadata")
        .annotations
        .as_ref()
        .expect("annotations")[config::HASH_ANNOTATION]
        .clone()
}

#[test]
fn storage_backend_decides_the_workload_kind() {
    struct Case {
        name: &'static str,
        tenant: Tenant,
        kind: &'static str,
        replicas: i32,
        claim: Option<(&'static str, Option<&'static str>)>,
    }
    let cases = [
        Case {
            name: "standalone sample: embedded by default",
            tenant: tenant(EXAMPLE),
            kind: "StatefulSet",
            replicas: 1,
            claim: Some(("10Gi", None)),
        },
        Case {
            name: "embedded with size and class",
            tenant: example_with(
                "{storage: {backend: Embedded, embedded: {size: 50Gi, storageClassName: fast}}}",
            ),
            kind: "StatefulSet",
            replicas: 1,
            claim: Some(("50Gi", Some("fast"))),
        },
        Case {
            name: "embedded scaled to zero",
            tenant: example_with("{replicas: 0}"),
            kind: "StatefulSet",
            replicas: 0,
            claim: Some(("10Gi", None)),
        },
        Case {
            name: "k8s sample: Postgres + S3, three replicas",
            tenant: tenant(ACME),
            kind: "Deployment",
            replicas: 3,
            claim: None,
        },
    ];
    for case in cases {
        let c = children(&case.tenant);
        match (&c.workload, case.kind) {
            (Workload::StatefulSet(s), "StatefulSet") => {
                let spec = s.spec.as_ref().expect("spec");
                assert_eq!(spec.replicas, Some(case.replicas), "{}", case.name);
                let claims = spec.volume_claim_templates.as_ref().expect("claims");
                let (size, class) = case.claim.expect("claim expected");
                let claim = claims[0].spec.as_ref().expect("claim spec");
                assert_eq!(
                    claims[0].metadata.name.as_deref(),
                    Some(workload::DATA_VOLUME)
                );
                assert_eq!(
                    claim
                        .resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref())
                        .expect("requests")["storage"]
                        .0,
                    size,
                    "{}",
                    case.name
                );
                assert_eq!(claim.storage_class_name.as_deref(), class, "{}", case.name);
                assert_eq!(
                    claim.access_modes.as_deref(),
                    Some(&["ReadWriteOnce".to_owned()][..])
                );
            }
            (Workload::Deployment(d), "Deployment") => {
                let spec = d.spec.as_ref().expect("spec");
                assert_eq!(spec.replicas, Some(case.replicas), "{}", case.name);
                assert!(case.claim.is_none());
                let data = pod(&c)
                    .volumes
                    .iter()
                    .flatten()
                    .find(|v| v.name == workload::DATA_VOLUME)
                    .expect("data volume");
                assert!(data.empty_dir.is_some(), "{}: stateless pods", case.name);
            }
            (w, want) => panic!("{}: want {want}, got {w:?}", case.name),
        }
    }
}

#[test]
fn invalid_or_incomplete_tenants_are_errors_naming_the_field() {
    let no_uid = {
        let mut t = tenant(EXAMPLE);
        t.metadata.uid = None;
        t
    };
    let no_name = {
        let mut t = tenant(EXAMPLE);
        t.metadata.name = None;
        t
    };
    let cases = [
        ("no uid", no_uid, "metadata.uid"),
        ("no name", no_name, "metadata.name"),
        (
            "embedded with two replicas",
            example_with("{replicas: 2}"),
            "spec.dataplane.replicas",
        ),
        (
            "Postgres without its sections",
            example_with("{storage: {backend: Postgres}}"),
            "spec.dataplane.storage.postgres",
        ),
        (
            "S3 endpoint with a bad port",
            acme_with(|t| {
                let s3 = t.spec.dataplane.as_mut().and_then(|d| d.storage.as_mut());
                s3.and_then(|s| s.s3.as_mut()).expect("s3").endpoint =
                    Some("https://s3:99999".to_owned());
            }),
            "spec.dataplane.storage.s3.endpoint",
        ),
    ];
    for (name, t, field) in cases {
        let err = build(&t, &options()).expect_err(name).to_string();
        assert!(err.contains(field), "{name}: {err}");
    }
}

#[test]
fn every_child_is_owned_by_the_tenant_and_lives_in_its_namespace() {
    for (sample, ns) in [(ACME, "mcp-acme"), (EXAMPLE, "mcp-example")] {
        let t = tenant(sample);
        let c = children(&t);
        let want = owner_reference(&t).expect("owner");
        assert_eq!(want.api_version, "mcp.dev/v1alpha1");
        assert_eq!(want.kind, "Tenant");
        assert_eq!(want.uid, UID);
        assert_eq!(Some(want.name.clone()), t.metadata.name);
        assert_eq!(want.controller, Some(true));
        assert_eq!(want.block_owner_deletion, Some(true));
        for (kind, meta, _) in objects(&c) {
            assert_eq!(meta.owner_references, Some(vec![want.clone()]), "{kind}");
            if kind == "Namespace" {
                assert_eq!(meta.name.as_deref(), Some(ns));
                assert_eq!(meta.namespace, None);
            } else {
                assert_eq!(meta.namespace.as_deref(), Some(ns), "{kind}");
            }
        }
    }
}

#[test]
fn names_are_deterministic_bounded_dns_labels() {
    let long = format!(
        "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {}.example.com}}\n\
         spec: {{domains: [example.com]}}",
        "very-long-tenant-name-".repeat(8) + "x"
    );
    for sample in [ACME, EXAMPLE, long.as_str()] {
        let t = tenant(sample);
        let (a, b) = (children(&t), children(&t));
        assert_eq!(a, b, "building twice gives the same children");
        for (kind, meta, _) in objects(&a) {
            let name = meta.name.expect("name");
            let max = if matches!(kind, "StatefulSet" | "Deployment") {
                names::MAX_WORKLOAD
            } else {
                names::MAX_LABEL
            };
            assert!(names::is_dns_label(&name, max), "{kind} {name:?}");
        }
    }
    let c = children(&tenant(ACME));
    assert_eq!(
        c.config_map.metadata.name.as_deref(),
        Some("mcp-acme-dataplane-config")
    );
    assert_eq!(
        c.service.metadata.name.as_deref(),
        Some("mcp-acme-dataplane")
    );
}

#[test]
fn no_secret_value_reaches_any_child_only_references() {
    let c = children(&tenant(ACME));
    for (kind, _, json) in objects(&c) {
        let text = json.to_string();
        for value in SECRET_VALUES {
            assert!(!text.contains(value), "{kind} contains a secret value");
        }
        if kind != "ConfigMap" {
            assert!(json.get("data").is_none(), "{kind} carries data");
        }
    }
    // Every variable that comes from a Secret comes by secretKeyRef to the named Secret.
    let env = container(&c).env.as_ref().expect("env");
    let from_secret: Vec<(&str, &str, &str)> = env
        .iter()
        .filter_map(|e| {
            let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
            assert!(e.value.is_none(), "{} has a literal value", e.name);
            Some((e.name.as_str(), r.name.as_str(), r.key.as_str()))
        })
        .collect();
    assert_eq!(
        from_secret,
        [
            ("MCP_STORE_URL", "acme-postgres", "uri"),
            ("AWS_ACCESS_KEY_ID", "acme-s3", "accessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "acme-s3", "secretAccessKey"),
        ]
    );
    let literal: Vec<&str> = env
        .iter()
        .filter(|e| e.value.is_some())
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(literal, ["MCP_LOG_FORMAT"]);

    // The TLS Secret is projected, by name (without spec.tls it is the operator's own), and
    // so is the admin API's Secret.
    for (t, secret) in [
        (tenant(ACME), ["acme-tls", "mcp-acme-dataplane-admin"]),
        (
            tenant(EXAMPLE),
            ["mcp-example-dataplane-tls", "mcp-example-dataplane-admin"],
        ),
    ] {
        let c = children(&t);
        let projected: Vec<&str> = pod(&c)
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(|s| s.secret.as_ref().map(|s| s.name.as_str()))
            .collect();
        assert_eq!(projected, secret);
        assert!(pod(&c).volumes.iter().flatten().all(|v| v.secret.is_none()));
    }
}

#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    for sample in [ACME, EXAMPLE] {
        let c = children(&tenant(sample));
        let pod = pod(&c);
        let psc = pod.security_context.as_ref().expect("pod securityContext");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(workload::RUN_AS));
        assert_eq!(psc.fs_group, Some(workload::RUN_AS));
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        let sysctls = psc.sysctls.as_ref().expect("sysctls");
        assert_eq!(sysctls[0].name, workload::UNPRIVILEGED_PORT_SYSCTL);
        assert_eq!(sysctls[0].value, "0");
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert!(pod.host_network.is_none() && pod.host_pid.is_none());

        let c0 = container(&c);
        let sc = c0
            .security_context
            .as_ref()
            .expect("container securityContext");
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.privileged, Some(false));
        let caps = sc.capabilities.as_ref().expect("capabilities");
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert!(caps.add.is_none());

        for (which, probe) in [
            ("startup", &c0.startup_probe),
            ("liveness", &c0.liveness_probe),
            ("readiness", &c0.readiness_probe),
        ] {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .expect(which);
            assert_eq!(get.path.as_deref(), Some("/healthz"), "{which}");
            assert_eq!(
                get.port,
                IntOrString::String("metrics".to_owned()),
                "{which}"
            );
        }
        assert_eq!(
            c0.args.as_deref().expect("args"),
            workload::ARGS.map(str::to_owned)
        );
        assert_eq!(c0.image.as_deref(), Some("registry.example/mcp:0.1.0"));
        let ports: Vec<(Option<&str>, i32)> = c0
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [
                (Some("imap"), 143),
                (Some("imaps"), 993),
                (Some("lmtp"), 24),
                (Some("metrics"), 9090),
                (Some("admin"), 9443)
            ]
        );
        // Writable places are volumes; the root filesystem is not.
        let mounts: BTreeSet<&str> = c0
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, BTreeSet::from(["/etc/mcp", "/tmp", "/var/lib/mcp"]));
    }
}

#[test]
fn resources_come_from_the_spec_or_sane_defaults() {
    let acme = children(&tenant(ACME));
    let r = container(&acme).resources.as_ref().expect("resources");
    assert_eq!(r.requests.as_ref().expect("requests")["cpu"].0, "500m");
    assert_eq!(r.requests.as_ref().expect("requests")["memory"].0, "512Mi");
    assert_eq!(r.limits.as_ref().expect("limits")["memory"].0, "1Gi");

    let example = children(&tenant(EXAMPLE));
    let r = container(&example).resources.as_ref().expect("resources");
    assert_eq!(r.requests.as_ref().expect("requests")["cpu"].0, "100m");
    assert_eq!(r.requests.as_ref().expect("requests")["memory"].0, "256Mi");
    assert_eq!(r.limits.as_ref().expect("limits")["memory"].0, "1Gi");
    assert!(
        !r.limits.as_ref().expect("limits").contains_key("cpu"),
        "no CPU throttling"
    );
}

#[test]
fn labels_are_recommended_ones_plus_the_tenant_and_selectors_are_stable() {
    let c = children(&tenant(ACME));
    for (kind, meta, _) in objects(&c) {
        let l = meta.labels.expect("labels");
        assert_eq!(l[labels::NAME], "mcp", "{kind}");
        assert_eq!(l[labels::INSTANCE], "acme", "{kind}");
        assert_eq!(l[labels::PART_OF], "mcp", "{kind}");
        assert_eq!(l[labels::MANAGED_BY], "mcp-operator", "{kind}");
        assert_eq!(l[labels::TENANT], "acme", "{kind}");
        let component = if kind == "Namespace" {
            "tenant"
        } else {
            "dataplane"
        };
        assert_eq!(l[labels::COMPONENT], component, "{kind}");
    }
    let ns = c.namespace.metadata.labels.as_ref().expect("labels");
    assert_eq!(ns["pod-security.kubernetes.io/enforce"], "restricted");

    // The selector picks the pods, is the same everywhere, and does not move when the spec
    // does (workload selectors are immutable).
    let selector = labels::selector(&tenant(ACME)).expect("selector");
    let pod_labels = template(&c)
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    for (k, v) in &selector {
        assert_eq!(pod_labels.expect("pod labels").get(k), Some(v));
    }
    assert_eq!(
        c.service.spec.as_ref().and_then(|s| s.selector.as_ref()),
        Some(&selector)
    );
    let scaled = children(&acme_with(|t| {
        let d = t.spec.dataplane.as_mut().expect("dataplane");
        d.replicas = 5;
        d.resources = None;
    }));
    assert_eq!(
        labels::selector(&tenant(ACME)).expect("selector"),
        scaled
            .service
            .spec
            .and_then(|s| s.selector)
            .expect("selector")
    );
}

#[test]
fn config_hash_changes_with_the_configuration_and_only_with_it() {
    let base = config_hash(&children(&tenant(ACME)));
    assert_eq!(base.len(), 64);
    fn s3(t: &mut Tenant) -> &mut mcp_crds::tenant::S3Storage {
        t.spec
            .dataplane
            .as_mut()
            .and_then(|d| d.storage.as_mut())
            .and_then(|s| s.s3.as_mut())
            .expect("s3")
    }
    let cases: [(&str, Tenant, bool); 10] = [
        ("same spec", tenant(ACME), false),
        (
            "replicas",
            acme_with(|t| t.spec.dataplane.as_mut().expect("d").replicas = 7),
            false,
        ),
        (
            "resources",
            acme_with(|t| t.spec.dataplane.as_mut().expect("d").resources = None),
            false,
        ),
        (
            "quota rates and mailbox default",
            acme_with(|t| {
                let q = t.spec.quota.as_mut().expect("quota");
                q.messages_per_day = None;
                q.api_rate = None;
                q.mailbox_default = None;
            }),
            false,
        ),
        // config.yaml carries it as tenantStorageQuota, read at start-up (docs/quota.md).
        ("quota storage", acme_with(|t| t.spec.quota = None), true),
        (
            "TLS Secret name (same paths)",
            acme_with(|t| {
                t.spec
                    .dataplane
                    .as_mut()
                    .expect("d")
                    .tls
                    .as_mut()
                    .expect("tls")
                    .secret_ref
                    .name = "other".to_owned()
            }),
            false,
        ),
        (
            "S3 bucket",
            acme_with(|t| s3(t).bucket = "other-bucket".to_owned()),
            true,
        ),
        (
            "S3 prefix",
            acme_with(|t| s3(t).prefix = Some("p/".to_owned())),
            true,
        ),
        (
            "domains",
            acme_with(|t| t.spec.domains.push("new.example".to_owned())),
            true,
        ),
        (
            "S3 path style",
            acme_with(|t| s3(t).force_path_style = false),
            true,
        ),
    ];
    for (name, t, changes) in cases {
        let hash = config_hash(&children(&t));
        assert_eq!(hash != base, changes, "{name}");
    }
    assert_ne!(base, config_hash(&children(&tenant(EXAMPLE))));
}

/// The dataplane hot-reloads `pipelines.yaml`: a change of the Pipelines alone must not roll
/// the pods, so it is projected next to config.yaml but outside the pod-template hash.
#[test]
fn pipelines_are_rendered_next_to_the_config_without_rolling_the_pods() {
    let plain = children(&tenant(ACME));
    assert_eq!(config_yaml(&plain)["pipelines"], config::PIPELINES_KEY);
    let empty = &plain.config_map.data.as_ref().expect("data")[config::PIPELINES_KEY];
    assert!(!empty.contains("---"), "no Pipeline, no document:\n{empty}");
    let mut with_pipelines = plain.config_map.clone();
    config::set_pipelines(
        &mut with_pipelines,
        "---\napiVersion: mcp.dev/v1alpha1\nkind: Pipeline\n".to_owned(),
    );
    assert_ne!(with_pipelines, plain.config_map);
    assert_eq!(
        config::hash(&with_pipelines),
        config::hash(&plain.config_map)
    );
    let rebuilt = workload::build(&tenant(ACME), &options(), &with_pipelines).expect("workload");
    assert_eq!(rebuilt, plain.workload, "same pod template, no rollout");
    // Both keys are projected into /etc/mcp.
    let items: Vec<String> = pod(&plain)
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.config_map.as_ref())
        .flat_map(|c| c.items.iter().flatten())
        .map(|i| i.path.clone())
        .collect();
    assert_eq!(items, [config::CONFIG_KEY, config::PIPELINES_KEY]);
}

#[test]
fn config_file_mirrors_the_dataplane_settings() {
    let example = config_yaml(&children(&tenant(EXAMPLE)));
    let acme = config_yaml(&children(&tenant(ACME)));
    for (config, tenant) in [(&example, "example"), (&acme, "acme")] {
        assert_eq!(config["tenant"], tenant);
        assert_eq!(config["imap"], "0.0.0.0:143");
        assert_eq!(config["imaps"], "0.0.0.0:993");
        assert_eq!(config["lmtp"], "0.0.0.0:24");
        assert_eq!(config["metrics"], "0.0.0.0:9090");
        assert_eq!(config["dataDir"], "/var/lib/mcp");
        assert_eq!(config["admin"], "0.0.0.0:9443");
        // Relative to the configuration file's directory, where the Secrets are projected.
        assert_eq!(config["tlsCert"], "tls/tls.crt");
        assert_eq!(config["tlsKey"], "tls/tls.key");
        assert_eq!(config["adminTlsCert"], "admin/tls.crt");
        assert_eq!(config["adminTlsKey"], "admin/tls.key");
        assert_eq!(config["adminTokenFile"], "admin/token");
        // The dataplane reads the file back into the same type.
        let text = yaml_serde::to_string(config).expect("yaml");
        let back: mcp_crds::dataplane::DataplaneConfig =
            yaml_serde::from_str(&text).expect("the dataplane's type reads it");
        assert_eq!(back.tenant, tenant);
    }
    assert_eq!(example["storeUrl"], "sqlite:///var/lib/mcp/meta.sqlite");
    assert_eq!(example["blobDir"], "/var/lib/mcp/blobs");
    assert!(example.get("s3").is_none() && example.get("storeUrlEnv").is_none());

    assert_eq!(acme["storeUrlEnv"], "MCP_STORE_URL");
    assert!(acme.get("storeUrl").is_none() && acme.get("blobDir").is_none());
    assert_eq!(
        acme["s3"],
        serde_json::json!({
            "bucket": "acme-mail",
            "prefix": "acme/",
            "endpoint": "https://s3.storage.svc:9000",
            "region": "us-east-1",
            "forcePathStyle": true,
            "accessKeyIdEnv": "AWS_ACCESS_KEY_ID",
            "secretAccessKeyEnv": "AWS_SECRET_ACCESS_KEY",
        })
    );
    assert_eq!(
        acme["domains"],
        serde_json::json!(["acme.example", "mail.acme.example"])
    );
}

#[test]
fn service_names_its_ports() {
    let c = children(&tenant(ACME));
    let spec = c.service.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports: Vec<(&str, i32, IntOrString)> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.name.as_deref().expect("name"),
                p.port,
                p.target_port.clone().expect("target"),
            )
        })
        .collect();
    let named = |n: &str| IntOrString::String(n.to_owned());
    assert_eq!(
        ports,
        [
            ("imap", 143, named("imap")),
            ("imaps", 993, named("imaps")),
            ("lmtp", 24, named("lmtp")),
            ("metrics", 9090, named("metrics")),
            ("admin", 9443, named("admin")),
        ]
    );
}

#[test]
fn network_policy_admits_clients_mtas_and_monitoring_and_egresses_to_backends() {
    let c = children(&tenant(ACME));
    let json = serde_json::to_value(&c.network_policy).expect("json");
    let spec = &json["spec"];
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "acme"
    );
    assert_eq!(
        spec["ingress"],
        serde_json::json!([
            {"ports": [{"protocol": "TCP", "port": 143}, {"protocol": "TCP", "port": 993}]},
            {"ports": [{"protocol": "TCP", "port": 24}],
             "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"mcp.dev/role": "mta"}}}]},
            {"ports": [{"protocol": "TCP", "port": 9090}],
             "from": [{"namespaceSelector": {"matchLabels": {"mcp.dev/monitoring": "true"}}}]},
            {"ports": [{"protocol": "TCP", "port": 9443}],
             "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mcp-system"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mcp", "app.kubernetes.io/component": "operator"}}}]},
        ])
    );
    let dns = serde_json::json!({"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]});
    // acme: OIDC issuer 443, PostgreSQL 5432, the S3 endpoint's 9000.
    assert_eq!(
        spec["egress"],
        serde_json::json!([dns, {"ports": [
            {"protocol": "TCP", "port": 443},
            {"protocol": "TCP", "port": 5432},
            {"protocol": "TCP", "port": 9000},
        ]}])
    );

    let cases: [(&str, Tenant, &[i32]); 3] = [
        ("embedded, password only", tenant(EXAMPLE), &[]),
        (
            "S3 on AWS",
            acme_with(|t| {
                t.spec.auth = None;
                let s = t
                    .spec
                    .dataplane
                    .as_mut()
                    .and_then(|d| d.storage.as_mut())
                    .expect("storage");
                s.s3.as_mut().expect("s3").endpoint = None;
            }),
            &[443, 5432],
        ),
        (
            "LDAP",
            tenant(&format!(
                "{EXAMPLE}\n  auth: {{ldap: {{url: 'ldaps://dir.example', userSearchBase: 'dc=example'}}}}"
            )),
            &[636],
        ),
    ];
    for (name, t, want) in cases {
        let ports: Vec<i32> = network_policy::egress_tcp_ports(&t)
            .expect(name)
            .into_iter()
            .collect();
        assert_eq!(ports, want, "{name}");
        let np = network_policy::build(&t, &options()).expect(name);
        let egress = np.spec.and_then(|s| s.egress).expect("egress");
        assert_eq!(egress.len(), if want.is_empty() { 1 } else { 2 }, "{name}");
    }
}

#[test]
fn disruption_budget_only_with_more_than_one_replica() {
    let cases = [
        ("embedded", tenant(EXAMPLE), false),
        (
            "postgres, one replica",
            acme_with(|t| t.spec.dataplane.as_mut().expect("d").replicas = 1),
            false,
        ),
        ("postgres, three replicas", tenant(ACME), true),
    ];
    for (name, t, want) in cases {
        let pdb = children(&t).pod_disruption_budget;
        assert_eq!(pdb.is_some(), want, "{name}");
        if let Some(pdb) = pdb {
            let spec = pdb.spec.expect("spec");
            assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
            assert_eq!(
                spec.selector.and_then(|s| s.match_labels),
                Some(labels::selector(&t).expect("selector"))
            );
        }
    }
}
