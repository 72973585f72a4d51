"""APPEND (RFC 9051 §6.3.12, UIDPLUS RFC 4315, LITERAL+ RFC 7888), IDLE (RFC 2177, RFC 9051
§6.3.13), CLOSE (§6.4.1), UNSELECT (§6.4.2), EXPUNGE (§6.4.3) and UID EXPUNGE (RFC 4315
§2.1), on every storage backend."""

from __future__ import annotations

import time

import pytest

from imaputil import connect, mailbox_with, quote, simple_message, unique


def uids(c) -> list[int]:
    return sorted(int(v["UID"]) for v in c.cmd("FETCH 1:* (UID)").ok().fetches().values())


def status(c, box: str, items: str = "MESSAGES") -> dict[str, int]:
    (line,) = c.cmd(f"STATUS {quote(box)} ({items})").ok().lines("STATUS")
    vals = line.rsplit(b"(", 1)[1].rstrip(b")").split()
    return {k.decode(): int(v) for k, v in zip(vals[::2], vals[1::2])}


def test_append_with_flags_and_internaldate_and_appenduid_rfc9051_6_3_12_rfc4315(shared_mcp):
    """APPEND stores the given flags and INTERNALDATE and answers OK [APPENDUID uidvalidity
    uid] with the UID the message got (RFC 9051 §6.3.12, RFC 4315 §3)."""
    box = unique("append")
    msg = simple_message("dated")
    with connect(shared_mcp) as c:
        c.create(box)
        st = status(c, box, "UIDNEXT UIDVALIDITY")
        r = c.append(box, msg, flags="\\Seen \\Flagged $Custom",
                     date="01-Feb-2020 12:34:56 +0100").ok()
        assert r.code == f"APPENDUID {st['UIDVALIDITY']} {st['UIDNEXT']}", r
        r2 = c.append(box, msg).ok()
        assert r2.code == f"APPENDUID {st['UIDVALIDITY']} {st['UIDNEXT'] + 1}", r2
        c.select(box)
        f = c.cmd("UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)").ok().fetches()
        assert {x.decode() for x in f[1]["FLAGS"]} == {"\\Seen", "\\Flagged", "$Custom"}
        assert f[1]["INTERNALDATE"] == b"01-Feb-2020 12:34:56 +0100"
        assert int(f[1]["RFC822.SIZE"]) == len(msg)
        assert f[2]["FLAGS"] == []
        # Without a date, INTERNALDATE is "now" (within a day, to be timezone-proof).
        got = time.strptime(f[2]["INTERNALDATE"].decode()[:11], "%d-%b-%Y")
        assert abs(time.mktime(got) - time.time()) < 2 * 86400


def test_append_synchronising_literal_gets_continuation_rfc9051_4_3(shared_mcp):
    """A synchronising literal `{n}` is preceded by a `+` continuation request
    (RFC 9051 §4.3, §7.5)."""
    box = unique("sync")
    with connect(shared_mcp) as c:
        c.create(box)
        r = c.append(box, simple_message("sync"), sync=True).ok()
        assert len(r.continuations) == 1
        assert r.code.startswith("APPENDUID ")


def test_append_literal_plus_needs_no_continuation_rfc7888(shared_mcp):
    """LITERAL+ `{n+}`: the client sends the data at once and gets no `+` (RFC 7888 §3);
    several pipelined APPENDs all complete in order."""
    box = unique("litplus")
    with connect(shared_mcp) as c:
        c.create(box)
        data = b""
        for i in range(3):
            m = simple_message(f"m{i}")
            data += f"p{i} APPEND {quote(box)} {{{len(m)}+}}\r\n".encode() + m + b"\r\n"
        c.send(data)
        for i in range(3):
            r = c.collect(f"p{i}")
            assert r.status == "OK" and not r.continuations, r
        assert status(c, box)["MESSAGES"] == 3


