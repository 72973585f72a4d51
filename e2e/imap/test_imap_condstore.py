"""CONDSTORE and QRESYNC (RFC 7162) on every storage backend: HIGHESTMODSEQ, the MODSEQ
FETCH item, CHANGEDSINCE, UNCHANGEDSINCE with [MODIFIED], SEARCH MODSEQ, ENABLE, SELECT
with QRESYNC (VANISHED (EARLIER) and changed FETCHes), VANISHED instead of EXPUNGE, and a
reason for every malformed RFC 7162 argument."""

from __future__ import annotations

import re

import pytest

from imaputil import connect, mailbox_with, quote, simple_message


def modseq_of(resp) -> int:
    """The HIGHESTMODSEQ a SELECT/EXAMINE announced."""
    for u in resp.untagged:
        m = re.match(rb"OK \[HIGHESTMODSEQ (\d+)\]", u)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {resp}")


def uidvalidity_of(resp) -> int:
    for u in resp.untagged:
        m = re.match(rb"OK \[UIDVALIDITY (\d+)\]", u)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no UIDVALIDITY in {resp}")


def modseqs(resp) -> dict[int, int]:
    """{seq: MODSEQ} of the FETCH responses."""
    return {seq: int(v["MODSEQ"][0]) for seq, v in resp.fetches().items() if "MODSEQ" in v}


def box_of(server, n: int = 5) -> str:
    return mailbox_with(server, [simple_message(f"m{i}") for i in range(n)], prefix="cs")


def test_capabilities_announce_condstore_and_qresync_rfc7162_3_1_1_3_2_2(shared_mcp):
    """CONDSTORE and QRESYNC are advertised once authenticated (RFC 7162 §3.1.1, §3.2.2)."""
    with connect(shared_mcp) as c:
        (line,) = c.cmd("CAPABILITY").ok().lines("CAPABILITY")
        caps = line.split()[1:]
        assert b"CONDSTORE" in caps and b"QRESYNC" in caps, line


def test_highestmodseq_in_select_and_status_grows_with_changes_rfc7162_3_1_2_1_3_1_7(shared_mcp):
    """SELECT answers OK [HIGHESTMODSEQ n], STATUS (HIGHESTMODSEQ) gives the same value, and
    a flag change raises it (RFC 7162 §3.1.2.1, §3.1.7)."""
    box = box_of(shared_mcp, 2)
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        hms = modseq_of(a.select(box))
        (line,) = b.cmd(f"STATUS {quote(box)} (HIGHESTMODSEQ MESSAGES)").ok().lines("STATUS")
        assert f"HIGHESTMODSEQ {hms}".encode() in line, line
        a.cmd("STORE 1 +FLAGS (\\Flagged)").ok()
        (line,) = b.cmd(f"STATUS {quote(box)} (HIGHESTMODSEQ)").ok().lines("STATUS")
        assert int(line.rsplit(b" ", 1)[1].rstrip(b")")) > hms, line


def test_fetch_modseq_enables_condstore_and_unsolicited_fetches_carry_modseq_rfc7162_3_1(shared_mcp):
    """Before any CONDSTORE enabling command, flag updates carry no MODSEQ; FETCH MODSEQ
    enables it (announcing HIGHESTMODSEQ), and from then on STORE responses and unsolicited
    FETCHes carry MODSEQ (RFC 7162 §3.1, §3.1.4.2)."""
    box = box_of(shared_mcp, 3)
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        a.select(box)
        b.select(box)
        r = a.cmd("STORE 1 +FLAGS (\\Seen)").ok()
        assert r.untagged == [b"1 FETCH (FLAGS (\\Seen))"], r
        r = a.cmd("FETCH 1 (MODSEQ)").ok()
        assert r.untagged[0].startswith(b"OK [HIGHESTMODSEQ "), r
        first = modseqs(r)[1]
        r = a.cmd("STORE 2 +FLAGS (\\Seen)").ok()
        assert re.fullmatch(rb"2 FETCH \(FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)", r.untagged[0]), r
        assert modseqs(r)[2] > first
        b.cmd("STORE 3 +FLAGS (\\Answered)").ok()
        r = a.cmd("NOOP").ok()
        (line,) = r.lines("FETCH")
        assert re.fullmatch(rb"3 FETCH \(FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", line), r
        # .SILENT still reports the new MODSEQ once CONDSTORE is on (§3.1.3).
        r = a.cmd("STORE 1 +FLAGS.SILENT (\\Draft)").ok()
        assert re.fullmatch(rb"1 FETCH \(MODSEQ \(\d+\)\)", r.untagged[0]), r


