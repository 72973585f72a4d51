"""Authenticated-state mailbox commands (RFC 9051 §6.3): SELECT, EXAMINE, CREATE, DELETE,
RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
SPECIAL-USE RFC 6154, CHILDREN RFC 3348), LSUB, NAMESPACE (RFC 2342), STATUS (RFC 8438 SIZE),
and mailbox name encoding (modified UTF-7, RFC 9051 §5.1.3; UTF8=ACCEPT, RFC 6855)."""

from __future__ import annotations

import re

import pytest

from conftest import BOB
from imaputil import connect, mailbox_with, parse, quote, simple_message, unique


def listed(resp, kind: str = "LIST") -> dict[str, set[str]]:
    """{name: attributes} of LIST/LSUB responses (names as sent, decoded as UTF-8)."""
    out = {}
    for line in resp.lines(kind):
        attrs, _delim, name, *_ = parse(line.split(b" ", 1)[1])
        out[name.decode()] = {a.decode() for a in attrs}
    return out


def extended_data(resp) -> dict[str, list]:
    out = {}
    for line in resp.lines("LIST"):
        _attrs, _delim, name, *ext = parse(line.split(b" ", 1)[1])
        out[name.decode()] = ext
    return out


def status_of(resp) -> dict[str, dict[str, int]]:
    out = {}
    for line in resp.lines("STATUS"):
        name, items = parse(line.split(b" ", 1)[1])
        out[name.decode()] = {k.decode(): int(v) for k, v in zip(items[::2], items[1::2])}
    return out


def test_select_responses_rfc9051_6_3_2(shared_mcp):
    """SELECT sends FLAGS, PERMANENTFLAGS (with \\*), EXISTS, UIDVALIDITY, UIDNEXT and ends
    with OK [READ-WRITE] (RFC 9051 §6.3.2, §7.3.1)."""
    box = mailbox_with(shared_mcp, [simple_message("a"), simple_message("b")], ["\\Seen", None])
    with connect(shared_mcp) as c:
        r = c.select(box)
        assert r.code == "READ-WRITE", r
        (flags,) = r.lines("FLAGS")
        assert {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"} <= set(
            f.decode() for f in parse(flags.split(b" ", 1)[1])[0])
        assert b"2 EXISTS" in r.untagged
        codes = [u.decode() for u in r.untagged if u.startswith(b"OK [")]
        assert any(re.match(r"OK \[PERMANENTFLAGS \(.*\\\*\)\]", x) for x in codes), codes
        assert any(re.match(r"OK \[UIDVALIDITY [1-9]\d*\]", x) for x in codes), codes
        assert any(x.startswith("OK [UIDNEXT 3]") for x in codes), codes
        assert any(x.startswith("OK [UNSEEN 2]") for x in codes), codes


def test_examine_is_read_only_rfc9051_6_3_3(shared_mcp):
    """EXAMINE ends with OK [READ-ONLY], and STORE/EXPUNGE are then refused; fetching a body
    does not set \\Seen (RFC 9051 §6.3.3)."""
    box = mailbox_with(shared_mcp, [simple_message()])
    with connect(shared_mcp) as c:
        r = c.select(box, examine=True)
        assert r.code == "READ-ONLY", r
        assert b"1 EXISTS" in r.untagged
        assert c.cmd("STORE 1 +FLAGS (\\Flagged)").status == "NO"
        assert c.cmd("EXPUNGE").status == "NO"
        c.cmd("FETCH 1 BODY[]").ok()
        assert c.cmd("FETCH 1 FLAGS").ok().fetches()[1]["FLAGS"] == []


def test_select_nonexistent_is_no_and_leaves_no_selection_rfc9051_6_3_2(shared_mcp):
    """SELECT of a missing mailbox is NO [NONEXISTENT] and leaves the session unselected
    (RFC 9051 §6.3.2, RFC 5530)."""
    with connect(shared_mcp) as c:
        c.select("INBOX")
        r = c.cmd(f"SELECT {unique('missing')}")
        assert r.status == "NO" and r.code == "NONEXISTENT", r
        assert c.cmd("FETCH 1 FLAGS").status == "BAD"


