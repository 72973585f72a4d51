//! Rendering of PluginDeployments, table-driven: sidecars over TCP and Unix sockets, service
//! mode, the sandbox's defaults, overrides and refusals, and resources.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use mcp_crds::PluginDeployment;
use mcp_crds::plugin::{
    CLIENT_TLS_DIR, ENV_LISTEN, ENV_TLS_CERT, ENV_TLS_CLIENT_CA, ENV_TLS_KEY, SERVER_TLS_DIR,
    SIDECAR_SOCKET_DIR,
};

use super::*;
use crate::tenant::{self, Children, Options, Workload};

/// A PluginDeployment `name` in `mcp-acme` whose spec is `spec` (YAML flow mapping entries
/// after the required ones), created at second `created` of 2026-01-01.
fn plugin(name: &str, created: u32, spec: &str) -> PluginDeployment {
    let extra = if spec.is_empty() {
        String::new()
    } else {
        format!(", {spec}")
    };
    yaml_serde::from_str(&format!(
        "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\n\
         metadata: {{name: {name}, namespace: mcp-acme, uid: uid-{name}, generation: 1, \
         creationTimestamp: \"2026-01-01T00:00:{created:02}Z\"}}\n\
         spec: {{image: reg/plugin:1, protocol: {{min: 1, max: 2}}, stages: [deliver]{extra}}}"
    ))
    .expect("plugin")
}

const SERVICE: &str = "mode: service, port: 7000, replicas: 3, \
    tls: {serverSecretRef: {name: srv}, clientSecretRef: {name: cli}}";

fn children(plugins: &[&PluginDeployment]) -> Children {
    let t = tenant::test_tenant();
    let mut c = tenant::build(&t, &Options::new("registry.example/mcp:1")).expect("children");
    pod::inject(&mut c, &t, plugins).expect("inject");
    c
}

fn pod_spec(c: &Children) -> &PodSpec {
    match &c.workload {
        Workload::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
        Workload::Deployment(d) => d.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
    }
    .expect("pod spec")
}

fn env(c: &Container) -> BTreeMap<String, String> {
    c.env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

fn mounts(c: &Container) -> BTreeMap<String, String> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.name.clone()))
        .collect()
}

fn dataplane(c: &Children) -> &Container {
    pod_spec(c)
        .containers
        .iter()
        .find(|c| c.name == "dataplane")
        .expect("dataplane container")
}

#[test]
fn sidecars_are_native_sidecars_listening_where_the_dataplane_looks() {
    // (what, spec, listen, socket volume expected)
    let cases = [
        ("tcp", "port: 7001", "tcp://127.0.0.1:7001", false),
        ("default port", "", "tcp://127.0.0.1:50051", false),
        (
            "unix",
            "transport: unix",
            "unix:///var/run/mcp/plugins/scan.sock",
            true,
        ),
    ];
    for (what, spec, listen, sockets) in cases {
        let p = plugin(
            "scan",
            0,
            &format!(
                "command: [/bin/scan], args: [--fast], env: [{{name: LEVEL, value: high}}]{}{spec}",
                if spec.is_empty() { "" } else { ", " }
            ),
        );
        let c = children(&[&p]);
        let pod = pod_spec(&c);
        let init = pod.init_containers.as_ref().expect(what);
        assert_eq!(init.len(), 1, "{what}");
        let s = &init[0];
        assert_eq!(s.name, "plugin-scan", "{what}");
        assert_eq!(
            s.restart_policy.as_deref(),
            Some("Always"),
            "{what}: native"
        );
        assert_eq!(s.image.as_deref(), Some("reg/plugin:1"));
        assert_eq!(s.command, Some(vec!["/bin/scan".to_owned()]));
        assert_eq!(s.args, Some(vec!["--fast".to_owned()]));
        let e = env(s);
        assert_eq!(e[ENV_LISTEN], listen, "{what}");
        assert_eq!(e["LEVEL"], "high");
        assert_eq!(
            s.env.as_ref().expect("env").last().map(|e| e.name.as_str()),
            Some(ENV_LISTEN)
        );
        assert_eq!(
            s.security_context,
            Some(sandbox::default_security_context())
        );
        assert_eq!(s.resources, Some(sandbox::resources(None)));
        assert_eq!(mounts(s)["/tmp"], "plugin-tmp-scan");
        let volumes: Vec<&str> = pod
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert!(volumes.contains(&"plugin-tmp-scan"), "{what}: {volumes:?}");
        assert_eq!(
            volumes.contains(&pod::SOCKETS_VOLUME),
            sockets,
            "{what}: {volumes:?}"
        );
        assert_eq!(
            mounts(dataplane(&c))
                .get(SIDECAR_SOCKET_DIR)
                .map(String::as_str),
            sockets.then_some(pod::SOCKETS_VOLUME),
            "{what}"
        );
        assert_eq!(
            mounts(s).get(SIDECAR_SOCKET_DIR).map(String::as_str),
            sockets.then_some(pod::SOCKETS_VOLUME),
            "{what}"
        );
        // Sidecars are reached over loopback: no egress rule, nothing projected.
        let before = children(&[]);
        assert_eq!(c.network_policy, before.network_policy, "{what}");
    }
}

