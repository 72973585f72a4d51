"""The authorization matrix of the REST API against a real `mcp standalone` (docs/rest-api.md,
"Roles"): every credential (admin, tenant-admin of tenant A, tenant-admin of tenant B,
viewer, an inactive key, an expired key, no key, malformed keys, a bearer token) x every
operation of the served OpenAPI document (iterated from `openapi.json`, so a new endpoint
cannot escape the matrix: an operation the classifier below does not know fails the test) x
every tenant (A, B, one that does not exist). The expected outcome comes from the RBAC table
of operator/api/src/rbac.rs, ported to `POLICY` below: 401 (problem+json with
`WWW-Authenticate`), 403 (problem+json), 404 (a tenant-admin asking for another tenant's API
key: hidden, as if absent), or allowed (any other status but 5xx). Requests change nothing:
creates carry `?dryRun=true` or a body the server refuses after authorizing, replaces and
deletes a stale `If-Match`; only API keys made for the purpose are deleted.

Run with the API keys in SQLite and, when `MCP_TEST_POSTGRES_URL` is set, in PostgreSQL
(`--api-store-url`). With the test OIDC provider running (`e2e/services/hydra.sh`, which sets
MCP_TEST_OIDC_ISSUER/MCP_TEST_OIDC_CLIENT) the server gets `--oidc-config` (rest_modes.py) and
the matrix has real bearer tokens too: admin, viewer and tenant-admin of A by scope, a token
without a role (403 everywhere) and one for another audience (401); without the provider
these rows are left out (a failure with MCP_REQUIRE_OIDC=1)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from conftest import _psql, _with_database
from rest_modes import oidc_config
from test_rest_auth import PROBLEM, call, gen_key

TENANT_A = "alpha"
TENANT_B = "beta"
NO_TENANT = "nosuch"
TENANTS = {"own": TENANT_A, "other": TENANT_B, "nonexistent": NO_TENANT}

READ, CREATE, UPDATE, DELETE = "read", "create", "update", "delete"
ALL_VERBS = {READ, CREATE, UPDATE, DELETE}
TENANT_GROUPS = {"mailboxes", "pipelines", "plugins", "policies", "quarantine", "migrations", "apikeys"}
ALL_GROUPS = TENANT_GROUPS | {"tenants"}

# operator/api/src/rbac.rs POLICY: (role, verbs, groups, scope); allowed iff one row covers
# the request. Scope "own": only a tenant target equal to the principal's tenant.
POLICY = [
    ("admin", ALL_VERBS, ALL_GROUPS, "any"),
    ("tenant-admin", {READ}, {"tenants"}, "own"),
    ("tenant-admin", ALL_VERBS, TENANT_GROUPS, "own"),
    ("viewer", {READ}, ALL_GROUPS - {"apikeys"}, "any"),
]

COLLECTIONS = {
    "mailboxes": "mailboxes",
    "pipelines": "pipelines",
    "plugins": "plugins",
    "policies": "policies",
    "quarantine": "quarantine",
    "migrationjobs": "migrations",
}


def authorize(role: str, own: str | None, verbs: set[str], group: str, target: str | None) -> bool:
    """rbac::authorize for every verb of `verbs`; `target` None is Target::All."""
    def one(verb: str) -> bool:
        return any(
            r == role and verb in vs and group in gs and (scope == "any" or (target is not None and target == own))
            for r, vs, gs, scope in POLICY
        )
    return all(one(v) for v in verbs)


@dataclass(frozen=True)
class Op:
    """One operation of the document, classified: RBAC group and verbs, and what its target
    tenant is (`path`: the `{tenant}` of the path; `list`: a list narrowed for a
    tenant-admin; `body`: the tenant named in the body; `key`: the tenant of the API key
    `{id}`; `public`: no authentication)."""

    method: str
    path: str
    group: str
    verbs: frozenset[str]
    target: str
    op: dict


def classify(method: str, path: str, op: dict) -> Op:
    p = path.removeprefix("/api/v1")
    m = method.upper()
    verb_of = {"GET": {READ}, "PUT": {UPDATE, CREATE}, "DELETE": {DELETE}, "PATCH": {UPDATE}}
    if p.startswith("/health/"):
        return Op(m, path, "health", frozenset(), "public", op)
    if p == "/apikeys":
        return Op(m, path, "apikeys", frozenset({READ} if m == "GET" else {CREATE}),
                  "list" if m == "GET" else "body", op)
    if p == "/apikeys/{id}":
        return Op(m, path, "apikeys", frozenset(verb_of[m]), "key", op)
    if p == "/tenants":
        return Op(m, path, "tenants", frozenset({READ} if m == "GET" else {CREATE}),
                  "list" if m == "GET" else "body", op)
    if p == "/tenants/{tenant}":
        return Op(m, path, "tenants", frozenset(verb_of[m]), "path", op)
    r = re.fullmatch(
        r"/tenants/\{tenant\}/(?P<coll>[a-z]+)(?P<import>:import)?"
        r"(/\{(name|id)\}(?P<action>:(enable|disable|release))?)?",
        p,
    )
    assert r and r["coll"] in COLLECTIONS, f"{m} {path}: not in the matrix's classifier; add it"
    group = COLLECTIONS[r["coll"]]
    if r["import"]:
        verbs = {CREATE, UPDATE}
    elif r["action"]:
        verbs = {UPDATE}
    elif m == "POST":
        verbs = {CREATE}
    else:
        verbs = verb_of[m]
    return Op(m, path, group, frozenset(verbs), "path", op)


@dataclass(frozen=True)
class Cred:
    """A credential: its headers and the role it authenticates as (None: it does not)."""

    name: str
    headers: dict
    role: str | None
    tenant: str | None = None


def expected(cred: Cred, op: Op, tenant: str) -> str:
    """'200' (health), '401', '403', '404' (hidden) or 'allowed'."""
    if op.target == "public":
        return "200"
    if cred.role is None:
        return "401"
    if cred.role == "no-role":
        return "403"
    own = cred.tenant
    if op.target == "list":
        target = own if cred.role == "tenant-admin" else None
        return "allowed" if authorize(cred.role, own, set(op.verbs), op.group, target) else "403"
    if op.target == "key":
        # The caller's own scope first: a role that may not `verb` any key (a viewer) is
        # refused whatever the id; then a tenant-admin sees only its tenant's keys (404).
        scope = own if cred.role == "tenant-admin" else None
        if not authorize(cred.role, own, set(op.verbs), op.group, scope):
            return "403"
        if tenant == NO_TENANT:
            return "404"
        if not authorize(cred.role, own, {READ}, op.group, tenant):
            return "404"
        return "allowed" if authorize(cred.role, own, set(op.verbs), op.group, tenant) else "403"
    if op.target == "body" and op.group == "apikeys":
        scope = own if cred.role == "tenant-admin" else None
        if not authorize(cred.role, own, {CREATE}, op.group, scope):
            return "403"
    return "allowed" if authorize(cred.role, own, set(op.verbs), op.group, tenant) else "403"


def request(method: str, url: str, headers: dict, body: bytes | None, content_type: str | None):
    h = dict(headers)
    if content_type:
        h["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, r.headers, raw
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Fixture:
    """The server, its tenants and credentials."""

    def __init__(self, server):
        self.server = server
        self.base = f"http://{server.host}:{server.rest_port}"
        self.admin = server.bootstrap_key()
        assert self.admin
        for t in (TENANT_A, TENANT_B):
            status, _, body = call("POST", f"{server.rest_url}/tenants", self.admin,
                                   {"metadata": {"name": t}, "spec": {"domains": [f"{t}.example"]}})
            assert status == 201, body

    def key(self, role: str, tenant: str | None = None) -> tuple[str, int]:
        body = {"name": f"mx-{uuid.uuid4().hex[:12]}", "role": role}
        if tenant:
            body["tenant"] = tenant
        status, _, created = call("POST", f"{self.server.rest_url}/apikeys", self.admin, body)
        assert status == 201, created
        return created["key"], created["id"]

    def creds(self) -> list[Cred]:
        def x(key):
            return {"X-API-Key": key}
        inactive, inactive_id = self.key("admin")
        status, _, body = call("PATCH", f"{self.server.rest_url}/apikeys/{inactive_id}", self.admin,
                               {"active": False})
        assert status == 200 and body["active"] is False, body
        # The API accepts an expiry in the past on PATCH (not on create): an expired key.
        expired, expired_id = self.key("admin")
        status, _, body = call("PATCH", f"{self.server.rest_url}/apikeys/{expired_id}", self.admin,
                               {"expiresAt": "2001-01-01T00:00:00Z"})
        assert status == 200 and body["expiresAt"].startswith("2001-"), body
        return [
            Cred("admin", x(self.admin), "admin"),
            Cred("tenant-admin-A", x(self.key("tenant-admin", TENANT_A)[0]), "tenant-admin", TENANT_A),
            Cred("tenant-admin-B", x(self.key("tenant-admin", TENANT_B)[0]), "tenant-admin", TENANT_B),
            Cred("viewer", x(self.key("viewer")[0]), "viewer"),
            Cred("inactive", x(inactive), None),
            Cred("expired", x(expired), None),
            Cred("no-key", {}, None),
            Cred("malformed", x("mcp_not-a-key"), None),
            Cred("unknown", x(gen_key()), None),
            Cred("wrong-secret", x(self.admin[:-2] + ("AA" if not self.admin.endswith("AA") else "BB")), None),
            Cred("empty", x(""), None),
            Cred("bearer", {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}, None),
            Cred("basic", {"Authorization": "Basic YWRtaW46YWRtaW4="}, None),
        ] + self.oidc_creds()

    def oidc_creds(self) -> list[Cred]:
        """Bearer tokens of the test provider, when the server was started with it."""
        if not self.server_has_oidc:
            return []
        from test_rest_oidc import token

        def b(tok):
            return {"Authorization": f"Bearer {tok}"}
        return [
            Cred("oidc-admin", b(token("mcp-admin")), "admin"),
            Cred("oidc-tenant-admin-A", b(token("mcp-ops")), "tenant-admin", TENANT_A),
            Cred("oidc-viewer", b(token("mcp-viewer")), "viewer"),
            Cred("oidc-no-role", b(token("other")), "no-role"),
            Cred("oidc-other-audience", b(token("mcp-admin", audience="someone-else")), None),
        ]

    server_has_oidc = False

    def target_key(self, tenant: str, fresh: bool) -> str:
        """The `{id}` of a tenant-admin key of `tenant` (a fresh one when the case may
        delete it); an id that does not exist for the nonexistent tenant."""
        if tenant == NO_TENANT:
            return "987654321"
        if fresh:
            return str(self.key("tenant-admin", tenant)[1])
        if tenant not in self._keys:
            self._keys[tenant] = str(self.key("tenant-admin", tenant)[1])
        return self._keys[tenant]

    _keys: dict = {}

    def send(self, cred: Cred, op: Op, tenant: str):
        path = op.path.replace("{tenant}", tenant).replace("{name}", "mx").replace("{id}", "1")
        query = {}
        headers = dict(cred.headers)
        body = None
        content_type = None
        params = {p.get("name"): p for p in op.op.get("parameters", []) if isinstance(p, dict)}
        if "dryRun" in params:
            query["dryRun"] = "true"
        if "If-Match" in params:
            headers["If-Match"] = '"0"'  # stale: nothing is replaced or deleted
        if op.target == "key":
            path = op.path.replace("{id}", self.target_key(tenant, fresh=op.method == "DELETE"))
        if "requestBody" in op.op:
            content = op.op["requestBody"].get("content", {})
            assert "application/json" in content, f"{op.method} {op.path}: {list(content)}"
            content_type = "application/json"
            if op.group == "apikeys" and op.method == "POST":
                doc = {"name": f"mx-{uuid.uuid4().hex[:12]}", "role": "tenant-admin", "tenant": tenant}
            elif op.group == "apikeys":
                doc = {"active": True}
            elif op.path.endswith(":import"):
                doc = []
            elif op.path == "/api/v1/tenants":
                # Valid but for an unknown field, so nothing is created after authorizing.
                doc = {"metadata": {"name": tenant}, "spec": {"domains": [f"{tenant}.example"]}, "x": 1}
            else:
                doc = {}  # authorized first, then refused (422): nothing is written
            body = json.dumps(doc).encode()
        url = self.base + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        return request(op.method, url, headers, body, content_type)


def api_store_params():
    out = ["sqlite"]
    if os.environ.get("MCP_TEST_POSTGRES_URL"):
        out.append("postgres")
    return out


@pytest.fixture(params=api_store_params())
def matrix_server(request, mcp_factory, storage, tmp_path):
    if storage.kind != "sqlite":
        pytest.skip("the matrix is about the API key store; the metadata storage is sqlite")
    extra = ("--rest-rate", "100000", "--rest-burst", "100000")
    oidc = oidc_config(tmp_path, TENANT_A)
    if oidc:
        extra += ("--oidc-config", str(oidc))
    elif os.environ.get("MCP_REQUIRE_OIDC") == "1":
        pytest.fail("MCP_REQUIRE_OIDC=1 but MCP_TEST_OIDC_ISSUER is not set")
    if request.param == "sqlite":
        yield mcp_factory(extra_args=extra)
        return
    admin_url = os.environ["MCP_TEST_POSTGRES_URL"]
    name = "mcp_matrix_" + uuid.uuid4().hex[:12]
    _psql(admin_url, f"CREATE DATABASE {name}")
    try:
        server = mcp_factory(extra_args=extra + ("--api-store-url", _with_database(admin_url, name)))
        assert not (server.data_dir / "api.sqlite").exists()
        yield server
        server.stop()
    finally:
        _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_auth_matrix(matrix_server):
    fx = Fixture(matrix_server)
    fx._keys = {}
    fx.server_has_oidc = bool(os.environ.get("MCP_TEST_OIDC_ISSUER"))
    status, _, doc = call("GET", f"{matrix_server.rest_url}/openapi.json")
    assert status == 200
    ops = [
        classify(method, path, op)
        for path, item in sorted(doc["paths"].items())
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]
    assert len(ops) >= 35, [f"{o.method} {o.path}" for o in ops]
    creds = fx.creds()
    failures = []
    counts: dict[str, int] = {}
    for cred in creds:
        for op in ops:
            for which, tenant in TENANTS.items():
                want = expected(cred, op, tenant)
                status, headers, raw = fx.send(cred, op, tenant)
                counts[want] = counts.get(want, 0) + 1
                where = f"{cred.name} {op.method} {op.path} tenant={which}: want {want}, got {status}"
                ok = {
                    "200": status == 200,
                    "401": status == 401,
                    "403": status == 403,
                    "404": status == 404,
                    "allowed": status not in (401, 403) and status < 500,
                }[want]
                if not ok:
                    failures.append(f"{where} {raw[:200]!r}")
                    continue
                if status >= 400:
                    if headers.get("Content-Type") != PROBLEM:
                        failures.append(f"{where}: Content-Type {headers.get('Content-Type')}")
                        continue
                    problem = json.loads(raw)
                    if problem.get("status") != status or not problem.get("title") or not problem.get("detail"):
                        failures.append(f"{where}: problem {problem}")
                if status == 401:
                    challenge = headers.get("WWW-Authenticate") or ""
                    if "X-API-Key" not in challenge and "Bearer" not in challenge:
                        failures.append(f"{where}: WWW-Authenticate {challenge!r}")
    total = sum(counts.values())
    print(f"auth matrix: {len(creds)} credentials x {len(ops)} operations x {len(TENANTS)} tenants = "
          f"{total} requests; expected outcomes {dict(sorted(counts.items()))}")
    assert not failures, f"{len(failures)} of {total} cases failed:\n" + "\n".join(failures[:80])
    # Nothing was destroyed: both tenants and the admin key are still there.
    for t in (TENANT_A, TENANT_B):
        status, _, body = call("GET", f"{matrix_server.rest_url}/tenants/{t}", fx.admin)
        assert status == 200, body
