"""The PluginDeployment controller against the real API server (issue 5, item 5).

`mcp-operator` runs as the chart's ServiceAccount, by impersonation (fixtures.py), so every
object below is written with exactly the chart's RBAC. A `sidecar` PluginDeployment becomes a
native sidecar of the tenant's dataplane pod; a `service` one a Deployment, Service and
NetworkPolicy it owns; an insecure sandbox is refused and rendered nowhere. The API server's
own Pod Security admission (the tenant namespace enforces `restricted`) judges the rendered
pod templates through a server-side dry run. Deleting a PluginDeployment lets
kube-controller-manager's garbage collector remove its children.

No dataplane runs for this module's tenant (pods never run and no `mcp dataplane` is
started), so readiness stops at `NoDataplane` here.

Skipped without KUBECONFIG unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets both).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time

import pytest
import yaml

from fixtures import admin, crds, dataplanes, operator, ports  # noqa: F401 (pytest fixtures)
from harness import Operator
from kube import Kubectl, condition, wait_for

if not os.environ.get("KUBECONFIG"):
    if os.environ.get("MCP_REQUIRE_K8S") == "1":
        raise RuntimeError("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set (start e2e/services/k8s.sh)")
    pytest.skip("KUBECONFIG not set: no API server", allow_module_level=True)

TENANT = "e2e-plg"
TENANTS = [TENANT]
NS = f"mcp-{TENANT}"
STS = f"mcp-{TENANT}-dataplane"
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))
HARDENED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}


def plugin(name: str, **spec) -> dict:
    body = {"image": f"registry.example/{name}:1", "protocol": {"min": 1, "max": 1}, "stages": ["deliver"]}
    body.update(spec)
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "PluginDeployment",
            "metadata": {"name": name, "namespace": NS}, "spec": body}


def service_plugin(name: str, **spec) -> dict:
    return plugin(name, mode="service", port=7000, replicas=2,
                  tls={"serverSecretRef": {"name": f"{name}-server"}, "clientSecretRef": {"name": f"{name}-client"}},
                  **spec)


def tls_secret(name: str) -> dict:
    fake = base64.b64encode(b"not checked by the operator").decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": NS},
            "data": {"tls.crt": fake, "tls.key": fake, "ca.crt": fake}}


def pipeline(name: str, plugin_name: str) -> dict:
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": name, "namespace": NS},
            "spec": {"scope": {"type": "MailboxSelector", "mailboxSelector": {"matchLabels": {"p": name}}},
                     "stages": ["deliver"], "steps": [{"name": "ext", "plugin": {"name": plugin_name}}]}}


def ready_reason(kc: Kubectl, name: str, reason: str, kind: str = "plugindeployment") -> dict:
    """Waits until the object's `Ready` has `reason` for its current generation."""

    def probe():
        o = kc.get(kind, name, NS)
        c = condition(o)
        if c and c["reason"] == reason and c.get("observedGeneration") == o["metadata"]["generation"]:
            return o
        return None

    try:
        return wait_for(f"{kind} {name} Ready reason {reason}", probe, timeout=TIMEOUT)
    except AssertionError:
        o = kc.get(kind, name, NS)
        raise AssertionError(f"{kind} {name} not {reason}: {(o or {}).get('status')}")


def sts(kc: Kubectl) -> dict:
    s = kc.get("statefulset", STS, NS)
    assert s is not None
    return s


def sidecars(kc: Kubectl) -> dict[str, dict]:
    return {c["name"]: c for c in sts(kc)["spec"]["template"]["spec"].get("initContainers") or []}


def wait_sidecars(kc: Kubectl, what: str, check) -> dict[str, dict]:
    # Boxed: no sidecar at all is an empty, falsy dict.
    return wait_for(what, lambda: (lambda s: [s] if check(s) else None)(sidecars(kc)), timeout=TIMEOUT)[0]


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def events_for(kc: Kubectl, name: str) -> list[tuple[str, str, str]]:
    return [(e.get("type", ""), e.get("reason", ""), e.get("note", ""))
            for e in kc.items("events.events.k8s.io", NS)
            if e.get("regarding", {}).get("kind") == "PluginDeployment" and e["regarding"].get("name") == name]


