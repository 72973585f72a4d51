"""Smoke test of the test control plane started by e2e/services/k8s.sh.

Proves that what the operator tests will rely on is real: the API server is ready, objects
persist in etcd, the garbage collector of kube-controller-manager deletes dependents of a
deleted owner, RBAC is enforced, and (when the CRD manifests exist) the project's CRDs are
accepted and become Established.

Talks REST with the credentials of $KUBECONFIG (stdlib only). Skipped when KUBECONFIG is not
set, unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds" / "manifests"
GC_TIMEOUT = float(os.environ.get("MCP_K8S_GC_TIMEOUT", "60"))


class Kube:
    """Minimal REST client for a kubeconfig with a client certificate or a bearer token."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = json.loads(kubeconfig.read_text())  # k8s.sh writes JSON (valid YAML)
        ctx_name = cfg["current-context"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        server = cluster["server"]
        assert server.startswith("https://"), server
        hostport = server[len("https://") :].rstrip("/")
        self.host, _, port = hostport.rpartition(":")
        self.port = int(port)
        self.ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.token = user.get("token")
        if "client-certificate" in user:
            self.ctx.load_cert_chain(user["client-certificate"], user["client-key"])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        try:
            hdrs = {"Accept": "application/json"}
            if self.token:
                hdrs["Authorization"] = f"Bearer {self.token}"
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                hdrs["Content-Type"] = content_type
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            try:
                payload: Any = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode(errors="replace")
            return resp.status, payload
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = self.request(method, path, body, **kw)
        assert 200 <= status < 300, f"{method} {path}: HTTP {status}: {payload}"
        return payload


@pytest.fixture(scope="module")
def kube() -> Kube:
    path = os.environ.get("KUBECONFIG")
    if not path:
        if os.environ.get("MCP_REQUIRE_K8S") == "1":
            pytest.fail("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set")
        pytest.skip("KUBECONFIG not set (run `eval $(e2e/services/k8s.sh start)`)")
    return Kube(Path(path))


@pytest.fixture
def namespace(kube: Kube):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    kube.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.request("DELETE", f"/api/v1/namespaces/{name}")


def wait_until(what: str, timeout: float, check) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def test_readyz(kube: Kube) -> None:
    status, body = kube.request("GET", "/readyz")
    assert (status, body) == (200, "ok")
    version = kube.ok("GET", "/version")
    assert version["major"] == "1", version


def test_configmap_roundtrip_and_garbage_collection(kube: Kube, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = kube.ok(
        "POST",
        base,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}, "data": {"k": "v"}},
    )
    assert kube.ok("GET", f"{base}/owner")["data"] == {"k": "v"}
    kube.ok(
        "POST",
        base,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
                ],
            },
        },
    )
    # Background propagation: the owner goes at once, the garbage collector (in
    # kube-controller-manager) then deletes the dependent.
    kube.ok("DELETE", f"{base}/owner", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert kube.request("GET", f"{base}/owner")[0] == 404
    t0 = time.monotonic()
    wait_until(
        "the garbage collector to delete the dependent ConfigMap",
        GC_TIMEOUT,
        lambda: kube.request("GET", f"{base}/dependent")[0] == 404,
    )
    print(f"dependent garbage-collected after {time.monotonic() - t0:.1f}s")


def test_namespace_deletion_completes(kube: Kube) -> None:
    """The namespace controller empties a Terminating namespace and removes it."""
    name = f"smoke-del-{uuid.uuid4().hex[:8]}"
    kube.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube.ok(
        "POST",
        f"/api/v1/namespaces/{name}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "content"}},
    )
    kube.ok("DELETE", f"/api/v1/namespaces/{name}")
    wait_until(
        f"namespace {name} to be deleted",
        GC_TIMEOUT,
        lambda: kube.request("GET", f"/api/v1/namespaces/{name}")[0] == 404,
    )


def test_rbac_denies_serviceaccount_without_permissions(kube: Kube, namespace: str) -> None:
    kube.ok(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
    )
    sa = {
        "Impersonate-User": f"system:serviceaccount:{namespace}:nobody",
        "Impersonate-Group": "system:serviceaccounts",
    }
    status, body = kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps", headers=sa)
    assert status == 403, (status, body)
    assert body["reason"] == "Forbidden", body
    status, body = kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        headers=sa,
    )
    assert status == 403, (status, body)
    # Granting a Role makes the same request succeed: RBAC, not a blanket failure.
    kube.ok(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    kube.ok(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "nobody-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    wait_until(
        "the RoleBinding to take effect",
        10,
        lambda: kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps", headers=sa)[0] == 200,
    )


def _kubectl() -> str | None:
    explicit = os.environ.get("MCP_KUBECTL")
    if explicit:
        return explicit
    try:
        bin_dir = subprocess.run(
            ["bash", str(REPO / "e2e/services/k8s.sh"), "bin-dir"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except subprocess.CalledProcessError:
        bin_dir = ""
    candidate = Path(bin_dir) / "kubectl"
    if bin_dir and candidate.is_file():
        return str(candidate)
    return shutil.which("kubectl")


def test_crd_manifests_become_established(kube: Kube) -> None:
    manifests = sorted(CRD_DIR.glob("*.yaml")) if CRD_DIR.is_dir() else []
    if not manifests:
        pytest.skip(f"no CRD manifests yet ({CRD_DIR.relative_to(REPO)}/*.yaml does not exist)")
    kubectl = _kubectl()
    assert kubectl, "kubectl not found (built by `e2e/services/k8s.sh build`, or set MCP_KUBECTL)"
    out = subprocess.run(
        [kubectl, "apply", "--server-side", "--force-conflicts", "--field-manager=mcp-smoke", "-o", "name"]
        + [arg for m in manifests for arg in ("-f", str(m))],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    ).stdout.split()
    crds = [line.split("/", 1)[1] for line in out if line.startswith("customresourcedefinition")]
    assert crds, f"{CRD_DIR} holds no CustomResourceDefinition: {out}"

    def established(name: str) -> bool:
        status, body = kube.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        assert status == 200, (status, body)
        conds = {c["type"]: c["status"] for c in body.get("status", {}).get("conditions", [])}
        assert conds.get("NamesAccepted") != "False", body["status"]
        return conds.get("Established") == "True"

    for name in crds:
        wait_until(f"CRD {name} to become Established", 30, lambda: established(name))
    print(f"established: {', '.join(crds)}")
