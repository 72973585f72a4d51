"""A small raw IMAP client and response parser for the protocol tests (stdlib only).

imaplib hides too much (untagged responses are merged, literals are split, pipelining is
impossible), so most tests speak IMAP through [Conn]: `cmd()` sends one command and returns
its untagged responses and the tagged completion exactly as the server sent them.
"""

from __future__ import annotations

import re
import socket
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ALICE

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def corpus(name: str) -> bytes:
    """The bytes of `e2e/corpus/<name>` (prefix match, e.g. `05`)."""
    matches = sorted(CORPUS.glob(name + "*.eml"))
    assert len(matches) == 1, (name, matches)
    return matches[0].read_bytes()


def unique(prefix: str = "t") -> str:
    """A mailbox name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}$")


@dataclass
class Resp:
    """One command's answer."""

    tag: str
    status: str
    #: The tagged line after the status, e.g. `[READ-WRITE] Select completed.`.
    text: str
    #: Untagged responses without the leading `* `, literals inlined (`{n}\r\n` + data).
    untagged: list[bytes] = field(default_factory=list)
    #: Continuation requests seen (`+ ...` lines).
    continuations: list[bytes] = field(default_factory=list)

    @property
    def code(self) -> str | None:
        m = re.match(r"\[([^\]]*)\]", self.text)
        return m.group(1) if m else None

    def ok(self) -> "Resp":
        assert self.status == "OK", self
        return self

    def lines(self, kind: str) -> list[bytes]:
        """Untagged responses whose first word (or second, after a number) is `kind`."""
        out = []
        for u in self.untagged:
            words = u.split(b" ", 2)
            if words[0].upper() == kind.encode().upper():
                out.append(u)
            elif len(words) > 1 and words[0].isdigit() and words[1].upper() == kind.encode().upper():
                out.append(u)
        return out

    def fetches(self) -> dict[int, dict[str, object]]:
        """`* n FETCH (...)` responses as {seq: {ITEM: value}} (later ones merge in)."""
        out: dict[int, dict[str, object]] = {}
        for u in self.lines("FETCH"):
            seq, _, rest = u.split(b" ", 2)
            items = parse(rest)[0]
            d = out.setdefault(int(seq), {})
            for k, v in zip(items[::2], items[1::2]):
                d[k.decode().upper() if isinstance(k, bytes) else k] = v
        return out

    def order(self) -> list[str]:
        """Kinds of the untagged responses in order, e.g. ['FLAGS', 'OK', '3 FETCH']."""
        out = []
        for u in self.untagged:
            w = u.split(b" ")
            out.append((w[1] if w[0].isdigit() else w[0]).decode().upper())
        return out


class Conn:
    """A raw IMAP connection."""

    def __init__(self, host: str, port: int, timeout: float = 10, tls: bool = False,
                 cafile: Path | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout)
        if tls:
            self.sock = _wrap(self.sock, cafile)
        self.buf = b""
        self.n = 0
        self.greeting = self.read_response()

    # -- low level --------------------------------------------------------------------

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection; buffered: %r" % self.buf)
        self.buf += data

    def readline(self) -> bytes:
        """One CRLF-terminated line, without the CRLF."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self) -> bytes:
        """One response line with its literals inlined (`{n}\\r\\n<data>`)."""
        line = self.readline()
        out = line
        while (m := _LITERAL_AT_END.search(line)) is not None:
            out += b"\r\n" + self.read_exact(int(m.group(1)))
            line = self.readline()
            out += line
        return out

    def starttls(self, cafile: Path | None = None) -> None:
        assert not self.buf, f"unread bytes before TLS: {self.buf!r}"
        self.sock = _wrap(self.sock, cafile)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- commands ---------------------------------------------------------------------

    def next_tag(self) -> str:
        self.n += 1
        return f"c{self.n}"

    def send_cmd(self, command: str | bytes, tag: str | None = None) -> str:
        tag = tag or self.next_tag()
        data = command.encode() if isinstance(command, str) else command
        self.send(tag.encode() + b" " + data + b"\r\n")
        return tag

    def collect(self, tag: str, literals: list[bytes] | None = None) -> Resp:
        """Reads until the tagged completion of `tag`; feeds `literals` at each `+`."""
        literals = list(literals or [])
        resp = Resp(tag, "", "")
        while True:
            line = self.read_response()
            if line.startswith(b"* "):
                resp.untagged.append(line[2:])
            elif line.startswith(b"+"):
                resp.continuations.append(line)
                assert literals, f"unexpected continuation {line!r}"
                self.send(literals.pop(0))
            elif line.startswith(tag.encode() + b" "):
                _, status, *rest = line.decode(errors="replace").split(" ", 2)
                resp.status = status.upper()
                resp.text = rest[0] if rest else ""
                return resp
            else:
                raise AssertionError(f"unexpected line {line!r} waiting for {tag}")

    def cmd(self, command: str | bytes) -> Resp:
        return self.collect(self.send_cmd(command))

    def login(self, user: str = ALICE[0], password: str = ALICE[1]) -> Resp:
        return self.cmd(f"LOGIN {quote(user)} {quote(password)}").ok()

    def select(self, mailbox: str, examine: bool = False) -> Resp:
        return self.cmd(f"{'EXAMINE' if examine else 'SELECT'} {quote(mailbox)}").ok()

    def append(self, mailbox: str, message: bytes, flags: str | None = None,
               date: str | None = None, sync: bool = False) -> Resp:
        """APPEND with a non-synchronising literal (LITERAL+) unless `sync`."""
        parts = [b"APPEND", quote(mailbox).encode()]
        if flags is not None:
            parts.append(b"(" + flags.encode() + b")")
        if date is not None:
            parts.append(b'"' + date.encode() + b'"')
        tag = self.next_tag()
        head = tag.encode() + b" " + b" ".join(parts)
        if sync:
            self.send(head + b" {%d}\r\n" % len(message))
            return self.collect(tag, [message + b"\r\n"])
        self.send(head + b" {%d+}\r\n" % len(message) + message + b"\r\n")
        return self.collect(tag)

    def create(self, mailbox: str) -> Resp:
        return self.cmd(f"CREATE {quote(mailbox)}").ok()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _wrap(sock: socket.socket, cafile: Path | None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock, server_hostname="localhost")


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(server, login: bool = True, user: tuple[str, str] = ALICE) -> Conn:
    c = Conn(server.host, server.imap_port)
    if login:
        c.login(*user)
    return c


def mailbox_with(server, messages: list[bytes], flags: list[str | None] | None = None,
                 prefix: str = "t") -> str:
    """Creates a fresh mailbox of alice's holding `messages` (UIDs 1..n); returns its name."""
    name = unique(prefix)
    with connect(server) as c:
        c.create(name)
        for i, m in enumerate(messages):
            c.append(name, m, flags=(flags[i] if flags else None)).ok()
    return name


