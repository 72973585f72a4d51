"""Raw-socket helpers of the hostile-input suite: talk IMAP byte by byte, read until a
tagged response or the end of the connection, and check that the server still serves an
independent, well-behaved client afterwards."""

from __future__ import annotations

import imaplib
import re
import socket
import time
from pathlib import Path

from conftest import ALICE

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


class Raw:
    """A plain-TCP IMAP connection driven with raw bytes."""

    def __init__(self, server, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((server.host, server.imap_port), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.line()
        assert self.greeting.startswith(b"* OK"), self.greeting

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self) -> bytes:
        """The next line, CRLF stripped; raises EOFError when the server closed first."""
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; pending {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag: bytes) -> tuple[list[bytes], bytes]:
        """Lines up to the tagged response of `tag` (literals are skipped, not parsed as
        lines): (untagged lines, tagged line)."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                need = int(m.group(1))
                while len(self.buf) < need:
                    if not self._fill():
                        raise EOFError("connection closed inside a literal")
                self.buf = self.buf[need:]
            if line.startswith(tag + b" "):
                return lines, line
            lines.append(line)

    def cmd(self, tag: bytes, command: bytes) -> tuple[list[bytes], bytes]:
        self.send(tag + b" " + command + b"\r\n")
        return self.until_tagged(tag)

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def login(self) -> None:
        _, tagged = self.cmd(b"L", b"LOGIN %s %s" % (ALICE[0].encode(), ALICE[1].encode()))
        assert tagged.startswith(b"L OK"), tagged

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def seed(server, messages: list[bytes] | None = None, mailbox: str = "INBOX") -> None:
    """Appends `messages` (default: two corpus messages) to alice's `mailbox`."""
    if messages is None:
        messages = [(CORPUS / "01-simple-text.eml").read_bytes(),
                    (CORPUS / "05-multipart-alternative.eml").read_bytes()]
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=30)
    try:
        imap.login(*ALICE)
        for m in messages:
            typ, data = imap.append(mailbox, None, None, m)
            assert typ == "OK", data
    finally:
        imap.logout()


def assert_healthy(server, timeout: float = 15.0) -> None:
    """The server process is alive and a second, independent connection can LOGIN,
    SELECT INBOX and FETCH the first message."""
    assert server.proc.poll() is None, f"mcp exited with {server.proc.returncode}:\n" + server.log_text()[-4000:]
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=timeout)
    try:
        assert imap.login(*ALICE)[0] == "OK"
        typ, data = imap.select("INBOX")
        assert typ == "OK", data
        assert int(data[0]) >= 1, "the test should have seeded INBOX"
        typ, data = imap.fetch("1", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        assert b"Subject" in data[0][1] or b"SUBJECT" in data[0][1].upper(), data
    finally:
        imap.logout()


def rss_kib(pid: int) -> int:
    """VmRSS of process `pid`, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_closed(raw: Raw, timeout: float) -> bytes:
    """Reads until the server closes; fails if it does not within `timeout`."""
    raw.sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    data = raw.buf
    raw.buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = raw.sock.recv(1 << 16)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"server did not close within {timeout}s; got {data[-300:]!r}")