def test_changedsince_returns_only_changed_messages_and_zero_means_all_rfc7162_3_1_4_1(shared_mcp):
    """FETCH ... (CHANGEDSINCE m) returns the messages whose MODSEQ is greater than m, with
    MODSEQ added; (CHANGEDSINCE 0) returns every message (RFC 7162 §3.1.4.1)."""
    box = box_of(shared_mcp, 4)
    with connect(shared_mcp) as c:
        m = modseq_of(c.select(box))
        c.cmd("STORE 2,4 +FLAGS (\\Flagged)").ok()
        r = c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {m})").ok()
        assert sorted(r.fetches()) == [2, 4], r
        assert all(v > m for v in modseqs(r).values()), r
        r = c.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m})").ok()
        assert sorted(int(v["UID"]) for v in r.fetches().values()) == [2, 4], r
        r = c.cmd("FETCH 1:* (UID) (CHANGEDSINCE 0)").ok()
        assert sorted(modseqs(r)) == [1, 2, 3, 4], r
        assert c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 9223372036854775807)").ok().untagged == []


def test_unchangedsince_reports_modified_messages_and_leaves_them_alone_rfc7162_3_1_3(shared_mcp):
    """STORE (UNCHANGEDSINCE m): messages changed after m by another client are not
    touched and are listed in OK [MODIFIED set] (sequence numbers for STORE, UIDs for UID
    STORE); the others are changed and reported with MODSEQ (RFC 7162 §3.1.3)."""
    box = box_of(shared_mcp, 5)
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        m = modseq_of(a.select(box))
        b.select(box)
        b.cmd("STORE 2 +FLAGS (\\Flagged)").ok()
        b.cmd("STORE 4 +FLAGS ($Label)").ok()
        a.cmd("NOOP").ok()  # a sees b's changes first, so the STORE below answers alone
        r = a.cmd(f"STORE 1:3 (UNCHANGEDSINCE {m}) +FLAGS (\\Seen)")
        assert r.status == "OK" and r.code == "MODIFIED 2", r
        stored = r.fetches()
        assert 2 not in stored and stored[1]["FLAGS"] == [b"\\Seen"], r
        assert "MODSEQ" in stored[1]
        r = a.cmd(f"UID STORE 3:5 (UNCHANGEDSINCE {m}) +FLAGS.SILENT (\\Answered)")
        assert r.code == "MODIFIED 3:4", r  # 3 was just changed by us, 4 by b
        assert list(r.fetches()) == [5] and set(r.fetches()[5]) == {"UID", "MODSEQ"}, r
        flags = {k: v["FLAGS"] for k, v in b.cmd("FETCH 1:5 (FLAGS)").ok().fetches().items()}
        assert b"\\Seen" not in flags[2] and b"\\Answered" not in flags[4], flags


def test_unchangedsince_zero_always_fails_rfc7162_3_1_3(shared_mcp):
    """UNCHANGEDSINCE 0 fails for every message: nothing changes and MODIFIED lists the
    whole set (RFC 7162 §3.1.3: a system flag always exists)."""
    box = box_of(shared_mcp, 3)
    with connect(shared_mcp) as c:
        m = modseq_of(c.select(box))
        r = c.cmd("STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Deleted)")
        assert r.status == "OK" and r.code == "MODIFIED 1:3" and r.fetches() == {}, r
        r = c.cmd("UID STORE 2 (UNCHANGEDSINCE 0) FLAGS ()")
        assert r.code == "MODIFIED 2", r
        assert c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {m})").ok().fetches() == {}


