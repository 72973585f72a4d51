"""External plugins in `mcp standalone` (issue 5, docs/plugin-host.md): the dataplane starts
and supervises real plugin processes from their PluginDeployment's `command` (the SDK's
`mcp-plugin-template` and `mcp-plugin-noop`, and `stall_plugin`, a raw-contract plugin that
stops half way through a streamed body), forwards their output into its log, restarts them
after `kill -9`, reports them on `GET /internal/v1/plugins`, and honours each step's
`onError` when a plugin is killed mid-stream during an IMAP APPEND or an LMTP delivery:
nothing is lost and nothing is stored twice."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import REPO, _target_dir, free_ports  # noqa: E402
from imaputil import AppendLoad, connect, simple_message, unique  # noqa: E402
from pipelineutil import metric, wait_until  # noqa: E402

NS = "mcp-example"


@pytest.fixture(scope="session")
def plugin_bins(mcp_binary: Path) -> dict[str, Path]:
    """The plugin binaries, built once: the SDK's noop, the template plugin, and the
    dataplane's `stall_plugin` example. `MCP_PLUGIN_BIN_DIR` skips building."""
    explicit = os.environ.get("MCP_PLUGIN_BIN_DIR")
    if explicit:
        base, examples = Path(explicit), Path(explicit)
    else:
        subprocess.run(
            [
                "cargo", "build",
                "-p", "mcp-plugin-sdk", "--bin", "mcp-plugin-noop",
                "-p", "mcp-plugin-template",
                "-p", "mcp-dataplane", "--example", "stall_plugin",
            ],
            cwd=REPO,
            check=True,
        )
        base = _target_dir() / "debug"
        examples = base / "examples"
    bins = {
        "noop": base / "mcp-plugin-noop",
        "template": base / "mcp-plugin-template",
        "stall": examples / "stall_plugin",
    }
    for name, path in bins.items():
        assert path.is_file(), f"{name}: {path} not built"
    return bins


def deployment(name: str, command: Path, port: int, extra: str = "") -> str:
    return f"""apiVersion: mcp.dev/v1alpha1
kind: PluginDeployment
metadata: {{name: {name}, namespace: {NS}}}
spec:
  command: [{command}]
  protocol: {{min: 1, max: 1}}
  stages: [deliver, append]
  port: {port}
{extra}"""


def pipeline(plugin: str, stage: str, on_error: str, config: str = "{}") -> str:
    return f"""apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: external, namespace: {NS}}}
spec:
  scope: {{type: TenantDefault}}
  stages: [{stage}]
  steps:
    - name: ext
      plugin: {{name: {plugin}}}
      config: {config}
      timeout: 25s
      onError: {on_error}
"""


def write(resources: Path, plugin_yaml: str, pipeline_yaml: str) -> None:
    (resources / "plugin.yaml").write_text(plugin_yaml)
    # Replaces the sample pipeline (one TenantDefault pipeline per stage).
    (resources / "pipeline.yaml").write_text(pipeline_yaml)


def plugins(server) -> list[dict]:
    url = f"http://{server.host}:{server.metrics_port}/internal/v1/plugins"
    return json.loads(urllib.request.urlopen(url, timeout=10).read())["plugins"]


def wait_serving(server, name: str, restarts: int | None = None) -> dict:
    def ready():
        for p in plugins(server):
            if p["name"] == name and p["phase"] == "serving":
                if restarts is None or p["restarts"] >= restarts:
                    return p
        return None

    return wait_until(f"plugin {name} serving", ready, timeout=60)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def count(server, mailbox: str, subject: str) -> int:
    with connect(server) as c:
        c.select(mailbox)
        r = c.cmd(f'UID SEARCH SUBJECT "{subject}"').ok()
        return sum(len(line.split()) - 1 for line in r.lines("SEARCH"))


