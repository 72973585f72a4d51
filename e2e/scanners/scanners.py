"""Private scanner daemons for the bridge suites: a clamd from Debian's `clamav-daemon` with a
test signature database this harness writes (no freshclam, no network), and an rspamd from
Debian's `rspamd` with its own configuration directory, on free loopback ports.

Not a `conftest.py` (see e2e/lmtp/lmtputil.py for why): the test modules import the fixtures
from here. Each fixture skips when the binary is missing, unless CI=true (.ci/run installs
both packages), where a missing binary fails the test.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ALICE, free_ports

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from imaputil import connect  # noqa: E402

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
RSPAMD_CONFDIR = Path("/etc/rspamd")
START_TIMEOUT = float(os.environ.get("MCP_E2E_SCANNER_START_TIMEOUT", "120"))

#: A made-up string the test signature matches; nothing else on the machine contains it.
TEST_VIRUS = "MCP-E2E-TEST-VIRUS-7d1f0c2a9b"
#: The name clamd reports: the signature's name plus `.UNOFFICIAL` (not from ClamAV's own
#: signed databases).
TEST_SIGNATURE = "MCP.E2E.TestSignature.UNOFFICIAL"
#: rspamd's built-in spam test string (GTUBE): its action is `reject`.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#: rspamd's test variants (with `enable_test_patterns`): `add header` and `rewrite subject`.
GTUBE_ADD_HEADER = "Y" + GTUBE[1:]
GTUBE_REWRITE_SUBJECT = "Z" + GTUBE[1:]


def require(binary: str, package: str) -> None:
    """Skips (or fails on CI) when `binary` is not installed."""
    if Path(binary).is_file():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{binary} is not installed (.ci/run installs {package})")
    pytest.skip(f"{binary} is not installed (apt-get install {package})")


class Clamd:
    """A private clamd on a Unix socket and a loopback TCP port, its signature database one
    `.ndb` body signature for [TEST_VIRUS]. `stop()` and `start()` again as needed."""

    def __init__(self, stream_max_length: str = "1M") -> None:
        # Not pytest's tmp_path: clamd may drop to its own user and must reach the files.
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-clamd-"))
        self.dir.chmod(0o755)
        db = self.dir / "db"
        db.mkdir()
        # Body signature (signatures.md, "Extended signature format"): name, target type 0
        # (any file), offset * (anywhere), the hex of the string.
        (db / "mcp-e2e.ndb").write_text(f"MCP.E2E.TestSignature:0:*:{TEST_VIRUS.encode().hex()}\n")
        self.socket = self.dir / "clamd.sock"
        (self.port,) = free_ports(1)
        self.log = self.dir / "clamd.log"
        config = {
            "Foreground": "yes",
            "LocalSocket": str(self.socket),
            "LocalSocketMode": "666",
            "TCPSocket": str(self.port),
            "TCPAddr": "127.0.0.1",
            "DatabaseDirectory": str(db),
            "TemporaryDirectory": str(self.dir),
            "LogFile": str(self.log),
            "LogTime": "yes",
            "PidFile": str(self.dir / "clamd.pid"),
            # Small, so a test can pass it: clamd then answers "INSTREAM size limit exceeded".
            "StreamMaxLength": stream_max_length,
            "SelfCheck": "0",
        }
        self.conf = self.dir / "clamd.conf"
        self.conf.write_text("".join(f"{k} {v}\n" for k, v in config.items()))
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def tcp(self) -> str:
        """The bridge's `address` for the TCP socket."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix(self) -> str:
        """The bridge's `address` for the Unix socket."""
        return f"unix://{self.socket}"

    def start(self) -> None:
        out = open(self.dir / "clamd.out", "ab")
        self.proc = subprocess.Popen([CLAMD, "--foreground", "-c", str(self.conf)],
                                     stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"clamd exited with {self.proc.returncode}:\n{self.output()}")
            if self.ping():
                return
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"clamd did not answer PING within {START_TIMEOUT}s:\n{self.output()}")

    def ping(self) -> bool:
        """Whether clamd answers `zPING` with `PONG` on both sockets."""
        try:
            for family, addr in ((socket.AF_UNIX, str(self.socket)),
                                 (socket.AF_INET, ("127.0.0.1", self.port))):
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(addr)
                    s.sendall(b"zPING\0")
                    if s.recv(16) != b"PONG\0":
                        return False
            return True
        except OSError:
            return False

    def output(self) -> str:
        text = ""
        for f in (self.dir / "clamd.out", self.log):
            if f.exists():
                text += f.read_text(errors="replace")
        return text

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# rspamd's top-level configuration: the packaged modules and their defaults, one normal
# worker on our port, no controller, proxy or fuzzy worker, console log.
RSPAMD_CONF = """\
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}}
logging {{
    type = "console";
    level = "notice";
}}
worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}}
"""

# No network and no redis here: modules that would query DNS lists, fetch maps or need redis
# are switched off, DNS goes to a closed local port (answers fail at once), and the host
# checks that need a client IP are off too.
RSPAMD_DISABLED = [
    "asn", "dcc", "dkim", "dmarc", "emails", "fuzzy_check", "greylist", "hfilter", "multimap",
    "mx_check", "neural", "phishing", "ratelimit", "rbl", "replies", "reputation",
    "rspamd_update", "spf", "surbl", "url_redirector", "whitelist",
]
RSPAMD_OPTIONS = """\
dns { nameserver = ["127.0.0.1:9"]; timeout = 100ms; retransmits = 1; }
# GTUBE variants for add header (Y...) and rewrite subject (Z...).
enable_test_patterns = true;
"""
# rspamd's own result headers on every message (rspamd's milter block). MCP's Received
# header names 127.0.0.1 and APPEND sends `User`: without the skip_* options rspamd would
# leave out the headers for local and authenticated senders.
RSPAMD_MILTER_HEADERS = """\
use = ["x-spamd-result", "x-spam-status", "remove-spam-flag"];
skip_local = false;
skip_authenticated = false;
"""