#[test]
fn no_plugin_changes_nothing_and_status_never_matters() {
    let t = tenant::test_tenant();
    let plain = tenant::build(&t, &Options::new("registry.example/mcp:1")).expect("children");
    assert_eq!(children(&[]), plain);
    let (a, b) = (plugin("a", 0, ""), plugin("b", 1, SERVICE));
    let mut a2 = a.clone();
    a2.status = Some(mcp_crds::PluginDeploymentStatus {
        ready_endpoints: 3,
        negotiated_version: Some(2),
        ..Default::default()
    });
    a2.metadata.resource_version = Some("99".into());
    assert_eq!(children(&[&a, &b]), children(&[&a2, &b]));
    // Sidecars are in name order whatever the input order.
    let z = plugin("z", 2, "port: 7002");
    let names = |c: &Children| -> Vec<String> {
        pod_spec(c)
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names(&children(&[&z, &a])), ["plugin-a", "plugin-z"]);
    assert_eq!(children(&[&z, &a]), children(&[&a, &z]));
}

#[test]
fn service_plugins_give_the_dataplane_a_client_certificate_and_egress() {
    let p = plugin("scan", 0, SERVICE);
    let c = children(&[&p]);
    let pod = pod_spec(&c);
    assert!(pod.init_containers.is_none(), "no sidecar in service mode");
    let etc = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "etc")
        .and_then(|v| v.projected.as_ref())
        .expect("etc");
    let projection = etc
        .sources
        .iter()
        .flatten()
        .filter_map(|s| s.secret.as_ref())
        .find(|s| s.name == "cli")
        .expect("the client Secret is projected");
    assert_eq!(
        projection.optional,
        Some(true),
        "a missing Secret costs the plugin only"
    );
    let paths: Vec<String> = projection
        .items
        .iter()
        .flatten()
        .map(|i| format!("/etc/mcp/{}", i.path))
        .collect();
    assert_eq!(
        paths,
        ["tls.crt", "tls.key", "ca.crt"].map(|k| format!("{CLIENT_TLS_DIR}/scan/{k}"))
    );
    let egress = c
        .network_policy
        .spec
        .as_ref()
        .and_then(|s| s.egress.as_ref())
        .expect("egress");
    let rule = egress.last().expect("a rule");
    let to = rule.to.as_ref().expect("to")[0]
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .expect("pod selector");
    assert_eq!(to["app.kubernetes.io/component"], "plugin");
    assert_eq!(to["app.kubernetes.io/instance"], "acme");
    let ports: Vec<_> = rule
        .ports
        .iter()
        .flatten()
        .map(|p| (p.protocol.clone(), p.port.clone()))
        .collect();
    assert_eq!(
        ports,
        [(
            Some("TCP".to_owned()),
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(7000))
        )]
    );
}

