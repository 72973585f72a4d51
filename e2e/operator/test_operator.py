"""The operator against the real API server (issue 3).

`mcp-operator` runs as the Helm chart's ServiceAccount, by impersonation, with exactly the
chart's RBAC: a verb missing from the chart fails these tests. Each Tenant's dataplane runs
locally from exactly the ConfigMap and Secrets the operator wrote (no kubelet here), and the
operator reaches its admin API through `--dataplane-endpoint`.

Skipped without KUBECONFIG unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets both).
"""

from __future__ import annotations

import imaplib
import os
import ssl
import time
from pathlib import Path

import pytest

from conftest import free_ports
from fixtures import admin, crds, dataplanes, operator, ports  # noqa: F401 (pytest fixtures)
from harness import OPERATOR_NAMESPACE, Dataplane, Operator
from kube import REPO, Kubectl, condition, ready_status, wait_for


if not os.environ.get("KUBECONFIG"):
    if os.environ.get("MCP_REQUIRE_K8S") == "1":
        raise RuntimeError("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set (start e2e/services/k8s.sh)")
    pytest.skip("KUBECONFIG not set: no API server", allow_module_level=True)

# Tenants of this module; each gets its own dataplane ports, known before the operator starts.
TENANTS = ["e2e-main", "e2e-pg", "e2e-gc", "e2e-bad", "e2e-nsdel"]
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))


def tenant(name: str, **spec) -> dict:
    return {
        "apiVersion": "mcp.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"domains": [f"{name}.example"], **spec},
    }


def secret(name: str, namespace: str, password: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"password": password},
    }


def mailbox(name: str, tenant_name: str, retention: str = "Retain", **spec) -> dict:
    return {
        "apiVersion": "mcp.dev/v1alpha1",
        "kind": "Mailbox",
        "metadata": {"name": name, "namespace": f"mcp-{tenant_name}"},
        "spec": {
            "tenant": tenant_name,
            "address": f"{name}@{tenant_name}.example",
            "credentials": {"secretRef": {"name": f"{name}-credentials"}},
            "retention": retention,
            **spec,
        },
    }


def wait_ready(kc: Kubectl, kind: str, name: str, namespace: str | None = None, status: str = "True") -> dict:
    def probe():
        obj = kc.get(kind, name, namespace)
        c = condition(obj)
        if c and c["status"] == status and c.get("observedGeneration") == obj["metadata"]["generation"]:
            return obj
        return None

    try:
        return wait_for(f"{kind} {name} Ready={status}", probe, timeout=TIMEOUT)
    except AssertionError:
        obj = kc.get(kind, name, namespace)
        raise AssertionError(f"{kind} {name} not Ready={status}: {(obj or {}).get('status')}")


def imap_login(dp: Dataplane, user: str, password: str) -> imaplib.IMAP4:
    ctx = ssl.create_default_context(cafile=str(dp.etc / "tls" / "tls.crt"))
    ctx.check_hostname = False  # the certificate names the tenant's domains, we dial 127.0.0.1
    conn = imaplib.IMAP4("127.0.0.1", dp.ports["imap"])
    conn.starttls(ctx)
    conn.login(user, password)
    return conn


def events_for(kc: Kubectl, namespace: str, name: str) -> list[str]:
    items = kc.items("events.events.k8s.io", namespace)
    return [e.get("reason", "") for e in items if e.get("regarding", {}).get("name") == name]


def owner_is(obj: dict, tenant_obj: dict) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(
        r["kind"] == "Tenant"
        and r["uid"] == tenant_obj["metadata"]["uid"]
        and r.get("controller") is True
        and r.get("blockOwnerDeletion") is True
        for r in refs
    )


def child_versions(kc: Kubectl, name: str) -> dict[str, str]:
    ns = f"mcp-{name}"
    out = {"namespace": kc.get("namespace", ns)["metadata"]["resourceVersion"]}
    for kind in ("statefulset", "deployment", "service", "configmap", "networkpolicy", "poddisruptionbudget", "secret"):
        for item in kc.items(kind, ns, selector="app.kubernetes.io/managed-by=mcp-operator"):
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


# --- Tenant children -------------------------------------------------------------------


