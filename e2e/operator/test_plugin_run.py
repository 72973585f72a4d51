"""Render and run for PluginDeployments (issue 5, item 5), against the real API server.

The operator renders a Tenant, a Mailbox, a PluginDeployment and a Pipeline naming it; the
test then runs, locally, exactly what a pod would run from those objects:

- the plugin process: the SDK's `mcp-plugin-template` (it adds a header and a keyword from
  the step config) with the environment of the rendered container (the dataplane pod's
  sidecar, or the service Deployment's container); only the command is replaced by the
  locally built binary, and the container's mount paths (the shared socket `emptyDir`, the
  server certificate Secret) by local directories holding what the kubelet would put there;
- `mcp dataplane` from the rendered ConfigMap and Secrets (harness.Dataplane), with the
  plugin socket directory and client certificate directory pointed at the same local
  directories, and for service mode `--plugin-service-host 127.0.0.1` (the Service's name
  resolves only in a cluster; the plugin's certificate is still checked against it).

Then: the PluginDeployment turns `Ready` (`Serving`, `negotiatedVersion: 1`,
`readyEndpoints: 1`), the Pipeline turns `Ready`, and an IMAP APPEND is stored with the
template's header and keyword. Killing the plugin turns both not Ready (`NotServing` or
`Connecting`, then `PluginNotReady`) and the step's `onError` applies at once (`failClosed`:
APPEND `NO [UNAVAILABLE]`, nothing stored; `failOpen`: stored untagged); a restarted plugin
is `Serving` again.

Skipped without KUBECONFIG unless MCP_REQUIRE_K8S=1 (e2e/run-tests.sh sets both).
"""

from __future__ import annotations

import datetime
import imaplib
import os
import signal
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import free_ports
from fixtures import admin, crds, dataplanes, operator, ports  # noqa: F401 (pytest fixtures)
from harness import Dataplane, target_dir
from kube import REPO, Kubectl, condition, wait_for

if not os.environ.get("KUBECONFIG"):
    if os.environ.get("MCP_REQUIRE_K8S") == "1":
        raise RuntimeError("MCP_REQUIRE_K8S=1 but KUBECONFIG is not set (start e2e/services/k8s.sh)")
    pytest.skip("KUBECONFIG not set: no API server", allow_module_level=True)

TCP, UNIX, SVC = "e2e-plr-tcp", "e2e-plr-unix", "e2e-plr-svc"
TENANTS = [TCP, UNIX, SVC]
PLUGIN = "tagger"
TIMEOUT = float(os.environ.get("MCP_OPERATOR_TIMEOUT", "90"))
# The operator asks the dataplane about a Serving plugin again only every 60 s (nothing in
# Kubernetes says when a plugin stops serving): a killed plugin is seen within that.
NOT_READY_TIMEOUT = TIMEOUT + 60
TAG = {"keyword": "$Tagged", "header": "X-Tagged", "value": "yes"}


def ns(tenant: str) -> str:
    return f"mcp-{tenant}"


@pytest.fixture(scope="module")
def template_bin() -> Path:
    """The SDK's template plugin, built once; `MCP_PLUGIN_BIN_DIR` skips building."""
    explicit = os.environ.get("MCP_PLUGIN_BIN_DIR")
    if explicit:
        path = Path(explicit) / "mcp-plugin-template"
    else:
        subprocess.run(["cargo", "build", "-p", "mcp-plugin-template"], cwd=REPO, check=True)
        path = target_dir() / "debug" / "mcp-plugin-template"
    assert path.is_file(), f"{path} not built"
    return path


