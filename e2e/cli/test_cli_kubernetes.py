"""`mcp-cli` against the REST API in Kubernetes mode (`mcp-operator --rest` on the real
kube-apiserver, e2e/rest/rest_modes.py), end to end down to IMAP: `apply -f` a Tenant manifest
as kubectl would, `mailboxes create --password-stdin`; the operator's server-side apply makes
the Mailbox and its password Secret, the Mailbox controller provisions the account on the
tenant's dataplane (run locally from what the operator rendered), and the user logs in over
IMAP (STARTTLS). Deleting with the CLI removes the account again.

Skipped without KUBECONFIG (fails with MCP_REQUIRE_K8S=1)."""

from __future__ import annotations

import imaplib
import json
import ssl
import sys
import time

from conftest import REPO

sys.path.insert(0, str(REPO / "e2e" / "rest"))
from rest_modes import kubernetes_rest  # noqa: E402,F401 (fixture)
from test_cli import Cli, cli_binary  # noqa: E402,F401 (fixture)


def imap_login(dp, address: str, password: str) -> bool:
    ctx = ssl.create_default_context(cafile=str(dp.etc / "tls" / "tls.crt"))
    ctx.check_hostname = False  # the certificate names the tenant's domains, we dial 127.0.0.1
    conn = imaplib.IMAP4("127.0.0.1", dp.ports["imap"])
    try:
        conn.starttls(ctx)
        conn.login(address, password)
        conn.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def eventually(what: str, check, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_mailbox_created_with_the_cli_in_kubernetes_mode_logs_in_over_imap(kubernetes_rest, cli_binary, tmp_path):
    api = kubernetes_rest
    t = api.cli_tenant
    cli = Cli(cli_binary, tmp_path / "cli" / "config.yaml")
    cli("login", "--server", api.rest_url.removesuffix("/api/v1"), "--api-key-stdin", stdin=api.key + "\n")

    manifest = tmp_path / "tenant.yaml"
    manifest.write_text(f"apiVersion: mcp.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {t}\n"
                        f"spec:\n  domains: [{t}.example]\n")
    out = cli("apply", "-f", str(manifest))
    assert out.stdout.strip() == f"tenant.mcp.dev/{t} created", out.stdout
    # The operator renders the tenant's dataplane; run it here from what it wrote.
    api.cli_dataplane.start()

    address = f"alice@{t}.example"
    assert not imap_login(api.cli_dataplane, address, "alice-pw-k8s")
    out = cli("mailboxes", "create", address, "--tenant", t, "--password-stdin", "--quota", "1G",
              stdin="alice-pw-k8s\n")
    name = f"alice.{t}.example"
    assert out.stdout.strip() == f"mailbox.mcp.dev/{name} created", out.stdout
    eventually("the IMAP login of the new mailbox", lambda: imap_login(api.cli_dataplane, address, "alice-pw-k8s"))
    assert not imap_login(api.cli_dataplane, address, "wrong")

    # What the API server holds: the Mailbox applied by mcp-rest, its password in a Secret.
    ns = api.namespace(t)
    mailbox = api.kubectl.get("mailbox", name, ns)
    assert mailbox and mailbox["spec"]["address"] == address, mailbox
    secret = mailbox["spec"]["credentials"]["secretRef"]["name"]
    assert api.kubectl.get("secret", secret, ns), f"no password Secret {secret}"
    managers = {f["manager"] for f in mailbox["metadata"]["managedFields"]}
    assert "mcp-rest" in managers, managers
    got = json.loads(cli("mailboxes", "get", name, "-t", t, "-o", "json").stdout)
    assert got["metadata"]["resourceVersion"], got

    cli("mailboxes", "delete", name, "-t", t)
    eventually("the login to be refused after the delete",
               lambda: not imap_login(api.cli_dataplane, address, "alice-pw-k8s"))
