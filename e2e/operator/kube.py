"""kubectl wrappers for the operator tests: every call goes to the real API server of
e2e/services/k8s.sh through the real kubectl built with it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]


def kubectl_path() -> str:
    out = subprocess.run(
        ["bash", str(REPO / "e2e/services/k8s.sh"), "bin-dir"],
        check=True,
        capture_output=True,
        text=True,
    )
    return str(Path(out.stdout.strip()) / "kubectl")


class Kubectl:
    """Runs kubectl with one kubeconfig."""

    def __init__(self, kubeconfig: str | Path, binary: str | None = None) -> None:
        self.kubeconfig = str(kubeconfig)
        self.binary = binary or kubectl_path()

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        proc = subprocess.run(
            [self.binary, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, manifest: str | dict | list, *extra: str) -> None:
        if isinstance(manifest, (dict, list)):
            docs = manifest if isinstance(manifest, list) else [manifest]
            manifest = "\n---\n".join(json.dumps(d) for d in docs)
        self.run("apply", "--server-side", "--field-manager=e2e", "-f", "-", *extra, stdin=manifest)

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict | None:
        args = ["get", kind] + ([name] if name else []) + ["-o", "json", "--show-managed-fields"]
        if namespace:
            args += ["-n", namespace]
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return json.loads(proc.stdout)

    def items(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        args = ["get", kind, "-o", "json"]
        args += ["-n", namespace] if namespace else ["-A"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.run(*args).stdout)["items"]

    def delete(self, kind: str, name: str, namespace: str | None = None, wait: bool = False) -> None:
        args = ["delete", kind, name, f"--wait={'true' if wait else 'false'}", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        self.run(*args)

    def secret_data(self, name: str, namespace: str) -> dict[str, bytes]:
        secret = self.get("secret", name, namespace)
        assert secret is not None, f"Secret {namespace}/{name} missing"
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Polls `probe` until it returns a truthy value; fails with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def condition(obj: dict | None, type_: str = "Ready") -> dict | None:
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def ready_status(obj: dict | None) -> str | None:
    c = condition(obj)
    return c.get("status") if c else None