class PluginProcess:
    """The plugin binary run with a rendered container's environment. Every mount path of the
    container is replaced, in the environment's values, by the local directory given for it."""

    def __init__(self, binary: Path, container: dict, mounts: dict[str, Path], log: Path,
                 listen: str | None = None) -> None:
        self.binary, self.log = binary, log
        env: dict[str, str] = {}
        for e in container.get("env") or []:
            assert "valueFrom" not in e, e
            value = e.get("value", "")
            for m in container.get("volumeMounts") or []:
                if m["mountPath"] in mounts:
                    value = value.replace(m["mountPath"], str(mounts[m["mountPath"]]))
            env[e["name"]] = value
        if listen is not None:
            env["MCP_PLUGIN_LISTEN"] = listen
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PluginProcess":
        # PATH only from the test's environment; the rest is the container's.
        env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "info", **self.env}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(self.binary)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def plugin_procs():
    started: list[PluginProcess] = []
    yield started
    for p in started:
        p.kill()


# --- Objects -----------------------------------------------------------------------------------


def tenant(name: str) -> dict:
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"domains": [f"{name}.example"]}}


def mailbox(tenant_name: str) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "alice-credentials", "namespace": ns(tenant_name)},
         "stringData": {"password": "alice-pw"}},
        {"apiVersion": "mcp.dev/v1alpha1", "kind": "Mailbox",
         "metadata": {"name": "alice", "namespace": ns(tenant_name)},
         "spec": {"tenant": tenant_name, "address": f"alice@{tenant_name}.example",
                  "credentials": {"secretRef": {"name": "alice-credentials"}}, "retention": "Delete"}},
    ]


def plugin_deployment(tenant_name: str, **spec) -> dict:
    body = {"image": "registry.example/template:1", "protocol": {"min": 1, "max": 1},
            "stages": ["deliver", "append"], "capabilities": ["addHeader", "addKeyword"]}
    body.update(spec)
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "PluginDeployment",
            "metadata": {"name": PLUGIN, "namespace": ns(tenant_name)}, "spec": body}


def pipeline(tenant_name: str, on_error: str) -> dict:
    return {"apiVersion": "mcp.dev/v1alpha1", "kind": "Pipeline",
            "metadata": {"name": "tagging", "namespace": ns(tenant_name)},
            "spec": {"scope": {"type": "TenantDefault"}, "stages": ["append"],
                     "steps": [{"name": "tag", "plugin": {"name": PLUGIN}, "config": TAG,
                                "timeout": "10s", "onError": on_error}]}}


# --- Waits ---------------------------------------------------------------------------------------


def ready(kc: Kubectl, kind: str, name: str, namespace: str, status: str, reasons: set[str],
          timeout: float = TIMEOUT) -> dict:
    """Waits until the object's `Ready` is `status` with one of `reasons`, for its generation."""

    def probe():
        o = kc.get(kind, name, namespace)
        c = condition(o)
        if c and c["status"] == status and c["reason"] in reasons \
                and c.get("observedGeneration") == o["metadata"]["generation"]:
            return o
        return None

    try:
        return wait_for(f"{kind} {name} Ready={status} {reasons}", probe, timeout=timeout)
    except AssertionError:
        o = kc.get(kind, name, namespace)
        raise AssertionError(f"{kind} {name} not Ready={status} {reasons}: {(o or {}).get('status')}")


def assert_serving(kc: Kubectl, namespace: str, endpoint: str) -> None:
    p = ready(kc, "plugindeployment", PLUGIN, namespace, "True", {"Serving"})
    assert p["status"]["negotiatedVersion"] == 1, p["status"]
    assert p["status"]["readyEndpoints"] == 1, p["status"]
    message = condition(p)["message"]
    assert endpoint in message and "protocol version 1" in message and "template" in message, message
    ready(kc, "pipeline", "tagging", namespace, "True", {"InForce"})


def dataplane_phase(dp: Dataplane) -> dict | None:
    code, state = dp.admin_get_path("/internal/v1/plugins")
    assert code == 200, state
    return next((p for p in state["plugins"] if p["name"] == PLUGIN), None)


def rendered_kinds(kc: Kubectl, tenant_name: str) -> list[tuple[str, str]]:
    cm = kc.get("configmap", f"mcp-{tenant_name}-dataplane-config", ns(tenant_name))
    docs = [d for d in yaml.safe_load_all((cm or {}).get("data", {}).get("pipelines.yaml", "")) if d]
    return [(d["kind"], d["metadata"]["name"]) for d in docs]


