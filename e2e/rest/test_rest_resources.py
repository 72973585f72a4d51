"""Resource endpoints of the REST API (docs/rest-api.md, "Resources").

Against a real `mcp standalone` (on both storages, `storage` fixture): a Mailbox created over
REST logs in over IMAP right after the 201, If-Match gives 412, a resource of --resources is
read-only (409 naming the file), and a restart keeps what REST wrote.

In both modes (`rest_api` fixture of rest_modes.py: standalone, and `mcp-operator --rest`
against the real kube-apiserver): CRUD of tenants, mailboxes, pipelines and plugins, ETags,
412 and 409, bulk import, unknown tenants, quarantine; in Kubernetes mode also what the API
server holds (managedFields of `mcp-rest`, the password Secrets, spec.suspend)."""

from __future__ import annotations

import imaplib
import json
import time

import pytest

from rest_modes import dumps, kubernetes_rest, resource, rest_api  # noqa: F401 (pytest fixtures)
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


# --- both modes (rest_api) ---------------------------------------------------------------


def managers(obj: dict) -> dict[str, str]:
    """manager -> operation of an object's managedFields."""
    return {m["manager"]: m["operation"] for m in obj["metadata"].get("managedFields") or []}


def etag(headers) -> str:
    return headers["ETag"]


def quoted(body: dict) -> str:
    return f'"{body["metadata"]["resourceVersion"]}"'


def with_current_etag(api, method: str, path: str, body: dict | None = None, tries: int = 10):
    """`method` under If-Match of the object's current ETag. In Kubernetes mode a
    controller's status write may move the version between the GET and the write (a 412,
    rightly): then again."""
    for _ in range(tries):
        status, h, current = call("GET", f"{api.rest_url}{path}", api.key)
        assert status == 200, current
        assert etag(h) == quoted(current)
        out = call(method, f"{api.rest_url}{path}", api.key, body, headers={"If-Match": etag(h)})
        if out[0] != 412 or not api.kubernetes:
            return out
        time.sleep(0.3)
    return out


def stored_version_is_etag(api, path: str, kind: str, name: str, ns: str | None) -> dict:
    """The object as the API server holds it, whose resourceVersion is the facade's ETag
    (read both until no status write came between them)."""
    for _ in range(20):
        status, h, _ = call("GET", f"{api.rest_url}{path}", api.key)
        stored = api.kubectl.get(kind, name, ns)
        if etag(h) == f'"{stored["metadata"]["resourceVersion"]}"':
            return stored
        time.sleep(0.3)
    raise AssertionError(f"ETag {etag(h)} never matched {kind} {name}'s resourceVersion")


