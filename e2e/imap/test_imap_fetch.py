"""FETCH (RFC 9051 §6.4.5, §7.5.2): every data item, sections and partial fetches, the
implicit \\Seen of BODY[] versus BODY.PEEK, BINARY (RFC 3516) and the macros, on messages of
e2e/corpus/, on every storage backend."""

from __future__ import annotations

import base64
import quopri

import pytest

from imaputil import Atom, connect, corpus, quote, unique

# Sequence number -> corpus file of the shared FETCH mailbox.
FILES = {1: "01", 2: "05", 3: "06", 4: "10", 5: "11", 6: "31", 7: "27"}
DATE = "04-Apr-2023 08:30:00 +0200"


def split_header(raw: bytes) -> tuple[bytes, bytes]:
    i = raw.index(b"\r\n\r\n") + 4
    return raw[:i], raw[i:]


@pytest.fixture(scope="module")
def box(shared_mcp) -> str:
    name = unique("fetch")
    with connect(shared_mcp) as c:
        c.create(name)
        for seq, f in FILES.items():
            c.append(name, corpus(f), flags="$Label" if seq == 1 else None, date=DATE).ok()
    return name


@pytest.fixture
def conn(shared_mcp, box):
    """A read-only view of the shared mailbox (EXAMINE: nothing here may set \\Seen)."""
    c = connect(shared_mcp)
    c.select(box, examine=True)
    yield c
    c.close()


@pytest.fixture
def rw(shared_mcp):
    """A fresh, selected read-write mailbox with corpus 05 and 10 (for \\Seen tests)."""
    name = unique("fetchrw")
    c = connect(shared_mcp)
    c.create(name)
    c.append(name, corpus("05")).ok()
    c.append(name, corpus("10")).ok()
    c.select(name)
    yield c
    c.close()


def fetch1(c, seq: int, items: str) -> dict:
    r = c.cmd(f"FETCH {seq} {items}").ok()
    return r.fetches()[seq]


def test_simple_items_rfc9051_7_5_2(conn):
    """FLAGS, INTERNALDATE (as appended), RFC822.SIZE (exact octets) and UID of every message
    (RFC 9051 §7.5.2)."""
    r = conn.cmd("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)").ok().fetches()
    assert sorted(r) == sorted(FILES)
    for seq, f in FILES.items():
        assert int(r[seq]["UID"]) == seq
        assert int(r[seq]["RFC822.SIZE"]) == len(corpus(f))
        assert r[seq]["INTERNALDATE"] == DATE.encode()
    assert r[1]["FLAGS"] == [b"$Label"]
    assert r[2]["FLAGS"] == []


def test_envelope_rfc9051_7_5_2(conn):
    """ENVELOPE: date, subject, from, sender and reply-to defaulting to from, to, cc, bcc,
    in-reply-to and message-id, addresses as (name adl mailbox host) (RFC 9051 §7.5.2)."""
    env = fetch1(conn, 2, "ENVELOPE")["ENVELOPE"]
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = env
    assert date == b"Tue, 4 Apr 2023 08:30:00 +0200"
    assert subject == b"alternative"
    assert from_ == [[b"Alice A.", None, b"alice", b"example.com"]]
    assert sender == from_ and reply_to == from_
    assert to == [[None, None, b"bob", b"example.org"], [None, None, b"carol", b"example.net"]]
    assert cc == [[b"Dave", None, b"dave", b"example.com"]]
    assert bcc is None and in_reply_to is None
    inner = fetch1(conn, 5, "ENVELOPE")["ENVELOPE"]
    assert inner[1] == b"Fwd: inner message"


def test_bodystructure_and_body_rfc9051_7_5_2(conn):
    """BODYSTRUCTURE of multipart/alternative lists the parts, the subtype and the extension
    data (boundary); BODY is the same without extension data (RFC 9051 §7.5.2)."""
    bs = fetch1(conn, 2, "BODYSTRUCTURE")["BODYSTRUCTURE"]
    plain, html, subtype, params, *ext = bs
    assert subtype.upper() == b"ALTERNATIVE"
    assert [p.lower() for p in params] == [b"boundary", b"alt-boundary"]
    assert plain[0].lower() == b"text" and plain[1].lower() == b"plain"
    assert plain[2] == [b"charset", b"utf-8"] or [x.lower() for x in plain[2]] == [b"charset",
                                                                                   b"utf-8"]
    assert plain[5].lower() == b"quoted-printable"
    assert html[1].lower() == b"html"
    body = fetch1(conn, 2, "BODY")["BODY"]
    # BODY: the same parts and subtype, each without its extension data.
    assert len(body) == 3 and body[2] == bs[2]
    for part, ext_part in zip(body[:2], bs[:2]):
        assert part == ext_part[:len(part)] and len(part) < len(ext_part)
    nested = fetch1(conn, 3, "BODYSTRUCTURE")["BODYSTRUCTURE"]
    assert nested[0][2].upper() == b"ALTERNATIVE"  # 1 is multipart/alternative
    assert nested[0][1][2].upper() == b"RELATED"  # 1.2 is multipart/related
    assert nested[1][:2] == [b"application", b"pdf"] or nested[1][1].lower() == b"pdf"
    msg = fetch1(conn, 5, "BODYSTRUCTURE")["BODYSTRUCTURE"]
    assert msg[1][:2] in ([b"message", b"rfc822"], [b"MESSAGE", b"RFC822"])


