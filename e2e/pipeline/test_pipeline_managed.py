"""`mcp dataplane` with a `pipelines` file, laid out as the kubelet projects a ConfigMap
(`..data` symlink swapped on every change): the pipelines in force are reported on the admin
API (`GET /internal/v1/pipelines`), a change is hot-reloaded, and an invalid change is
refused with `lastError` while the previous pipelines stay in force (issue 4, item 5)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from pipelineutil import wait_until  # noqa: E402
from test_dataplane_mode import ALICE, Dataplane, write_config_dir  # noqa: E402

PIPELINE = """apiVersion: mcp.dev/v1alpha1
kind: Pipeline
metadata: {{name: default, namespace: mcp-acme}}
spec:
  scope: {{type: TenantDefault}}
  stages: [append]
  steps:
    - name: tag
      plugin: {{builtin: header-tagger}}
      config: {{headers: [{{name: X-Acme, value: "{value}", action: set}}]}}
"""


class ConfigMapDir:
    """`etc/pipelines.yaml -> ..data/pipelines.yaml`, `..data -> ..<n>`: like a ConfigMap volume."""

    def __init__(self, etc: Path) -> None:
        self.etc = etc
        self.n = 0

    def write(self, text: str) -> None:
        self.n += 1
        version = self.etc / f"..v{self.n}"
        version.mkdir()
        (version / "pipelines.yaml").write_text(text)
        tmp = self.etc / "..data_tmp"
        os.symlink(version.name, tmp)
        os.replace(tmp, self.etc / "..data")
        link = self.etc / "pipelines.yaml"
        if not link.is_symlink():
            os.symlink("..data/pipelines.yaml", link)


def state(dp: Dataplane) -> dict:
    answer = dp.request("GET", "/internal/v1/pipelines")
    assert answer.status == 200, answer.raw
    return json.loads(answer.raw)


def appended_header(dp: Dataplane, n: int) -> list[str]:
    imap = dp.imaps(ALICE, "alice-pw")
    try:
        typ, data = imap.append("INBOX", None, None, f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
        assert typ == "OK", data
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", "*", "(BODY.PEEK[HEADER.FIELDS (X-Acme)])")
        raw = data[0][1]
        return [m.strip() for m in re.findall(r"(?im)^X-Acme:(.*)$", raw.decode())]
    finally:
        imap.logout()


def test_pipelines_file_is_reported_reloaded_and_a_bad_change_refused(mcp_binary, storage, tmp_path):
    etc = tmp_path / "etc"
    token = write_config_dir(etc, storage, {"pipelines": "pipelines.yaml"})
    cm = ConfigMapDir(etc)
    cm.write(PIPELINE.format(value="one"))
    dp = Dataplane(mcp_binary, etc, tmp_path / "data", storage, token, tmp_path / "mcp.log")
    try:
        assert dp.put(ALICE).status == 200
        first = state(dp)
        assert [(p["namespace"], p["name"]) for p in first["pipelines"]] == [("mcp-acme", "default")]
        assert re.fullmatch(r"[0-9a-f]{16}", first["pipelines"][0]["revision"])
        assert "lastError" not in first
        assert appended_header(dp, 1) == ["one"]

        cm.write(PIPELINE.format(value="two"))
        second = wait_until(
            "the new revision in force",
            lambda: (s := state(dp))["pipelines"][0]["revision"] != first["pipelines"][0]["revision"] and s,
        )
        assert appended_header(dp, 2) == ["two"]

        cm.write(PIPELINE.format(value="two").replace("header-tagger", "no-such-plugin"))
        refused = wait_until("the refusal", lambda: (s := state(dp)).get("lastError") and s)
        assert "pipelines.yaml" in refused["lastError"], refused
        assert refused["pipelines"] == second["pipelines"], "the last good pipelines stay in force"
        assert appended_header(dp, 3) == ["two"]

        # A file that is not a Pipeline stream is refused the same way.
        cm.write("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
        wait_until("the second refusal", lambda: "only PluginDeployments and Pipelines belong here" in (state(dp).get("lastError") or ""))
    finally:
        dp.stop()


def test_a_pipelines_file_that_does_not_compile_stops_the_start(mcp_binary, storage, tmp_path):
    etc = tmp_path / "etc"
    token = write_config_dir(etc, storage, {"pipelines": "pipelines.yaml"})
    (etc / "pipelines.yaml").write_text(PIPELINE.format(value="x").replace("action: set", "action: sometimes"))
    with pytest.raises(BaseException):
        Dataplane(mcp_binary, etc, tmp_path / "data", storage, token, tmp_path / "mcp.log")
    log = (tmp_path / "mcp.log").read_text()
    assert "pipelines.yaml" in log and "headers[0].action" in log, log
