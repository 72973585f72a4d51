#!/usr/bin/env python3
"""External plugin overhead benchmark (issue 5): IMAP APPEND of 64 KiB messages through
`mcp standalone` whose pipeline has one no-op step, run three ways in the same invocation:

- `in-process`: the built-in `size-limit` with a 1 GiB limit, the cheapest in-process step
  (it reads the message size and continues), standing for "the same no-op, in-process";
- `uds`:  the SDK's no-op plugin (`mcp-plugin-noop`) supervised by the dataplane, reached
  over a Unix socket;
- `tcp`:  the same plugin over loopback TCP.

Each external configuration runs with body mode `buffered` (the whole message in one
request) and, with `--streamed`, also `streamed` (64 KiB chunks). Configurations alternate
round by round on fresh data directories. Not a test; CI does not run it. The per-call cost
of the gRPC hop with the *same* plugin object in-process is measured by the Rust harness
`cargo run --release -p mcp-dataplane --example plugin_overhead` (bench/README.md).

    cargo build --release -p mcp-dataplane -p mcp-plugin-sdk
    python3 e2e/bench/plugin_bench.py --clients 4 --duration 5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline_bench as pb  # noqa: E402  (shares the server and client drivers)

REPO = pb.REPO
NS = "mcp-example"


def message(size: int) -> bytes:
    """A text/plain message of exactly `size` octets, CRLF lines of 76 characters."""
    head = (b"From: bench@example.net\r\nTo: alice@example.com\r\nSubject: 64 KiB\r\n"
            b"Message-ID: <bench@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    line = b"x" * 74 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    pad = size - len(head) - len(body)
    return head + body + (b"y" * (pad - 2) + b"\r\n" if pad >= 2 else b"")


def in_process() -> str:
    return f"""apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: bench, namespace: {NS}}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: noop
      plugin: {{builtin: size-limit}}
      config: {{maxSize: 1Gi}}
"""


def external(noop: Path, transport: str, mode: str, port: int) -> str:
    return f"""apiVersion: mcp.dev/v1alpha1
kind: PluginDeployment
metadata: {{name: noop, namespace: {NS}}}
spec:
  command: [{noop}, --body-mode, {mode}]
  protocol: {{min: 1, max: 1}}
  stages: [append]
  bodyMode: {mode}
  maxBodySize: 1Mi
  transport: {transport}
  port: {port}
---
apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: bench, namespace: {NS}}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: noop
      plugin: {{name: noop}}
      onError: failClosed
"""


def wait_serving(server: "pb.Server") -> None:
    """Waits until every plugin of `server` serves (standalone answers GET /internal/v1/plugins
    on its metrics listener)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics}/internal/v1/plugins", timeout=2) as r:
                plugins = json.load(r)["plugins"]
            if all(p["phase"] == "serving" for p in plugins):
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("plugins never served")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per configuration per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=64 * 1024, help="message size, octets")
    ap.add_argument("--streamed", action="store_true", help="also run body mode streamed")
    ap.add_argument("--release-dir", type=Path, default=REPO / "target" / "release")
    args = ap.parse_args()
    mcp, noop = args.release_dir / "mcp", args.release_dir / "mcp-plugin-noop"
    for b in (mcp, noop):
        if not b.is_file():
            sys.exit(f"{b} missing: cargo build --release -p mcp-dataplane -p mcp-plugin-sdk")
    pb.MESSAGES = [message(args.size)]

    work = Path(tempfile.mkdtemp(prefix="mcp-plugin-bench-"))
    modes = ["buffered"] + (["streamed"] if args.streamed else [])
    configs: dict[str, Path] = {}
    plans = [("in-process", in_process())]
    for mode in modes:
        for transport in ("unix", "tcp"):
            port = pb.free_ports(1)[0]
            name = f"{'uds' if transport == 'unix' else 'tcp'}-{mode}"
            plans.append((name, external(noop, transport, mode, port)))
    for name, yaml in plans:
        res = work / f"res-{name}"
        shutil.copytree(pb.SAMPLES, res)
        (res / "pipeline.yaml").unlink()
        (res / "bench.yaml").write_text(yaml)
        configs[name] = res

    results = {c: [0, 0.0, [], 0.0] for c in configs}
    for rnd in range(args.rounds):
        for name, res in configs.items():
            d = work / f"run-{name}-{rnd}"
            d.mkdir()
            server = pb.Server(mcp, res, d)
            try:
                wait_serving(server)
                pb.run("APPEND", server.imap, 1, 1.0)  # warm-up
                before = pb.cpu_seconds(server.proc.pid)
                n, lat = pb.run("APPEND", server.imap, args.clients, args.duration)
                cpu = pb.cpu_seconds(server.proc.pid) - before
                r = results[name]
                r[0] += n
                r[1] += args.duration
                r[2].extend(lat)
                r[3] += cpu
                print(f"round {rnd + 1} {name:13} {n / args.duration:8.1f} msg/s  p50 {pb.pct(lat, .5):6.2f} ms")
            finally:
                server.stop()

    print(f"\nAPPEND of {args.size}-octet messages, {args.clients} clients, "
          f"{args.rounds} x {args.duration:g}s per configuration\n")
    print(f"{'config':13} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'dataplane CPU µs/msg':>21}")
    for name in configs:
        n, secs, lat, cpu = results[name]
        print(f"{name:13} {n / secs:8.1f} {pb.pct(lat, .5):8.2f} {pb.pct(lat, .99):8.2f} {1e6 * cpu / n:21.0f}")
    print()
    base = results["in-process"]
    for name in list(configs)[1:]:
        r = results[name]
        loss = 1 - (r[0] / r[1]) / (base[0] / base[1])
        added = pb.pct(r[2], .5) - pb.pct(base[2], .5)
        print(f"{name}: throughput {100 * (1 - loss):.1f}% of in-process (loss {100 * loss:.1f}%), "
              f"p50 added {added:+.3f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
