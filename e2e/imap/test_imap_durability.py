"""UID allocation under concurrency and durability of acknowledged APPENDs across a crash
(RFC 9051 §2.3.1.1: UIDs strictly ascending, never reused; §6.3.12: OK means stored), on every
storage backend."""

from __future__ import annotations

import signal
import threading

from imaputil import connect, quote, simple_message, unique

CONNECTIONS = 20
PER_CONNECTION = 25


def test_concurrent_appends_get_unique_ascending_uids_rfc9051_2_3_1_1(shared_mcp):
    """20 connections APPEND 25 messages each to one mailbox at once: every APPEND succeeds,
    the APPENDUIDs are unique, ascending per connection, and exactly the mailbox's UIDs in
    sequence order (RFC 9051 §2.3.1.1, RFC 4315 §3)."""
    box = unique("race")
    with connect(shared_mcp) as c:
        c.create(box)
    conns = [connect(shared_mcp) for _ in range(CONNECTIONS)]
    results: dict[int, list[int]] = {}
    errors: list[str] = []
    barrier = threading.Barrier(CONNECTIONS)

    def worker(i: int) -> None:
        got = []
        try:
            barrier.wait(10)
            for j in range(PER_CONNECTION):
                r = conns[i].append(box, simple_message(f"c{i} m{j}"))
                if r.status != "OK":
                    errors.append(f"conn {i} msg {j}: {r}")
                    return
                got.append(int(r.code.split()[2]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"conn {i}: {e!r}")
        results[i] = got

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for c in conns:
        c.close()
    assert not errors, errors[:5]
    for i, got in results.items():
        assert got == sorted(got) and len(set(got)) == len(got), (i, got)
    all_uids = [u for got in results.values() for u in got]
    total = CONNECTIONS * PER_CONNECTION
    assert len(all_uids) == total and len(set(all_uids)) == total
    with connect(shared_mcp) as c:
        sel = c.select(box)
        assert f"{total} EXISTS".encode() in sel.untagged
        r = c.cmd("FETCH 1:* (UID)").ok().fetches()
        in_order = [int(r[seq]["UID"]) for seq in sorted(r)]
        assert in_order == sorted(set(all_uids)), "sequence order is UID order"
        assert all(a < b for a, b in zip(in_order, in_order[1:]))
        (line,) = c.cmd(f"STATUS {quote(box)} (UIDNEXT)").ok().lines("STATUS")
        assert int(line.rsplit(b" ", 1)[1].rstrip(b")")) > max(all_uids)


def test_acknowledged_append_survives_kill_9_rfc9051_6_3_12(mcp_factory, tmp_path):
    """A message whose APPEND was answered OK is there after `kill -9` and a restart on the
    same data (directory or PostgreSQL database), with its flags, UID and bytes; the UIDs of
    later APPENDs continue above it (RFC 9051 §6.3.12, §2.3.1.1)."""
    data_dir = tmp_path / "data"
    server = mcp_factory(data_dir=data_dir)
    box = unique("durable")
    messages = [simple_message(f"durable {i}", body=f"body {i}") for i in range(3)]
    with connect(server) as c:
        c.create(box)
        codes = [c.append(box, m, flags="\\Flagged $Kept").ok().code for m in messages]
        c.select(box)
        c.cmd("STORE 2 +FLAGS.SILENT (\\Seen)").ok()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    server.kill()

    again = mcp_factory(data_dir=data_dir)
    with connect(again) as c:
        sel = c.select(box)
        assert b"3 EXISTS" in sel.untagged
        validity = codes[0].split()[1]
        assert f"OK [UIDVALIDITY {validity}]".encode() in b"\n".join(sel.untagged)
        r = c.cmd("UID FETCH 1:* (FLAGS BODY.PEEK[])").ok().fetches()
        for seq, (code, msg) in enumerate(zip(codes, messages), start=1):
            assert r[seq]["UID"] == code.split()[2].encode()
            assert r[seq]["BODY[]"] == msg
        assert {f.decode() for f in r[2]["FLAGS"]} == {"\\Flagged", "$Kept", "\\Seen"}
        later = c.append(box, simple_message("after restart")).ok()
        assert int(later.code.split()[2]) > int(codes[-1].split()[2])