def simple_message(subject: str = "hello", body: str = "Hi there", **headers: str) -> bytes:
    hdrs = {"From": "Alice <alice@example.com>", "To": "bob@example.com",
            "Subject": subject, "Date": "Mon, 1 May 2023 10:00:00 +0000"}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    head = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return (head + "\r\n" + body + "\r\n").encode()


# -- response parser ------------------------------------------------------------------

class Atom(bytes):
    """An atom (distinguished from strings so that NIL and NIL-the-string differ)."""


def parse(data: bytes) -> list:
    """Parses IMAP data into nested lists: atoms as [Atom], strings/literals as bytes,
    NIL as None. `BODY[HEADER.FIELDS (A B)]<0>` is one atom."""
    pos = 0
    stack: list[list] = [[]]
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == b'"':
            pos += 1
            out = bytearray()
            while data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                out += data[pos:pos + 1]
                pos += 1
            pos += 1
            stack[-1].append(bytes(out))
        elif c in (b"{", b"~") and re.match(rb"~?\{\d+\+?\}\r\n", data[pos:]):
            m = re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:])
            start = pos + m.end()
            size = int(m.group(1))
            stack[-1].append(data[start:start + size])
            pos = start + size
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos:pos + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b")", b"("):
                    break
                pos += 1
            word = data[start:pos]
            stack[-1].append(None if word.upper() == b"NIL" else Atom(word))
    assert len(stack) == 1, f"unbalanced parentheses in {data!r}"
    return stack[0]


def flags_of(value) -> set[str]:
    return {f.decode() for f in value}


class AppendLoad:
    """`clients` connections of alice APPEND to `mailbox` in a loop while the `with` block
    runs: `acked[i]` counts connection i's acknowledged APPENDs; a non-OK reply or an error
    stops that connection and is listed in `errors`. `message(i, n)` builds the n-th message
    of connection i."""

    def __init__(self, server, mailbox: str, clients: int, message=None) -> None:
        import threading

        self.server, self.mailbox = server, mailbox
        self.message = message or (lambda i, n: simple_message(f"client {i}", f"message {n}"))
        self.acked = [0] * clients
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, i: int) -> None:
        try:
            with connect(self.server) as c:
                while not self._stop.is_set():
                    r = c.append(self.mailbox, self.message(i, self.acked[i]))
                    if r.status != "OK":
                        self.errors.append(f"client {i}: {r}")
                        return
                    self.acked[i] += 1
        except Exception as e:  # noqa: BLE001 - reported through `errors`
            self.errors.append(f"client {i}: {e!r}")

    @property
    def total(self) -> int:
        return sum(self.acked)

    def __enter__(self) -> "AppendLoad":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)
