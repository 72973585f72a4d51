"""The Helm chart charts/mcp for tests: render it, and apply the operator's RBAC for real.

Used by e2e/chart/test_chart.py and by operator tests that run the operator with exactly the
permissions the chart grants. Import it from any suite under e2e/ (e2e/conftest.py puts e2e/
on sys.path):

    from chart.mcpchart import apply_rbac, operator_rbac, render, service_account_kubeconfig

    docs = render({"replicaCount": 2}, namespace="mcp-system")   # list of dicts
    with operator_rbac(kubeconfig, "mcp-op-1234") as user:       # system:serviceaccount:...
        sa_kubeconfig = service_account_kubeconfig(kubeconfig, "mcp-op-1234", tmp_path / "sa.kubeconfig")
        # run the operator with KUBECONFIG=sa_kubeconfig: it is the chart's ServiceAccount

helm is $MCP_HELM_BIN, else `helm` in `e2e/services/helm.sh bin-dir`, else helm on PATH.
kubectl is $MCP_KUBECTL, else `kubectl` in `e2e/services/k8s.sh bin-dir`, else kubectl on PATH.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mcp"
# Templates of the operator's identity and permissions (what apply_rbac applies).
RBAC_TEMPLATES = ("templates/serviceaccount.yaml", "templates/rbac.yaml")
FIELD_MANAGER = "mcp-e2e-chart"


class ToolMissing(RuntimeError):
    """helm or kubectl is not built and not on PATH."""


def _from_script(script: str, name: str) -> str | None:
    try:
        bin_dir = subprocess.run(
            ["bash", str(REPO / "e2e" / "services" / script), "bin-dir"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    candidate = Path(bin_dir) / name
    return str(candidate) if bin_dir and os.access(candidate, os.X_OK) else None


@functools.cache
def helm_bin() -> str | None:
    """The helm binary, or None. An explicit $MCP_HELM_BIN is returned even if it is missing."""
    return os.environ.get("MCP_HELM_BIN") or _from_script("helm.sh", "helm") or shutil.which("helm")


@functools.cache
def kubectl_bin() -> str | None:
    """The kubectl binary, or None. An explicit $MCP_KUBECTL is returned even if it is missing."""
    return os.environ.get("MCP_KUBECTL") or _from_script("k8s.sh", "kubectl") or shutil.which("kubectl")


def _need(tool: str | None, what: str) -> str:
    if not tool:
        raise ToolMissing(what)
    return tool


def helm(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs helm with `args`; raises CalledProcessError (with stderr) when `check` and it fails."""
    exe = _need(helm_bin(), "helm not found: run `e2e/services/helm.sh build` or set MCP_HELM_BIN")
    return subprocess.run([exe, *args], check=check, capture_output=True, text=True, input=input)


