"""Smoke tests of `mcp standalone`: it starts with the sample resources, greets, lets a
sample user log in and out, re-applies resources idempotently and stops cleanly on Ctrl-C."""

from __future__ import annotations

import imaplib
import signal
import socket
import ssl

import pytest

from conftest import ALICE, BOB


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
