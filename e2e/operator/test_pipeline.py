"""The Pipeline controller against the real API server (issue 4, item 5).

`mcp-operator` runs as the chart's ServiceAccount, by impersonation (fixtures.py). A Pipeline
is validated (`Validated` with a reason naming the step and field), rendered into its
tenant's dataplane ConfigMap (`pipelines.yaml`, the last good version of an invalid one
kept), and `Ready` once the tenant's dataplane reports the revision. `Global` Pipelines of
the platform namespace (mcp-system) are rendered into every tenant's file, first.

"Render and run" starts `mcp dataplane` from the rendered ConfigMap and checks that it runs
the rendered revisions and hot-reloads a changed Pipeline without a restart.

Skipped without KUBECONFIG unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets both).
"""

from __future__ import annotations

import os
import re
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

TENANT = "e2e-pl"
RUN_TENANT = "e2e-pl-run"
TENANTS = [TENANT, RUN_TENANT]
NS = f"mcp-{TENANT}"
ORPHAN_NS = "e2e-pl-orphan"
PLATFORM_NS = "mcp-system"
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))


def tenant(name: str) -> dict:
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"domains": [f"{name}.example"]}}


def plugin(name: str, stages: list[str], namespace: str = NS) -> dict:
    return {
        "apiVersion": "mcp.dev/v1alpha1",
        "kind": "PluginDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "registry.example/scanner:1", "protocol": {"min": 1, "max": 1}, "stages": stages},
    }


def pipeline(name: str, stages: list[str], steps: list[dict], namespace: str = NS, labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "mcp.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": meta,
        "spec": {"scope": {"type": "TenantDefault"}, "stages": stages, "steps": steps},
    }


def ext_step(name: str, plugin_name: str) -> dict:
    return {"name": name, "plugin": {"name": plugin_name}}


def builtin_steps(max_size: str, tag: str = "v") -> list[dict]:
    return [
        {"name": "tag", "plugin": {"builtin": "header-tagger"},
         "config": {"headers": [{"name": "X-Tag", "value": tag, "action": "add"}]}},
        {"name": "limit", "plugin": {"builtin": "size-limit"}, "config": {"maxSize": max_size}},
    ]


def global_pipeline(name: str, tag: str, namespace: str = PLATFORM_NS) -> dict:
    """A `Global` Pipeline that tags every message with `X-Platform: <tag>`."""
    p = pipeline(name, ["deliver", "append"], [
        {"name": "tag", "plugin": {"builtin": "header-tagger"},
         "config": {"headers": [{"name": "X-Platform", "value": tag, "action": "add"}]}}], namespace)
    p["spec"]["scope"] = {"type": "Global"}
    return p


def validated(kc: Kubectl, name: str, reason: str, namespace: str = NS) -> dict:
    """Waits until the Pipeline's `Validated` condition has `reason` for its generation."""

    def probe():
        p = kc.get("pipeline", name, namespace)
        c = condition(p, "Validated")
        if c and c["reason"] == reason and c.get("observedGeneration") == p["metadata"]["generation"]:
            return p
        return None

    try:
        return wait_for(f"Pipeline {name} Validated reason {reason}", probe, timeout=TIMEOUT)
    except AssertionError:
        p = kc.get("pipeline", name, namespace)
        raise AssertionError(f"Pipeline {name} not {reason}: {(p or {}).get('status')}")


def rendered(kc: Kubectl, tenant_name: str = TENANT) -> dict[str, dict]:
    """The Pipeline documents of the tenant ConfigMap's pipelines.yaml, by name (the
    PluginDeployments they name come first; test_plugin.py checks those)."""
    cm = kc.get("configmap", f"mcp-{tenant_name}-dataplane-config", f"mcp-{tenant_name}")
    assert cm is not None
    docs = [d for d in yaml.safe_load_all(cm["data"]["pipelines.yaml"]) if d and d["kind"] == "Pipeline"]
    return {d["metadata"]["name"]: d for d in docs}


def wait_rendered(kc: Kubectl, what: str, check, tenant_name: str = TENANT) -> dict[str, dict]:
    return wait_for(what, lambda: (lambda r: r if check(r) else None)(rendered(kc, tenant_name)), timeout=TIMEOUT)


