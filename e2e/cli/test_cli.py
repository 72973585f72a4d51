"""`mcp-cli` end to end against a real `mcp standalone --rest` (docs/cli.md; issue 7, "The
CLI end to end"): the real binary logs in with the bootstrap key, creates a Tenant and a
Mailbox with a password, and that Mailbox then logs in over IMAP (Python imaplib). Also:
`apply -f DIR` twice (created, then unchanged), list output as JSON and YAML, a CSV import
with per-row errors, a bad key (exit 1 with the problem shown), shell completion.

The binary is `$MCP_CLI_BIN`, else `cargo build -p mcp-cli` into the target directory
(e2e/run-tests.sh builds it with the workspace). Run on both storages (`storage` fixture).
"""

from __future__ import annotations

import imaplib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, _target_dir


@pytest.fixture(scope="session")
def cli_binary() -> Path:
    """Path of the `mcp-cli` binary, built once per session unless MCP_CLI_BIN is set."""
    explicit = os.environ.get("MCP_CLI_BIN")
    if explicit:
        return Path(explicit)
    subprocess.run(["cargo", "build", "-p", "mcp-cli", "--bin", "mcp-cli"], cwd=REPO, check=True)
    binary = _target_dir() / "debug" / "mcp-cli"
    assert binary.is_file(), f"cargo build did not produce {binary}"
    return binary


