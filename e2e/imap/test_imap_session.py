"""Any-state and not-authenticated-state commands (RFC 9051 §6.1, §6.2): CAPABILITY, NOOP,
LOGOUT, STARTTLS, AUTHENTICATE PLAIN (RFC 4616, SASL-IR RFC 4959), LOGIN, ENABLE (RFC 5161)
and ID (RFC 2971), on every storage backend."""

from __future__ import annotations

import base64
import imaplib

import pytest

from conftest import ALICE, BOB
from imaputil import Conn, connect


def caps_of(resp) -> set[str]:
    (line,) = resp.lines("CAPABILITY")
    return set(line.decode().split()[1:])


def test_capability_before_and_after_login_rfc9051_6_1_1(shared_mcp):
    """CAPABILITY lists IMAP4rev1 and IMAP4rev2 in both states; STARTTLS and AUTH=PLAIN only
    before login on the plain port; the post-login list has the extensions (RFC 9051 §6.1.1,
    §7.2.2)."""
    with connect(shared_mcp, login=False) as c:
        assert c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting
        pre = caps_of(c.cmd("CAPABILITY").ok())
        assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "LITERAL+"} <= pre
        login = c.login()
        assert login.code and login.code.startswith("CAPABILITY "), login
        post = caps_of(c.cmd("CAPABILITY").ok())
        assert {"IMAP4rev1", "IMAP4rev2", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "ENABLE",
                "LIST-EXTENDED", "ESEARCH", "SEARCHRES", "UTF8=ACCEPT"} <= post
        assert "STARTTLS" not in post and "AUTH=PLAIN" not in post
        assert set(login.code.split()[1:]) == post


def test_imaps_does_not_offer_starttls_rfc9051_6_2_1(shared_mcp):
    """Over implicit TLS, STARTTLS is not advertised (RFC 9051 §6.2.1)."""
    with Conn(shared_mcp.host, shared_mcp.imaps_port, tls=True) as c:
        caps = caps_of(c.cmd("CAPABILITY").ok())
        assert "STARTTLS" not in caps and "IMAP4rev2" in caps


@pytest.mark.parametrize("logged_in", [False, True])
def test_noop_is_ok_in_every_state_rfc9051_6_1_2(shared_mcp, logged_in):
    """NOOP succeeds before and after authentication (RFC 9051 §6.1.2)."""
    with connect(shared_mcp, login=logged_in) as c:
        assert c.cmd("NOOP").status == "OK"
        if logged_in:
            c.select("INBOX")
            assert c.cmd("NOOP").status == "OK"


@pytest.mark.parametrize("logged_in", [False, True])
def test_logout_sends_bye_then_ok_and_closes_rfc9051_6_1_3(shared_mcp, logged_in):
    """LOGOUT: untagged BYE before the tagged OK, then the server closes (RFC 9051 §6.1.3)."""
    with connect(shared_mcp, login=logged_in) as c:
        r = c.cmd("LOGOUT")
        assert r.status == "OK"
        assert r.order() == ["BYE"], r
        assert c.sock.recv(100) == b""


def test_starttls_then_login_over_tls_rfc9051_6_2_1(shared_mcp):
    """STARTTLS answers OK, the TLS handshake follows, and the capability list after TLS no
    longer offers STARTTLS (RFC 9051 §6.2.1)."""
    with connect(shared_mcp, login=False) as c:
        assert c.cmd("STARTTLS").status == "OK"
        c.starttls(shared_mcp.data_dir / "tls" / "cert.pem")
        caps = caps_of(c.cmd("CAPABILITY").ok())
        assert "STARTTLS" not in caps and "AUTH=PLAIN" in caps
        c.login()
        assert c.cmd("STARTTLS").status == "BAD"


def test_bytes_pipelined_after_starttls_are_not_executed_rfc9051_6_2_1(shared_mcp):
    """A command sent in clear text in the same packet as STARTTLS must be discarded, not
    executed after the handshake (STARTTLS command injection, RFC 9051 §6.2.1, CVE-2011-0411
    class)."""
    with connect(shared_mcp, login=False) as c:
        c.send(b"a STARTTLS\r\nb LOGIN alice@example.com alice-demo\r\n")
        assert c.readline().startswith(b"a OK"), "STARTTLS refused"
        c.starttls()
        # Anything the server answers now must not be `b OK`; the next command proves it is
        # still not authenticated.
        r = c.cmd("SELECT INBOX")
        assert r.status == "BAD", r
        caps = caps_of(c.cmd("CAPABILITY").ok())
        assert "AUTH=PLAIN" in caps, "session was authenticated by the injected LOGIN"


def plain(user: str, password: str, authz: str = "") -> str:
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


def test_authenticate_plain_with_sasl_ir_rfc4959(shared_mcp):
    """AUTHENTICATE PLAIN with the initial response on the command line (RFC 4959)."""
    with connect(shared_mcp, login=False) as c:
        r = c.cmd(f"AUTHENTICATE PLAIN {plain(*ALICE)}")
        assert r.status == "OK" and not r.continuations, r
        assert c.cmd("SELECT INBOX").status == "OK"


def test_authenticate_plain_with_continuation_rfc9051_6_2_2(shared_mcp):
    """AUTHENTICATE PLAIN without initial response: the server sends `+ `, the client sends
    the base64 response on its own line (RFC 9051 §6.2.2, RFC 4616)."""
    with connect(shared_mcp, login=False) as c:
        tag = c.send_cmd("AUTHENTICATE PLAIN")
        r = c.collect(tag, [plain(*BOB).encode() + b"\r\n"])
        assert r.status == "OK" and len(r.continuations) == 1, r
        assert c.cmd("SELECT INBOX").status == "OK"


