"""End-to-end tests of `mcp dataplane --config FILE` with the admin API, on every storage
backend.

Each test writes a configuration directory laid out like the pod's `/etc/mcp`, as the
operator renders it (docs/operator.md): `config.yaml` with the operator's absolute data paths
and relative `tls/` and `admin/` paths, certificates made with the `openssl` CLI, and a
random bearer token. The server runs with `--data-dir` and loopback `--imap/--imaps/
--metrics/--admin` overrides, as a developer runs the operator's files locally. The admin
API is called over HTTPS with the admin certificate as the only trusted CA (the operator
pins it); IMAP is spoken by imaplib. With PostgreSQL the store URL comes from the
environment (`storeUrlEnv`), as in a pod."""

from __future__ import annotations

import http.client
import imaplib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import REPO, START_TIMEOUT, STOP_TIMEOUT, Storage, free_ports

ADMIN_PATH = "/internal/v1/accounts"
TENANT = "acme"
DOMAINS = ["acme.example", "mail.acme.example"]
ALICE = "alice@acme.example"
MESSAGE = b"From: bob@acme.example\r\nSubject: dataplane mode\r\n\r\nHello from the e2e suite.\r\n"


def _openssl_cert(cert: Path, key: Path, cn: str) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={cn}",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )


def write_config_dir(etc: Path, storage: Storage, edits: dict[str, str] | None = None) -> str:
    """Lays out `etc` like the pod's /etc/mcp and returns the bearer token. `edits` replaces
    lines of config.yaml by key (value None removes the key)."""
    (etc / "tls").mkdir(parents=True)
    (etc / "admin").mkdir()
    _openssl_cert(etc / "tls" / "tls.crt", etc / "tls" / "tls.key", "localhost")
    _openssl_cert(etc / "admin" / "tls.crt", etc / "admin" / "tls.key", "mcp-admin")
    token = secrets.token_urlsafe(32)
    (etc / "admin" / "token").write_text(token + "\n")
    fields = {
        "tenant": TENANT,
        "domains": "[" + ", ".join(DOMAINS) + "]",
        "imap": "0.0.0.0:143",
        "imaps": "0.0.0.0:993",
        "lmtp": "0.0.0.0:24",
        "metrics": "0.0.0.0:9090",
        "admin": "0.0.0.0:9443",
        "dataDir": "/var/lib/mcp",
    }
    if storage.url:
        fields["storeUrlEnv"] = "MCP_STORE_URL"
    else:
        fields["storeUrl"] = "sqlite:///var/lib/mcp/meta.sqlite"
    if storage.s3:
        s3 = storage.s3
        fields["s3"] = (
            f"{{bucket: {s3['bucket']}, prefix: {s3['prefix']}, endpoint: '{s3['endpoint']}', "
            f"region: {s3['region']}, forcePathStyle: true, "
            "accessKeyIdEnv: AWS_ACCESS_KEY_ID, secretAccessKeyEnv: AWS_SECRET_ACCESS_KEY}"
        )
    else:
        fields["blobDir"] = "/var/lib/mcp/blobs"
    fields.update(
        {
            "tlsCert": "tls/tls.crt",
            "tlsKey": "tls/tls.key",
            "adminTlsCert": "admin/tls.crt",
            "adminTlsKey": "admin/tls.key",
            "adminTokenFile": "admin/token",
        }
    )
    for k, v in (edits or {}).items():
        if v is None:
            fields.pop(k, None)
        else:
            fields[k] = v
    lines = [
        f'# Dataplane configuration of Tenant "{TENANT}", rendered by mcp-operator.',
        "# Edits are overwritten: change the Tenant instead.",
    ] + [f"{k}: {v}" for k, v in fields.items()]
    (etc / "config.yaml").write_text("\n".join(lines) + "\n")
    return token


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = body
        self.json = json.loads(body) if body else None

    def problem(self) -> dict:
        """The RFC 9457 body, checked."""
        assert self.headers.get("Content-Type") == "application/problem+json", (
            self.status,
            self.headers,
            self.raw,
        )
        assert self.json["status"] == self.status, self.json
        assert self.json["title"] and self.json["type"] == "about:blank", self.json
        return self.json


