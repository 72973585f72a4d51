#!/usr/bin/env python3
"""Example MCP plugin in Python (grpcio): a keyword classifier.

Serves mcp.plugin.v1.MailProcessor and grpc.health.v1 where MCP_PLUGIN_LISTEN says
(tcp://IP:PORT or unix:///path.sock; mutual TLS when MCP_PLUGIN_TLS_CERT, _KEY and _CLIENT_CA
are set). Behaves exactly like the Rust example plugins/sdk/examples/classifier.rs, so the
contract tests (e2e/plugins_contract) run one table against both:

- a message containing one of `words` (ASCII case-insensitive, anywhere in what the host sends)
  is filed into `folder` and gets `keyword`;
- one containing a `reject` word is refused with 5.7.1.

Config: {"words": ["unsubscribe", "newsletter"], "folder": "Newsletters",
"keyword": "$Newsletter", "reject": []}, all optional. The declared body mode is
MCP_CLASSIFIER_BODY_MODE (none, headers, buffered, streamed; default streamed).

The Python stubs are generated from plugins/proto/mcp/plugin/v1/plugin.proto with grpcio-tools
into _generated/ on first start (or `plugin.py --generate DIR`); they are never committed. The
proto is found at MCP_PLUGIN_PROTO_DIR, default ../../proto relative to this file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import sys
import threading
from concurrent import futures
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_DIR = Path(os.environ.get("MCP_PLUGIN_PROTO_DIR", HERE.parent.parent / "proto"))
PROTO = "mcp/plugin/v1/plugin.proto"

PROTOCOL_VERSIONS = (1, 1)  # lowest, highest spoken
MAX_CHUNK = 64 * 1024
MAX_BODY_SIZE = 10 * 1024 * 1024
STAGES = {"deliver": 1, "append": 2}  # declared stages (Stage enum values)
ATOM_SPECIALS = set(b'(){ %*"\\]')

log = logging.getLogger("python-classifier")


def generate_stubs(out: Path) -> None:
    """Generates the message and service stubs of the contract into `out`."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", PROTO]
    )
    if rc != 0:
        raise SystemExit(f"grpc_tools.protoc failed on {PROTO_DIR / PROTO} (exit {rc})")


def load_stubs():
    """Imports the stubs, generating them first when missing or older than the proto."""
    out = Path(os.environ.get("MCP_PLUGIN_STUBS_DIR", HERE / "_generated"))
    pb = out / "mcp/plugin/v1/plugin_pb2.py"
    if not pb.exists() or pb.stat().st_mtime < (PROTO_DIR / PROTO).stat().st_mtime:
        generate_stubs(out)
    sys.path.insert(0, str(out))
    from mcp.plugin.v1 import plugin_pb2, plugin_pb2_grpc  # noqa: E402

    return plugin_pb2, plugin_pb2_grpc


class Violation(Exception):
    """A request that breaks the contract: INVALID_ARGUMENT, never a verdict."""


