#!/usr/bin/env python3
"""Pipeline overhead benchmark (issue 4): APPEND and LMTP throughput and latency of
`mcp standalone` with no pipeline, against the same server running a 4-step built-in
pipeline (dlp, header-tagger, size-limit, attachment-policy) on both stages, over the test
corpus (e2e/corpus, 40 messages). Not a test; CI does not run it.

Both configurations run in the same invocation, alternating (empty, pipeline, empty, ...),
each round on a fresh data directory, with closed-loop clients on loopback. The figures
that matter are the ratios printed at the end: throughput loss and the p50 latency added
per message.

    cargo build --release -p mcp-dataplane
    python3 e2e/bench/pipeline_bench.py --clients 4 --duration 6 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "config" / "samples" / "standalone"
CORPUS = sorted((REPO / "e2e" / "corpus").glob("*.eml"))

PIPELINE = """apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {name: bench, namespace: mcp-example}
spec:
  scope: {type: TenantDefault}
  stages: [deliver, append]
  steps:
    - name: dlp
      plugin: {builtin: dlp}
      config: {action: tag}
    - name: tag
      plugin: {builtin: header-tagger}
      config: {headers: [{name: X-MCP-Scanned, value: "yes", action: set}]}
    - name: size
      plugin: {builtin: size-limit}
      config: {maxSize: 50Mi}
    - name: attachments
      plugin: {builtin: attachment-policy}
      config: {rules: [{name: executables, extensions: [exe, scr, js], action: reject}]}
"""


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


MESSAGES = [crlf(p.read_bytes()) for p in CORPUS]
AVERAGE = sum(map(len, MESSAGES)) // len(MESSAGES)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    def __init__(self, binary: Path, resources: Path, work: Path) -> None:
        self.imap, self.imaps, self.metrics, self.lmtp = free_ports(4)
        self.log = open(work / "mcp.log", "ab")
        self.proc = subprocess.Popen(
            [str(binary), "standalone", "--resources", str(resources), "--data-dir", str(work / "data"),
             "--imap", f"127.0.0.1:{self.imap}", "--imaps", f"127.0.0.1:{self.imaps}",
             "--metrics", f"127.0.0.1:{self.metrics}", "--lmtp", f"127.0.0.1:{self.lmtp}",
             "--rest", "127.0.0.1:0"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.lmtp), 1).close()
                socket.create_connection(("127.0.0.1", self.imap), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"mcp exited: see {work / 'mcp.log'}")
                time.sleep(0.1)
        sys.exit("mcp did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


class Lines:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line


def append_client(port: int, stop: threading.Event, lat: list[float], errors: list[str]) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    r = Lines(s)
    r.line()
    s.sendall(b"a LOGIN alice@example.com alice-demo\r\n")
    while not r.line().startswith(b"a "):
        pass
    n = 0
    while not stop.is_set():
        msg = MESSAGES[n % len(MESSAGES)]
        n += 1
        t = time.perf_counter()
        s.sendall(b"b APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        while True:
            line = r.line()
            if line.startswith(b"b "):
                break
        lat.append(time.perf_counter() - t)
        if not line.startswith(b"b OK"):
            errors.append(line.decode(errors="replace"))
            return
    s.close()


def lmtp_client(port: int, stop: threading.Event, lat: list[float], errors: list[str]) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    r = Lines(s)
    r.line()
    s.sendall(b"LHLO bench\r\n")
    while not r.line().startswith(b"250 "):
        pass
    n = 0
    while not stop.is_set():
        msg = MESSAGES[n % len(MESSAGES)]
        n += 1
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in msg.split(b"\r\n"))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        t = time.perf_counter()
        s.sendall(b"MAIL FROM:<bench@example.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        replies = [r.line() for _ in range(3)]
        if not replies[2].startswith(b"354"):
            errors.append(repr(replies))
            return
        s.sendall(stuffed + b".\r\n")
        final = r.line()
        lat.append(time.perf_counter() - t)
        if not final.startswith(b"250"):
            errors.append(final.decode(errors="replace"))
            return
    s.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(kind: str, port: int, clients: int, duration: float) -> tuple[int, list[float]]:
    target = append_client if kind == "APPEND" else lmtp_client
    stop = threading.Event()
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    threads = [threading.Thread(target=target, args=(port, stop, lats[i], errors)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join(60)
    if errors:
        sys.exit(f"{kind} errors: {errors[:3]}")
    all_lat = [x for l in lats for x in l]
    return len(all_lat), all_lat


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per workload per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mcp-bin", type=Path, default=REPO / "target" / "release" / "mcp")
    args = ap.parse_args()
    if not args.mcp_bin.is_file():
        sys.exit(f"{args.mcp_bin} missing: cargo build --release -p mcp-dataplane")

    work = Path(tempfile.mkdtemp(prefix="mcp-pipeline-bench-"))
    configs = {}
    for name in ("empty", "pipeline"):
        res = work / f"res-{name}"
        shutil.copytree(SAMPLES, res)
        (res / "pipeline.yaml").unlink()
        if name == "pipeline":
            (res / "bench.yaml").write_text(PIPELINE)
        configs[name] = res

    results = {(c, k): [0, 0.0, [], 0.0] for c in configs for k in ("APPEND", "LMTP")}
    for rnd in range(args.rounds):
        for name, res in configs.items():
            d = work / f"run-{name}-{rnd}"
            d.mkdir()
            server = Server(args.mcp_bin, res, d)
            try:
                for kind, port in (("APPEND", server.imap), ("LMTP", server.lmtp)):
                    before = cpu_seconds(server.proc.pid)
                    n, lat = run(kind, port, args.clients, args.duration)
                    cpu = cpu_seconds(server.proc.pid) - before
                    r = results[(name, kind)]
                    r[0] += n
                    r[1] += args.duration
                    r[2].extend(lat)
                    r[3] += cpu
                    print(f"round {rnd + 1} {name:8} {kind:6} {n / args.duration:8.1f} msg/s  p50 {pct(lat, .5):6.2f} ms")
            finally:
                server.stop()

    print(f"\n{args.clients} clients, {args.rounds} x {args.duration:g}s per workload and configuration, "
          f"{len(MESSAGES)} corpus messages ({AVERAGE} octets on average)\n")
    print(f"{'workload':8} {'config':9} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server CPU µs/msg':>18}")
    for kind in ("APPEND", "LMTP"):
        for name in configs:
            n, secs, lat, cpu = results[(name, kind)]
            print(f"{kind:8} {name:9} {n / secs:8.1f} {pct(lat, .5):8.2f} {pct(lat, .99):8.2f} {1e6 * cpu / n:18.0f}")
    print()
    for kind in ("APPEND", "LMTP"):
        e, p = results[("empty", kind)], results[("pipeline", kind)]
        loss = 1 - (p[0] / p[1]) / (e[0] / e[1])
        added = pct(p[2], .5) - pct(e[2], .5)
        cpu_added = 1e6 * (p[3] / p[0] - e[3] / e[0])
        print(f"{kind}: throughput with the 4-step pipeline {100 * (1 - loss):.1f}% of empty "
              f"(loss {100 * loss:.1f}%), p50 added {added:+.3f} ms, server CPU added {cpu_added:+.0f} µs per message")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
