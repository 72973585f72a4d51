"""The REST API (`/api/v1`) of a real `mcp standalone` process: the bootstrap admin key
(printed once on stdout, or read from --bootstrap-key-file), API key authentication, 401/403/429
problem documents, health, and the OpenAPI document (docs/rest-api.md). The last test runs in
both modes (standalone and `mcp-operator --rest`, rest_modes.py)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES, _psql, _with_database
from rest_modes import kubernetes_rest, resource, rest_api  # noqa: F401 (pytest fixtures)

PROBLEM = "application/problem+json"


def gen_key() -> str:
    """An MCP API key made outside MCP: mcp_ + 8 of [a-z0-9] + _ + 43 of base64url."""
    prefix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"mcp_{prefix}_{secret}"


def call(method: str, url: str, key: str | None = None, body: dict | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON body or None)."""
    data = None
    h = dict(headers or {})
    if key is not None:
        h["X-API-Key"] = key
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, e.headers, (json.loads(raw) if raw else None)


def assert_problem(status: int, headers, body, want: int) -> None:
    assert status == want, (status, body)
    assert headers["Content-Type"] == PROBLEM, headers
    assert body["status"] == want and body["type"] == "about:blank", body
    assert body["title"] and body["detail"], body


def test_bootstrap_key_is_printed_once_on_stdout_and_never_logged(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    assert key and key.startswith("mcp_") and len(key) == 56, key
    assert key not in server.log_text(), "the key leaked into the log"
    assert f"apikey:{key[4:12]}" in server.log_text()
    status, _, body = call("GET", f"{server.rest_url}/apikeys", key)
    assert status == 200, body
    [item] = body["items"]
    assert item["role"] == "admin" and item["active"] is True and item["prefix"] == key[4:12]
    assert "key" not in item and "hash" not in item

    # A restart finds the admin key and prints nothing new.
    assert server.stop() == 0
    again = mcp_factory(data_dir=server.data_dir)
    assert again.stdout_path.read_text().count("bootstrap admin key") == 1
    status, _, _ = call("GET", f"{again.rest_url}/apikeys", key)
    assert status == 200

    # The same with curl, as in the README.
    out = subprocess.run(
        ["curl", "-fsS", "-H", f"X-API-Key: {key}", f"{again.rest_url}/apikeys"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert json.loads(out.stdout)["items"][0]["prefix"] == key[4:12]


def test_bootstrap_key_from_a_file(mcp_factory, tmp_path: Path):
    key = gen_key()
    f = tmp_path / "admin.key"
    f.write_text(key + "\n")
    f.chmod(0o600)
    server = mcp_factory(extra_args=("--bootstrap-key-file", str(f)))
    assert server.bootstrap_key() is None, "no key is generated with a key file"
    assert key not in server.log_text()
    status, _, body = call("GET", f"{server.rest_url}/apikeys", key)
    assert status == 200, body
    assert [i["name"] for i in body["items"]] == [f"bootstrap-{key[4:12]}"]


def test_a_world_readable_key_file_is_refused(mcp_binary, tmp_path: Path):
    key = gen_key()
    f = tmp_path / "admin.key"
    f.write_text(key)
    f.chmod(0o644)
    out = subprocess.run(
        [str(mcp_binary), "standalone", "--resources", str(SAMPLES), "--data-dir", str(tmp_path / "d"),
         "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0", "--lmtp", "127.0.0.1:0",
         "--metrics", "127.0.0.1:0", "--rest", "127.0.0.1:0", "--bootstrap-key-file", str(f)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert out.returncode == 1, out
    assert "--bootstrap-key-file" in out.stderr and "chmod 600" in out.stderr, out.stderr
    assert key not in out.stderr + out.stdout


def test_401_403_and_429_are_problem_documents(mcp_factory):
    server = mcp_factory(extra_args=("--rest-rate", "1", "--rest-burst", "4"))
    admin = server.bootstrap_key()
    url = f"{server.rest_url}/apikeys"

    status, headers, body = call("GET", url)
    assert_problem(status, headers, body, 401)
    assert "X-API-Key" in headers["WWW-Authenticate"]
    for bad in ["garbage", gen_key(), admin[:-1] + ("A" if admin[-1] != "A" else "B")]:
        status, headers, body = call("GET", url, bad)
        assert_problem(status, headers, body, 401)
    status, headers, body = call("GET", url, headers={"Authorization": "Bearer x.y.z"})
    assert_problem(status, headers, body, 401)

    status, headers, body = call("POST", url, admin, {"name": "reader", "role": "viewer"})
    assert status == 201, body
    viewer = body["key"]
    assert headers["Location"].endswith(f"/apikeys/{body['id']}")
    status, headers, body = call("GET", url, viewer)
    assert_problem(status, headers, body, 403)

    # An expired and a deactivated key: 401, with the same detail as an unknown one.
    status, _, body = call("POST", url, admin, {"name": "ci", "role": "tenant-admin", "tenant": "example"})
    assert status == 201, body
    ci, ci_id = body["key"], body["id"]
    status, _, _ = call("PATCH", f"{url}/{ci_id}", admin, {"active": False})
    assert status == 200
    status, headers, off = call("GET", url, ci)
    assert_problem(status, headers, off, 401)
    status, _, unknown = call("GET", url, gen_key())
    assert off["detail"] == unknown["detail"]

    # The admin key's budget (burst 4, 1/s) runs out; the viewer's is its own.
    seen = None
    for _ in range(30):
        status, headers, body = call("GET", url, admin)
        if status == 429:
            seen = (headers, body)
            break
        assert status == 200, body
    assert seen, "no 429 within 30 requests at 1/s with a burst of 4"
    headers, body = seen
    assert_problem(429, headers, body, 429)
    assert int(headers["Retry-After"]) >= 1


def test_health_and_openapi_need_no_key(mcp_factory):
    server = mcp_factory()
    status, _, body = call("GET", f"{server.rest_url}/health/live")
    assert (status, body["status"]) == (200, "ok")
    status, _, body = call("GET", f"{server.rest_url}/health/ready")
    assert status == 200 and body["checks"] == [
        {"name": "api_keys", "status": "ok"},
        {"name": "backend", "status": "ok"},
    ], body
    status, headers, doc = call("GET", f"{server.rest_url}/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert doc["openapi"].startswith("3.1."), doc["openapi"]
    assert "/api/v1/apikeys" in doc["paths"] and "Problem" in doc["components"]["schemas"]
    with urllib.request.urlopen(f"{server.rest_url}/docs/", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    status, headers, body = call("GET", f"{server.rest_url}/no-such-thing")
    assert_problem(status, headers, body, 404)


@pytest.mark.skipif(not os.environ.get("MCP_TEST_POSTGRES_URL"), reason="set MCP_TEST_POSTGRES_URL")
def test_api_keys_in_postgresql(mcp_factory):
    admin_url = os.environ["MCP_TEST_POSTGRES_URL"]
    name = "mcp_api_" + uuid.uuid4().hex[:12]
    _psql(admin_url, f"CREATE DATABASE {name}")
    try:
        url = _with_database(admin_url, name)
        server = mcp_factory(extra_args=("--api-store-url", url))
        key = server.bootstrap_key()
        status, _, body = call("GET", f"{server.rest_url}/apikeys", key)
        assert status == 200 and len(body["items"]) == 1, body
        rows = _psql(url, "SELECT prefix, role FROM api_keys").split()
        assert rows == [f"{key[4:12]}|admin"], rows
        assert not (server.data_dir / "api.sqlite").exists()
        server.stop()
    finally:
        _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_closed_stdout_keeps_the_server_up_and_the_next_start_prints_a_key(mcp_binary, mcp_factory, tmp_path: Path):
    """Like a failing log write, a bootstrap key that cannot be shown must not stop the
    server; the key is dropped, so the next start generates one."""
    import time
    from conftest import free_ports

    imap, rest = free_ports(2)
    r, w = os.pipe()
    os.close(r)  # nobody reads stdout: printing the key fails with EPIPE
    data = tmp_path / "data"
    err = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen(
        [str(mcp_binary), "standalone", "--resources", str(SAMPLES), "--data-dir", str(data),
         "--imap", f"127.0.0.1:{imap}", "--imaps", "127.0.0.1:0", "--lmtp", "127.0.0.1:0",
         "--metrics", "127.0.0.1:0", "--rest", f"127.0.0.1:{rest}"],
        stdout=w, stderr=err, cwd=REPO,
    )
    os.close(w)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
            try:
                status, _, _ = call("GET", f"http://127.0.0.1:{rest}/api/v1/health/ready")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        assert "cannot print the bootstrap admin key" in (tmp_path / "stderr.log").read_text()
    finally:
        proc.terminate()
        proc.wait(30)
        err.close()
    server = mcp_factory(data_dir=data)
    key = server.bootstrap_key()
    assert key, "the next start prints a key"
    status, _, body = call("GET", f"{server.rest_url}/apikeys", key)
    assert status == 200 and len(body["items"]) == 1, body


# --- both modes (rest_api of rest_modes.py) -----------------------------------------------


def test_keys_and_roles_in_both_modes(rest_api):
    """API keys (in PostgreSQL in Kubernetes mode) and the roles in front of either backend:
    401 without a key, a tenant-admin confined to its tenant, a viewer that cannot write, and
    readiness that asks the backend."""
    api = rest_api
    base, admin = api.rest_url, api.key
    status, h, body = call("GET", f"{base}/tenants")
    assert_problem(status, h, body, 401)
    status, _, body = call("GET", f"{base}/health/ready")
    assert status == 200, body
    mine, other = api.tenant_name("mine"), api.tenant_name("other")
    for t in (mine, other):
        status, _, body = call("POST", f"{base}/tenants", admin, resource("Tenant", t, {"domains": [f"{t}.example"]}))
        assert status == 201, body
    status, _, body = call("POST", f"{base}/apikeys", admin, {"name": "ta", "role": "tenant-admin", "tenant": mine})
    assert status == 201, body
    ta = body["key"]
    status, _, body = call("POST", f"{base}/apikeys", admin, {"name": "v", "role": "viewer"})
    assert status == 201, body
    viewer = body["key"]

    mb = {**resource("Mailbox", "m1", {"address": f"m1@{mine}.example"}), "password": "m1-pw"}
    status, _, body = call("POST", f"{base}/tenants/{mine}/mailboxes", ta, mb)
    assert status == 201, body
    status, h, body = call("POST", f"{base}/tenants/{other}/mailboxes", ta,
                           {**resource("Mailbox", "m1", {"address": f"m1@{other}.example"}), "password": "x"})
    assert_problem(status, h, body, 403)
    status, _, body = call("GET", f"{base}/tenants", ta)
    assert status == 200 and [t["metadata"]["name"] for t in body["items"]] == [mine], body
    status, _, body = call("GET", f"{base}/tenants/{mine}/mailboxes/m1", viewer)
    assert status == 200, body
    status, h, body = call("DELETE", f"{base}/tenants/{mine}/mailboxes/m1", viewer)
    assert_problem(status, h, body, 403)
    status, _, body = call("DELETE", f"{base}/tenants/{mine}/mailboxes/m1", ta)
    assert status == 204, body