class Dataplane:
    """A running `mcp dataplane` process."""

    host = "127.0.0.1"

    def __init__(
        self, binary: Path, etc: Path, data_dir: Path, storage: Storage, token: str, log: Path
    ) -> None:
        self.etc = etc
        self.data_dir = data_dir
        self.token = token
        self.log_path = log
        self.imap_port, self.imaps_port, self.lmtp_port, self.metrics_port, self.admin_port = free_ports(5)
        cmd = [
            str(binary), "--log-format", "json", "dataplane",
            "--config", str(etc / "config.yaml"),
            "--data-dir", str(data_dir),
            "--imap", f"{self.host}:{self.imap_port}",
            "--imaps", f"{self.host}:{self.imaps_port}",
            "--lmtp", f"{self.host}:{self.lmtp_port}",
            "--metrics", f"{self.host}:{self.metrics_port}",
            "--admin", f"{self.host}:{self.admin_port}",
        ]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        env.pop("RUST_BACKTRACE", None)
        if storage.url:
            env["MCP_STORE_URL"] = storage.url
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self._wait_ready()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mcp dataplane exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.imap_port), 1) as s:
                    s.settimeout(5)
                    if s.makefile("rb").readline().startswith(b"* OK"):
                        socket.create_connection((self.host, self.admin_port), 1).close()
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"mcp dataplane not ready within {START_TIMEOUT}s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"mcp dataplane did not stop on signal {sig}:\n{self.log_text()}")
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    # -- admin API -----------------------------------------------------------------------

    def admin_context(self) -> ssl.SSLContext:
        """Trusts only the admin certificate, as the operator pins it."""
        return ssl.create_default_context(cafile=str(self.etc / "admin" / "tls.crt"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = "",
        content_type: str | None = "application/json",
    ) -> Answer:
        """One HTTPS request; `token=""` sends the right token, `None` sends none."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        if body is not None and content_type:
            headers["Content-Type"] = content_type
        conn = http.client.HTTPSConnection(
            "localhost", self.admin_port, context=self.admin_context(), timeout=30
        )
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return Answer(r.status, r.headers, r.read())
        finally:
            conn.close()

    def raw_request(self, head: bytes, body: bytes = b"") -> Answer:
        """Sends `head` (request line and headers, without the final empty line, and without
        Authorization, which is added) and `body` as given, then reads the answer. For bodies
        the server must refuse before reading them all, which http.client cannot send
        without racing the early answer."""
        raw = socket.create_connection((self.host, self.admin_port), 10)
        with self.admin_context().wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(head + f"\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode() + body)
            r = http.client.HTTPResponse(tls)
            r.begin()
            return Answer(r.status, r.headers, r.read())

    def put(self, address: str, password: str = "alice-pw", spec: dict | None = None) -> Answer:
        body = {
            "tenant": TENANT,
            "spec": {
                "tenant": TENANT,
                "address": address,
                "credentials": {"secretRef": {"name": "alice"}},
                **(spec or {}),
            },
            "password": password,
        }
        return self.request("PUT", account_path(address), json.dumps(body).encode())

    def get(self, address: str) -> Answer:
        return self.request("GET", account_path(address))

    def delete(self, address: str, retention: str) -> Answer:
        return self.request("DELETE", account_path(address) + f"?retention={retention}")

    # -- IMAP ----------------------------------------------------------------------------

    def imap_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.etc / "tls" / "tls.crt"))

    def imaps(self, user: str, password: str) -> imaplib.IMAP4_SSL:
        imap = imaplib.IMAP4_SSL("localhost", self.imaps_port, ssl_context=self.imap_context(), timeout=10)
        imap.login(user, password)
        return imap

    def starttls(self, user: str, password: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.imap_port, timeout=10)
        imap.starttls(ssl_context=self.imap_context())
        imap.login(user, password)
        return imap


def account_path(address: str) -> str:
    """The address as one percent-encoded path segment (`@` as `%40`), as the operator sends it."""
    return f"{ADMIN_PATH}/{urllib.parse.quote(address, safe='')}"


@pytest.fixture
def dataplane(mcp_binary: Path, storage: Storage, tmp_path: Path):
    """Starts `mcp dataplane` on the operator-style config dir `tmp_path/etc` and data dir
    `tmp_path/data`; starting again restarts on the same files and data."""
    etc = tmp_path / "etc"
    token = write_config_dir(etc, storage)
    started: list[Dataplane] = []

    def start() -> Dataplane:
        d = Dataplane(mcp_binary, etc, tmp_path / "data", storage, token, tmp_path / "mcp.log")
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.stop()


def inbox_bodies(imap: imaplib.IMAP4) -> list[bytes]:
    typ, _ = imap.select("INBOX")
    assert typ == "OK"
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    return [part[1] for part in data if isinstance(part, tuple)]


def test_provisioned_account_logs_in_appends_and_reads(dataplane):
    dp = dataplane()
    answer = dp.put("Alice@ACME.example", spec={"quota": {"storage": "1Gi", "messages": 100}})
    assert answer.status == 200, answer.raw
    state = answer.json
    assert state["address"] == ALICE and state["active"] and state["created"]
    assert not state["updated"]
    assert state["folders"] == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    assert state["quota"] == {"storage": 1 << 30, "messages": 100}
    assert answer.headers.get("Content-Type") == "application/json"

    imap = dp.imaps(ALICE, "alice-pw")
    typ, data = imap.append("INBOX", None, None, MESSAGE)
    assert typ == "OK", data
    assert inbox_bodies(imap) == [MESSAGE]
    imap.logout()

    imap = dp.starttls(ALICE, "alice-pw")
    assert inbox_bodies(imap) == [MESSAGE]
    imap.logout()

    got = dp.get(ALICE)
    assert got.status == 200
    assert got.json["messages"] == 1 and got.json["bytes"] == len(MESSAGE)
    assert not got.json["created"] and not got.json["updated"]

    # The same request again changes nothing (a differently cased address is another spec,
    # so it would be an update).
    again = dp.put("Alice@ACME.example", spec={"quota": {"storage": "1Gi", "messages": 100}})
    assert again.status == 200 and not again.json["created"] and not again.json["updated"]

    # Metrics and health are served as in standalone mode.
    conn = http.client.HTTPConnection(dp.host, dp.metrics_port, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()
    assert dp.stop() == 0


def test_wrong_or_missing_token_is_401_problem(dataplane):
    dp = dataplane()
    for token in [None, "not-the-token-0123456789", dp.token + "x"]:
        answer = dp.request("GET", account_path(ALICE), token=token)
        assert answer.status == 401, (token, answer.raw)
        assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert answer.problem()["detail"]
    # A wrong token must not create anything either.
    answer = dp.request("PUT", account_path(ALICE), b'{"tenant": "acme"}', token="wrong-token-0123456789")
    assert answer.status == 401
    assert dp.get(ALICE).status == 404
    assert dp.token not in dp.log_text(), "the token was logged"


def test_hostile_requests_are_4xx_problems_naming_the_field(dataplane):
    dp = dataplane()
    good = {
        "tenant": TENANT,
        "spec": {"tenant": TENANT, "address": ALICE, "credentials": {"secretRef": {"name": "a"}}},
        "password": "alice-pw",
    }

    def body(**edits) -> bytes:
        b = json.loads(json.dumps(good))
        for path, value in edits.items():
            target = b
            keys = path.split("__")
            for k in keys[:-1]:
                target = target[k]
            target[keys[-1]] = value
        return json.dumps(b).encode()

    path = account_path(ALICE)
    cases = [
        ("PUT", path, b'{"tenant": ', "application/json", 400, "EOF"),
        ("PUT", path, b"[1, 2, 3]", "application/json", 400, "body: must be a JSON object"),
        ("PUT", path, body(sudo=True), "application/json", 400, "unknown field `sudo`"),
        ("PUT", path, body(spec__color="red"), "application/json", 400, "spec.color: unknown field"),
        ("PUT", path, body(spec__address=5), "application/json", 400, "spec.address"),
        ("PUT", path, body(password=""), "application/json", 400, "password"),
        ("PUT", path, body(tenant="globex"), "application/json", 400, "tenant"),
        ("PUT", path, body(spec__tenant="globex"), "application/json", 400, "spec.tenant"),
        ("PUT", path, body(spec__aliases=["x@evil.example"]), "application/json", 400, "spec.aliases"),
        ("PUT", path, body(spec__quota={"storage": "a lot"}), "application/json", 400, "spec.quota.storage"),
        ("PUT", path, body(), "text/plain", 415, "Content-Type"),
        ("PUT", path, body(), None, 415, "Content-Type"),
        ("PUT", f"{ADMIN_PATH}/alice%zz@acme.example", body(), "application/json", 400, "address"),
        ("PUT", account_path("alice@evil.example"), body(spec__address="alice@evil.example"),
         "application/json", 400, "address"),
        ("PUT", account_path("bob@acme.example"), body(), "application/json", 400, "spec.address"),
        ("DELETE", path, None, None, 400, "retention"),
        ("DELETE", path + "?retention=Forever", None, None, 400, "retention"),
        ("POST", path, body(), "application/json", 405, "POST"),
        ("GET", "/internal/v1/other", None, None, 404, "no such endpoint"),
    ]
    for method, url, payload, content_type, status, field in cases:
        answer = dp.request(method, url, payload, content_type=content_type)
        assert answer.status == status, (method, url, answer.raw[:300])
        detail = answer.problem().get("detail", "")
        assert field in detail, (method, url, detail)
        assert "alice-pw" not in detail
    # Bodies over 64 KiB: refused by the declared length before any byte of the body is
    # read, and a chunked body as soon as it passes the limit.
    head = f"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json".encode()
    declared = dp.raw_request(head + b"\r\nContent-Length: 10000000")
    chunk = b" " * (64 * 1024 + 1)
    chunked = dp.raw_request(
        head + b"\r\nTransfer-Encoding: chunked",
        b"1\r\n{\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n",
    )
    for answer in (declared, chunked):
        assert answer.status == 413, answer.raw
        assert "body: larger than 65536 octets" in answer.problem()["detail"]

    # Nothing was half-written, and the server still serves.
    assert dp.get(ALICE).status == 404

    # Bytes that are not TLS, and a connection that never finishes its handshake, hold up
    # nobody.
    with socket.create_connection((dp.host, dp.admin_port), 5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 100)
        raw.settimeout(5)
        try:
            raw.recv(100)
        except OSError:
            pass
    silent = socket.create_connection((dp.host, dp.admin_port), 5)
    try:
        assert dp.put(ALICE).status == 200
    finally:
        silent.close()
    assert "alice-pw" not in dp.log_text(), "a password was logged"


def test_retain_refuses_login_and_a_later_put_finds_the_mail(dataplane):
    dp = dataplane()
    assert dp.put(ALICE).status == 200
    imap = dp.imaps(ALICE, "alice-pw")
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    imap.logout()

    answer = dp.delete(ALICE, "Retain")
    assert answer.status == 200
    assert answer.json == {"address": ALICE, "existed": True, "retention": "Retain"}
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dp.imaps(ALICE, "alice-pw")
    retained = dp.get(ALICE).json
    assert retained["active"] is False and retained["messages"] == 1

    again = dp.put(ALICE)
    assert again.status == 200 and again.json["active"] and again.json["updated"]
    imap = dp.imaps(ALICE, "alice-pw")
    assert inbox_bodies(imap) == [MESSAGE]
    imap.logout()


def test_delete_removes_the_account(dataplane):
    dp = dataplane()
    assert dp.put(ALICE).status == 200
    answer = dp.delete(ALICE, "Delete")
    assert answer.json == {"address": ALICE, "existed": True, "retention": "Delete"}
    missing = dp.get(ALICE)
    assert missing.status == 404
    assert ALICE in missing.problem()["detail"]
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dp.imaps(ALICE, "alice-pw")
    # Idempotent.
    assert dp.delete(ALICE, "Delete").json["existed"] is False


def test_state_survives_a_restart_and_sigterm_says_bye(dataplane):
    first = dataplane()
    assert first.put(ALICE).status == 200
    imap = first.imaps(ALICE, "alice-pw")
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    imap.logout()

    # A session open at SIGTERM is told goodbye (RFC 9051 §7.1.5).
    raw = first.imap_context().wrap_socket(
        socket.create_connection((first.host, first.imaps_port), 10), server_hostname="localhost"
    )
    reader = raw.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    raw.sendall(b'a LOGIN "alice@acme.example" "alice-pw"\r\n')
    while not (line := reader.readline()).startswith(b"a "):
        pass
    assert line.startswith(b"a OK"), line
    assert first.stop(signal.SIGTERM) == 0
    assert reader.readline().startswith(b"* BYE")
    raw.close()
    assert "MCP dataplane stopped" in first.log_text()

    second = dataplane()
    got = second.get(ALICE)
    assert got.status == 200 and got.json["messages"] == 1
    # The digest key lives in the data directory: the same request is still a no-op.
    again = second.put(ALICE)
    assert not again.json["created"] and not again.json["updated"]
    imap = second.imaps(ALICE, "alice-pw")
    assert inbox_bodies(imap) == [MESSAGE]
    imap.logout()


def test_lmtp_is_served_on_the_configured_address(dataplane):
    dp = dataplane()
    with socket.create_connection((dp.host, dp.lmtp_port), 5) as s:
        s.settimeout(5)
        f = s.makefile("rwb")
        assert f.readline().startswith(b"220 "), "LMTP greeting"
        f.write(b"LHLO test\r\n")
        f.flush()
        lines = []
        while not lines or lines[-1][3:4] != b" ":
            lines.append(f.readline())
        assert b"250-PIPELINING\r\n" in lines, lines


@pytest.mark.parametrize(
    "edits, want",
    [
        ({"imap": "x"}, 'config.yaml: imap: "x" is not IP:PORT'),
        ({"lmtpPort": "24"}, "config.yaml: lmtpPort: unknown field `lmtpPort`"),
        ({"blobDir": None, "s3": "{bucket: b1b, prefix: acme/, region: us-east-1, forcePathStyle: true, "
          "accessKeyIdEnv: MCP_E2E_UNSET_KEY_ID, secretAccessKeyEnv: AWS_SECRET_ACCESS_KEY}"},
         "config.yaml: s3.accessKeyIdEnv: environment variable MCP_E2E_UNSET_KEY_ID is not set"),
        ({"adminTokenFile": "admin/missing"}, "config.yaml: adminTokenFile: "),
    ],
)
def test_invalid_configuration_exits_naming_the_field(mcp_binary, tmp_path, edits, want):
    etc = tmp_path / "etc"
    write_config_dir(etc, Storage("sqlite", None), edits)
    out = subprocess.run(
        [str(mcp_binary), "dataplane", "--config", "config.yaml", "--data-dir", str(tmp_path / "data")],
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1, out
    assert want in out.stderr, out.stderr
    assert not (tmp_path / "data").exists(), "an invalid configuration touched the data directory"
