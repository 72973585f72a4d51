"""STORE (RFC 9051 §6.4.6), COPY (§6.4.7), MOVE (RFC 6851, §6.4.8) with COPYUID (RFC 4315),
their UID forms (§6.4.9), and message sequence number semantics with two connections
(RFC 9051 §7.5.1, §2.3.1.2), on every storage backend."""

from __future__ import annotations

import pytest

from imaputil import connect, flags_of, mailbox_with, quote, simple_message, unique


def uid_flags(c) -> dict[int, set[str]]:
    r = c.cmd("FETCH 1:* (UID FLAGS)").ok().fetches()
    return {int(v["UID"]): flags_of(v["FLAGS"]) for v in r.values()}


@pytest.fixture
def three(shared_mcp):
    """A connection with a fresh selected mailbox of three unflagged messages."""
    box = mailbox_with(shared_mcp, [simple_message(str(i)) for i in range(1, 4)])
    c = connect(shared_mcp)
    c.select(box)
    c.box = box
    c.server = shared_mcp
    yield c
    c.close()


@pytest.mark.parametrize(
    "command, expected_fetch, final",
    [
        ("STORE 1 +FLAGS (\\Flagged \\Seen)", {1: {"\\Flagged", "\\Seen"}},
         {1: {"\\Flagged", "\\Seen"}, 2: set(), 3: set()}),
        ("STORE 1:2 FLAGS (\\Answered)", {1: {"\\Answered"}, 2: {"\\Answered"}},
         {1: {"\\Answered"}, 2: {"\\Answered"}, 3: set()}),
        ("STORE 2:* +FLAGS.SILENT (\\Draft)", {}, {1: set(), 2: {"\\Draft"}, 3: {"\\Draft"}}),
        ("STORE 3 FLAGS.SILENT (\\Seen)", {}, {1: set(), 2: set(), 3: {"\\Seen"}}),
        ("STORE 1:3 -FLAGS (\\Seen)", {1: set(), 2: set(), 3: set()},
         {1: set(), 2: set(), 3: set()}),
    ],
)
def test_store_forms_rfc9051_6_4_6(three, command, expected_fetch, final):
    """STORE +FLAGS adds, -FLAGS removes, FLAGS replaces; each answers the new flags with
    untagged FETCH unless .SILENT (RFC 9051 §6.4.6)."""
    r = three.cmd(command).ok()
    got = {seq: flags_of(v["FLAGS"]) for seq, v in r.fetches().items()}
    assert got == expected_fetch, r
    assert uid_flags(three) == final


def test_store_minus_flags_and_replace_after_add_rfc9051_6_4_6(three):
    """-FLAGS removes only the named flags; FLAGS () clears all (RFC 9051 §6.4.6)."""
    three.cmd("STORE 1 +FLAGS.SILENT (\\Seen \\Flagged $A)").ok()
    r = three.cmd("STORE 1 -FLAGS (\\Seen $a)").ok()
    assert flags_of(r.fetches()[1]["FLAGS"]) == {"\\Flagged"}
    three.cmd("STORE 1 FLAGS ()").ok()
    assert uid_flags(three)[1] == set()


def test_uid_store_answers_with_uid_rfc9051_6_4_9(three):
    """UID STORE's FETCH responses include UID; non-existent UIDs are ignored
    (RFC 9051 §6.4.9)."""
    r = three.cmd("UID STORE 2,99 +FLAGS (\\Flagged)").ok()
    assert r.fetches() == {2: {"UID": b"2", "FLAGS": [b"\\Flagged"]}}, r


def test_new_keyword_is_announced_in_flags_before_fetch_rfc9051_7_3_5(three):
    """A keyword new to the mailbox is announced with untagged FLAGS (and PERMANENTFLAGS)
    before the FETCH that shows it (RFC 9051 §7.3.5, §7.5.2)."""
    kw = "Kw" + unique("")[1:8]
    r = three.cmd(f"STORE 1 +FLAGS ({kw})").ok()
    order = r.order()
    assert "FLAGS" in order and "FETCH" in order, r
    assert order.index("FLAGS") < order.index("FETCH"), r
    (flags,) = r.lines("FLAGS")
    assert kw.encode() in flags
    # Another session sees it in SELECT's FLAGS.
    with connect(three.server) as other:
        sel = other.select(three.box)
        assert kw.encode() in sel.lines("FLAGS")[0]