def test_append_to_missing_mailbox_is_no_trycreate_rfc9051_6_3_12(shared_mcp):
    """APPEND to a mailbox that does not exist is NO [TRYCREATE] (RFC 9051 §6.3.12)."""
    with connect(shared_mcp) as c:
        r = c.append(unique("missing"), simple_message())
        assert r.status == "NO" and r.code == "TRYCREATE", r


def test_append_over_the_literal_limit_is_no_toobig_and_session_continues_rfc7889(shared_mcp):
    """A synchronising literal over the server's limit is refused with NO [TOOBIG] without a
    continuation request; the session continues (RFC 9051 §7.1, RFC 7889 §4)."""
    box = unique("toobig")
    with connect(shared_mcp) as c:
        c.create(box)
        tag = c.send_cmd(f"APPEND {quote(box)} {{{2 ** 31}}}")
        line = c.readline()
        assert line.startswith(f"{tag} NO [TOOBIG]".encode()), line
        assert c.cmd("NOOP").status == "OK"
        assert c.append(box, simple_message()).status == "OK"
        assert status(c, box)["MESSAGES"] == 1


def test_append_empty_message_is_refused_rfc9051_6_3_12(shared_mcp):
    """A zero-octet message is refused with NO, as Dovecot does."""
    box = unique("empty")
    with connect(shared_mcp) as c:
        c.create(box)
        r = c.append(box, b"")
        assert r.status == "NO", r


def test_append_to_selected_mailbox_reports_exists_rfc9051_6_3_12(shared_mcp):
    """Appending to the selected mailbox announces the new message with EXISTS, at the latest
    by the next command (RFC 9051 §6.3.12)."""
    box = mailbox_with(shared_mcp, [simple_message()])
    with connect(shared_mcp) as c:
        c.select(box)
        r = c.append(box, simple_message()).ok()
        assert b"2 EXISTS" in r.untagged + c.cmd("NOOP").ok().untagged


# -- IDLE -----------------------------------------------------------------------------


def idle(c):
    tag = c.send_cmd("IDLE")
    assert c.readline().startswith(b"+ "), "IDLE continuation"
    return tag


def test_idle_pushes_exists_flags_and_expunge_from_other_connections_rfc2177(shared_mcp):
    """While IDLE, another connection's APPEND is pushed as EXISTS, its STORE as FETCH and its
    EXPUNGE as EXPUNGE, without any client command (RFC 2177 §3, RFC 9051 §6.3.13)."""
    box = mailbox_with(shared_mcp, [simple_message("one")])
    with connect(shared_mcp) as a, connect(shared_mcp) as b:
        a.select(box)
        tag = idle(a)
        b.append(box, simple_message("two")).ok()
        assert a.readline() == b"* 2 EXISTS"
        b.select(box)
        b.cmd("STORE 1 +FLAGS (\\Flagged)").ok()
        assert a.readline() == b"* 1 FETCH (FLAGS (\\Flagged))"
        b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").ok()
        b.cmd("EXPUNGE").ok()
        lines = [a.readline(), a.readline()]
        assert lines[-1] == b"* 2 EXPUNGE", lines
        a.send(b"DONE\r\n")
        assert a.collect(tag).status == "OK"


def test_idle_done_pipelined_with_next_command_rfc2177_3(shared_mcp):
    """`DONE` and the next command in one packet: IDLE completes and the next command runs
    (RFC 2177 §3)."""
    box = mailbox_with(shared_mcp, [simple_message()])
    with connect(shared_mcp) as c:
        c.select(box)
        tag = idle(c)
        c.send(b"DONE\r\nn1 FETCH 1 (UID)\r\nn2 NOOP\r\n")
        assert c.collect(tag).status == "OK"
        r = c.collect("n1")
        assert r.status == "OK" and r.fetches() == {1: {"UID": b"1"}}, r
        assert c.collect("n2").status == "OK"


def test_idle_in_authenticated_state_and_bad_continuation_rfc2177(shared_mcp):
    """IDLE also works without a selected mailbox; a line other than DONE ends it with BAD
    (RFC 2177 §3, as Dovecot)."""
    with connect(shared_mcp) as c:
        tag = idle(c)
        c.send(b"DONE\r\n")
        assert c.collect(tag).status == "OK"
        tag = idle(c)
        c.send(b"NOT-DONE\r\n")
        assert c.collect(tag).status == "BAD"
        assert c.cmd("NOOP").status == "OK"


