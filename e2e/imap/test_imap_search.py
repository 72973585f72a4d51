"""SEARCH (RFC 9051 §6.4.4): every search key, CHARSET, ESEARCH result options (RFC 4731,
RFC 9051 §7.3.4) and the SEARCHRES saved result `$` (RFC 5182), on every storage backend."""

from __future__ import annotations

import pytest

from imaputil import connect, quote, unique

# Four messages designed so that every key selects a distinct set (sequence = UID = index+1).
MESSAGES = [
    (
        b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\n"
        b"Cc: Carol <carol@example.net>\r\nBcc: dave@example.org\r\n"
        b"Subject: Quarterly report\r\nX-Priority: 1\r\n"
        b"Date: Fri, 1 Jan 2021 09:00:00 +0000\r\n\r\nThe numbers go up.\r\n",
        "\\Seen \\Answered",
        "01-Jan-2021 09:00:00 +0000",
    ),
    (
        b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Lunch?\r\n"
        b"Date: Tue, 15 Mar 2022 11:30:00 +0100\r\n\r\nPizza or sushi?\r\n",
        "\\Flagged \\Draft $Work",
        "15-Mar-2022 11:30:00 +0000",
    ),
    (
        b"From: Carol <carol@example.net>\r\nTo: alice@example.com\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
        b"Date: Tue, 20 Jun 2023 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Café crème for everyone.\r\n".encode()
        + b"filler line to make this message large\r\n" * 60,
        "\\Deleted",
        "20-Jun-2023 08:00:00 +0000",
    ),
    (
        b"From: Dave <dave@example.org>\r\nTo: Alice <alice@example.com>\r\nSubject: misc\r\n"
        b"Date: Mon, 19 Jun 2023 23:00:00 +0000\r\n\r\nnothing to see\r\n",
        None,
        "20-Jun-2023 12:00:00 +0000",
    ),
]


@pytest.fixture(scope="module")
def box(shared_mcp) -> str:
    name = unique("search")
    with connect(shared_mcp) as c:
        c.create(name)
        for msg, flags, date in MESSAGES:
            c.append(name, msg, flags=flags, date=date).ok()
    return name


@pytest.fixture
def conn(shared_mcp, box):
    c = connect(shared_mcp)
    c.select(box)
    yield c
    c.close()


def hits(resp) -> list[int]:
    (line,) = resp.ok().lines("SEARCH")
    return [int(x) for x in line.split()[1:]]


CASES = [
    ("ALL", [1, 2, 3, 4]),
    ("ANSWERED", [1]),
    ("BCC dave", [1]),
    ("BEFORE 15-Mar-2022", [1]),
    ("BODY pizza", [2]),
    ("BODY X-Priority", []),
    ("CC carol", [1]),
    ("DELETED", [3]),
    ("DRAFT", [2]),
    ("FLAGGED", [2]),
    ("FROM bob", [2]),
    ("FROM EXAMPLE.NET", [3]),
    ("HEADER X-Priority 1", [1]),
    ('HEADER X-Priority ""', [1]),
    ("HEADER Subject lunch", [2]),
    ("KEYWORD $Work", [2]),
    ("KEYWORD $work", [2]),
    ("LARGER 1000", [3]),
    ("NEW", []),
    ("NOT SEEN", [2, 3, 4]),
    ("NOT NOT SEEN", [1]),
    ("OLD", [1, 2, 3, 4]),
    ("ON 15-Mar-2022", [2]),
    ("ON 20-Jun-2023", [3, 4]),
    ("OR FLAGGED DELETED", [2, 3]),
    ("OR OR ANSWERED DRAFT DELETED", [1, 2, 3]),
    ("RECENT", []),
    ("SEEN", [1]),
    ("SENTBEFORE 15-Mar-2022", [1]),
    ("SENTON 19-Jun-2023", [4]),
    ("SENTON 15-Mar-2022", [2]),
    ("SENTSINCE 20-Jun-2023", [3]),
    ("SINCE 15-Mar-2022", [2, 3, 4]),
    ("SINCE 21-Jun-2023", []),
    ("SMALLER 1000", [1, 2, 4]),
    ("SUBJECT lunch", [2]),
    ("SUBJECT QUARTERLY", [1]),
    ("SUBJECT aus", [3]),
    ("TEXT pizza", [2]),
    ("TEXT carol", [1, 3]),
    ("TEXT x-priority", [1]),
    ("TO alice", [2, 3, 4]),
    ("UID 2:3", [2, 3]),
    ("UID 3:*", [3, 4]),
    ("UID 99", []),
    ("UNANSWERED", [2, 3, 4]),
    ("UNDELETED", [1, 2, 4]),
    ("UNDRAFT", [1, 3, 4]),
    ("UNFLAGGED", [1, 3, 4]),
    ("UNKEYWORD $Work", [1, 3, 4]),
    ("UNSEEN", [2, 3, 4]),
    ("2:*", [2, 3, 4]),
    ("1,4", [1, 4]),
    ("*", [4]),
    ("4:2", [2, 3, 4]),
    ("FROM bob FLAGGED", [2]),
    ("(OR SEEN DRAFT) NOT DELETED", [1, 2]),
    ("UNDELETED SMALLER 1000 NOT FROM alice", [2, 4]),
]


