"""Helpers of the plugin contract suite: Python stubs generated from the proto, the example
plugins (Rust on the SDK, Python on grpcio) as real processes, and requests built the way the
dataplane's host builds them (mcp_plugin_proto::convert::context_to_proto)."""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "plugins" / "proto"
PYTHON_PLUGIN = REPO / "plugins" / "examples" / "python-classifier" / "plugin.py"
TESTDATA = REPO / "plugins" / "sdk" / "testdata"
MAX_CHUNK = 64 * 1024
START_TIMEOUT = float(os.environ.get("MCP_E2E_START_TIMEOUT", "60"))


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"


def generate_stubs(out: Path):
    """Generates and imports the stubs of mcp.plugin.v1 (grpcio-tools), never committed."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}",
         "mcp/plugin/v1/plugin.proto"]
    )
    assert rc == 0, f"grpc_tools.protoc failed ({rc})"
    sys.path.insert(0, str(out))
    return (importlib.import_module("mcp.plugin.v1.plugin_pb2"),
            importlib.import_module("mcp.plugin.v1.plugin_pb2_grpc"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_id(config_json: str) -> str:
    return hashlib.sha256(config_json.encode()).hexdigest()


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Header section (with its final empty line) and body."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw, b""
    return raw[: end + 4], raw[end + 4 :]


def header_fields(section: bytes) -> list[tuple[str, str]]:
    fields: list[list] = []
    for line in section.split(b"\r\n"):
        if not line:
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += line
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append([name.decode(errors="replace").rstrip(), value])
    return [(n, v.decode(errors="replace").strip(" \t")) for n, v in fields]


@dataclass
class Plugin:
    """A running example plugin and a channel to it."""

    name: str
    listen: str
    proc: subprocess.Popen
    pb: object
    channel: object = None
    stub: object = None
    health: object = None
    tls: tuple | None = None
    extra: dict = field(default_factory=dict)

    def target(self) -> str:
        if self.listen.startswith("tcp://"):
            return self.listen[len("tcp://"):]
        return self.listen  # unix:///path, as grpc spells it

    def open_channel(self, credentials=None):
        """A channel to the plugin. gRPC C core's default :authority for a unix: target is the
        socket path, which hyper (tonic) refuses as malformed (RST_STREAM PROTOCOL_ERROR), so a
        Python host names it `localhost`, as the Rust host does."""
        import grpc

        options = [("grpc.default_authority", "localhost")]
        if credentials is not None:
            return grpc.secure_channel(self.target(), credentials,
                                       options=options + [("grpc.ssl_target_name_override", "localhost")])
        return grpc.insecure_channel(self.target(), options=options)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(name: str, command: list[str], listen: str, pb, pb_grpc, env: dict | None = None,
          credentials=None) -> Plugin:
    """Starts `command` with MCP_PLUGIN_LISTEN=`listen` and waits until health says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    full_env = {**os.environ, "MCP_PLUGIN_LISTEN": listen, **(env or {})}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    plugin = Plugin(name=name, listen=listen, proc=proc, pb=pb)
    plugin.extra["log"] = log
    deadline = time.monotonic() + START_TIMEOUT
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"{name} exited with {proc.returncode}: {log.read().decode(errors='replace')}")
        channel = plugin.open_channel(credentials)
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                plugin.channel = channel
                plugin.stub = pb_grpc.MailProcessorStub(channel)
                plugin.health = health_pb2_grpc.HealthStub(channel)
                return plugin
            last = f"health {reply.status}"
        except grpc.RpcError as e:
            last = f"{e.code()}: {e.details()}"
        channel.close()
        time.sleep(0.1)
    plugin.stop(signal.SIGKILL)
    raise AssertionError(f"{name} on {listen} not SERVING after {START_TIMEOUT}s: {last}")


def context(pb, raw: bytes, mode: int, *, max_body_size: int = 10 << 20, config_json: str = "{}",
            stage: int = 1) -> tuple[object, bytes | None]:
    """The context a host sends for `raw` in body mode `mode`, and the body to stream."""
    section, body = split_message(raw)
    wants_body = mode in (pb.BODY_MODE_BUFFERED, pb.BODY_MODE_STREAMED)
    withheld = wants_body and len(raw) > max_body_size
    ctx = pb.MessageContext(
        call_id="contract", stage=stage, tenant="example", mailbox="alice@example.com", folder="INBOX",
        envelope=pb.Envelope(mail_from="sender@example.net", rcpt_to="alice@example.com"),
        pipeline="default/contract", step="classify", config_id=config_id(config_json), config_json=config_json,
        body_mode=mode, size=len(raw), body_withheld=withheld,
    )
    if mode != pb.BODY_MODE_NONE:
        ctx.header_section = section
        ctx.headers.extend(pb.Header(name=n, value=v) for n, v in header_fields(section))
    stream = None
    if wants_body and not withheld:
        if mode == pb.BODY_MODE_BUFFERED:
            ctx.body = body
        else:
            stream = body
    return ctx, stream


def requests(pb, ctx, stream: bytes | None) -> list:
    """The request stream: the context, then the body in chunks of at most 64 KiB."""
    out = [pb.ProcessMessageRequest(context=ctx)]
    if stream is not None:
        start = 0
        while True:
            end = min(start + MAX_CHUNK, len(stream))
            last = end == len(stream)
            out.append(pb.ProcessMessageRequest(chunk=pb.BodyChunk(data=stream[start:end], last=last)))
            if last:
                break
            start = end
    return out


def summary(pb, reply) -> dict:
    """A reply as plain data: {"verdict": kind[, status, text], "mutations": [(kind, value)]}."""
    kind = reply.verdict.WhichOneof("kind")
    verdict = {"kind": kind}
    if kind in ("reject", "temp_fail"):
        v = getattr(reply.verdict, kind)
        verdict.update(status=v.enhanced_status, text=v.text)
    mutations = []
    for m in reply.mutations:
        k = m.WhichOneof("kind")
        value = getattr(m, k)
        mutations.append((k, {f.name: v for f, v in value.ListFields()}))
    return {"verdict": verdict, "mutations": mutations}
