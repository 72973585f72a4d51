"""curl's IMAP client against `mcp standalone`: IMAPS verified against the server's own
certificate, STARTTLS with --ssl-reqd, LIST, FETCH by UID, APPEND; and the exact curl
commands of README.md (with -k), so that the README stays true."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clientlib import CORPUS, imap

from conftest import ALICE, REPO

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")

USER = f"{ALICE[0]}:{ALICE[1]}"


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30", *args],
        capture_output=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def test_curl_imaps_verified_list_fetch_append(mcp, tmp_path):
    cacert = str(mcp.data_dir / "tls" / "cert.pem")
    base = f"imaps://localhost:{mcp.imaps_port}"
    msg = (CORPUS / "07-rfc2047-q-b.eml").read_bytes()
    eml = tmp_path / "m.eml"
    eml.write_bytes(msg)

    # APPEND with -T (upload).
    curl("--cacert", cacert, "--user", USER, f"{base}/INBOX", "-T", str(eml))
    # Fetch it back by UID: byte for byte.
    out = curl("--cacert", cacert, "--user", USER, f"{base}/INBOX;UID=1").stdout
    assert out == msg
    # LIST all folders.
    out = curl("--cacert", cacert, "--user", USER, f"{base}/", "-X", 'LIST "" *').stdout
    names = re.findall(rb'^\* LIST \([^)]*\) "/" "?([^"\r\n]*)"?\r?$', out, re.M)
    assert b"INBOX" in names and b"Archive" in names, out
    # A mailbox URL without UID: curl LISTs that mailbox.
    out = curl("--cacert", cacert, "--user", USER, f"{base}/INBOX").stdout
    assert out.startswith(b'* LIST (') and b'"INBOX"' in out, out
    # Fetch by sequence-number-free UID URL with a section: the header only.
    out = curl("--cacert", cacert, "--user", USER, f"{base}/INBOX;UID=1;SECTION=HEADER").stdout
    assert out == msg[: msg.index(b"\r\n\r\n") + 4], out
    # A custom command on a selected mailbox: SEARCH.
    out = curl("--cacert", cacert, "--user", USER, f"{base}/INBOX", "-X", "SEARCH ALL").stdout
    assert b"* SEARCH 1" in out, out

    # Without -k and without the CA the self-signed certificate is refused.
    proc = curl("--user", USER, f"{base}/INBOX", check=False)
    assert proc.returncode == 60, (proc.returncode, proc.stderr)

    # Wrong password: curl reports a login failure (exit 67).
    proc = curl("--cacert", cacert, "--user", f"{ALICE[0]}:wrong", f"{base}/INBOX", check=False)
    assert proc.returncode == 67, (proc.returncode, proc.stderr)

    conn = imap(mcp)
    try:
        typ, data = conn.select("INBOX", readonly=True)
        assert int(data[0]) == 1
    finally:
        conn.logout()


def test_curl_starttls_ssl_reqd(mcp, tmp_path):
    cacert = str(mcp.data_dir / "tls" / "cert.pem")
    base = f"imap://localhost:{mcp.imap_port}"
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"Subject: over starttls\r\n\r\nbody\r\n")
    curl("--ssl-reqd", "--cacert", cacert, "--user", USER, f"{base}/Archive", "-T", str(eml))
    out = curl("--ssl-reqd", "--cacert", cacert, "--user", USER, f"{base}/Archive;UID=1").stdout
    assert out == eml.read_bytes()
    out = curl("--ssl-reqd", "--cacert", cacert, "--user", USER, f"{base}/", "-X", 'LIST "" *').stdout
    assert b"Archive" in out
    # Verbose trace proves the upgrade happened before LOGIN.
    proc = curl("-v", "--ssl-reqd", "--cacert", cacert, "--user", USER, f"{base}/INBOX")
    trace = proc.stderr.decode(errors="replace")
    assert "> A002 STARTTLS" in trace, trace
    assert trace.index("STARTTLS") < trace.index("AUTHENTICATE PLAIN"), trace
    # After the upgrade STARTTLS is no longer offered.
    after = trace[trace.index("SSL certificate verify ok") :]
    caps = [ln for ln in after.splitlines() if ln.startswith("< * CAPABILITY")]
    assert caps and "STARTTLS" not in caps[0], caps


def readme_curl_commands() -> list[str]:
    """The curl commands of README.md (its REST API and curl sections), verbatim, a command
    continued over lines with `\\` joined into one line."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "README.md").read_text())
    cmds = re.findall(r"^(curl .*|printf .*)$", text, re.M)
    assert len([c for c in cmds if c.startswith("curl")]) >= 4, cmds
    return cmds


def test_readme_curl_commands_work(mcp, tmp_path):
    hello = tmp_path / "hello.eml"
    outputs = []
    for cmd in readme_curl_commands():
        # Same command, but the server runs on test ports and the file lives in tmp_path.
        cmd = (
            cmd.replace("127.0.0.1:1993", f"127.0.0.1:{mcp.imaps_port}")
            .replace("127.0.0.1:1143", f"127.0.0.1:{mcp.imap_port}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{mcp.rest_port}")
            .replace("/tmp/hello.eml", str(hello))
        )
        if cmd.startswith("curl "):
            cmd = "curl --silent --show-error --max-time 30 " + cmd[len("curl ") :]
        # The REST example sends the bootstrap admin key the server printed on stdout.
        env = dict(os.environ, MCP_API_KEY=mcp.bootstrap_key() or "")
        proc = subprocess.run(cmd, shell=True, capture_output=True, timeout=60, env=env)
        assert proc.returncode == 0, (cmd, proc.stderr)
        outputs.append((cmd, proc.stdout))
    # The last command reads back the message the README appended.
    assert outputs[-1][1] == b"Subject: hello\r\n\r\nHi Alice\r\n", outputs[-1]
    listing = [o for c, o in outputs if "LIST" in c]
    assert listing and b"INBOX" in listing[0], outputs
    # The REST example created a viewer key: its answer holds the new key, shown once.
    created = [json.loads(o) for c, o in outputs if "/api/v1/apikeys" in c]
    assert len(created) == 1 and created[0]["role"] == "viewer", outputs
    assert str(created[0]["key"]).startswith("mcp_"), created


def test_readme_mentions_mcp_ports():
    text = (REPO / "README.md").read_text()
    assert "127.0.0.1:1993" in text and "127.0.0.1:1143" in text
    assert Path(REPO / "README.md").is_file()