def start_dataplane(kc: Kubectl, dataplanes, tenant_name: str, **overrides) -> Dataplane:
    """Starts `mcp dataplane` once pipelines.yaml holds the PluginDeployment and the Pipeline,
    and waits for the Mailbox to be provisioned through it."""
    wait_for("the PluginDeployment and Pipeline rendered",
             lambda: {("PluginDeployment", PLUGIN), ("Pipeline", "tagging")} <= set(rendered_kinds(kc, tenant_name)),
             timeout=TIMEOUT)
    dp = dataplanes(tenant_name)
    dp.config_overrides = overrides.pop("config", {})
    dp.extra_args = overrides.pop("args", [])
    assert not overrides, overrides
    dp.start()
    ready(kc, "mailbox", "alice", ns(tenant_name), "True", {"Provisioned"})
    return dp


def sidecar(kc: Kubectl, tenant_name: str) -> tuple[dict, dict]:
    """The rendered sidecar container `plugin-<name>` and the dataplane container."""

    def probe():
        sts = kc.get("statefulset", f"mcp-{tenant_name}-dataplane", ns(tenant_name))
        spec = sts["spec"]["template"]["spec"]
        side = next((c for c in spec.get("initContainers") or [] if c["name"] == f"plugin-{PLUGIN}"), None)
        return (side, spec["containers"][0]) if side else None

    return wait_for("the plugin sidecar rendered", probe, timeout=TIMEOUT)


# --- IMAP ----------------------------------------------------------------------------------------


def imap_login(dp: Dataplane) -> imaplib.IMAP4:
    ctx = ssl.create_default_context(cafile=str(dp.etc / "tls" / "tls.crt"))
    ctx.check_hostname = False  # the certificate names the tenant's domains, we dial 127.0.0.1
    conn = imaplib.IMAP4("127.0.0.1", dp.ports["imap"])
    conn.starttls(ctx)
    conn.login(f"alice@{dp.tenant}.example", "alice-pw")
    return conn


def append(dp: Dataplane, subject: str) -> tuple[str, bytes]:
    conn = imap_login(dp)
    try:
        msg = f"From: bob@{dp.tenant}.example\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
        typ, data = conn.append("INBOX", None, None, msg)
        return typ, data[0] or b""
    finally:
        conn.logout()


def stored(dp: Dataplane) -> dict[str, tuple[bytes, bytes]]:
    """INBOX by Subject: (FLAGS line, X-Tagged header field)."""
    conn = imap_login(dp)
    try:
        conn.select("INBOX", readonly=True)
        typ, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT X-TAGGED)])")
        out: dict[str, tuple[bytes, bytes]] = {}
        if typ != "OK" or data == [None]:
            return out
        for part in data:
            if not isinstance(part, tuple):
                continue
            fields = dict(line.split(b": ", 1) for line in part[1].splitlines() if b": " in line)
            subject = fields[b"Subject"].decode()
            assert subject not in out, f"{subject} stored twice"
            out[subject] = (part[0], fields.get(b"X-Tagged", b""))
        return out
    finally:
        conn.logout()


def assert_tagged(dp: Dataplane, subject: str) -> None:
    typ, text = append(dp, subject)
    assert typ == "OK", text
    flags, header = stored(dp)[subject]
    assert header == b"yes" and b"$Tagged" in flags, (flags, header)


# --- Sidecar mode --------------------------------------------------------------------------------


