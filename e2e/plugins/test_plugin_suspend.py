"""Suspending an external plugin in `mcp standalone` (PluginDeployment `spec.suspend`,
docs/api.md "Suspending a plugin"): editing the YAML stops the supervised plugin process
at the next poll of the resources directory, the Pipeline step that calls it is skipped as
if absent (the message goes on to the next step and is stored without the step's effect,
not refused by its `onError: failClosed`), the skip is counted and recorded on the stored
message; setting it back starts the plugin again and its step runs again. A `suspend`
that is not a YAML boolean is refused with an error naming the field, at start-up and at
a reload (which keeps the previous configuration in force)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import REPO, free_ports  # noqa: E402
from imaputil import connect, simple_message, unique  # noqa: E402
from pipelineutil import metric, wait_until  # noqa: E402
from test_plugins import (  # noqa: E402,F401  (plugin_bins is a fixture)
    NS,
    alive,
    children,
    deployment,
    plugin_bins,
    plugins,
    wait_serving,
)

TEMPLATE_CAPS = "  capabilities: [addHeader, addKeyword]\n"


def two_step_pipeline() -> str:
    """The template plugin's step (tags the message, `failClosed`), then a built-in tagger:
    a skipped first step must let the message reach the second."""
    return f"""apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: external, namespace: {NS}}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: ext
      plugin: {{name: template}}
      config: {{keyword: "$Tagged", header: X-Tagged, value: "yes"}}
      timeout: 25s
      onError: failClosed
    - name: after
      plugin: {{builtin: header-tagger}}
      config: {{headers: [{{name: X-After, value: "yes", action: add}}]}}
"""


def replace(path: Path, text: str) -> None:
    """Writes `path` in one step, as an editor saving atomically would."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def phase(server, name: str) -> str | None:
    return next((p["phase"] for p in plugins(server) if p["name"] == name), None)


def appended(server, box: str, subject: str) -> dict:
    """APPENDs a message (must be OK) and returns its FLAGS and header fields."""
    with connect(server) as c:
        c.append(box, simple_message(subject)).ok()
        c.select(box)
        r = c.cmd(
            f'UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject X-Tagged X-After)])'
        ).ok()
    for items in r.fetches().values():
        header = next(v for k, v in items.items() if k.startswith("BODY"))
        if subject.encode() in header:
            return {"flags": str(items["FLAGS"]), "header": header}
    pytest.fail(f"{subject} not stored")


def skipped_metadata(storage, server) -> list[str]:
    """The `pipeline.skipped` metadata of every stored message that has one."""
    out = []
    for row in storage.rows(server.data_dir):
        meta = row.get("metadata")
        if not meta or "pipeline.skipped" not in str(meta):
            continue
        meta = meta if isinstance(meta, dict) else json.loads(meta)
        out.append(meta["pipeline.skipped"])
    return out