def test_search_modseq_and_its_result_modseq_rfc7162_3_1_5_3_1_6(shared_mcp):
    """SEARCH MODSEQ m matches messages with MODSEQ >= m and the result ends with
    (MODSEQ highest-of-the-matches); ESEARCH carries MODSEQ as a result item; no match, no
    MODSEQ (RFC 7162 §3.1.5, §3.1.6; RFC 4731 §3.2)."""
    box = box_of(shared_mcp, 4)
    with connect(shared_mcp) as c:
        m = modseq_of(c.select(box))
        c.cmd("STORE 3 +FLAGS (\\Seen)").ok()
        newest = modseqs(c.cmd("FETCH 3 (MODSEQ)").ok())[3]
        (line,) = c.cmd(f"SEARCH MODSEQ {m + 1}").ok().lines("SEARCH")
        assert line == f"SEARCH 3 (MODSEQ {newest})".encode(), line
        (line,) = c.cmd(f'UID SEARCH MODSEQ "/flags/\\\\seen" all {m + 1}').ok().lines("SEARCH")
        assert line == f"SEARCH 3 (MODSEQ {newest})".encode(), line
        (line,) = c.cmd(f"SEARCH RETURN (ALL COUNT) MODSEQ {m + 1}").ok().lines("ESEARCH")
        assert line.endswith(f"COUNT 1 ALL 3 MODSEQ {newest}".encode()), line
        (line,) = c.cmd(f"SEARCH MODSEQ {newest + 1}").ok().lines("SEARCH")
        assert line == b"SEARCH", line
        (line,) = c.cmd("SEARCH MODSEQ 0 NOT SEEN").ok().lines("SEARCH")
        assert line.startswith(b"SEARCH 1 2 4 (MODSEQ "), line


def test_enable_qresync_implies_condstore_rfc7162_3_2_3(shared_mcp):
    """ENABLE QRESYNC answers ENABLED QRESYNC and turns on CONDSTORE too; asking again
    enables nothing new (RFC 7162 §3.2.3, RFC 5161)."""
    with connect(shared_mcp) as c:
        assert c.cmd("ENABLE QRESYNC").ok().untagged == [b"ENABLED QRESYNC"]
        assert c.cmd("ENABLE CONDSTORE QRESYNC").ok().untagged == [b"ENABLED"]
    with connect(shared_mcp) as c:
        assert c.cmd("ENABLE CONDSTORE").ok().untagged == [b"ENABLED CONDSTORE"]


def test_select_qresync_without_enable_is_bad_rfc7162_3_2_5(shared_mcp):
    """The QRESYNC SELECT parameter before ENABLE QRESYNC is answered with BAD, and the
    current selection stays (RFC 7162 §3.2.5)."""
    box = box_of(shared_mcp, 1)
    with connect(shared_mcp) as c:
        c.select(box)
        r = c.cmd(f"SELECT {quote(box)} (QRESYNC (1 1))")
        assert r.status == "BAD" and "ENABLE QRESYNC" in r.text, r
        assert c.cmd("FETCH 1 (UID)").status == "OK"


def test_select_qresync_reports_vanished_earlier_and_changes_rfc7162_3_2_5(shared_mcp):
    """SELECT (QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])) sends VANISHED
    (EARLIER) for UIDs expunged since modseq and FETCH (UID FLAGS MODSEQ) for messages
    changed since, both limited to the known UIDs; a stale UIDVALIDITY gets a plain SELECT
    (RFC 7162 §3.2.5, §3.2.5.1)."""
    box = box_of(shared_mcp, 6)
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        a.cmd("ENABLE QRESYNC").ok()
        sel = a.select(box)
        uv, m = uidvalidity_of(sel), modseq_of(sel)
        a.cmd("UNSELECT").ok()
        b.select(box)
        b.cmd("STORE 2 +FLAGS (\\Flagged)").ok()
        b.cmd("STORE 4,5 +FLAGS (\\Deleted)").ok()
        b.cmd("EXPUNGE").ok()
        b.cmd("UID STORE 6 +FLAGS (\\Seen)").ok()

        r = a.cmd(f"SELECT {quote(box)} (QRESYNC ({uv} {m}))").ok()
        assert r.lines("VANISHED") == [b"VANISHED (EARLIER) 4:5"], r
        f = r.fetches()
        assert {int(v["UID"]) for v in f.values()} == {2, 6}, r
        assert f[2]["FLAGS"] == [b"\\Flagged"] and "MODSEQ" in f[2], r
        assert r.order().index("VANISHED") < r.order().index("FETCH"), r.order()

        r = a.cmd(f"EXAMINE {quote(box)} (QRESYNC ({uv} {m} 1:4 (1:4 1:4)))").ok()
        assert r.lines("OK")[0].startswith(b"OK [CLOSED]"), r
        assert r.lines("VANISHED") == [b"VANISHED (EARLIER) 4"], r
        assert {int(v["UID"]) for v in r.fetches().values()} == {2}, r

        r = a.cmd(f"SELECT {quote(box)} (QRESYNC ({uv + 1 if uv < 2**32 - 1 else 1} {m}))").ok()
        assert r.lines("VANISHED") == [] and r.fetches() == {}, r