def kubectl(
    kubeconfig: str | Path, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs kubectl against `kubeconfig`; raises CalledProcessError when `check` and it fails."""
    exe = _need(kubectl_bin(), "kubectl not found: run `e2e/services/k8s.sh build` or set MCP_KUBECTL")
    return subprocess.run(
        [exe, f"--kubeconfig={kubeconfig}", *args], check=check, capture_output=True, text=True, input=input
    )


def render_text(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "mcp",
    namespace: str = "mcp-system",
    include_crds: bool = False,
    api_versions: Sequence[str] = (),
    show_only: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> str:
    """`helm template` of the chart as YAML text.

    `values` are passed as a values file (they are merged over values.yaml and checked against
    values.schema.json); `api_versions` are extra `--api-versions` (e.g.
    "monitoring.coreos.com/v1/ServiceMonitor"); `show_only` limits the output to those templates.
    Raises subprocess.CalledProcessError (stderr has helm's message) when rendering fails.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="mcp-values-") as f:
        json.dump(dict(values or {}), f)
        f.flush()
        args = ["template", release, str(CHART), "--namespace", namespace, "--values", f.name]
        if include_crds:
            args.append("--include-crds")
        for v in api_versions:
            args += ["--api-versions", v]
        for t in show_only:
            args += ["--show-only", t]
        return helm(*args, *extra_args).stdout


def render(values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """`helm template` of the chart as a list of objects (empty documents dropped).

    Takes the arguments of render_text."""
    return [d for d in yaml.safe_load_all(render_text(values, **kwargs)) if d]


def release_for(namespace: str) -> str:
    """The release name apply_rbac uses for `namespace`: `mcp-<namespace>`, shortened with a hash
    when longer than 38 characters. The ClusterRole and ClusterRoleBinding are named after the
    release, so the RBAC of several test namespaces coexists."""
    name = f"mcp-{namespace}"
    if len(name) > 38:
        name = f"{name[:29].rstrip('-')}-{hashlib.sha256(namespace.encode()).hexdigest()[:8]}"
    return name


def _rbac_text(namespace: str, release: str | None, values: Mapping[str, Any] | None) -> str:
    return render_text(values, release=release or release_for(namespace), namespace=namespace, show_only=RBAC_TEMPLATES)


def service_account_name(values: Mapping[str, Any] | None = None) -> str:
    """The operator's ServiceAccount name for these values (as rendered by the chart)."""
    docs = render(values, show_only=("templates/serviceaccount.yaml",))
    return next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")


def apply_rbac(
    kubeconfig: str | Path,
    namespace: str,
    *,
    release: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> str:
    """Applies the chart's ServiceAccount, ClusterRole, ClusterRoleBinding, Role and RoleBinding
    for real (server-side apply as admin), with the operator in `namespace` (created if missing),
    and returns the ServiceAccount's user name `system:serviceaccount:<namespace>:<name>`.

    `release` defaults to release_for(namespace). Pair it with delete_rbac, or use
    operator_rbac, so the cluster-scoped objects do not outlive the test.
    """
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    kubectl(kubeconfig, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", input=json.dumps(ns))
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        input=_rbac_text(namespace, release, values),
    )
    return f"system:serviceaccount:{namespace}:{service_account_name(values)}"


def delete_rbac(
    kubeconfig: str | Path,
    namespace: str,
    *,
    release: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Deletes what apply_rbac applied (not the namespace); missing objects are fine."""
    text = _rbac_text(namespace, release, values)
    kubectl(kubeconfig, "delete", "--ignore-not-found", "--wait=false", "-f", "-", input=text)


@contextlib.contextmanager
def operator_rbac(
    kubeconfig: str | Path,
    namespace: str,
    *,
    release: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """apply_rbac for the duration of a `with` block; yields the ServiceAccount's user name."""
    user = apply_rbac(kubeconfig, namespace, release=release, values=values)
    try:
        yield user
    finally:
        delete_rbac(kubeconfig, namespace, release=release, values=values)


def service_account_kubeconfig(
    kubeconfig: str | Path,
    namespace: str,
    path: str | Path,
    *,
    service_account: str = "mcp-operator",
    duration: str = "1h",
) -> Path:
    """Writes to `path` a kubeconfig that authenticates as the ServiceAccount with a real token
    (TokenRequest, `kubectl create token`), against the cluster of `kubeconfig`. A process run
    with it (the operator, kubectl, kube-rs) has exactly the ServiceAccount's permissions.
    The kubeconfig is JSON, like the one e2e/services/k8s.sh writes."""
    token = kubectl(
        kubeconfig, "-n", namespace, "create", "token", service_account, f"--duration={duration}"
    ).stdout.strip()
    admin = json.loads(Path(kubeconfig).read_text())
    ctx_name = admin["current-context"]
    ctx = next(c["context"] for c in admin["contexts"] if c["name"] == ctx_name)
    cluster = next(c for c in admin["clusters"] if c["name"] == ctx["cluster"])
    user = f"system:serviceaccount:{namespace}:{service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user, "namespace": namespace}}],
        "current-context": user,
    }
    out = Path(path)
    out.write_text(json.dumps(config, indent=2))
    out.chmod(0o600)
    return out