def quarantined(mcp_binary: Path, server) -> list[dict]:
    cmd = [str(mcp_binary), "quarantine", "--data-dir", str(server.data_dir)]
    cmd += server.storage.args()
    cmd += ["list", "--tenant", "example", "--mailbox", "alice@example.com"]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_a_supervised_sdk_plugin_serves_is_reported_and_its_output_is_logged(
    mcp_factory, resources_copy, plugin_bins
):
    (port,) = free_ports(1)
    write(
        resources_copy,
        deployment("template", plugin_bins["template"], port, "  capabilities: [addHeader, addKeyword]\n"),
        pipeline("template", "append", "failClosed", '{keyword: "$Tagged", header: X-Tagged, value: "yes"}'),
    )
    server = mcp_factory(resources=resources_copy)
    state = wait_serving(server, "template")
    assert state["namespace"] == NS
    assert state["endpoint"] == f"tcp://127.0.0.1:{port}"
    assert state["negotiatedVersion"] == 1
    assert state["plugin"].startswith("template ")
    assert state["restarts"] == 0
    assert "lastError" not in state

    box = unique("ext")
    with connect(server) as c:
        c.create(box)
        c.append(box, simple_message("tagged")).ok()
        c.select(box)
        r = c.cmd("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (X-Tagged)])").ok()
    (items,) = r.fetches().values()
    assert b"X-Tagged: yes" in next(v for k, v in items.items() if k.startswith("BODY"))
    assert "$Tagged" in str(items["FLAGS"])
    assert metric(server, "mcp_plugin_calls_total", plugin=f"{NS}/template", outcome="ok") == 1
    assert metric(server, "mcp_plugin_phase", plugin=f"{NS}/template", phase="serving") == 1

    # The SDK logs "serving" on stderr; the dataplane forwards it with the plugin's name.
    forwarded = [
        e for e in server.log_events()
        if e.get("fields", {}).get("plugin") == f"{NS}/template" and e["fields"].get("stream") == "stderr"
    ]
    assert any("serving" in e["fields"].get("message", "") for e in forwarded), forwarded[:5]

    (pid,) = children(server.proc.pid)
    assert server.stop() == 0
    assert not alive(pid), "the plugin process is stopped with the dataplane"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    out = children(pid)
    for child in list(out):
        out += descendants(child)
    return out


def test_a_plugin_started_through_a_wrapper_is_stopped_with_its_children(
    mcp_factory, resources_copy, plugin_bins
):
    """A `command` that is a shell wrapper keeps the real plugin as its child. On SIGTERM the
    dataplane stops the plugin's whole process group: it once signalled only the wrapper,
    left the plugin running (holding the port) and then waited forever for its output."""
    (port,) = free_ports(1)
    write(
        resources_copy,
        f"""apiVersion: mcp.dev/v1alpha1
kind: PluginDeployment
metadata: {{name: wrapped, namespace: {NS}}}
spec:
  command: [sh, -c, '"$0"; true', {plugin_bins["noop"]}]
  protocol: {{min: 1, max: 1}}
  stages: [deliver, append]
  port: {port}
""",
        pipeline("wrapped", "append", "failClosed"),
    )
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "wrapped")
    box = unique("wrapped")
    with connect(server) as c:
        c.create(box)
        c.append(box, simple_message("through the wrapper")).ok()
    tree = descendants(server.proc.pid)
    assert len(tree) == 2, "the shell and the plugin"
    assert server.stop() == 0
    assert not [p for p in tree if alive(p)], "no plugin process is left behind"


def test_a_plugin_killed_with_sigkill_is_restarted_over_a_unix_socket(
    mcp_factory, resources_copy, plugin_bins
):
    write(
        resources_copy,
        deployment("noop", plugin_bins["noop"], 50051, "  transport: unix\n"),
        pipeline("noop", "append", "failClosed"),
    )
    server = mcp_factory(resources=resources_copy)
    state = wait_serving(server, "noop")
    socket_path = server.data_dir / "plugins" / f"{NS}.noop.sock"
    assert state["endpoint"] == f"unix://{socket_path}"
    (pid,) = children(server.proc.pid)
    os.kill(pid, signal.SIGKILL)
    state = wait_serving(server, "noop", restarts=1)
    assert state["restarts"] == 1
    (new_pid,) = children(server.proc.pid)
    assert new_pid != pid
    assert metric(server, "mcp_plugin_restarts_total", plugin=f"{NS}/noop") == 1
    box = unique("restart")
    with connect(server) as c:
        c.create(box)
        c.append(box, simple_message("after restart")).ok()
    assert count(server, box, "after restart") == 1
    assert any(
        "plugin process exited" in e.get("fields", {}).get("status", "") for e in server.log_events()
    ), "the exit is logged"