def admitted_as_pod(kc: Kubectl, template: dict, name: str) -> None:
    """Creates a Pod from `template` with a server-side dry run in the tenant namespace, which
    enforces the `restricted` Pod Security Standard: the API server's own verdict on the
    rendered security settings."""
    spec = copy.deepcopy(template["spec"])
    # The StatefulSet's claim template provides `data`; a bare Pod needs a volume of that name.
    if not any(v["name"] == "data" for v in spec.get("volumes", [])) and any(
            m["name"] == "data" for c in spec["containers"] for m in c.get("volumeMounts", [])):
        spec.setdefault("volumes", []).append({"name": "data", "emptyDir": {}})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}
    out = kc.run("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
    assert out.returncode == 0, out.stderr
    assert "PodSecurity" not in out.stderr and "Warning" not in out.stderr, out.stderr


@pytest.fixture(scope="module")
def tenant_ns(admin: Kubectl, operator: Operator) -> str:
    admin.apply({"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": TENANT},
                 "spec": {"domains": [f"{TENANT}.example"]}})
    wait_for("the tenant StatefulSet", lambda: admin.get("statefulset", STS, NS), timeout=TIMEOUT)
    ns = admin.get("namespace", NS)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    wait_for("the default ServiceAccount (pods need it)", lambda: admin.get("serviceaccount", "default", NS),
             timeout=TIMEOUT)
    return NS


# --- Sidecar mode ------------------------------------------------------------------------------


def test_sidecars_are_rendered_into_the_dataplane_pod_hardened(admin, operator, tenant_ns):
    admin.apply([
        plugin("scan", port=7001, command=["/bin/scan"], args=["--fast"], env=[{"name": "LEVEL", "value": "high"}]),
        plugin("sock", transport="unix"),
    ])
    found = wait_sidecars(admin, "both sidecars", lambda s: {"plugin-scan", "plugin-sock"} <= set(s))
    scan, sock = found["plugin-scan"], found["plugin-sock"]
    for c in (scan, sock):
        assert c["restartPolicy"] == "Always", "a native sidecar"
        assert c["securityContext"] == HARDENED
        assert c["resources"] == DEFAULT_RESOURCES
        assert {"name": c["name"].replace("plugin-", "plugin-tmp-"), "mountPath": "/tmp"} in c["volumeMounts"]
    assert scan["image"] == "registry.example/scan:1"
    assert scan["command"] == ["/bin/scan"] and scan["args"] == ["--fast"]
    assert env(scan) == {"LEVEL": "high", "MCP_PLUGIN_LISTEN": "tcp://127.0.0.1:7001"}
    assert env(sock) == {"MCP_PLUGIN_LISTEN": "unix:///var/run/mcp/plugins/sock.sock"}
    pod = sts(admin)["spec"]["template"]["spec"]
    assert {"name": "plugin-sockets", "emptyDir": {}} in pod["volumes"]
    (dataplane,) = pod["containers"]
    socket_mount = {"name": "plugin-sockets", "mountPath": "/var/run/mcp/plugins"}
    assert socket_mount in dataplane["volumeMounts"] and socket_mount in sock["volumeMounts"]
    assert socket_mount not in scan["volumeMounts"]
    # The API server's Pod Security admission accepts the pod with its sidecars.
    admitted_as_pod(admin, sts(admin)["spec"]["template"], "dry-run-sidecars")
    # A sidecar is the Tenant controller's (fieldManager mcp-operator), not the user's.
    managers = {m["manager"] for m in sts(admin)["metadata"]["managedFields"]}
    assert managers == {"mcp-operator"}, managers


def test_a_sidecar_change_rolls_the_pods_and_a_status_change_does_not(admin, operator, tenant_ns):
    wait_sidecars(admin, "scan rendered", lambda s: "plugin-scan" in s)
    # Both are Unused (no Pipeline names them): their status was written by now.
    ready_reason(admin, "scan", "Unused")
    ready_reason(admin, "sock", "Unused")
    before = sts(admin)["metadata"]["generation"]
    # A status change of a PluginDeployment (written by the operator: a Pipeline names it now)
    # changes nothing in the pod template.
    admin.apply(pipeline("uses-sock", "sock"))
    ready_reason(admin, "sock", "NoDataplane")
    time.sleep(2)
    assert sts(admin)["metadata"]["generation"] == before, "a status change must not roll the pods"
    # A changed image is a changed pod template.
    admin.apply(plugin("scan", port=7001, command=["/bin/scan"], args=["--fast"],
                       env=[{"name": "LEVEL", "value": "high"}], image="registry.example/scan:2"))
    s = wait_sidecars(admin, "the new image", lambda s: s.get("plugin-scan", {}).get("image") == "registry.example/scan:2")
    assert s["plugin-scan"]["image"] == "registry.example/scan:2"
    assert sts(admin)["metadata"]["generation"] > before
    admin.delete("pipeline", "uses-sock", NS)