def test_a_tcp_sidecar_runs_from_its_rendered_container_and_failclosed_holds_while_it_is_down(
        admin, operator, dataplanes, template_bin, plugin_procs, tmp_path):
    (port,) = free_ports(1)
    admin.apply(tenant(TCP))
    wait_for("the tenant namespace", lambda: admin.get("namespace", ns(TCP)), timeout=TIMEOUT)
    admin.apply([*mailbox(TCP), plugin_deployment(TCP, port=port), pipeline(TCP, "failClosed")])
    side, _ = sidecar(admin, TCP)
    assert side["image"] == "registry.example/template:1"
    listen = {e["name"]: e.get("value") for e in side["env"]}["MCP_PLUGIN_LISTEN"]
    assert listen == f"tcp://127.0.0.1:{port}"
    plugin = PluginProcess(template_bin, side, {}, tmp_path / "plugin.log").start()
    plugin_procs.append(plugin)

    dp = start_dataplane(admin, dataplanes, TCP)
    assert_serving(admin, ns(TCP), listen)
    assert_tagged(dp, "tagged over tcp")

    # Killed: the dataplane sees it at once, and failClosed refuses the APPEND at once.
    plugin.kill()
    wait_for("the dataplane to see the plugin gone",
             lambda: (dataplane_phase(dp) or {}).get("phase") in ("connecting", "notServing"), timeout=TIMEOUT)
    typ, text = append(dp, "refused while down")
    assert typ == "NO" and text.startswith(b"[UNAVAILABLE]"), (typ, text)
    assert "refused while down" not in stored(dp), "failClosed stores nothing"
    # The operator notices on its next check, and the Pipeline says why.
    ready(admin, "plugindeployment", PLUGIN, ns(TCP), "False", {"NotServing", "Connecting"},
          timeout=NOT_READY_TIMEOUT)
    p = ready(admin, "pipeline", "tagging", ns(TCP), "False", {"PluginNotReady"})
    assert f"PluginDeployment {PLUGIN} is not Ready" in condition(p)["message"], condition(p)

    # Restarted: Ready again, and tagging again.
    plugin.start()
    assert_serving(admin, ns(TCP), listen)
    assert_tagged(dp, "tagged after the restart")
    assert set(stored(dp)) == {"tagged over tcp", "tagged after the restart"}


def test_a_unix_sidecar_listens_in_the_shared_socket_directory_and_failopen_stores_untagged(
        admin, operator, dataplanes, template_bin, plugin_procs, tmp_path):
    admin.apply(tenant(UNIX))
    wait_for("the tenant namespace", lambda: admin.get("namespace", ns(UNIX)), timeout=TIMEOUT)
    admin.apply([*mailbox(UNIX), plugin_deployment(UNIX, transport="unix"), pipeline(UNIX, "failOpen")])
    side, dataplane_container = sidecar(admin, UNIX)
    # The pod's shared emptyDir, mounted in both containers, is a local directory here.
    (mount,) = [m["mountPath"] for m in side["volumeMounts"] if m["name"] == "plugin-sockets"]
    assert {"name": "plugin-sockets", "mountPath": mount} in dataplane_container["volumeMounts"]
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    plugin = PluginProcess(template_bin, side, {mount: sockets}, tmp_path / "plugin.log")
    assert plugin.env["MCP_PLUGIN_LISTEN"] == f"unix://{sockets}/{PLUGIN}.sock"
    plugin.start()
    plugin_procs.append(plugin)

    dp = start_dataplane(admin, dataplanes, UNIX, config={"pluginSocketDir": str(sockets)})
    assert_serving(admin, ns(UNIX), f"unix://{sockets}/{PLUGIN}.sock")
    assert_tagged(dp, "tagged over a unix socket")

    # Killed: failOpen stores the message, without the plugin's mutations.
    plugin.kill()
    wait_for("the dataplane to see the plugin gone",
             lambda: (dataplane_phase(dp) or {}).get("phase") in ("connecting", "notServing"), timeout=TIMEOUT)
    typ, text = append(dp, "stored untagged while down")
    assert typ == "OK", text
    flags, header = stored(dp)["stored untagged while down"]
    assert header == b"" and b"$Tagged" not in flags, (flags, header)

    plugin.start()
    wait_for("the dataplane serving through the restarted plugin",
             lambda: (dataplane_phase(dp) or {}).get("phase") == "serving", timeout=TIMEOUT)
    assert_tagged(dp, "tagged after the restart")
    assert set(stored(dp)) == {"tagged over a unix socket", "stored untagged while down", "tagged after the restart"}


