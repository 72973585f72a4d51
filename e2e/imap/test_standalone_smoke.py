"""Smoke tests of `mcp standalone`: it starts with the sample resources, greets, lets a
sample user log in and out, re-applies resources idempotently and stops cleanly on Ctrl-C."""

from __future__ import annotations

import imaplib
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ALICE, BOB, SAMPLES, free_ports


def _applied(server) -> list[dict]:
    """The `resources applied` summaries (created/updated/unchanged) logged so far."""
    return [
        e["fields"]
        for e in server.log_events()
        if e.get("fields", {}).get("message") == "resources applied"
    ]


def test_greeting_is_ok_and_alice_logs_in_and_out(mcp):
    imap = imaplib.IMAP4(mcp.host, mcp.imap_port, timeout=10)
    assert imap.welcome.startswith(b"* OK"), imap.welcome
    typ, _ = imap.login(*ALICE)
    assert typ == "OK"
    typ, data = imap.logout()
    assert typ == "BYE", (typ, data)


def test_wrong_password_is_refused(mcp):
    imap = imaplib.IMAP4(mcp.host, mcp.imap_port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login(ALICE[0], "not-the-password")
    imap.logout()


def test_imaps_login_with_the_generated_certificate(mcp):
    ctx = ssl.create_default_context(cafile=str(mcp.data_dir / "tls" / "cert.pem"))
    imap = imaplib.IMAP4_SSL("localhost", mcp.imaps_port, ssl_context=ctx, timeout=10)
    assert imap.login(*BOB)[0] == "OK"
    assert imap.logout()[0] == "BYE"


def test_restart_on_same_data_dir_reapplies_nothing(mcp_factory, storage, tmp_path):
    data_dir = tmp_path / "data"
    first = mcp_factory(data_dir=data_dir)
    assert first.stop() == 0
    bob_hash = storage.password_hash(data_dir, BOB[0])
    assert _applied(first)[-1] == {
        "message": "resources applied",
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }

    second = mcp_factory(data_dir=data_dir)
    assert second.stop() == 0
    assert _applied(second)[-1]["unchanged"] == 2, _applied(second)
    assert _applied(second)[-1]["created"] == 0
    assert _applied(second)[-1]["updated"] == 0
    assert storage.password_hash(data_dir, BOB[0]) == bob_hash


def test_edited_password_is_applied_on_restart(mcp_factory, resources_copy, tmp_path):
    data_dir = tmp_path / "data"
    assert mcp_factory(data_dir=data_dir, resources=resources_copy).stop() == 0
    bob_file = resources_copy / "bob.yaml"
    bob_file.write_text(bob_file.read_text().replace("bob-demo", "bob-changed"))

    server = mcp_factory(data_dir=data_dir, resources=resources_copy)
    assert _applied(server)[-1]["updated"] == 1
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(*BOB)
    imap.logout()
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    assert imap.login(BOB[0], "bob-changed")[0] == "OK"
    imap.logout()


def test_ctrl_c_says_bye_to_open_sessions_and_exits_zero(mcp):
    with socket.create_connection((mcp.host, mcp.imap_port), 5) as s:
        s.settimeout(10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"* OK")
        mcp.proc.send_signal(signal.SIGINT)
        rest = f.read()  # until the server closes the connection
    assert b"* BYE" in rest, rest
    assert mcp.stop() == 0, mcp.log_text()


def test_second_process_on_the_same_data_dir_is_refused_and_changes_nothing(mcp, mcp_binary):
    """One process per data directory: a second one exits 1 naming the lock, before it
    applies any resource or touches the store (found by a newcomer: it re-hashed passwords
    of the running server's accounts and then failed on the port)."""
    out = subprocess.run(
        [str(mcp_binary), "standalone", "--resources", str(mcp.resources), "--data-dir", str(mcp.data_dir),
         "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0", "--lmtp", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
         "--rest", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 1, out
    assert "in use by another mcp process" in out.stderr, out.stderr
    assert "resources applied" not in out.stderr
    _login_works(mcp)


def test_ctrl_c_stops_the_server_even_when_its_stderr_is_closed(mcp_binary, tmp_path):
    """`cargo run ... 2>&1 | tee log` then Ctrl-C kills tee first: a failing log write must
    not stop the shutdown (found by a newcomer: SIGINT and SIGTERM were ignored)."""
    imap, imaps, metrics = free_ports(3)
    reader_r, writer_w = os.pipe()
    proc = subprocess.Popen(
        [str(mcp_binary), "standalone", "--resources", str(SAMPLES), "--data-dir", str(tmp_path / "d"),
         "--imap", f"127.0.0.1:{imap}", "--imaps", f"127.0.0.1:{imaps}", "--lmtp", "127.0.0.1:0",
         "--metrics", f"127.0.0.1:{metrics}", "--rest", "127.0.0.1:0"],
        stdout=writer_w, stderr=writer_w,
    )
    os.close(writer_w)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", imap), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        os.close(reader_r)  # the log reader goes away, like an interrupted `tee`
        m = imaplib.IMAP4("127.0.0.1", imap)
        assert m.login(*ALICE)[0] == "OK"
        m.logout()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _login_works(server) -> None:
    m = imaplib.IMAP4(server.host, server.imap_port)
    assert m.login(*ALICE)[0] == "OK"
    m.logout()
