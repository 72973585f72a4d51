"""Several dataplane processes on one PostgreSQL database (issue 6, docs/storage.md): two
`mcp standalone` replicas share the metadata store and the blobs, and a client sees one
consistent mailbox whichever replica it reaches.

- Changes cross replicas through PostgreSQL LISTEN/NOTIFY: IDLE and NOOP on replica A
  report what a client did on replica B (EXISTS, FETCH FLAGS, EXPUNGE). The tests print how
  long that took (the goal is under 1 s); they do not assert times.
- UIDs and MODSEQs stay strictly monotonic, and no UID is given twice, under concurrent
  APPEND, COPY, MOVE and STORE from clients of both replicas.

Only PostgreSQL has replicas: these tests need MCP_TEST_POSTGRES_URL (required in CI)."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
import conftest  # noqa: E402
from imaputil import connect, quote, simple_message, unique  # noqa: E402


@pytest.fixture
def storage():
    """PostgreSQL only: overrides the sqlite/postgres parametrisation of e2e/conftest.py."""
    if not os.environ.get("MCP_TEST_POSTGRES_URL"):
        if os.environ.get("MCP_REQUIRE_POSTGRES") == "1":
            pytest.fail("MCP_REQUIRE_POSTGRES=1 but MCP_TEST_POSTGRES_URL is not set")
        pytest.skip("replicas need PostgreSQL: set MCP_TEST_POSTGRES_URL")
    with conftest._fresh_storage("postgres") as s:
        yield s


@pytest.fixture
def replicas(mcp_factory, storage, tmp_path):
    """Two replicas on one database, sharing one blob store: the storage's S3 prefix when
    MCP_TEST_S3_ENDPOINT is set, else one blob directory."""
    shared = () if storage.s3 else ("--blob-dir", str(tmp_path / "blobs"))
    a = mcp_factory(data_dir=tmp_path / "a", extra_args=shared)
    b = mcp_factory(data_dir=tmp_path / "b", extra_args=shared)
    return a, b


def idle(c):
    tag = c.send_cmd("IDLE")
    assert c.readline().startswith(b"+ "), "IDLE continuation"
    return tag


def first_change_crosses(a, b, box: str) -> None:
    """Waits until replica A's change listener is connected: B appends until A's NOOP sees
    it (the listener connects in the background at start-up)."""
    with connect(a) as ca, connect(b) as cb:
        ca.select(box)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cb.append(box, simple_message("warm-up")).ok()
            time.sleep(0.2)
            if ca.cmd("NOOP").ok().lines("EXISTS"):
                return
        pytest.fail("no change of replica B ever reached replica A")


def test_idle_on_one_replica_reports_append_store_and_expunge_on_the_other(replicas):
    a, b = replicas
    box = unique("idle")
    with connect(b) as cb:
        cb.create(box)
    first_change_crosses(a, b, box)
    with connect(a) as ca, connect(b) as cb:
        r = ca.select(box)
        exists = int(r.lines("EXISTS")[0].split()[0])
        tag = idle(ca)
        cb.select(box)
        latencies = {}

        t = time.monotonic()
        cb.append(box, simple_message("pushed")).ok()
        assert ca.readline() == f"* {exists + 1} EXISTS".encode()
        latencies["APPEND -> EXISTS"] = time.monotonic() - t

        t = time.monotonic()
        cb.cmd(f"STORE {exists + 1} +FLAGS (\\Flagged)").ok()
        line = ca.readline()
        assert re.fullmatch(rb"\* %d FETCH \(.*FLAGS \(\\Flagged\).*\)" % (exists + 1), line), line
        latencies["STORE -> FETCH"] = time.monotonic() - t

        t = time.monotonic()
        cb.cmd(f"STORE {exists + 1} +FLAGS.SILENT (\\Deleted)").ok()
        cb.cmd("EXPUNGE").ok()
        lines = [ca.readline()]
        while not lines[-1].endswith(b"EXPUNGE"):
            lines.append(ca.readline())
        assert lines[-1] == f"* {exists + 1} EXPUNGE".encode(), lines
        latencies["EXPUNGE -> EXPUNGE"] = time.monotonic() - t

        ca.send(b"DONE\r\n")
        assert ca.collect(tag).status == "OK"
    print("\ncross-replica IDLE latency: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in latencies.items()))


def test_noop_on_one_replica_reports_changes_made_on_the_other(replicas):
    a, b = replicas
    box = unique("noop")
    with connect(a) as ca:
        ca.create(box)
    first_change_crosses(a, b, box)
    with connect(a) as ca, connect(b) as cb:
        exists = int(ca.select(box).lines("EXISTS")[0].split()[0])
        cb.select(box)

        def noop_until(wanted: bytes) -> tuple[list[bytes], float]:
            t = time.monotonic()
            seen: list[bytes] = []
            while time.monotonic() - t < 20:
                seen += ca.cmd("NOOP").ok().untagged
                if any(re.fullmatch(wanted, u) for u in seen):
                    return seen, time.monotonic() - t
                time.sleep(0.02)
            pytest.fail(f"NOOP never reported {wanted!r}: {seen}")

        cb.append(box, simple_message("seen by noop")).ok()
        _, appended = noop_until(b"%d EXISTS" % (exists + 1))
        cb.cmd(f"STORE {exists + 1} +FLAGS (\\Seen)").ok()
        _, stored = noop_until(rb"%d FETCH \(.*FLAGS \(\\Seen\).*\)" % (exists + 1))
        print(f"\ncross-replica NOOP: APPEND seen after {appended * 1000:.1f} ms, STORE after {stored * 1000:.1f} ms")

        # And both replicas agree on the mailbox.
        fa = ca.cmd("UID FETCH 1:* (FLAGS)").ok().untagged
        fb = cb.cmd("UID FETCH 1:* (FLAGS)").ok().untagged
        assert fa == fb


def test_uids_and_modseqs_stay_monotonic_under_concurrent_writes_on_two_replicas(replicas):
    """Four clients on each replica APPEND, STORE, COPY and MOVE between two shared folders.
    Every UID handed out (APPENDUID, COPYUID) is unique in its mailbox, each client sees
    UIDs ascending, HIGHESTMODSEQ never goes back, and at the end both replicas show the
    same messages with the same UIDs, flags and MODSEQs."""
    a, b = replicas
    inbox, archive = unique("inbox"), unique("archive")
    with connect(a) as c:
        c.create(inbox)
        c.create(archive)
    errors: list[str] = []
    handed: dict[str, list[int]] = {inbox: [], archive: []}
    lock = threading.Lock()

    def uids_of(text: str, code: str) -> list[int]:
        m = re.search(rf"\[{code} \d+ (?:\S+ )?([\d:,]+)\]", text)
        assert m, text
        out: list[int] = []
        for part in m.group(1).split(","):
            lo, _, hi = part.partition(":")
            out += list(range(int(lo), int(hi or lo) + 1))
        return out

    def client(server, i: int) -> None:
        try:
            with connect(server) as c:
                c.select(inbox)
                last = {inbox: 0, archive: 0}
                highest = 0
                for k in range(25):
                    r = c.append(inbox, simple_message(f"c{i} m{k}"))
                    assert r.status == "OK", r
                    (uid,) = uids_of(r.text, "APPENDUID")
                    assert uid > last[inbox], (uid, last)
                    last[inbox] = uid
                    with lock:
                        handed[inbox].append(uid)
                    c.cmd(f"UID STORE {uid} +FLAGS (\\Seen $c{i})").ok()
                    if k % 3 == 0:
                        r = c.cmd(f"UID COPY {uid} {quote(archive)}").ok()
                        (dest,) = uids_of(r.text, "COPYUID")
                        assert dest > last[archive]
                        last[archive] = dest
                        with lock:
                            handed[archive].append(dest)
                    elif k % 3 == 1:
                        r = c.cmd(f"UID MOVE {uid} {quote(archive)}").ok()
                        moved = [u for u in r.untagged if b"COPYUID" in u] + [r.text.encode()]
                        (dest,) = uids_of(b" ".join(moved).decode(), "COPYUID")
                        assert dest > last[archive]
                        last[archive] = dest
                        with lock:
                            handed[archive].append(dest)
                    s = c.cmd(f"STATUS {quote(archive)} (HIGHESTMODSEQ)").ok()
                    m = re.search(rb"HIGHESTMODSEQ (\d+)", s.lines("STATUS")[0])
                    assert m
                    assert int(m.group(1)) >= highest, "HIGHESTMODSEQ went back"
                    highest = int(m.group(1))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i} on port {server.imap_port}: {e!r}")

    threads = [threading.Thread(target=client, args=(s, i)) for i, s in enumerate([a, b] * 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for box, uids in handed.items():
        assert len(uids) == len(set(uids)), f"{box}: a UID was handed out twice"

    def view(server, box):
        with connect(server) as c:
            c.select(box)
            # FETCH MODSEQ enables CONDSTORE, which adds `OK [HIGHESTMODSEQ n]` (RFC 7162 §3.1).
            return sorted(c.cmd("UID FETCH 1:* (UID FLAGS MODSEQ)").ok().lines("FETCH"))

    for box in (inbox, archive):
        va, vb = view(a, box), view(b, box)
        assert va == vb, f"{box}: the replicas disagree"
    assert len(view(a, inbox)) == 8 * 25 - 8 * 8, "the moved messages left INBOX"
    assert len(view(a, archive)) == 8 * 17
