"""Tests of the Helm chart charts/mcp: lint, rendering, and the real API server of
e2e/services/k8s.sh (server-side dry-run apply, RBAC checked with `kubectl auth can-i`,
helm install/upgrade/uninstall, aggregation into the built-in view/edit roles).

helm is built by `e2e/services/helm.sh build` (e2e/run-tests.sh exports MCP_HELM_BIN). The
tests that need helm are skipped when it is missing, and those that need the API server when
KUBECONFIG is unset; with MCP_REQUIRE_K8S=1 (set by e2e/run-tests.sh) both fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from chart.mcpchart import (
    CHART,
    REPO,
    apply_rbac,
    delete_rbac,
    helm,
    helm_bin,
    kubectl,
    kubectl_bin,
    operator_rbac,
    release_for,
    render,
    render_text,
    service_account_kubeconfig,
)

REQUIRED = os.environ.get("MCP_REQUIRE_K8S") == "1"
IMAGE = "registry.example/mcp:0.1.0"  # values.yaml's repository and the chart's appVersion
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"

# The operator's permissions as the brief for the chart states them: (API group, resource,
# namespace-scoped to the release namespace?) -> verbs. The chart must grant exactly these.
CLUSTER_RULES: dict[tuple[str, str], set[str]] = {
    ("mcp.dev", "tenants"): {"get", "list", "watch", "patch"},
    ("mcp.dev", "mailboxes"): {"get", "list", "watch", "patch"},
    ("mcp.dev", "tenants/status"): {"get", "patch"},
    ("mcp.dev", "mailboxes/status"): {"get", "patch"},
    ("mcp.dev", "pipelines"): {"get", "list", "watch"},
    ("mcp.dev", "plugindeployments"): {"get", "list", "watch"},
    ("mcp.dev", "pipelines/status"): {"get", "patch"},
    ("mcp.dev", "plugindeployments/status"): {"get", "patch"},
    ("mcp.dev", "tenants/finalizers"): {"update"},
    ("mcp.dev", "mailboxes/finalizers"): {"update"},
    ("mcp.dev", "plugindeployments/finalizers"): {"update"},
    ("", "namespaces"): {"get", "list", "watch", "create", "patch"},
    ("", "configmaps"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch"},
    ("apps", "statefulsets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("networking.k8s.io", "networkpolicies"): {"get", "list", "watch", "create", "patch", "delete"},
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
LEASE_RULES: dict[tuple[str, str], set[str]] = {
    ("coordination.k8s.io", "leases"): {"get", "list", "watch", "create", "update", "patch"},
}
# What rest.enabled adds, in a ClusterRole of its own (the REST API's writes).
REST_RULES: dict[tuple[str, str], set[str]] = {
    ("mcp.dev", "tenants"): {"create", "delete"},
    ("mcp.dev", "mailboxes"): {"create", "delete"},
    ("mcp.dev", "pipelines"): {"create", "patch", "delete"},
    ("mcp.dev", "plugindeployments"): {"create", "patch", "delete"},
    ("mcp.dev", "migrationjobs"): {"get", "list", "create", "patch", "delete"},
}
REST_VALUES = {"rest": {"enabled": True, "apiStore": {"existingSecret": "mcp-api-store"}}}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


# --- fixtures ------------------------------------------------------------------------------


def _missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"MCP_REQUIRE_K8S=1 but {what}")
    pytest.skip(what)


@pytest.fixture(scope="module", autouse=True)
def need_helm() -> None:
    exe = helm_bin()
    if not exe or not os.access(exe, os.X_OK):
        _missing(f"helm not found ({exe or 'run `e2e/services/helm.sh build` or set MCP_HELM_BIN'})")


@pytest.fixture(scope="module")
def kubeconfig() -> Path:
    path = os.environ.get("KUBECONFIG")
    if not path:
        _missing("KUBECONFIG not set (run `eval $(e2e/services/k8s.sh start)`)")
    if not kubectl_bin():
        _missing("kubectl not found (built by `e2e/services/k8s.sh build`, or set MCP_KUBECTL)")
    return Path(path)


@pytest.fixture(scope="module")
def crds(kubeconfig: Path) -> None:
    """The chart's CRDs, applied for real and Established (a dry run of custom resources or
    of RBAC rules naming them needs them)."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=mcp-e2e-chart",
            "-f", str(CHART / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(CHART / "crds"))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace that enforces and warns about the `restricted` Pod Security level."""
    name = _unique("mcp-chart")
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")},
        },
    }
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", input=json.dumps(ns))
    yield name
    kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def _kinds(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects rendered"
    return found[0]


def _rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def wait_until(what: str, timeout: float, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


# --- lint and rendering (helm only) -------------------------------------------------------

LINT_VARIATIONS = {
    "defaults": [],
    "service-monitor": ["--set", "serviceMonitor.enabled=true"],
    "overrides": ["--set", "serviceAccount.name=mail-operator,replicaCount=2,image.tag=0.2.0,fullnameOverride=mail"],
}


@pytest.mark.parametrize("args", LINT_VARIATIONS.values(), ids=LINT_VARIATIONS.keys())
def test_helm_lint_strict(args: list[str]) -> None:
    out = helm("lint", "--strict", str(CHART), "--namespace", "mcp-system", *args, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout, out.stdout


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (meta["apiVersion"], meta["name"], meta["appVersion"]) == ("v2", "mcp", "0.1.0")
    assert meta["annotations"]["licenses"] == "Apache-2.0"


def test_defaults_render_the_operator() -> None:
    docs = render(namespace="mcp-system")
    assert sorted(_kinds(docs)) == [
        ("ClusterRole", "mcp-edit"),
        ("ClusterRole", "mcp-operator"),
        ("ClusterRole", "mcp-view"),
        ("ClusterRoleBinding", "mcp-operator"),
        ("Deployment", "mcp-operator"),
        ("Role", "mcp-operator-leader-election"),
        ("RoleBinding", "mcp-operator-leader-election"),
        ("Service", "mcp-operator-metrics"),
        ("ServiceAccount", "mcp-operator"),
    ]
    for d in docs:
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert d["metadata"]["namespace"] == "mcp-system", d["metadata"]
        labels = d["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mcp"
        assert labels["app.kubernetes.io/instance"] == "mcp"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"

    dep = _one(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    # The dataplane NetworkPolicy admits the operator by these two labels.
    assert labels["app.kubernetes.io/name"] == "mcp"
    assert labels["app.kubernetes.io/component"] == "operator"
    assert labels["app.kubernetes.io/instance"] == "mcp"
    assert labels["app.kubernetes.io/version"] == "0.1.0"
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mcp",
        "app.kubernetes.io/instance": "mcp",
        "app.kubernetes.io/component": "operator",
    }
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    ps = pod["spec"]
    assert ps["serviceAccountName"] == "mcp-operator"
    assert ps["automountServiceAccountToken"] is True
    assert ps["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (c,) = ps["containers"]
    assert c["image"] == IMAGE
    assert "imagePullPolicy" not in c
    assert c["command"] == ["mcp-operator"]
    assert c["args"] == ["--metrics-addr=0.0.0.0:8080", "--log-format=json", "--lease-name=mcp-operator"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["MCP_OPERATOR_IMAGE"]["value"] == c["image"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }

    svc = _one(docs, "Service")
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"}
    ]
    sa = _one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is True


def test_rbac_rules_are_exactly_the_listed_ones() -> None:
    docs = _kinds(render(namespace="mcp-system"))
    assert _rules(docs[("ClusterRole", "mcp-operator")]) == CLUSTER_RULES
    assert _rules(docs[("Role", "mcp-operator-leader-election")]) == LEASE_RULES
    for kind, name, role_kind in (
        ("ClusterRoleBinding", "mcp-operator", "ClusterRole"),
        ("RoleBinding", "mcp-operator-leader-election", "Role"),
    ):
        binding = docs[(kind, name)]
        ref_name = name if kind == "RoleBinding" else "mcp-operator"
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": ref_name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mcp-operator", "namespace": "mcp-system"}]
    # Every rule carries a comment with its reason.
    text = (CHART / "templates" / "rbac.yaml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[i - 1].strip().startswith("#"), f"rbac.yaml:{i + 1}: rule without a comment"


def test_rest_is_off_by_default_and_renders_its_service_rbac_and_flags() -> None:
    off = _kinds(render())
    assert ("ClusterRole", "mcp-operator-rest") not in off and ("Service", "mcp-operator-rest") not in off
    (c,) = off[("Deployment", "mcp-operator")]["spec"]["template"]["spec"]["containers"]
    assert not [a for a in c["args"] if a.startswith("--rest")]

    values = {"rest": {**REST_VALUES["rest"], "port": 9443, "rate": 5, "burst": 9,
                       "bootstrapKey": {"existingSecret": "mcp-admin-key"}}}
    docs = _kinds(render(values, namespace="mcp-system"))
    assert _rules(docs[("ClusterRole", "mcp-operator-rest")]) == REST_RULES
    # The base ClusterRole does not change: the REST API's rights are all in its own role.
    assert _rules(docs[("ClusterRole", "mcp-operator")]) == CLUSTER_RULES
    binding = docs[("ClusterRoleBinding", "mcp-operator-rest")]
    assert binding["roleRef"]["name"] == "mcp-operator-rest"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mcp-operator", "namespace": "mcp-system"}]
    svc = docs[("Service", "mcp-operator-rest")]
    assert svc["spec"]["ports"] == [{"name": "rest", "port": 9443, "targetPort": "rest", "protocol": "TCP",
                                     "appProtocol": "http"}]
    pod = docs[("Deployment", "mcp-operator")]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][-4:] == ["--rest=0.0.0.0:9443", "--rest-rate=5", "--rest-burst=9",
                              "--bootstrap-key-file=/etc/mcp-rest/bootstrap.key"]
    env = {e["name"]: e for e in c["env"]}
    assert env["MCP_API_STORE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "mcp-api-store", "key": "url"}}
    assert {"name": "rest", "containerPort": 9443, "protocol": "TCP"} in c["ports"]
    vol = next(v for v in pod["volumes"] if v["name"] == "rest-bootstrap-key")
    assert vol["secret"]["defaultMode"] & 0o007 == 0, "the operator refuses a key file others may read"
    # rest.enabled without the key database's Secret is refused by the schema.
    with pytest.raises(subprocess.CalledProcessError) as e:
        render({"rest": {"enabled": True}})
    assert "existingSecret" in e.value.stderr


def test_rest_oidc_settings_are_a_mounted_configmap() -> None:
    oidc = {"issuer": "https://idp.example/realms/mcp", "audience": "mcp-api",
            "roles": {"groupsClaim": "groups", "groups": {"mcp-admins": {"role": "admin"}}}}
    docs = _kinds(render({"rest": {**REST_VALUES["rest"], "oidc": oidc}}))
    cm = docs[("ConfigMap", "mcp-operator-rest-oidc")]
    assert json.loads(cm["data"]["oidc.json"]) == oidc
    template = docs[("Deployment", "mcp-operator")]["spec"]["template"]
    (c,) = template["spec"]["containers"]
    assert "--oidc-config=/etc/mcp-rest-oidc/oidc.json" in c["args"]
    assert {"name": "rest-oidc", "mountPath": "/etc/mcp-rest-oidc", "readOnly": True} in c["volumeMounts"]
    vol = next(v for v in template["spec"]["volumes"] if v["name"] == "rest-oidc")
    assert vol["configMap"]["name"] == "mcp-operator-rest-oidc"
    # Another setting rolls the pods.
    changed = {**oidc, "audience": "other"}
    again = _kinds(render({"rest": {**REST_VALUES["rest"], "oidc": changed}}))
    key = "checksum/rest-oidc"
    assert again[("Deployment", "mcp-operator")]["spec"]["template"]["metadata"]["annotations"][key] != \
        template["metadata"]["annotations"][key]
    # Without rest.oidc (or REST): no ConfigMap, no flag.
    for values in ({"rest": REST_VALUES["rest"]}, {"rest": {"oidc": oidc}}):
        docs = _kinds(render(values))
        assert ("ConfigMap", "mcp-operator-rest-oidc") not in docs
        (c,) = docs[("Deployment", "mcp-operator")]["spec"]["template"]["spec"]["containers"]
        assert not [a for a in c["args"] if a.startswith("--oidc-config")]


def test_aggregated_roles() -> None:
    docs = _kinds(render())
    view, edit = docs[("ClusterRole", "mcp-view")], docs[("ClusterRole", "mcp-edit")]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    kinds = ("mailboxes", "pipelines", "plugindeployments", "migrationjobs")
    view_rules = _rules(view)
    for r in ("tenants",) + kinds:
        assert view_rules[("mcp.dev", r)] == {"get", "list", "watch"}
        assert view_rules[("mcp.dev", f"{r}/status")] == {"get", "list", "watch"}
    assert _rules(edit) == {("mcp.dev", r): {"create", "update", "patch", "delete", "deletecollection"} for r in kinds}
    off = _kinds(render({"rbac": {"aggregateToDefaultRoles": False}}))
    assert ("ClusterRole", "mcp-view") not in off and ("ClusterRole", "mcp-edit") not in off


def test_values_variations() -> None:
    docs = render(
        {
            "serviceAccount": {"name": "mail-operator"},
            "replicaCount": 2,
            "image": {"repository": "localhost:5000/mcp", "tag": "0.2.0", "pullPolicy": "IfNotPresent"},
            "fullnameOverride": "mail",
            "operator": {"logFormat": "text", "leaseName": "mail-leader", "extraArgs": ["--verbose"]},
            "metrics": {"port": 9091},
            # A pod label may not replace the chart's own (the NetworkPolicy contract).
            "podLabels": {"team": "mail", "app.kubernetes.io/component": "other"},
        },
        release="prod",
        namespace="mail-system",
    )
    kinds = _kinds(docs)
    assert ("ServiceAccount", "mail-operator") in kinds
    assert ("Deployment", "mail-operator") in kinds
    assert ("ClusterRole", "mail-operator") in kinds
    for d in docs:
        for s in d.get("subjects", []):
            assert s == {"kind": "ServiceAccount", "name": "mail-operator", "namespace": "mail-system"}
    dep = kinds[("Deployment", "mail-operator")]
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "mail-operator"
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "mail"
    assert labels["app.kubernetes.io/component"] == "operator"
    assert labels["app.kubernetes.io/instance"] == "prod"
    assert labels["app.kubernetes.io/version"] == "0.2.0"
    (c,) = pod["spec"]["containers"]
    assert c["image"] == "localhost:5000/mcp:0.2.0"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert {e["name"]: e.get("value") for e in c["env"]}["MCP_OPERATOR_IMAGE"] == "localhost:5000/mcp:0.2.0"
    assert c["args"] == ["--metrics-addr=0.0.0.0:9091", "--log-format=text", "--lease-name=mail-leader", "--verbose"]
    assert c["ports"][0]["containerPort"] == 9091
    assert kinds[("Service", "mail-operator-metrics")]["spec"]["ports"][0]["port"] == 9091


def test_fullname_follows_the_release_name() -> None:
    assert ("Deployment", "mcp-prod-operator") in _kinds(render(release="mcp-prod"))
    assert ("Deployment", "mail-mcp-operator") in _kinds(render(release="mail"))
    long = _kinds(render(release="x" * 53))
    name = next(n for k, n in long if k == "Role")
    assert len(name) <= 63 and name.endswith("-operator-leader-election"), name


def test_service_monitor_only_when_enabled_and_served() -> None:
    assert not [d for d in render(api_versions=[SERVICE_MONITOR_API]) if d["kind"] == "ServiceMonitor"]
    enabled = {"serviceMonitor": {"enabled": True, "interval": "30s", "labels": {"release": "prom"}}}
    assert not [d for d in render(enabled) if d["kind"] == "ServiceMonitor"], "rendered without the CRD"
    docs = render(enabled, api_versions=[SERVICE_MONITOR_API], namespace="mcp-system")
    sm = _one(docs, "ServiceMonitor")
    svc = _one(docs, "Service")
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["mcp-system"]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def test_notes_warn_about_placeholders() -> None:
    def notes(*args: str) -> str:
        out = helm("install", "mcp", str(CHART), "--namespace", "mcp-system", "--dry-run=client", *args).stdout
        return out[out.index("NOTES:"):]

    default = notes("--set", "serviceMonitor.enabled=true")
    assert "deployment/mcp-operator" in default
    assert "image.repository is the chart's placeholder" in default
    assert "serviceMonitor.enabled is true, but this cluster does not serve" in default
    custom = notes("--set", "image.repository=registry.test/mcp")
    assert "placeholder" not in custom and "serviceMonitor" not in custom


BAD_VALUES = {
    "unknown-key": {"replicas": 2},
    "replicas-not-a-number": {"replicaCount": "two"},
    "tag-in-repository": {"image": {"repository": "registry.example/mcp:0.1.0"}},
    "log-format": {"operator": {"logFormat": "xml"}},
    "privileged-port": {"metrics": {"port": 80}},
    "empty-service-account": {"serviceAccount": {"name": ""}},
    "unknown-service-monitor-key": {"serviceMonitor": {"enable": True}},
    "oidc-without-audience": {"rest": {"oidc": {"issuer": "https://idp.example"}}},
    "oidc-issuer-not-a-url": {"rest": {"oidc": {"issuer": "idp.example", "audience": "a"}}},
}


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        render_text(values)
    assert "schema" in err.value.stderr, err.value.stderr


def test_crds_are_the_generated_manifests() -> None:
    """Byte for byte the files of crds/manifests/ (the Rust test committed_manifests_match_the_types
    checks both folders against the types), and rendered by --include-crds."""
    chart_files = sorted(p.name for p in (CHART / "crds").iterdir())
    assert chart_files == sorted(p.name for p in (REPO / "crds" / "manifests").glob("*.yaml"))
    for name in chart_files:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / "manifests" / name).read_bytes(), name
    crds = [d for d in render(include_crds=True) if d["kind"] == "CustomResourceDefinition"]
    assert sorted(d["metadata"]["name"] for d in crds) == sorted(n.removesuffix(".yaml") for n in chart_files)


# --- against the API server -----------------------------------------------------------------

DRY_RUN_VARIATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "service-account-override": {"serviceAccount": {"name": "mail-operator"}},
    "service-monitor-disabled": {"serviceMonitor": {"enabled": False}, "replicaCount": 2},
    "overrides": {
        "fullnameOverride": "mail",
        "image": {"tag": "0.2.0", "pullPolicy": "Always"},
        "podLabels": {"team": "mail"},
        "operator": {"extraArgs": ["--verbose"], "extraEnv": [{"name": "RUST_LOG", "value": "debug"}]},
        "metrics": {"service": {"annotations": {"prometheus.io/scrape": "true"}}},
    },
}


@pytest.mark.parametrize("values", DRY_RUN_VARIATIONS.values(), ids=DRY_RUN_VARIATIONS.keys())
def test_server_side_dry_run(kubeconfig: Path, crds: None, namespace: str, values: dict[str, Any]) -> None:
    """The API server accepts every object (schema, defaulting, admission) in the release
    namespace, and Pod Security (`restricted`, warn mode) has nothing to say about the pod."""
    text = render_text(values, release=release_for(namespace), namespace=namespace, include_crds=True)
    out = kubectl(
        kubeconfig, "apply", "--server-side", "--dry-run=server", "--field-manager=mcp-e2e-chart", "-f", "-",
        input=text, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr
    applied = out.stdout.splitlines()
    assert any(line.startswith("deployment.apps/") for line in applied), applied
    assert sum("customresourcedefinition" in line for line in applied) == 5, applied


def test_pod_security_warning_is_detected(kubeconfig: Path, crds: None, namespace: str) -> None:
    """The dry run above would see a non-compliant pod: proof that its warning check works."""
    text = render_text(
        {"securityContext": {"allowPrivilegeEscalation": True}},
        release=release_for(namespace),
        namespace=namespace,
        show_only=["templates/deployment.yaml"],
    )
    out = kubectl(kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-", input=text)
    assert "would violate PodSecurity" in out.stderr and "allowPrivilegeEscalation" in out.stderr, out.stderr


def _can_i(kubeconfig: Path, user: str, verb: str, resource: str, namespace: str) -> bool:
    resource, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={user}", "-n", namespace]
    if sub:
        args.append(f"--subresource={sub}")
    out = kubectl(kubeconfig, *args, check=False)
    answer = out.stdout.strip()
    assert (out.returncode, answer) in ((0, "yes"), (1, "no")), (args, out.returncode, out.stdout, out.stderr)
    return answer == "yes"


def _qualified(group: str, resource: str) -> str:
    name, _, sub = resource.partition("/")
    return (f"{name}.{group}" if group else name) + (f"/{sub}" if sub else "")


def test_rbac_grants_exactly_the_listed_verbs(kubeconfig: Path, crds: None, namespace: str) -> None:
    """Applied for real, the chart's RBAC lets its ServiceAccount do every listed (verb,
    resource), and no other verb on those resources, nor a set of other things it must not do."""
    elsewhere = _unique("mcp-chart-other")  # a namespace the operator does not run in
    with operator_rbac(kubeconfig, namespace) as user:
        assert user == f"system:serviceaccount:{namespace}:mcp-operator"
        checks: list[tuple[str, str, str, bool]] = []  # verb, resource, namespace, expected
        for rules, cluster_wide in ((CLUSTER_RULES, True), (LEASE_RULES, False)):
            for (group, resource), verbs in rules.items():
                checks += [(verb, _qualified(group, resource), namespace, verb in verbs) for verb in VERBS]
                if cluster_wide:  # the ClusterRoleBinding grants the same in every namespace
                    checks += [(verb, _qualified(group, resource), elsewhere, True) for verb in sorted(verbs)]
        must_not = [
            ("delete", "namespaces"),
            ("delete", "secrets"),
            ("update", "secrets"),
            ("create", "tenants.mcp.dev"),
            ("update", "tenants.mcp.dev"),
            ("delete", "tenants.mcp.dev"),
            ("update", "tenants.mcp.dev/status"),
            ("patch", "tenants.mcp.dev/finalizers"),
            ("create", "mailboxes.mcp.dev"),
            ("get", "migrationjobs.mcp.dev"),
            ("update", "pipelines.mcp.dev/status"),
            ("update", "plugindeployments.mcp.dev/status"),
            ("create", "plugindeployments.mcp.dev"),
            ("patch", "plugindeployments.mcp.dev"),
            ("delete", "plugindeployments.mcp.dev"),
            ("patch", "plugindeployments.mcp.dev/finalizers"),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            ("bind", "clusterroles.rbac.authorization.k8s.io"),
            ("escalate", "clusterroles.rbac.authorization.k8s.io"),
            ("create", "rolebindings.rbac.authorization.k8s.io"),
            ("create", "customresourcedefinitions.apiextensions.k8s.io"),
            ("impersonate", "users"),
            ("impersonate", "serviceaccounts"),
            ("create", "serviceaccounts/token"),
            ("create", "pods"),
            ("create", "pods/exec"),
            ("get", "nodes"),
            ("create", "events"),  # core/v1 Events: the operator writes events.k8s.io/v1
            ("create", "persistentvolumeclaims"),
            ("create", "jobs.batch"),
            ("delete", "configmaps"),
        ]
        checks += [(verb, resource, namespace, False) for verb, resource in must_not]
        # Leases only in the release namespace.
        checks += [(verb, "leases.coordination.k8s.io", ns, False)
                   for ns in (elsewhere, "default", "kube-system") for verb in ("get", "create", "update")]

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda c: _can_i(kubeconfig, user, c[0], c[1], c[2]), checks))
        wrong = [f"{verb} {resource} -n {ns}: expected {'yes' if want else 'no'}"
                 for (verb, resource, ns, want), got in zip(checks, answers) if got != want]
        assert not wrong, "\n".join(wrong)
        print(f"{len(checks)} `kubectl auth can-i` checks as {user}")

        # Cluster-wide leases: listing across namespaces is not allowed.
        out = kubectl(kubeconfig, "auth", "can-i", "list", "leases.coordination.k8s.io", "-A", f"--as={user}",
                      check=False)
        assert out.stdout.strip() == "no", out.stdout
    # operator_rbac removed the cluster-scoped objects again.
    release = release_for(namespace)
    gone = kubectl(kubeconfig, "get", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                   "-o", "name")
    assert gone.stdout.strip() == "", gone.stdout


def test_rest_rbac_grants_exactly_its_verbs(kubeconfig: Path, crds: None, namespace: str) -> None:
    """With rest.enabled, the ServiceAccount may also write the mcp.dev resources, and still
    not delete Secrets or namespaces."""
    with operator_rbac(kubeconfig, namespace, values=REST_VALUES) as user:
        merged: dict[tuple[str, str], set[str]] = {}
        for rules in (CLUSTER_RULES, REST_RULES):
            for k, verbs in rules.items():
                merged.setdefault(k, set()).update(verbs)
        checks = [
            (verb, _qualified(group, resource), namespace, verb in merged[(group, resource)])
            for (group, resource) in REST_RULES
            for verb in VERBS
        ]
        checks += [(verb, resource, namespace, False) for verb, resource in (
            ("delete", "secrets"), ("update", "secrets"), ("delete", "namespaces"),
            ("update", "tenants.mcp.dev"), ("deletecollection", "mailboxes.mcp.dev"),
        )]
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda c: _can_i(kubeconfig, user, c[0], c[1], c[2]), checks))
        wrong = [f"{verb} {resource} -n {ns}: expected {'yes' if want else 'no'}"
                 for (verb, resource, ns, want), got in zip(checks, answers) if got != want]
        assert not wrong, "\n".join(wrong)


def test_service_account_kubeconfig_is_the_operator(kubeconfig: Path, crds: None, namespace: str,
                                                    tmp_path: Path) -> None:
    """A real token of the chart's ServiceAccount: what the operator would run with."""
    apply_rbac(kubeconfig, namespace)
    try:
        sa = service_account_kubeconfig(kubeconfig, namespace, tmp_path / "sa.kubeconfig")
        who = json.loads(kubectl(sa, "auth", "whoami", "-o", "json").stdout)
        assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:mcp-operator"
        assert f"system:serviceaccounts:{namespace}" in who["status"]["userInfo"]["groups"]
        kubectl(sa, "get", "tenants.mcp.dev,mailboxes.mcp.dev", "-A")
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sa-wrote-this", "namespace": namespace}}
        kubectl(sa, "apply", "--server-side", "--field-manager=mcp-operator", "-f", "-", input=json.dumps(cm))
        denied = kubectl(sa, "delete", "configmap", "sa-wrote-this", "-n", namespace, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
        denied = kubectl(sa, "get", "pods", "-n", namespace, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    finally:
        delete_rbac(kubeconfig, namespace)


def _clusterrole_rules(kubeconfig: Path, name: str) -> dict[tuple[str, str], set[str]]:
    role = json.loads(kubectl(kubeconfig, "get", "clusterrole", name, "-o", "json").stdout)
    return _rules({"rules": [r for r in role.get("rules") or [] if "resources" in r]})


def test_helm_install_upgrade_uninstall(kubeconfig: Path, crds: None) -> None:
    """helm itself installs the chart into a new namespace, upgrades and uninstalls it; the
    aggregated roles reach the built-in view and edit roles (clusterrole aggregation controller)."""
    ns = _unique("mcp-chart-helm")
    release = release_for(ns)
    env = ["--kubeconfig", str(kubeconfig), "--namespace", ns]
    try:
        helm("install", release, str(CHART), *env, "--create-namespace")
        dep = json.loads(kubectl(kubeconfig, "-n", ns, "get", "deployment", f"{release}-operator", "-o", "json").stdout)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
        assert dep["spec"]["replicas"] == 1
        status = json.loads(helm("status", release, *env, "-o", "json").stdout)
        assert status["info"]["status"] == "deployed"

        helm("upgrade", release, str(CHART), *env, "--reuse-values", "--set", "replicaCount=2")
        dep = json.loads(kubectl(kubeconfig, "-n", ns, "get", "deployment", f"{release}-operator", "-o", "json").stdout)
        assert dep["spec"]["replicas"] == 2

        mcp_read = {"get", "list", "watch"}
        wait_until("mcp.dev rules aggregated into the view role", 30,
                   lambda: _clusterrole_rules(kubeconfig, "view").get(("mcp.dev", "tenants"), set()) >= mcp_read)
        wait_until("mcp.dev rules aggregated into the edit role", 30,
                   lambda: "create" in _clusterrole_rules(kubeconfig, "edit").get(("mcp.dev", "mailboxes"), set()))
        edit = _clusterrole_rules(kubeconfig, "edit")
        assert edit[("mcp.dev", "mailboxes")] >= mcp_read, "edit includes view"
        assert "create" not in edit.get(("mcp.dev", "tenants"), set())
        # A user with `edit` in a namespace (the usual grant) manages Mailboxes there.
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "mail-admins", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mail-admin"}],
        }
        kubectl(kubeconfig, "apply", "--server-side", "-f", "-", input=json.dumps(binding))
        assert _can_i(kubeconfig, "mail-admin", "create", "mailboxes.mcp.dev", ns)
        assert _can_i(kubeconfig, "mail-admin", "delete", "pipelines.mcp.dev", ns)
        assert not _can_i(kubeconfig, "mail-admin", "create", "mailboxes.mcp.dev", "default")

        helm("uninstall", release, *env, "--wait")
        left = kubectl(kubeconfig, "get", "clusterrole,clusterrolebinding", "-l",
                       f"app.kubernetes.io/instance={release}", "-o", "name")
        assert left.stdout.strip() == "", left.stdout
        out = kubectl(kubeconfig, "-n", ns, "get", "deployment", f"{release}-operator", check=False)
        assert "NotFound" in out.stderr, out.stderr
        # Helm keeps CRDs on uninstall.
        kubectl(kubeconfig, "get", "crd", "tenants.mcp.dev")
    finally:
        helm("uninstall", release, *env, "--ignore-not-found", check=False)
        kubectl(kubeconfig, "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