def test_sandbox_overrides_apply_field_by_field(admin, operator, tenant_ns):
    admin.apply(plugin("tuned", port=7002, sandbox={
        "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": False},
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}}))
    s = wait_sidecars(admin, "tuned rendered", lambda s: "plugin-tuned" in s)["plugin-tuned"]
    assert s["securityContext"] == {**HARDENED, "runAsUser": 1000, "readOnlyRootFilesystem": False}
    assert s["resources"] == {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    admitted_as_pod(admin, sts(admin)["spec"]["template"], "dry-run-tuned")
    admin.delete("plugindeployment", "tuned", NS)
    wait_sidecars(admin, "tuned gone", lambda s: "plugin-tuned" not in s)


@pytest.mark.parametrize("name,security_context,field", [
    ("priv", {"privileged": True}, "privileged"),
    ("escalate", {"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
    ("caps", {"capabilities": {"add": ["NET_ADMIN"]}}, "capabilities.add"),
    ("root", {"runAsUser": 0}, "runAsUser"),
])
def test_an_insecure_sandbox_is_refused_and_not_rendered(admin, operator, tenant_ns, name, security_context, field):
    for mode in ("sidecar", "service"):
        body = plugin(name, port=7003, sandbox={"securityContext": security_context}) if mode == "sidecar" else \
            service_plugin(name, sandbox={"securityContext": security_context})
        admin.apply(body)
        p = ready_reason(admin, name, "InsecureSandbox")
        c = condition(p)
        assert c["status"] == "False" and f"spec.sandbox.securityContext.{field}" in c["message"], c
        assert p["status"]["conditions"][0]["type"] == "Ready"
        time.sleep(1)
        assert f"plugin-{name}" not in sidecars(admin)
        assert admin.get("deployment", f"mcp-plugin-{name}", NS) is None
        assert ("Warning", "InsecureSandbox") in {(t, r) for t, r, _ in events_for(admin, name)}
        admin.delete("plugindeployment", name, NS, wait=True)


def test_a_taken_port_is_a_port_conflict(admin, operator, tenant_ns):
    admin.apply(plugin("late", port=7001))  # scan (older) listens on 7001
    p = ready_reason(admin, "late", "PortConflict")
    assert "scan" in condition(p)["message"]
    admin.apply(plugin("metrics", port=9090))
    assert "metrics" in condition(ready_reason(admin, "metrics", "PortConflict"))["message"]
    time.sleep(1)
    assert not {"plugin-late", "plugin-metrics"} & set(sidecars(admin))
    # The older one goes: the newer one takes the port.
    admin.delete("plugindeployment", "scan", NS)
    wait_sidecars(admin, "late rendered once scan went", lambda s: "plugin-late" in s and "plugin-scan" not in s)
    ready_reason(admin, "late", "Unused")
    for n in ("late", "metrics"):
        admin.delete("plugindeployment", n, NS)


def test_cel_refuses_what_the_crd_forbids(admin, operator, tenant_ns):
    for body in (plugin("x", mode="service"),  # no tls
                 service_plugin("x", transport="unix"),
                 plugin("x", replicas=2),
                 {**plugin("x"), "spec": {k: v for k, v in plugin("x")["spec"].items() if k != "image"}}):
        out = admin.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False)
        assert out.returncode != 0 and "Invalid" in out.stderr, (body, out.stderr)


# --- Service mode --------------------------------------------------------------------------------


def test_service_mode_renders_an_owned_deployment_service_and_network_policy(admin, operator, tenant_ns):
    admin.apply([tls_secret("svc-server"), tls_secret("svc-client"),
                 service_plugin("svc", env=[{"name": "MODE", "value": "strict"}])])
    name = "mcp-plugin-svc"
    dep = wait_for("the plugin Deployment", lambda: admin.get("deployment", name, NS), timeout=TIMEOUT)
    svc = wait_for("the plugin Service", lambda: admin.get("service", name, NS), timeout=TIMEOUT)
    np = wait_for("the plugin NetworkPolicy", lambda: admin.get("networkpolicy", name, NS), timeout=TIMEOUT)
    uid = admin.get("plugindeployment", "svc", NS)["metadata"]["uid"]
    for o in (dep, svc, np):
        (owner,) = o["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("PluginDeployment", "svc", uid, True)
        assert o["metadata"]["labels"]["mcp.dev/plugin"] == "svc"
        assert o["metadata"]["labels"]["app.kubernetes.io/component"] == "plugin"
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"] == HARDENED and c["resources"] == DEFAULT_RESOURCES
    assert env(c) == {
        "MODE": "strict",
        "MCP_PLUGIN_LISTEN": "tcp://0.0.0.0:7000",
        "MCP_PLUGIN_TLS_CERT": "/etc/mcp/plugin-tls/tls.crt",
        "MCP_PLUGIN_TLS_KEY": "/etc/mcp/plugin-tls/tls.key",
        "MCP_PLUGIN_TLS_CLIENT_CA": "/etc/mcp/plugin-tls/ca.crt",
    }
    assert c["ports"] == [{"name": "grpc", "containerPort": 7000, "protocol": "TCP"}]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == "svc-server"
    assert {"name": "tls", "mountPath": "/etc/mcp/plugin-tls", "readOnly": True} in c["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False
    admitted_as_pod(admin, dep["spec"]["template"], "dry-run-service")
    # The Service selects the plugin's pods; the NetworkPolicy admits the dataplane's only.
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("grpc", 7000, "grpc")]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 7000}]
    dataplane_labels = sts(admin)["spec"]["selector"]["matchLabels"]
    assert rule["from"] == [{"podSelector": {"matchLabels": dataplane_labels}}]
    # The dataplane pod gets the client certificate, and egress to the plugin's port.
    def client_projected():
        etc = next(v for v in sts(admin)["spec"]["template"]["spec"]["volumes"] if v["name"] == "etc")
        return next((s["secret"] for s in etc["projected"]["sources"]
                     if s.get("secret", {}).get("name") == "svc-client"), None)
    secret = wait_for("the client certificate projected", client_projected, timeout=TIMEOUT)
    assert secret["optional"] is True
    assert [i["path"] for i in secret["items"]] == [f"plugin-client-tls/svc/{k}" for k in ("tls.crt", "tls.key", "ca.crt")]
    dp_np = admin.get("networkpolicy", STS, NS)
    assert any(r.get("to") == [{"podSelector": {"matchLabels": {**dataplane_labels, "app.kubernetes.io/component": "plugin"}}}]
               and r["ports"] == [{"protocol": "TCP", "port": 7000}] for r in dp_np["spec"]["egress"]), dp_np["spec"]["egress"]
    # Not used by any Pipeline yet.
    ready_reason(admin, "svc", "Unused")


def test_missing_certificate_secrets_are_secret_not_found(admin, operator, tenant_ns):
    admin.apply(service_plugin("nosecret"))
    p = ready_reason(admin, "nosecret", "SecretNotFound")
    message = condition(p)["message"]
    assert "nosecret-server" in message and "nosecret-client" in message, message
    admin.apply(tls_secret("nosecret-server"))
    admin.apply(tls_secret("nosecret-client"))
    ready_reason(admin, "nosecret", "Unused")
    admin.delete("plugindeployment", "nosecret", NS)


def test_a_deleted_child_comes_back(admin, operator, tenant_ns):
    wait_for("the plugin Service", lambda: admin.get("service", "mcp-plugin-svc", NS), timeout=TIMEOUT)
    admin.delete("service", "mcp-plugin-svc", NS, wait=True)
    wait_for("the Service re-created", lambda: admin.get("service", "mcp-plugin-svc", NS), timeout=TIMEOUT)


# --- Pipelines and readiness ------------------------------------------------------------------


def test_a_pipeline_naming_an_unready_plugin_is_plugin_not_ready_and_the_plugin_is_rendered(admin, operator, tenant_ns):
    admin.apply(pipeline("scan-mail", "svc"))
    # No dataplane answers for this tenant: the plugin cannot be Ready.
    p = ready_reason(admin, "svc", "NoDataplane")
    assert condition(p)["status"] == "False"
    assert p["status"]["readyEndpoints"] == 0
    ready_reason(admin, "scan-mail", "PluginNotReady", "pipeline")
    # The Pipeline is woken when the plugin's readiness changes, and names its reason.
    pl = wait_for("the Pipeline to name the plugin's reason", lambda: (lambda o: o if "PluginDeployment svc is not Ready (NoDataplane" in condition(o)["message"] else None)(admin.get("pipeline", "scan-mail", NS)), timeout=TIMEOUT)
    assert condition(pl)["status"] == "False"
    assert condition(pl, "Validated")["status"] == "True", "still Validated"
    assert pl["status"]["validated"] is True
    # pipelines.yaml carries the PluginDeployment (no status), before the Pipelines.
    def docs():
        cm = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)
        return [d for d in yaml.safe_load_all(cm["data"]["pipelines.yaml"]) if d]
    rendered = wait_for("the plugin rendered into pipelines.yaml",
                        lambda: (lambda d: d if any(x["kind"] == "PluginDeployment" for x in d) else None)(docs()),
                        timeout=TIMEOUT)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in rendered]
    assert kinds.index(("PluginDeployment", "svc")) < kinds.index(("Pipeline", "scan-mail")), kinds
    doc = next(d for d in rendered if d["kind"] == "PluginDeployment")
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert doc["metadata"] == {"name": "svc", "namespace": NS}
    assert doc["spec"]["mode"] == "service" and doc["spec"]["port"] == 7000
    # Only the plugins a Pipeline names.
    assert ("PluginDeployment", "sock") not in kinds
    assert any(r == "NoDataplane" for _, r, _ in events_for(admin, "svc"))