@pytest.mark.parametrize("stage", ["append", "deliver"])
@pytest.mark.parametrize("on_error", ["failClosed", "failOpen", "quarantine"])
def test_killing_a_plugin_mid_stream_honours_on_error_and_loses_nothing(
    mcp_factory, mcp_binary, resources_copy, plugin_bins, tmp_path, stage, on_error
):
    (port,) = free_ports(1)
    marker = tmp_path / "stalled"
    write(
        resources_copy,
        deployment(
            "stall",
            plugin_bins["stall"],
            port,
            f"  capabilities: [addHeader]\n  bodyMode: streamed\n  env: [{{name: STALL_PLUGIN_MARKER, value: '{marker}'}}]\n",
        ),
        pipeline("stall", stage, on_error),
    )
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "stall")
    subject = unique("midstream")
    # Four 64 KiB chunks: the plugin stops after the first.
    message = simple_message(subject, ("x" * 78 + "\r\n") * 3300)
    box = "INBOX" if stage == "deliver" else unique("kill")
    result: dict = {}

    def send():
        try:
            if stage == "append":
                with connect(server) as c:
                    result["reply"] = c.append(box, message)
            else:
                with smtplib.LMTP(server.host, server.lmtp_port) as lmtp:
                    lmtp.sendmail("bob@example.com", ["alice@example.com"], message)
                    result["reply"] = 250
        except smtplib.SMTPDataError as e:
            result["reply"] = e.smtp_code
            result["text"] = e.smtp_error

    if stage == "append":
        with connect(server) as c:
            c.create(box)
    sender = threading.Thread(target=send)
    sender.start()
    pid = int(wait_until("the plugin stalled mid-stream", lambda: marker.exists() and marker.read_text()))
    os.kill(pid, signal.SIGKILL)
    sender.join(60)
    assert not sender.is_alive(), "the client got an answer"
    reply = result["reply"]

    stored = count(server, box, subject)
    held = [q for q in quarantined(mcp_binary, server) if q["step"] == "ext"]
    if on_error == "failClosed":
        if stage == "append":
            assert reply.status == "NO" and reply.code == "UNAVAILABLE", reply
            assert "4.3.0" in reply.text
        else:
            assert reply == 451 and b"4.3.0" in result["text"], result
        assert (stored, len(held)) == (0, 0), "refused: the sender keeps it"
    elif on_error == "failOpen":
        if stage == "append":
            assert reply.status == "OK", reply
        else:
            assert reply == 250
        assert (stored, len(held)) == (1, 0), "stored exactly once, unscanned"
    else:
        if stage == "append":
            assert reply.status == "OK" and "held in quarantine" in reply.text, reply
        else:
            assert reply == 250
        assert (stored, len(held)) == (0, 1), "held exactly once"
        assert "unavailable" in held[0]["reason"], held[0]
    assert metric(server, "mcp_plugin_calls_total", plugin=f"{NS}/stall", outcome="unavailable") >= 1
    assert metric(server, "mcp_plugin_calls_total", plugin=f"{NS}/stall", outcome="timeout") == 0
    wait_serving(server, "stall", restarts=1)


def test_a_plugin_deployment_reading_a_secret_is_refused_at_start_up(
    mcp_binary, resources_copy, plugin_bins, tmp_path
):
    write(
        resources_copy,
        deployment(
            "secretive",
            plugin_bins["noop"],
            50051,
            "  env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n",
        ),
        pipeline("secretive", "append", "failClosed"),
    )
    imap, imaps, lmtp, metrics_port = free_ports(4)
    r = subprocess.run(
        [
            str(mcp_binary), "standalone",
            "--resources", str(resources_copy),
            "--data-dir", str(tmp_path / "data"),
            "--imap", f"127.0.0.1:{imap}", "--imaps", f"127.0.0.1:{imaps}",
            "--lmtp", f"127.0.0.1:{lmtp}", "--metrics", f"127.0.0.1:{metrics_port}",
            "--rest", "127.0.0.1:0",
        ],
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode != 0
    err = r.stderr.decode() + r.stdout.decode()
    assert "plugin.yaml" in err and "spec.env[].valueFrom" in err and "TOKEN" in err, err


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_a_dataplane_killed_with_sigkill_takes_its_plugins_with_it(
    mcp_factory, resources_copy, plugin_bins, transport
):
    """`kill -9` of the dataplane leaves it no chance to stop its plugins: the kernel's
    parent-death signal does (Linux). A plugin left behind would hold its port, so the
    restarted dataplane's plugin could not listen."""
    (port,) = free_ports(1)
    write(
        resources_copy,
        deployment("noop", plugin_bins["noop"], port, f"  transport: {transport}\n"),
        pipeline("noop", "append", "failClosed"),
    )
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "noop")
    (pid,) = children(server.proc.pid)
    server.kill()
    wait_until("the orphaned plugin killed", lambda: not alive(pid), timeout=10)

    again = mcp_factory(data_dir=server.data_dir, resources=resources_copy)
    state = wait_serving(again, "noop")
    assert state["restarts"] == 0, "the new plugin process started at the first attempt"
    box = unique("after-kill")
    with connect(again) as c:
        c.create(box)
        c.append(box, simple_message("after the kill")).ok()
    assert count(again, box, "after the kill") == 1