def test_idle_keepalive_rfc9051_5_4(mcp_factory):
    """During IDLE the server sends untagged `* OK` keepalives (here every second, set with
    --idle-keepalive-secs) so that the connection is not dropped (RFC 9051 §5.4, RFC 2177)."""
    server = mcp_factory(extra_args=("--idle-keepalive-secs", "1"))
    with connect(server) as c:
        c.select("INBOX")
        tag = idle(c)
        start = time.monotonic()
        line = c.readline()
        assert line.startswith(b"* OK"), line
        assert 0.5 < time.monotonic() - start < 5
        assert c.readline().startswith(b"* OK")
        c.send(b"DONE\r\n")
        assert c.collect(tag).status == "OK"


# -- CLOSE, UNSELECT, EXPUNGE -----------------------------------------------------------


@pytest.mark.parametrize(
    "command, remaining",
    [("CLOSE", 2), ("UNSELECT", 3)],
)
def test_close_expunges_silently_unselect_does_not_rfc9051_6_4_1_6_4_2(shared_mcp, command,
                                                                        remaining):
    """CLOSE removes \\Deleted messages without sending EXPUNGE responses; UNSELECT leaves
    them; both end the selected state (RFC 9051 §6.4.1, §6.4.2)."""
    box = mailbox_with(shared_mcp, [simple_message()] * 3)
    with connect(shared_mcp) as c:
        c.select(box)
        c.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").ok()
        r = c.cmd(command).ok()
        assert r.untagged == [], r
        assert c.cmd("FETCH 1 FLAGS").status == "BAD"
        assert status(c, box)["MESSAGES"] == remaining


def test_close_after_examine_does_not_expunge_rfc9051_6_4_1(shared_mcp):
    """CLOSE of a mailbox selected with EXAMINE expunges nothing (RFC 9051 §6.4.1)."""
    box = mailbox_with(shared_mcp, [simple_message()], ["\\Deleted"])
    with connect(shared_mcp) as c:
        c.select(box, examine=True)
        c.cmd("CLOSE").ok()
        assert status(c, box)["MESSAGES"] == 1


def test_expunge_reports_each_removed_message_rfc9051_6_4_3(shared_mcp):
    """EXPUNGE removes every \\Deleted message and sends one `* n EXPUNGE` per message, each
    number valid at the time it is read (RFC 9051 §6.4.3, §7.5.1)."""
    box = mailbox_with(shared_mcp, [simple_message(str(i)) for i in range(5)])
    with connect(shared_mcp) as c:
        c.select(box)
        c.cmd("STORE 1,3,4 +FLAGS.SILENT (\\Deleted)").ok()
        r = c.cmd("EXPUNGE").ok()
        view = [1, 2, 3, 4, 5]  # UIDs by sequence number
        for line in r.lines("EXPUNGE"):
            del view[int(line.split()[0]) - 1]
        assert view == [2, 5], r
        assert uids(c) == [2, 5]
        assert c.cmd("EXPUNGE").ok().untagged == []


def test_uid_expunge_removes_only_the_given_uids_rfc4315_2_1(shared_mcp):
    """UID EXPUNGE removes only \\Deleted messages whose UID is in the set
    (RFC 4315 §2.1, RFC 9051 §6.4.9)."""
    box = mailbox_with(shared_mcp, [simple_message()] * 4, ["\\Deleted"] * 3 + [None])
    with connect(shared_mcp) as c:
        c.select(box)
        r = c.cmd("UID EXPUNGE 2,4").ok()
        assert r.lines("EXPUNGE") == [b"2 EXPUNGE"], r
        assert uids(c) == [1, 3, 4]
        r = c.cmd("UID EXPUNGE 1:*").ok()
        assert uids(c) == [4]
