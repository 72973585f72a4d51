"""The `clamav` bridge against Debian's clamd (issue 5): clamd loads a signature database the
harness writes (one body signature for a made-up string; no freshclam, no network). A message
carrying the string, delivered over LMTP or by IMAP APPEND, is quarantined, or rejected with
the signature named, or tagged; a clean message is delivered. When clamd is down, or refuses a
stream over its StreamMaxLength, the step's onError decides: failClosed defers (LMTP 451,
APPEND NO [UNAVAILABLE]) and nothing is lost: Postfix delivers the deferred message once
clamd is back."""

from __future__ import annotations

import base64
import sys
import uuid
from pathlib import Path

import pytest

from conftest import ALICE
from scanners import (  # noqa: F401 (fixtures)
    TEST_SIGNATURE,
    TEST_VIRUS,
    clamd,
    lmtp_send,
    mailbox_messages,
    message,
    private_clamd,
    quarantined,
    with_subject,
    write_pipeline,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lmtp"))
import postfix as postfix_mod  # noqa: E402
from imaputil import connect, unique  # noqa: E402


def clamav_step(address: str, on_error: str = "failClosed", **config: str) -> str:
    extra = "".join(f", {k}: {v}" for k, v in config.items())
    return (
        "    - name: antivirus\n"
        "      plugin: {builtin: clamav}\n"
        "      timeout: 15s\n"
        f"      onError: {on_error}\n"
        f"      config: {{address: '{address}', timeout: 15s{extra}}}\n"
    )


def infected(subject: str) -> bytes:
    return message(subject, f"Please run the attached tool.\r\n{TEST_VIRUS}\r\n")


def infected_attachment(subject: str) -> bytes:
    """The string inside a base64 attachment: clamd decodes MIME before matching."""
    payload = base64.encodebytes(b"tool v1\n" + TEST_VIRUS.encode() + b"\n").decode().replace("\n", "\r\n")
    return (
        "From: Bob Example <bob@example.com>\r\nTo: alice@example.com\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="tool.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}--b1--\r\n"
    ).encode()


def test_infected_mail_is_quarantined_over_lmtp_and_append_and_clean_mail_delivered(
    mcp_factory, resources_copy, clamd, mcp_binary
):
    write_pipeline(resources_copy, clamav_step(clamd.tcp))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]

    code, text = lmtp_send(server, infected(f"virus {tag}"))
    assert (code, text) == (250, "2.0.0 <alice@example.com> accepted, held in quarantine")
    code, text = lmtp_send(server, infected_attachment(f"attachment {tag}"))
    assert code == 250 and "held in quarantine" in text, text
    code, text = lmtp_send(server, message(f"clean {tag}", "Lunch tomorrow at noon?"))
    assert code == 250 and "delivered to INBOX" in text, text

    box = unique("av")
    with connect(server) as c:
        c.create(box)
        held = c.append(box, infected(f"appended virus {tag}")).ok()
        assert held.code is None and "held in quarantine" in held.text, held
        stored = c.append(box, message(f"appended clean {tag}", "Notes")).ok()
        assert stored.code and stored.code.startswith("APPENDUID"), stored

    inbox = mailbox_messages(server)
    assert with_subject(inbox, f"clean {tag}"), "the clean message is delivered"
    assert not any(TEST_VIRUS.encode() in m for m in inbox), "nothing infected in INBOX"
    assert len(with_subject(mailbox_messages(server, box), f"appended clean {tag}")) == 1
    assert not any(TEST_VIRUS.encode() in m for m in mailbox_messages(server, box))

    entries = quarantined(mcp_binary, server)
    assert sorted(e["stage"] for e in entries) == ["append", "deliver", "deliver"], entries
    assert {e["reason"] for e in entries} == {f"clamav: {TEST_SIGNATURE}"}, entries
    assert {e["step"] for e in entries} == {"antivirus"}


def test_reject_names_the_signature_over_the_unix_socket(mcp_factory, resources_copy, clamd):
    write_pipeline(resources_copy, clamav_step(clamd.unix, action="reject"))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]
    code, text = lmtp_send(server, infected(f"virus {tag}"))
    assert (code, text) == (550, f"5.7.1 <alice@example.com> Virus found: {TEST_SIGNATURE}")
    with connect(server) as c:
        r = c.append("INBOX", infected(f"appended {tag}"))
        assert r.status == "NO" and r.code == "CANNOT", r
        assert f"5.7.1 Virus found: {TEST_SIGNATURE}" in r.text, r
        assert c.append("INBOX", message(f"fine {tag}", "ok")).status == "OK"
    inbox = mailbox_messages(server)
    assert not any(TEST_VIRUS.encode() in m for m in inbox)
    assert with_subject(inbox, f"fine {tag}")