def test_create_makes_parents_and_ignores_trailing_delimiter_rfc9051_6_3_4(shared_mcp):
    """CREATE a/b/c creates a and a/b; a trailing delimiter means "will have children" and is
    not part of the name (RFC 9051 §6.3.4)."""
    root = unique("create")
    with connect(shared_mcp) as c:
        c.create(f"{root}/b/c")
        c.create(f"{root}/x/")
        names = listed(c.cmd(f'LIST "" {quote(root + "*")}').ok())
        assert set(names) == {root, f"{root}/b", f"{root}/b/c", f"{root}/x"}, names
        r = c.cmd(f"CREATE {quote(root + '/b')}")
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        r = c.cmd("CREATE inbox")
        assert r.status == "NO", r
        c.select(f"{root}/b/c")


def test_delete_rfc9051_6_3_5(shared_mcp):
    """DELETE removes a leaf; INBOX cannot be deleted; a mailbox with children is refused
    (as Dovecot does); a missing one is NO [NONEXISTENT] (RFC 9051 §6.3.5)."""
    root = unique("delete")
    with connect(shared_mcp) as c:
        c.create(f"{root}/child")
        c.append(f"{root}/child", simple_message()).ok()
        assert c.cmd("DELETE INBOX").status == "NO"
        assert c.cmd(f"DELETE {quote(root)}").status == "NO"
        c.cmd(f"DELETE {quote(root + '/child')}").ok()
        c.cmd(f"DELETE {quote(root)}").ok()
        assert listed(c.cmd(f'LIST "" {quote(root + "*")}').ok()) == {}
        r = c.cmd(f"DELETE {quote(root)}")
        assert r.status == "NO" and r.code == "NONEXISTENT", r
        # A recreated mailbox has a new UIDVALIDITY or starts again with fresh UIDs.
        c.create(root)
        r = c.select(root)
        assert b"0 EXISTS" in r.untagged


def test_rename_moves_children_and_messages_rfc9051_6_3_6(shared_mcp):
    """RENAME renames the hierarchy below the mailbox too, keeps its messages, and refuses an
    existing target or a missing source (RFC 9051 §6.3.6)."""
    root = unique("rename")
    with connect(shared_mcp) as c:
        c.create(f"{root}/a/b")
        c.append(f"{root}/a", simple_message("in-a")).ok()
        c.append(f"{root}/a/b", simple_message("in-b")).ok()
        c.create(f"{root}/taken")
        r = c.cmd(f"RENAME {quote(root + '/a')} {quote(root + '/taken')}")
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        r = c.cmd(f"RENAME {quote(root + '/nope')} {quote(root + '/z')}")
        assert r.status == "NO", r
        c.cmd(f"RENAME {quote(root + '/a')} {quote(root + '/n/z')}").ok()
        names = set(listed(c.cmd(f'LIST "" {quote(root + "/*")}').ok()))
        assert names == {f"{root}/taken", f"{root}/n", f"{root}/n/z", f"{root}/n/z/b"}, names
        r = c.select(f"{root}/n/z/b")
        assert b"1 EXISTS" in r.untagged
        assert b"in-b" in c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").ok().untagged[0]
        r = c.select(f"{root}/n/z")
        assert b"1 EXISTS" in r.untagged


def test_rename_inbox_moves_messages_and_inbox_stays_empty_rfc9051_6_3_6(shared_mcp):
    """RENAME INBOX moves all INBOX messages to the new name; INBOX stays, empty
    (RFC 9051 §6.3.6)."""
    target = unique("old-inbox")
    with connect(shared_mcp, user=BOB) as c:
        c.append("INBOX", simple_message("one")).ok()
        c.append("INBOX", simple_message("two")).ok()
        before = status_of(c.cmd("STATUS INBOX (MESSAGES)").ok())["INBOX"]["MESSAGES"]
        assert before >= 2
        c.cmd(f"RENAME INBOX {quote(target)}").ok()
        assert status_of(c.cmd("STATUS INBOX (MESSAGES)").ok())["INBOX"]["MESSAGES"] == 0
        assert status_of(c.cmd(f"STATUS {quote(target)} (MESSAGES)").ok())[target] == {
            "MESSAGES": before}
        r = c.select("INBOX")
        assert b"0 EXISTS" in r.untagged
        r = c.append("INBOX", simple_message("three")).ok()
        assert r.untagged + c.cmd("NOOP").ok().untagged == [b"1 EXISTS"]