def test_crud_in_both_modes(rest_api):
    api, key = rest_api, rest_api.key
    t = api.tenant_name("crud")
    tenant = resource("Tenant", t, {"domains": [f"{t}.example"]}, labels={"team": "e2e"})
    status, headers, body = call("POST", f"{api.rest_url}/tenants", key, tenant)
    assert status == 201, body
    assert headers["ETag"] == f'"{body["metadata"]["resourceVersion"]}"'
    assert "managedFields" not in body["metadata"]
    # Create again: 409.
    status, h, problem = call("POST", f"{api.rest_url}/tenants", key, tenant)
    assert_problem(status, h, problem, 409)
    assert "already exists" in problem["detail"], problem
    if api.kubernetes:
        stored = api.kubectl.get("tenant", t)
        assert stored["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
        assert managers(stored).get("mcp-rest") == "Apply", dumps(stored["metadata"])
        assert stored["metadata"]["labels"]["team"] == "e2e"

    # GET answers the ETag of what it returns; an unknown tenant is 404 on every
    # tenant-scoped path.
    status, h2, got = call("GET", f"{api.rest_url}/tenants/{t}", key)
    assert status == 200 and etag(h2) == quoted(got), got
    if api.kubernetes:
        stored_version_is_etag(api, f"/tenants/{t}", "tenant", t, None)
    for path in ("mailboxes", "mailboxes/x", "pipelines", "plugins/x", "quarantine"):
        status, h, problem = call("GET", f"{api.rest_url}/tenants/no-such-{t}/{path}", key)
        assert_problem(status, h, problem, 404)
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes/nobody", key)
    assert_problem(status, h, problem, 404)

    # A Mailbox with a password: its Secret, referenced and (Kubernetes) owned by the Mailbox.
    mb = resource("Mailbox", "carol", {"address": f"carol@{t}.example", "displayName": "Carol"})
    status, mh, carol = call("POST", f"{api.rest_url}/tenants/{t}/mailboxes", key, {**mb, "password": "carol-pw-1"})
    assert status == 201, carol
    assert etag(mh) == quoted(carol)
    assert carol["spec"]["credentials"] == {"secretRef": {"name": "carol-password", "key": "password"}}
    assert carol["spec"]["tenant"] == t and "password" not in carol
    status, h, problem = call("POST", f"{api.rest_url}/tenants/{t}/mailboxes", key, {**mb, "password": "x"})
    assert_problem(status, h, problem, 409)
    # An address outside the tenant's domains: 422 naming the field, in both modes.
    status, h, problem = call("POST", f"{api.rest_url}/tenants/{t}/mailboxes", key,
                              {**resource("Mailbox", "eve", {"address": "eve@elsewhere.org"}), "password": "x"})
    assert_problem(status, h, problem, 422)
    assert problem["errors"][0]["field"] == "spec.address", problem
    if api.kubernetes:
        ns = api.namespace(t)
        stored = stored_version_is_etag(api, f"/tenants/{t}/mailboxes/carol", "mailbox", "carol", ns)
        assert managers(stored).get("mcp-rest") == "Apply", dumps(stored["metadata"])
        secret = wait_for_owner(api, "carol-password", ns)
        assert api.kubectl.secret_data("carol-password", ns) == {"password": b"carol-pw-1"}
        assert managers(secret).get("mcp-rest") == "Apply"
        [owner] = secret["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Mailbox", "carol", stored["metadata"]["uid"])

    # PUT under the current ETag: 200 and a new ETag; the first one is then stale: 412 for
    # PUT and DELETE.
    carol["spec"]["state"] = "Suspended"
    status, h3, suspended = with_current_etag(api, "PUT", f"/tenants/{t}/mailboxes/carol", carol)
    assert status == 200, suspended
    assert etag(h3) != etag(mh) and suspended["spec"]["state"] == "Suspended"
    for method, payload in (("PUT", carol), ("DELETE", None)):
        status, h, problem = call(method, f"{api.rest_url}/tenants/{t}/mailboxes/carol", key, payload,
                                  headers={"If-Match": etag(mh)})
        assert_problem(status, h, problem, 412)
    if api.kubernetes:
        assert api.kubectl.get("mailbox", "carol", ns)["spec"]["state"] == "Suspended"
    # The same PUT again changes nothing (no new generation; standalone: the same ETag).
    status, h4, again = call("PUT", f"{api.rest_url}/tenants/{t}/mailboxes/carol", key, suspended)
    assert status == 200, again
    assert again["metadata"]["generation"] == suspended["metadata"]["generation"]
    if not api.kubernetes:
        assert etag(h4) == etag(h3)

    # Lists: paging with limit/continue and labelSelector.
    for name in ("dave", "erin"):
        status, _, b = call("POST", f"{api.rest_url}/tenants/{t}/mailboxes", key,
                            {**resource("Mailbox", name, {"address": f"{name}@{t}.example"}, labels={"who": name}),
                             "password": f"{name}-pw"})
        assert status == 201, b
    status, _, page = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes?limit=2", key)
    assert status == 200 and [m["metadata"]["name"] for m in page["items"]] == ["carol", "dave"], page
    token = page["metadata"]["continue"]
    status, _, page2 = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes?limit=2&continue={token}", key)
    assert [m["metadata"]["name"] for m in page2["items"]] == ["erin"], page2
    assert not page2["metadata"].get("continue")
    status, _, sel = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes?labelSelector=who%3Derin", key)
    assert [m["metadata"]["name"] for m in sel["items"]] == ["erin"], sel
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes?continue=bogus", key)
    assert_problem(status, h, problem, 400)

    # Pipelines.
    pipeline = resource("Pipeline", "tag", {
        "scope": {"type": "MailboxSelector", "mailboxSelector": {"matchLabels": {"who": "dave"}}},
        "stages": ["deliver"],
        "steps": [{"name": "tag", "plugin": {"builtin": "header-tagger"},
                   "config": {"headers": [{"name": "X-T", "value": "1", "action": "set"}]}}]})
    status, _, p = call("POST", f"{api.rest_url}/tenants/{t}/pipelines", key, pipeline)
    assert status == 201, p
    status, _, plist = call("GET", f"{api.rest_url}/tenants/{t}/pipelines", key)
    assert [x["metadata"]["name"] for x in plist["items"]] == ["tag"]
    if api.kubernetes:
        assert managers(api.kubectl.get("pipeline", "tag", ns)).get("mcp-rest") == "Apply"

    # Plugins: the built-ins and a PluginDeployment; :disable / :enable flip spec.suspend.
    plugin = resource("PluginDeployment", "scanner",
                      {"image": "registry.example/scanner:1", "protocol": {"min": 1, "max": 1},
                       "stages": ["deliver"], "port": 50999})
    status, _, pd = call("POST", f"{api.rest_url}/tenants/{t}/plugins", key, plugin)
    assert status == 201, pd
    status, _, plugins = call("GET", f"{api.rest_url}/tenants/{t}/plugins", key)
    assert [b["name"] for b in plugins["builtin"]] == [
        "attachment-policy", "clamav", "dlp", "header-tagger", "rspamd", "size-limit"]
    assert [x["metadata"]["name"] for x in plugins["items"]] == ["scanner"]
    status, dh, disabled = switch(api, t, "scanner", "disable")
    assert status == 200 and disabled["spec"]["suspend"] is True, disabled
    assert etag(dh) == quoted(disabled)
    if api.kubernetes:
        stored = api.kubectl.get("plugindeployment", "scanner", ns)
        assert stored["spec"]["suspend"] is True and managers(stored).get("mcp-rest") == "Apply"
    status, _, enabled = switch(api, t, "scanner", "enable")
    # Absent (the CRD's default `false` in Kubernetes).
    assert status == 200 and enabled["spec"].get("suspend", False) is False, enabled
    if api.kubernetes:
        assert api.kubectl.get("plugindeployment", "scanner", ns)["spec"].get("suspend") is False
    status, h, problem = call("POST", f"{api.rest_url}/tenants/{t}/plugins/dlp:disable", key)
    assert_problem(status, h, problem, 409)

    # A Tenant with resources is not deleted; deletes with a stale ETag are 412.
    status, h, problem = call("DELETE", f"{api.rest_url}/tenants/{t}", key)
    assert_problem(status, h, problem, 409)
    assert "still has resources" in problem["detail"], problem
    status, h, problem = call("DELETE", f"{api.rest_url}/tenants/{t}/pipelines/tag", key,
                              headers={"If-Match": '"1"'})
    assert_problem(status, h, problem, 412)
    status, _, b = with_current_etag(api, "DELETE", f"/tenants/{t}/pipelines/tag")
    assert status == 204, b
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{t}/pipelines/tag", key)
    assert_problem(status, h, problem, 404)
    status, h, problem = call("DELETE", f"{api.rest_url}/tenants/{t}/pipelines/tag", key)
    assert_problem(status, h, problem, 404)
    for kind, name in (("plugins", "scanner"), ("mailboxes", "carol"), ("mailboxes", "dave"), ("mailboxes", "erin")):
        status, _, b = call("DELETE", f"{api.rest_url}/tenants/{t}/{kind}/{name}", key)
        assert status == 204, (kind, name, b)
    if api.kubernetes:
        # A Mailbox's finalizer waits for the dataplane (none runs here): it is being
        # deleted, and then no longer counts as the Tenant's.
        assert api.kubectl.get("mailbox", "carol", ns) is None or \
            api.kubectl.get("mailbox", "carol", ns)["metadata"].get("deletionTimestamp")
    status, _, b = call("DELETE", f"{api.rest_url}/tenants/{t}", key)
    assert status == 204, b
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{t}", key)
    assert_problem(status, h, problem, 404)


def switch(api, tenant: str, plugin: str, action: str):
    """POST :enable or :disable. The facade switches under the version it just read; in
    Kubernetes mode the PluginDeployment controller's status write may come between (a 412,
    rightly): then again."""
    for _ in range(10):
        out = call("POST", f"{api.rest_url}/tenants/{tenant}/plugins/{plugin}:{action}", api.key)
        if out[0] != 412 or not api.kubernetes:
            return out
        time.sleep(0.3)
    return out


def wait_for_owner(api, name: str, ns: str) -> dict:
    """The Secret `name` once it carries its owner reference (added right after the Mailbox)."""
    deadline = time.monotonic() + 10
    while True:
        s = api.kubectl.get("secret", name, ns)
        if s and s["metadata"].get("ownerReferences"):
            return s
        assert time.monotonic() < deadline, f"Secret {ns}/{name}: {s}"
        time.sleep(0.2)


def test_server_side_apply_conflicts_name_the_other_manager(rest_api):
    """Kubernetes only: a field another manager owns (kubectl here) is a 409 naming it."""
    api, key = rest_api, rest_api.key
    if not api.kubernetes:
        pytest.skip("server-side apply is Kubernetes mode's")
    t = api.tenant_name("ssa")
    api.kubectl.apply(resource("Tenant", t, {"domains": [f"{t}.example"], "quota": {"storage": "1Gi"}}))
    status, _, got = call("GET", f"{api.rest_url}/tenants/{t}", key)
    assert status == 200, got
    got["spec"]["quota"]["storage"] = "2Gi"
    status, h, problem = call("PUT", f"{api.rest_url}/tenants/{t}", key, got)
    assert_problem(status, h, problem, 409)
    assert '"e2e"' in problem["detail"] and "spec.quota.storage" in problem["detail"], problem
    assert api.kubectl.get("tenant", t)["spec"]["quota"]["storage"] == "1Gi"
    # The same values: no conflict, the fields are then shared with mcp-rest.
    got["spec"]["quota"]["storage"] = "1Gi"
    status, _, body = call("PUT", f"{api.rest_url}/tenants/{t}", key, got)
    assert status == 200, body


def test_bulk_import_creates_mailboxes_and_secrets(rest_api):
    api, key = rest_api, rest_api.key
    t = api.tenant_name("imp")
    status, _, b = call("POST", f"{api.rest_url}/tenants", key, resource("Tenant", t, {"domains": [f"{t}.example"]}))
    assert status == 201, b
    rows = [{"name": f"u{i}", "spec": {"address": f"u{i}@{t}.example"}, "password": f"pw-{i}"} for i in range(5)]
    rows.append({"spec": {"address": "bad@elsewhere.org"}, "password": "x"})
    status, body = post_raw(f"{api.rest_url}/tenants/{t}/mailboxes:import", key,
                            json.dumps(rows).encode(), "application/json")
    assert status == 200, body
    assert body["summary"] == {"created": 5, "updated": 0, "unchanged": 0, "failed": 1}, body
    assert body["results"][5]["errors"][0]["field"] == "spec.address", body
    # Again: unchanged.
    status, body = post_raw(f"{api.rest_url}/tenants/{t}/mailboxes:import", key,
                            json.dumps(rows[:5]).encode(), "application/json")
    assert body["summary"] == {"created": 0, "updated": 0, "unchanged": 5, "failed": 0}, body
    status, _, page = call("GET", f"{api.rest_url}/tenants/{t}/mailboxes", key)
    assert sorted(m["metadata"]["name"] for m in page["items"]) == [f"u{i}" for i in range(5)]
    if api.kubernetes:
        ns = api.namespace(t)
        for i in range(5):
            assert api.kubectl.secret_data(f"u{i}-password", ns) == {"password": f"pw-{i}".encode()}
            m = api.kubectl.get("mailbox", f"u{i}", ns)
            assert m["spec"]["credentials"]["secretRef"]["name"] == f"u{i}-password"


def test_quarantine_in_both_modes(rest_api):
    api, key = rest_api, rest_api.key
    if not api.kubernetes:
        t = api.tenant_name("q")
        status, _, b = call("POST", f"{api.rest_url}/tenants", key, resource("Tenant", t, {"domains": [f"{t}.example"]}))
        assert status == 201, b
        status, _, body = call("GET", f"{api.rest_url}/tenants/{t}/quarantine", key)
        assert status == 200 and body["items"] == [], body
        return
    # The tenant whose dataplane runs from what the operator wrote: the list answers.
    t = api.quarantine_tenant
    status, _, b = call("POST", f"{api.rest_url}/tenants", key, resource("Tenant", t, {"domains": [f"{t}.example"]}))
    assert status == 201, b
    api.dataplane.start()
    status, _, body = call("GET", f"{api.rest_url}/tenants/{t}/quarantine?limit=10", key)
    assert status == 200 and body["items"] == [], body
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{t}/quarantine/0123456789abcdef", key)
    assert_problem(status, h, problem, 404)
    # The tenant whose admin API nothing answers: 503, naming the tenant.
    d = api.unreachable_tenant
    status, _, b = call("POST", f"{api.rest_url}/tenants", key, resource("Tenant", d, {"domains": [f"{d}.example"]}))
    assert status == 201, b
    status, h, problem = call("GET", f"{api.rest_url}/tenants/{d}/quarantine", key)
    assert_problem(status, h, problem, 503)
    assert d in problem["detail"], problem
