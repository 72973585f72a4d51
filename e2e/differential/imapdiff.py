"""Differential IMAP session harness: a raw IMAP client, a response normaliser and a
comparator, used by test_sessions_vs_dovecot.py to run the same scripted sessions against
Dovecot and MCP.

Stdlib only. A *script* is a list of command strings (without tag and CRLF). A command may
contain literals written as `{N}\r\n<N octets>` (synchronising: the client waits for the
server's `+` continuation) or `{N+}` (LITERAL+). Each command is sent with the tag
`d<index>`; everything the server sends until the tagged completion is that command's
response. Responses are normalised (see `normalise`) and compared command by command.
"""

from __future__ import annotations

import datetime
import difflib
import re
import socket
import time
from dataclasses import dataclass, field

TIMEOUT = 20.0


class ImapError(Exception):
    pass


class RawClient:
    """A minimal IMAP client that keeps the server's responses verbatim (literals inlined
    as `{N}\\r\\n<octets>`), so that nothing is lost before normalisation."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.buf = b""
        self.greeting = self.read_response_line()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ImapError("connection closed by server")
        self.buf += chunk

    def _read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response_line(self) -> bytes:
        """One logical response: a line plus any literals it announces, inlined."""
        out = b""
        while True:
            line = self._read_line()
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}$", line)
            if not m:
                return out
            out += b"\r\n" + self._read_exact(int(m.group(1)))

    def command(self, tag: str, cmd: bytes) -> list[bytes]:
        """Sends `tag cmd`, returns every response line up to and including the tagged one."""
        # Send up to each synchronising literal `{N}\r\n`, wait for the continuation.
        data = tag.encode() + b" " + cmd
        lines: list[bytes] = []
        prefix = tag.encode() + b" "
        sent = search = 0
        while True:
            m = re.compile(rb"\{(\d+)\}\r\n").search(data, search)
            if not m:
                break
            self.sock.sendall(data[sent : m.end()])
            while True:
                resp = self.read_response_line()
                if resp.startswith(b"+"):
                    break
                lines.append(resp)
                if resp.startswith(prefix):
                    return lines  # rejected before the literal
            sent = m.end()
            search = m.end() + int(m.group(1))
        payload = data[sent:]
        self.sock.sendall(payload + b"\r\n")
        while True:
            resp = self.read_response_line()
            lines.append(resp)
            if resp.startswith(prefix):
                return lines


# ---------------------------------------------------------------------------------------
# Tokenising
# ---------------------------------------------------------------------------------------

_ATOM_SAFE = re.compile(rb"^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~\\\[\]*]+$")


def tokenize(data: bytes) -> list:
    """Splits a response into tokens: '(' / ')' and ('A', atom) / ('S', string content).

    Quoted strings and literals both become ('S', content) -- the same IMAP string
    (RFC 9051 §4.3), whose wire form is the server's choice.
    """
    toks: list = []
    pos, n = 0, len(data)
    while pos < n:
        c = data[pos : pos + 1]
        if c in (b" ", b"\r", b"\n"):
            pos += 1
        elif c in (b"(", b")"):
            toks.append(c.decode())
            pos += 1
        elif c == b'"':
            pos += 1
            out = bytearray()
            while pos < n and data[pos] != 0x22:
                if data[pos] == 0x5C and pos + 1 < n:
                    pos += 1
                out.append(data[pos])
                pos += 1
            pos += 1
            toks.append(("S", bytes(out)))
        elif (c == b"{" or data[pos : pos + 2] == b"~{") and re.match(
            rb"~?\{\d+\+?\}\r\n", data[pos:]
        ):
            m = re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:])
            size = int(m.group(1))
            start = pos + m.end()
            toks.append(("S", data[start : start + size]))
            pos = start + size
        else:
            end = pos
            while end < n and data[end : end + 1] not in (b" ", b"(", b")", b"\r", b"\n", b'"'):
                # `{` inside an atom (e.g. BODY[]<0>) is fine; a literal starts only at a token.
                end += 1
            toks.append(("A", data[pos:end]))
            pos = end
    return toks


def _render_tok(t) -> str:
    if isinstance(t, str):
        return t
    kind, v = t
    if kind == "A":
        return v.decode("latin-1")
    # A string whose content could be sent as an atom is rendered as that atom: atom,
    # quoted and literal forms of one astring are the same value (RFC 9051 §4.3, astring).
    if v and _ATOM_SAFE.match(v) and not v.isdigit() and v.upper() != b"NIL":
        return v.decode("latin-1")
    return '"' + v.decode("utf-8", "backslashreplace").replace("\\", "\\\\").replace('"', '\\"') + '"'


def _group(toks: list, i: int = 0):
    """Turns a token list into nested Python lists (for reordering)."""
    out = []
    while i < len(toks):
        t = toks[i]
        if t == "(":
            sub, i = _group(toks, i + 1)
            out.append(sub)
        elif t == ")":
            return out, i + 1
        else:
            out.append(t)
            i += 1
    return out, i


def _render_tree(tree) -> str:
    parts = []
    for x in tree:
        if isinstance(x, list):
            parts.append("(" + _render_tree(x) + ")")
        else:
            parts.append(_render_tok(x))
    return " ".join(parts)


def _atom(t) -> str | None:
    return t[1].decode("latin-1").upper() if isinstance(t, tuple) and t[0] == "A" else None


# ---------------------------------------------------------------------------------------
# Normalisation. Each rule says why the difference it removes is legitimate.
# ---------------------------------------------------------------------------------------

# Response codes only one of the two servers sends, and whose absence on the other side is
# allowed by the RFCs:
# * HIGHESTMODSEQ / NOMODSEQ: RFC 7162 §3.1.2.1 -- MCP has persistent mod-sequences and
#   announces them on every SELECT; Dovecot only after CONDSTORE is enabled.
# * UNSEEN: deprecated by RFC 9051 and only "SHOULD" in RFC 3501; both send it, but
#   harmlessly it is a hint, its value is compared when both send it.
# * CLOSED: RFC 7162 §3.2.11 -- sent when a mailbox is re-selected; Dovecot sends it
#   unconditionally, MCP only once IMAP4rev2/QRESYNC is enabled (both allowed).
OPTIONAL_CODES = {"HIGHESTMODSEQ", "NOMODSEQ", "CLOSED"}

_STATUS = re.compile(rb"^(\S+) (OK|NO|BAD|BYE|PREAUTH)(?: (\[[^\]]*(?:\][^\]]*)?\]))?(.*)$", re.I | re.S)


@dataclass
class Normalised:
    lines: list[str]
    #: Response codes dropped because they are in OPTIONAL_CODES (kept for debugging).
    dropped: list[str] = field(default_factory=list)


def _norm_code(code: bytes) -> str | None:
    """Normalises the `[...]` response code of a status response; None = drop it."""
    inner = code[1:-1]
    name = inner.split(b" ", 1)[0].upper().decode("latin-1")
    if name in OPTIONAL_CODES:
        return None
    toks = tokenize(inner)
    if name == "BADCHARSET":
        # The list of supported charsets after BADCHARSET is optional (RFC 9051 §7.1).
        return "[BADCHARSET]"
    if name == "CAPABILITY":
        # Capability lists differ by design (different extension sets; order is free).
        return "[CAPABILITY <caps>]"
    if name == "UIDVALIDITY":
        # UIDVALIDITY values are chosen by each server (RFC 9051 §2.3.1.1).
        return "[UIDVALIDITY <v>]"
    if name in ("APPENDUID", "COPYUID") and len(toks) >= 2:
        # First argument is the destination UIDVALIDITY (RFC 4315 §3); UIDs are compared.
        toks[1] = ("A", b"<v>")
    if name == "MODIFIED" and len(toks) == 2:
        return f"[MODIFIED {_canonical_set(_render_tok(toks[1]))}]"
    if name == "PERMANENTFLAGS":
        tree, _ = _group(toks)
        for x in tree:
            if isinstance(x, list):
                x.sort(key=_render_tok)
        return "[" + _render_tree(tree) + "]"
    return "[" + _render_tree(_group(toks)[0]) + "]"


def _canonical_set(text: str) -> str:
    """A sequence set or UID set as sorted, merged ranges (`5,1:3,4` -> `1:5`): its wire
    form is the server's choice (RFC 9051 §9 sequence-set; RFC 7162 §3.2.10 VANISHED,
    §3.1.3 MODIFIED)."""
    try:
        ranges = []
        for part in text.split(","):
            a, _, b = part.partition(":")
            lo, hi = sorted((int(a), int(b or a)))
            ranges.append([lo, hi])
    except ValueError:
        return text
    ranges.sort()
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in merged)


def _sort_flags(tree) -> None:
    """Flags in a list are a set: order is free (RFC 9051 §2.3.2). `\\Recent` is dropped:
    IMAP4rev2 (which MCP implements) removed it (RFC 9051 Appendix E.3); Dovecot still has it."""
    tree[:] = [t for t in tree if _atom(t) != "\\RECENT"]
    tree.sort(key=_render_tok)


def _norm_fetch(rest_tree) -> str:
    """`n FETCH (items)`: items are name/value pairs in any order (RFC 9051 §7.5.2)."""
    seq, _, items = rest_tree[0], rest_tree[1], rest_tree[2]
    pairs = []
    i = 0
    while i + 1 < len(items):
        name = _atom(items[i]) or _render_tok(items[i])
        j = i + 1
        # Section specs like BODY[HEADER.FIELDS (A B)] tokenise as BODY[HEADER.FIELDS, (...), ]
        key_parts = [_render_tok(items[i]) if not isinstance(items[i], list) else ""]
        while "[" in name and not name.endswith("]") and not re.search(r"\]<\d+>$", name):
            nxt = items[j]
            key_parts.append("(" + _render_tree(nxt) + ")" if isinstance(nxt, list) else _render_tok(nxt))
            name = "".join(key_parts).upper()
            j += 1
        value = items[j] if j < len(items) else None
        key = " ".join(key_parts).replace(" ]", "]")
        if key.upper() == "FLAGS" and isinstance(value, list):
            _sort_flags(value)
        if key.upper() == "INTERNALDATE" and isinstance(value, tuple):
            value = ("S", _norm_date(value[1]))
        if key.upper() == "MODSEQ":
            # Mod-sequence values are per-server counters (RFC 7162 §3.1.1).
            value = ["<modseq>"]
        rendered = "(" + _render_tree(value) + ")" if isinstance(value, list) else _render_tok(value)
        pairs.append(f"{key} {rendered}")
        i = j + 1
    pairs.sort(key=lambda p: p.split(" ", 1)[0].upper())
    return f"* {_render_tok(seq)} FETCH (" + " ".join(pairs) + ")"


# INTERNALDATEs the scripts give explicitly. A date not in this set and within a day of
# now was chosen by the server (APPEND without date-time: "the current date and time",
# RFC 9051 §6.3.12), so it is replaced by <now>.
GIVEN_DATES: set[bytes] = set()


def _norm_date(d: bytes) -> bytes:
    """An INTERNALDATE as the UTC instant it denotes. The zone is not compared: Dovecot's
    maildir keeps only a timestamp (the file's mtime), so a copied message comes back in
    the server's zone; the instant is the same (RFC 9051 §2.3.3: date *and time*)."""
    try:
        t = datetime.datetime.strptime(d.decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return d
    if d not in GIVEN_DATES and abs(time.time() - t.timestamp()) < 86400:
        return b"<now>"
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC").encode()


def normalise_line(line: bytes, tag: str) -> str | None:
    """One response line, normalised; None to drop it."""
    m = _STATUS.match(line)
    if m and (m.group(1) in (b"*", tag.encode())):
        # Status responses: keep tag, status and response code; the human-readable text
        # is free-form (RFC 9051 §7.1).
        code = m.group(3)
        status = m.group(2).upper().decode()
        head = m.group(1).decode()
        if code is None:
            return f"{head} {status}"
        nc = _norm_code(code)
        if nc is None and head == "*":
            # An untagged OK that only carries an optional code (see OPTIONAL_CODES).
            return None
        return f"{head} {status}" + (f" {nc}" if nc else "")
    if not line.startswith(b"* "):
        if line.startswith(b"+"):
            return "+"  # continuation text is free-form (RFC 9051 §7.5)
        return line.decode("latin-1")
    toks = tokenize(line[2:])
    tree, _ = _group(toks)
    if not tree:
        return "*"
    first = _atom(tree[0])
    second = _atom(tree[1]) if len(tree) > 1 else None
    if first == "CAPABILITY":
        return "* CAPABILITY <caps>"
    if first == "ID":
        # Server identification is implementation-specific (RFC 2971 §3.3).
        return "* ID <id>"
    if second == "RECENT":
        # \Recent is gone in IMAP4rev2 (RFC 9051 Appendix E.3): MCP reports 0 on SELECT and
        # never updates it, Dovecot reports the session's recent count whenever it changes.
        # Treated as equal: dropped on both sides.
        return None
    if first in ("FLAGS",) and len(tree) > 1 and isinstance(tree[1], list):
        _sort_flags(tree[1])
    if first in ("LIST", "LSUB") and len(tree) > 1 and isinstance(tree[1], list):
        # Mailbox attributes are a set (RFC 9051 §7.3.1); order free.
        tree[1].sort(key=lambda t: _render_tok(t).upper())
        # Attribute case is not significant (RFC 9051 §7.3.1, flag names).
        tree[1] = [("A", t[1].upper()) if isinstance(t, tuple) else t for t in tree[1]]
    if first == "STATUS" and len(tree) > 2 and isinstance(tree[2], list):
        items = tree[2]
        pairs = []
        for k in range(0, len(items) - 1, 2):
            name = _atom(items[k])
            val = _render_tok(items[k + 1])
            if name == "UIDVALIDITY":
                val = "<v>"
            elif name == "RECENT":
                val = "<n>"
            elif name == "HIGHESTMODSEQ":
                val = "<modseq>"
            pairs.append(f"{name} {val}")
        # STATUS items may come in any order (RFC 9051 §7.2.4).
        pairs.sort()
        return f"* STATUS {_render_tok(tree[1])} ({' '.join(pairs)})"
    if second == "FETCH" and len(tree) > 2 and isinstance(tree[2], list):
        return _norm_fetch(tree)
    if first == "VANISHED":
        # A UID set (RFC 7162 §3.2.10); (EARLIER) kept.
        head = [_render_tree([t]) for t in tree[1:-1]]
        return " ".join(["* VANISHED"] + head + [_canonical_set(_render_tok(tree[-1]))])
    if first in ("SEARCH", "SORT"):
        # SEARCH results are a set of numbers (RFC 9051 §7.3.4 lists no order). A trailing
        # `(MODSEQ n)` (RFC 7162 §3.1.6) keeps its place; the value is per server.
        items = [t for t in tree[1:] if not isinstance(t, list)]
        nums = sorted(int(_render_tok(t)) for t in items if _render_tok(t).isdigit())
        rest = [_render_tok(t) for t in items if not _render_tok(t).isdigit()]
        rest += ["(MODSEQ <modseq>)" for t in tree[1:] if isinstance(t, list)]
        return " ".join(["* SEARCH"] + [str(n) for n in nums] + rest)
    if first == "ESEARCH":
        # search-return-data items (MIN, MAX, ALL, COUNT) may come in any order
        # (RFC 4731 §3.1: `*(SP search-return-data)`); the (TAG ..) correlator and UID stay first.
        head = []
        rest = list(tree[1:])
        while rest and (isinstance(rest[0], list) or _atom(rest[0]) == "UID"):
            head.append(rest.pop(0))
        pairs = [rest[k : k + 2] for k in range(0, len(rest), 2)]
        for p in pairs:
            if _atom(p[0]) == "MODSEQ" and len(p) == 2:
                # RFC 7162 §3.1.6 / RFC 4731 §3.2: the value is a per-server counter.
                p[1] = ("A", b"<modseq>")
        pairs.sort(key=lambda p: _render_tok(p[0]))
        return "* ESEARCH " + _render_tree(head + [x for p in pairs for x in p])
    return "* " + _render_tree(tree)


def normalise(lines: list[bytes], tag: str) -> list[str]:
    """A command's response lines, normalised and put in a canonical order.

    Untagged responses other than EXPUNGE may be sent in any order (RFC 9051 §7: the server
    may send untagged data at any time; SELECT lists its responses without an order), so
    they are sorted. EXPUNGE responses keep their relative order: each renumbers the
    following ones. The tagged completion stays last.
    """
    norm = [normalise_line(line, tag) for line in lines]
    norm = [x for x in norm if x is not None]
    tagged = [x for x in norm if not x.startswith("*") and not x.startswith("+")]
    cont = [x for x in norm if x.startswith("+")]
    untagged = [x for x in norm if x.startswith("*")]
    expunges = [x for x in untagged if re.match(r"^\* \d+ EXPUNGE$", x)]
    others = sorted(x for x in untagged if not re.match(r"^\* \d+ EXPUNGE$", x))
    return cont + others + expunges + tagged


def run_script(host: str, port: int, user: str, password: str, script: list) -> list:
    """Logs in, runs every command of `script`, logs out. Returns [(command, raw lines)]."""
    c = RawClient(host, port)
    try:
        out = []
        c.command("d0", f'LOGIN "{user}" "{password}"'.encode())
        for i, cmd in enumerate(script, 1):
            raw = cmd.encode("latin-1") if isinstance(cmd, str) else cmd
            out.append((raw, c.command(f"d{i}", raw)))
        try:
            c.command(f"d{len(script) + 1}", b"LOGOUT")
        except ImapError:
            pass
        return out
    finally:
        c.close()


MAX_DIFF_LINES = int(__import__("os").environ.get("MCP_DIFF_LINES", "6"))


def _short(line: str, limit: int = 300) -> str:
    line = line.replace("\r\n", "\\r\\n").replace("\n", "\\n")
    return line if len(line) <= limit else line[:limit] + "..."


def compare(script_name: str, theirs: list, ours: list, allow: dict) -> tuple[list, list]:
    """Compares two runs. Returns (failures, allowed) as readable strings."""
    failures, allowed = [], []
    for i, ((cmd, t_lines), (_, o_lines)) in enumerate(zip(theirs, ours), 1):
        tag = f"d{i}"
        nt, no = normalise(t_lines, tag), normalise(o_lines, tag)
        if nt == no:
            continue
        shown = cmd.decode("latin-1")
        if len(shown) > 120:
            shown = shown[:120] + "..."
        msg = [f"[{script_name}] d{i} {shown}"]
        shown_lines = 0
        for d in difflib.ndiff(nt, no):
            if d[:1] not in "-+":
                continue
            shown_lines += 1
            if shown_lines > MAX_DIFF_LINES:
                msg.append("    ...")
                break
            who = "dovecot" if d[:1] == "-" else "mcp:   "
            msg.append(f"    {who}: {_short(d[2:])}")
        reason = allow.get((script_name, i))
        (allowed if reason else failures).append("\n".join(msg) + (f"\n    allowed: {reason}" if reason else ""))
    return failures, allowed