def test_subscribe_unsubscribe_and_lsub_rfc9051_6_3_7(shared_mcp):
    """SUBSCRIBE adds to the subscription list shown by LSUB and LIST (SUBSCRIBED);
    UNSUBSCRIBE removes (RFC 9051 §6.3.7-8, RFC 3501 §6.3.9)."""
    root = unique("subs")
    with connect(shared_mcp) as c:
        c.create(f"{root}/a")
        c.create(f"{root}/b")
        c.cmd(f"SUBSCRIBE {quote(root + '/a')}").ok()
        c.cmd(f"SUBSCRIBE {quote(root + '/b')}").ok()
        assert set(listed(c.cmd(f'LSUB "" {quote(root + "/*")}').ok(), "LSUB")) == {
            f"{root}/a", f"{root}/b"}
        c.cmd(f"UNSUBSCRIBE {quote(root + '/b')}").ok()
        assert set(listed(c.cmd(f'LSUB "" {quote(root + "/*")}').ok(), "LSUB")) == {f"{root}/a"}
        subs = listed(c.cmd(f'LIST (SUBSCRIBED) "" {quote(root + "/*")}').ok())
        assert subs == {f"{root}/a": {"\\Subscribed", "\\HasNoChildren"}}, subs
        # `%` stops above the subscribed root/a: its unsubscribed parent is returned with
        # \Noselect (RFC 3501 §6.3.9, as Dovecot).
        assert listed(c.cmd(f'LSUB "" {quote(root + "%")}').ok(), "LSUB") == {
            root: {"\\Noselect"}}
        c.create(f"{root}/a/deep/er")
        c.cmd(f"SUBSCRIBE {quote(root + '/a/deep/er')}").ok()
        assert listed(c.cmd(f'LSUB "" {quote(root + "/%")}').ok(), "LSUB") == {
            f"{root}/a": set()}
        assert listed(c.cmd(f'LSUB "" {quote(root + "/%/%")}').ok(), "LSUB") == {
            f"{root}/a/deep": {"\\Noselect"}}


def test_list_wildcards_and_reference_rfc9051_6_3_9(shared_mcp):
    """`*` matches across levels, `%` within one; the reference is prepended; `LIST "" ""`
    returns the delimiter (RFC 9051 §6.3.9)."""
    root = unique("list")
    with connect(shared_mcp) as c:
        c.create(f"{root}/a/deep")
        c.create(f"{root}/b")
        star = set(listed(c.cmd(f'LIST "" {quote(root + "/*")}').ok()))
        assert star == {f"{root}/a", f"{root}/a/deep", f"{root}/b"}
        pct = set(listed(c.cmd(f'LIST "" {quote(root + "/%")}').ok()))
        assert pct == {f"{root}/a", f"{root}/b"}
        ref = set(listed(c.cmd(f'LIST {quote(root + "/")} %').ok()))
        assert ref == {f"{root}/a", f"{root}/b"}
        r = c.cmd('LIST "" ""').ok()
        assert r.lines("LIST") == [b'LIST (\\Noselect) "/" ""'], r
        top = listed(c.cmd('LIST "" %').ok())
        assert "INBOX" in top and root in top and f"{root}/a" not in top
        inbox = listed(c.cmd('LIST "" inbox').ok())
        assert list(inbox) == ["INBOX"]


def test_list_multiple_patterns_rfc5258_3(shared_mcp):
    """LIST with a parenthesised list of patterns returns the union (RFC 5258 §3)."""
    root = unique("multi")
    with connect(shared_mcp) as c:
        c.create(f"{root}/a/x")
        c.create(f"{root}/b")
        pats = f'({quote(root + "/a/%")} {quote(root + "/b")} INBOX)'
        names = set(listed(c.cmd(f'LIST "" {pats}').ok()))
        assert names == {f"{root}/a/x", f"{root}/b", "INBOX"}, names


