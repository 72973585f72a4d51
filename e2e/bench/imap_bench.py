#!/usr/bin/env python3
"""IMAP load benchmark: MCP against Dovecot on the same machine (not a test; not in CI).

Targets (`--targets`, any subset, measured in the same run):

- `sqlite`:  one `mcp standalone` on SQLite and the local filesystem (the embedded default);
- `pg1`:     one `mcp standalone` on PostgreSQL with message bodies in S3;
- `pg2`:     two `mcp standalone` replicas on one PostgreSQL database and one S3 prefix,
             the clients split between them (client i talks to replica i mod 2);
- `dovecot`: Dovecot 2.3 (maildir) through e2e/services/dovecot.sh.

PostgreSQL (e2e/services/postgres.sh, default durability settings) and the S3 server
(moto, e2e/services/s3.sh) are started privately in the work directory; `pg1` and `pg2`
each get a database and an S3 prefix of their own.

Two measurements, each for every target:

1. Mixed workload: N concurrent clients (asyncio, one TCP connection each) run a weighted
   mix of LOGIN (reconnect + login), SELECT, FETCH headers, FETCH full bodies, STORE
   flags, APPEND and EXPUNGE against their own folder (seeded with the e2e/corpus
   messages). The targets are measured alternately (sqlite, pg1, pg2, dovecot, sqlite,
   ...) for `--rounds` rounds of `--duration` seconds. Prints ops/s and p50/p99 latency
   per op type and overall for each target, and the ratios of each MCP target to Dovecot
   and of `pg2` to `pg1`.
2. Idle memory: `--idle` connections log in, SELECT INBOX and enter IDLE. The resident
   memory (sum of VmRSS over the server's processes: MCP is one process per replica;
   Dovecot is its master and every descendant -- one imap process per connection,
   imap-login, auth, anvil, log, config, stats) is read before and after; the difference
   divided by the number of connections is the memory per idle connection. PostgreSQL
   and the S3 server are not counted.

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
    """`replicas` `mcp standalone` processes on one storage: the default SQLite file and
    blob directory in their data dir (`storage_args` empty, one replica), or the
    `--store-url`/`--blob-url` of a shared PostgreSQL database and S3 prefix."""

    def __init__(self, name: str, binary: str, workdir: str, storage_args: list[str] = (),
                 replicas: int = 1, env: dict | None = None) -> None:
        self.name = name
        self.user = ("alice@example.com", "alice-demo")
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen] = []
        self.data = os.path.join(workdir, f"{name}-data")
        self.log = open(os.path.join(workdir, f"{name}.log"), "ab")
        for i in range(replicas):
            port = free_port()
            proc = subprocess.Popen(
                [binary, "standalone", "--resources", os.path.join(ROOT, "config", "samples", "standalone"),
                 "--data-dir", f"{self.data}/{i}", "--imap", f"127.0.0.1:{port}",
                 "--imaps", f"127.0.0.1:{free_port()}", "--lmtp", "127.0.0.1:0",
                 "--metrics", f"127.0.0.1:{free_port()}", "--rest", "127.0.0.1:0", *storage_args],
                stdout=self.log, stderr=subprocess.STDOUT,
                env=dict(os.environ, RUST_LOG="warn", **(env or {})),
            )
            self.ports.append(port)
            self.procs.append(proc)
            # One at a time: the first replica applies the schema migrations.
            wait_port(port, proc)

    @property
    def meta_sqlite(self) -> str:
        return os.path.join(self.data, "0", "meta.sqlite")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


class Backing:
    """A private PostgreSQL cluster and S3 server (moto) in `workdir`/backing, for the
    `pg1` and `pg2` targets; each target gets its own database and S3 prefix."""

    def __init__(self, workdir: str) -> None:
        self.env = dict(os.environ, MCP_SERVICES_DIR=os.path.join(workdir, "backing"),
                        MCP_PG_PORT=str(free_port()))
        self.pg = self._service("postgres.sh")["MCP_TEST_POSTGRES_URL"]
        self.s3 = self._service("s3.sh")

    def _service(self, script: str) -> dict:
        out = subprocess.run(["bash", os.path.join(ROOT, "e2e", "services", script), "start"],
                             env=self.env, check=True, capture_output=True, text=True).stdout
        return dict(m.groups() for m in re.finditer(r"^export (\w+)='?([^'\n]*)'?$", out, re.M))

    def storage_args(self, name: str) -> list[str]:
        subprocess.run(["psql", "-q", self.pg, "-c", f"CREATE DATABASE bench_{name}"], check=True,
                       stdout=subprocess.DEVNULL)
        db = self.pg.rsplit("/", 1)[0] + f"/bench_{name}"
        s3 = self.s3
        blob = (f"s3://{s3['MCP_TEST_S3_BUCKET']}/bench-{name}/?endpoint={s3['MCP_TEST_S3_ENDPOINT']}"
                f"&region={s3['AWS_REGION']}&path_style=true")
        return ["--store-url", db, "--blob-url", blob]

    def credentials(self) -> dict:
        return {k: self.s3[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}

    def pids(self) -> list[int]:
        """PostgreSQL (postmaster and backends) and moto: reported for reference."""
        base = self.env["MCP_SERVICES_DIR"]
        out = []
        for f in (os.path.join(base, "postgres", "postmaster.pid"), os.path.join(base, "s3", "moto.pid")):
            try:
                pid = int(open(f).readline())
                out += [pid] + descendants(pid)
            except (OSError, ValueError):
                pass
        return out

    def stop(self) -> None:
        for script in ("s3.sh", "postgres.sh"):
            subprocess.run(["bash", os.path.join(ROOT, "e2e", "services", script), "stop"],
                           env=self.env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mcp_passwd_file(meta_sqlite: str, workdir: str) -> str:
    """A Dovecot passwd-file holding the argon2id hashes MCP stored for the same users, so
    both servers pay the same password-hashing cost per LOGIN (a `{PLAIN}` Dovecot would
    get every LOGIN nearly for free)."""
    db = sqlite3.connect(meta_sqlite)
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
        self.ports = [self.port]
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, including their reaped children (cutime,
    cstime): Dovecot's finished `imap` processes and PostgreSQL's finished backends count
    through their parent."""
    ticks = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


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
        await seed(server.ports[0], server.user, missing)
        seed_done.update((server.name, f) for f in missing)
    lat: dict = {}
    start = time.monotonic()
    deadline = start + duration
    await asyncio.gather(*[
        worker(server.ports[i % len(server.ports)], server.user, folders[i], deadline, lat, random.Random(i))
        for i in range(clients)
    ])
    return lat, time.monotonic() - start


