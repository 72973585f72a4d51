"""`mcp quarantine` against a running standalone server (docs/pipeline.md, "Quarantine"):
a message the sample pipeline held over LMTP is listed, shown as received, released into
INBOX exactly once (visible over IMAP), and a second release or a bad id fails cleanly."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from imaputil import connect  # noqa: E402
from pipelineutil import CARD  # noqa: E402



def cli(binary: Path, server, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(binary), "quarantine", "--data-dir", str(server.data_dir)]
    cmd += server.storage.args()
    return subprocess.run(cmd + list(args), capture_output=True, timeout=60)


def subjects(server) -> list[bytes]:
    with connect(server) as c:
        c.select("INBOX")
        r = c.cmd("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").ok()
        return [next(v for k, v in items.items() if k.startswith("BODY")).strip() for items in r.fetches().values()]


def test_held_message_is_listed_released_once_and_deleted(mcp, mcp_binary):
    message = f"Subject: held\r\n\r\nMy card: {CARD}\r\n"
    with smtplib.LMTP(mcp.host, mcp.lmtp_port) as lmtp:
        assert lmtp.sendmail("bob@example.com", ["alice@example.com"], message) == {}
        assert lmtp.sendmail("bob@example.com", ["alice@example.com"], message.replace("held", "second")) == {}
    listed = cli(mcp_binary, mcp, "list", "--tenant", "example", "--mailbox", "alice@example.com")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["reason"] for e in entries] == ["dlp: paymentCard=1"] * 2
    assert entries[0]["step"] == "card-numbers" and entries[0]["stage"] == "deliver"
    first, second = entries[0]["id"], entries[1]["id"]

    raw = cli(mcp_binary, mcp, "message", first)
    assert raw.returncode == 0 and raw.stdout.endswith(f"My card: {CARD}\r\n".encode()), raw
    assert b"X-MCP-Scanned" not in raw.stdout, "held as received, before any mutation"
    assert b"Subject: held" not in b"".join(subjects(mcp))

    released = cli(mcp_binary, mcp, "release", first)
    assert released.returncode == 0 and released.stdout.startswith(b"released into INBOX"), released
    assert subjects(mcp).count(b"Subject: held") == 1
    again = cli(mcp_binary, mcp, "release", first)
    assert again.returncode != 0 and b"no quarantined message" in again.stderr, again
    assert subjects(mcp).count(b"Subject: held") == 1, "released exactly once"

    assert cli(mcp_binary, mcp, "delete", second).returncode == 0
    assert cli(mcp_binary, mcp, "list").stdout == b""
    bad = cli(mcp_binary, mcp, "show", "../../etc/passwd")
    assert bad.returncode != 0 and b"is not a quarantine id" in bad.stderr, bad
