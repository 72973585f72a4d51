"""The plugin contract (mcp.plugin.v1, docs/plugin-protocol.md) against two independent
implementations: the Rust SDK example plugins/sdk/examples/classifier.rs and the Python
(grpcio) example plugins/examples/python-classifier/plugin.py, each over TCP and a Unix socket.
One table of cases, one expected answer per case, whatever the language: negotiation, config
errors, every body mode (streamed multi-chunk, withheld), verdicts and mutations, hostile
request streams (a gRPC error status, never a verdict), idempotent Shutdown, health, graceful
SIGTERM, mutual TLS, and the `mcp-plugin-test` CLI (issue 5)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contractutil import (  # noqa: E402
    MAX_CHUNK, PYTHON_PLUGIN, REPO, TESTDATA, config_id, context, free_port, generate_stubs, requests, start,
    summary, target_dir,
)

grpc = pytest.importorskip("grpc", reason="grpcio is installed by .ci/run (pip, pinned)")
pytest.importorskip("grpc_tools", reason="grpcio-tools is installed by .ci/run")
pytest.importorskip("grpc_health", reason="grpcio-health-checking is installed by .ci/run")

IMPLS = ["rust", "python"]
FILE_INTO = [("file_into", {"folder": "Newsletters"}), ("add_keyword", {"keyword": "$Newsletter"})]
CONTINUE = {"kind": "continue"}


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return generate_stubs(tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="session")
def built() -> Path:
    subprocess.run(["cargo", "build", "-p", "mcp-plugin-sdk", "--bins", "--examples"], cwd=REPO, check=True)
    return target_dir()


@pytest.fixture(scope="session")
def python_stubs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("python-plugin-stubs")


def command(impl: str, built: Path) -> list[str]:
    if impl == "rust":
        return [str(built / "examples" / "classifier")]
    return [sys.executable, str(PYTHON_PLUGIN)]


def listen_for(transport: str, tmp: Path) -> str:
    if transport == "tcp":
        return f"tcp://127.0.0.1:{free_port()}"
    return f"unix://{tmp / 'plugin.sock'}"


PARAMS = [(i, t) for i in IMPLS for t in ("tcp", "unix")]


def running(param, stubs, built, python_stubs_dir):
    impl, transport = param
    pb, pb_grpc = stubs
    with tempfile.TemporaryDirectory(prefix="mcp-contract-") as tmp:
        p = start(impl, command(impl, built), listen_for(transport, Path(tmp)), pb, pb_grpc,
                  env={"MCP_PLUGIN_STUBS_DIR": str(python_stubs_dir)})
        yield p
        assert p.stop() == 0, f"{impl} exits cleanly on SIGTERM"


@pytest.fixture(scope="module", params=PARAMS, ids=lambda p: f"{p[0]}-{p[1]}")
def plugin(request, stubs, built, python_stubs_dir):
    """One plugin process per implementation and transport, shared by the module's cases."""
    yield from running(request.param, stubs, built, python_stubs_dir)


@pytest.fixture(params=PARAMS, ids=lambda p: f"{p[0]}-{p[1]}")
def fresh_plugin(request, stubs, built, python_stubs_dir):
    """A plugin process of its own, for a test that stops it."""
    yield from running(request.param, stubs, built, python_stubs_dir)


def initialize(p, lo=1, hi=1, steps=()):
    pb = p.pb
    return p.stub.Initialize(pb.InitializeRequest(min_protocol_version=lo, max_protocol_version=hi,
                                                  host="contract-test/1", steps=list(steps)), timeout=10)


def process(p, parts):
    return p.stub.ProcessMessage(iter(parts), timeout=10)


def step(pb, name: str, config_json: str):
    return pb.StepConfig(pipeline="default/contract", step=name, config_id=config_id(config_json),
                         config_json=config_json)


# --- Initialize ---------------------------------------------------------------------------

def test_initialize_negotiates_and_declares(plugin):
    pb = plugin.pb
    r = initialize(plugin, 1, 7)
    assert r.protocol_version == 1
    assert r.plugin_name and r.plugin_version
    assert set(r.stages) == {pb.STAGE_DELIVER, pb.STAGE_APPEND}
    assert set(r.capabilities) == {pb.CAPABILITY_FILE_INTO, pb.CAPABILITY_ADD_KEYWORD}
    assert r.body_mode == pb.BODY_MODE_STREAMED
    assert r.max_body_size == 10 << 20
    assert list(r.config_errors) == []