def section_cases():
    r05, r06, r11 = corpus("05"), corpus("06"), corpus("11")
    h05, t05 = split_header(r05)
    h11, _ = split_header(r11)
    return [
        (2, "BODY[]", "BODY[]", r05),
        (2, "BODY[HEADER]", "BODY[HEADER]", h05),
        (2, "BODY[TEXT]", "BODY[TEXT]", t05),
        (2, "BODY[HEADER.FIELDS (Subject FROM)]", "BODY[HEADER.FIELDS (SUBJECT FROM)]",
         b'From: "Alice A." <alice@example.com>\r\nSubject: alternative\r\n\r\n'),
        (2, "BODY[HEADER.FIELDS.NOT (Subject From Cc To Date MIME-Version)]",
         "BODY[HEADER.FIELDS.NOT (SUBJECT FROM CC TO DATE MIME-VERSION)]",
         b'Content-Type: multipart/alternative; boundary="alt-boundary"\r\n\r\n'),
        (2, "BODY[1]", "BODY[1]", b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln"),
        (2, "BODY[1.MIME]", "BODY[1.MIME]",
         b'Content-Type: text/plain; charset="utf-8"\r\n'
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
        (2, "BODY[2]", "BODY[2]",
         b"<html><body><p>Gr=C3=BC=C3=9Fe aus K=C3=B6ln</p></body></html>"),
        (3, "BODY[1.1]", "BODY[1.1]", b"plain version"),
        (3, "BODY[1.2.1]", "BODY[1.2.1]", b'<html><img src="cid:img1@example.com"></html>'),
        (3, "BODY[1.2.2]", "BODY[1.2.2]",
         b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4DwAAAQEABRjYTgAAAABJRU5ErkJggg=="),
        (3, "BODY[2.MIME]", "BODY[2.MIME]",
         r06[r06.index(b"Content-Type: application/pdf"):r06.index(b"JVBERi0")]),
        (5, "BODY[2.HEADER.FIELDS (subject)]", "BODY[2.HEADER.FIELDS (SUBJECT)]",
         b"Subject: inner message\r\n\r\n"),
        (5, "BODY[2.1]", "BODY[2.1]", b"inner text"),
        (5, "BODY[HEADER]", "BODY[HEADER]", h11),
        (2, "BODY[]<0.10>", "BODY[]<0>", r05[:10]),
        (2, "BODY[TEXT]<5.7>", "BODY[TEXT]<5>", t05[5:12]),
        (2, "BODY[1]<4.1000>", "BODY[1]<4>", b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln"[4:]),
        (2, "BODY[]<100000.10>", "BODY[]<100000>", b""),
        (2, "RFC822", "RFC822", r05),
        (2, "RFC822.HEADER", "RFC822.HEADER", h05),
        (2, "RFC822.TEXT", "RFC822.TEXT", t05),
    ]


@pytest.mark.parametrize("seq, item, echo, expected", section_cases(),
                         ids=[f"{c[0]}-{c[1]}" for c in section_cases()])
def test_body_sections_and_partial_rfc9051_6_4_5(conn, seq, item, echo, expected):
    """BODY[section]<partial>: HEADER, HEADER.FIELDS (.NOT), TEXT, MIME, nested part numbers
    and origin/length, echoed in the response with the origin only; RFC822, RFC822.HEADER and
    RFC822.TEXT (RFC 9051 §6.4.5, §7.5.2)."""
    got = fetch1(conn, seq, f"({item.replace('BODY[', 'BODY.PEEK[')})"
                 if item.startswith("BODY[") else f"({item})")
    assert echo in got, (echo, list(got))
    assert got[echo] == expected


def test_body_peek_does_not_set_seen_but_body_does_rfc9051_6_4_5(rw):
    """BODY.PEEK[] and BINARY.PEEK leave \\Seen alone; BODY[] sets it and the response
    includes the new FLAGS (RFC 9051 §6.4.5, §7.5.2); RFC822.HEADER does not set it."""
    f = rw.cmd("FETCH 1 (BODY.PEEK[] BINARY.PEEK[1] RFC822.HEADER)").ok().fetches()[1]
    assert "FLAGS" not in f
    assert rw.cmd("FETCH 1 FLAGS").ok().fetches()[1]["FLAGS"] == []
    f = rw.cmd("FETCH 1 BODY[HEADER]").ok().fetches()[1]
    assert f["FLAGS"] == [b"\\Seen"], f
    f = rw.cmd("FETCH 2 RFC822.TEXT").ok().fetches()[2]
    assert f["FLAGS"] == [b"\\Seen"], f
    # Already \Seen: fetching again does not report FLAGS again.
    f = rw.cmd("FETCH 1 BODY[1]").ok().fetches()[1]
    assert "FLAGS" not in f


def test_binary_decodes_transfer_encoding_rfc3516(conn):
    """BINARY[part] returns the part with its Content-Transfer-Encoding removed and
    BINARY.SIZE its decoded size (RFC 3516 §4.2, RFC 9051 §6.4.5)."""
    qp = quopri.decodestring(b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln")
    f = fetch1(conn, 2, "(BINARY.PEEK[1] BINARY.SIZE[1])")
    assert f["BINARY[1]"] == qp == "Grüße aus Köln".encode()
    assert int(f["BINARY.SIZE[1]"]) == len(qp)
    pdf = base64.b64decode(b"JVBERi0xLjQKeJzLSM3JyVcoSElTyBhlDQIWAJ8ZjjEKJSVFT0YK")
    f = fetch1(conn, 4, "(BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[2]<0.4>)")
    assert f["BINARY[2]"] == pdf
    assert int(f["BINARY.SIZE[2]"]) == len(pdf)
    assert f["BINARY[2]<0>"] == pdf[:4]
    f = fetch1(conn, 1, "(BINARY.PEEK[1] BINARY.SIZE[1])")
    assert f["BINARY[1]"] == split_header(corpus("01"))[1]


def test_binary_unknown_transfer_encoding_is_no_unknown_cte_rfc3516_4_3(conn):
    """BINARY of a part with an unknown Content-Transfer-Encoding is NO [UNKNOWN-CTE]
    (RFC 3516 §4.3)."""
    raw = corpus("27")
    assert b"Content-Transfer-Encoding" in raw
    r = conn.cmd("FETCH 7 BINARY.PEEK[1]")
    assert r.status == "NO" and r.code == "UNKNOWN-CTE", r


@pytest.mark.parametrize(
    "macro, items",
    [
        ("ALL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}),
        ("FAST", {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}),
        ("FULL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"}),
    ],
)
def test_fetch_macros_rfc9051_6_4_5(conn, macro, items):
    """The macros ALL, FAST and FULL expand to their data items (RFC 9051 §6.4.5)."""
    assert set(fetch1(conn, 2, macro)) == items


def test_uid_fetch_always_returns_uid_rfc9051_6_4_9(conn):
    """UID FETCH includes UID even when not asked for, and ignores UIDs that do not exist
    (RFC 9051 §6.4.9)."""
    r = conn.cmd("UID FETCH 2,4,999 (FLAGS)").ok().fetches()
    assert sorted(r) == [2, 4]
    assert all("UID" in v for v in r.values())
    assert conn.cmd("UID FETCH 900:999 (FLAGS)").ok().untagged == []


def test_fetch_invalid_sequence_is_bad_rfc9051_6_4_5(conn):
    """A message sequence number beyond EXISTS is BAD (RFC 9051 §6.4.5, as Dovecot)."""
    r = conn.cmd("FETCH 99 FLAGS")
    assert r.status == "BAD", r
    assert conn.cmd("FETCH 1 FLAGS").status == "OK"


def test_literal_values_are_exact_octets_rfc9051_4_3(conn):
    """Section data is sent as literals with exact octet counts: parsing every section of every
    message leaves nothing over (RFC 9051 §4.3)."""
    r = conn.cmd("FETCH 1:* (BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[1])").ok().fetches()
    for seq, f in FILES.items():
        assert r[seq]["BODY[]"] == corpus(f)
        assert isinstance(r[seq]["BODY[1]"], bytes)
    assert not isinstance(r[1]["BODY[]"], Atom)


def test_fetch_in_utf8_mailbox_name_does_not_matter(shared_mcp):
    """FETCH works in a mailbox with a non-ASCII name (RFC 9051 §5.1.3)."""
    name = unique("f") + "&AOk-"
    with connect(shared_mcp) as c:
        c.create(name)
        c.append(name, corpus("01")).ok()
        c.cmd(f"SELECT {quote(name)}").ok()
        assert fetch1(c, 1, "BODY.PEEK[]")["BODY[]"] == corpus("01")
