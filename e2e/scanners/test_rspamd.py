"""The `rspamd` bridge against Debian's rspamd (issue 5), a private instance with its own
configuration (no redis, no network lookups, rspamd's `milter_headers` on). GTUBE, rspamd's
spam test string, is rejected over LMTP and APPEND with rspamd's message; its `add header`
and `rewrite subject` variants are delivered tagged or with the rewritten subject; clean mail
is delivered with rspamd's own result headers. With rspamd down, the step's onError decides
and nothing is stored."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from scanners import (  # noqa: F401 (fixtures)
    GTUBE,
    GTUBE_ADD_HEADER,
    GTUBE_REWRITE_SUBJECT,
    lmtp_send,
    mailbox_messages,
    message,
    private_rspamd,
    quarantined,
    rspamd,
    with_subject,
    write_pipeline,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from imaputil import connect  # noqa: E402


def rspamd_step(url: str, on_error: str = "failClosed", actions: str = "") -> str:
    extra = f", actions: {{{actions}}}" if actions else ""
    return (
        "    - name: spam\n"
        "      plugin: {builtin: rspamd}\n"
        "      timeout: 15s\n"
        f"      onError: {on_error}\n"
        f"      config: {{url: '{url}', timeout: 15s{extra}}}\n"
    )


def header(m: bytes, name: str) -> list[str]:
    head = m.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith(name.lower() + ":")]


def test_gtube_is_rejected_and_clean_mail_delivered_with_rspamds_headers(mcp_factory, resources_copy, rspamd):
    write_pipeline(resources_copy, rspamd_step(rspamd.url))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]

    code, text = lmtp_send(server, message(f"spam {tag}", f"Buy now!\r\n{GTUBE}"))
    assert (code, text) == (550, "5.7.1 <alice@example.com> Spam message rejected: Gtube pattern")
    subject = f"ham {tag}"
    code, text = lmtp_send(server, message(subject, "Shall we have lunch tomorrow at noon?"))
    assert code == 250 and "delivered to INBOX" in text, text

    with connect(server) as c:
        r = c.append("INBOX", message(f"appended spam {tag}", GTUBE))
        assert r.status == "NO" and r.code == "CANNOT", r
        assert "5.7.1 Spam message rejected: Gtube pattern" in r.text, r
        assert c.append("INBOX", message(f"appended ham {tag}", "Notes from the meeting.")).status == "OK"

    inbox = mailbox_messages(server)
    assert not any(GTUBE.encode() in m for m in inbox), "no spam stored"
    [ham] = with_subject(inbox, subject)
    # rspamd's milter block: its result headers, added by the bridge.
    [status] = header(ham, "X-Spam-Status")
    assert status.startswith("No, score="), status
    [result] = header(ham, "X-Spamd-Result")
    assert result.startswith("default: False ["), result
    assert header(ham, "X-Spam") == []
    assert with_subject(inbox, f"appended ham {tag}")


def test_add_header_and_rewrite_subject_deliver_marked_mail(mcp_factory, resources_copy, rspamd, mcp_binary):
    write_pipeline(resources_copy, rspamd_step(rspamd.url))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]
    assert lmtp_send(server, message(f"tagged {tag}", GTUBE_ADD_HEADER))[0] == 250
    assert lmtp_send(server, message(f"rewritten {tag}", GTUBE_REWRITE_SUBJECT))[0] == 250
    inbox = mailbox_messages(server)
    [tagged] = with_subject(inbox, f"tagged {tag}")
    assert header(tagged, "X-Spam") == ["Yes"], tagged
    [summary] = header(tagged, "X-Spamd-Result")
    assert summary.startswith("add header [") and "GTUBE" in summary, summary
    [rewritten] = with_subject(inbox, f"*** SPAM *** rewritten {tag}")
    assert header(rewritten, "X-Spam") == ["Yes"], rewritten
    assert not quarantined(mcp_binary, server)


def test_actions_override_quarantines_what_rspamd_would_tag(mcp_factory, resources_copy, rspamd, mcp_binary):
    write_pipeline(resources_copy, rspamd_step(rspamd.url, actions="'add header': quarantine"))
    server = mcp_factory(resources=resources_copy)
    subject = f"held {uuid.uuid4().hex[:8]}"
    code, text = lmtp_send(server, message(subject, GTUBE_ADD_HEADER))
    assert code == 250 and "held in quarantine" in text, text
    assert not with_subject(mailbox_messages(server), subject)
    [entry] = quarantined(mcp_binary, server)
    assert entry["reason"].startswith("rspamd: add header ["), entry
    assert "GTUBE" in entry["reason"], entry


@pytest.mark.parametrize("on_error, lmtp_code, append_status", [("failClosed", 451, "NO"), ("failOpen", 250, "OK")])
def test_rspamd_down_gets_the_steps_on_error(
    mcp_factory, resources_copy, private_rspamd, on_error, lmtp_code, append_status
):
    write_pipeline(resources_copy, rspamd_step(private_rspamd.url, on_error=on_error))
    server = mcp_factory(resources=resources_copy)
    tag = uuid.uuid4().hex[:8]
    assert lmtp_send(server, message(f"before {tag}", "A normal note."))[0] == 250
    private_rspamd.stop()
    code, text = lmtp_send(server, message(f"while down {tag}", GTUBE))
    assert code == lmtp_code, text
    with connect(server) as c:
        r = c.append("INBOX", message(f"appended while down {tag}", "x"))
        assert r.status == append_status, r
        if on_error == "failClosed":
            assert r.code == "UNAVAILABLE" and "4.3.0" in r.text, r
    inbox = mailbox_messages(server)
    if on_error == "failClosed":
        assert text.startswith("4.3.0") and "rspamd" in text, text
        assert not with_subject(inbox, f"while down {tag}")
        assert not with_subject(inbox, f"appended while down {tag}")
    else:
        # failOpen delivers unscanned mail, spam included: the documented risk.
        assert with_subject(inbox, f"while down {tag}")