#[test]
fn service_children_are_owned_hardened_and_reachable_by_the_dataplane_only() {
    let t = tenant::test_tenant();
    let p = plugin(
        "scan",
        0,
        &format!("{SERVICE}, env: [{{name: A, value: b}}], command: [/scan]"),
    );
    let ch = service::build(&t, &p).expect("children");
    for meta in [
        &ch.deployment.metadata,
        &ch.service.metadata,
        &ch.network_policy.metadata,
    ] {
        assert_eq!(meta.name.as_deref(), Some("mcp-plugin-scan"));
        assert_eq!(meta.namespace.as_deref(), Some("mcp-acme"));
        let owner = &meta.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str(),
                owner.controller
            ),
            ("PluginDeployment", "scan", "uid-scan", Some(true))
        );
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "mcp-operator");
        assert_eq!(labels[PLUGIN_LABEL], "scan");
    }
    let spec = ch.deployment.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    let c = &pod.containers[0];
    let e = env(c);
    assert_eq!(e[ENV_LISTEN], "tcp://0.0.0.0:7000");
    assert_eq!(e[ENV_TLS_CERT], format!("{SERVER_TLS_DIR}/tls.crt"));
    assert_eq!(e[ENV_TLS_KEY], format!("{SERVER_TLS_DIR}/tls.key"));
    assert_eq!(e[ENV_TLS_CLIENT_CA], format!("{SERVER_TLS_DIR}/ca.crt"));
    assert_eq!(e["A"], "b");
    assert_eq!(mounts(c)[SERVER_TLS_DIR], "tls");
    assert_eq!(
        c.security_context,
        Some(sandbox::default_security_context())
    );
    let tls = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "tls")
        .and_then(|v| v.secret.as_ref())
        .expect("tls volume");
    assert_eq!(tls.secret_name.as_deref(), Some("srv"));
    // The selector is a subset of the pod labels, and the Service targets the port by name.
    let selector = spec.selector.match_labels.as_ref().expect("selector");
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("pod labels");
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    let svc = ch.service.spec.as_ref().expect("service");
    assert_eq!(svc.selector.as_ref(), Some(selector));
    assert_eq!(svc.ports.as_ref().expect("ports")[0].port, 7000);
    // The NetworkPolicy admits the tenant's dataplane pods only, on the plugin port.
    let np = ch.network_policy.spec.as_ref().expect("np");
    assert_eq!(np.policy_types, Some(vec!["Ingress".to_owned()]));
    let rule = &np.ingress.as_ref().expect("ingress")[0];
    let from = rule.from.as_ref().expect("from");
    assert_eq!(from.len(), 1);
    assert!(from[0].namespace_selector.is_none() && from[0].ip_block.is_none());
    assert_eq!(
        from[0]
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(crate::tenant::labels::selector(&t).expect("selector"))
    );
    // No replicas: one pod.
    let one = plugin(
        "one",
        0,
        "mode: service, tls: {serverSecretRef: {name: s}, clientSecretRef: {name: c}}",
    );
    let d = service::build(&t, &one).expect("one").deployment;
    assert_eq!(d.spec.expect("spec").replicas, Some(1));
}

