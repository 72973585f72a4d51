"""Helpers of the real-client suite: seeding alice's account over IMAP and reading the
server's state back with imaplib."""

from __future__ import annotations

import imaplib
import re
import ssl
from pathlib import Path

from conftest import ALICE

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

# 04-headers-only has no blank line after its header: mbsync skips such messages
# ("incomplete header"), whatever the server, so it is left out of the seed.
SEED_INBOX = [
    f for f in sorted(CORPUS.glob("*.eml")) if not f.name.startswith("04-")
][:15]
SEED_ARCHIVE = sorted(CORPUS.glob("*.eml"))[20:25]
# "Entwürfe" in modified UTF-7: exercises non-ASCII folder names through the clients.
UMLAUT_BOX = "Entw&APw-rfe"


def imap(server) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(server.host, server.imap_port, timeout=30)
    conn.login(*ALICE)
    return conn


def imaps_context(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.data_dir / "tls" / "cert.pem"))


def seed(server) -> dict[str, int]:
    """Fills alice's INBOX, Archive and Entwürfe with 21 corpus messages; returns counts."""
    conn = imap(server)
    try:
        for f in SEED_INBOX:
            assert conn.append("INBOX", None, None, f.read_bytes())[0] == "OK"
        for f in SEED_ARCHIVE:
            assert conn.append("Archive", None, None, f.read_bytes())[0] == "OK"
        assert conn.create(UMLAUT_BOX)[0] == "OK"
        assert conn.append(UMLAUT_BOX, "(\\Seen)", None, b"Subject: umlaut box\r\n\r\nHallo\r\n")[0] == "OK"
    finally:
        conn.logout()
    return {"INBOX": len(SEED_INBOX), "Archive": len(SEED_ARCHIVE), UMLAUT_BOX: 1}


def server_state(server) -> dict[str, dict[int, tuple[frozenset[str], bytes]]]:
    """Every mailbox of alice: {name: {uid: (flags, subject header)}}."""
    conn = imap(server)
    state = {}
    try:
        typ, lines = conn.list()
        assert typ == "OK"
        names = []
        for line in lines:
            m = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', line)
            assert m, line
            names.append(m.group(1).decode().strip('"'))
        for name in names:
            typ, data = conn.select(f'"{name}"', readonly=True)
            assert typ == "OK", (name, data)
            box = {}
            if int(data[0]):
                typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                assert typ == "OK"
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    meta, subject = item
                    uid = int(re.search(rb"UID (\d+)", meta).group(1))
                    flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
                    box[uid] = (frozenset(flags), subject.strip())
            state[name] = box
    finally:
        conn.logout()
    return state
