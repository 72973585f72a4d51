"""LMTP (RFC 2033) against a real `mcp standalone`, from raw sockets and Python's
smtplib.LMTP: per-recipient replies, pipelining, BDAT (RFC 3030), SIZE (RFC 1870), and
hostile input that must get a clear error and leave the connection usable."""

from __future__ import annotations

import smtplib
import urllib.request
import uuid

from conftest import ALICE, BOB
from lmtputil import Lmtp, inbox, lmtp  # noqa: F401 (fixture)


def _subject() -> str:
    return f"lmtp {uuid.uuid4().hex}"


def _count(mcp, creds, subject: str) -> int:
    return sum(f"Subject: {subject}\r\n".encode() in m for m in inbox(mcp, creds))


def test_smtplib_lmtp_sees_the_extensions_and_delivers(mcp):
    subject = _subject()
    with smtplib.LMTP() as client:
        client.connect(mcp.host, mcp.lmtp_port)
        code, _ = client.ehlo("client.test")  # smtplib.LMTP sends LHLO
        assert code == 250
        for ext in ("pipelining", "enhancedstatuscodes", "8bitmime", "smtputf8", "size", "chunking"):
            assert client.has_extn(ext), ext
        refused = client.sendmail("sender@example.net", ["alice@example.com"],
                                  f"Subject: {subject}\r\n\r\nhi\r\n")
        assert refused == {}
        try:
            client.sendmail("sender@example.net", ["nobody@example.com"], "Subject: x\r\n\r\nx\r\n")
            raise AssertionError("unknown recipient accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["nobody@example.com"]
            assert code == 550 and text.startswith(b"5.1.1 "), e.recipients
    assert _count(mcp, ALICE, subject) == 1


def test_pipelined_burst_gets_one_reply_per_recipient_in_order(mcp, lmtp):
    subject = _subject()
    lmtp.send(
        b"MAIL FROM:<sender@example.net>\r\n"
        b"RCPT TO:<alice@example.com>\r\n"
        b"RCPT TO:<nobody@example.com>\r\n"
        b"RCPT TO:<bob@example.com>\r\n"
        b"DATA\r\n"
    )
    assert lmtp.replies(5) == ["250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354 Start"]
    lmtp.send(f"Subject: {subject}\r\n\r\n..dot\r\n.\r\nNOOP\r\n".encode())
    first, second = lmtp.reply(), lmtp.reply()
    assert first[0].startswith(b"250 2.0.0 <alice@example.com>"), first
    assert second[0].startswith(b"250 2.0.0 <bob@example.com>"), second
    assert lmtp.replies(1) == ["250 2.0.0"]
    [msg] = [m for m in inbox(mcp, BOB) if subject.encode() in m]
    assert msg.endswith(b"\r\n\r\n.dot\r\n"), msg
    assert _count(mcp, ALICE, subject) == 1


def test_bdat_chunks_deliver_and_reply_per_recipient_after_last(mcp, lmtp):
    subject = _subject()
    head = f"Subject: {subject}\r\n\r\n".encode()
    lmtp.send(
        b"MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
        + f"BDAT {len(head)}\r\n".encode() + head
        + b"BDAT 6 LAST\r\nbody\r\n"
    )
    assert lmtp.replies(6) == ["250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.0.0", "250 2.0.0", "250 2.0.0"]
    for creds in (ALICE, BOB):
        [msg] = [m for m in inbox(mcp, creds) if subject.encode() in m]
        assert msg.startswith(b"Return-Path: <>\r\n") and msg.endswith(head + b"body\r\n"), msg


def test_declared_size_over_the_advertised_limit_is_refused_at_mail(mcp, lmtp):
    other = Lmtp(mcp.host, mcp.lmtp_port)
    lhlo = other.lhlo()
    other.close()
    [limit] = [int(l.split()[1]) for l in lhlo if l[4:].startswith(b"SIZE ")]
    lmtp.send(f"MAIL FROM:<a@example.net> SIZE={limit + 1}\r\n".encode())
    assert lmtp.replies(1) == ["552 5.3.4"]
    lmtp.send(f"MAIL FROM:<a@example.net> SIZE={limit}\r\nRSET\r\n".encode())
    assert lmtp.replies(2) == ["250 2.1.0", "250 2.0.0"]


def test_hostile_input_gets_clear_errors_and_the_connection_stays_usable(mcp, lmtp):
    cases = [
        (b"EHLO client.test\r\n", "500 5.5.1"),
        (b"HELO client.test\r\n", "500 5.5.1"),
        (b"XYZZY\r\n", "500 5.5.2"),
        (b"\x00\xff\xfe garbage\r\n", "500 5.5.2"),
        (b"NOOP " + b"a" * 100_000 + b"\r\n", "500 5.5.2"),
        (b"DATA\r\n", "503 5.5.1"),
        (b"RCPT TO:<alice@example.com>\r\n", "503 5.5.1"),
        (b"MAIL FROM:<a@example.net> DSN=evil\r\n", "555 5.5.4"),
        (b"BDAT 12 LAST\r\nQUIT\r\nQUIT\r\n", "503 5.5.1"),
        (b"VRFY alice\r\n", "252 2.5.0"),
    ]
    for data, want in cases:
        lmtp.send(data + b"NOOP\r\n")
        assert lmtp.replies(2) == [want, "250 2.0.0"], data[:40]
    # A transaction still works on the same connection.
    subject = _subject()
    lmtp.send(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
              f"Subject: {subject}\r\n\r\nx\r\n.\r\n".encode())
    assert lmtp.replies(4) == ["250 2.1.0", "250 2.1.5", "354 Start", "250 2.0.0"]
    assert _count(mcp, ALICE, subject) == 1


def test_nul_octets_refused_and_dropped_connection_stores_nothing(mcp, lmtp):
    subject = _subject()
    lmtp.send(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
              f"Subject: {subject}\r\n\r\nnul\x00here\r\n.\r\n".encode())
    assert lmtp.replies(4) == ["250 2.1.0", "250 2.1.5", "354 Start", "554 5.6.0"]
    cut = Lmtp(mcp.host, mcp.lmtp_port)
    cut.lhlo()
    cut.send(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
             f"Subject: {subject}\r\n\r\nhalf".encode())
    assert cut.replies(3) == ["250 2.1.0", "250 2.1.5", "354 Start"]
    cut.close()
    lmtp.send(b"NOOP\r\n")
    assert lmtp.replies(1) == ["250 2.0.0"]
    assert _count(mcp, ALICE, subject) == 0


def test_metrics_count_lmtp_sessions_and_replies(mcp, lmtp):
    lmtp.send(b"MAIL FROM:<>\r\nRCPT TO:<nobody@example.com>\r\n")
    assert lmtp.replies(2) == ["250 2.1.0", "550 5.1.1"]
    with urllib.request.urlopen(f"http://{mcp.host}:{mcp.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert "mcp_lmtp_sessions 1" in text, text
    assert 'mcp_lmtp_recipient_replies_total{stage="rcpt",class="5xx"} 1' in text, text
