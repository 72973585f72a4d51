"""Differential test: our ENVELOPE/BODY/BODYSTRUCTURE against Dovecot's, per corpus file.

Needs Dovecot at 127.0.0.1:${MCP_DOVECOT_PORT:-11143}; the session fixture runs
`e2e/services/dovecot.sh start` (idempotent) and does not stop it. Our side comes from
`cargo run -p mcp-dataplane --example mime_dump -- FILES...` (override the command with
MCP_MIME_DUMP, e.g. a prebuilt binary path).

Run: python3 -m pytest e2e/differential/test_mime_vs_dovecot.py -q
Stdlib only (imaplib) besides pytest itself.
"""

import base64
import glob
import imaplib
import json
import os
import shlex
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = sorted(glob.glob(os.path.join(ROOT, "e2e", "corpus", "*.eml")))
PORT = int(os.environ.get("MCP_DOVECOT_PORT", "11143"))
FIELDS = ("ENVELOPE", "BODY", "BODYSTRUCTURE")
# BODY[...] sections compared octet for octet (a missing part is "" or NIL on both sides).
SECTIONS = (
    "HEADER",
    "TEXT",
    "1",
    "2",
    "3",
    "1.MIME",
    "2.MIME",
    "1.1",
    "1.2",
    "2.1",
    "2.2",
    "1.2.1",
    "1.1.1.1",
    "1.HEADER",
    "1.TEXT",
    "2.HEADER",
    "2.TEXT",
    "1.2.HEADER",
    "HEADER.FIELDS (FROM SUBJECT)",
    "HEADER.FIELDS.NOT (FROM SUBJECT CONTENT-TYPE)",
    "2.HEADER.FIELDS (SUBJECT)",
)

# Files/fields where we knowingly differ from Dovecot: {(file name, field): reason}.
# Empty on purpose: every corpus file must match exactly.
ALLOW_DIFF = {}


# ---------------------------------------------------------------------------------------
# A tiny IMAP value parser.
#
# Normalisation (the only one applied before comparing) -- justification:
# * Whitespace between tokens is ignored: IMAP separates list elements with exactly one SP,
#   so this only matters for how the response was split into lines by imaplib.
# * A string is compared by its *content*: `"abc"` and `{3}\r\nabc` are the same IMAP
#   string (RFC 9051 §4.3); which form a server picks (e.g. literal for 8-bit or for `"`)
#   is a serialisation choice, not a difference in the value.
# Everything else (case, NIL vs "", numbers, nesting, order) is compared exactly.
# ---------------------------------------------------------------------------------------


class ParseError(Exception):
    pass


def parse_value(data: bytes, pos: int = 0):
    """Parses one IMAP value at data[pos:], returns (value, new_pos).

    Values: list -> Python list; string -> ("S", bytes); number -> ("N", int);
    NIL -> None; other atoms -> ("A", bytes).
    """
    while pos < len(data) and data[pos : pos + 1] in (b" ", b"\r", b"\n"):
        pos += 1
    if pos >= len(data):
        raise ParseError("unexpected end")
    c = data[pos : pos + 1]
    if c == b"(":
        pos += 1
        items = []
        while True:
            while pos < len(data) and data[pos : pos + 1] in (b" ", b"\r", b"\n"):
                pos += 1
            if pos >= len(data):
                raise ParseError("unterminated list")
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            v, pos = parse_value(data, pos)
            items.append(v)
    if c == b'"':
        pos += 1
        out = bytearray()
        while True:
            if pos >= len(data):
                raise ParseError("unterminated quoted")
            ch = data[pos]
            if ch == 0x5C:  # backslash
                out.append(data[pos + 1])
                pos += 2
            elif ch == 0x22:
                return ("S", bytes(out)), pos + 1
            else:
                out.append(ch)
                pos += 1
    if c in (b"{", b"~"):
        if c == b"~":
            pos += 1
        end = data.index(b"}", pos)
        n = int(data[pos + 1 : end].rstrip(b"+"))
        pos = end + 1
        if data[pos : pos + 2] != b"\r\n":
            raise ParseError("literal without CRLF")
        pos += 2
        return ("S", data[pos : pos + n]), pos + n
    end = pos
    while end < len(data) and data[end : end + 1] not in (b" ", b"(", b")", b"\r", b"\n"):
        end += 1
    atom = data[pos:end]
    if atom.upper() == b"NIL":
        return None, end
    if atom.isdigit():
        return ("N", int(atom)), end
    return ("A", atom), end


def parse_full(data: bytes):
    v, pos = parse_value(data, 0)
    if data[pos:].strip():
        raise ParseError(f"trailing data: {data[pos:][:40]!r}")
    return v


