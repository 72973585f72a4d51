"""schemathesis (pinned in e2e/rest/requirements.txt, installed by .ci/run) against the OpenAPI
document served by a real `mcp standalone --rest` (docs/rest-api.md, "Testing"), and, when an
API server is available (KUBECONFIG), by `mcp-operator --rest` (rest_modes.py; fewer cases): per-operation
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

from rest_modes import kubernetes_rest  # noqa: F401 (fixture)
from test_rest_auth import call

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
# read-only over REST; in Kubernetes mode the fixture's tenant) part of the time, so generated
# requests reach the handlers beyond the 404 of an unknown tenant; the rest of the time they
# are generated from the schema.
CONFIG = """
[dictionaries.tenants]
values = ["{tenant}"]

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


def run_schemathesis(rest_url: str, key: str, tenant: str, max_examples: int, tmp_path: Path):
    """Runs `st run` on the served document; returns (cases, by phase, by status)."""
    st = st_command()
    report = tmp_path / "st-report"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.replace("{tenant}", tenant))
    cmd = st + [
        "--config-file", str(config),
        "run", f"{rest_url}/openapi.json",
        "--header", f"X-API-Key: {key}",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--mode", "all",
        "--max-examples", str(max_examples),
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
    assert not any(s >= 500 for s in by_status), by_status
    # The run went past the front door: objects were created (stateful links) and read.
    assert by_status.get(201, 0) > 0 and by_status.get(200, 0) > 0, by_status
    # The admin key still works (no generated request deactivated or deleted it).
    status, _, _ = call("GET", f"{rest_url}/apikeys", key)
    assert status == 200
    return cases, by_phase, by_status


def test_schemathesis(mcp_factory, storage, tmp_path: Path):
    if storage.kind != "sqlite":
        pytest.skip("one storage is enough: the REST layer is the same")
    st_command()
    server = mcp_factory(extra_args=("--rest-rate", "100000", "--rest-burst", "100000"))
    key = server.bootstrap_key()
    assert key
    cases, _, _ = run_schemathesis(server.rest_url, key, "example", MAX_EXAMPLES, tmp_path)
    assert cases >= MIN_CASES, f"only {cases} cases ran"
    assert key not in server.log_text()


def test_schemathesis_kubernetes(kubernetes_rest, tmp_path: Path):
    """The same document against the Kubernetes backend (the API server's objects: metadata,
    CRD status); fewer cases per operation, as each write goes to the API server."""
    st_command()
    target = kubernetes_rest
    before = set(tenant_names(target))
    try:
        run_schemathesis(target.rest_url, target.key, target.quarantine_tenant, 10, tmp_path)
    finally:
        # Tenants the run created are removed by the fixture's clean-up.
        target.tenants += [t for t in tenant_names(target) if t not in before]


def tenant_names(target) -> list[str]:
    status, _, body = call("GET", f"{target.rest_url}/tenants?limit=1000", target.key)
    assert status == 200, body
    return [t["metadata"]["name"] for t in body["items"]]