def config_hash(kc: Kubectl) -> str:
    sts = kc.get("statefulset", f"mcp-{TENANT}-dataplane", NS)
    return sts["spec"]["template"]["metadata"]["annotations"]["mcp.dev/config-hash"]


def events_for(kc: Kubectl, namespace: str, name: str) -> list[tuple[str, str]]:
    items = kc.items("events.events.k8s.io", namespace)
    return [(e.get("reason", ""), e.get("note", "")) for e in items if e.get("regarding", {}).get("name") == name]


@pytest.fixture(scope="module")
def tenant_ns(admin: Kubectl, operator: Operator) -> str:
    admin.delete("namespace", ORPHAN_NS)
    wait_for("leftover orphan namespace to go", lambda: admin.get("namespace", ORPHAN_NS) is None, timeout=180)
    admin.apply(tenant(TENANT))
    wait_for("the tenant namespace", lambda: admin.get("namespace", NS), timeout=TIMEOUT)
    wait_for("the tenant ConfigMap", lambda: admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS),
             timeout=TIMEOUT)
    wait_for("the tenant StatefulSet", lambda: admin.get("statefulset", f"mcp-{TENANT}-dataplane", NS), timeout=TIMEOUT)
    admin.apply(plugin("scanner", ["deliver", "append"]))
    yield NS
    admin.delete("namespace", ORPHAN_NS)


# --- Validation and rendering ------------------------------------------------------------


def test_a_pipeline_outside_any_tenant_namespace_is_tenant_not_found(admin, operator, tenant_ns):
    admin.run("create", "namespace", ORPHAN_NS)
    admin.apply([plugin("scanner", ["deliver"], ORPHAN_NS),
                 pipeline("lost", ["deliver"], [ext_step("scan", "scanner")], ORPHAN_NS)])
    p = validated(admin, "lost", "TenantNotFound", ORPHAN_NS)
    assert p["status"]["validated"] is False
    assert condition(p)["status"] == "False" and condition(p)["reason"] == "TenantNotFound"
    assert p["status"]["conditions"][0]["type"] == "Ready", "Ready first"


def test_a_valid_pipeline_is_validated_and_rendered_without_rolling_the_pods(admin, operator, tenant_ns):
    hash_before = config_hash(admin)
    admin.apply(pipeline("scan", ["deliver"], [ext_step("scan", "scanner")], labels={"team": "mail"}))
    p = validated(admin, "scan", "Valid")
    assert p["status"]["validated"] is True
    assert re.fullmatch(r"[0-9a-f]{16}", p["status"]["compiledRevision"]), p["status"]
    # No dataplane runs for this tenant, so its plugin cannot be Ready: not Ready, and it says
    # why (test_plugin.py covers PluginNotReady in depth).
    ready = wait_for("Ready=False PluginNotReady",
                     lambda: (lambda c: c if c and c["reason"] == "PluginNotReady" else None)(
                         condition(admin.get("pipeline", "scan", NS))), timeout=TIMEOUT)
    assert ready["status"] == "False" and "PluginDeployment scanner is not Ready" in ready["message"], ready
    docs = wait_rendered(admin, "scan rendered", lambda r: "scan" in r)
    doc = docs["scan"]
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, doc
    assert doc["metadata"] == {"name": "scan", "namespace": NS, "labels": {"team": "mail"}}
    assert doc["spec"]["steps"][0]["plugin"] == {"name": "scanner"}
    cm = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)
    assert "pipelines: pipelines.yaml" in cm["data"]["config.yaml"]
    time.sleep(2)  # a roll would show by now
    assert config_hash(admin) == hash_before, "a Pipeline change must not roll the dataplane pods"
    assert ("Valid", f"valid; compiled revision {p['status']['compiledRevision']}") in events_for(admin, NS, "scan")


