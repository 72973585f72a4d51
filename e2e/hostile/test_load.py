"""Hostile load: 10,000 pipelined commands, a client that floods FETCHes and never reads,
and many connections opened and dropped abruptly."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import urllib.request

from rawimap import Raw, assert_healthy, rss_kib, seed

from conftest import ALICE


def test_10000_pipelined_commands_are_answered_in_order(mcp):
    seed(mcp)
    raw = Raw(mcp, timeout=60)
    raw.login()
    _, tagged = raw.cmd(b"s", b"SELECT INBOX")
    assert tagged.startswith(b"s OK")
    n = 10_000
    batch = b"".join(
        (b"p%d NOOP\r\n" % i) if i % 2 == 0 else (b"p%d FETCH 1:2 (FLAGS UID)\r\n" % i)
        for i in range(n)
    )
    # One write; read concurrently so neither side's buffers deadlock.
    sender = threading.Thread(target=raw.sock.sendall, args=(batch,), daemon=True)
    sender.start()
    fetches = 0
    for i in range(n):
        untagged, tagged = raw.until_tagged(b"p%d" % i)
        assert tagged.startswith(b"p%d OK" % i), (i, tagged)
        for u in untagged:
            # Tagged responses of other commands would show up here if out of order.
            assert u.startswith(b"* "), (i, u)
        fetches += sum(1 for u in untagged if b" FETCH " in u)
    sender.join(10)
    assert fetches == n  # two FETCH lines for each of the n/2 FETCH commands
    _, tagged = raw.cmd(b"z", b"LOGOUT")
    assert tagged.startswith(b"z OK")
    assert_healthy(mcp)


def test_fetch_flood_without_reading_keeps_memory_bounded(mcp):
    big = (
        b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n"
        + (b"x" * 998 + b"\r\n") * 4096  # ~4 MiB
    )
    seed(mcp)
    seed(mcp, [big])
    pid = mcp.proc.pid
    # Warm up: one normal FETCH of the big message, so caches and allocator pools exist.
    raw = Raw(mcp, timeout=30)
    raw.login()
    raw.cmd(b"s", b"SELECT INBOX")
    raw.cmd(b"w", b"FETCH 1:* (BODY.PEEK[])")
    raw.close()
    before = rss_kib(pid)

    flood = Raw(mcp, timeout=30)
    flood.login()
    flood.cmd(b"s", b"SELECT INBOX")
    flood.sock.setblocking(False)
    payload = b"".join(b"f%d FETCH 1:* (BODY[])\r\n" % i for i in range(10_000))
    sent = 0
    deadline = time.monotonic() + 8
    while sent < len(payload) and time.monotonic() < deadline:
        try:
            sent += flood.sock.send(payload[sent : sent + 65536])
        except BlockingIOError:
            time.sleep(0.05)
    # Let the server do whatever it will with what it got; sample its memory meanwhile.
    peak = before
    for _ in range(20):
        time.sleep(0.2)
        peak = max(peak, rss_kib(pid))
    # Other clients are served while the flooder is stuck.
    t0 = time.monotonic()
    assert_healthy(mcp)
    assert time.monotonic() - t0 < 10
    peak = max(peak, rss_kib(pid))
    growth_mib = (peak - before) / 1024
    print(f"flood: sent {sent} of {len(payload)} bytes; RSS {before} -> {peak} KiB")
    assert growth_mib < 200, f"RSS grew by {growth_mib:.0f} MiB ({before} -> {peak} KiB)"
    # Dropping the flooder frees its session.
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    flood.close()
    assert_healthy(mcp)


def _open_connections(mcp) -> float:
    url = f"http://{mcp.host}:{mcp.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("mcp_imap_connections "):
            return float(line.split()[1])
    raise AssertionError("no mcp_imap_connections gauge:\n" + text)


def test_many_connections_dropped_abruptly(mcp):
    seed(mcp)
    rst = struct.pack("ii", 1, 0)
    socks = []
    for i in range(300):
        port = mcp.imaps_port if i % 5 == 4 else mcp.imap_port
        s = socket.create_connection((mcp.host, port), 10)
        kind = i % 6
        if kind == 0:
            pass  # close before reading the greeting
        elif kind == 1:
            s.sendall(b"a LOGIN alice@example.com alice-demo\r\nb SELECT INBOX\r\nc FETCH 1:* (BODY[])\r\n")
        elif kind == 2:
            s.sendall(b"a APPEND INBOX {1000}\r\n")  # unterminated literal
        elif kind == 3:
            s.sendall(b"a NOOP" )  # half a line
        elif kind == 4:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # half a TLS handshake (on IMAPS)
        else:
            s.sendall(b"a STARTTLS\r\n")
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)
        socks.append(s)
        if len(socks) >= 50:
            for t in socks:
                t.close()
            socks.clear()
    for t in socks:
        t.close()
    assert_healthy(mcp)
    # Every dropped session ends: the open-connections gauge returns to zero.
    deadline = time.monotonic() + 15
    while (n := _open_connections(mcp)) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert n == 0, f"{n} connections still open after all clients left"
    # The server still does TLS properly.
    ctx = ssl.create_default_context(cafile=str(mcp.data_dir / "tls" / "cert.pem"))
    with socket.create_connection((mcp.host, mcp.imaps_port), 10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert t.recv(100).startswith(b"* OK")
    assert ALICE
