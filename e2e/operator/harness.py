"""Processes of the operator tests: `mcp-operator` talking to the real API server as the
chart's ServiceAccount, and `mcp dataplane` run locally from exactly the ConfigMap and
Secrets the operator wrote for a Tenant (there is no kubelet: pods never run)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from kube import REPO, Kubectl, wait_for

OPERATOR_NAMESPACE = "mcp-system"


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def operator_binary() -> Path:
    explicit = os.environ.get("MCP_OPERATOR_BIN")
    if explicit:
        return Path(explicit)
    profile = os.environ.get("MCP_E2E_PROFILE", "debug")
    cmd = ["cargo", "build", "-p", "mcp-operator", "--bin", "mcp-operator"]
    if profile == "release":
        cmd.append("--release")
    subprocess.run(cmd, cwd=REPO, check=True)
    return target_dir() / profile / "mcp-operator"


def impersonating_kubeconfig(admin: Path, user: str, out: Path) -> Path:
    """A copy of the admin kubeconfig (JSON, from k8s.sh) that impersonates `user`: every
    request is authorized as that user, so a verb missing from its RBAC fails."""
    cfg = json.loads(admin.read_text())
    for u in cfg["users"]:
        u["user"]["as"] = user
    out.write_text(json.dumps(cfg))
    return out


def wait_port(port: int, timeout: float = 30.0) -> None:
    def open_() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(f"127.0.0.1:{port} to listen", open_, timeout=timeout, interval=0.1)


class Operator:
    """An `mcp-operator` process."""

    def __init__(
        self,
        binary: Path,
        kubeconfig: Path,
        log: Path,
        metrics_port: int,
        endpoints: dict[str, str],
        identity: str = "e2e-operator-0",
        extra: list[str] | None = None,
    ) -> None:
        self.binary, self.kubeconfig, self.log = binary, kubeconfig, log
        self.metrics_port, self.endpoints, self.identity = metrics_port, endpoints, identity
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Operator":
        args = [
            str(self.binary),
            "--image=registry.example/mcp:e2e",
            f"--namespace={OPERATOR_NAMESPACE}",
            f"--identity={self.identity}",
            f"--metrics-addr=127.0.0.1:{self.metrics_port}",
            "--log-format=json",
            *[f"--dataplane-endpoint={t}={u}" for t, u in self.endpoints.items()],
            *self.extra,
        ]
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), RUST_LOG="info,mcp_operator=debug")
        self.log_file = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=env)
        wait_port(self.metrics_port)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of the samples of `name` whose label set contains `labels` (e.g.
        'method="PATCH"')."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and (not labels or labels in line):
                head, _, value = line.rpartition(" ")
                if head.split("{")[0] == name:
                    total += float(value)
        return total

    def writes(self) -> float:
        return sum(
            self.metric("mcp_operator_api_requests_total", f'method="{m}"')
            for m in ("POST", "PUT", "PATCH", "DELETE")
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "log_file"):
            self.log_file.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Dataplane:
    """`mcp dataplane` run from the files the operator rendered for one Tenant, laid out as the
    pod's projected volume: config.yaml, pipelines.yaml, tls/tls.{crt,key},
    admin/{tls.crt,tls.key,token}.

    Outside a pod some places differ; set before `start`:
    - `config_overrides`: fields set in the written config.yaml over the rendered ones, e.g.
      `pluginSocketDir` (the pod's shared `emptyDir`) or `pluginClientTlsDir`;
    - `extra_args`: more flags of `mcp dataplane`, e.g. `--plugin-service-host 127.0.0.1`."""

    def __init__(self, binary: Path, kubectl: Kubectl, tenant: str, workdir: Path, ports: dict[str, int]) -> None:
        self.binary, self.kubectl, self.tenant = binary, kubectl, tenant
        self.workdir, self.ports = workdir, ports
        self.etc = workdir / "etc"
        self.data = workdir / "data"
        self.proc: subprocess.Popen | None = None
        self.config_overrides: dict = {}
        self.extra_args: list[str] = []
        #: Environment of the process over this one's (the container's `env`, for example).
        self.env: dict[str, str] = {}

    @property
    def namespace(self) -> str:
        return f"mcp-{self.tenant}"

    def materialize(self) -> None:
        """Writes the ConfigMap's and Secrets' contents exactly as the pod would see them."""
        ns = self.namespace
        cm = wait_for(
            "the dataplane ConfigMap",
            lambda: self.kubectl.get("configmap", f"mcp-{self.tenant}-dataplane-config", ns),
        )
        tls = wait_for("the TLS Secret", lambda: self.kubectl.get("secret", f"mcp-{self.tenant}-dataplane-tls", ns))
        admin = wait_for("the admin Secret", lambda: self.kubectl.get("secret", f"mcp-{self.tenant}-dataplane-admin", ns))
        assert tls and admin
        (self.etc / "tls").mkdir(parents=True, exist_ok=True)
        (self.etc / "admin").mkdir(parents=True, exist_ok=True)
        text = cm["data"]["config.yaml"]
        if self.config_overrides:
            doc = yaml.safe_load(text)
            doc.update(self.config_overrides)
            text = yaml.safe_dump(doc)
        (self.etc / "config.yaml").write_text(text)
        if "pipelines.yaml" in cm["data"]:
            (self.etc / "pipelines.yaml").write_text(cm["data"]["pipelines.yaml"])
        tls_data = self.kubectl.secret_data(f"mcp-{self.tenant}-dataplane-tls", ns)
        admin_data = self.kubectl.secret_data(f"mcp-{self.tenant}-dataplane-admin", ns)
        for key in ("tls.crt", "tls.key"):
            (self.etc / "tls" / key).write_bytes(tls_data[key])
            (self.etc / "admin" / key).write_bytes(admin_data[key])
        (self.etc / "admin" / "token").write_bytes(admin_data["token"])
        for p in (self.etc / "tls" / "tls.key", self.etc / "admin" / "tls.key", self.etc / "admin" / "token"):
            p.chmod(0o600)

    def materialize_plugin_client_tls(self) -> list[Path]:
        """Writes the Secrets the dataplane's StatefulSet projects under
        `plugin-client-tls/<plugin>/` of its /etc/mcp volume (the client certificates of
        service plugins) item by item, as the kubelet would; returns the files written."""
        sts = self.kubectl.get("statefulset", f"mcp-{self.tenant}-dataplane", self.namespace)
        assert sts is not None, "the dataplane StatefulSet is gone"
        etc = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "etc")
        written: list[Path] = []
        for source in etc["projected"]["sources"]:
            secret = source.get("secret") or {}
            items = [i for i in secret.get("items") or [] if i["path"].startswith("plugin-client-tls/")]
            if not items:
                continue
            data = self.kubectl.secret_data(secret["name"], self.namespace)
            for item in items:
                path = self.etc / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data[item["key"]])
                path.chmod(0o600)
                written.append(path)
        return written

    def start(self) -> "Dataplane":
        if not (self.etc / "config.yaml").exists():
            self.materialize()
        self.data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        args = [
            str(self.binary),
            "dataplane",
            "--config",
            str(self.etc / "config.yaml"),
            "--data-dir",
            str(self.data),
            "--imap",
            f"127.0.0.1:{p['imap']}",
            "--imaps",
            f"127.0.0.1:{p['imaps']}",
            "--lmtp",
            "127.0.0.1:0",
            "--metrics",
            f"127.0.0.1:{p['metrics']}",
            "--admin",
            f"127.0.0.1:{p['admin']}",
            *self.extra_args,
        ]
        self.log = open(self.workdir / "dataplane.log", "ab")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        wait_port(p["admin"])
        wait_port(p["imap"])
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if hasattr(self, "log"):
            self.log.close()

    def refresh_pipelines(self) -> str:
        """Writes the ConfigMap's current pipelines.yaml over the file, atomically, as the
        kubelet updates a mounted ConfigMap; returns the text."""
        cm = self.kubectl.get("configmap", f"mcp-{self.tenant}-dataplane-config", self.namespace)
        assert cm is not None, "the dataplane ConfigMap is gone"
        text = cm["data"]["pipelines.yaml"]
        tmp = self.etc / ".pipelines.yaml.new"
        tmp.write_text(text)
        tmp.replace(self.etc / "pipelines.yaml")
        return text

    def admin_get(self, address: str) -> tuple[int, dict]:
        """GET the account through the admin API, pinned to the admin certificate."""
        return self.admin_get_path(f"/internal/v1/accounts/{address}")

    def admin_get_path(self, path: str) -> tuple[int, dict]:
        """GET `path` of the admin API, pinned to the admin certificate."""
        ctx = ssl.create_default_context(cafile=str(self.etc / "admin" / "tls.crt"))
        token = (self.etc / "admin" / "token").read_text().strip()
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.ports['admin']}{path}",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