class Rspamd:
    """A private rspamd with its own configuration, database and run directories."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-rspamd-"))
        self.dir.chmod(0o755)
        local = self.dir / "local.d"
        for d in (local, self.dir / "db", self.dir / "run", self.dir / "log"):
            d.mkdir()
        (self.port,) = free_ports(1)
        (self.dir / "rspamd.conf").write_text(RSPAMD_CONF.format(port=self.port))
        (local / "options.inc").write_text(RSPAMD_OPTIONS)
        (local / "milter_headers.conf").write_text(RSPAMD_MILTER_HEADERS)
        for module in RSPAMD_DISABLED:
            (local / f"{module}.conf").write_text("enabled = false;\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        """The bridge's `url`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        variables = {
            "CONFDIR": str(RSPAMD_CONFDIR),
            "LOCAL_CONFDIR": str(self.dir),
            "DBDIR": str(self.dir / "db"),
            "RUNDIR": str(self.dir / "run"),
            "LOGDIR": str(self.dir / "log"),
        }
        cmd = [RSPAMD, "-f", "-c", str(self.dir / "rspamd.conf"), "-u", user, "-g", group,
               # Workers as root (CI runs as root) need this; harmless otherwise.
               "-i"]
        for k, v in variables.items():
            cmd += ["--var", f"{k}={v}"]
        out = open(self.dir / "rspamd.out", "ab")
        # Its own process group: the main process and its workers are stopped together.
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rspamd exited with {self.proc.returncode}:\n{self.output()}")
            if self.ping():
                return
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"rspamd did not answer /ping within {START_TIMEOUT}s:\n{self.output()}")

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as r:
                return r.read().strip() == b"pong"
        except OSError:
            return False

    def output(self) -> str:
        f = self.dir / "rspamd.out"
        return f.read_text(errors="replace") if f.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def clamd() -> Iterator[Clamd]:
    """One clamd for the session (it takes seconds to load); tests that stop it use
    `private_clamd`."""
    require(CLAMD, "clamav-daemon")
    c = Clamd()
    try:
        yield c
    finally:
        c.remove()


@pytest.fixture
def private_clamd() -> Iterator[Clamd]:
    """A clamd of this test alone, which it may stop and start."""
    require(CLAMD, "clamav-daemon")
    c = Clamd()
    try:
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="session")
def rspamd() -> Iterator[Rspamd]:
    """One rspamd for the session; tests that stop it use `private_rspamd`."""
    require(RSPAMD, "rspamd")
    r = Rspamd()
    try:
        yield r
    finally:
        r.remove()


@pytest.fixture
def private_rspamd() -> Iterator[Rspamd]:
    """An rspamd of this test alone, which it may stop and start."""
    require(RSPAMD, "rspamd")
    r = Rspamd()
    try:
        yield r
    finally:
        r.remove()


def write_pipeline(resources: Path, steps: str, stages: str = "[deliver, append]") -> None:
    """Replaces the sample pipeline of `resources` by one with `steps` (YAML list items,
    indented by four spaces)."""
    (resources / "pipeline.yaml").write_text(
        "apiVersion: mcp.dev/v1alpha1\n"
        "kind: Pipeline\n"
        "metadata: {name: example-default, namespace: mcp-example}\n"
        "spec:\n"
        "  scope: {type: TenantDefault}\n"
        f"  stages: {stages}\n"
        "  steps:\n" + steps
    )


def message(subject: str, body: str, **headers: str) -> bytes:
    """A plain, well-formed message from bob to alice (CRLF), that rspamd scores as ham."""
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return (
        "From: Bob Example <bob@example.com>\r\n"
        "To: Alice Example <alice@example.com>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{abs(hash(subject))}.{time.time_ns()}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        f"{extra}\r\n{body}\r\n"
    ).encode()


def lmtp_send(server, data: bytes, rcpt: str = "alice@example.com",
              sender: str = "bob@example.com") -> tuple[int, str]:
    """Delivers `data` to one recipient over LMTP; returns the reply to the message (code and
    text, e.g. `(250, "2.0.0 <alice@example.com> accepted, held in quarantine")`)."""
    with smtplib.LMTP(server.host, server.lmtp_port) as client:
        client.ehlo("client.test")
        code, text = client.mail(sender)
        assert code == 250, (code, text)
        code, text = client.rcpt(rcpt)
        assert code == 250, (code, text)
        code, text = client.data(data)
        return code, text.decode()


def mailbox_messages(server, mailbox: str = "INBOX", creds=ALICE) -> list[bytes]:
    """Every message of `mailbox`, fetched over IMAP, in UID order."""
    with connect(server, user=creds) as c:
        c.select(mailbox)
        r = c.cmd("UID FETCH 1:* (BODY.PEEK[])")
        if r.status != "OK":
            return []
        return [next(v for k, v in items.items() if k.startswith("BODY"))
                for _, items in sorted(r.fetches().items())]


def with_subject(messages: list[bytes], subject: str) -> list[bytes]:
    return [m for m in messages if f"\r\nSubject: {subject}\r\n".encode() in b"\r\n" + m]


def quarantined(binary: Path, server) -> list[dict]:
    """The server's quarantine entries (`mcp quarantine list`), one dict each."""
    cmd = [str(binary), "quarantine", "--data-dir", str(server.data_dir)]
    cmd += server.storage.args()
    out = subprocess.run(cmd + ["list"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]