def test_a_second_reconcile_writes_nothing(admin, operator, tenant_ns):
    """After a restart every PluginDeployment, its children and the dataplane objects are
    reconciled again, and none of them is written: unchanged applies are no-ops, and a status
    equal to the stored one is not written."""
    ready_reason(admin, "svc", "NoDataplane")
    time.sleep(3)  # earlier changes settled
    watched = [("plugindeployment", "svc"), ("plugindeployment", "sock"), ("deployment", "mcp-plugin-svc"),
               ("service", "mcp-plugin-svc"), ("networkpolicy", "mcp-plugin-svc"), ("statefulset", STS),
               ("networkpolicy", STS), ("configmap", f"mcp-{TENANT}-dataplane-config")]
    before = {w: admin.get(w[0], w[1], NS)["metadata"]["resourceVersion"] for w in watched}
    operator.stop()
    restarted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    operator.start()
    wait_for("the plugin controller to reconcile after the restart",
             lambda: operator.metric("mcp_operator_reconciliations_total", 'controller="plugin"') >= 2,
             timeout=TIMEOUT)
    wait_for("the tenant controller to reconcile after the restart",
             lambda: operator.metric("mcp_operator_reconciliations_total", 'controller="tenant"') >= 1,
             timeout=TIMEOUT)
    time.sleep(3)
    after = {w: admin.get(w[0], w[1], NS)["metadata"]["resourceVersion"] for w in watched}
    assert after == before
    assert operator.metric("mcp_operator_api_requests_total", 'method="DELETE"') == 0
    mine = [e for e in admin.items("events.events.k8s.io", NS)
            if e.get("regarding", {}).get("kind") == "PluginDeployment"
            and e["metadata"].get("creationTimestamp", "") >= restarted]
    assert not mine, mine


