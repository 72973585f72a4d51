"""`PluginDeployment.spec.suspend` against the real API server (docs/api.md, "Suspending a
plugin").

Without a dataplane (tenant `e2e-pls`): the CRD schema refuses a `suspend` that is not a
boolean and defaults it to `false`; a suspended sidecar is not rendered and comes back when
resumed; a suspended `service` plugin's Deployment is scaled to 0 replicas while its Service
and NetworkPolicy stay and the dataplane's StatefulSet does not change; the
PluginDeployment is `Ready=False` with reason `Suspended` for its generation, with a Normal
Event; a Pipeline naming it lists the step in `status.suspendedSteps` and `StepsSkipped`,
and is not `PluginNotReady`.

With a dataplane (tenant `e2e-plsr`, run locally from the rendered objects as in
test_plugin_run.py): a `tcp` sidecar serving a `failClosed` step; suspended, the dataplane
(once it has the new pipelines.yaml) skips the step, the Pipeline is `Ready=True` only then,
and an APPEND is stored without the step's effect; resumed, the plugin serves again and
tags again.

Skipped without KUBECONFIG unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets both).
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import yaml

from conftest import free_ports
from fixtures import admin, crds, dataplanes, operator, ports  # noqa: F401 (pytest fixtures)
from kube import Kubectl, condition, wait_for

if not os.environ.get("KUBECONFIG"):
    if os.environ.get("MCP_REQUIRE_K8S") == "1":
        raise RuntimeError("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set (start e2e/services/k8s.sh)")
    pytest.skip("KUBECONFIG not set: no API server", allow_module_level=True)

from test_plugin_run import (  # noqa: E402
    PLUGIN,
    PluginProcess,
    append,
    assert_serving,
    assert_tagged,
    dataplane_phase,
    mailbox,
    plugin_deployment,
    plugin_procs,  # noqa: F401 (pytest fixture)
    ready,
    sidecar,
    start_dataplane,
    stored,
    template_bin,  # noqa: F401 (pytest fixture)
    tenant,
)

BARE, RUN = "e2e-pls", "e2e-plsr"
TENANTS = [BARE, RUN]
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))


def ns(t: str) -> str:
    return f"mcp-{t}"


def sts_name(t: str) -> str:
    return f"mcp-{t}-dataplane"


def plugin(name: str, **spec) -> dict:
    body = {"image": f"registry.example/{name}:1", "protocol": {"min": 1, "max": 1}, "stages": ["deliver"]}
    body.update(spec)
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "PluginDeployment",
            "metadata": {"name": name, "namespace": ns(BARE)}, "spec": body}


def service_plugin(name: str, **spec) -> dict:
    return plugin(name, mode="service", port=7100, replicas=2,
                  tls={"serverSecretRef": {"name": f"{name}-server"}, "clientSecretRef": {"name": f"{name}-client"}},
                  **spec)


def tls_secret(name: str) -> dict:
    fake = base64.b64encode(b"not checked by the operator").decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": ns(BARE)},
            "data": {"tls.crt": fake, "tls.key": fake, "ca.crt": fake}}


def sidecars(kc: Kubectl, t: str) -> set[str]:
    s = kc.get("statefulset", sts_name(t), ns(t))
    assert s is not None
    return {c["name"] for c in s["spec"]["template"]["spec"].get("initContainers") or []}


def reason_of(kc: Kubectl, kind: str, name: str, namespace: str, reason: str, type_: str = "Ready") -> dict:
    """Waits until the object's condition `type_` has `reason` for its current generation."""

    def probe():
        o = kc.get(kind, name, namespace)
        c = condition(o, type_)
        if c and c["reason"] == reason and c.get("observedGeneration") == o["metadata"]["generation"]:
            return o
        return None

    try:
        return wait_for(f"{kind} {name} {type_} reason {reason}", probe, timeout=TIMEOUT)
    except AssertionError:
        o = kc.get(kind, name, namespace)
        raise AssertionError(f"{kind} {name} {type_} not {reason}: {(o or {}).get('status')}")


def events_for(kc: Kubectl, name: str, namespace: str) -> set[tuple[str, str]]:
    return {(e.get("type", ""), e.get("reason", ""))
            for e in kc.items("events.events.k8s.io", namespace)
            if e.get("regarding", {}).get("kind") == "PluginDeployment" and e["regarding"].get("name") == name}


@pytest.fixture(scope="module")
def bare_ns(admin: Kubectl, operator) -> str:
    admin.apply(tenant(BARE))
    wait_for("the tenant StatefulSet", lambda: admin.get("statefulset", sts_name(BARE), ns(BARE)), timeout=TIMEOUT)
    return ns(BARE)


# --- The schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, [True], {"a": "b"}])
def test_the_crd_schema_refuses_a_suspend_that_is_not_a_boolean(admin, bare_ns, value):
    body = plugin("hostile", suspend=value)
    out = admin.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False)
    assert out.returncode != 0, (value, out.stdout)
    assert "spec.suspend" in out.stderr and "boolean" in out.stderr, out.stderr