def test_a_missing_plugin_is_plugin_not_found_until_it_appears(admin, operator, tenant_ns):
    ghost = pipeline("ghost", ["append"], [ext_step("call", "late")])
    ghost["spec"]["scope"] = {"type": "MailboxSelector", "mailboxSelector": {"matchLabels": {"team": "x"}}}
    admin.apply(ghost)
    p = validated(admin, "ghost", "PluginNotFound")
    assert 'spec.steps[0] "call"' in condition(p, "Validated")["message"]
    assert "late" in condition(p, "Validated")["message"]
    assert "ghost" not in rendered(admin)
    assert any(r == "PluginNotFound" for r, _ in events_for(admin, NS, "ghost"))
    admin.apply(plugin("late", ["append"]))
    validated(admin, "ghost", "Valid")
    wait_rendered(admin, "ghost rendered once its plugin exists", lambda r: "ghost" in r)


def test_an_invalid_edit_keeps_the_last_good_version_rendered(admin, operator, tenant_ns):
    before = validated(admin, "scan", "Valid")
    good_rev = before["status"]["compiledRevision"]
    good_spec = rendered(admin)["scan"]["spec"]
    # The plugin declares deliver and append, not post-store.
    admin.apply(pipeline("scan", ["deliver", "post-store"], [ext_step("scan", "scanner")], labels={"team": "mail"}))
    p = validated(admin, "scan", "StageNotDeclared")
    message = condition(p, "Validated")["message"]
    assert 'spec.steps[0] "scan"' in message and "post-store" in message, message
    assert p["status"]["validated"] is False
    assert p["status"]["compiledRevision"] == good_rev, "the revision in force stays reported"
    assert condition(p)["status"] == "False" and condition(p)["reason"] == "StageNotDeclared"
    time.sleep(2)  # the Tenant has rendered the change by now
    assert rendered(admin)["scan"]["spec"] == good_spec, "the last good version stays rendered"
    assert any(r == "StageNotDeclared" for r, _ in events_for(admin, NS, "scan"))


def test_a_second_tenant_default_for_a_stage_is_a_scope_conflict_until_the_first_goes(admin, operator, tenant_ns):
    admin.apply(pipeline("second", ["deliver"], [ext_step("scan", "scanner")]))
    p = validated(admin, "second", "ScopeConflict")
    assert "scan" in condition(p, "Validated")["message"]
    assert "second" not in rendered(admin)
    admin.delete("pipeline", "scan", NS)
    validated(admin, "second", "Valid")
    docs = wait_rendered(admin, "scan gone and second rendered", lambda r: "scan" not in r and "second" in r)
    assert sorted(docs) == sorted(["ghost", "second"])
    text = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)["data"]["pipelines.yaml"]
    assert text.index("name: ghost") < text.index("name: second"), "sorted by name"
    assert "status" not in text and "managedFields" not in text


def test_builtin_configs_are_checked_and_the_last_good_one_kept(admin, operator, tenant_ns):
    admin.apply(pipeline("limits", ["post-store"], builtin_steps("10Mi")))
    validated(admin, "limits", "Valid")
    wait_rendered(admin, "limits rendered", lambda r: "limits" in r)
    admin.apply(pipeline("limits", ["post-store"], builtin_steps("huge")))
    p = validated(admin, "limits", "InvalidConfig")
    message = condition(p, "Validated")["message"]
    assert 'spec.steps[1] "limit"' in message and "maxSize" in message, message
    time.sleep(2)
    assert rendered(admin)["limits"]["spec"]["steps"][1]["config"] == {"maxSize": "10Mi"}


def test_cel_refused_pipeline_samples_are_refused_by_the_api_server(admin, operator, tenant_ns):
    from kube import REPO

    for sample in sorted((REPO / "config/samples/invalid").glob("pipeline-*.yaml")):
        doc = yaml.safe_load(sample.read_text())
        doc["metadata"]["namespace"] = NS
        out = admin.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc),
                        check=False)
        assert out.returncode != 0 and "Invalid" in out.stderr, (sample.name, out.stderr)


@pytest.fixture(scope="module")
def platform(admin: Kubectl, operator: Operator):
    """The platform namespace, where Global Pipelines live; they are deleted afterwards (the
    operators of other modules would render them for their tenants)."""
    admin.run("create", "namespace", PLATFORM_NS, check=False)
    yield PLATFORM_NS
    for p in admin.items("pipelines", PLATFORM_NS):
        admin.delete("pipeline", p["metadata"]["name"], PLATFORM_NS)