def test_qresync_expunges_are_vanished_for_expunge_uid_expunge_noop_and_idle_rfc7162_3_2_10(shared_mcp):
    """Once QRESYNC is enabled, expunges are announced as VANISHED uid-set, never as
    n EXPUNGE: for EXPUNGE, UID EXPUNGE, MOVE, and expunges by another session seen at NOOP
    or pushed during IDLE (RFC 7162 §3.2.7, §3.2.9, §3.2.10)."""
    box = box_of(shared_mcp, 8)
    dest = box_of(shared_mcp, 0)
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        a.cmd("ENABLE QRESYNC").ok()
        a.select(box)
        b.select(box)
        a.cmd("STORE 1,2 +FLAGS.SILENT (\\Deleted)").ok()
        r = a.cmd("EXPUNGE").ok()
        assert r.lines("VANISHED") == [b"VANISHED 1:2"] and r.lines("EXPUNGE") == [], r
        assert r.code is not None and r.code.startswith("HIGHESTMODSEQ "), r
        a.cmd("UID STORE 3 +FLAGS.SILENT (\\Deleted)").ok()
        assert a.cmd("UID EXPUNGE 3:4").ok().lines("VANISHED") == [b"VANISHED 3"]
        assert a.cmd(f"UID MOVE 8 {quote(dest)}").ok().lines("VANISHED") == [b"VANISHED 8"]

        b.cmd("NOOP").ok()
        (seq,) = [k for k, v in b.cmd("FETCH 1:* (UID)").ok().fetches().items() if v["UID"] == b"4"]
        b.cmd(f"STORE {seq} +FLAGS.SILENT (\\Deleted)").ok()
        b.cmd("EXPUNGE").ok()
        r = a.cmd("NOOP").ok()
        assert r.lines("VANISHED") == [b"VANISHED 4"] and r.lines("EXPUNGE") == [], r

        tag = a.send_cmd("IDLE")
        assert a.readline().startswith(b"+ ")
        b.cmd("UID STORE 5:6 +FLAGS.SILENT (\\Deleted)").ok()
        b.cmd("UID EXPUNGE 5:6").ok()
        seen = []
        while b"VANISHED" not in b"".join(seen):
            seen.append(a.readline())
        assert seen[-1] == b"* VANISHED 5:6", seen
        assert all(b"EXPUNGE" not in line for line in seen), seen
        a.send(b"DONE\r\n")
        assert a.collect(tag).status == "OK"
        r = a.cmd("FETCH 1:* (UID)").ok()
        assert sorted(int(v["UID"]) for v in r.fetches().values()) == [7], r


def test_uid_fetch_vanished_modifier_rfc7162_3_2_6(shared_mcp):
    """UID FETCH set (items) (CHANGEDSINCE m VANISHED) reports the UIDs of the set expunged
    since m as VANISHED (EARLIER), before the FETCHes of the changed messages; without
    ENABLE QRESYNC or without CHANGEDSINCE it is BAD (RFC 7162 §3.2.6)."""
    box = box_of(shared_mcp, 6)
    with connect(shared_mcp) as a, connect(shared_mcp) as plain:
        a.cmd("ENABLE QRESYNC").ok()
        m = modseq_of(a.select(box))
        a.cmd("STORE 1,3,5 +FLAGS.SILENT (\\Deleted)").ok()
        a.cmd("EXPUNGE").ok()
        a.cmd("UID STORE 4 +FLAGS (\\Seen)").ok()
        r = a.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m} VANISHED)").ok()
        assert r.lines("VANISHED") == [b"VANISHED (EARLIER) 1,3,5"], r
        assert r.order()[0] == "VANISHED", r.order()
        assert [int(v["UID"]) for v in r.fetches().values()] == [4], r
        r = a.cmd(f"UID FETCH 2:3 (FLAGS) (CHANGEDSINCE {m} VANISHED)").ok()
        assert r.lines("VANISHED") == [b"VANISHED (EARLIER) 3"] and r.fetches() == {}, r
        r = a.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m})").ok()
        assert r.lines("VANISHED") == [], r

        plain.select(box)
        r = plain.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m} VANISHED)")
        assert r.status == "BAD" and "ENABLE QRESYNC" in r.text, r


