#!/usr/bin/env python3
"""IMAP load benchmark: MCP against Dovecot on the same machine (not a test; not in CI).

Two measurements, each for both servers:

1. Mixed workload: N concurrent clients (asyncio, one TCP connection each) run a weighted
   mix of LOGIN (reconnect + login), SELECT, FETCH headers, FETCH full bodies, STORE
   flags, APPEND and EXPUNGE against their own folder (seeded with the e2e/corpus
   messages). The servers are measured alternately (MCP, Dovecot, MCP, ...) for
   `--rounds` rounds of `--duration` seconds. Prints ops/s and p50/p99 latency per op
   type and overall, for each server, and the MCP/Dovecot ratios.
2. Idle memory: `--idle` connections log in, SELECT INBOX and enter IDLE. The resident
   memory (sum of VmRSS over the server's processes: MCP is one process; Dovecot is its
   master and every descendant -- one imap process per connection, imap-login, auth,
   anvil, log, config, stats) is read before and after; the difference divided by the
   number of connections is the memory per idle connection.

All traffic goes to 127.0.0.1. Stdlib only. See e2e/bench/README.md for how to run it.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "e2e", "corpus", "*.eml")))]
OPS = ["LOGIN", "SELECT", "FETCH_HDR", "FETCH_BODY", "STORE", "APPEND", "EXPUNGE"]
WEIGHTS = [3, 10, 30, 15, 25, 10, 7]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------------------
# A minimal asyncio IMAP client
# ---------------------------------------------------------------------------------------


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w, self.n = reader, writer, 0

    @classmethod
    async def connect(cls, port: int) -> "Client":
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        c = cls(r, w)
        line = await r.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError(f"bad greeting {line!r}")
        return c

    async def _line(self) -> bytes:
        line = await self.r.readline()
        if not line:
            raise ConnectionError("closed")
        m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
        if m:
            data = await self.r.readexactly(int(m.group(1)))
            return line + data + await self._line()
        return line

    async def cmd(self, text: bytes, literal: bytes | None = None) -> bytes:
        self.n += 1
        tag = b"b%d" % self.n
        if literal is None:
            self.w.write(tag + b" " + text + b"\r\n")
        else:
            # LITERAL+ is supported by both servers: no round trip for the continuation.
            self.w.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        await self.w.drain()
        out = []
        while True:
            line = await self._line()
            out.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text[:60]!r}: {line!r}")
                return b"".join(out)

    async def close(self) -> None:
        try:
            self.w.write(b"z LOGOUT\r\n")
            await self.w.drain()
        except Exception:
            pass
        self.w.close()


# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------


class Mcp:
    name = "mcp"

    def __init__(self, binary: str, workdir: str) -> None:
        self.port = free_port()
        self.user = ("alice@example.com", "alice-demo")
        data = os.path.join(workdir, "mcp-data")
        self.data = data
        self.log = open(os.path.join(workdir, "mcp.log"), "ab")
        self.proc = subprocess.Popen(
            [binary, "standalone", "--resources", os.path.join(ROOT, "config", "samples", "standalone"),
             "--data-dir", data, "--imap", f"127.0.0.1:{self.port}",
             "--imaps", f"127.0.0.1:{free_port()}", "--lmtp", "127.0.0.1:0",
             "--metrics", f"127.0.0.1:{free_port()}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, RUST_LOG="warn"),
        )
        wait_port(self.port, self.proc)

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def mcp_passwd_file(mcp_data: str, workdir: str) -> str:
    """A Dovecot passwd-file holding the argon2id hashes MCP stored for the same users, so
    both servers pay the same password-hashing cost per LOGIN (a `{PLAIN}` Dovecot would
    get every LOGIN nearly for free)."""
    db = sqlite3.connect(os.path.join(mcp_data, "meta.sqlite"))
    rows = db.execute("SELECT address, password_hash FROM accounts").fetchall()
    db.close()
    path = os.path.join(workdir, "dovecot-passwd")
    with open(path, "w") as f:
        for address, phc in rows:
            f.write(f"{address.split('@')[0]}:{{ARGON2ID}}{phc}::::::\n")
    os.chmod(path, 0o644)
    return path


class Dovecot:
    name = "dovecot"

    def __init__(self, workdir: str, passwd: str) -> None:
        self.port = free_port()
        self.base = os.path.join(workdir, "svc")
        self.env = dict(os.environ, MCP_SERVICES_DIR=self.base, MCP_DOVECOT_PORT=str(self.port),
                        MCP_DOVECOT_PASSWD=passwd)
        self.user = ("alice", "alice-demo")
        subprocess.run(["bash", os.path.join(ROOT, "e2e", "services", "dovecot.sh"), "start"],
                       env=self.env, check=True, stdout=subprocess.DEVNULL)

    def pids(self) -> list[int]:
        master = int(open(os.path.join(self.base, "dovecot", "run", "master.pid")).read())
        return [master] + descendants(master)

    def stop(self) -> None:
        subprocess.run(["bash", os.path.join(ROOT, "e2e", "services", "dovecot.sh"), "stop"],
                       env=self.env, check=False, stdout=subprocess.DEVNULL)


def wait_port(port: int, proc=None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def mem_kib(pids: list[int], field: str) -> int:
    """Sum of one memory field over processes: `Rss` or `Pss` from /proc/PID/smaps_rollup.

    PSS divides each shared page among the processes that map it, so summing it over
    Dovecot's thousand imap processes does not count the shared binary and libraries a
    thousand times, as summing RSS does.
    """
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def rss_kib(pids: list[int]) -> int:
    return mem_kib(pids, "Rss")


# ---------------------------------------------------------------------------------------
# Workload
# ---------------------------------------------------------------------------------------


async def seed(port: int, user, folders: list[str]) -> None:
    c = await Client.connect(port)
    await c.cmd(b'LOGIN "%s" "%s"' % (user[0].encode(), user[1].encode()))
    for f in folders:
        try:
            await c.cmd(b"DELETE " + f.encode())
        except RuntimeError:
            pass
        await c.cmd(b"CREATE " + f.encode())
        for i, msg in enumerate(CORPUS):
            await c.cmd(b"APPEND " + f.encode() + (b" (\\Seen)" if i % 2 else b" ()"), msg)
    await c.close()


async def worker(port: int, user, folder: str, deadline: float, lat: dict, rng: random.Random) -> None:
    login = b'LOGIN "%s" "%s"' % (user[0].encode(), user[1].encode())
    sel = b"SELECT " + folder.encode()
    c = await Client.connect(port)
    await c.cmd(login)
    await c.cmd(sel)
    appended = 0
    while time.monotonic() < deadline:
        op = rng.choices(OPS, WEIGHTS)[0]
        t0 = time.perf_counter()
        if op == "LOGIN":
            await c.close()
            c = await Client.connect(port)
            await c.cmd(login)
            await c.cmd(sel)
        elif op == "SELECT":
            await c.cmd(sel)
        elif op == "FETCH_HDR":
            a = rng.randint(1, len(CORPUS) - 10)
            await c.cmd(b"FETCH %d:%d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])" % (a, a + 9))
        elif op == "FETCH_BODY":
            await c.cmd(b"FETCH %d BODY.PEEK[]" % rng.randint(1, len(CORPUS)))
        elif op == "STORE":
            await c.cmd(b"STORE %d %sFLAGS (\\Flagged)" % (rng.randint(1, len(CORPUS)), rng.choice([b"+", b"-"])))
        elif op == "APPEND":
            await c.cmd(b"APPEND " + folder.encode() + b" ()", rng.choice(CORPUS))
            appended += 1
        elif op == "EXPUNGE":
            # Delete the newest message beyond the seeded ones (if any), then EXPUNGE.
            if appended:
                await c.cmd(b"STORE * +FLAGS.SILENT (\\Deleted)")
                appended -= 1
            await c.cmd(b"EXPUNGE")
        lat.setdefault(op, []).append(time.perf_counter() - t0)
    await c.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


async def run_load(server, clients: int, duration: float, seed_done: set) -> tuple[dict, float]:
    folders = [f"bench{i}" for i in range(clients)]
    missing = [f for f in folders if (server.name, f) not in seed_done]
    if missing:
        await seed(server.port, server.user, missing)
        seed_done.update((server.name, f) for f in missing)
    lat: dict = {}
    start = time.monotonic()
    deadline = start + duration
    await asyncio.gather(*[
        worker(server.port, server.user, folders[i], deadline, lat, random.Random(i)) for i in range(clients)
    ])
    return lat, time.monotonic() - start


async def idle_rss(server, n: int) -> dict:
    before = rss_kib(server.pids())
    before_pss = mem_kib(server.pids(), "Pss")
    conns = []
    sem = asyncio.Semaphore(50)

    async def one():
        async with sem:
            c = await Client.connect(server.port)
            await c.cmd(b'LOGIN "%s" "%s"' % (server.user[0].encode(), server.user[1].encode()))
            await c.cmd(b"SELECT INBOX")
            c.w.write(b"i IDLE\r\n")
            await c.w.drain()
            line = await c.r.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"IDLE refused: {line!r}")
            conns.append(c)

    await asyncio.gather(*[one() for _ in range(n)])
    await asyncio.sleep(3)  # let the servers settle
    pids = server.pids()
    after = rss_kib(pids)
    after_pss = mem_kib(pids, "Pss")
    for c in conns:
        c.w.write(b"DONE\r\n")
        c.w.close()
    await asyncio.sleep(1)
    return {"before_kib": before, "after_kib": after, "processes": len(pids),
            "per_conn_kib": (after - before) / n, "per_conn_pss_kib": (after_pss - before_pss) / n}


def report(name: str, lat: dict, elapsed: float) -> dict:
    out = {}
    total = sum(len(v) for v in lat.values())
    print(f"\n{name}: {total} ops in {elapsed:.1f}s")
    print(f"  {'op':<11} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for op in OPS + ["overall"]:
        xs = [x for v in lat.values() for x in v] if op == "overall" else lat.get(op, [])
        row = (len(xs) / elapsed, pct(xs, 0.5) * 1000, pct(xs, 0.99) * 1000)
        out[op] = row
        print(f"  {op:<11} {row[0]:>9.1f} {row[1]:>8.2f} {row[2]:>8.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per server per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternations MCP/Dovecot")
    ap.add_argument("--idle", type=int, default=1000, help="connections for the memory test (0: skip)")
    ap.add_argument("--mcp-bin", default=os.path.join(ROOT, "target", "release", "mcp"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by both servers
    if not os.path.exists(args.mcp_bin):
        sys.exit(f"{args.mcp_bin} missing: run `cargo build --release -p mcp-dataplane` first")

    work = tempfile.mkdtemp(prefix="mcp-bench-")
    os.chmod(work, 0o755)  # Dovecot's auth and mail processes (dovecot/nobody) must read it
    mcp = Mcp(args.mcp_bin, work)
    servers = [mcp, Dovecot(work, mcp_passwd_file(mcp.data, work))]
    print(f"work dir {work}; RLIMIT_NOFILE {want}; cpus {os.cpu_count()}")
    try:
        # Idle memory first, while both servers are fresh: afterwards their heaps carry
        # whatever the load phase left behind.
        if args.idle:
            print(f"\n===== {args.idle} idle connections (LOGIN, SELECT INBOX, IDLE) =====")
            res = {}
            for s in servers:
                res[s.name] = asyncio.run(idle_rss(s, args.idle))
                r = res[s.name]
                print(f"  {s.name:<8} processes {r['processes']:>5}  RSS before {r['before_kib'] / 1024:8.1f} MiB"
                      f"  after {r['after_kib'] / 1024:8.1f} MiB  per connection {r['per_conn_kib']:8.1f} KiB RSS,"
                      f" {r['per_conn_pss_kib']:8.1f} KiB PSS")
            if res["dovecot"]["per_conn_kib"] and res["dovecot"]["per_conn_pss_kib"]:
                print(f"  ratio MCP/Dovecot per connection: RSS {res['mcp']['per_conn_kib'] / res['dovecot']['per_conn_kib']:.3f},"
                      f" PSS {res['mcp']['per_conn_pss_kib'] / res['dovecot']['per_conn_pss_kib']:.3f}")
        seeded: set = set()
        for clients in args.clients:
            lats = {s.name: {} for s in servers}
            times = {s.name: 0.0 for s in servers}
            for _ in range(args.rounds):
                for s in servers:
                    lat, el = asyncio.run(run_load(s, clients, args.duration, seeded))
                    for op, xs in lat.items():
                        lats[s.name].setdefault(op, []).extend(xs)
                    times[s.name] += el
            print(f"\n===== {clients} clients, {args.rounds} x {args.duration:.0f}s per server =====")
            rows = {s.name: report(s.name, lats[s.name], times[s.name]) for s in servers}
            print(f"\n  MCP/Dovecot  {'ops/s':>9} {'p50':>8} {'p99':>8}")
            for op in OPS + ["overall"]:
                m, d = rows["mcp"][op], rows["dovecot"][op]
                r = [m[k] / d[k] if d[k] else float("nan") for k in range(3)]
                print(f"  {op:<11} {r[0]:>9.2f} {r[1]:>8.2f} {r[2]:>8.2f}")
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