def test_a_message_over_a_buffered_plugins_limit_is_stored_whole_and_marked_unscanned(
    mcp_factory, resources_copy, plugin_bins, storage
):
    """A 30 MiB message through a `buffered` plugin allowed 1 MiB: the plugin is called with
    the header section only (`body_withheld`), the message is stored byte for byte, and
    the step records `plugin.ext.body-withheld=true` with it. Never passed as scanned."""
    (port,) = free_ports(1)
    write(
        resources_copy,
        deployment(
            "noop", plugin_bins["noop"], port, "  args: [--body-mode, buffered]\n  bodyMode: buffered\n  maxBodySize: 1Mi\n"
        ),
        pipeline("noop", "append", "failClosed"),
    )
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "noop")
    subject = unique("huge")
    message = simple_message(subject, ("z" * 1022 + "\r\n") * (30 * 1024))
    assert len(message) > 30 * 1024 * 1024
    box = unique("withheld")
    with connect(server) as c:
        # 30 MiB through a debug build on a busy 2-core machine: more than the usual 10 s.
        c.sock.settimeout(300)
        c.create(box)
        c.append(box, message).ok()
        c.select(box)
        r = c.cmd("UID FETCH 1 (RFC822.SIZE BODY.PEEK[])").ok()
    (items,) = r.fetches().values()
    assert int(items["RFC822.SIZE"]) == len(message)
    body = next(v for k, v in items.items() if k.startswith("BODY"))
    assert body == message, "stored byte for byte"
    assert metric(server, "mcp_plugin_calls_total", plugin=f"{NS}/noop", outcome="ok") == 1
    marks = [
        row["metadata"] for row in storage.rows(server.data_dir)
        if row.get("metadata") and "body-withheld" in str(row["metadata"])
    ]
    assert len(marks) == 1, marks
    meta = marks[0] if isinstance(marks[0], dict) else json.loads(marks[0])
    assert meta["plugin.ext.body-withheld"] == "true", meta
    assert any(
        e.get("fields", {}).get("message") == "message over the plugin's size limit: body withheld"
        for e in server.log_events()
    ), "the withholding is logged"


def test_removing_a_plugin_under_load_loses_nothing_and_stops_its_process(
    mcp_factory, resources_copy, plugin_bins
):
    """Eight clients APPEND through an external step while a reload replaces the Pipeline
    with a built-in step and removes the PluginDeployment. Messages that took the old
    revision still reach the plugin (it is retired only once they are done): every APPEND
    is acknowledged, stored once, and the plugin process is stopped afterwards."""
    (port,) = free_ports(1)
    write(
        resources_copy,
        deployment("noop", plugin_bins["noop"], port, "  transport: unix\n"),
        pipeline("noop", "append", "failClosed"),
    )
    server = mcp_factory(resources=resources_copy)
    wait_serving(server, "noop")
    (pid,) = children(server.proc.pid)
    box = unique("removal")
    with connect(server) as c:
        c.create(box)

    with AppendLoad(server, box, 8) as load:
        time.sleep(2)
        before = load.total
        # One step: the new pipeline, written first (the old PluginDeployment still
        # exists, so the set compiles), then the PluginDeployment removed.
        tmp = resources_copy / ".pipeline.tmp"
        tmp.write_text(
            f"""apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: external, namespace: {NS}}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: tag
      plugin: {{builtin: header-tagger}}
      config: {{headers: [{{name: X-After, value: "yes", action: add}}]}}
"""
        )
        tmp.rename(resources_copy / "pipeline.yaml")
        (resources_copy / "plugin.yaml").unlink()
        wait_until("the plugin retired", lambda: not plugins(server), timeout=30)
        wait_until("the plugin process stopped", lambda: not alive(pid), timeout=30)
        time.sleep(1)
    assert not load.errors, load.errors
    assert load.total > before > 0
    with connect(server) as c:
        c.select(box)
        r = c.cmd("UID SEARCH ALL").ok()
        stored = sum(len(line.split()) - 1 for line in r.lines("SEARCH"))
        tagged = c.cmd("UID SEARCH HEADER X-After yes").ok()
        after = sum(len(line.split()) - 1 for line in tagged.lines("SEARCH"))
    assert stored == load.total, "every acknowledged APPEND stored exactly once"
    assert 0 < after < stored, "both revisions took messages"