def test_closed_when_select_replaces_a_mailbox_with_qresync_rfc7162_3_2_11(shared_mcp):
    """With QRESYNC enabled, selecting while a mailbox is selected first answers
    OK [CLOSED] (RFC 7162 §3.2.11)."""
    box = box_of(shared_mcp, 1)
    with connect(shared_mcp) as c:
        c.select(box)
        assert not any(u.startswith(b"OK [CLOSED]") for u in c.select(box).untagged)
        c.cmd("ENABLE QRESYNC").ok()
        r = c.select(box, examine=True)
        assert r.untagged[0].startswith(b"OK [CLOSED]"), r


# Malformed and hostile RFC 7162 arguments: (command, reason fragment). All are tagged BAD
# with a reason, and leave the session (and its selected mailbox) working.
HOSTILE = [
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)", "out of range"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 18446744073709551616)", "out of range"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999999999999999999999)", "out of range"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE -1)", "needs a mod-sequence"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 1e5)", "needs a mod-sequence"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE)", "needs a mod-sequence"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 1)", "twice"),
    ("FETCH 1 (FLAGS) (BOGUS 1)", "unknown FETCH modifier"),
    ("FETCH 1 (FLAGS) ()", "empty"),
    ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "only allowed in UID FETCH"),
    ("UID FETCH 1 (FLAGS) (VANISHED)", "needs CHANGEDSINCE"),
    ("STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\\Seen)", "out of range"),
    ("STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)", "needs a mod-sequence"),
    ("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)", "needs a mod-sequence"),
    ("STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)", "twice"),
    ("STORE 1 (FOO) +FLAGS (\\Seen)", "unknown STORE modifier"),
    ("SEARCH MODSEQ 9223372036854775808", "out of range"),
    ("SEARCH MODSEQ 18446744073709551616", "out of range"),
    ("SEARCH MODSEQ -5", "needs a mod-sequence"),
    ("SEARCH MODSEQ", "needs a mod-sequence"),
    ('SEARCH MODSEQ "/flags/\\\\Recent" all 1', "unknown system flag"),
    ('SEARCH MODSEQ "/bogus" all 1', "not /flags/"),
    ('SEARCH MODSEQ "/flags/\\\\Seen" everyone 1', "entry type"),
    ("SELECT INBOX (QRESYNC (1 0))", "must not be 0"),
    ("SELECT INBOX (QRESYNC (0 1))", "UIDVALIDITY must be"),
    ("SELECT INBOX (QRESYNC (4294967296 1))", "UIDVALIDITY must be"),
    ("SELECT INBOX (QRESYNC (1 9223372036854775808))", "out of range"),
    ("SELECT INBOX (QRESYNC (1 -3))", "needs a mod-sequence"),
    ("SELECT INBOX (QRESYNC (1 1 1:*))", "must not contain *"),
    ("SELECT INBOX (QRESYNC (1 1 garbage))", "invalid QRESYNC known-uids"),
    ("SELECT INBOX (QRESYNC (1 1 1:9 (1:3 1:2)))", "differ in length"),
    ("SELECT INBOX (QRESYNC (1 1 1:9 (1:3)))", "seq-match-data"),
    ("SELECT INBOX (QRESYNC 1 1)", "parenthesised"),
    ("SELECT INBOX (QRESYNC (1 1)", "unbalanced"),
    ("EXAMINE INBOX (NOSUCHPARAM)", "unknown SELECT parameter"),
    ("SELECT INBOX ()", "empty"),
]


@pytest.mark.parametrize("command,reason", HOSTILE, ids=[h[0][:60] for h in HOSTILE])
def test_malformed_rfc7162_arguments_are_bad_with_a_reason(shared_mcp, command, reason):
    """Every malformed RFC 7162 argument (mod-sequences above 2^63-1, zero where the grammar
    wants a positive number, negative, garbage) gets a tagged BAD naming the problem, and
    the session goes on with its mailbox still selected (RFC 7162 §7, RFC 9051 §7.1.5)."""
    box = box_of(shared_mcp, 1)
    with connect(shared_mcp) as c:
        c.cmd("ENABLE QRESYNC").ok()
        c.select(box)
        r = c.cmd(command)
        assert r.status == "BAD" and reason in r.text, r
        assert c.cmd("FETCH 1 (UID)").ok().fetches() == {1: {"UID": b"1"}}