@pytest.mark.parametrize("lo,hi", [(2, 3), (0, 0), (3, 2)])
def test_initialize_without_a_common_version_fails_the_precondition(plugin, lo, hi):
    with pytest.raises(grpc.RpcError) as e:
        initialize(plugin, lo, hi)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


CONFIGS = [
    ('{"words": ["sale"], "folder": "Deals", "keyword": "$Deal"}', None),
    ("{}", None),
    ('{"keyword": "bad word"}', "$.keyword"),
    ('{"words": "sale"}', "$.words"),
    ('{"words": ["sale", 3]}', "$.words[1]"),
    ('{"words": [""]}', "$.words"),
    ('{"folder": ""}', "$.folder"),
    ('{"colour": "red"}', "$.colour"),
    ("[1]", ""),
    ("not json", ""),
]


def test_initialize_reports_each_refused_config_by_id_and_field(plugin):
    pb = plugin.pb
    steps = [step(pb, f"s{i}", c) for i, (c, _) in enumerate(CONFIGS)]
    r = initialize(plugin, steps=steps + steps[:2])  # repeated configs are reported once
    got = [(e.config_id, e.field) for e in r.config_errors]
    want = [(config_id(c), f) for c, f in CONFIGS if f is not None]
    assert got == want
    assert all(e.message for e in r.config_errors)


def test_a_refused_config_with_a_message_is_an_error_not_a_verdict(plugin):
    pb = plugin.pb
    ctx, body = context(pb, (TESTDATA / "plain.eml").read_bytes(), pb.BODY_MODE_HEADERS,
                        config_json='{"keyword": "bad word"}')
    with pytest.raises(grpc.RpcError) as e:
        process(plugin, requests(pb, ctx, body))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- ProcessMessage: body modes, verdicts, mutations -----------------------------------------

BODY_CASES = [
    # (message, body mode, host limit, config, verdict, mutations)
    ("newsletter.eml", "NONE", None, "{}", CONTINUE, []),
    ("newsletter.eml", "HEADERS", None, "{}", CONTINUE, FILE_INTO),
    ("newsletter.eml", "BUFFERED", None, "{}", CONTINUE, FILE_INTO),
    ("newsletter.eml", "STREAMED", None, "{}", CONTINUE, FILE_INTO),
    ("plain.eml", "STREAMED", None, "{}", CONTINUE, []),
    # The word is only at the end of a 3-chunk body: found only when the whole body arrives.
    ("large.eml", "HEADERS", None, "{}", CONTINUE, []),
    ("large.eml", "BUFFERED", None, "{}", CONTINUE, FILE_INTO),
    ("large.eml", "STREAMED", None, "{}", CONTINUE, FILE_INTO),
    # Over the host's limit: the body is withheld, so the plugin cannot see the word.
    ("large.eml", "BUFFERED", 4096, "{}", CONTINUE, []),
    ("large.eml", "STREAMED", 4096, "{}", CONTINUE, []),
    ("plain.eml", "BUFFERED", None, '{"reject": ["LUNCH"]}',
     {"kind": "reject", "status": "5.7.1", "text": "refused by the classifier"}, []),
    ("large.eml", "STREAMED", None, '{"words": ["quarterly"], "folder": "Reports/2026", "keyword": "Report"}',
     CONTINUE, [("file_into", {"folder": "Reports/2026"}), ("add_keyword", {"keyword": "Report"})]),
]


@pytest.mark.parametrize("eml,mode,limit,config,verdict,mutations", BODY_CASES,
                         ids=[f"{c[0]}-{c[1].lower()}-{c[2] or 'nolimit'}-{i}" for i, c in enumerate(BODY_CASES)])
def test_body_modes_verdicts_and_mutations(plugin, eml, mode, limit, config, verdict, mutations):
    pb = plugin.pb
    raw = (TESTDATA / eml).read_bytes()
    ctx, body = context(pb, raw, getattr(pb, f"BODY_MODE_{mode}"), max_body_size=limit or (10 << 20),
                        config_json=config)
    parts = requests(pb, ctx, body)
    if eml == "large.eml" and mode == "STREAMED" and not limit:
        assert len(parts) >= 4, "the large message is streamed in several chunks"
    got = summary(pb, process(plugin, parts))
    assert got == {"verdict": verdict, "mutations": mutations}