#[test]
fn security_context_defaults_and_field_by_field_overrides() {
    let d = sandbox::default_security_context();
    assert_eq!(d.run_as_non_root, Some(true));
    assert_eq!(d.read_only_root_filesystem, Some(true));
    assert_eq!(d.allow_privilege_escalation, Some(false));
    assert_eq!(
        d.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        d.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    // (sandbox, expected: the default with these changes)
    type Change = Box<dyn Fn(&mut SecurityContext)>;
    let cases: Vec<(&str, Change)> = vec![
        ("{}", Box::new(|_| {})),
        (
            "{runAsUser: 1000, runAsGroup: 1000}",
            Box::new(|s| {
                s.run_as_user = Some(1000);
                s.run_as_group = Some(1000);
            }),
        ),
        (
            "{readOnlyRootFilesystem: false}",
            Box::new(|s| s.read_only_root_filesystem = Some(false)),
        ),
        (
            "{seccompProfile: {type: Localhost, localhostProfile: p.json}}",
            Box::new(|s| {
                s.seccomp_profile = Some(k8s_openapi::api::core::v1::SeccompProfile {
                    type_: "Localhost".into(),
                    localhost_profile: Some("p.json".into()),
                })
            }),
        ),
        (
            "{capabilities: {drop: [ALL, NET_RAW]}, allowPrivilegeEscalation: false, privileged: false}",
            Box::new(|s| {
                s.capabilities = Some(k8s_openapi::api::core::v1::Capabilities {
                    add: None,
                    drop: Some(vec!["ALL".into(), "NET_RAW".into()]),
                })
            }),
        ),
    ];
    for (sc, change) in cases {
        let p = plugin("p", 0, &format!("sandbox: {{securityContext: {sc}}}"));
        let mut want = sandbox::default_security_context();
        change(&mut want);
        let got = sandbox::security_context(p.spec.sandbox.as_ref()).expect(sc);
        assert_eq!(got, want, "{sc}");
        assert_eq!(check(&p), Ok(()), "{sc}");
    }
}

#[test]
fn insecure_sandboxes_are_refused_naming_the_field_and_not_rendered() {
    let cases = [
        ("{privileged: true}", "securityContext.privileged"),
        (
            "{allowPrivilegeEscalation: true}",
            "securityContext.allowPrivilegeEscalation",
        ),
        (
            "{capabilities: {add: [NET_ADMIN]}}",
            "securityContext.capabilities.add",
        ),
        (
            "{capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}}",
            "securityContext.capabilities.add",
        ),
        (
            "{capabilities: {drop: [NET_RAW]}}",
            "securityContext.capabilities.drop",
        ),
        ("{runAsNonRoot: false}", "securityContext.runAsNonRoot"),
        ("{runAsUser: 0}", "securityContext.runAsUser"),
        (
            "{seccompProfile: {type: Unconfined}}",
            "securityContext.seccompProfile.type",
        ),
        ("{procMount: Unmasked}", "securityContext.procMount"),
        (
            "{windowsOptions: {hostProcess: true}}",
            "securityContext.windowsOptions.hostProcess",
        ),
    ];
    for (sc, field) in cases {
        for mode in ["", SERVICE] {
            let p = plugin(
                "p",
                0,
                &format!(
                    "{mode}{}sandbox: {{securityContext: {sc}}}",
                    if mode.is_empty() { "" } else { ", " }
                ),
            );
            let r = check(&p).expect_err(sc);
            assert_eq!(r.reason, INSECURE_SANDBOX, "{sc}");
            assert!(
                r.message.contains(&format!("spec.sandbox.{field}")),
                "{sc}: {}",
                r.message
            );
            // Not rendered: neither as a sidecar nor as service children.
            let c = children(&[&p]);
            assert_eq!(c, children(&[]), "{sc}");
            assert!(service::build(&tenant::test_tenant(), &p).is_err(), "{sc}");
        }
    }
}

#[test]
fn resources_default_and_override() {
    let d = sandbox::resources(None);
    let q =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone());
    assert_eq!(q(&d.requests, "cpu").as_deref(), Some("100m"));
    assert_eq!(q(&d.requests, "memory").as_deref(), Some("128Mi"));
    assert_eq!(q(&d.limits, "memory").as_deref(), Some("256Mi"));
    assert_eq!(q(&d.limits, "cpu"), None, "no CPU limit");
    let p = plugin(
        "p",
        0,
        "sandbox: {resources: {requests: {cpu: 1, memory: 1Gi}, limits: {memory: 2Gi}}}",
    );
    let c = pod::sidecar(&p).expect("sidecar");
    let r = c.resources.expect("resources");
    assert_eq!(q(&r.requests, "cpu").as_deref(), Some("1"));
    assert_eq!(q(&r.limits, "memory").as_deref(), Some("2Gi"));
    // A sandbox with only a security context keeps the default resources.
    let p = plugin("p", 0, "sandbox: {securityContext: {runAsUser: 7}}");
    assert_eq!(pod::sidecar(&p).expect("sidecar").resources, Some(d));
}