@pytest.mark.parametrize(
    "response, status",
    [
        (plain(ALICE[0], "wrong"), "NO"),
        (plain(ALICE[0], ALICE[1], authz=BOB[0]), "NO"),
        ("*", "BAD"),
        ("not base64!", "BAD"),
    ],
    ids=["wrong-password", "foreign-authzid", "cancel", "bad-base64"],
)
def test_authenticate_plain_failures_rfc9051_6_2_2(shared_mcp, response, status):
    """A wrong password or foreign authorisation identity is NO; `*` cancels and garbage is
    BAD; the session stays usable and unauthenticated (RFC 9051 §6.2.2)."""
    with connect(shared_mcp, login=False) as c:
        tag = c.send_cmd("AUTHENTICATE PLAIN")
        r = c.collect(tag, [response.encode() + b"\r\n"])
        assert r.status == status, r
        assert c.cmd("SELECT INBOX").status == "BAD"
        c.login()


def test_authenticate_unknown_mechanism_is_refused_rfc9051_6_2_2(shared_mcp):
    """An unsupported SASL mechanism is refused with NO or BAD (RFC 9051 §6.2.2)."""
    with connect(shared_mcp, login=False) as c:
        assert c.cmd("AUTHENTICATE CRAM-MD5").status in ("NO", "BAD")
        c.login()


@pytest.mark.parametrize(
    "user, password, ok",
    [(*ALICE, True), (*BOB, True), (ALICE[0], "nope", False), ("nobody@example.com", "x", False),
     (ALICE[0].upper(), ALICE[1], True)],
    ids=["alice", "bob", "wrong-password", "unknown-user", "upper-case-address"],
)
def test_login_rfc9051_6_2_3(shared_mcp, user, password, ok):
    """LOGIN with good credentials is OK (with a CAPABILITY code); bad ones are
    NO [AUTHENTICATIONFAILED] (RFC 9051 §6.2.3, RFC 5530)."""
    imap = imaplib.IMAP4(shared_mcp.host, shared_mcp.imap_port, timeout=10)
    try:
        if ok:
            assert imap.login(user, password)[0] == "OK"
            assert imap.select("INBOX")[0] == "OK"
        else:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.login(user, password)
    finally:
        imap.logout()


def test_authenticated_commands_need_login_rfc9051_3(shared_mcp):
    """Commands of the authenticated state are BAD before login; LOGIN twice is BAD
    (RFC 9051 §3, §6.2.3)."""
    with connect(shared_mcp, login=False) as c:
        for cmd in ["SELECT INBOX", "LIST \"\" *", "CREATE x", "STATUS INBOX (MESSAGES)",
                    "ENABLE IMAP4rev2", "FETCH 1 FLAGS"]:
            assert c.cmd(cmd).status == "BAD", cmd
        c.login()
        assert c.cmd('LOGIN "alice@example.com" "alice-demo"').status == "BAD"
        assert c.cmd("FETCH 1 FLAGS").status == "BAD"


@pytest.mark.parametrize(
    "caps, enabled",
    [
        ("IMAP4rev2", {"IMAP4rev2"}),
        ("UTF8=ACCEPT", {"UTF8=ACCEPT"}),
        ("IMAP4rev2 UTF8=ACCEPT", {"IMAP4rev2", "UTF8=ACCEPT"}),
        ("X-UNKNOWN", set()),
    ],
)
def test_enable_rfc5161(shared_mcp, caps, enabled):
    """ENABLE answers `* ENABLED` with the extensions it turned on and ignores unknown ones
    (RFC 5161 §3.1); enabling twice does not list it again."""
    with connect(shared_mcp) as c:
        r = c.cmd(f"ENABLE {caps}").ok()
        (line,) = r.lines("ENABLED")
        assert set(line.decode().split()[1:]) == enabled
        (again,) = c.cmd(f"ENABLE {caps}").ok().lines("ENABLED")
        assert again.split()[1:] == []


def test_enable_imap4rev2_changes_select_and_search_responses_rfc9051(shared_mcp):
    """After ENABLE IMAP4rev2, SELECT sends no RECENT and SEARCH answers ESEARCH
    (RFC 9051 §6.3.1, §7.3.4); IMAP4rev1 clients get RECENT and SEARCH."""
    with connect(shared_mcp) as c:
        r = c.select("INBOX")
        assert r.lines("RECENT"), r
        assert c.cmd("SEARCH ALL").ok().lines("SEARCH")
    with connect(shared_mcp) as c:
        c.cmd("ENABLE IMAP4rev2").ok()
        r = c.select("INBOX")
        assert not r.lines("RECENT"), r
        assert r.lines("LIST"), "IMAP4rev2 SELECT returns the LIST response"
        r = c.cmd("SEARCH ALL").ok()
        assert not r.lines("SEARCH") and r.lines("ESEARCH"), r


@pytest.mark.parametrize("args", ['NIL', '("name" "pytest" "version" "1.0")'])
def test_id_rfc2971(shared_mcp, args):
    """ID works before login, with NIL or parameters, and answers `* ID (...)` with the
    server's name (RFC 2971 §3.1)."""
    with connect(shared_mcp, login=False) as c:
        r = c.cmd(f"ID {args}").ok()
        (line,) = r.lines("ID")
        assert b'"name" "MCP"' in line, line


def test_unknown_command_is_bad_and_session_continues_rfc9051_7_1_3(shared_mcp):
    """An unknown command is BAD with its tag, and the session continues (RFC 9051 §7.1.3)."""
    with connect(shared_mcp) as c:
        r = c.cmd("FROBNICATE")
        assert r.status == "BAD" and r.tag == "c2"
        assert c.cmd("NOOP").status == "OK"