def test_a_global_pipeline_outside_the_platform_namespace_is_refused(admin, operator, tenant_ns):
    admin.apply(global_pipeline("misplaced", "x", NS))
    p = validated(admin, "misplaced", "GlobalOutsidePlatformNamespace")
    message = condition(p, "Validated")["message"]
    assert PLATFORM_NS in message and NS in message, message
    assert condition(p)["status"] == "False" and condition(p)["reason"] == "GlobalOutsidePlatformNamespace"
    time.sleep(2)
    assert "misplaced" not in rendered(admin)
    admin.delete("pipeline", "misplaced", NS)


def test_a_global_pipeline_of_the_platform_namespace_is_rendered_first_for_every_tenant(
        admin, operator, tenant_ns, platform):
    def header_value(docs: dict[str, dict]) -> str:
        return docs["platform-tag"]["spec"]["steps"][0]["config"]["headers"][0]["value"]

    admin.apply(global_pipeline("platform-tag", "one"))
    p = validated(admin, "platform-tag", "Valid", PLATFORM_NS)
    assert re.fullmatch(r"[0-9a-f]{16}", p["status"]["compiledRevision"]), p["status"]
    docs = wait_rendered(admin, "the Global rendered for the tenant", lambda r: "platform-tag" in r)
    assert docs["platform-tag"]["metadata"] == {"name": "platform-tag", "namespace": PLATFORM_NS}
    assert docs["platform-tag"]["spec"]["scope"] == {"type": "Global"}
    text = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)["data"]["pipelines.yaml"]
    assert text.index("name: platform-tag") < text.index("name: ghost"), "Global Pipelines come first"
    # No dataplane runs for this tenant: the Global is not Ready, and says whose is missing.
    ready = wait_for("Global Ready=False DataplaneUnavailable",
                     lambda: (lambda c: c if c and c["reason"] == "DataplaneUnavailable" else None)(
                         condition(admin.get("pipeline", "platform-tag", PLATFORM_NS))), timeout=TIMEOUT)
    assert TENANT in ready["message"], ready
    # A change in the platform namespace re-renders the tenant.
    admin.apply(global_pipeline("platform-tag", "two"))
    validated(admin, "platform-tag", "Valid", PLATFORM_NS)
    wait_rendered(admin, "the changed Global rendered", lambda r: "platform-tag" in r and header_value(r) == "two")
    # An invalid edit keeps the last good version in every tenant's file.
    broken = global_pipeline("platform-tag", "three")
    broken["spec"]["steps"][0]["config"] = {"headers": "not a list"}
    admin.apply(broken)
    p = validated(admin, "platform-tag", "InvalidConfig", PLATFORM_NS)
    assert 'spec.steps[0] "tag"' in condition(p, "Validated")["message"]
    time.sleep(2)
    assert header_value(rendered(admin)) == "two", "the last good Global stays rendered"
    # Deleted: gone from the tenant's file.
    admin.delete("pipeline", "platform-tag", PLATFORM_NS)
    wait_rendered(admin, "the deleted Global gone", lambda r: "platform-tag" not in r)


def test_a_second_reconcile_writes_nothing(admin, operator, tenant_ns):
    time.sleep(3)  # earlier changes settled
    names = ["ghost", "second"]
    before = {n: admin.get("pipeline", n, NS)["metadata"]["resourceVersion"] for n in names}
    cm_before = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)["metadata"]["resourceVersion"]
    operator.stop()
    restarted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    operator.start()
    wait_for("the pipeline controller to reconcile after the restart",
             lambda: operator.metric("mcp_operator_reconciliations_total", 'controller="pipeline"') >= 2,
             timeout=TIMEOUT)
    wait_for("the tenant controller to reconcile after the restart",
             lambda: operator.metric("mcp_operator_reconciliations_total", 'controller="tenant"') >= 1,
             timeout=TIMEOUT)
    time.sleep(3)
    assert {n: admin.get("pipeline", n, NS)["metadata"]["resourceVersion"] for n in names} == before
    cm = admin.get("configmap", f"mcp-{TENANT}-dataplane-config", NS)
    assert cm["metadata"]["resourceVersion"] == cm_before
    # Events may be posted about other modules' leftovers (Mailboxes whose dataplane is gone
    # fail and say so); nothing else is created or deleted.
    posts = operator.metric("mcp_operator_api_requests_total", 'method="POST"')
    events = operator.metric("mcp_operator_api_requests_total", 'method="POST",resource="events"')
    assert posts - events == 0
    assert operator.metric("mcp_operator_api_requests_total", 'method="DELETE"') == 0
    # No Event about this module's Pipelines either: their state did not change.
    mine = [e for e in admin.items("events.events.k8s.io", NS)
            if e.get("regarding", {}).get("kind") == "Pipeline" and e["metadata"].get("creationTimestamp", "") >= restarted]
    assert not mine, mine