# --- Mode change and deletion -------------------------------------------------------------------


def test_turning_into_a_sidecar_deletes_the_service_children(admin, operator, tenant_ns):
    admin.apply(plugin("svc", port=7004))
    for kind in ("deployment", "service", "networkpolicy"):
        wait_for(f"the plugin {kind} deleted", lambda: admin.get(kind, "mcp-plugin-svc", NS) is None, timeout=TIMEOUT)
    wait_sidecars(admin, "svc as a sidecar", lambda s: "plugin-svc" in s)
    etc = next(v for v in sts(admin)["spec"]["template"]["spec"]["volumes"] if v["name"] == "etc")
    assert not any(s.get("secret", {}).get("name") == "svc-client" for s in etc["projected"]["sources"])
    # And back.
    admin.apply(service_plugin("svc"))
    wait_for("the plugin Deployment again", lambda: admin.get("deployment", "mcp-plugin-svc", NS), timeout=TIMEOUT)
    wait_sidecars(admin, "no svc sidecar", lambda s: "plugin-svc" not in s)


def test_deleting_a_plugin_garbage_collects_its_children_and_its_sidecar(admin, operator, tenant_ns):
    wait_for("the plugin Deployment", lambda: admin.get("deployment", "mcp-plugin-svc", NS), timeout=TIMEOUT)
    admin.delete("pipeline", "scan-mail", NS)
    admin.delete("plugindeployment", "svc", NS)
    for kind in ("deployment", "service", "networkpolicy"):
        wait_for(f"the garbage collector to remove the plugin {kind}",
                 lambda: admin.get(kind, "mcp-plugin-svc", NS) is None, timeout=TIMEOUT)
    admin.delete("plugindeployment", "sock", NS)
    wait_sidecars(admin, "the sock sidecar removed", lambda s: "plugin-sock" not in s)
    pod = sts(admin)["spec"]["template"]["spec"]
    assert not any(v["name"] == "plugin-sockets" for v in pod["volumes"])
    dp_np = admin.get("networkpolicy", STS, NS)
    assert not any("to" in r for r in dp_np["spec"]["egress"]), "no egress to plugins left"