def test_suspend_defaults_to_false_and_is_a_printer_column(admin, bare_ns):
    admin.apply(plugin("plain", port=7110))
    p = admin.get("plugindeployment", "plain", bare_ns)
    assert p["spec"]["suspend"] is False, "defaulted by the API server"
    table = admin.run("get", "plugindeployment", "plain", "-n", bare_ns).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "READY", "SUSPENDED"], header
    assert row.split()[2] == "false", row
    admin.delete("plugindeployment", "plain", bare_ns)


# --- Sidecar and service mode without a dataplane ----------------------------------------------------


def test_a_suspended_sidecar_is_not_rendered_and_a_resumed_one_is(admin, bare_ns):
    admin.apply(plugin("scan", port=7101))
    wait_for("the sidecar rendered", lambda: "plugin-scan" in sidecars(admin, BARE), timeout=TIMEOUT)
    reason_of(admin, "plugindeployment", "scan", bare_ns, "Unused")

    admin.apply(plugin("scan", port=7101, suspend=True))
    p = reason_of(admin, "plugindeployment", "scan", bare_ns, "Suspended")
    c = condition(p)
    assert c["status"] == "False" and "no sidecar is rendered" in c["message"], c
    assert p["status"]["conditions"][0]["type"] == "Ready"
    assert p["status"]["observedGeneration"] == p["metadata"]["generation"]
    assert p["status"]["readyEndpoints"] == 0 and "negotiatedVersion" not in p["status"]
    wait_for("the sidecar removed", lambda: "plugin-scan" not in sidecars(admin, BARE), timeout=TIMEOUT)
    assert ("Normal", "Suspended") in events_for(admin, "scan", bare_ns)
    table = admin.run("get", "plugindeployment", "scan", "-n", bare_ns).stdout
    assert table.splitlines()[1].split()[1:3] == ["False", "true"], table

    admin.apply(plugin("scan", port=7101))
    wait_for("the sidecar back", lambda: "plugin-scan" in sidecars(admin, BARE), timeout=TIMEOUT)
    reason_of(admin, "plugindeployment", "scan", bare_ns, "Unused")


def test_a_suspended_service_plugin_is_scaled_to_zero_and_the_dataplane_does_not_roll(admin, bare_ns):
    admin.apply([tls_secret("svc-server"), tls_secret("svc-client"), service_plugin("svc")])
    name = "mcp-plugin-svc"
    wait_for("the plugin Deployment at 2", lambda: (admin.get("deployment", name, bare_ns) or {})
             .get("spec", {}).get("replicas") == 2, timeout=TIMEOUT)
    reason_of(admin, "plugindeployment", "svc", bare_ns, "Unused")
    time.sleep(2)  # the Tenant controller has injected the client certificate and egress
    before = admin.get("statefulset", sts_name(BARE), bare_ns)["metadata"]["generation"]

    admin.apply(service_plugin("svc", suspend=True))
    p = reason_of(admin, "plugindeployment", "svc", bare_ns, "Suspended")
    assert "Deployment mcp-plugin-svc is scaled to 0 replicas" in condition(p)["message"], condition(p)
    wait_for("the plugin Deployment at 0", lambda: admin.get("deployment", name, bare_ns)["spec"]["replicas"] == 0,
             timeout=TIMEOUT)
    assert admin.get("service", name, bare_ns) is not None, "the Service stays"
    assert admin.get("networkpolicy", name, bare_ns) is not None, "the NetworkPolicy stays"
    time.sleep(2)
    assert admin.get("statefulset", sts_name(BARE), bare_ns)["metadata"]["generation"] == before, \
        "suspending a service plugin does not roll the dataplane pods"

    admin.apply(service_plugin("svc"))
    wait_for("the plugin Deployment at 2 again",
             lambda: admin.get("deployment", name, bare_ns)["spec"]["replicas"] == 2, timeout=TIMEOUT)
    reason_of(admin, "plugindeployment", "svc", bare_ns, "Unused")
    assert admin.get("statefulset", sts_name(BARE), bare_ns)["metadata"]["generation"] == before


