"""Render and run a scaled-out Tenant (issue 6): a Tenant whose storage is PostgreSQL and S3
(both by Secret reference) with two replicas is rendered by the operator, against the real
API server, into a Deployment of two replicas; then two `mcp dataplane` processes run
locally from exactly what was rendered (the ConfigMap, the TLS and admin Secrets, and the
container's environment with its Secret references resolved), on a real PostgreSQL database
and the moto S3 server. The operator provisions a Mailbox through one replica; the other
serves it, and IDLE on one reports an APPEND made on the other.

Needs KUBECONFIG (API server), MCP_TEST_POSTGRES_URL and MCP_TEST_S3_ENDPOINT; skipped
without them unless required (MCP_REQUIRE_K8S / MCP_REQUIRE_POSTGRES / MCP_REQUIRE_S3)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
import conftest  # noqa: E402
from conftest import free_ports  # noqa: E402
from fixtures import admin, crds, dataplanes, operator, ports  # noqa: E402,F401 (pytest fixtures)
from harness import Dataplane  # noqa: E402
from imaputil import Conn  # noqa: E402
from kube import Kubectl, condition, wait_for  # noqa: E402

for var, required in (
    ("KUBECONFIG", "MCP_REQUIRE_K8S"),
    ("MCP_TEST_POSTGRES_URL", "MCP_REQUIRE_POSTGRES"),
    ("MCP_TEST_S3_ENDPOINT", "MCP_REQUIRE_S3"),
):
    if not os.environ.get(var):
        if os.environ.get(required) == "1":
            raise RuntimeError(f"{required}=1 but {var} is not set")
        pytest.skip(f"{var} not set", allow_module_level=True)

TENANTS = ["e2e-scale"]
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))
NS = "mcp-e2e-scale"


def resolved_env(kc: Kubectl, deployment: dict) -> dict[str, str]:
    """The dataplane container's environment as the kubelet would set it: plain values, and
    `secretKeyRef`s read from their Secrets."""
    out = {}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for e in container.get("env", []):
        if "value" in e:
            out[e["name"]] = e["value"]
        elif ref := e.get("valueFrom", {}).get("secretKeyRef"):
            out[e["name"]] = kc.secret_data(ref["name"], NS)[ref["key"]].decode()
    return out


@pytest.fixture
def database():
    with conftest._fresh_storage("postgres") as storage:
        yield storage.url


def test_a_postgres_and_s3_tenant_runs_as_two_replicas_from_what_was_rendered(
    admin, operator, dataplanes, database, tmp_path
):
    prefix = f"scale-{uuid.uuid4().hex[:8]}/"
    # The Tenant first: the operator creates (and owns) its namespace; the Secrets it
    # references by name go there.
    admin.apply(
        [
            {
                "apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": "e2e-scale"},
                "spec": {
                    "domains": ["e2e-scale.example"],
                    "dataplane": {
                        "replicas": 2,
                        "storage": {
                            "backend": "Postgres",
                            "postgres": {"secretRef": {"name": "pg"}},
                            "s3": {
                                "bucket": os.environ.get("MCP_TEST_S3_BUCKET", "mcp-test"),
                                "prefix": prefix,
                                "endpoint": os.environ["MCP_TEST_S3_ENDPOINT"],
                                "forcePathStyle": True,
                                "secretRef": {"name": "s3"},
                            },
                        },
                    },
                },
            },
        ]
    )
    wait_for("the namespace", lambda: admin.get("namespace", NS), timeout=TIMEOUT)
    admin.apply(
        [
            {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "pg", "namespace": NS},
                "stringData": {"uri": database},
            },
            {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s3", "namespace": NS},
                "stringData": {
                    "accessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
                    "secretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
                },
            },
        ]
    )
    dep = wait_for("the Deployment", lambda: admin.get("deployment", "mcp-e2e-scale-dataplane", NS), timeout=TIMEOUT)
    assert dep["spec"]["replicas"] == 2
    assert admin.get("statefulset", "mcp-e2e-scale-dataplane", NS) is None
    env = resolved_env(admin, dep)
    assert env["MCP_STORE_URL"] == database

    # Replica 0 is the one the operator reaches (--dataplane-endpoint); replica 1 gets its
    # own ports and work directory, from the same rendered objects.
    first = dataplanes("e2e-scale")
    imap, imaps, metrics, admin_port = free_ports(4)
    second = Dataplane(
        first.binary, admin, "e2e-scale", tmp_path / "replica-1",
        {"imap": imap, "imaps": imaps, "metrics": metrics, "admin": admin_port},
    )
    for dp in (first, second):
        dp.env = env
        dp.start()
    try:
        admin.apply(
            [
                {
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "carol-credentials", "namespace": NS},
                    "stringData": {"password": "carol-pw-1"},
                },
                {
                    "apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
                    "metadata": {"name": "carol", "namespace": NS},
                    "spec": {
                        "tenant": "e2e-scale",
                        "address": "carol@e2e-scale.example",
                        "credentials": {"secretRef": {"name": "carol-credentials"}},
                    },
                },
            ]
        )

        def provisioned():
            m = admin.get("mailbox", "carol", NS)
            c = condition(m)
            return m if c and c["status"] == "True" and m["status"].get("provisioned") else None

        wait_for("the Mailbox provisioned", provisioned, timeout=TIMEOUT)

        def login(dp: Dataplane) -> Conn:
            c = Conn("127.0.0.1", dp.ports["imap"], timeout=30)
            c.cmd('LOGIN "carol@e2e-scale.example" "carol-pw-1"').ok()
            return c

        # Provisioned through replica 0, served by replica 1 (one database).
        with login(second) as watcher, login(first) as writer:
            watcher.select("INBOX")
            tag = watcher.send_cmd("IDLE")
            assert watcher.readline().startswith(b"+ ")
            writer.append("INBOX", b"From: a@e2e-scale.example\r\nSubject: across\r\n\r\nbody\r\n").ok()
            assert watcher.readline() == b"* 1 EXISTS", "IDLE on replica 1 sees replica 0's APPEND"
            watcher.send(b"DONE\r\n")
            assert watcher.collect(tag).status == "OK"
            r = watcher.cmd("FETCH 1 BODY.PEEK[]").ok()
            assert b"Subject: across" in b"".join(r.untagged), "the body, from S3, read by the other replica"
    finally:
        second.stop()
