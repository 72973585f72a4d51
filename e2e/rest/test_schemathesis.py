"""schemathesis (pinned in e2e/rest/requirements.txt, installed by .ci/run) against the OpenAPI
document served by a real `mcp standalone --rest` (docs/rest-api.md, "Testing"): per-operation
generation (the examples, coverage and fuzzing phases, positive and negative data) and the
stateful phase (a state machine over the document's OpenAPI links: a created Tenant, Mailbox,
Pipeline, PluginDeployment, policy, MigrationJob or API key is then read, replaced and deleted),
with the admin bootstrap key as `X-API-Key`. Checks: not_a_server_error (no 5xx at all),
response_schema_conformance, status_code_conformance, content_type_conformance and
response_headers_conformance. Fixed seed, deterministic generation, one worker: a CI run
repeats. The test prints the number of generated cases and requires at least 1,000."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
]
MIN_CASES = 1000
# Per operation and phase; the fuzzing phase runs positive and negative data for each.
MAX_EXAMPLES = int(os.environ.get("MCP_SCHEMATHESIS_MAX_EXAMPLES", "40"))


def st_command() -> list[str]:
    """The `st` CLI of the pinned schemathesis; skips (fails under CI=true) without it."""
    exe = shutil.which("st") or shutil.which("schemathesis")
    if exe:
        return [exe]
    message = "schemathesis is not installed (pip install -r e2e/rest/requirements.txt, or .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# Path parameters are drawn from these dictionaries (the sample tenant and its resources,
# read-only over REST) part of the time, so generated requests reach the handlers beyond the
# 404 of an unknown tenant; the rest of the time they are generated from the schema.
CONFIG = """
[dictionaries.tenants]
values = ["example"]

[dictionaries.names]
values = ["alice", "bob", "example-default", "st-made"]

[parameters]
"path.tenant" = { dictionary = "tenants", probability = 0.6 }
"path.name" = { dictionary = "names", probability = 0.4 }
"""


def count_cases(ndjson: Path) -> tuple[int, dict[str, int], dict[int, int], list[dict]]:
    """(test cases run, cases by phase, responses by status, failed checks) from the
    NDJSON event stream of `st run --report ndjson`."""
    cases = 0
    by_phase: dict[str, int] = {}
    by_status: dict[int, int] = {}
    failures: list[dict] = []
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        for kind, data in event.items():
            if kind == "NonFatalError":
                failures.append(data)
            if kind != "ScenarioFinished":
                continue
            recorder = data.get("recorder") or {}
            n = len(recorder.get("cases") or {})
            cases += n
            by_phase[data.get("phase", "?")] = by_phase.get(data.get("phase", "?"), 0) + n
            for interaction in (recorder.get("interactions") or {}).values():
                status = (interaction.get("response") or {}).get("status_code")
                if status is not None:
                    by_status[status] = by_status.get(status, 0) + 1
            for checks in (recorder.get("checks") or {}).values():
                failures.extend(c for c in checks if c.get("status") != "success")
    return cases, by_phase, dict(sorted(by_status.items())), failures


def test_schemathesis(mcp_factory, storage, tmp_path: Path):
    if storage.kind != "sqlite":
        pytest.skip("one storage is enough: the REST layer is the same")
    st = st_command()
    server = mcp_factory(extra_args=("--rest-rate", "100000", "--rest-burst", "100000"))
    key = server.bootstrap_key()
    assert key
    report = tmp_path / "st-report"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = st + [
        "--config-file", str(config),
        "run", f"{server.rest_url}/openapi.json",
        "--header", f"X-API-Key: {key}",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES),
        # Derandomized: the same cases on every run (no example database, no seed used).
        "--generation-deterministic",
        "--generation-with-security-parameters", "false",
        "--workers", "1",
        "--continue-on-failure",
        "--no-color",
        "--request-timeout", "30",
        "--report", "junit,ndjson",
        "--report-dir", str(report),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    print(out.stdout[-30000:])
    print(out.stderr[-5000:], file=sys.stderr)
    ndjson = next(report.glob("*.ndjson"))
    cases, by_phase, by_status, failures = count_cases(ndjson)
    print(f"schemathesis: {cases} generated cases run, by phase {by_phase}; responses by status "
          f"{by_status}; {len(failures)} failed checks; exit code {out.returncode}")
    assert out.returncode == 0, "schemathesis found failures (see the output above)"
    assert not failures, failures[:5]
    assert cases >= MIN_CASES, f"only {cases} cases ran"
    assert not any(s >= 500 for s in by_status), by_status
    # The run went past the front door: objects were created (stateful links) and read.
    assert by_status.get(201, 0) > 0 and by_status.get(200, 0) > 0, by_status
    # The admin key still works (no generated request deactivated or deleted it) and never
    # reached the server's log.
    from test_rest_auth import call
    status, _, _ = call("GET", f"{server.rest_url}/apikeys", key)
    assert status == 200
    assert key not in server.log_text()
