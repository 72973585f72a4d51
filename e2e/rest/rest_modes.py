"""The REST API in both of its modes, for tests that must hold in each (docs/rest-api.md):

- `standalone`: a real `mcp standalone --rest` (SQLite storage, the sample resources);
- `kubernetes`: a real `mcp-operator --rest` against the real kube-apiserver of
  e2e/services/k8s.sh, with the CRDs installed, as the chart's ServiceAccount with
  `rest.enabled` (its RBAC rendered by helm and applied for real, used by impersonation), API
  keys in a fresh PostgreSQL database when MCP_TEST_POSTGRES_URL is set (else SQLite), and
  two tenants reserved for quarantine: one whose dataplane runs locally from what the operator
  wrote (`Dataplane` of e2e/operator/harness.py), one whose admin API is unreachable; and a
  third with a local dataplane for e2e/cli (`cli_tenant`, `cli_dataplane`).

Import both fixtures into a test module: `from rest_modes import kubernetes_rest, rest_api`.
The kubernetes mode is skipped without KUBECONFIG (it fails with MCP_REQUIRE_K8S=1)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, SAMPLES, McpServer, Storage, _psql, _with_database, free_ports

# e2e/operator's helpers (its directory name shadows the stdlib `operator` as a package).
sys.path.insert(0, str(REPO / "e2e" / "operator"))
from harness import OPERATOR_NAMESPACE, Dataplane, Operator, impersonating_kubeconfig, operator_binary  # noqa: E402
from kube import Kubectl, wait_for  # noqa: E402

from chart.mcpchart import apply_rbac  # noqa: E402

# The chart values of an operator serving the REST API (the Secret is not read here: the
# test passes --api-store-url itself).
REST_VALUES = {"rest": {"enabled": True, "apiStore": {"existingSecret": "mcp-api-store"}}}
# The chart release of this module's RBAC (its own ClusterRoles, next to the operator tests').
RELEASE = "mcp-rest-e2e"


class RestTarget:
    """One REST API under test and what a test needs to check it."""

    def __init__(self, mode: str, rest_url: str, key: str, kubectl: Kubectl | None = None) -> None:
        self.mode = mode
        self.rest_url = rest_url
        self.key = key
        #: kubectl as the cluster admin (kubernetes mode only): what the API server holds.
        self.kubectl = kubectl
        #: The tenant whose dataplane runs (kubernetes mode), and the one whose is unreachable.
        self.quarantine_tenant: str | None = None
        self.unreachable_tenant: str | None = None
        #: A tenant whose dataplane runs locally too (`cli_dataplane`, kubernetes mode), for
        #: e2e/cli's IMAP login after `mcp-cli mailboxes create`.
        self.cli_tenant: str | None = None
        #: With `--oidc-config` (oidc_config): the tenant of the `mcp-ops` scope.
        self.oidc_tenant: str | None = None
        self.tenants: list[str] = []

    @property
    def kubernetes(self) -> bool:
        return self.mode == "kubernetes"

    def tenant_name(self, base: str) -> str:
        """A tenant name unique on a shared API server; remembered for clean-up."""
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        self.tenants.append(name)
        return name

    def namespace(self, tenant: str) -> str:
        return f"mcp-{tenant}"


def _k8s_available() -> bool:
    if os.environ.get("KUBECONFIG"):
        return True
    if os.environ.get("MCP_REQUIRE_K8S") == "1":
        pytest.fail("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set (start e2e/services/k8s.sh)")
    return False


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _cleanup_tenant(kc: Kubectl, tenant: str) -> None:
    ns = f"mcp-{tenant}"
    if kc.get("namespace", ns):
        for kind in ("mailboxes",):
            for m in kc.items(kind, ns):
                kc.run("patch", kind, m["metadata"]["name"], "-n", ns, "--type=merge",
                       "-p", '{"metadata":{"finalizers":null}}', check=False)
    kc.delete("tenant", tenant)
    kc.delete("namespace", ns)


@pytest.fixture(scope="module")
def kubernetes_rest(tmp_path_factory, mcp_binary) -> Iterator[RestTarget]:
    """`mcp-operator --rest` for the whole module (tests use tenants of their own)."""
    if not _k8s_available():
        pytest.skip("KUBECONFIG not set: no API server")
    work = tmp_path_factory.mktemp("k8s-rest")
    admin = Kubectl(os.environ["KUBECONFIG"])
    admin.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / "manifests"))
    for crd in ("tenants", "mailboxes", "pipelines", "plugindeployments", "migrationjobs"):
        admin.run("wait", "--for=condition=Established", f"crd/{crd}.mcp.dev", "--timeout=60s")
    admin.run("create", "namespace", OPERATOR_NAMESPACE, check=False)
    user = apply_rbac(admin.kubeconfig, OPERATOR_NAMESPACE, release=RELEASE, values=REST_VALUES)
    kubeconfig = impersonating_kubeconfig(Path(admin.kubeconfig), user, work / "kubeconfig")

    # The API key database: a fresh PostgreSQL database (as in a cluster), else SQLite.
    pg_admin = os.environ.get("MCP_TEST_POSTGRES_URL")
    database = None
    if pg_admin:
        database = "mcp_rest_e2e_" + uuid.uuid4().hex[:10]
        _psql(pg_admin, f"CREATE DATABASE {database}")
        store_url = _with_database(pg_admin, database)
    else:
        store_url = f"sqlite://{work / 'api.sqlite'}"
    from test_rest_auth import gen_key  # here: test_rest_auth imports this module

    key = gen_key()
    key_file = work / "admin.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)

    suffix = uuid.uuid4().hex[:6]
    quarantine_tenant, unreachable_tenant, cli_tenant = f"rq-{suffix}", f"rd-{suffix}", f"rc-{suffix}"
    imap, imaps, metrics, admin_port, closed, rest_port, metrics_port = free_ports(7)
    dp_ports = {"imap": imap, "imaps": imaps, "metrics": metrics, "admin": admin_port}
    cli_imap, cli_imaps, cli_metrics, cli_admin = free_ports(4)
    cli_ports = {"imap": cli_imap, "imaps": cli_imaps, "metrics": cli_metrics, "admin": cli_admin}
    endpoints = {
        quarantine_tenant: f"https://127.0.0.1:{admin_port}",
        # Nothing listens there.
        unreachable_tenant: f"https://127.0.0.1:{closed}",
        cli_tenant: f"https://127.0.0.1:{cli_admin}",
    }
    extra = [f"--rest=127.0.0.1:{rest_port}", f"--api-store-url={store_url}",
             f"--bootstrap-key-file={key_file}", "--rest-rate=1000", "--rest-burst=1000"]
    # Bearer tokens of the test OIDC provider (e2e/services/hydra.sh), when it runs.
    oidc_tenant = f"ro-{suffix}"
    oidc = oidc_config(work, oidc_tenant)
    if oidc:
        extra.append(f"--oidc-config={oidc}")
    op = Operator(
        operator_binary(), kubeconfig, work / "operator.log", metrics_port, endpoints,
        identity="e2e-rest-operator-0",
        extra=extra,
    ).start()
    base = f"http://127.0.0.1:{rest_port}/api/v1"
    target = RestTarget("kubernetes", base, key, admin)
    target.oidc_tenant = oidc_tenant if oidc else None
    target.tenants.append(oidc_tenant)
    target.quarantine_tenant, target.unreachable_tenant = quarantine_tenant, unreachable_tenant
    target.tenants += [quarantine_tenant, unreachable_tenant]
    target.dataplane = Dataplane(mcp_binary, admin, quarantine_tenant, work / quarantine_tenant, dp_ports)
    target.cli_tenant = cli_tenant
    target.tenants.append(cli_tenant)
    target.cli_dataplane = Dataplane(mcp_binary, admin, cli_tenant, work / cli_tenant, cli_ports)
    try:
        wait_for("the REST API to be ready", lambda: _get(f"{base}/health/ready") == 200, timeout=60)
        yield target
    finally:
        target.dataplane.stop()
        target.cli_dataplane.stop()
        op.stop()
        if os.environ.get("MCP_E2E_KEEP_LOGS"):
            print(op.log_text()[-20000:])
        assert key not in op.log_text(), "the bootstrap key leaked into the operator's log"
        for t in target.tenants:
            _cleanup_tenant(admin, t)
        if database:
            _psql(pg_admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def oidc_config(work: Path, ops_tenant: str) -> Path | None:
    """An `--oidc-config` file for the test OIDC provider (e2e/services/hydra.sh: tokens of
    the client-credentials grant carry the granted scopes in `scp`): scope `mcp-admin` is
    admin, `mcp-viewer` viewer, `mcp-ops` tenant-admin of `ops_tenant`, any other no role.
    `None` when the provider is not running (MCP_TEST_OIDC_ISSUER unset)."""
    issuer = os.environ.get("MCP_TEST_OIDC_ISSUER")
    if not issuer:
        return None
    path = work / "oidc.json"
    path.write_text(json.dumps({
        "issuer": issuer,
        "audience": "mcp-api",
        "roles": {
            "roleClaim": None,
            "groupsClaim": "scp",
            "groups": {
                "mcp-admin": {"role": "admin"},
                "mcp-viewer": {"role": "viewer"},
                "mcp-ops": {"role": "tenant-admin", "tenant": ops_tenant},
            },
        },
    }))
    return path


@pytest.fixture(params=["standalone", "kubernetes"])
def rest_api(request, tmp_path, mcp_binary) -> Iterator[RestTarget]:
    """The REST API of `mcp standalone` (a fresh one per test) or of `mcp-operator` (one per
    module, on the real API server)."""
    if request.param == "kubernetes":
        yield request.getfixturevalue("kubernetes_rest")
        return
    server = McpServer(mcp_binary, tmp_path / "data", SAMPLES, Storage("sqlite", None), tmp_path / "mcp.log")
    try:
        server.wait_for_greeting()
        key = server.bootstrap_key()
        assert key, "no bootstrap key printed"
        yield RestTarget("standalone", server.rest_url, key)
    finally:
        if server.proc.poll() is None:
            server.stop()


def resource(kind: str, name: str, spec: dict, **metadata) -> dict:
    """A request body: kind, metadata.name (+ labels/annotations) and spec."""
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}


def dumps(o) -> str:
    return json.dumps(o, indent=1, sort_keys=True)