# --- Render and run -----------------------------------------------------------------------


def test_render_and_run_ready_once_the_dataplane_runs_the_revision_and_hot_reloads(
        admin, operator, dataplanes, platform):
    admin.apply(tenant(RUN_TENANT))
    ns = f"mcp-{RUN_TENANT}"
    wait_for("the run tenant's ConfigMap",
             lambda: admin.get("configmap", f"mcp-{RUN_TENANT}-dataplane-config", ns), timeout=TIMEOUT)
    admin.apply(pipeline("tag", ["deliver", "append"], builtin_steps("10Mi", tag="one"), namespace=ns))
    admin.apply(global_pipeline("platform-run", "g1"))
    first = validated(admin, "tag", "Valid", ns)["status"]["compiledRevision"]
    global_first = validated(admin, "platform-run", "Valid", PLATFORM_NS)["status"]["compiledRevision"]
    wait_rendered(admin, "tag and the Global rendered", lambda r: {"tag", "platform-run"} <= set(r), RUN_TENANT)
    # Every tenant gets the Global, not only the one with a dataplane.
    wait_rendered(admin, "the Global rendered for the other tenant", lambda r: "platform-run" in r)

    dp = dataplanes(RUN_TENANT).start()
    pid = dp.proc.pid
    wait_for(f"Tenant {RUN_TENANT} Ready",
             lambda: (condition(admin.get("tenant", RUN_TENANT)) or {}).get("status") == "True", timeout=TIMEOUT)

    def in_force(revision: str):
        dp.refresh_pipelines()  # what the kubelet does with a mounted ConfigMap
        p = admin.get("pipeline", "tag", ns)
        c = condition(p)
        if c and c["status"] == "True" and c["reason"] == "InForce" and p["status"]["compiledRevision"] == revision:
            return p
        return None

    def running() -> set[tuple[str, str, str]]:
        code, state = dp.admin_get_path("/internal/v1/pipelines")
        assert code == 200, state
        return {(p["namespace"], p["name"], p["revision"]) for p in state["pipelines"]}

    wait_for("Ready=True: the dataplane runs the revision", lambda: in_force(first), timeout=TIMEOUT)
    assert {(ns, "tag", first), (PLATFORM_NS, "platform-run", global_first)} <= running()

    # A new revision is RolloutPending until the dataplane reloads the file, then Ready again;
    # the same dataplane process reloads it (no restart).
    admin.apply(pipeline("tag", ["deliver", "append"], builtin_steps("10Mi", tag="two"), namespace=ns))
    p = validated(admin, "tag", "Valid", ns)
    second = p["status"]["compiledRevision"]
    assert second != first
    wait_for("Ready=True with the new revision", lambda: in_force(second), timeout=TIMEOUT)
    assert (ns, "tag", second) in running()
    # A changed Global is hot-reloaded too.
    admin.apply(global_pipeline("platform-run", "g2"))
    global_second = validated(admin, "platform-run", "Valid", PLATFORM_NS)["status"]["compiledRevision"]
    assert global_second != global_first
    wait_for("the dataplane runs the new Global revision",
             lambda: dp.refresh_pipelines() and (PLATFORM_NS, "platform-run", global_second) in running(),
             timeout=TIMEOUT)
    assert dp.proc.poll() is None and dp.proc.pid == pid, "the dataplane was not restarted"
    # The Global is Ready only when every tenant's dataplane runs it; this tenant's does, the
    # other one (no dataplane) does not.
    c = condition(admin.get("pipeline", "platform-run", PLATFORM_NS))
    assert c["status"] == "False" and TENANT in c["message"] and RUN_TENANT not in c["message"], c