# --- Service mode --------------------------------------------------------------------------------


def certificates(service_dns: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A CA, a server certificate for `service_dns` and a client certificate, all signed by
    that CA: the data of the server and the client Secret (`tls.crt`, `tls.key`, `ca.crt`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def build(subject: str, issuer_name, signer, key, ca: bool, san=None, eku=None):
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("e2e plugin CA", None, ca_key, ca_key, True)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    out = []
    for subject, san, eku in ((service_dns, service_dns, ExtendedKeyUsageOID.SERVER_AUTH),
                              ("mcp dataplane", None, ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = build(subject, ca.subject, ca_key, key, False, san, eku)
        out.append({"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": pem_key(key),
                    "ca.crt": ca_pem})
    return out[0], out[1]


def secret(name: str, namespace: str, data: dict[str, bytes]) -> dict:
    import base64

    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def test_a_service_plugin_runs_from_its_rendered_deployment_over_mutual_tls(
        admin, operator, dataplanes, template_bin, plugin_procs, tmp_path):
    (port,) = free_ports(1)
    namespace = ns(SVC)
    dns = f"mcp-plugin-{PLUGIN}.{namespace}.svc"
    admin.apply(tenant(SVC))
    wait_for("the tenant namespace", lambda: admin.get("namespace", namespace), timeout=TIMEOUT)
    server, client = certificates(dns)
    admin.apply([
        secret("tagger-server", namespace, server), secret("tagger-client", namespace, client),
        *mailbox(SVC),
        plugin_deployment(SVC, mode="service", port=port, replicas=1,
                          tls={"serverSecretRef": {"name": "tagger-server"},
                               "clientSecretRef": {"name": "tagger-client"}}),
        pipeline(SVC, "failClosed"),
    ])
    dep = wait_for("the plugin Deployment", lambda: admin.get("deployment", f"mcp-plugin-{PLUGIN}", namespace),
                   timeout=TIMEOUT)
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The server certificate Secret, as the kubelet mounts it into the plugin's pod.
    (tls_mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    (tls_volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls_volume["secret"]["secretName"] == "tagger-server"
    plugin_tls = tmp_path / "plugin-tls"
    plugin_tls.mkdir()
    for key, value in admin.secret_data("tagger-server", namespace).items():
        (plugin_tls / key).write_bytes(value)
        (plugin_tls / key).chmod(0o600)
    listen = {e["name"]: e.get("value") for e in container["env"]}["MCP_PLUGIN_LISTEN"]
    assert listen == f"tcp://0.0.0.0:{port}"
    # The pod's own IP is 0.0.0.0 in the pod; on the test machine, loopback only.
    plugin = PluginProcess(template_bin, container, {tls_mount["mountPath"]: plugin_tls}, tmp_path / "plugin.log",
                           listen=f"tcp://127.0.0.1:{port}")
    assert plugin.env["MCP_PLUGIN_TLS_CERT"] == str(plugin_tls / "tls.crt"), plugin.env
    plugin.start()
    plugin_procs.append(plugin)

    # The client certificate, where the StatefulSet projects it into the dataplane's /etc/mcp.
    wait_for("the client certificate projected into the dataplane pod",
             lambda: dataplanes(SVC).materialize_plugin_client_tls(), timeout=TIMEOUT)
    dp = start_dataplane(admin, dataplanes, SVC, config={"pluginClientTlsDir": "plugin-client-tls"},
                         args=["--plugin-service-host", "127.0.0.1"])
    assert (dp.etc / "plugin-client-tls" / PLUGIN / "tls.key").is_file()
    assert_serving(admin, namespace, f"https://{dns}:{port}")
    assert_tagged(dp, "tagged over mutual TLS")
