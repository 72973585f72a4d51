"""The pipeline on IMAP APPEND in `mcp standalone`: the sample pipeline (DLP quarantine of
payment cards, header tag), refusal of an invalid pipeline at start-up, hot reload without
dropping connections, and a reload under 20 concurrent APPEND clients where every message
must be processed by exactly one pipeline revision (issue 4)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from imaputil import AppendLoad, connect, simple_message, unique  # noqa: E402
from pipelineutil import CARD, metric, wait_until  # noqa: E402


def with_append_stage(resources: Path) -> Path:
    p = resources / "pipeline.yaml"
    text = p.read_text()
    assert "stages: [deliver]" in text
    p.write_text(text.replace("stages: [deliver]", "stages: [deliver, append]"))
    return p


def header_values(conn, mailbox: str, field: str) -> list[list[str]]:
    """For each message of `mailbox` (in UID order), the values of header `field`."""
    conn.select(mailbox)
    resp = conn.cmd(f"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({field})])").ok()
    out = []
    for _, items in sorted(resp.fetches().items()):
        raw = next(v for k, v in items.items() if k.startswith("BODY"))
        values = [m.group(1).strip() for m in re.finditer(rb"(?im)^" + field.encode() + rb":(.*)$", raw)]
        out.append([v.decode() for v in values])
    return out


def test_sample_pipeline_tags_clean_mail_and_quarantines_card_numbers(mcp_factory, resources_copy):
    with_append_stage(resources_copy)
    server = mcp_factory(resources=resources_copy)
    box = unique("dlp")
    with connect(server) as c:
        c.create(box)
        clean = c.append(box, simple_message("clean", "nothing to see")).ok()
        assert clean.code and clean.code.startswith("APPENDUID"), clean
        # An invoice number that passes Luhn is not a card (DLP known false positive).
        invoice = c.append(box, simple_message("invoice", f"Invoice no. {CARD} is due.")).ok()
        assert invoice.code and invoice.code.startswith("APPENDUID"), invoice
        held = c.append(box, simple_message("card", f"My card is {CARD}, exp 12/29")).ok()
        assert held.code is None and "held in quarantine" in held.text, held
        tags = header_values(c, box, "X-MCP-Scanned")
    assert tags == [["dlp; tenant=example; stage=append"]] * 2, "only the two stored messages, tagged once"
    assert metric(server, "mcp_pipeline_runs_total", stage="append", outcome="quarantine") == 1
    assert metric(server, "mcp_pipeline_step_invocations_total", stage="append", plugin="dlp") == 3
    # The card number never reaches the log.
    assert CARD not in server.log_text()


def test_an_invalid_pipeline_stops_the_start_naming_file_step_and_field(mcp_binary, resources_copy, tmp_path):
    p = resources_copy / "pipeline.yaml"
    p.write_text(p.read_text().replace("kind: paymentCard", "kind: creditCard"))
    out = subprocess.run(
        [str(mcp_binary), "standalone", "--resources", str(resources_copy), "--data-dir", str(tmp_path / "d"),
         "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--rest", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    err = out.stderr + out.stdout
    assert "pipeline.yaml" in err and "mcp-example/example-default" in err, err
    assert "spec.steps[0].config" in err and "detectors[0].kind" in err, err


def test_hot_reload_keeps_connections_and_refuses_an_invalid_change(mcp_factory, resources_copy):
    pipeline = with_append_stage(resources_copy)
    server = mcp_factory(resources=resources_copy)
    box = unique("reload")
    with connect(server) as c:
        c.create(box)
        c.select(box)
        c.append(box, simple_message("before")).ok()
        pipeline.write_text(pipeline.read_text().replace('value: "dlp;', 'value: "v2;'))

        def reloaded():
            c.append(box, simple_message("probe")).ok()
            return header_values(c, box, "X-MCP-Scanned")[-1] == ["v2; tenant=example; stage=append"]

        wait_until("the edited pipeline in force", reloaded)
        # An invalid change is refused; v2 stays in force, on the same connection.
        good = pipeline.read_text()
        pipeline.write_text(good.replace("onError: failOpen", "onError: sometimes"))
        wait_until("the refusal logged", lambda: "pipeline change refused" in server.log_text())
        c.append(box, simple_message("after")).ok()
        assert header_values(c, box, "X-MCP-Scanned")[-1] == ["v2; tenant=example; stage=append"]
        assert c.cmd("NOOP").status == "OK", "the connection survived both reloads"
    assert metric(server, "mcp_pipeline_reloads_total", result="error") >= 1
    assert metric(server, "mcp_pipeline_reloads_total", result="ok") >= 2


REVISION = """apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: revisions, namespace: mcp-example}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: first
      plugin: {{builtin: header-tagger}}
      config: {{headers: [{{name: X-Rev-First, value: "{rev}", action: add}}]}}
    - name: second
      plugin: {{builtin: header-tagger}}
      config: {{headers: [{{name: X-Rev-Second, value: "{rev}", action: add}}]}}
"""


def test_every_message_is_processed_by_exactly_one_revision_under_reload(mcp_factory, resources_copy):
    (resources_copy / "pipeline.yaml").unlink()
    target = resources_copy / "revisions.yaml"
    target.write_text(REVISION.format(rev="r0"))
    server = mcp_factory(resources=resources_copy)
    box = unique("load")
    with connect(server) as c:
        c.create(box)

    seen_revisions = []
    with AppendLoad(server, box, 20) as load:
        for n in range(1, 6):
            time.sleep(1.5)
            # Written to a temporary file and renamed: the poller never reads half a file.
            tmp = resources_copy / ".revisions.tmp"
            tmp.write_text(REVISION.format(rev=f"r{n}"))
            tmp.rename(target)
            seen_revisions.append(f"r{n}")
        time.sleep(1.5)
    assert not load.errors, load.errors
    with connect(server) as c:
        firsts = header_values(c, box, "X-Rev-First")
        seconds = header_values(c, box, "X-Rev-Second")
    assert len(firsts) == load.total, "every acknowledged APPEND stored exactly once"
    mixed = [(a, b) for a, b in zip(firsts, seconds) if len(a) != 1 or a != b]
    assert not mixed, f"messages processed by more than one revision: {mixed[:5]}"
    used = {a[0] for a in firsts}
    assert len(used) >= 3, f"the reloads took effect during the load: {sorted(used)}"
