"""Hostile framing: overlong lines, unterminated and oversized literals, garbage bytes.

Every case must end in a tagged BAD/NO, an untagged BAD (no tag to answer) or `* BYE` with a
reason -- never a hang or a crash -- and a second, independent connection must still work."""

from __future__ import annotations

import socket

import pytest

from rawimap import Raw, assert_healthy, seed, wait_closed

LINE_LIMIT = 64 * 1024
LITERAL_LIMIT = 64 * 1024 * 1024


@pytest.fixture
def server(mcp):
    seed(mcp)
    return mcp


@pytest.mark.parametrize("newline", [True, False], ids=["with-crlf", "without-crlf"])
def test_overlong_command_line_gets_bye(server, newline):
    raw = Raw(server)
    line = b"a NOOP " + b"x" * (LINE_LIMIT + 1024)
    try:
        raw.send(line + (b"\r\n" if newline else b""))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before reading everything
    data = wait_closed(raw, 10)
    assert b"* BYE" in data and b"too long" in data, data[-300:]
    assert_healthy(server)


def test_line_just_under_the_limit_is_parsed(server):
    raw = Raw(server)
    raw.login()
    # A long but legal line: SEARCH with a long quoted string.
    needle = b"q" * (LINE_LIMIT - 200)
    _, tagged = raw.cmd(b"s", b'SEARCH SUBJECT "' + needle + b'"')
    assert tagged.startswith(b"s BAD") or tagged.startswith(b"s OK"), tagged[:200]
    _, tagged = raw.cmd(b"n", b"NOOP")
    assert tagged.startswith(b"n OK"), tagged
    raw.close()
    assert_healthy(server)


def test_unterminated_literal_then_close(server):
    raw = Raw(server)
    raw.login()
    raw.send(b"a APPEND INBOX {100}\r\n")
    assert raw.line().startswith(b"+"), "expected a continuation request"
    raw.send(b"0123456789")
    raw.sock.shutdown(socket.SHUT_WR)
    # The server sees EOF inside the literal: it must end the session promptly.
    data = wait_closed(raw, 10)
    assert b"a OK" not in data, data
    raw.close()
    assert_healthy(server)
    # Nothing was appended.
    seed_count_check(server, expected=2)


def seed_count_check(server, expected: int) -> None:
    import imaplib

    from conftest import ALICE

    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    try:
        imap.login(*ALICE)
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == expected, data
    finally:
        imap.logout()


def test_unterminated_literal_abrupt_close(server):
    raw = Raw(server)
    raw.login()
    raw.send(b"a APPEND INBOX {100}\r\n")
    assert raw.line().startswith(b"+")
    raw.send(b"0123456789")
    raw.close()
    assert_healthy(server)
    seed_count_check(server, expected=2)


def test_sync_literal_over_the_limit_is_toobig_and_session_continues(server):
    raw = Raw(server)
    raw.login()
    _, tagged = raw.cmd(b"a", b"APPEND INBOX {%d}" % (LITERAL_LIMIT + 1))
    assert tagged.startswith(b"a NO [TOOBIG]"), tagged
    _, tagged = raw.cmd(b"b", b"NOOP")
    assert tagged.startswith(b"b OK"), tagged
    # Also the maximum a u32 can hold, and beyond it.
    _, tagged = raw.cmd(b"c", b"APPEND INBOX {4294967295}")
    assert tagged.startswith(b"c NO [TOOBIG]") or tagged.startswith(b"c BAD"), tagged
    _, tagged = raw.cmd(b"d", b"APPEND INBOX {99999999999999999999}")
    assert tagged.startswith(b"d NO") or tagged.startswith(b"d BAD"), tagged
    _, tagged = raw.cmd(b"e", b"SELECT INBOX")
    assert tagged.startswith(b"e OK"), tagged
    raw.close()
    assert_healthy(server)
    seed_count_check(server, expected=2)


def test_non_sync_literal_over_the_limit_is_bye(server):
    raw = Raw(server)
    raw.login()
    raw.send(b"a APPEND INBOX {%d+}\r\n" % (LITERAL_LIMIT + 1))
    raw.send(b"x" * 4096)
    data = wait_closed(raw, 10)
    assert b"* BYE" in data, data
    assert b"a OK" not in data
    assert_healthy(server)
    seed_count_check(server, expected=2)


GARBAGE = [
    b"\x00\x00\x00\x00",
    b"\x00 NOOP",
    b"a\x00b NOOP",
    b"a NOOP\x00",
    b"\xff\xfe\xfd\xfc LOGIN a b",
    b"* NOOP",
    b"+ NOOP",
    b"a{ NOOP",
    b"a+ NOOP",
    b"a% NOOP",
    b'"a" NOOP',
    b"(a) NOOP",
    b"",
    b"      ",
    b"a",
    b"a ",
    b"a NOSUCHCOMMAND",
    b"a LOGIN",
    b'a LOGIN "unterminated',
    b"a LOGIN {3}x",
    b"a LOGIN {-1}",
    b"a LOGIN {abc}",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain port
    b"GET / HTTP/1.1",
    bytes(range(256)),
]


def test_garbage_lines_are_bad_and_the_session_continues(server):
    raw = Raw(server)
    for i, junk in enumerate(GARBAGE):
        probe = b"zz%d" % i
        raw.send(junk + b"\r\n" + probe + b" NOOP\r\n")
        try:
            untagged, tagged = raw.until_tagged(probe)
        except EOFError as e:
            pytest.fail(f"server closed the connection after {junk!r}: {e}")
        assert tagged.startswith(probe + b" OK"), (junk, tagged)
        answers = [ln for ln in untagged if ln.startswith(b"* BAD") or b" BAD " in ln or b" NO " in ln]
        if junk.strip():
            assert answers, f"no BAD/NO for {junk!r}: {untagged!r}"
    raw.close()
    assert_healthy(server)


def test_random_binary_noise_never_crashes(server):
    import random

    rng = random.Random(1234)
    for _ in range(20):
        raw = Raw(server)
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
        try:
            raw.send(noise + b"\r\nzz9 NOOP\r\n")
            untagged, tagged = raw.until_tagged(b"zz9")
            assert tagged.startswith(b"zz9 "), tagged
        except EOFError as e:
            assert b"* BYE" in str(e).encode(), e
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw.close()
    assert_healthy(server)
