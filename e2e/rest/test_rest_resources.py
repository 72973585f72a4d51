"""Resource endpoints of the REST API against a real `mcp standalone` (docs/rest-api.md,
"Resources"): a Mailbox created over REST logs in over IMAP right after the 201, If-Match
gives 412, a resource of --resources is read-only (409 naming the file), and a restart keeps
what REST wrote. Run on both storages (`storage` fixture)."""

from __future__ import annotations

import imaplib

import pytest

from test_rest_auth import assert_problem, call


def imap_login(server, address: str, password: str) -> bool:
    imap = imaplib.IMAP4(server.host, server.imap_port)
    try:
        imap.login(address, password)
        imap.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def create_tenant(server, key: str, name: str) -> dict:
    status, headers, body = call(
        "POST",
        f"{server.rest_url}/tenants",
        key,
        {"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
         "spec": {"domains": [f"{name}.example"]}},
    )
    assert status == 201, body
    assert headers["ETag"] == f'"{body["metadata"]["resourceVersion"]}"'
    return body


def test_mailbox_created_over_rest_logs_in_over_imap(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    create_tenant(server, key, "acme")
    status, headers, body = call(
        "POST",
        f"{server.rest_url}/tenants/acme/mailboxes",
        key,
        {"metadata": {"name": "carol"},
         "spec": {"address": "carol@acme.example", "displayName": "Carol"},
         "password": "carol-pw-1"},
    )
    assert status == 201, body
    assert headers["Location"] == "/api/v1/tenants/acme/mailboxes/carol"
    assert "password" not in body
    assert imap_login(server, "carol@acme.example", "carol-pw-1")

    # Suspend it: login refused at once; the stale ETag then gets 412.
    etag = headers["ETag"]
    body["spec"]["state"] = "Suspended"
    status, headers2, suspended = call(
        "PUT", f"{server.rest_url}/tenants/acme/mailboxes/carol", key, body,
        headers={"If-Match": etag},
    )
    assert status == 200, suspended
    assert headers2["ETag"] != etag
    assert not imap_login(server, "carol@acme.example", "carol-pw-1")
    status, h, problem = call(
        "PUT", f"{server.rest_url}/tenants/acme/mailboxes/carol", key, body,
        headers={"If-Match": etag},
    )
    assert_problem(status, h, problem, 412)
    status, h, problem = call(
        "DELETE", f"{server.rest_url}/tenants/acme/mailboxes/carol", key,
        headers={"If-Match": etag},
    )
    assert_problem(status, h, problem, 412)

    # Delete with the current ETag: 204, and the account is gone.
    body["spec"]["state"] = "Active"
    status, _, _ = call("DELETE", f"{server.rest_url}/tenants/acme/mailboxes/carol", key,
                        headers={"If-Match": headers2["ETag"]})
    assert status == 204
    assert not imap_login(server, "carol@acme.example", "carol-pw-1")


def test_resources_of_the_yaml_directory_are_read_only(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    status, headers, alice = call("GET", f"{server.rest_url}/tenants/example/mailboxes/alice", key)
    assert status == 200, alice
    alice["spec"]["state"] = "Suspended"
    for method, body in (("PUT", alice), ("DELETE", None)):
        status, h, problem = call(method, f"{server.rest_url}/tenants/example/mailboxes/alice",
                                  key, body)
        assert_problem(status, h, problem, 409)
        assert "alice.yaml" in problem["detail"] and "edit the file" in problem["detail"], problem
    assert imap_login(server, "alice@example.com", "alice-demo")
    # A REST Mailbox in the YAML directory's Tenant is fine.
    status, _, body = call(
        "POST", f"{server.rest_url}/tenants/example/mailboxes", key,
        {"metadata": {"name": "dave"}, "spec": {"address": "dave@example.com"}, "password": "dave-pw"},
    )
    assert status == 201, body
    assert imap_login(server, "dave@example.com", "dave-pw")


def test_validation_errors_name_the_field(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    status, h, problem = call(
        "POST", f"{server.rest_url}/tenants/example/mailboxes", key,
        {"metadata": {"name": "eve"}, "spec": {"address": "eve@elsewhere.org", "bogus": 1},
         "password": "x"},
    )
    assert_problem(status, h, problem, 422)
    assert {"field": "spec.bogus", "message": "unknown field"} in problem["errors"], problem
    status, h, problem = call(
        "POST", f"{server.rest_url}/tenants/example/mailboxes", key,
        {"metadata": {"name": "eve"}, "spec": {"address": "eve@elsewhere.org"}, "password": "x"},
    )
    assert_problem(status, h, problem, 422)
    assert problem["errors"][0]["field"] == "spec.address", problem


def test_restart_keeps_what_rest_wrote(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    create_tenant(server, key, "keep")
    status, headers, body = call(
        "POST", f"{server.rest_url}/tenants/keep/mailboxes", key,
        {"metadata": {"name": "frank"}, "spec": {"address": "frank@keep.example"},
         "password": "frank-pw"},
    )
    assert status == 201, body
    assert server.stop() == 0
    again = mcp_factory(data_dir=server.data_dir)
    status, headers2, body2 = call("GET", f"{again.rest_url}/tenants/keep/mailboxes/frank", key)
    assert status == 200, body2
    assert headers2["ETag"] == headers["ETag"]
    assert body2["spec"] == body["spec"]
    assert imap_login(again, "frank@keep.example", "frank-pw")
    status, _, tenants = call("GET", f"{again.rest_url}/tenants", key)
    assert [t["metadata"]["name"] for t in tenants["items"]] == ["example", "keep"]


def post_raw(url: str, key: str, body: bytes, content_type: str):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"X-API-Key": key, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_import_200_mailboxes_from_csv_then_log_in(mcp_factory):
    server = mcp_factory()
    key = server.bootstrap_key()
    create_tenant(server, key, "bulk")
    lines = ["address,password,displayName,quotaMessages"]
    lines += [f'user{i}@bulk.example,"pw,{i}","User {i}",1000' for i in range(200)]
    lines.append("bad-address,pw,Bad,1")
    status, body = post_raw(f"{server.rest_url}/tenants/bulk/mailboxes:import", key,
                            ("\n".join(lines) + "\n").encode(), "text/csv")
    assert status == 200, body
    assert body["summary"] == {"created": 200, "updated": 0, "unchanged": 0, "failed": 1}, body["summary"]
    assert body["results"][200]["errors"][0]["field"] == "spec.address"
    assert imap_login(server, "user137@bulk.example", "pw,137")
    status, _, page = call("GET", f"{server.rest_url}/tenants/bulk/mailboxes?limit=1000", key)
    assert status == 200 and len(page["items"]) == 200
