"""Postfix delivering DLP-violating mail to MCP over LMTP (issue 4): with the sample
pipeline a message carrying a valid payment card number is accepted and held in the
tenant's quarantine (the 250 reply in the Postfix log says so), while an invoice number that
merely passes Luhn is delivered; with `action: reject` the recipient is refused with
550 5.7.1, which reaches the Postfix log (and Postfix's bounce, which quotes the number, is
refused the same way)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import postfix as postfix_mod
import pytest

from conftest import ALICE, BOB
from lmtputil import inbox, postfix  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from pipelineutil import CARD, metric  # noqa: E402

def _message(subject: str, body: str) -> bytes:
    return (
        f"From: Bob <bob@example.com>\nTo: Alice <alice@example.com>\nSubject: {subject}\n"
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n{body}\n"
    ).encode()


def _subjects(server) -> set[bytes]:
    return {line for m in inbox(server, ALICE) for line in m.split(b"\r\n") if line.startswith(b"Subject: ")}


def test_card_numbers_are_quarantined_and_invoice_numbers_delivered(mcp, postfix):
    held, invoice = f"card {uuid.uuid4().hex}", f"invoice {uuid.uuid4().hex}"
    postfix.sendmail(_message(held, f"Please charge {CARD}, expiry 12/29."), ["alice@example.com"], sender="bob@example.com")
    m = postfix.wait_log(r"to=<alice@example\.com>.*dsn=2\.0\.0, status=sent \((.*held in quarantine.*)\)")
    assert "250 2.0.0 <alice@example.com> accepted, held in quarantine" in m.group(1), m.group(0)
    postfix.sendmail(_message(invoice, f"Invoice no. {CARD} is due on Friday."), ["alice@example.com"], sender="bob@example.com")
    postfix.wait_log(r"to=<alice@example\.com>.*status=sent \(250 2\.0\.0 <alice@example\.com> delivered to INBOX")
    subjects = _subjects(mcp)
    assert f"Subject: {invoice}".encode() in subjects
    assert f"Subject: {held}".encode() not in subjects, "held, not delivered"
    assert metric(mcp, "mcp_pipeline_runs_total", stage="deliver", outcome="quarantine") == 1
    assert CARD not in mcp.log_text(), "the card number never reaches the log"


def test_reject_action_bounces_with_5_7_1(mcp_factory, resources_copy):
    p = resources_copy / "pipeline.yaml"
    p.write_text(p.read_text().replace("action: quarantine", "action: reject"))
    server = mcp_factory(resources=resources_copy)
    if not postfix_mod.available():
        pytest.skip("Postfix is not installed")
    pf = postfix_mod.Postfix(server.lmtp_port)
    try:
        subject = f"reject {uuid.uuid4().hex}"
        pf.sendmail(_message(subject, f"Card: {CARD}"), ["alice@example.com"], sender="bob@example.com")
        m = pf.wait_log(r"to=<alice@example\.com>.*dsn=5\.7\.1, status=bounced \((.*)\)")
        assert "said: 550 5.7.1 <alice@example.com>" in m.group(1), m.group(0)
        assert CARD not in m.group(0), "the reply does not quote the data"
        # Postfix's bounce to bob quotes the original message, card number included, so
        # the same DLP step refuses it too: the sender learns of the refusal from the first
        # bounce attempt's log line, and no copy of the number lands anywhere.
        again = pf.wait_log(r"to=<bob@example\.com>.*dsn=5\.7\.1, status=bounced \((.*)\)")
        assert "550 5.7.1 <bob@example.com>" in again.group(1), again.group(0)
        assert not [b for b in inbox(server, BOB) if subject.encode() in b]
    finally:
        pf.stop()