@pytest.mark.parametrize("criteria, expected", CASES, ids=[c[0] for c in CASES])
def test_search_key_rfc9051_6_4_4(conn, criteria, expected):
    """Each search key selects exactly the messages it describes (RFC 9051 §6.4.4): flags,
    internal date (BEFORE/ON/SINCE, date only), Date: header (SENT*), sizes, header and body
    substrings (case-insensitive), UID and sequence sets, NOT/OR/AND nesting. \\Recent does not
    exist (RFC 9051 §2.3.2), so NEW and RECENT match nothing and OLD everything."""
    assert hits(conn.cmd(f"SEARCH {criteria}")) == expected


def test_uid_search_returns_uids_rfc9051_6_4_9(shared_mcp, box):
    """UID SEARCH answers UIDs, not sequence numbers (RFC 9051 §6.4.9)."""
    with connect(shared_mcp) as c:
        name = unique("uidsearch")
        c.create(name)
        for msg, flags, date in MESSAGES:
            c.append(name, msg, flags=flags, date=date).ok()
        c.select(name)
        c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").ok()
        c.cmd("EXPUNGE").ok()
        # Messages 1 and 3 were \Deleted: UIDs 2 and 4 remain as sequence numbers 1 and 2.
        assert hits(c.cmd("UID SEARCH UNDELETED")) == [2, 4]
        assert hits(c.cmd("SEARCH UNDELETED")) == [1, 2]
        assert hits(c.cmd("UID SEARCH ALL")) == [2, 4]
        assert hits(c.cmd("UID SEARCH 1")) == [2]
        assert hits(c.cmd("SEARCH UID 2")) == [1]


