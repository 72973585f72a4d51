"""Postfix (Debian's) delivering to MCP over LMTP: mail submitted with `sendmail` lands in
the right INBOXes and is visible over IMAP; refusals reach the Postfix log and the bounce
with their enhanced status code (RFC 2033, RFC 3463)."""

from __future__ import annotations

import uuid

from conftest import ALICE, BOB
from lmtputil import inbox, postfix  # noqa: F401 (fixture)


def _message(subject: str, body: str = "Hello from Postfix.\n", charset: str = "us-ascii") -> bytes:
    return (
        f"From: Alice <alice@example.com>\n"
        f"To: Bob <bob@example.com>\n"
        f"Subject: {subject}\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset={charset}\n"
        f"Content-Transfer-Encoding: 8bit\n"
        f"\n{body}"
    ).encode()


def _with_subject(messages: list[bytes], subject: str) -> list[bytes]:
    return [m for m in messages if f"Subject: {subject}\r\n".encode() in m]


def test_sendmail_lands_in_the_inbox_and_is_visible_over_imap(mcp, postfix):
    subject = f"single {uuid.uuid4().hex}"
    postfix.sendmail(_message(subject), ["alice@example.com"], sender="sender@postfix.test")
    postfix.wait_log(r"to=<alice@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.0\.0")
    [msg] = _with_subject(inbox(mcp, ALICE), subject)
    # The sample pipeline tags clean mail below the Return-Path (config/samples/standalone).
    assert msg.startswith(
        b"Return-Path: <sender@postfix.test>\r\n"
        b"X-MCP-Scanned: dlp; tenant=example; stage=deliver\r\n"
        b"Received: from postfix.test (127.0.0.1)\r\n"
    ), msg
    assert b"\r\n\tfor <alice@example.com>; " in msg, msg
    assert msg.endswith(b"\r\n\r\nHello from Postfix.\r\n"), msg
    assert b"\n" not in msg.replace(b"\r\n", b""), "stored with CRLF line endings"


def test_one_message_to_two_recipients_reaches_both(mcp, postfix):
    subject = f"multi {uuid.uuid4().hex}"
    postfix.sendmail(_message(subject), ["alice@example.com", "bob@example.com"], sender="alice@example.com")
    postfix.wait_log(r"to=<alice@example\.com>.*status=sent")
    postfix.wait_log(r"to=<bob@example\.com>.*status=sent")
    assert len(_with_subject(inbox(mcp, ALICE), subject)) == 1
    assert len(_with_subject(inbox(mcp, BOB), subject)) == 1


def test_unknown_user_bounces_with_5_1_1_and_the_others_still_get_the_mail(mcp, postfix):
    subject = f"bounce {uuid.uuid4().hex}"
    postfix.sendmail(_message(subject), ["nobody@example.com", "bob@example.com"], sender="alice@example.com")
    m = postfix.wait_log(r"to=<nobody@example\.com>.*dsn=5\.1\.1, status=bounced \((.*)\)")
    assert "said: 550 5.1.1 <nobody@example.com>: no such user here (in reply to RCPT TO command)" in m.group(1), m.group(0)
    postfix.wait_log(r"to=<bob@example\.com>.*status=sent")
    assert len(_with_subject(inbox(mcp, BOB), subject)) == 1
    # The bounce goes back to the sender, alice, over LMTP too.
    postfix.wait_log(r"to=<alice@example\.com>.*status=sent")
    bounces = [b for b in inbox(mcp, ALICE) if b"MAILER-DAEMON" in b and subject.encode() in b]
    assert len(bounces) == 1, inbox(mcp, ALICE)
    assert b"Status: 5.1.1" in bounces[0], bounces[0]
    assert bounces[0].startswith(b"Return-Path: <>\r\n"), bounces[0]


def test_8bit_and_utf8_message_arrives_intact(mcp, postfix):
    subject = f"gr\u00fc\u00dfe {uuid.uuid4().hex}"
    body = "D\u00e9j\u00e0 vu, \u65e5\u672c\u8a9e, \U0001F600.\n"
    postfix.sendmail(_message(subject, body, charset="utf-8"), ["j\u00f6rg@example.com", "alice@example.com"],
                     sender="s\u00e9nder@example.com")
    postfix.wait_log(r"to=<alice@example\.com>.*status=sent")
    # SMTPUTF8 was negotiated (the envelope is UTF-8): the unknown UTF-8 recipient is refused
    # at RCPT like any other, not for its encoding.
    m = postfix.wait_log(r"to=<j\u00f6rg@example\.com>.*status=bounced \((.*)\)")
    assert "550 5.1.1" in m.group(1), m.group(0)
    [msg] = _with_subject(inbox(mcp, ALICE), subject)
    assert msg.startswith("Return-Path: <s\u00e9nder@example.com>\r\n".encode()), msg
    assert b" with UTF8LMTP id " in msg, msg
    assert msg.endswith(body.replace("\n", "\r\n").encode()), msg