class Cli:
    """Runs `mcp-cli` with a private config file and no MCP_* variables of the caller."""

    def __init__(self, binary: Path, config: Path) -> None:
        self.binary = binary
        self.config = config

    def __call__(self, *args: str, stdin: str | None = None, env: dict | None = None,
                 check: bool = True) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
        base["MCP_CLI_CONFIG"] = str(self.config)
        base.update(env or {})
        out = subprocess.run(
            [str(self.binary), *args], input=stdin, capture_output=True, text=True,
            env=base, timeout=300,
        )
        if check:
            assert out.returncode == 0, (
                f"mcp-cli {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out


@pytest.fixture
def logged_in(mcp_factory, cli_binary, tmp_path):
    """A server and an `mcp-cli` logged in to it with the bootstrap admin key."""
    server = mcp_factory()
    key = server.bootstrap_key()
    assert key, "the server printed no bootstrap key"
    cli = Cli(cli_binary, tmp_path / "cli" / "config.yaml")
    out = cli("login", "--server", f"http://{server.host}:{server.rest_port}",
              "--api-key-stdin", stdin=key + "\n")
    assert "mcp_" + key.split("_")[1] + "_…" in out.stdout, out.stdout
    assert key not in out.stdout + out.stderr, "the key is never printed"
    return server, cli, key


def imap_login(server, address: str, password: str) -> bool:
    imap = imaplib.IMAP4(server.host, server.imap_port)
    try:
        imap.login(address, password)
        imap.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def test_login_writes_a_private_config(logged_in):
    _, cli, key = logged_in
    mode = stat.S_IMODE(cli.config.stat().st_mode)
    assert mode == 0o600, oct(mode)
    config = yaml.safe_load(cli.config.read_text())
    assert config["current-context"] == "default"
    assert config["contexts"][0]["api-key"] == key
    server = config["contexts"][0]["server"]

    # A second context; `contexts` lists both with the key masked; `use-context` switches.
    cli("login", "--context", "ops", "--server", server, "--tenant", "example",
        env={"MCP_API_KEY": key})
    listed = cli("contexts").stdout
    assert key not in listed and "mcp_" + key.split("_")[1] + "_…" in listed, listed
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert rows[0][0] == "default" and rows[1][:2] == ["*", "ops"], rows
    assert "alice" in cli("mailboxes", "list").stdout, "the context's tenant is the default"
    cli("use-context", "default")
    assert yaml.safe_load(cli.config.read_text())["current-context"] == "default"
    assert cli("use-context", "nope", check=False).returncode == 2

    cli("logout")
    cli("logout", "--context", "ops")
    assert yaml.safe_load(cli.config.read_text())["contexts"] == []
    out = cli("tenants", "list", check=False)
    assert out.returncode == 2, out
    assert "login" in out.stderr


def test_mailbox_created_with_the_cli_logs_in_over_imap(logged_in):
    server, cli, _ = logged_in
    out = cli("tenants", "create", "acme", "--domain", "acme.example")
    assert out.stdout.strip() == "tenant.mcp.dev/acme created"
    assert not imap_login(server, "alice@acme.example", "alice-pw-1")
    out = cli("mailboxes", "create", "alice@acme.example", "--tenant", "acme",
              "--password-stdin", "--quota", "1G", "--display-name", "Alice",
              stdin="alice-pw-1\n")
    assert out.stdout.strip() == "mailbox.mcp.dev/alice.acme.example created", out.stdout
    assert imap_login(server, "alice@acme.example", "alice-pw-1")
    assert not imap_login(server, "alice@acme.example", "wrong")

    table = cli("mailboxes", "list", "-t", "acme").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESS", "STATE", "QUOTA", "AGE"], table
    assert table[1].split()[:4] == ["alice.acme.example", "alice@acme.example", "Active", "1G"]

    # MCP_TENANT works like --tenant; delete, and the login is refused.
    cli("mailboxes", "delete", "alice.acme.example", env={"MCP_TENANT": "acme"})
    assert not imap_login(server, "alice@acme.example", "alice-pw-1")


MANIFESTS = {
    "tenant.yaml": """\
apiVersion: mcp.dev/v1alpha1
kind: Tenant
metadata:
  name: globex
spec:
  domains: [globex.example]
""",
    # Mailbox before its Tenant by file name: apply orders by kind.
    "mailbox.yaml": """\
apiVersion: v1
kind: Secret
metadata: {name: carol-credentials, namespace: mcp-globex}
type: Opaque
stringData: {password: carol-pw}
---
apiVersion: mcp.dev/v1alpha1
kind: Mailbox
metadata:
  name: carol
  namespace: mcp-globex
  labels: {team: finance}
spec:
  address: carol@globex.example
  displayName: Carol
  credentials:
    secretRef: {name: carol-credentials, key: password}
""",
    "pipeline.json": json.dumps({
        "apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline",
        "metadata": {"name": "tagging", "namespace": "mcp-globex"},
        "spec": {"scope": {"type": "TenantDefault"}, "stages": ["deliver"],
                 "steps": [{"name": "tag", "plugin": {"builtin": "header-tagger"},
                            "config": {"headers": [{"name": "X-Globex", "value": "yes",
                                                    "action": "set"}]}}]},
    }),
    "README.txt": "not a manifest: ignored\n",
}


def test_apply_a_directory_twice(logged_in, tmp_path):
    server, cli, _ = logged_in
    d = tmp_path / "manifests"
    d.mkdir()
    for name, text in MANIFESTS.items():
        (d / name).write_text(text)

    out = cli("apply", "-f", str(d), "--dry-run")
    assert "tenant.mcp.dev/globex created (server dry run)" in out.stdout, out
    assert "not checked" in out.stderr, out.stderr
    assert cli("tenants", "get", "globex", check=False).returncode == 1, "dry run wrote nothing"

    out = cli("apply", "-f", str(d))
    assert out.stdout.splitlines() == [
        "tenant.mcp.dev/globex created",
        "pipeline.mcp.dev/tagging created",
        "mailbox.mcp.dev/carol created",
    ], out
    assert imap_login(server, "carol@globex.example", "carol-pw"), "the Secret became its password"

    out = cli("apply", "-f", str(d))
    assert out.stdout.splitlines() == [
        "tenant.mcp.dev/globex unchanged",
        "pipeline.mcp.dev/tagging unchanged",
        "mailbox.mcp.dev/carol unchanged",
    ], out

    (d / "mailbox.yaml").write_text(MANIFESTS["mailbox.yaml"].replace("finance", "sales"))
    out = cli("apply", "-f", str(d))
    assert "mailbox.mcp.dev/carol configured" in out.stdout.splitlines(), out

    # List output parses as JSON and YAML, with the applied objects.
    listed = json.loads(cli("mailboxes", "list", "-t", "globex", "-o", "json").stdout)
    assert [m["metadata"]["name"] for m in listed["items"]] == ["carol"]
    assert listed["items"][0]["metadata"]["labels"] == {"team": "sales"}
    assert "carol-pw" not in json.dumps(listed), "the password is write-only"
    pipelines = yaml.safe_load(cli("pipelines", "list", "-t", "globex", "-o", "yaml").stdout)
    assert [p["metadata"]["name"] for p in pipelines["items"]] == ["tagging"]
    assert cli("tenants", "list", "-o", "name").stdout.split() == [
        "tenant.mcp.dev/example", "tenant.mcp.dev/globex"]

    # delete -f: the other way round; the Tenant goes last.
    out = cli("delete", "-f", str(d))
    assert out.stdout.splitlines() == [
        "mailbox.mcp.dev/carol deleted",
        "pipeline.mcp.dev/tagging deleted",
        "tenant.mcp.dev/globex deleted",
    ], out
    assert not imap_login(server, "carol@globex.example", "carol-pw")
    out = cli("delete", "-f", str(d), check=False)
    assert out.returncode == 1 and "404" in out.stderr, out
    cli("delete", "-f", str(d), "--ignore-not-found")


def test_import_a_csv_with_progress_and_row_errors(logged_in, tmp_path):
    server, cli, _ = logged_in
    cli("tenants", "create", "bulk", "--domain", "bulk.example")
    rows = ["address,displayName,password,quotaStorage"]
    rows += [f"user{i}@bulk.example,User {i},pw-{i},1Gi" for i in range(30)]
    rows.append("broken@@bulk.example,Broken,pw,")
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("\n".join(rows) + "\n")

    out = cli("mailboxes", "import", str(csv_file), "-t", "bulk", "--chunk-size", "7",
              "--dry-run", check=False)
    assert out.returncode == 1, out
    assert "31 rows: 30 created, 0 updated, 0 unchanged, 1 failed (dry run" in out.stdout, out
    assert not imap_login(server, "user0@bulk.example", "pw-0"), "dry run wrote nothing"

    out = cli("mailboxes", "import", str(csv_file), "-t", "bulk", "--chunk-size", "7",
              check=False)
    assert out.returncode == 1, "a failed row makes the exit code non-zero"
    assert "31 rows: 30 created, 0 updated, 0 unchanged, 1 failed" in out.stdout, out
    # The row number is the file's (the fifth chunk's third row), with the field at fault.
    assert "row 31 (broken.bulk.example): spec.address:" in out.stderr, out.stderr
    assert imap_login(server, "user29@bulk.example", "pw-29")

    good = tmp_path / "good.csv"
    good.write_text("\n".join(rows[:-1]) + "\n")
    out = cli("mailboxes", "import", str(good), "-t", "bulk", "-o", "json")
    result = json.loads(out.stdout)
    assert result["summary"] == {"created": 0, "updated": 0, "unchanged": 30, "failed": 0}
    assert [r["row"] for r in result["results"]] == list(range(1, 31))


def test_bad_key_exits_1_with_the_problem(logged_in):
    _, cli, _ = logged_in
    bad = "mcp_abcdefgh_" + "x" * 43
    out = cli("tenants", "list", env={"MCP_API_KEY": bad}, check=False)
    assert out.returncode == 1, out
    assert "401 Unauthorized" in out.stderr, out.stderr
    assert bad not in out.stdout + out.stderr
    # A validation error: the field is named.
    out = cli("tenants", "create", "Bad_Name", "--domain", "x.example", check=False)
    assert out.returncode == 1, out
    assert "422" in out.stderr and "metadata.name" in out.stderr, out.stderr
    # A usage error is 2.
    out = cli("mailboxes", "list", check=False)
    assert out.returncode == 2 and "tenant" in out.stderr, out
    assert cli("tenants", "frobnicate", check=False).returncode == 2


def test_completion_scripts(cli_binary, tmp_path):
    cli = Cli(cli_binary, tmp_path / "config.yaml")
    out = cli("completion", "bash")
    assert "complete -F _mcp__cli" in out.stdout or "_mcp-cli" in out.stdout, out.stdout[:200]
    assert "mailboxes" in out.stdout
    checked = subprocess.run(["bash", "-n"], input=out.stdout, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    for shell in ("zsh", "fish", "powershell"):
        assert "mailboxes" in cli("completion", shell).stdout
