"""Shared pytest fixtures of the end-to-end suites: a real `mcp standalone` process.

The binary is built once per session (`cargo build -p mcp-dataplane --bin mcp`; set
`MCP_E2E_PROFILE=release` for a release build, or `MCP_BIN=/path/to/mcp` to skip building).
Every server runs on free loopback ports with its own temporary data directory and the
sample resources, and is parametrised over the storage backend: `sqlite` always, `postgres`
when `MCP_TEST_POSTGRES_URL` is set (each server gets a fresh database). With
`MCP_TEST_S3_ENDPOINT` set too (e2e/services/s3.sh), `postgres` keeps its blobs in S3 under a
fresh key prefix: PostgreSQL + S3, the scale-out storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples" / "standalone"
START_TIMEOUT = float(os.environ.get("MCP_E2E_START_TIMEOUT", "60"))
STOP_TIMEOUT = 15.0

# Demo credentials of the sample resources (DEMO ONLY).
ALICE = ("alice@example.com", "alice-demo")
BOB = ("bob@example.com", "bob-demo")


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


@pytest.fixture(scope="session")
def mcp_binary() -> Path:
    """Path of the `mcp` binary, built once per test session."""
    explicit = os.environ.get("MCP_BIN")
    if explicit:
        return Path(explicit)
    profile = os.environ.get("MCP_E2E_PROFILE", "debug")
    cmd = ["cargo", "build", "-p", "mcp-dataplane", "--bin", "mcp"]
    if profile == "release":
        cmd.append("--release")
    subprocess.run(cmd, cwd=REPO, check=True)
    binary = _target_dir() / profile / "mcp"
    assert binary.is_file(), f"cargo build did not produce {binary}"
    return binary


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _psql(url: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def _with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


class Storage:
    """One storage backend for the servers of one test."""

    def __init__(self, kind: str, url: str | None, s3: dict | None = None) -> None:
        self.kind = kind
        #: `--store-url` to pass, or None for the default SQLite file in the data dir.
        self.url = url
        #: S3 blob store (bucket, prefix, endpoint, region), or None for DATA/blobs.
        self.s3 = s3

    @property
    def blob_url(self) -> str | None:
        """`--blob-url` to pass, or None for the default blob directory in the data dir."""
        if not self.s3:
            return None
        s = self.s3
        return (
            f"s3://{s['bucket']}/{s['prefix']}?endpoint={s['endpoint']}"
            f"&region={s['region']}&path_style=true"
        )

    def args(self) -> list[str]:
        """The `--store-url` and `--blob-url` arguments of `mcp standalone` and
        `mcp quarantine` for this backend."""
        out = []
        if self.url:
            out += ["--store-url", self.url]
        if self.blob_url:
            out += ["--blob-url", self.blob_url]
        return out

    def rows(self, data_dir: Path) -> list[dict]:
        """Every row of every table as a dict (schema-agnostic, for assertions)."""
        if self.kind == "sqlite":
            import sqlite3

            con = sqlite3.connect(data_dir / "meta.sqlite")
            try:
                con.row_factory = sqlite3.Row
                tables = [
                    r[0]
                    for r in con.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    )
                ]
                rows = []
                for t in tables:
                    quoted = '"' + t.replace('"', '""') + '"'
                    rows += [dict(r) for r in con.execute(f"SELECT * FROM {quoted}")]
                return rows
            finally:
                con.close()
        assert self.url is not None
        tables = _psql(
            self.url,
            "SELECT quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ).split()
        rows = []
        for t in tables:
            out = _psql(self.url, f"SELECT row_to_json(x) FROM {t} x")
            rows += [json.loads(line) for line in out.splitlines() if line.strip()]
        return rows

    def password_hash(self, data_dir: Path, address: str) -> str:
        """The stored argon2 hash of `address`, found without knowing the schema."""
        found = []
        for row in self.rows(data_dir):
            values = [v for v in row.values() if isinstance(v, str)]
            if address in values:
                found += [v for v in values if v.startswith("$argon2")]
        assert len(found) == 1, f"expected one argon2 hash for {address}, got {found}"
        return found[0]


def _backends() -> list[str]:
    kinds = ["sqlite"]
    if os.environ.get("MCP_TEST_POSTGRES_URL"):
        kinds.append("postgres")
    return kinds


@contextlib.contextmanager
def _fresh_storage(kind: str) -> Iterator[Storage]:
    if kind == "sqlite":
        yield Storage("sqlite", None)
        return
    admin = os.environ["MCP_TEST_POSTGRES_URL"]
    name = "mcp_e2e_" + uuid.uuid4().hex[:12]
    _psql(admin, f"CREATE DATABASE {name}")
    s3 = None
    if os.environ.get("MCP_TEST_S3_ENDPOINT"):
        s3 = {
            "bucket": os.environ["MCP_TEST_S3_BUCKET"],
            "prefix": f"e2e-{uuid.uuid4().hex[:12]}/",
            "endpoint": os.environ["MCP_TEST_S3_ENDPOINT"],
            "region": os.environ.get("AWS_REGION", "us-east-1"),
        }
    try:
        yield Storage("postgres", _with_database(admin, name), s3)
    finally:
        _psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=_backends())
def storage(request) -> Iterator[Storage]:
    """A fresh, empty storage backend: `sqlite` (in the data dir) or a new PostgreSQL
    database on the server of `MCP_TEST_POSTGRES_URL`, dropped afterwards."""
    with _fresh_storage(request.param) as s:
        yield s


class McpServer:
    """A running `mcp standalone` process."""

    host = "127.0.0.1"

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        resources: Path,
        storage: Storage,
        log: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.resources = resources
        self.storage = storage
        self.log_path = log
        (
            self.imap_port,
            self.imaps_port,
            self.lmtp_port,
            self.metrics_port,
            self.rest_port,
        ) = free_ports(5)
        cmd = [
            str(binary),
            "--log-format",
            "json",
            "standalone",
            "--resources",
            str(resources),
            "--data-dir",
            str(data_dir),
            "--imap",
            f"{self.host}:{self.imap_port}",
            "--imaps",
            f"{self.host}:{self.imaps_port}",
            "--lmtp",
            f"{self.host}:{self.lmtp_port}",
            "--metrics",
            f"{self.host}:{self.metrics_port}",
            "--rest",
            f"{self.host}:{self.rest_port}",
        ]
        cmd += storage.args()
        cmd += list(extra_args)
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        env.pop("RUST_BACKTRACE", None)
        self._log = open(log, "ab")
        # stdout apart from the log: the only thing on it is the bootstrap admin key line.
        self.stdout_path = Path(f"{log}.stdout")
        self._stdout = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdout=self._stdout, stderr=self._log, env=env, cwd=REPO
        )
        self.returncode: int | None = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API (`http://127.0.0.1:PORT/api/v1`)."""
        return f"http://{self.host}:{self.rest_port}/api/v1"

    def bootstrap_key(self) -> str | None:
        """The bootstrap admin API key this server (or an earlier one sharing its log)
        printed on stdout, the last one; None if none was printed."""
        keys = [
            line.split(": ", 1)[1].strip()
            for line in self.stdout_path.read_text(errors="replace").splitlines()
            if line.startswith("MCP REST API bootstrap admin key")
        ]
        return keys[-1] if keys else None

    def log_events(self) -> list[dict]:
        """The JSON log lines of this server (and earlier ones sharing its log file)."""
        events = []
        for line in self.log_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def wait_for_greeting(self) -> bytes:
        """Waits until the IMAP port greets; returns the greeting line."""
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"mcp exited with {self.proc.returncode} before greeting:\n"
                    + self.log_text()
                )
            try:
                with socket.create_connection((self.host, self.imap_port), 1) as s:
                    s.settimeout(5)
                    line = s.makefile("rb").readline()
                    if line.startswith(b"* OK"):
                        return line
                    last_error = AssertionError(f"unexpected greeting {line!r}")
            except OSError as e:
                last_error = e
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"no IMAP greeting within {START_TIMEOUT}s ({last_error}):\n" + self.log_text())

    def stop(self, sig: int = signal.SIGINT, timeout: float = STOP_TIMEOUT) -> int:
        """Sends `sig` (Ctrl-C by default) and waits for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"mcp did not stop within {timeout}s of signal {sig}:\n" + self.log_text())
        self.returncode = self.proc.returncode
        self._log.close()
        self._stdout.close()
        return self.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self._stdout.close()


@pytest.fixture
def mcp_factory(
    mcp_binary: Path, storage: Storage, tmp_path: Path
) -> Iterator[Callable[..., McpServer]]:
    """Starts servers on demand: `start(data_dir=None, resources=None, extra_args=())`
    returns a greeted [McpServer]. Starting again with the same `data_dir` restarts on the
    same data (and the same PostgreSQL database). Servers still running at the end are
    stopped with Ctrl-C."""
    started: list[McpServer] = []

    def start(
        data_dir: Path | None = None,
        resources: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> McpServer:
        data_dir = data_dir or tmp_path / "data"
        server = McpServer(
            mcp_binary,
            data_dir,
            resources or SAMPLES,
            storage,
            tmp_path / "mcp.log",
            extra_args,
        )
        started.append(server)
        server.wait_for_greeting()
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()


@pytest.fixture
def mcp(mcp_factory: Callable[..., McpServer]) -> McpServer:
    """One running server with the sample resources (alice and bob of example.com)."""
    return mcp_factory()


@pytest.fixture
def resources_copy(tmp_path: Path) -> Path:
    """A private copy of the sample resources that a test may edit."""
    dest = tmp_path / "resources"
    shutil.copytree(SAMPLES, dest)
    return dest


@pytest.fixture(scope="session", params=_backends())
def shared_mcp(request, mcp_binary: Path, tmp_path_factory) -> Iterator[McpServer]:
    """One server per storage backend for the whole session, for tests that keep to their
    own mailboxes (unique names) so that they can share it; much faster than a server per
    test. Tests that need a fresh account or a restart use `mcp_factory` instead."""
    tmp = tmp_path_factory.mktemp(f"shared-{request.param}")
    with _fresh_storage(request.param) as storage:
        server = McpServer(mcp_binary, tmp / "data", SAMPLES, storage, tmp / "mcp.log")
        try:
            server.wait_for_greeting()
            yield server
        finally:
            if server.proc.poll() is None:
                server.stop()
