#!/usr/bin/env python3
"""Operator benchmark (issue 3): N Mailboxes in one Tenant reach Ready.

Not a test: it prints figures, it asserts nothing about time. It needs the API server of
e2e/services/k8s.sh (KUBECONFIG) and release builds of `mcp` and `mcp-operator`:

    cargo build --release -p mcp-dataplane -p mcp-operator
    eval "$(bash e2e/services/k8s.sh start | grep '^export')"
    python3 e2e/bench/operator_bench.py --mailboxes 1000

It runs the operator as the chart's ServiceAccount (as the tests do), starts the tenant's
dataplane locally from the objects the operator rendered, applies N password Secrets and N
Mailboxes, and reports:
- time from the first apply until all N Mailboxes are Ready;
- API requests the operator sent per Mailbox, by method (its own counter,
  `mcp_operator_api_requests_total`, counted below the kube client);
- API requests per minute at steady state (after all are Ready), writes separately: the goal
  is zero writes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "operator"), str(HERE.parent)]

from harness import OPERATOR_NAMESPACE, Dataplane, Operator, impersonating_kubeconfig  # noqa: E402
from kube import REPO, Kubectl, ready_status, wait_for  # noqa: E402

METHODS = ("GET", "WATCH", "POST", "PUT", "PATCH", "DELETE")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def requests(op: Operator) -> dict[tuple[str, str], float]:
    """The operator's request counter by (method, resource)."""
    out: dict[tuple[str, str], float] = {}
    for line in op.metrics().splitlines():
        if line.startswith("mcp_operator_api_requests_total{"):
            labels, _, value = line.rpartition(" ")
            parts = dict(p.split("=", 1) for p in labels[labels.index("{") + 1 : -1].split(","))
            out[(parts["method"].strip('"'), parts["resource"].strip('"'))] = float(value)
    return out


def diff(after: dict, before: dict) -> dict[str, float]:
    """Per-method difference, and per-"method resource" under the key "by"."""
    by = {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0)}
    per_method = {m: sum(v for (mm, _), v in by.items() if mm == m) for m in METHODS}
    per_method["by"] = {f"{m} {r}": v for (m, r), v in sorted(by.items())}  # type: ignore[assignment]
    return per_method


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--tenant", default="bench")
    ap.add_argument("--steady-seconds", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("/tmp/mcp-operator-bench"))
    args = ap.parse_args()

    kc = Kubectl(os.environ["KUBECONFIG"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"
    from chart.mcpchart import apply_rbac

    others = [t["metadata"]["name"] for t in kc.items("tenants") if t["metadata"]["name"] != args.tenant]
    if others:
        # Their reconciliations (a Tenant waiting for its dataplane is re-checked) would be
        # counted as this run's steady state.
        sys.exit(f"other Tenants exist on this API server, delete them first: {others}")
    # A fresh directory: a dataplane must not start from an earlier run's certificates.
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    kc.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / "manifests"))
    kc.run("create", "namespace", OPERATOR_NAMESPACE, check=False)
    user = apply_rbac(kc.kubeconfig, OPERATOR_NAMESPACE)
    kubeconfig = impersonating_kubeconfig(Path(kc.kubeconfig), user, args.work / "kubeconfig")
    imap, imaps, metrics, admin, op_metrics = free_ports(5)
    ports = {"imap": imap, "imaps": imaps, "metrics": metrics, "admin": admin}
    op = Operator(
        target / "mcp-operator",
        kubeconfig,
        args.work / "operator.log",
        op_metrics,
        {args.tenant: f"https://127.0.0.1:{admin}"},
        identity="bench",
        extra=[f"--concurrency={args.concurrency}"],
    ).start()
    dp = None
    try:
        t = args.tenant
        ns = f"mcp-{t}"
        kc.apply({"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": t}, "spec": {"domains": [f"{t}.example"]}})
        dp = Dataplane(target / "mcp", kc, t, args.work / "dataplane", ports)
        wait_for("the tenant's objects", lambda: kc.get("secret", f"mcp-{t}-dataplane-admin", ns), timeout=60)
        dp.start()
        wait_for("Tenant Ready", lambda: ready_status(kc.get("tenant", t)) == "True", timeout=120)
        docs = []
        for i in range(args.mailboxes):
            name = f"user{i:05d}"
            docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-pw", "namespace": ns}, "stringData": {"password": f"pw-{i}"}})
            docs.append(
                {
                    "apiVersion": "mcp.dev/v1alpha1",
                    "kind": "Mailbox",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"tenant": t, "address": f"{name}@{t}.example", "credentials": {"secretRef": {"name": f"{name}-pw"}}},
                }
            )
        manifest = args.work / "mailboxes.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        before = requests(op)
        started = time.monotonic()
        kc.run("apply", "--server-side", "--field-manager=bench", "-f", str(manifest))
        applied = time.monotonic() - started

        def ready_count() -> int:
            items = kc.items("mailboxes", ns)
            return sum(1 for m in items if ready_status(m) == "True")

        last = -1
        while True:
            n = ready_count()
            if n != last:
                print(f"  {time.monotonic() - started:7.1f}s  {n}/{args.mailboxes} Ready", flush=True)
                last = n
            if n >= args.mailboxes:
                break
            time.sleep(2)
        to_ready = time.monotonic() - started
        burst = diff(requests(op), before)
        # Let the Tenant's debounced status catch up, then measure steady state.
        time.sleep(5)
        steady_before = requests(op)
        time.sleep(args.steady_seconds)
        steady = diff(requests(op), steady_before)
        per_minute = {m: steady[m] * 60 / args.steady_seconds for m in METHODS}

        n = args.mailboxes
        print()
        print(f"Mailboxes:                       {n} in Tenant {t!r}")
        print(f"kubectl apply of {2 * n} objects:   {applied:.1f} s")
        print(f"time to all Ready:               {to_ready:.1f} s  ({n / to_ready:.1f} Mailboxes/s)")
        print("API requests per Mailbox:        " + ", ".join(f"{m} {burst[m] / n:.2f}" for m in METHODS if burst[m]))
        print(f"  total {sum(burst[m] for m in METHODS) / n:.2f}, writes {sum(burst[m] for m in WRITES) / n:.2f}")
        print("steady state, requests/minute:  " + ", ".join(f"{m} {per_minute[m]:.1f}" for m in METHODS))
        print(f"  writes/minute {sum(per_minute[m] for m in WRITES):.1f} (goal: 0), by resource:")
        for k, v in steady["by"].items():
            print(f"    {k}: {v * 60 / args.steady_seconds:.1f}/min")
        print("burst requests by resource, per Mailbox:")
        for k, v in burst["by"].items():
            print(f"    {k}: {v / n:.2f}")
    finally:
        # Delete while the operator runs: it releases the Mailboxes' finalizers, so the
        # namespace can go.
        kc.delete("tenant", args.tenant)
        try:
            wait_for("the tenant namespace to go", lambda: kc.get("namespace", f"mcp-{args.tenant}") is None, timeout=600)
        finally:
            if dp:
                dp.stop()
            op.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