class BadConfig(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


DEFAULTS = {"words": ["unsubscribe", "newsletter"], "folder": "Newsletters", "keyword": "$Newsletter", "reject": []}


def parse_config(text: str) -> dict:
    """The checked config of a step, with the same rules and field paths as the Rust example."""
    if not text.strip():
        text = "{}"
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise BadConfig("", f"the config is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise BadConfig("", "the config must be a JSON object")
    for key in raw:
        if key not in DEFAULTS:
            raise BadConfig(f"$.{key}", f"unknown field `{key}`")
    cfg = {**DEFAULTS, **raw}
    for field in ("words", "reject"):
        words = cfg[field]
        if not isinstance(words, list):
            raise BadConfig(f"$.{field}", "expected a list of strings")
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise BadConfig(f"$.{field}[{i}]", "expected a string")
            if not w:
                raise BadConfig(f"$.{field}", "words must not be empty")
        cfg[field] = [w.encode().lower() for w in words]
    folder, keyword = cfg["folder"], cfg["keyword"]
    if not isinstance(folder, str) or not folder or len(folder) > 255 or any(ord(c) < 32 for c in folder):
        raise BadConfig("$.folder", "must be a folder name of 1 to 255 characters")
    if (
        not isinstance(keyword, str)
        or not 1 <= len(keyword) <= 64
        or not keyword.isascii()
        or any(b < 33 or b > 126 or b in ATOM_SPECIALS for b in keyword.encode())
    ):
        raise BadConfig("$.keyword", "must be an IMAP atom of 1 to 64 characters without \\")
    return cfg


def make_servicer(pb, pb_grpc, body_mode: int):
    import grpc

    class Classifier(pb_grpc.MailProcessorServicer):
        def __init__(self):
            self.configs: dict[str, dict] = {}
            self.lock = threading.Lock()

        def config(self, config_id: str, text: str) -> dict:
            with self.lock:
                cfg = self.configs.get(config_id)
            if cfg is None:
                cfg = parse_config(text)
                with self.lock:
                    if len(self.configs) >= 1024:
                        self.configs.clear()
                    self.configs[config_id] = cfg
            return cfg

        def Initialize(self, request, context):
            high = min(PROTOCOL_VERSIONS[1], request.max_protocol_version)
            low = max(PROTOCOL_VERSIONS[0], request.min_protocol_version)
            if low > high:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"no common protocol version: the host speaks {request.min_protocol_version}.."
                    f"{request.max_protocol_version}, the plugin {PROTOCOL_VERSIONS[0]}..{PROTOCOL_VERSIONS[1]}",
                )
            errors, seen = [], set()
            for step in request.steps:
                if step.config_id in seen:
                    continue
                seen.add(step.config_id)
                try:
                    self.config(step.config_id, step.config_json)
                except BadConfig as e:
                    errors.append(pb.ConfigError(config_id=step.config_id, field=e.field, message=e.message))
            log.info("initialized by %s, protocol %d, %d steps", request.host, high, len(request.steps))
            return pb.InitializeResponse(
                protocol_version=high,
                plugin_name="python-classifier",
                plugin_version="0.1.0",
                stages=list(STAGES.values()),
                capabilities=[pb.CAPABILITY_ADD_KEYWORD, pb.CAPABILITY_FILE_INTO],
                body_mode=body_mode,
                max_body_size=MAX_BODY_SIZE,
                config_errors=errors,
            )

        def read(self, requests):
            """The context and the message octets sent, checking the request stream's framing."""
            first = next(requests, None)
            if first is None:
                raise Violation("the request stream is empty: the first request must carry the context")
            part = first.WhichOneof("part")
            if part == "chunk":
                raise Violation("a body chunk came before the context")
            if part != "context":
                raise Violation("the first request carries neither context nor chunk")
            ctx = first.context
            if ctx.stage not in (1, 2, 3):
                raise Violation(f"context.stage: unknown stage {ctx.stage}")
            if ctx.body_mode not in (1, 2, 3, 4):
                raise Violation(f"context.body_mode: unknown body mode {ctx.body_mode}")
            if not ctx.HasField("envelope"):
                raise Violation("context.envelope: missing")
            if ctx.body and (ctx.body_mode != pb.BODY_MODE_BUFFERED or ctx.body_withheld):
                raise Violation("context.body: set although the body mode is not buffered or the body is withheld")
            if ctx.stage not in STAGES.values():
                raise Violation(f"context.stage: {ctx.stage} is not a stage the plugin declared")
            streamed = ctx.body_mode == pb.BODY_MODE_STREAMED and not ctx.body_withheld
            body = bytearray()
            if streamed:
                limit = min(MAX_BODY_SIZE, max(0, ctx.size - len(ctx.header_section)))
                done = False
                for req in requests:
                    part = req.WhichOneof("part")
                    if part == "context":
                        raise Violation("the context was sent twice")
                    if part != "chunk":
                        raise Violation("a request carries neither context nor chunk")
                    if done:
                        raise Violation("chunk: sent after the last chunk")
                    if len(req.chunk.data) > MAX_CHUNK:
                        raise Violation(f"chunk: {len(req.chunk.data)} octets, more than {MAX_CHUNK}")
                    if len(body) + len(req.chunk.data) > limit:
                        raise Violation(f"chunk: the body exceeds {limit} octets")
                    body += req.chunk.data
                    done = req.chunk.last
                if not done:
                    raise Violation("chunk: the stream ended before the last chunk")
            elif next(requests, None) is not None:
                raise Violation(
                    "a request after the context, but no body is streamed (body mode not streamed, or body withheld)"
                )
            if ctx.body_mode == pb.BODY_MODE_NONE:
                message = b""
            elif ctx.body_mode == pb.BODY_MODE_BUFFERED:
                message = ctx.header_section + ctx.body
            else:
                message = ctx.header_section + bytes(body)
            return ctx, message

        def ProcessMessage(self, request_iterator, context):
            try:
                ctx, message = self.read(request_iterator)
                cfg = self.config(ctx.config_id, ctx.config_json)
                reply = self.classify(cfg, message.lower())
            except Violation as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"plugin protocol violation: {e}")
            except BadConfig as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"step config {ctx.config_id} refused: {e}")
            except grpc.RpcError:
                raise  # the host went away mid-stream
            except Exception as e:  # a bug here is a plugin failure, never a verdict
                log.exception("processing failed")
                context.abort(grpc.StatusCode.INTERNAL, f"the plugin failed: {e}")
            return reply

        def classify(self, cfg: dict, text: bytes):
            if any(w in text for w in cfg["reject"]):
                verdict = pb.Verdict(reject=pb.Reject(enhanced_status="5.7.1", text="refused by the classifier"))
                return pb.ProcessMessageResponse(verdict=verdict)
            cont = pb.Verdict(**{"continue": pb.Continue()})
            if any(w in text for w in cfg["words"]):
                return pb.ProcessMessageResponse(
                    verdict=cont,
                    mutations=[
                        pb.Mutation(file_into=pb.FileInto(folder=cfg["folder"])),
                        pb.Mutation(add_keyword=pb.AddKeyword(keyword=cfg["keyword"])),
                    ],
                )
            return pb.ProcessMessageResponse(verdict=cont)

        def Shutdown(self, request, context):
            log.info("the host is done with a connection: %s", request.reason)
            return pb.ShutdownResponse()

    return Classifier()