def test_store_to_keyword_by_other_session_is_announced_rfc9051_7_3_5(three, shared_mcp):
    """A keyword set by another session is announced with FLAGS before its FETCH on the next
    NOOP (RFC 9051 §7.3.5)."""
    kw = "Other" + unique("")[1:8]
    with connect(shared_mcp) as b:
        b.select(three.box)
        b.cmd(f"STORE 2 +FLAGS.SILENT ({kw})").ok()
    r = three.cmd("NOOP").ok()
    order = r.order()
    assert order.index("FLAGS") < order.index("FETCH"), r
    assert flags_of(r.fetches()[2]["FLAGS"]) == {kw}


def copyuid(code: str) -> tuple[int, str, str]:
    name, validity, src, dst = code.split()
    assert name == "COPYUID"
    return int(validity), src, dst


@pytest.mark.parametrize("uid", [False, True])
def test_copy_with_copyuid_keeps_flags_rfc9051_6_4_7_rfc4315(three, uid):
    """COPY / UID COPY appends copies with their flags to the target and answers
    OK [COPYUID validity src dst]; the source is unchanged (RFC 9051 §6.4.7, RFC 4315 §3)."""
    dest = unique("copydst")
    three.create(dest)
    three.cmd("STORE 2 +FLAGS.SILENT (\\Flagged $Tag)").ok()
    r = three.cmd(("UID " if uid else "") + f"COPY 2:3 {quote(dest)}").ok()
    validity, src, dst = copyuid(r.code)
    assert (src, dst) == ("2:3", "1:2")
    assert r.lines("EXPUNGE") == []
    assert uid_flags(three) == {1: set(), 2: {"\\Flagged", "$Tag"}, 3: set()}
    with connect(three.server) as o:
        sel = o.select(dest)
        assert f"OK [UIDVALIDITY {validity}]".encode() in b"\n".join(sel.untagged)
        assert uid_flags(o) == {1: {"\\Flagged", "$Tag"}, 2: set()}
        body = o.cmd("FETCH 1 BODY.PEEK[TEXT]").ok().fetches()[1]["BODY[TEXT]"]
        assert body == b"Hi there\r\n"


@pytest.mark.parametrize("command", ["COPY", "MOVE", "UID COPY", "UID MOVE"])
def test_copy_move_to_missing_mailbox_is_no_trycreate_rfc9051_6_4_7(three, command):
    """COPY/MOVE to a mailbox that does not exist is NO [TRYCREATE]; nothing moves
    (RFC 9051 §6.4.7)."""
    r = three.cmd(f"{command} 1 {quote(unique('missing'))}")
    assert r.status == "NO" and r.code == "TRYCREATE", r
    assert sorted(uid_flags(three)) == [1, 2, 3]


@pytest.mark.parametrize("uid", [False, True])
def test_move_sends_copyuid_and_expunge_rfc6851_3_3(three, uid):
    """MOVE answers an untagged OK [COPYUID ...] and an EXPUNGE per moved message before the
    tagged OK; the messages leave the source (RFC 6851 §3.3, §4.3)."""
    dest = unique("movedst")
    three.create(dest)
    r = three.cmd(("UID " if uid else "") + f"MOVE 1,3 {quote(dest)}").ok()
    oks = [u.decode() for u in r.untagged if u.startswith(b"OK [COPYUID")]
    assert len(oks) == 1, r
    _, src, dst = copyuid(oks[0][4:oks[0].index("]")])
    assert (src, dst) == ("1,3", "1:2")
    view = [1, 2, 3]
    for line in r.lines("EXPUNGE"):
        del view[int(line.split()[0]) - 1]
    assert view == [2], r
    assert r.order()[0] == "OK", "COPYUID comes before the EXPUNGEs"
    assert sorted(uid_flags(three)) == [2]
    with connect(three.server) as o:
        o.select(dest)
        assert sorted(uid_flags(o)) == [1, 2]


