"""Differential test: scripted IMAP sessions against Dovecot and against MCP.

Each script of scripts.py runs once against Dovecot (alice/alice-demo, fresh maildir) and
once against a fresh `mcp standalone` (alice@example.com/alice-demo, the conftest fixture,
per storage backend). Responses are normalised (imapdiff.normalise; every rule is justified
there) and compared command by command. A difference fails the test unless ALLOW_DIFF lists
it with a reason.

Needs Dovecot (e2e/services/dovecot.sh start, run by the fixture; idempotent) at
127.0.0.1:${MCP_DOVECOT_PORT:-11143}, state under ${MCP_SERVICES_DIR:-/tmp/mcp-services}.
Run: python3 -m pytest e2e/differential/test_sessions_vs_dovecot.py -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from imapdiff import compare, run_script  # noqa: E402
from scripts import ROOT, SCRIPTS  # noqa: E402

from conftest import ALICE  # noqa: E402

DOVECOT_PORT = int(os.environ.get("MCP_DOVECOT_PORT", "11143"))
DOVECOT_BASE = os.path.join(os.environ.get("MCP_SERVICES_DIR", "/tmp/mcp-services"), "dovecot")
DOVECOT_USER = ("alice", "alice-demo")

# Known, accepted differences: {(script, command number): reason}. The command number is
# the `dN` tag of the command (1 = first command of the script, seed included).
# Only for implementation choices or places where Dovecot is arguably wrong; MCP bugs
# are fixed instead.
_NONEXISTENT = (
    "MCP adds the RFC 5530 response code [NONEXISTENT] to the NO; Dovecot sends a bare NO "
    "for EXAMINE/STATUS of a missing mailbox. The code is optional; the status matches."
)
_BINARY_NESTED = (
    "BINARY on a message/rfc822 part or on the whole message: Dovecot re-encodes every "
    "nested entity to binary (decodes base64/QP, rewrites Content-Transfer-Encoding), and "
    "answers `* 27 FETCH (UID 27)` before NO [UNKNOWN-CTE] for the x-uuencode message. "
    "RFC 3516 §4.2 only decodes the section's own encoding; MCP returns such entities "
    "unchanged (they have none), which is what the RFC asks."
)
_STORE_UNCHANGED = (
    "Non-silent STORE: MCP sends FETCH FLAGS for every message of the set, Dovecot only for "
    "messages whose flags changed. RFC 9051 §6.4.6 allows both (the FETCH carries the "
    "resulting flags, which are identical)."
)
_KEYWORD_CASE = (
    "Keyword spelling: Dovecot reuses the mailbox's first spelling (`newkeyword`) for "
    "`NEWKEYWORD`, MCP keeps the client's. Flags are case-insensitive (RFC 9051 §2.3.2), "
    "so both name the same keyword."
)
_LIST_EXT_ATTRS = (
    "Extended LIST without RETURN (CHILDREN): MCP always returns \\HasChildren/"
    "\\HasNoChildren (RFC 5258 §4: servers MAY return child info unrequested) and the "
    "special-use attributes (RFC 6154 §2), Dovecot only the requested ones."
)
_RECENT = (
    "NEW/OLD are defined through \\Recent, which IMAP4rev2 removed (RFC 9051 Appendix "
    "E.3); MCP has no recent messages, so NEW is empty and OLD is everything."
)
ALLOW_DIFF: dict[tuple[str, int], str] = {
    ("fetch_items", 64): (
        "HEADER.FIELDS.NOT of a header-only message without the blank line: Dovecot omits "
        "the blank line (but adds it for HEADER.FIELDS); RFC 9051 §6.4.5 says the subset "
        "header includes it, as MCP returns."
    ),
    ("fetch_items", 71): _BINARY_NESTED,
    ("fetch_items", 72): _BINARY_NESTED,
    ("fetch_items", 73): _BINARY_NESTED,
    ("fetch_items", 74): _BINARY_NESTED,
    ("fetch_items", 75): _BINARY_NESTED,
    ("fetch_items", 76): _BINARY_NESTED,
    ("mailboxes", 25): _NONEXISTENT,
    ("mailboxes", 39): _LIST_EXT_ATTRS,
    ("mailboxes", 40): _LIST_EXT_ATTRS,
    ("mailboxes", 41): _LIST_EXT_ATTRS,
    ("mailboxes", 42): _LIST_EXT_ATTRS,
    ("mailboxes", 48): (
        "CREATE Archive2/ (trailing separator): Dovecot (maildir LAYOUT=fs) makes a "
        "\\Noselect directory, MCP a selectable mailbox; RFC 9051 §6.3.4 allows both."
    ),
    ("mailboxes", 49): (
        "RENAME onto the auto-created Drafts: Dovecot lets it succeed because its "
        "auto=create folders exist only lazily; RFC 9051 §6.3.6 says renaming onto an "
        "existing name is an error, as MCP answers (NO [ALREADYEXISTS])."
    ),
    ("search", 55): (
        "SEARCH KEYWORD of an unknown keyword: Dovecot registers the keyword and announces "
        "new FLAGS/PERMANENTFLAGS; a search does not change the mailbox in MCP."
    ),
    ("search", 72): (
        "SEARCH ON compares the INTERNALDATE's date in its own zone (RFC 9051 §6.4.4, "
        "\"disregarding time and timezone\"); Dovecot's maildir stores only a timestamp and "
        "compares in the server's zone, so 02-Feb-2021 01:01 +0130 is 1 Feb there."
    ),
    ("search", 74): (
        "SENTBEFORE on messages without a Date: header: Dovecot treats them as sent at the "
        "epoch, MCP as never matching. RFC 9051 §6.4.4 does not say."
    ),
    ("search", 91): _RECENT,
    ("search", 92): _RECENT,
    ("select_examine", 46): _NONEXISTENT,
    ("store_flags", 43): _STORE_UNCHANGED,
    ("store_flags", 50): _KEYWORD_CASE,
    ("store_flags", 51): _KEYWORD_CASE,
    ("store_flags", 52): _STORE_UNCHANGED,
    ("store_flags", 57): _STORE_UNCHANGED,
    ("store_flags", 60): (
        "STORE in a mailbox opened with EXAMINE: Dovecot answers OK and changes nothing; "
        "MCP answers NO [READ-ONLY] (RFC 5530 §3: the mailbox is read-only)."
    ),
    ("store_flags", 62): _KEYWORD_CASE,
    ("store_flags", 63): _STORE_UNCHANGED,
}


@pytest.fixture(scope="session")
def dovecot():
    subprocess.run([os.path.join(ROOT, "e2e", "services", "dovecot.sh"), "start"], check=True)
    return ("127.0.0.1", DOVECOT_PORT)


def _fresh_dovecot_user() -> None:
    """Removes alice's Dovecot home so the script starts from a new account (UIDs from 1,
    only the auto-created folders), like MCP's fresh data directory."""
    shutil.rmtree(os.path.join(DOVECOT_BASE, "mail", DOVECOT_USER[0]), ignore_errors=True)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_session_matches_dovecot(name, dovecot, mcp):
    script = SCRIPTS[name]
    _fresh_dovecot_user()
    theirs = run_script(*dovecot, *DOVECOT_USER, script)
    ours = run_script(mcp.host, mcp.imap_port, *ALICE, script)
    assert len(theirs) == len(ours) == len(script)
    failures, allowed = compare(name, theirs, ours, ALLOW_DIFF)
    if allowed:
        print("\n".join(allowed))
    assert not failures, f"{len(failures)} command(s) differ:\n" + "\n".join(failures)