def test_embedded_tenant_gets_its_children_with_owner_references(admin, operator, dataplanes):
    admin.apply(tenant("e2e-main"))
    t = wait_for("Tenant status", lambda: (admin.get("tenant", "e2e-main") or {}).get("status"), timeout=TIMEOUT)
    t = admin.get("tenant", "e2e-main")
    ns = "mcp-e2e-main"
    assert t["status"]["namespace"] == ns
    namespace = admin.get("namespace", ns)
    assert owner_is(namespace, t)
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["mcp.dev/tenant"] == "e2e-main"
    want = {
        ("statefulset", "mcp-e2e-main-dataplane"),
        ("service", "mcp-e2e-main-dataplane"),
        ("configmap", "mcp-e2e-main-dataplane-config"),
        ("networkpolicy", "mcp-e2e-main-dataplane"),
        ("secret", "mcp-e2e-main-dataplane-tls"),
        ("secret", "mcp-e2e-main-dataplane-admin"),
    }
    for kind, name in want:
        obj = wait_for(f"{kind}/{name}", lambda: admin.get(kind, name, ns), timeout=TIMEOUT)
        assert owner_is(obj, t), f"{kind}/{name} lacks the Tenant's controller owner reference"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mcp-operator"
    assert admin.get("poddisruptionbudget", "mcp-e2e-main-dataplane", ns) is None, "one replica: no budget"
    sts = admin.get("statefulset", "mcp-e2e-main-dataplane", ns)
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    # Every field of the children is owned by the operator's one field manager.
    managers = {m["manager"] for m in sts["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert managers == {"mcp-operator"}
    # Without a dataplane the Tenant is not Ready, and says why.
    c = condition(t)
    assert c["status"] == "False" and c["reason"] == "DataplaneUnavailable", c


def test_postgres_tenant_gets_a_deployment_and_a_budget_that_follows_replicas(admin, operator):
    spec = {
        "dataplane": {
            "replicas": 3,
            "storage": {
                "backend": "Postgres",
                "postgres": {"secretRef": {"name": "pg"}},
                "s3": {"bucket": "mail", "secretRef": {"name": "s3"}},
            },
        }
    }
    admin.apply(tenant("e2e-pg", **spec))
    ns = "mcp-e2e-pg"
    dep = wait_for("Deployment", lambda: admin.get("deployment", "mcp-e2e-pg-dataplane", ns), timeout=TIMEOUT)
    assert dep["spec"]["replicas"] == 3
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MCP_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "uri", "optional": False}
    wait_for("PodDisruptionBudget", lambda: admin.get("poddisruptionbudget", "mcp-e2e-pg-dataplane", ns), timeout=TIMEOUT)
    assert admin.get("statefulset", "mcp-e2e-pg-dataplane", ns) is None
    # Down to one replica: the budget the operator made is deleted.
    spec["dataplane"]["replicas"] = 1
    admin.apply(tenant("e2e-pg", **spec))
    wait_for(
        "the budget to be pruned",
        lambda: admin.get("poddisruptionbudget", "mcp-e2e-pg-dataplane", ns) is None,
        timeout=TIMEOUT,
    )
    wait_for(
        "replicas 1",
        lambda: admin.get("deployment", "mcp-e2e-pg-dataplane", ns)["spec"]["replicas"] == 1,
        timeout=TIMEOUT,
    )


# --- Render and run: the dataplane serves a provisioned Mailbox ---------------------------


def test_render_and_run_tenant_ready_mailbox_provisioned_and_served(admin, operator, dataplanes):
    dp = dataplanes("e2e-main").start()
    wait_ready(admin, "tenant", "e2e-main")
    ns = "mcp-e2e-main"
    admin.apply([secret("alice-credentials", ns, "alice-pw-1"), mailbox("alice", "e2e-main")])
    m = wait_ready(admin, "mailbox", "alice", ns)
    assert m["status"]["provisioned"] is True
    assert m["metadata"]["finalizers"] == ["mcp.dev/mailbox-data"]
    assert m["status"]["usage"] == {"storage": "0", "messages": 0}
    code, account = dp.admin_get("alice@e2e-main.example")
    assert code == 200 and account["active"] is True
    assert {"INBOX", "Sent", "Drafts", "Trash"} <= set(account["folders"]), account

    conn = imap_login(dp, "alice@e2e-main.example", "alice-pw-1")
    msg = b"From: bob@e2e-main.example\r\nSubject: hello from the operator test\r\n\r\nbody\r\n"
    assert conn.append("INBOX", None, None, msg)[0] == "OK"
    conn.select("INBOX")
    typ, data = conn.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"hello from the operator test" in data[0][1]
    conn.logout()
    assert "Provisioned" in wait_for("a Provisioned Event", lambda: events_for(admin, ns, "alice") or None)
    t = wait_for(
        "Tenant counts the Mailbox",
        lambda: (lambda t: t if t["status"].get("mailboxes") == 1 else None)(admin.get("tenant", "e2e-main")),
        timeout=TIMEOUT,
    )
    assert condition(t)["reason"] == "Reconciled"


def test_deleted_children_of_a_ready_tenant_come_back(admin, operator, dataplanes):
    """A Ready Tenant waits for changes; deleting one of its children is such a change, the
    issued Secrets included (without the TLS Secret the pod cannot start)."""
    wait_ready(admin, "tenant", "e2e-main")
    ns = "mcp-e2e-main"
    children = [
        ("secret", "mcp-e2e-main-dataplane-tls"),
        ("service", "mcp-e2e-main-dataplane"),
        ("configmap", "mcp-e2e-main-dataplane-config"),
    ]
    old_cert = admin.secret_data("mcp-e2e-main-dataplane-tls", ns)["tls.crt"]
    for kind, name in children:
        time.sleep(3)  # no reconciliation of an earlier change still pending
        admin.delete(kind, name, ns, wait=True)
        wait_for(f"{kind}/{name} to come back", lambda: admin.get(kind, name, ns), timeout=10)
    assert admin.get("secret", "mcp-e2e-main-dataplane-tls", ns)["type"] == "kubernetes.io/tls"
    assert admin.secret_data("mcp-e2e-main-dataplane-tls", ns)["tls.crt"] != old_cert, "issued again"


def restart_and_wait_for_reconciles(operator: Operator) -> None:
    operator.stop()
    operator.start()
    wait_for(
        "both controllers to reconcile after the restart",
        lambda: operator.metric("mcp_operator_reconciliations_total", 'controller="tenant"') >= 1
        and operator.metric("mcp_operator_reconciliations_total", 'controller="mailbox"') >= 1,
        timeout=TIMEOUT,
    )
    time.sleep(3)  # anything written late shows by now


def test_unchanged_objects_are_not_written_again(admin, operator, dataplanes):
    """A second reconcile of unchanged objects writes nothing. A restarted operator reconciles
    everything again: the first restart may refresh usage (the test appended a message since
    the last provisioning); after the second, no resourceVersion moves and the operator sent
    no write at all."""
    restart_and_wait_for_reconciles(operator)
    before = child_versions(admin, "e2e-main")
    tenant_rv = admin.get("tenant", "e2e-main")["metadata"]["resourceVersion"]
    mailbox_rv = admin.get("mailbox", "alice", "mcp-e2e-main")["metadata"]["resourceVersion"]
    restart_and_wait_for_reconciles(operator)
    assert child_versions(admin, "e2e-main") == before
    assert admin.get("tenant", "e2e-main")["metadata"]["resourceVersion"] == tenant_rv
    assert admin.get("mailbox", "alice", "mcp-e2e-main")["metadata"]["resourceVersion"] == mailbox_rv
    # Server-side applies of unchanged children are PATCHes the server turns into no-ops;
    # everything else (status, Events, finalizers) is skipped by the operator itself.
    assert operator.metric("mcp_operator_api_requests_total", 'method="POST"') == 0
    assert operator.metric("mcp_operator_api_requests_total", 'method="DELETE"') == 0


def test_changed_password_secret_is_applied(admin, operator, dataplanes):
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.apply(secret("alice-credentials", ns, "alice-pw-2"))

    def new_password_works():
        try:
            imap_login(dp, "alice@e2e-main.example", "alice-pw-2").logout()
            return True
        except imaplib.IMAP4.error:
            return False

    wait_for("the new password to work", new_password_works, timeout=TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(dp, "alice@e2e-main.example", "alice-pw-1")


# --- Deletion --------------------------------------------------------------------------


def test_retain_keeps_the_mail_for_a_recreated_mailbox(admin, operator, dataplanes):
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.delete("mailbox", "alice", ns)
    wait_for("alice to be gone", lambda: admin.get("mailbox", "alice", ns) is None, timeout=TIMEOUT)
    code, account = dp.admin_get("alice@e2e-main.example")
    assert code == 200 and account["active"] is False and account["messages"] == 1
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(dp, "alice@e2e-main.example", "alice-pw-2")
    # The same address again finds its mail.
    admin.apply(mailbox("alice", "e2e-main"))
    m = wait_ready(admin, "mailbox", "alice", ns)
    assert m["status"]["usage"]["messages"] == 1
    conn = imap_login(dp, "alice@e2e-main.example", "alice-pw-2")
    typ, data = conn.select("INBOX")
    assert typ == "OK" and data[0] == b"1"
    conn.logout()


def test_delete_removes_the_mail(admin, operator, dataplanes):
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.apply([secret("carol-credentials", ns, "carol-pw"), mailbox("carol", "e2e-main", retention="Delete")])
    wait_ready(admin, "mailbox", "carol", ns)
    conn = imap_login(dp, "carol@e2e-main.example", "carol-pw")
    conn.append("INBOX", None, None, b"Subject: doomed\r\n\r\nx\r\n")
    conn.logout()
    admin.delete("mailbox", "carol", ns)
    wait_for("carol to be gone", lambda: admin.get("mailbox", "carol", ns) is None, timeout=TIMEOUT)
    assert dp.admin_get("carol@e2e-main.example")[0] == 404


def test_failing_cleanup_keeps_the_mailbox_until_it_succeeds(admin, operator, dataplanes):
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.apply([secret("dave-credentials", ns, "dave-pw"), mailbox("dave", "e2e-main", retention="Delete")])
    wait_ready(admin, "mailbox", "dave", ns)
    dp.stop()
    try:
        admin.delete("mailbox", "dave", ns)
        m = wait_for(
            "a CleanupFailed condition",
            lambda: (lambda m: m if (condition(m) or {}).get("reason") == "CleanupFailed" else None)(
                admin.get("mailbox", "dave", ns)
            ),
            timeout=TIMEOUT,
        )
        assert m["metadata"].get("deletionTimestamp"), "deletion requested"
        assert m["metadata"]["finalizers"] == ["mcp.dev/mailbox-data"], "the finalizer holds it"
        assert "CleanupFailed" in wait_for("a CleanupFailed Event", lambda: events_for(admin, ns, "dave") or None)
        time.sleep(2)
        assert admin.get("mailbox", "dave", ns) is not None, "kept while the dataplane is down"
    finally:
        dp.start()
    wait_for("dave to be gone once cleanup succeeds", lambda: admin.get("mailbox", "dave", ns) is None, timeout=TIMEOUT)
    assert dp.admin_get("dave@e2e-main.example")[0] == 404


# --- Invalid Mailboxes are reported, not retried hot --------------------------------------


@pytest.mark.parametrize(
    "name, patch, reason",
    [
        ("nosecret", {}, "SecretNotFound"),
        ("elsewhere", {"address": "elsewhere@other.example"}, "AddressOutsideDomains"),
        ("external", {"credentials": {"external": {"provider": "Oidc"}}}, "ExternalIdentityUnsupported"),
        ("orphan", {"tenant": "no-such-tenant"}, "TenantNotFound"),
    ],
)
def test_mailbox_that_cannot_be_provisioned_says_why(admin, operator, dataplanes, name, patch, reason):
    ns = "mcp-e2e-main"
    admin.apply(dict(mailbox(name, "e2e-main"), spec={**mailbox(name, "e2e-main")["spec"], **patch}))
    m = wait_ready(admin, "mailbox", name, ns, status="False")
    assert condition(m)["reason"] == reason, m["status"]
    assert m["status"]["provisioned"] is False
    admin.delete("mailbox", name, ns)
    wait_for(f"{name} to be gone", lambda: admin.get("mailbox", name, ns) is None, timeout=TIMEOUT)


def test_deleting_a_mailbox_of_the_wrong_namespace_leaves_the_account_alone(admin, operator, dataplanes):
    """A Mailbox in another namespace that names a tenant and an address of that tenant is
    refused (WrongNamespace). Deleting it, even with retention Delete, must not touch the
    account: it belongs to the tenant's own Mailbox of that address."""
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.apply([secret("victor-credentials", ns, "victor-pw"), mailbox("victor", "e2e-main")])
    wait_ready(admin, "mailbox", "victor", ns)
    conn = imap_login(dp, "victor@e2e-main.example", "victor-pw")
    assert conn.append("INBOX", None, None, b"Subject: keep me\r\n\r\nx\r\n")[0] == "OK"
    conn.logout()
    other = "e2e-main-elsewhere"
    admin.run("create", "namespace", other, check=False)
    try:
        intruder = mailbox("intruder", "e2e-main", retention="Delete", address="victor@e2e-main.example")
        intruder["metadata"]["namespace"] = other
        admin.apply([secret("intruder-credentials", other, "intruder-pw"), intruder])
        m = wait_ready(admin, "mailbox", "intruder", other, status="False")
        assert condition(m)["reason"] == "WrongNamespace", m["status"]
        admin.delete("mailbox", "intruder", other)
        wait_for("intruder to be gone", lambda: admin.get("mailbox", "intruder", other) is None, timeout=TIMEOUT)
        code, account = dp.admin_get("victor@e2e-main.example")
        assert code == 200 and account["active"] is True and account["messages"] == 1, account
        imap_login(dp, "victor@e2e-main.example", "victor-pw").logout()
    finally:
        admin.delete("namespace", other)
    admin.delete("mailbox", "victor", ns)
    wait_for("victor to be gone", lambda: admin.get("mailbox", "victor", ns) is None, timeout=TIMEOUT)


def test_missing_secret_appearing_later_provisions(admin, operator, dataplanes):
    ns = "mcp-e2e-main"
    admin.apply(mailbox("erin", "e2e-main"))
    wait_ready(admin, "mailbox", "erin", ns, status="False")
    admin.apply(secret("erin-credentials", ns, "erin-pw"))
    wait_ready(admin, "mailbox", "erin", ns)


# --- Tenant deletion ---------------------------------------------------------------------


def test_deleting_a_tenant_garbage_collects_its_children(admin, operator, dataplanes):
    dp = dataplanes("e2e-gc")
    admin.apply(tenant("e2e-gc"))
    dp.start()
    wait_ready(admin, "tenant", "e2e-gc")
    ns = "mcp-e2e-gc"
    admin.apply([secret("gina-credentials", ns, "gina-pw"), mailbox("gina", "e2e-gc", retention="Delete")])
    wait_ready(admin, "mailbox", "gina", ns)
    admin.delete("tenant", "e2e-gc")
    # The controller-manager's garbage collector deletes the namespace (an owned child), whose
    # deletion removes the Mailbox: its finalizer must not hang on a dataplane that goes too.
    wait_for("the tenant namespace to be gone", lambda: admin.get("namespace", ns) is None, timeout=180)
    assert admin.get("tenant", "e2e-gc") is None


def test_deleting_the_tenant_namespace_by_hand_does_not_hang(admin, operator, dataplanes):
    """The namespace is deleted directly while its Tenant stays. In a cluster its pods go at
    once, so the dataplane is down when the Mailboxes' cleanup runs, and the Tenant cannot
    re-create it in a terminating namespace: the finalizers must not keep the namespace
    Terminating for ever. Once it is gone, the Tenant re-creates its namespace."""
    dp = dataplanes("e2e-nsdel")
    admin.apply(tenant("e2e-nsdel"))
    dp.start()
    wait_ready(admin, "tenant", "e2e-nsdel")
    ns = "mcp-e2e-nsdel"
    admin.apply([secret("nina-credentials", ns, "nina-pw"), mailbox("nina", "e2e-nsdel", retention="Delete")])
    wait_ready(admin, "mailbox", "nina", ns)
    uid = admin.get("namespace", ns)["metadata"]["uid"]
    dp.stop()
    admin.delete("namespace", ns)
    wait_for(
        "the namespace to go and come back",
        lambda: (admin.get("namespace", ns) or {"metadata": {"uid": uid}})["metadata"]["uid"] != uid,
        timeout=TIMEOUT,
    )
    assert admin.get("mailbox", "nina", ns) is None
    admin.delete("tenant", "e2e-nsdel")


def test_namespace_owned_by_someone_else_is_not_adopted(admin, operator):
    admin.run("create", "namespace", "mcp-e2e-bad", check=False)
    admin.apply(tenant("e2e-bad"))
    t = wait_ready(admin, "tenant", "e2e-bad", status="False")
    assert condition(t)["reason"] == "NamespaceConflict"
    assert admin.get("configmap", "mcp-e2e-bad-dataplane-config", "mcp-e2e-bad") is None
    # The namespace goes: the Tenant notices by itself and takes the name.
    admin.delete("namespace", "mcp-e2e-bad", wait=True)
    wait_for(
        "the Tenant to leave NamespaceConflict",
        lambda: (condition(admin.get("tenant", "e2e-bad")) or {}).get("reason") != "NamespaceConflict",
        timeout=TIMEOUT,
    )
    assert owner_is(admin.get("namespace", "mcp-e2e-bad"), admin.get("tenant", "e2e-bad"))
    admin.delete("tenant", "e2e-bad")


# --- Operations ----------------------------------------------------------------------------


def test_metrics_lease_and_json_logs(admin, operator):
    text = operator.metrics()
    for family in (
        "mcp_operator_reconciliations_total",
        "mcp_operator_reconcile_duration_seconds",
        "mcp_operator_api_requests_total",
        "mcp_operator_leader 1",
    ):
        assert family in text, family
    lease = admin.get("lease", "mcp-operator", OPERATOR_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == operator.identity
    import json

    lines = [l for l in operator.log_text().splitlines() if l.strip()]
    assert lines and all(json.loads(l).get("level") for l in lines[-20:]), lines[-3:]


def test_a_tenant_waiting_for_its_dataplane_is_reconciled_once_per_recheck(admin, operator):
    """A Tenant whose dataplane does not answer is checked again after 15 s at the soonest (plus the 1 s
    debounce), by one reconciliation. Its namespaced children must map to the cluster-scoped
    Tenant: with kube's `owns` they mapped to `<tenant>.<namespace>`, a second scheduler key,
    and every recheck ran twice (and could run concurrently)."""
    wait_ready(admin, "tenant", "e2e-pg", status="False")
    time.sleep(5)
    waiting = [
        t["metadata"]["name"]
        for t in admin.items("tenants")
        if (condition(t) or {}).get("reason") == "DataplaneUnavailable"
    ]
    assert "e2e-pg" in waiting
    window = 64
    before = operator.metric("mcp_operator_reconciliations_total", 'controller="tenant"')
    time.sleep(window)
    ran = operator.metric("mcp_operator_reconciliations_total", 'controller="tenant"') - before
    # About window/16 = 4 each; twice as many when every recheck runs twice.
    assert ran <= 5 * len(waiting) + 2, (ran, waiting)


def test_a_second_operator_waits_for_the_lease(admin, operator, tmp_path):
    (port,) = free_ports(1)
    standby = Operator(operator.binary, operator.kubeconfig, tmp_path / "standby.log", port, {}, identity="e2e-standby")
    standby.start()
    try:
        time.sleep(3)
        assert "mcp_operator_leader 0" in standby.metrics()
        assert standby.metric("mcp_operator_reconciliations_total") == 0
        assert admin.get("lease", "mcp-operator", OPERATOR_NAMESPACE)["spec"]["holderIdentity"] == operator.identity
    finally:
        standby.stop()


def test_two_mailboxes_claiming_one_address_the_earlier_wins(admin, operator, dataplanes):
    """Addresses are unique in a tenant, compared case-insensitively: a later Mailbox with the
    same address in another case is refused (AddressConflict), cannot take the account over
    with its password, and deleting it leaves the account alone; once the earlier one goes,
    it takes over."""
    dp = dataplanes("e2e-main")
    ns = "mcp-e2e-main"
    admin.apply([secret("olga-credentials", ns, "olga-pw"), mailbox("olga", "e2e-main", retention="Retain")])
    wait_ready(admin, "mailbox", "olga", ns)
    conn = imap_login(dp, "olga@e2e-main.example", "olga-pw")
    conn.append("INBOX", None, None, b"Subject: mine\r\n\r\nx\r\n")
    conn.logout()
    copycat = mailbox("olga-copy", "e2e-main", retention="Delete")
    copycat["spec"]["address"] = "OLGA@e2e-main.example"
    admin.apply([secret("olga-copy-credentials", ns, "stolen-pw"), copycat])
    m = wait_ready(admin, "mailbox", "olga-copy", ns, status="False")
    assert condition(m)["reason"] == "AddressConflict", m["status"]
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(dp, "olga@e2e-main.example", "stolen-pw")
    # Deleting the loser (retention Delete) must not delete the winner's mail.
    admin.delete("mailbox", "olga-copy", ns)
    wait_for("olga-copy to be gone", lambda: admin.get("mailbox", "olga-copy", ns) is None, timeout=TIMEOUT)
    code, account = dp.admin_get("olga@e2e-main.example")
    assert code == 200 and account["messages"] == 1 and account["active"] is True, account
    imap_login(dp, "olga@e2e-main.example", "olga-pw").logout()
    # A blocked claimant takes over when the earlier Mailbox goes.
    admin.apply(copycat)
    wait_ready(admin, "mailbox", "olga-copy", ns, status="False")
    admin.delete("mailbox", "olga", ns)
    wait_for("olga to be gone", lambda: admin.get("mailbox", "olga", ns) is None, timeout=TIMEOUT)
    wait_ready(admin, "mailbox", "olga-copy", ns)
    imap_login(dp, "olga@e2e-main.example", "stolen-pw").logout()
    admin.delete("mailbox", "olga-copy", ns)