def test_list_return_children_and_subscribed_rfc5258_rfc3348(shared_mcp):
    """RETURN (CHILDREN) gives \\HasChildren/\\HasNoChildren; RETURN (SUBSCRIBED) marks
    \\Subscribed without filtering (RFC 5258 §3.2, RFC 3348)."""
    root = unique("ret")
    with connect(shared_mcp) as c:
        c.create(f"{root}/p/kid")
        c.create(f"{root}/leaf")
        c.cmd(f"SUBSCRIBE {quote(root + '/leaf')}").ok()
        r = c.cmd(f'LIST "" {quote(root + "/*")} RETURN (CHILDREN SUBSCRIBED)').ok()
        names = listed(r)
        assert names[f"{root}/p"] == {"\\HasChildren"}
        assert names[f"{root}/p/kid"] == {"\\HasNoChildren"}
        assert names[f"{root}/leaf"] == {"\\HasNoChildren", "\\Subscribed"}


def test_list_selection_subscribed_recursivematch_rfc5258_3_1(shared_mcp):
    """(SUBSCRIBED RECURSIVEMATCH) with `%`: an unsubscribed parent of a subscribed child is
    returned with CHILDINFO ("SUBSCRIBED"); a subscribed but deleted mailbox is
    \\NonExistent (RFC 5258 §3.1, §4 example 5)."""
    root = unique("recur")
    with connect(shared_mcp) as c:
        c.create(f"{root}/parent/kid")
        c.create(f"{root}/gone")
        c.cmd(f"SUBSCRIBE {quote(root + '/parent/kid')}").ok()
        c.cmd(f"SUBSCRIBE {quote(root + '/gone')}").ok()
        c.cmd(f"DELETE {quote(root + '/gone')}").ok()
        r = c.cmd(f'LIST (SUBSCRIBED RECURSIVEMATCH) "" {quote(root + "/%")}').ok()
        names = listed(r)
        assert set(names) == {f"{root}/parent", f"{root}/gone"}, names
        assert "\\Subscribed" not in names[f"{root}/parent"]
        assert extended_data(r)[f"{root}/parent"] == [[b"CHILDINFO", [b"SUBSCRIBED"]]]
        assert {"\\NonExistent", "\\Subscribed"} <= names[f"{root}/gone"]
        r = c.cmd(f'LIST (RECURSIVEMATCH) "" {quote(root + "/%")}')
        assert r.status == "BAD", "RECURSIVEMATCH alone is invalid (RFC 5258 §3.1)"


def test_list_special_use_selection_and_return_rfc6154(shared_mcp):
    """LIST (SPECIAL-USE) returns only mailboxes with a special use and their attribute;
    RETURN (SPECIAL-USE) adds attributes without filtering (RFC 6154 §3, §5.1)."""
    with connect(shared_mcp) as c:
        names = listed(c.cmd('LIST (SPECIAL-USE) "" *').ok())
        want = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Junk": "\\Junk",
                "Archive": "\\Archive"}
        assert set(names) == set(want), names
        for name, attr in want.items():
            assert attr in names[name], (name, names[name])
        all_ = listed(c.cmd('LIST "" % RETURN (SPECIAL-USE)').ok())
        assert "INBOX" in all_ and "\\Sent" in all_["Sent"]


def test_list_return_status_rfc5819(shared_mcp):
    """LIST ... RETURN (STATUS (...)) sends a STATUS response after each selectable LIST
    response (RFC 5819 §2)."""
    root = unique("lstatus")
    with connect(shared_mcp) as c:
        c.create(f"{root}/one")
        c.append(f"{root}/one", simple_message(), flags="\\Seen").ok()
        c.append(f"{root}/one", simple_message()).ok()
        r = c.cmd(f'LIST "" {quote(root + "/*")} RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))').ok()
        assert r.order() == ["LIST", "STATUS"], r
        assert status_of(r)[f"{root}/one"] == {"MESSAGES": 2, "UNSEEN": 1, "UIDNEXT": 3}


