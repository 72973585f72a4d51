"""Fixtures of the operator tests, shared by the test modules that import them: each module
lists its Tenants in a module-level `TENANTS` (their dataplane ports are fixed before the
operator starts) and gets its own operator process, as the chart's ServiceAccount."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chart.mcpchart import apply_rbac
from conftest import free_ports
from harness import OPERATOR_NAMESPACE, Dataplane, Operator, impersonating_kubeconfig, operator_binary
from kube import REPO, Kubectl, wait_for


@pytest.fixture(scope="module")
def admin() -> Kubectl:
    return Kubectl(os.environ["KUBECONFIG"])


@pytest.fixture(scope="module")
def crds(admin: Kubectl) -> None:
    admin.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / "manifests"))
    for crd in ("tenants", "mailboxes", "pipelines", "plugindeployments", "migrationjobs"):
        admin.run("wait", "--for=condition=Established", f"crd/{crd}.mcp.dev", "--timeout=60s")


@pytest.fixture(scope="module")
def ports(request) -> dict[str, dict[str, int]]:
    out = {}
    for t in request.module.TENANTS:
        imap, imaps, metrics, admin_port = free_ports(4)
        out[t] = {"imap": imap, "imaps": imaps, "metrics": metrics, "admin": admin_port}
    return out


@pytest.fixture(scope="module")
def operator(request, admin: Kubectl, crds, ports, tmp_path_factory) -> Operator:
    work = tmp_path_factory.mktemp("operator")
    tenants = request.module.TENANTS
    # A previous run against the same API server may have left its tenants behind.
    for t in tenants:
        admin.delete("tenant", t)
        for m in admin.items("mailboxes", f"mcp-{t}") if admin.get("namespace", f"mcp-{t}") else []:
            admin.run("patch", "mailbox", m["metadata"]["name"], "-n", f"mcp-{t}", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        admin.delete("namespace", f"mcp-{t}")
    for t in tenants:
        wait_for(f"leftover namespace mcp-{t} to go", lambda: admin.get("namespace", f"mcp-{t}") is None, timeout=180)
    admin.run("create", "namespace", OPERATOR_NAMESPACE, check=False)
    # The chart's RBAC, rendered with helm and applied for real (e2e/chart/mcpchart.py).
    user = apply_rbac(admin.kubeconfig, OPERATOR_NAMESPACE)
    kubeconfig = impersonating_kubeconfig(Path(admin.kubeconfig), user, work / "kubeconfig")
    endpoints = {t: f"https://127.0.0.1:{p['admin']}" for t, p in ports.items()}
    (metrics_port,) = free_ports(1)
    op = Operator(operator_binary(), kubeconfig, work / "operator.log", metrics_port, endpoints).start()
    yield op
    op.stop()
    if os.environ.get("MCP_E2E_KEEP_LOGS"):
        print(op.log_text()[-20000:])


@pytest.fixture(scope="module")
def dataplanes(admin: Kubectl, ports, tmp_path_factory, mcp_binary):
    started: dict[str, Dataplane] = {}

    def get(tenant: str) -> Dataplane:
        if tenant not in started:
            dp = Dataplane(mcp_binary, admin, tenant, tmp_path_factory.mktemp(tenant), ports[tenant])
            started[tenant] = dp
        return started[tenant]

    yield get
    for dp in started.values():
        dp.stop()