def test_move_in_read_only_mailbox_is_refused_rfc6851(shared_mcp):
    """MOVE from a mailbox opened with EXAMINE is refused (RFC 6851 §3.3)."""
    box = mailbox_with(shared_mcp, [simple_message()])
    dest = unique("ro-dst")
    with connect(shared_mcp) as c:
        c.create(dest)
        c.select(box, examine=True)
        assert c.cmd(f"MOVE 1 {quote(dest)}").status == "NO"
        assert c.cmd(f"COPY 1 {quote(dest)}").status == "OK"


# -- message sequence numbers with two connections ---------------------------------------


def test_expunge_by_other_session_is_deferred_during_fetch_store_search_rfc9051_7_5_1(
        three, shared_mcp):
    """While B expunges message 2, A's FETCH, STORE and SEARCH must not announce it (numbers
    would shift under the client's feet); A's NOOP then sends `* 2 EXPUNGE` and numbers
    shift (RFC 9051 §7.5.1)."""
    a = three
    with connect(shared_mcp) as b:
        b.select(a.box)
        b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").ok()
        assert b.cmd("EXPUNGE").ok().lines("EXPUNGE") == [b"2 EXPUNGE"]
    for cmd in ["FETCH 1:* (UID)", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "FETCH 3 (UID)"]:
        r = a.cmd(cmd)
        assert r.status == "OK", r
        assert r.lines("EXPUNGE") == [], (cmd, r)
    r = a.cmd("FETCH 3 (UID)").ok()
    assert r.fetches()[3]["UID"] == b"3", "sequence numbers did not shift before NOOP"
    r = a.cmd("NOOP").ok()
    assert r.lines("EXPUNGE") == [b"2 EXPUNGE"], r
    r = a.cmd("FETCH 1:* (UID)").ok()
    assert {s: v["UID"] for s, v in r.fetches().items()} == {1: b"1", 2: b"3"}
    assert a.cmd("FETCH 3 (UID)").status == "BAD"


def test_appends_by_other_session_announced_on_noop_rfc9051_7_4_1(three, shared_mcp):
    """Messages appended by another session are announced with EXISTS on NOOP (RFC 9051
    §7.4.1) and are then addressable."""
    with connect(shared_mcp) as b:
        b.append(three.box, simple_message("late")).ok()
        b.append(three.box, simple_message("later")).ok()
    r = three.cmd("NOOP").ok()
    assert r.lines("EXISTS") == [b"5 EXISTS"], r
    assert three.cmd("FETCH 5 (UID)").ok().fetches()[5]["UID"] == b"5"


@pytest.mark.parametrize(
    "command",
    ["UID FETCH 100:* (UID)", "UID FETCH *:100 (UID)", "UID SEARCH UID 100:*",
     "UID STORE 100:* +FLAGS (\\Seen)", "UID FETCH * (UID)"],
)
def test_range_beyond_highest_uid_includes_highest_message_rfc9051_6_4_9(three, command):
    """`n:*` with n greater than the highest UID still means the message with the highest UID
    (RFC 9051 §6.4.9, "the range 559:* always includes the UID of the last message")."""
    r = three.cmd(command).ok()
    if "SEARCH" in command:
        assert r.lines("SEARCH") == [b"SEARCH 3"], r
    else:
        assert {s: v["UID"] for s, v in r.fetches().items()} == {3: b"3"}, r


def test_sequence_star_in_empty_mailbox_rfc9051_6_4_5(shared_mcp):
    """In an empty mailbox `FETCH 1:*` is BAD (no message 1; as Dovecot), `UID FETCH 1:*` is
    OK and empty, and SEARCH ALL finds nothing (RFC 9051 §6.4.5, §6.4.9)."""
    box = unique("empty")
    with connect(shared_mcp) as c:
        c.create(box)
        c.select(box)
        assert c.cmd("FETCH 1:* (UID)").status == "BAD"
        assert c.cmd("UID FETCH 1:* (UID)").ok().untagged == []
        assert c.cmd("SEARCH ALL").ok().lines("SEARCH") == [b"SEARCH"]