def test_suspending_a_plugin_stops_it_and_skips_its_step_and_resuming_brings_it_back(
    mcp_factory, resources_copy, plugin_bins, storage
):
    (port,) = free_ports(1)
    plugin_yaml = resources_copy / "plugin.yaml"
    running = deployment("template", plugin_bins["template"], port, TEMPLATE_CAPS)
    plugin_yaml.write_text(running)
    (resources_copy / "pipeline.yaml").write_text(two_step_pipeline())
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "template")
    (pid,) = children(server.proc.pid)
    box = unique("suspend")
    with connect(server) as c:
        c.create(box)

    first = appended(server, box, "before suspend")
    assert b"X-Tagged: yes" in first["header"] and b"X-After: yes" in first["header"]
    assert "$Tagged" in first["flags"]

    replace(plugin_yaml, running + "  suspend: true\n")
    wait_until("the plugin reported suspended", lambda: phase(server, "template") == "suspended", timeout=30)
    wait_until("the plugin process stopped", lambda: not alive(pid), timeout=30)
    assert children(server.proc.pid) == [], "no plugin process while suspended"
    state = next(p for p in plugins(server) if p["name"] == "template")
    assert state["endpoint"] == f"tcp://127.0.0.1:{port}"
    assert "negotiatedVersion" not in state

    second = appended(server, box, "while suspended")
    assert b"X-Tagged" not in second["header"], "the suspended step had no effect"
    assert "$Tagged" not in second["flags"]
    assert b"X-After: yes" in second["header"], "the next step ran"
    skip = {"stage": "append", "plugin": "deployment/template", "reason": "suspended"}
    assert metric(server, "mcp_pipeline_step_skipped_total", **skip) == 1
    assert metric(server, "mcp_plugin_calls_total", plugin=f"{NS}/template") == 1, "no call"
    assert metric(server, "mcp_pipeline_step_errors_total", plugin="deployment/template") == 0
    assert skipped_metadata(storage, server) == [f"{NS}/external/ext"]
    assert any(
        e.get("fields", {}).get("message", "").startswith("pipeline steps skipped")
        and e["fields"].get("steps") == "ext"
        for e in server.log_events()
    ), "the reload logs the skipped step"

    replace(plugin_yaml, running)
    wait_serving(server, "template")
    (new_pid,) = children(server.proc.pid)
    assert new_pid != pid, "a new process"
    third = appended(server, box, "after resume")
    assert b"X-Tagged: yes" in third["header"] and b"X-After: yes" in third["header"]
    assert "$Tagged" in third["flags"]
    assert metric(server, "mcp_pipeline_step_skipped_total", **skip) == 1
    assert len(skipped_metadata(storage, server)) == 1, "only the message of the suspension"


HOSTILE = ['"yes"', "yes", "1", '"true"', "[true]"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_suspend_that_is_not_a_boolean_is_refused_at_start_up(
    mcp_binary, resources_copy, plugin_bins, tmp_path, value
):
    (port,) = free_ports(1)
    (resources_copy / "plugin.yaml").write_text(
        deployment("template", plugin_bins["template"], port, TEMPLATE_CAPS + f"  suspend: {value}\n")
    )
    (resources_copy / "pipeline.yaml").write_text(two_step_pipeline())
    imap, imaps, lmtp, metrics_port = free_ports(4)
    r = subprocess.run(
        [
            str(mcp_binary), "standalone",
            "--resources", str(resources_copy),
            "--data-dir", str(tmp_path / "data"),
            "--imap", f"127.0.0.1:{imap}", "--imaps", f"127.0.0.1:{imaps}",
            "--lmtp", f"127.0.0.1:{lmtp}", "--metrics", f"127.0.0.1:{metrics_port}",
        ],
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode != 0, "started with suspend: " + value
    err = r.stderr.decode() + r.stdout.decode()
    assert "plugin.yaml" in err, err
    assert "(PluginDeployment): spec.suspend: invalid type" in err, err
    assert "expected a boolean" in err, err


def test_a_suspend_that_is_not_a_boolean_is_refused_at_reload_and_the_plugin_keeps_running(
    mcp_factory, resources_copy, plugin_bins
):
    (port,) = free_ports(1)
    plugin_yaml = resources_copy / "plugin.yaml"
    running = deployment("template", plugin_bins["template"], port, TEMPLATE_CAPS)
    plugin_yaml.write_text(running)
    (resources_copy / "pipeline.yaml").write_text(two_step_pipeline())
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "template")
    (pid,) = children(server.proc.pid)

    replace(plugin_yaml, running + '  suspend: "yes"\n')
    wait_until(
        "the reload refused",
        lambda: metric(server, "mcp_pipeline_reloads_total", result="error") >= 1,
        timeout=30,
    )
    refusal = [
        e for e in server.log_events()
        if e.get("fields", {}).get("message", "").startswith("pipeline change refused")
    ]
    assert refusal and "spec.suspend: invalid type" in refusal[-1]["fields"]["error"], refusal
    assert "plugin.yaml" in refusal[-1]["fields"]["error"]
    assert phase(server, "template") == "serving", "the previous configuration stays in force"
    assert alive(pid)
    box = unique("refused")
    with connect(server) as c:
        c.create(box)
    stored = appended(server, box, "still tagged")
    assert b"X-Tagged: yes" in stored["header"]