def test_the_same_connection_serves_many_calls_and_configs(plugin):
    pb = plugin.pb
    raw = (TESTDATA / "newsletter.eml").read_bytes()
    for i in range(20):
        config = json.dumps({"words": ["weekly"], "keyword": f"K{i % 3}"})
        ctx, body = context(pb, raw, pb.BODY_MODE_STREAMED, config_json=config)
        got = summary(pb, process(plugin, requests(pb, ctx, body)))
        assert got["mutations"][1] == ("add_keyword", {"keyword": f"K{i % 3}"})


# --- Hostile request streams ---------------------------------------------------------------

def hostile_cases(pb):
    def ctx(mode=None, size=24, **kw):
        c = pb.MessageContext(call_id="hostile", stage=pb.STAGE_DELIVER,
                              envelope=pb.Envelope(rcpt_to="alice@example.com"),
                              config_id=config_id("{}"), config_json="{}",
                              body_mode=pb.BODY_MODE_STREAMED if mode is None else mode, size=size,
                              header_section=b"Subject: x\r\n\r\n")
        for k, v in kw.items():
            if v is None:
                c.ClearField(k)
            else:
                setattr(c, k, v)
        return pb.ProcessMessageRequest(context=c)

    def chunk(n, last):
        return pb.ProcessMessageRequest(chunk=pb.BodyChunk(data=b"x" * n, last=last))

    return {
        "empty stream": [],
        "chunk before context": [chunk(1, True)],
        "neither context nor chunk": [pb.ProcessMessageRequest()],
        "context twice": [ctx(), ctx()],
        "oversized chunk": [ctx(size=1 << 19), chunk(MAX_CHUNK + 1, True)],
        "truncated stream": [ctx(), chunk(5, False)],
        "chunk after the last": [ctx(), chunk(5, True), chunk(5, True)],
        "more body than size": [ctx(), chunk(11, True)],
        "chunks in headers mode": [ctx(mode=pb.BODY_MODE_HEADERS), chunk(10, True)],
        "chunks although withheld": [ctx(body_withheld=True), chunk(10, True)],
        "unknown stage": [ctx(mode=pb.BODY_MODE_HEADERS, stage=99)],
        "unspecified stage": [ctx(mode=pb.BODY_MODE_HEADERS, stage=0)],
        "undeclared stage": [ctx(mode=pb.BODY_MODE_HEADERS, stage=pb.STAGE_POST_STORE)],
        "unknown body mode": [ctx(mode=99)],
        "unspecified body mode": [ctx(mode=0)],
        "missing envelope": [ctx(mode=pb.BODY_MODE_HEADERS, envelope=None)],
        "body in headers mode": [ctx(mode=pb.BODY_MODE_HEADERS, body=b"x")],
    }


