"""Fixtures of the LMTP suites: a private Postfix instance delivering to the test's
`mcp standalone` over LMTP (see postfix.py), and small LMTP/IMAP helpers.

Not a `conftest.py`: e2e/ has no packages, so a second conftest module would replace
e2e/conftest.py under the module name `conftest` that the suites import from. Test modules
import the fixtures they use from here instead."""

from __future__ import annotations

import imaplib
import os
import socket
from typing import Iterator

import pytest

import postfix as postfix_mod


@pytest.fixture
def postfix(mcp) -> Iterator[postfix_mod.Postfix]:
    """A running private Postfix that routes example.com to `mcp`'s LMTP port; stopped and
    removed afterwards. Skipped without Postfix, unless CI=true (.ci/run installs it)."""
    if not postfix_mod.available():
        if os.environ.get("CI") == "true":
            pytest.fail("Postfix is not installed (.ci/run installs it)")
        pytest.skip("Postfix is not installed")
    instance = postfix_mod.Postfix(mcp.lmtp_port)
    try:
        yield instance
    finally:
        instance.stop()


class Lmtp:
    """A raw LMTP connection: `send()` bytes, read reply lines with `replies(n)`."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), 10)
        self.sock.settimeout(20)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()
        assert self.greeting.startswith(b"220 "), self.greeting

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> list[bytes]:
        """One reply, all its lines (without CRLF)."""
        lines = []
        while True:
            line = self.file.readline()
            assert line.endswith(b"\r\n"), (line, lines)
            lines.append(line[:-2])
            if line[3:4] != b"-":
                return lines

    def replies(self, n: int) -> list[str]:
        """The next `n` replies, each as `code status` (e.g. `250 2.1.5`)."""
        out = []
        for _ in range(n):
            last = self.reply()[-1].decode()
            out.append(" ".join(last.split(" ")[:2]))
        return out

    def lhlo(self) -> list[bytes]:
        self.send(b"LHLO client.test\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def lmtp(mcp) -> Iterator[Lmtp]:
    """A raw LMTP connection to `mcp`, greeted (LHLO sent)."""
    c = Lmtp(mcp.host, mcp.lmtp_port)
    c.lhlo()
    yield c
    c.close()


def inbox(mcp, creds: tuple[str, str]) -> list[bytes]:
    """Every message in the INBOX of `creds`, in UID order, fetched over IMAP."""
    m = imaplib.IMAP4(mcp.host, mcp.imap_port)
    try:
        m.login(*creds)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        assert typ == "OK", data
        messages = []
        for uid in data[0].split():
            typ, parts = m.uid("FETCH", uid, "(BODY.PEEK[])")
            assert typ == "OK", parts
            messages.append(parts[0][1])
        return messages
    finally:
        m.logout()