def test_namespace_rfc2342(shared_mcp):
    """NAMESPACE: one personal namespace with empty prefix and `/` (RFC 2342, RFC 9051
    §6.3.10)."""
    with connect(shared_mcp) as c:
        r = c.cmd("NAMESPACE").ok()
        assert r.lines("NAMESPACE") == [b'NAMESPACE (("" "/")) NIL NIL']


def test_status_items_rfc9051_6_3_11_rfc8438(shared_mcp):
    """STATUS MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE (RFC 9051 §6.3.11, RFC 8438)."""
    msgs = [simple_message("a"), simple_message("bb"), simple_message("ccc")]
    box = mailbox_with(shared_mcp, msgs, ["\\Seen", "\\Deleted", None])
    with connect(shared_mcp) as c:
        r = c.cmd(f"STATUS {quote(box)} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)").ok()
        st = status_of(r)[box]
        validity = st.pop("UIDVALIDITY")
        assert validity > 0
        assert st == {"MESSAGES": 3, "UIDNEXT": 4, "UNSEEN": 2, "DELETED": 1,
                      "SIZE": sum(map(len, msgs))}
        sel = c.select(box)
        assert f"OK [UIDVALIDITY {validity}]".encode() in b"\n".join(sel.untagged)
        r = c.cmd(f"STATUS {quote(unique('nope'))} (MESSAGES)")
        assert r.status == "NO", r


# -- mailbox names ----------------------------------------------------------------------


def test_modified_utf7_name_round_trips_rfc9051_5_1_3(shared_mcp):
    """A modified UTF-7 name (`&AOk-t&AOk-` = "été") is stored as UTF-8 and listed,
    selected and STATUSed in the same encoding (RFC 9051 §5.1.3)."""
    root = unique("mutf7")
    name = f"{root}/&AOk-t&AOk-"
    with connect(shared_mcp) as c:
        c.create(name)
        c.append(name, simple_message()).ok()
        r = c.cmd(f'LIST "" {quote(root + "/*")}').ok()
        assert r.lines("LIST") == [f'LIST (\\HasNoChildren) "/" "{name}"'.encode()], r
        assert b"1 EXISTS" in c.select(name).untagged
        assert status_of(c.cmd(f'STATUS "{name}" (MESSAGES)').ok()) == {name: {"MESSAGES": 1}}
    with connect(shared_mcp) as c:
        c.cmd("ENABLE UTF8=ACCEPT").ok()
        utf8 = f"{root}/été"
        names = listed(c.cmd(f'LIST "" {quote(root + "/*")}').ok())
        assert list(names) == [utf8], names
        assert b"1 EXISTS" in c.select(utf8).untagged
        c.create(f"{root}/日本")
    with connect(shared_mcp) as c:
        names = listed(c.cmd(f'LIST "" {quote(root + "/*")}').ok())
        assert set(names) == {name, f"{root}/&ZeVnLA-"}, names


@pytest.mark.parametrize(
    "raw",
    ["&Jjo", "&AGE-", "&Jjo!-", "a&", "&AOk"],
    ids=["unterminated", "encoded-ascii", "bad-base64", "lone-ampersand", "unterminated-2"],
)
def test_invalid_modified_utf7_is_refused_with_reason_rfc9051_5_1_3(shared_mcp, raw):
    """A name that is not valid modified UTF-7 is refused (BAD or NO) with a reason, and
    nothing is created (RFC 9051 §5.1.3)."""
    root = unique("bad7")
    with connect(shared_mcp) as c:
        r = c.cmd(f'CREATE "{root}/{raw}"')
        assert r.status in ("BAD", "NO"), r
        assert "UTF-7" in r.text or "utf-7" in r.text.lower(), r
        assert listed(c.cmd(f'LIST "" {quote(root + "*")}').ok()) == {}
        r = c.cmd(f'SELECT "{raw}"')
        assert r.status in ("BAD", "NO"), r