#[test]
fn invalid_specs_are_refused_naming_the_field() {
    let long = "x".repeat(53);
    let long_unix = "u".repeat(90);
    let cases: Vec<(PluginDeployment, &str)> = vec![
        (
            {
                let mut p = plugin("p", 0, "");
                p.spec.image = None;
                p
            },
            "spec.image",
        ),
        (
            {
                let mut p = plugin("p", 0, "");
                p.spec.image = Some("  ".into());
                p
            },
            "spec.image",
        ),
        (
            plugin("p", 0, "env: [{name: MCP_PLUGIN_LISTEN, value: x}]"),
            "spec.env[0].name: MCP_PLUGIN_LISTEN",
        ),
        (
            plugin(
                "p",
                0,
                "env: [{name: A, value: x}, {name: MCP_PLUGIN_TLS_KEY, value: x}]",
            ),
            "spec.env[1].name",
        ),
        (
            plugin("p", 0, "env: [{name: A, value: x}, {name: A, value: y}]"),
            "appears twice",
        ),
        (plugin(&long, 0, SERVICE), "metadata.name: the Service"),
        (plugin("a.b", 0, SERVICE), "metadata.name: the Service"),
        (plugin(&long_unix, 0, "transport: unix"), "Unix socket path"),
        (
            {
                let mut p = plugin("p", 0, SERVICE);
                p.spec.tls = None;
                p
            },
            "spec.tls",
        ),
        (plugin("p", 0, "port: 0"), "spec.port"),
    ];
    for (p, text) in cases {
        let r = check(&p).expect_err(text);
        assert_eq!(r.reason, INVALID_SPEC, "{text}");
        assert!(r.message.contains(text), "{text}: {}", r.message);
        assert_eq!(children(&[&p]), children(&[]), "{text}: not rendered");
    }
    // Long or dotted names are fine as sidecars: the container name is shortened.
    for name in [long.as_str(), "a.b.c", long_unix.as_str()] {
        let p = plugin(name, 0, "");
        assert_eq!(check(&p), Ok(()), "{name}");
        let c = pod::sidecar(&p).expect("sidecar");
        assert!(
            crate::tenant::names::is_dns_label(&c.name, 63),
            "{name}: {}",
            c.name
        );
        assert!(c.name.starts_with("plugin-"), "{}", c.name);
    }
}

#[test]
fn tcp_sidecar_ports_must_be_free_and_the_older_sidecar_wins() {
    let older = plugin("b-older", 0, "port: 7000");
    let newer = plugin("a-newer", 5, "port: 7000");
    let unix_same_port = plugin("c-unix", 6, "port: 7000, transport: unix");
    let service_same_port = plugin("d-svc", 7, SERVICE);
    let metrics = plugin("e-metrics", 1, "port: 9090");
    let refused_first = plugin(
        "f-refused",
        0,
        "port: 7100, sandbox: {securityContext: {privileged: true}}",
    );
    let after_refused = plugin("g-after", 9, "port: 7100");
    let all = [
        Arc::new(newer.clone()),
        Arc::new(older.clone()),
        Arc::new(unix_same_port.clone()),
        Arc::new(service_same_port.clone()),
        Arc::new(metrics.clone()),
        Arc::new(refused_first.clone()),
        Arc::new(after_refused.clone()),
    ];
    let ns = of_namespace(&all, "mcp-acme");
    let v = verdicts(&ns);
    let reason = |n: &str| v[n].as_ref().err().map(|r| r.reason);
    assert_eq!(reason("b-older"), None);
    assert_eq!(reason("a-newer"), Some(PORT_CONFLICT));
    assert!(
        v["a-newer"]
            .as_ref()
            .err()
            .is_some_and(|r| r.message.contains("b-older")),
        "{v:?}"
    );
    assert_eq!(reason("c-unix"), None, "a socket holds no port");
    assert_eq!(reason("d-svc"), None, "a service runs in its own pods");
    assert_eq!(reason("e-metrics"), Some(PORT_CONFLICT));
    assert!(
        v["e-metrics"]
            .as_ref()
            .err()
            .is_some_and(|r| r.message.contains("metrics")),
        "{v:?}"
    );
    assert_eq!(reason("f-refused"), Some(INSECURE_SANDBOX));
    assert_eq!(reason("g-after"), None, "a refused plugin holds no port");
    // Only the accepted sidecars are rendered.
    let c = children(&ns);
    let names: Vec<String> = pod_spec(&c)
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["plugin-b-older", "plugin-c-unix", "plugin-g-after"]);
    // Deleting the older one lets the newer one in.
    let mut going = older.clone();
    going.metadata.deletion_timestamp = going.metadata.creation_timestamp.clone();
    let all = [Arc::new(newer), Arc::new(going)];
    let v = verdicts(&of_namespace(&all, "mcp-acme"));
    assert_eq!(v.keys().collect::<Vec<_>>(), ["a-newer"]);
    assert_eq!(v["a-newer"], Ok(()));
}