async def idle_rss(server, n: int) -> dict:
    before = rss_kib(server.pids())
    before_pss = mem_kib(server.pids(), "Pss")
    conns = []
    sem = asyncio.Semaphore(50)

    async def one(i: int):
        async with sem:
            c = await Client.connect(server.ports[i % len(server.ports)])
            await c.cmd(b'LOGIN "%s" "%s"' % (server.user[0].encode(), server.user[1].encode()))
            await c.cmd(b"SELECT INBOX")
            c.w.write(b"i IDLE\r\n")
            await c.w.drain()
            line = await c.r.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"IDLE refused: {line!r}")
            conns.append(c)

    await asyncio.gather(*[one(i) for i in range(n)])
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


def report(name: str, lat: dict, elapsed: float, cpu: float, backing_cpu: float) -> dict:
    """Prints and returns ops/s, p50 and p99 per op type; `cpu` is the server's CPU
    seconds, `backing_cpu` those of PostgreSQL and S3 during its runs (0 for the others)."""
    out = {}
    total = sum(len(v) for v in lat.values())
    out["cpu_ms_per_op"] = (cpu + backing_cpu) * 1000 / total if total else float("nan")
    split = (f" (MCP {cpu * 1000 / total:.2f}, PostgreSQL + S3 {backing_cpu * 1000 / total:.2f})"
             if backing_cpu and total else "")
    print(f"\n{name}: {total} ops in {elapsed:.1f}s; CPU {cpu + backing_cpu:.1f}s,"
          f" {out['cpu_ms_per_op']:.2f} ms per op{split}")
    print(f"  {'op':<11} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for op in OPS + ["overall"]:
        xs = [x for v in lat.values() for x in v] if op == "overall" else lat.get(op, [])
        row = (len(xs) / elapsed, pct(xs, 0.5) * 1000, pct(xs, 0.99) * 1000)
        out[op] = row
        print(f"  {op:<11} {row[0]:>9.1f} {row[1]:>8.2f} {row[2]:>8.2f}")
    return out


TARGETS = ["sqlite", "pg1", "pg2", "dovecot"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per target per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternations over the targets")
    ap.add_argument("--idle", type=int, default=1000, help="connections for the memory test (0: skip)")
    ap.add_argument("--targets", nargs="+", choices=TARGETS, default=TARGETS,
                    help="what to measure (default: all four)")
    ap.add_argument("--mcp-bin", default=os.path.join(ROOT, "target", "release", "mcp"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    targets = [t for t in TARGETS if t in args.targets]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by every server
    if not os.path.exists(args.mcp_bin):
        sys.exit(f"{args.mcp_bin} missing: run `cargo build --release -p mcp-dataplane` first")

    work = tempfile.mkdtemp(prefix="mcp-bench-")
    os.chmod(work, 0o755)  # Dovecot's and PostgreSQL's processes must read it
    servers: list = []
    backing = None
    try:
        # Dovecot checks passwords against the argon2 hashes of an SQLite MCP; start one
        # (even when `sqlite` is not measured) to read them.
        sqlite = Mcp("sqlite", args.mcp_bin, work)
        servers.append(sqlite)
        if "pg1" in targets or "pg2" in targets:
            backing = Backing(work)
            for t, n in (("pg1", 1), ("pg2", 2)):
                if t in targets:
                    servers.append(Mcp(t, args.mcp_bin, work, backing.storage_args(t), n, backing.credentials()))
        if "dovecot" in targets:
            servers.append(Dovecot(work, mcp_passwd_file(sqlite.meta_sqlite, work)))
        if "sqlite" not in targets:
            sqlite.stop()
            servers.remove(sqlite)
        print(f"work dir {work}; RLIMIT_NOFILE {want}; cpus {os.cpu_count()}; targets {' '.join(targets)}")

        def backing_pids(s) -> list[int]:
            """PostgreSQL and S3, whose CPU the load of a `pg` target costs too."""
            return backing.pids() if backing and s.name.startswith("pg") else []

        # Idle memory first, while the servers are fresh: afterwards their heaps carry
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
            if "dovecot" in res and res["dovecot"]["per_conn_kib"] and res["dovecot"]["per_conn_pss_kib"]:
                for name, r in res.items():
                    if name != "dovecot":
                        print(f"  ratio {name}/dovecot per connection: RSS {r['per_conn_kib'] / res['dovecot']['per_conn_kib']:.3f},"
                              f" PSS {r['per_conn_pss_kib'] / res['dovecot']['per_conn_pss_kib']:.3f}")
        seeded: set = set()
        for clients in args.clients:
            lats = {s.name: {} for s in servers}
            times = {s.name: 0.0 for s in servers}
            cpus = {s.name: 0.0 for s in servers}
            backing_cpus = {s.name: 0.0 for s in servers}
            for _ in range(args.rounds):
                for s in servers:
                    c0, b0 = cpu_seconds(s.pids()), cpu_seconds(backing_pids(s))
                    lat, el = asyncio.run(run_load(s, clients, args.duration, seeded))
                    cpus[s.name] += cpu_seconds(s.pids()) - c0
                    backing_cpus[s.name] += cpu_seconds(backing_pids(s)) - b0
                    for op, xs in lat.items():
                        lats[s.name].setdefault(op, []).extend(xs)
                    times[s.name] += el
            print(f"\n===== {clients} clients, {args.rounds} x {args.duration:.0f}s per target =====")
            rows = {s.name: report(s.name, lats[s.name], times[s.name], cpus[s.name], backing_cpus[s.name])
                    for s in servers}
            pairs = [(n, "dovecot") for n in rows if n != "dovecot" and "dovecot" in rows]
            if "pg1" in rows and "pg2" in rows:
                pairs.append(("pg2", "pg1"))
            if "sqlite" in rows:
                pairs += [(n, "sqlite") for n in ("pg1", "pg2") if n in rows]
            for a, b in pairs:
                print(f"\n  {a}/{b:<8} {'ops/s':>7} {'p50':>8} {'p99':>8}"
                      f"    CPU per op {rows[a]['cpu_ms_per_op'] / rows[b]['cpu_ms_per_op']:.2f}")
                for op in OPS + ["overall"]:
                    m, d = rows[a][op], rows[b][op]
                    r = [m[k] / d[k] if d[k] else float("nan") for k in range(3)]
                    print(f"  {op:<16} {r[0]:>7.2f} {r[1]:>8.2f} {r[2]:>8.2f}")
    finally:
        for s in servers:
            s.stop()
        if backing:
            backing.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