def test_a_pipeline_skips_the_steps_of_a_suspended_plugin_and_is_not_plugin_not_ready(admin, bare_ns):
    pl = {"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "scanning", "namespace": bare_ns},
          "spec": {"scope": {"type": "TenantDefault"}, "stages": ["deliver"],
                   "steps": [{"name": "first", "plugin": {"name": "scan"}},
                             {"name": "tag", "plugin": {"builtin": "header-tagger"},
                              "config": {"headers": [{"name": "X-T", "value": "v", "action": "add"}]}},
                             {"name": "second", "plugin": {"name": "scan"}}]}}
    admin.apply([plugin("scan", port=7101, suspend=True), pl])
    p = reason_of(admin, "pipeline", "scanning", bare_ns, "PluginSuspended", "StepsSkipped")
    assert p["status"]["suspendedSteps"] == ["first", "second"]
    skipped = condition(p, "StepsSkipped")
    assert skipped["status"] == "True"
    assert "first (PluginDeployment scan)" in skipped["message"] and "second (PluginDeployment scan)" in skipped["message"]
    # No dataplane answers here: the rollout cannot be confirmed, but a suspended plugin is
    # never the reason.
    p = reason_of(admin, "pipeline", "scanning", bare_ns, "DataplaneUnavailable")
    assert condition(p, "Validated")["status"] == "True"
    table = admin.run("get", "pipeline", "scanning", "-n", bare_ns).stdout
    assert '["first","second"]' in table, table
    # The dataplane is told: the PluginDeployment is rendered with its suspend.
    def rendered():
        cm = admin.get("configmap", f"mcp-{BARE}-dataplane-config", bare_ns)
        docs = [d for d in yaml.safe_load_all(cm["data"].get("pipelines.yaml", "")) if d]
        return next((d for d in docs if d["kind"] == "PluginDeployment" and d["metadata"]["name"] == "scan"), None)
    doc = wait_for("the suspended plugin rendered", rendered, timeout=TIMEOUT)
    assert doc["spec"]["suspend"] is True

    admin.apply(plugin("scan", port=7101))
    p = reason_of(admin, "pipeline", "scanning", bare_ns, "NoStepSkipped", "StepsSkipped")
    assert "suspendedSteps" not in p["status"]
    reason_of(admin, "pipeline", "scanning", bare_ns, "PluginNotReady")
    wait_for("rendered without suspend", lambda: "suspend" not in (rendered() or {"spec": {"suspend": 1}})["spec"],
             timeout=TIMEOUT)
    admin.delete("pipeline", "scanning", bare_ns)


# --- With a dataplane -----------------------------------------------------------------------------


def test_a_suspended_sidecar_step_is_skipped_by_the_dataplane_and_comes_back_when_resumed(
        admin, operator, dataplanes, template_bin, plugin_procs, tmp_path):
    (port,) = free_ports(1)
    admin.apply(tenant(RUN))
    wait_for("the tenant namespace", lambda: admin.get("namespace", ns(RUN)), timeout=TIMEOUT)
    pipeline = {"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline",
                "metadata": {"name": "tagging", "namespace": ns(RUN)},
                "spec": {"scope": {"type": "TenantDefault"}, "stages": ["append"],
                         "steps": [{"name": "tag", "plugin": {"name": PLUGIN},
                                    "config": {"keyword": "$Tagged", "header": "X-Tagged", "value": "yes"},
                                    "timeout": "10s", "onError": "failClosed"}]}}
    admin.apply([*mailbox(RUN), plugin_deployment(RUN, port=port), pipeline])
    side, _ = sidecar(admin, RUN)
    listen = f"tcp://127.0.0.1:{port}"
    proc = PluginProcess(template_bin, side, {}, tmp_path / "plugin.log").start()
    plugin_procs.append(proc)
    dp = start_dataplane(admin, dataplanes, RUN)
    assert_serving(admin, ns(RUN), listen)
    assert_tagged(dp, "before suspend")

    admin.apply(plugin_deployment(RUN, port=port, suspend=True))
    ready(admin, "plugindeployment", PLUGIN, ns(RUN), "False", {"Suspended"})
    wait_for("the sidecar removed", lambda: f"plugin-{PLUGIN}" not in sidecars(admin, RUN), timeout=TIMEOUT)
    p = reason_of(admin, "pipeline", "tagging", ns(RUN), "PluginSuspended", "StepsSkipped")
    assert p["status"]["suspendedSteps"] == ["tag"]
    # The dataplane has not loaded the suspension yet (no kubelet: the test delivers it).
    p = ready(admin, "pipeline", "tagging", ns(RUN), "False", {"RolloutPending"})
    assert "skips steps [], not [tag]" in condition(p)["message"], condition(p)

    proc.kill()  # the pods rolled without the sidecar
    dp.refresh_pipelines()
    wait_for("the dataplane has it suspended",
             lambda: (dataplane_phase(dp) or {}).get("phase") == "suspended", timeout=TIMEOUT)
    code, state = dp.admin_get_path("/internal/v1/pipelines")
    assert code == 200, state
    (loaded,) = [x for x in state["pipelines"] if x["name"] == "tagging"]
    assert loaded["skippedSteps"] == ["tag"], loaded
    p = ready(admin, "pipeline", "tagging", ns(RUN), "True", {"InForce"})
    assert "skipping steps [tag]" in condition(p)["message"], condition(p)

    typ, text = append(dp, "while suspended")
    assert typ == "OK", (typ, text)
    flags, header = stored(dp)["while suspended"]
    assert header == b"" and b"$Tagged" not in flags, "stored without the step's effect"

    admin.apply(plugin_deployment(RUN, port=port))
    sidecar(admin, RUN)
    proc.start()
    dp.refresh_pipelines()
    assert_serving(admin, ns(RUN), listen)
    p = reason_of(admin, "pipeline", "tagging", ns(RUN), "NoStepSkipped", "StepsSkipped")
    assert "suspendedSteps" not in p["status"]
    assert_tagged(dp, "after resume")
    assert set(stored(dp)) == {"before suspend", "while suspended", "after resume"}