def test_tag_delivers_with_the_signature_header(mcp_factory, resources_copy, clamd):
    write_pipeline(resources_copy, clamav_step(clamd.tcp, action="tag"))
    server = mcp_factory(resources=resources_copy)
    subject = f"tagged {uuid.uuid4().hex[:8]}"
    # A header the sender forged is replaced, not kept beside the real one.
    forged = infected(subject).replace(b"MIME-Version", b"X-MCP-Virus: none\r\nMIME-Version")
    code, text = lmtp_send(server, forged)
    assert code == 250 and "delivered to INBOX" in text, text
    [m] = with_subject(mailbox_messages(server), subject)
    assert m.count(b"X-MCP-Virus:") == 1, m
    assert f"X-MCP-Virus: {TEST_SIGNATURE}\r\n".encode() in m, m


@pytest.mark.parametrize(
    "on_error, lmtp_reply, append_status",
    [
        ("failClosed", (451, "4.3.0"), "NO"),
        ("quarantine", (250, "2.0.0"), "OK"),
        ("failOpen", (250, "2.0.0"), "OK"),
    ],
)
def test_clamd_down_gets_the_steps_on_error(
    mcp_factory, resources_copy, private_clamd, mcp_binary, on_error, lmtp_reply, append_status
):
    write_pipeline(resources_copy, clamav_step(private_clamd.unix, on_error=on_error))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]
    assert lmtp_send(server, message(f"before {tag}", "x"))[0] == 250
    private_clamd.stop()

    code, text = lmtp_send(server, infected(f"while down {tag}"))
    assert (code, text.split(" ")[0]) == lmtp_reply, text
    with connect(server) as c:
        r = c.append("INBOX", infected(f"appended while down {tag}"))
        assert r.status == append_status, r
        if on_error == "failClosed":
            assert r.code == "UNAVAILABLE" and "4.3.0" in r.text, r

    inbox = mailbox_messages(server)
    held = [e for e in quarantined(mcp_binary, server) if e["step"] == "antivirus"]
    if on_error == "failClosed":
        assert not with_subject(inbox, f"while down {tag}") and not held
    elif on_error == "quarantine":
        assert not any(TEST_VIRUS.encode() in m for m in inbox)
        assert len(held) == 2 and all("clamd" in e["reason"] for e in held), held
    else:
        # failOpen lets unscanned mail through: the documented risk of that policy.
        assert with_subject(inbox, f"while down {tag}")


def test_a_deferred_message_is_delivered_once_clamd_is_back(mcp_factory, resources_copy, private_clamd):
    if not postfix_mod.available():
        pytest.skip("Postfix is not installed")
    write_pipeline(resources_copy, clamav_step(private_clamd.tcp), stages="[deliver]")
    server = mcp_factory(resources=resources_copy)
    private_clamd.stop()
    pf = postfix_mod.Postfix(server.lmtp_port)
    try:
        subject = f"deferred {uuid.uuid4().hex[:8]}"
        pf.sendmail(message(subject, "Important, do not lose."), ["alice@example.com"], sender="bob@example.com")
        m = pf.wait_log(r"to=<alice@example\.com>.*status=deferred \((.*)\)")
        assert "451 4.3.0" in m.group(1), m.group(0)
        assert not with_subject(mailbox_messages(server), subject)
        private_clamd.start()
        pf.wait_log(r"to=<alice@example\.com>.*status=sent \(250 2\.0\.0 <alice@example\.com> delivered to INBOX")
        assert len(with_subject(mailbox_messages(server), subject)) == 1, "delivered exactly once"
    finally:
        pf.stop()


def test_clamd_size_limit_is_a_failure_and_oversize_skip_is_marked(mcp_factory, resources_copy, clamd):
    # clamd's StreamMaxLength is 1M; the bridge would send up to 4Mi.
    write_pipeline(
        resources_copy,
        clamav_step(clamd.tcp, maxSize="4Mi")
        + clamav_step(clamd.tcp, on_error="failOpen", maxSize="1Ki", onOversize="skip").replace(
            "name: antivirus", "name: small-only"
        ),
        stages="[deliver]",
    )
    server = mcp_factory(resources=resources_copy)
    big = message("big", "x" * 100 + "\r\n" + ("y" * 998 + "\r\n") * 1500)
    code, text = lmtp_send(server, big)
    assert code == 451 and text.startswith("4.3.0"), text
    assert "size limit" in server.log_text(), "the failure is logged with clamd's reason"
    # Under clamd's limit, over the second step's maxSize: scanned once, then marked.
    subject = f"medium {uuid.uuid4().hex[:8]}"
    code, text = lmtp_send(server, message(subject, "z" * 4000))
    assert code == 250 and "delivered" in text, text
    [m] = with_subject(mailbox_messages(server), subject)
    assert b"X-MCP-Virus-Scan: not scanned: " in m, m
