"""isync (`mbsync`) against `mcp standalone`: pull every folder into a Maildir, push local
additions, flag changes and deletions back, pull server-side changes, and check that
further syncs change nothing. Over IMAPS (with the server's own certificate) and STARTTLS,
with AUTH=LOGIN and AUTH=PLAIN."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from clientlib import SEED_INBOX, UMLAUT_BOX, imap, seed, server_state

from conftest import ALICE

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync not installed")


def write_rc(tmp: Path, server, tls: str, mech: str) -> Path:
    mail = tmp / "mail"
    mail.mkdir(exist_ok=True)
    port = server.imaps_port if tls == "IMAPS" else server.imap_port
    rc = tmp / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount mcp
Host localhost
Port {port}
User {ALICE[0]}
Pass {ALICE[1]}
SSLType {tls}
CertificateFile {server.data_dir / "tls" / "cert.pem"}
AuthMechs {mech}

IMAPStore remote
Account mcp

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )
    return rc


def mbsync(rc: Path) -> str:
    proc = subprocess.run(
        ["mbsync", "-V", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    bad = [ln for ln in out.splitlines() if ln.startswith(("Error", "Warning", "IMAP error"))]
    assert not bad, out
    return out


def norm(data: bytes) -> bytes:
    """Maildir line ends, without the X-TUID header mbsync inserts into messages it
    copies (its crash-recovery marker, added whatever the server)."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(ln for ln in lines if not ln.startswith(b"X-TUID: "))


def maildir(mail: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """{folder: {message file base name (without flags): (flags, sha256 of content)}}."""
    boxes = {}
    for box in sorted(p for p in mail.iterdir() if p.is_dir()):
        files = {}
        for sub in ("cur", "new"):
            for f in (box / sub).iterdir():
                base, _, flags = f.name.partition(":2,")
                files[base] = (flags, hashlib.sha256(norm(f.read_bytes())).hexdigest())
        boxes[box.name] = files
    return boxes


def find(mail: Path, box: str, content: bytes) -> Path:
    for sub in ("cur", "new"):
        for f in (mail / box / sub).iterdir():
            if norm(f.read_bytes()) == norm(content):
                return f
    raise AssertionError(f"message not found in {box}")


def subjects(box: dict) -> list[bytes]:
    return [subj for _, subj in box.values()]


def assert_quiet_resync(rc: Path, mail: Path, server) -> None:
    """Two more syncs: neither the Maildir, its sync state nor the server changes."""
    for _ in range(2):
        before = (maildir(mail), server_state(server), sync_states(mail))
        mbsync(rc)
        after = (maildir(mail), server_state(server), sync_states(mail))
        assert after[0] == before[0], "mbsync changed the Maildir on a no-op sync"
        assert after[1] == before[1], "mbsync changed the server on a no-op sync"
        assert after[2] == before[2], "mbsync changed its sync state on a no-op sync"


def sync_states(mail: Path) -> dict[str, str]:
    return {
        str(p.relative_to(mail)): p.read_text()
        for p in mail.rglob(".mbsyncstate")
    }


def test_mbsync_imaps_full_round_trip(mcp, tmp_path):
    counts = seed(mcp)
    rc = write_rc(tmp_path, mcp, "IMAPS", "LOGIN")
    mail = tmp_path / "mail"

    # 1. Pull: every server folder appears with every message, byte for byte.
    mbsync(rc)
    local = maildir(mail)
    server = server_state(mcp)
    assert set(local) == set(server), (set(local), set(server))
    for box, n in counts.items():
        assert len(local[box]) == n, (box, local[box])
    for f in SEED_INBOX:
        find(mail, "INBOX", f.read_bytes())
    umlaut = next(iter(local[UMLAUT_BOX].values()))
    assert "S" in umlaut[0], "\\Seen was not pulled as the Maildir S flag"

    # 2. Local changes: delete, flag, mark seen, add (INBOX and Archive).
    deleted, flagged, seen = SEED_INBOX[0], SEED_INBOX[1], SEED_INBOX[2]
    find(mail, "INBOX", deleted.read_bytes()).unlink()
    f = find(mail, "INBOX", flagged.read_bytes())
    f.rename(f.parent.parent / "cur" / (f.name.partition(":2,")[0] + ":2,F"))
    f = find(mail, "INBOX", seen.read_bytes())
    f.rename(f.parent.parent / "cur" / (f.name.partition(":2,")[0] + ":2,S"))
    (mail / "INBOX" / "new" / "1700000000.1_1.local").write_bytes(
        b"From: alice@example.com\nSubject: pushed by mbsync\n\nHello from the Maildir\n"
    )
    (mail / "Archive" / "cur" / "1700000000.2_1.local:2,S").write_bytes(
        b"From: alice@example.com\nSubject: archived by mbsync\n\nOld news\n"
    )
    # ... and server-side changes at the same time.
    conn = imap(mcp)
    try:
        conn.select("INBOX")
        assert conn.append("INBOX", None, None, b"Subject: from the server\r\n\r\nHi\r\n")[0] == "OK"
        assert conn.store("4", "+FLAGS", "(\\Answered)")[0] == "OK"
    finally:
        conn.logout()

    # 3. Sync both ways.
    mbsync(rc)
    server = server_state(mcp)
    inbox = server["INBOX"]
    assert len(inbox) == counts["INBOX"] - 1 + 2, inbox
    by_subject = {subj: flags for flags, subj in inbox.values()}

    def subject_of(path: Path) -> bytes:
        for line in path.read_bytes().splitlines():
            if line.lower().startswith(b"subject:"):
                return line.strip()
        raise AssertionError(path)

    assert subject_of(deleted) not in by_subject, "the deleted message is still on the server"
    assert "\\Flagged" in by_subject[subject_of(flagged)]
    assert "\\Seen" in by_subject[subject_of(seen)]
    assert b"Subject: pushed by mbsync" in by_subject
    assert b"Subject: from the server" in by_subject
    archive = {subj: flags for flags, subj in server["Archive"].values()}
    assert "\\Seen" in archive[b"Subject: archived by mbsync"]
    local = maildir(mail)
    assert len(local["INBOX"]) == len(inbox)
    assert any("R" in flags for flags, _ in local["INBOX"].values()), "\\Answered not pulled"
    find(mail, "INBOX", b"Subject: from the server\r\n\r\nHi\r\n")

    # 4. Second and third sync: nothing changes anywhere.
    assert_quiet_resync(rc, mail, mcp)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_mbsync_starttls(mcp, tmp_path, mech):
    counts = seed(mcp)
    rc = write_rc(tmp_path, mcp, "STARTTLS", mech)
    mail = tmp_path / "mail"
    mbsync(rc)
    local = maildir(mail)
    for box, n in counts.items():
        assert len(local[box]) == n, (box, local[box])
    assert_quiet_resync(rc, mail, mcp)