#[test]
fn plugins_of_other_namespaces_are_ignored() {
    let mut other = plugin("x", 0, "");
    other.metadata.namespace = Some("mcp-other".into());
    let all = [Arc::new(other)];
    assert!(of_namespace(&all, "mcp-acme").is_empty());
}

/// `spec.suspend`: a suspended sidecar is not rendered (a resumed one is, and an older
/// suspended sidecar keeps its port), a suspended `service` plugin's Deployment has 0
/// replicas while its Service, NetworkPolicy and the dataplane's client certificate and
/// egress stay, so only a sidecar's suspension changes the dataplane's pod template.
#[test]
fn a_suspended_plugin_is_not_run_and_keeps_what_resuming_needs() {
    let t = tenant::test_tenant();
    let sidecar_names = |c: &Children| -> Vec<String> {
        pod_spec(c)
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    };
    // (what, spec of "scan", suspended, sidecars expected, Deployment replicas)
    let cases = [
        ("sidecar", "port: 7001", false, vec!["plugin-scan"], None),
        ("suspended sidecar", "port: 7001", true, vec![], None),
        (
            "suspended unix sidecar",
            "transport: unix",
            true,
            vec![],
            None,
        ),
        ("service", SERVICE, false, vec![], Some(3)),
        ("suspended service", SERVICE, true, vec![], Some(0)),
    ];
    for (what, spec, suspended, sidecars, replicas) in cases {
        let p = plugin(
            "scan",
            0,
            &format!("{spec}{}", if suspended { ", suspend: true" } else { "" }),
        );
        assert_eq!(p.spec.suspend, suspended, "{what}");
        assert_eq!(check(&p), Ok(()), "{what}: suspension is no refusal");
        let c = children(&[&p]);
        assert_eq!(sidecar_names(&c), sidecars, "{what}");
        assert!(
            !mounts(dataplane(&c)).contains_key(SIDECAR_SOCKET_DIR),
            "{what}: no socket directory without a unix sidecar"
        );
        if let Some(replicas) = replicas {
            let ch = service::build(&t, &p).expect(what);
            assert_eq!(
                ch.deployment.spec.as_ref().and_then(|s| s.replicas),
                Some(replicas),
                "{what}"
            );
            let mut resumed = p.clone();
            resumed.spec.suspend = false;
            let other = service::build(&t, &resumed).expect(what);
            assert_eq!(ch.service, other.service, "{what}: Service kept");
            assert_eq!(ch.network_policy, other.network_policy, "{what}");
            assert_eq!(
                children(&[&p]).network_policy,
                children(&[&resumed]).network_policy,
                "{what}: the dataplane keeps its egress"
            );
            assert_eq!(
                pod_spec(&children(&[&p])),
                pod_spec(&children(&[&resumed])),
                "{what}: the dataplane pods do not roll"
            );
        }
    }

    // The older sidecar keeps its port while suspended: resuming it cannot take the port of
    // a sidecar created meanwhile.
    let older = plugin("a", 0, "port: 7001, suspend: true");
    let newer = plugin("b", 1, "port: 7001");
    let v = verdicts(&[&older, &newer]);
    assert_eq!(v["a"], Ok(()));
    assert_eq!(v["b"].as_ref().map_err(|r| r.reason), Err(PORT_CONFLICT));
    assert!(sidecar_names(&children(&[&older, &newer])).is_empty());
}