HOSTILE = [
    "empty stream", "chunk before context", "neither context nor chunk", "context twice", "oversized chunk",
    "truncated stream", "chunk after the last", "more body than size", "chunks in headers mode",
    "chunks although withheld", "unknown stage", "unspecified stage", "undeclared stage", "unknown body mode",
    "unspecified body mode", "missing envelope", "body in headers mode",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_request_streams_get_invalid_argument_never_a_verdict(plugin, case):
    parts = hostile_cases(plugin.pb)[case]
    with pytest.raises(grpc.RpcError) as e:
        reply = process(plugin, parts)
        pytest.fail(f"{case}: a reply instead of an error: {reply}")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    # ... and the plugin keeps serving.
    pb = plugin.pb
    ctx, body = context(pb, (TESTDATA / "plain.eml").read_bytes(), pb.BODY_MODE_STREAMED)
    assert summary(pb, process(plugin, requests(pb, ctx, body)))["verdict"] == CONTINUE


# --- Shutdown, health, signals -------------------------------------------------------------

def test_shutdown_is_idempotent_and_the_plugin_keeps_serving(plugin):
    pb = plugin.pb
    initialize(plugin)
    for _ in range(3):
        plugin.stub.Shutdown(pb.ShutdownRequest(reason="reload"), timeout=10)
    initialize(plugin)
    ctx, body = context(pb, (TESTDATA / "newsletter.eml").read_bytes(), pb.BODY_MODE_HEADERS)
    assert summary(pb, process(plugin, requests(pb, ctx, body)))["mutations"] == FILE_INTO


def test_health_is_serving_then_not_serving_on_sigterm(fresh_plugin):
    plugin = fresh_plugin
    from grpc_health.v1 import health_pb2

    for service in ("", "mcp.plugin.v1.MailProcessor"):
        r = plugin.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING, service
    watch = plugin.health.Watch(health_pb2.HealthCheckRequest(service="mcp.plugin.v1.MailProcessor"), timeout=30)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    plugin.proc.send_signal(signal.SIGTERM)
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    plugin.proc.wait(20)
    assert plugin.proc.returncode == 0


# --- The testing utility -------------------------------------------------------------------

def test_mcp_plugin_test_prints_one_json_line_per_message(plugin, built, tmp_path):
    emls = sorted(TESTDATA.glob("*.eml"))
    out = subprocess.run([str(built / "mcp-plugin-test"), "--plugin", plugin.listen, *map(str, emls)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [Path(line["file"]).name for line in lines] == [e.name for e in emls]
    by_name = {Path(line["file"]).name: line for line in lines}
    want = [{"kind": "fileInto", "folder": "Newsletters"}, {"kind": "addKeyword", "keyword": "$Newsletter"}]
    assert by_name["newsletter.eml"]["mutations"] == want
    assert by_name["large.eml"]["mutations"] == want, "streamed (the declared mode): the whole body is seen"
    assert by_name["plain.eml"] == {"file": by_name["plain.eml"]["file"], "verdict": {"kind": "continue"},
                                    "mutations": []}

    bad = tmp_path / "bad.json"
    bad.write_text('{"keyword": "bad word"}')
    out = subprocess.run([str(built / "mcp-plugin-test"), "--plugin", plugin.listen, "--config", str(bad),
                          str(emls[0])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert '"$.keyword"' in out.stderr


@pytest.mark.parametrize("impl", IMPLS)
def test_mcp_plugin_test_spawns_the_plugin_and_reports_failures(impl, built, python_stubs_dir, tmp_path):
    cmd = " ".join(f"'{c}'" for c in command(impl, built))
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"reject": ["lunch"]}')
    env = {**__import__("os").environ, "MCP_PLUGIN_STUBS_DIR": str(python_stubs_dir)}
    out = subprocess.run([str(built / "mcp-plugin-test"), "--command", cmd, "--config", str(cfg),
                          "--stage", "append", "--body-mode", "buffered", str(TESTDATA / "plain.eml")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout)
    assert line["verdict"] == {"kind": "reject", "status": "5.7.1", "text": "refused by the classifier"}
    # post-store is not a declared stage: a gRPC error for that message, exit code 1.
    out = subprocess.run([str(built / "mcp-plugin-test"), "--command", cmd, "--stage", "post-store",
                          str(TESTDATA / "plain.eml")], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["error"]["code"] == "INVALID_ARGUMENT"


# --- Mutual TLS (service mode) -------------------------------------------------------------

def make_certs(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate (openssl)."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=contract-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, ext in [("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "subjectAltName=DNS:dataplane\nextendedKeyUsage=clientAuth\n")]:
        (d / f"{name}.ext").write_text(ext)
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


@pytest.mark.parametrize("impl", IMPLS)
def test_mutual_tls_serves_only_clients_with_a_certificate_from_the_ca(impl, stubs, built, python_stubs_dir,
                                                                       tmp_path):
    pb, pb_grpc = stubs
    certs = make_certs(tmp_path)
    env = {"MCP_PLUGIN_STUBS_DIR": str(python_stubs_dir), "MCP_PLUGIN_TLS_CERT": str(certs["server.crt"]),
           "MCP_PLUGIN_TLS_KEY": str(certs["server.key"]), "MCP_PLUGIN_TLS_CLIENT_CA": str(certs["ca.crt"])}
    ca = certs["ca.crt"].read_bytes()
    good = grpc.ssl_channel_credentials(ca, certs["client.key"].read_bytes(), certs["client.crt"].read_bytes())
    p = start(impl, command(impl, built), f"tcp://127.0.0.1:{free_port()}", pb, pb_grpc, env=env, credentials=good)
    try:
        assert initialize(p).protocol_version == 1
        ctx, body = context(pb, (TESTDATA / "newsletter.eml").read_bytes(), pb.BODY_MODE_STREAMED)
        assert summary(pb, process(p, requests(pb, ctx, body)))["mutations"] == FILE_INTO
        for creds in (grpc.ssl_channel_credentials(ca), None):
            channel = p.open_channel(creds)
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.MailProcessorStub(channel).Initialize(pb.InitializeRequest(min_protocol_version=1,
                                                                                    max_protocol_version=1),
                                                              timeout=5)
            assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            channel.close()
    finally:
        assert p.stop() == 0
