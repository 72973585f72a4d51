"""mutt against `mcp standalone`, driven non-interactively: mutt runs in a pseudo-terminal
with its keystrokes given up front by `-e 'push ...'`. It opens INBOX over IMAPS (verifying
the server's certificate via `certificate_file`) or STARTTLS, pipes a message to a file,
deletes one, saves one to Archive (UID COPY + delete), syncs and quits; the result is
checked on the server with imaplib."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from pathlib import Path

import pytest

from clientlib import CORPUS, imap, server_state

from conftest import ALICE

pytestmark = pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt not installed")


def run_mutt(args: list[str], timeout: float = 30) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ["TERM"] = "xterm"
        os.environ.pop("MAIL", None)
        try:
            os.execvp("mutt", ["mutt", *args])
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                out += chunk
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
                break
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None, f"mutt did not finish within {timeout}s:\n{out[-2000:]!r}"
    return status, out


def muttrc(tmp: Path, server, starttls: bool) -> Path:
    url = (
        f"imap://localhost:{server.imap_port}/"
        if starttls
        else f"imaps://localhost:{server.imaps_port}/"
    )
    rc = tmp / "muttrc"
    rc.write_text(
        f"""set imap_user="{ALICE[0]}"
set imap_pass="{ALICE[1]}"
set certificate_file="{server.data_dir / "tls" / "cert.pem"}"
set ssl_verify_host=yes
set ssl_starttls=yes
set ssl_force_tls=yes
set folder="{url}"
set spoolfile="+INBOX"
set header_cache=""
set message_cachedir=""
set record=""
set postponed=""
set move=no
set confirmappend=no
set delete=yes
set quit=yes
set wait_key=no
set sleep_time=0
set sort=date-sent
"""
    )
    return rc


@pytest.mark.parametrize("starttls", [False, True], ids=["imaps", "starttls"])
def test_mutt_reads_deletes_and_saves(mcp, tmp_path, starttls):
    seeded = sorted(CORPUS.glob("*.eml"))[:3]
    conn = imap(mcp)
    try:
        for f in seeded:
            assert conn.append("INBOX", None, None, f.read_bytes())[0] == "OK"
    finally:
        conn.logout()
    rc = muttrc(tmp_path, mcp, starttls)
    piped = tmp_path / "piped.eml"
    keys = (
        f"<pipe-message>cat > {piped}<enter>"
        "<delete-message><sync-mailbox>"
        "<save-message>=Archive<enter><sync-mailbox><quit>"
    )
    status, screen = run_mutt(["-n", "-F", str(rc), "-f", "=INBOX", "-e", f'push "{keys}"'])
    assert status == 0, screen[-2000:]
    text = screen.decode(errors="replace")
    assert "Authenticating" in text and "Fetching message headers... 0/3" in text, text[-2000:]
    if starttls:
        assert "SSL/TLS connection using" in text, text[-2000:]

    # The piped message is one of the seeded ones (mutt pipes with LF line ends).
    body = piped.read_bytes()
    match = [f for f in seeded if f.read_bytes().replace(b"\r\n", b"\n") == body]
    assert len(match) == 1, body[:300]

    state = server_state(mcp)
    assert len(state["INBOX"]) == 1, state["INBOX"]
    assert len(state["Archive"]) == 1, state["Archive"]
    subject = [ln for ln in body.splitlines() if ln.startswith(b"Subject:")][0]
    all_subjects = [s for box in state.values() for _, s in box.values()]
    assert subject not in all_subjects, "the piped-then-deleted message is still there"
    # Nothing was left flagged \Deleted: mutt expunged what it deleted.
    assert not any("\\Deleted" in flags for box in state.values() for flags, _ in box.values())
