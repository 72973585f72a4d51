"""OIDC bearer tokens on the REST API (docs/rest-api.md, "OIDC bearer tokens"), in both modes
(rest_modes.py): `--oidc-config` names the test provider, ORY Hydra (e2e/services/hydra.sh),
whose client-credentials tokens carry the granted scopes in `scp`; scopes map to roles
(oidc_config). Real tokens from the real provider: admin, viewer and tenant-admin tokens do
what their role allows, a valid token without a role is 403, a token for another audience or
a forged one is 401, API keys keep working, and `mcp-cli --token` uses a token.

Skipped without MCP_TEST_OIDC_ISSUER/MCP_TEST_OIDC_CLIENT (fails with MCP_REQUIRE_OIDC=1)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, SAMPLES, McpServer, Storage
from rest_modes import RestTarget, kubernetes_rest, oidc_config, resource  # noqa: F401 (fixtures)
from test_rest_auth import assert_problem, call

sys.path.insert(0, str(REPO / "e2e" / "cli"))
from test_cli import cli_binary  # noqa: E402,F401 (fixture: the mcp-cli binary)


def provider() -> tuple[str, str, str]:
    """(issuer, client id, client secret) of the running test provider."""
    issuer, client = os.environ.get("MCP_TEST_OIDC_ISSUER"), os.environ.get("MCP_TEST_OIDC_CLIENT")
    if not issuer or not client:
        if os.environ.get("MCP_REQUIRE_OIDC") == "1":
            pytest.fail("MCP_REQUIRE_OIDC=1 but MCP_TEST_OIDC_ISSUER/MCP_TEST_OIDC_CLIENT are not set")
        pytest.skip('no OIDC provider: eval "$(e2e/services/hydra.sh start)"')
    client_id, secret = client.split(":", 1)
    return issuer, client_id, secret


def token(scope: str, audience: str = "mcp-api") -> str:
    """An access token of the client-credentials grant (RFC 6749 §4.4) for `scope`."""
    issuer, client_id, secret = provider()
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
        endpoint = json.load(r)["token_endpoint"]
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope, "audience": audience})
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    req = urllib.request.Request(endpoint, data=body.encode(), method="POST", headers={
        "Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["access_token"]


def bearer(method: str, url: str, tok: str, body: dict | None = None):
    return call(method, url, body=body, headers={"Authorization": f"Bearer {tok}"})


@pytest.fixture(params=["standalone", "kubernetes"])
def oidc_api(request, tmp_path, mcp_binary) -> Iterator[RestTarget]:
    """The REST API with `--oidc-config` of the test provider, in either mode."""
    provider()
    if request.param == "kubernetes":
        target = request.getfixturevalue("kubernetes_rest")
        assert target.oidc_tenant, "the operator was started without --oidc-config"
        yield target
        return
    config = oidc_config(tmp_path, "ops")
    server = McpServer(mcp_binary, tmp_path / "data", SAMPLES, Storage("sqlite", None), tmp_path / "mcp.log",
                       ("--oidc-config", str(config)))
    try:
        server.wait_for_greeting()
        key = server.bootstrap_key()
        assert key, "no bootstrap key printed"
        target = RestTarget("standalone", server.rest_url, key)
        target.oidc_tenant = "ops"
        yield target
    finally:
        if server.proc.poll() is None:
            server.stop()


def test_tokens_of_the_provider_get_the_role_of_their_scope(oidc_api):
    api = oidc_api
    admin, viewer, ops, none = token("mcp-admin"), token("mcp-viewer"), token("mcp-ops"), token("other")

    # admin: creates the tenant-admin's tenant and another one.
    for name in (api.oidc_tenant, api.tenant_name("oidc")):
        status, headers, body = bearer("POST", f"{api.rest_url}/tenants", admin,
                                       resource("Tenant", name, {"domains": [f"{name}.example"]}))
        assert status == 201, body
    other = api.tenants[-1]
    status, _, body = bearer("GET", f"{api.rest_url}/tenants", admin)
    assert status == 200 and {api.oidc_tenant, other} <= {t["metadata"]["name"] for t in body["items"]}, body

    # viewer: reads, may not write.
    status, _, body = bearer("GET", f"{api.rest_url}/tenants/{other}", viewer)
    assert status == 200, body
    mailbox = resource("Mailbox", "m1", {"address": f"m1@{other}.example"})
    assert_problem(*bearer("POST", f"{api.rest_url}/tenants/{other}/mailboxes", viewer, mailbox), 403)

    # tenant-admin of its tenant: writes there, not elsewhere.
    own = resource("Mailbox", "m1", {"address": f"m1@{api.oidc_tenant}.example"})
    own["password"] = "oidc-secret-1"
    status, _, body = bearer("POST", f"{api.rest_url}/tenants/{api.oidc_tenant}/mailboxes", ops, own)
    assert status == 201, body
    assert_problem(*bearer("POST", f"{api.rest_url}/tenants/{other}/mailboxes", ops, mailbox), 403)
    # API keys: a tenant-admin sees only its tenant's, a viewer none.
    status, _, body = bearer("GET", f"{api.rest_url}/apikeys", ops)
    assert status == 200 and all(k.get("tenant") == api.oidc_tenant for k in body["items"]), body
    assert_problem(*bearer("GET", f"{api.rest_url}/apikeys", viewer), 403)

    # A valid token granting no role: 403, not 401.
    assert_problem(*bearer("GET", f"{api.rest_url}/tenants", none), 403)

    # Not a token of this API: another audience, a tampered signature, garbage: 401 + challenge.
    foreign = token("mcp-admin", audience="someone-else")
    head, payload, sig = admin.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}AAAA"
    for bad in (foreign, tampered, "not-a-jwt"):
        status, headers, body = bearer("GET", f"{api.rest_url}/tenants", bad)
        assert_problem(status, headers, body, 401)
        assert "Bearer" in headers["WWW-Authenticate"], headers
        assert bad not in json.dumps(body)

    # API keys still work next to tokens.
    status, _, _ = call("GET", f"{api.rest_url}/tenants", api.key)
    assert status == 200

    # Clean up what this test made (the kubernetes fixture removes its tenants too).
    status, _, body = bearer("DELETE", f"{api.rest_url}/tenants/{api.oidc_tenant}/mailboxes/m1", ops)
    assert status == 204, body


def test_mcp_cli_uses_a_bearer_token(oidc_api, cli_binary):
    api = oidc_api
    server = api.rest_url.removesuffix("/api/v1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env["MCP_CLI_CONFIG"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"mcp-cli-oidc-{os.getpid()}.yaml")
    viewer = token("mcp-viewer")
    out = subprocess.run([str(cli_binary), "--server", server, "--token", viewer, "tenants", "list", "-o", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), (list, dict))
    assert viewer not in out.stdout + out.stderr
    out = subprocess.run([str(cli_binary), "--server", server, "--token", token("other"), "tenants", "list"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "403" in out.stderr, (out.returncode, out.stderr)