def listen_address(value: str) -> tuple[str, Path | None]:
    """The grpc address of MCP_PLUGIN_LISTEN, and the socket path for unix://."""
    if value.startswith("tcp://"):
        return value[len("tcp://") :], None
    if value.startswith("unix:///"):
        return value, Path(value[len("unix://") :])
    raise SystemExit(f"invalid MCP_PLUGIN_LISTEN {value!r}: expected tcp://IP:PORT or unix:///absolute/path.sock")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--generate":
        generate_stubs(Path(sys.argv[2]))
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    pb, pb_grpc = load_stubs()
    modes = {"none": 1, "headers": 2, "buffered": 3, "streamed": 4}
    body_mode = modes.get(os.environ.get("MCP_CLASSIFIER_BODY_MODE", "streamed"), 4)
    max_message = 2 * MAX_BODY_SIZE + (1 << 20)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[("grpc.max_receive_message_length", max_message), ("grpc.max_send_message_length", max_message)],
    )
    pb_grpc.add_MailProcessorServicer_to_server(make_servicer(pb, pb_grpc, body_mode), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    address, socket_path = listen_address(os.environ.get("MCP_PLUGIN_LISTEN", "tcp://127.0.0.1:50051"))
    if socket_path is not None and socket_path.exists():
        if not stat.S_ISSOCK(socket_path.lstat().st_mode):
            raise SystemExit(f"{socket_path} exists and is not a socket")
        socket_path.unlink()  # left by an earlier run
    tls = [os.environ.get(v) for v in ("MCP_PLUGIN_TLS_CERT", "MCP_PLUGIN_TLS_KEY", "MCP_PLUGIN_TLS_CLIENT_CA")]
    if any(tls) and not all(tls):
        raise SystemExit("set all of MCP_PLUGIN_TLS_CERT, MCP_PLUGIN_TLS_KEY and MCP_PLUGIN_TLS_CLIENT_CA, or none")
    if all(tls):
        cert, key, ca = (Path(p).read_bytes() for p in tls)
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
        bound = server.add_secure_port(address, creds)
    else:
        bound = server.add_insecure_port(address)
    if socket_path is None and bound == 0:
        raise SystemExit(f"cannot listen on {address}")
    server.start()
    for service in ("", "mcp.plugin.v1.MailProcessor"):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving on %s", os.environ.get("MCP_PLUGIN_LISTEN", "tcp://127.0.0.1:50051"))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down: health NOT_SERVING, draining calls")
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=10).wait()
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