@pytest.mark.parametrize(
    "key, text, expected",
    [("BODY", "crème", [3]), ("SUBJECT", "Köln", [3]), ("TEXT", "GRÜSSE", []),
     ("TEXT", "grüße", [3]), ("SUBJECT", "Grüße aus", [3])],
)
def test_search_charset_utf8_non_ascii_rfc9051_6_4_4(conn, key, text, expected):
    """CHARSET UTF-8 with a non-ASCII literal: matches decoded bodies and RFC 2047 encoded
    headers, case-insensitively (RFC 9051 §6.4.4)."""
    data = text.encode()
    tag = conn.next_tag()
    conn.send(f"{tag} SEARCH CHARSET UTF-8 {key} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    assert hits(conn.collect(tag)) == expected


def test_search_unknown_charset_is_no_badcharset_rfc9051_6_4_4(conn):
    """An unsupported CHARSET is NO [BADCHARSET (...)] listing the supported ones
    (RFC 9051 §6.4.4, §7.1)."""
    r = conn.cmd("SEARCH CHARSET X-NO-SUCH-CHARSET TEXT foo")
    assert r.status == "NO" and r.code.startswith("BADCHARSET"), r
    assert "UTF-8" in r.code
    assert conn.cmd("NOOP").status == "OK"


def test_search_syntax_error_is_bad_rfc9051_6_4_4(conn):
    """An unknown search key or a missing argument is BAD (RFC 9051 §6.4.4)."""
    for crit in ["FROBNICATE", "LARGER", "BEFORE notadate", "OR SEEN"]:
        assert conn.cmd(f"SEARCH {crit}").status == "BAD", crit


def esearch(resp) -> tuple[str, dict[str, str]]:
    (line,) = resp.ok().lines("ESEARCH")
    words = line.decode().split()
    assert words[0] == "ESEARCH" and words[1] == "(TAG" and words[2] == f'"{resp.tag}")', line
    rest = words[3:]
    uid = bool(rest) and rest[0] == "UID"
    if uid:
        rest = rest[1:]
    return ("UID" if uid else ""), dict(zip(rest[::2], rest[1::2]))


@pytest.mark.parametrize(
    "command, uid, expected",
    [
        ("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN", "", {"MIN": "2", "MAX": "4", "COUNT": "3",
                                                          "ALL": "2:4"}),
        ("SEARCH RETURN (MIN) UNSEEN", "", {"MIN": "2"}),
        ("SEARCH RETURN (MAX) UNSEEN", "", {"MAX": "4"}),
        ("SEARCH RETURN (COUNT) ALL", "", {"COUNT": "4"}),
        ("SEARCH RETURN (ALL) OR SEEN DELETED", "", {"ALL": "1,3"}),
        ("SEARCH RETURN () UNDELETED", "", {"ALL": "1:2,4"}),
        ("UID SEARCH RETURN (MIN MAX) ALL", "UID", {"MIN": "1", "MAX": "4"}),
        ("SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD nothing", "", {"COUNT": "0"}),
    ],
)
def test_esearch_return_options_rfc4731(conn, command, uid, expected):
    """ESEARCH with RETURN (MIN MAX COUNT ALL): one `* ESEARCH (TAG "t") [UID] ...` with
    exactly the requested data; `RETURN ()` means ALL; no MIN/MAX/ALL when nothing matches
    (RFC 4731 §3.1, RFC 9051 §6.4.4)."""
    assert esearch(conn.cmd(command)) == (uid, expected)


def test_searchres_save_and_dollar_rfc5182(conn):
    """RETURN (SAVE) stores the result without an ESEARCH response when SAVE is alone; `$` then
    stands for it in FETCH, UID FETCH, SEARCH and UID STORE (RFC 5182 §2)."""
    r = conn.cmd("SEARCH RETURN (SAVE) OR FLAGGED DELETED").ok()
    assert r.lines("ESEARCH") == [] and r.lines("SEARCH") == [], r
    assert sorted(conn.cmd("FETCH $ (UID)").ok().fetches()) == [2, 3]
    assert sorted(conn.cmd("UID FETCH $ (FLAGS)").ok().fetches()) == [2, 3]
    assert hits(conn.cmd("SEARCH $")) == [2, 3]
    assert hits(conn.cmd("SEARCH NOT $")) == [1, 4]
    assert hits(conn.cmd("SEARCH OR $ 1")) == [1, 2, 3]
    assert hits(conn.cmd("UID SEARCH UID $")) == [2, 3]
    r = conn.cmd("UID STORE $ +FLAGS (X-Saved)").ok()
    assert sorted(r.fetches()) == [2, 3]
    assert hits(conn.cmd("SEARCH KEYWORD X-Saved")) == [2, 3]
    conn.cmd("UID STORE $ -FLAGS.SILENT (X-Saved)").ok()
    # SAVE with MIN and MAX saves only those; with other data it also answers ESEARCH.
    r = conn.cmd("SEARCH RETURN (SAVE MIN MAX) UNSEEN").ok()
    assert r.lines("ESEARCH"), r
    assert hits(conn.cmd("SEARCH $")) == [2, 4]
    # A failed SEARCH with SAVE empties the saved result (RFC 5182 §2.1).
    assert conn.cmd("SEARCH RETURN (SAVE) CHARSET X-BOGUS ALL").status in ("NO", "BAD")
    assert hits(conn.cmd("SEARCH $")) == []