def render(v) -> str:
    """Readable form of a parsed value for assertion messages."""
    if v is None:
        return "NIL"
    if isinstance(v, list):
        return "(" + " ".join(render(x) for x in v) + ")"
    kind, x = v
    if kind == "S":
        return json.dumps(x.decode("utf-8", "backslashreplace"), ensure_ascii=False)
    if kind == "N":
        return str(x)
    return x.decode("latin-1")


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


def _raw_fetch_lines(resp):
    """Rebuilds the raw FETCH response lines from imaplib's split literal form."""
    lines, cur = [], b""
    for item in resp:
        if isinstance(item, tuple):
            cur += item[0] + b"\r\n" + item[1]
        else:
            cur += item
            lines.append(cur)
            cur = b""
    if cur:
        lines.append(cur)
    return lines


@pytest.fixture(scope="session")
def dovecot_results():
    subprocess.run([os.path.join(ROOT, "e2e", "services", "dovecot.sh"), "start"], check=True)
    imap = imaplib.IMAP4("127.0.0.1", PORT)
    imap.login("alice", "alice-demo")
    folder = f"mime-diff-{int(time.time() * 1000)}"
    typ, _ = imap.create(folder)
    assert typ == "OK"
    for path in CORPUS:
        with open(path, "rb") as f:
            typ, data = imap.append(folder, None, None, f.read())
        assert typ == "OK", (path, data)
    typ, _ = imap.select(folder, readonly=True)
    assert typ == "OK"
    typ, resp = imap.fetch(f"1:{len(CORPUS)}", "(ENVELOPE BODY BODYSTRUCTURE)")
    assert typ == "OK", resp
    results = {}
    for line in _raw_fetch_lines(resp):
        seq, rest = line.split(b" ", 1)
        items = parse_full(rest)
        fields = {}
        for i in range(0, len(items), 2):
            fields[items[i][1].decode().upper()] = items[i + 1]
        results[CORPUS[int(seq) - 1]] = fields
    for spec in SECTIONS:
        typ, resp = imap.fetch(f"1:{len(CORPUS)}", f"(BODY.PEEK[{spec}])")
        assert typ == "OK", resp
        for line in _raw_fetch_lines(resp):
            seq, rest = line.split(b" ", 1)
            # rest = b'(BODY[<spec>] <nstring>)'; the spec may contain spaces/parens.
            end = rest.index(b"] ") + 2
            value = parse_full(rest[end:].rstrip()[:-1])
            results[CORPUS[int(seq) - 1]].setdefault("sections", {})[spec] = (
                b"" if value is None else value[1]
            )
    imap.logout()
    assert len(results) == len(CORPUS)
    return results


def _decode_field(v) -> bytes:
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return v.encode("utf-8")


@pytest.fixture(scope="session")
def our_results():
    cmd = os.environ.get("MCP_MIME_DUMP")
    argv = shlex.split(cmd) if cmd else [
        "cargo", "run", "-q", "-p", "mcp-dataplane", "--example", "mime_dump", "--",
    ]
    for spec in SECTIONS:
        argv += ["--section", spec]
    out = subprocess.run(argv + CORPUS, cwd=ROOT, check=True, capture_output=True).stdout
    results = {}
    for line in out.decode().splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        results[os.path.abspath(doc["file"])] = {
            "ENVELOPE": parse_full(_decode_field(doc["envelope"])),
            "BODY": parse_full(_decode_field(doc["body"])),
            "BODYSTRUCTURE": parse_full(_decode_field(doc["bodystructure"])),
            "sections": {k: _decode_field(v) for k, v in doc["sections"].items()},
        }
    return results


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[os.path.basename(p) for p in CORPUS])
def test_matches_dovecot(path, dovecot_results, our_results):
    name = os.path.basename(path)
    theirs, ours = dovecot_results[path], our_results[path]
    failures = []
    for field in FIELDS:
        if theirs[field] == ours[field]:
            continue
        if (name, field) in ALLOW_DIFF:
            continue
        failures.append(
            f"{field} differs\n  dovecot: {render(theirs[field])}\n  ours:    {render(ours[field])}"
        )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", CORPUS, ids=[os.path.basename(p) for p in CORPUS])
def test_sections_match_dovecot(path, dovecot_results, our_results):
    name = os.path.basename(path)
    theirs, ours = dovecot_results[path]["sections"], our_results[path]["sections"]
    failures = []
    for spec in SECTIONS:
        if theirs[spec] == ours[spec] or (name, f"BODY[{spec}]") in ALLOW_DIFF:
            continue
        failures.append(
            f"BODY[{spec}] differs\n  dovecot: {theirs[spec][:300]!r}\n  ours:    {ours[spec][:300]!r}"
        )
    assert not failures, "\n".join(failures)
