"""Quotas (docs/quota.md): RFC 9208 QUOTA with the STORAGE and MESSAGE resources, STATUS
DELETED / DELETED-STORAGE, RFC 7889 APPENDLIMIT, and enforcement of the Mailbox and Tenant
limits of the YAML resources on APPEND, COPY, MOVE and LMTP delivery, also by two `mcp`
processes on one database, on every storage backend."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest

from imaputil import connect, quote

APPENDLIMIT = 64 * 1024 * 1024


def message(tag: str, size: int = 1000) -> bytes:
    """A message of exactly `size` octets."""
    head = f"From: a@example.org\r\nSubject: {tag}\r\n\r\n".encode()
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


def limit_mailbox(resources: Path, who: str, quota: str) -> None:
    """Sets `spec.quota` of the sample Mailbox `who` (its file ends inside `spec`)."""
    path = resources / f"{who}.yaml"
    text = re.sub(r"\n  quota:\n(    .*\n)*", "\n", path.read_text() + "\n")
    path.write_text(text.rstrip("\n") + "\n  quota:\n" + quota)


def limit_tenant(resources: Path, storage: str) -> None:
    path = resources / "tenant.yaml"
    path.write_text(path.read_text() + f"  quota:\n    storage: {storage}\n")


def quota_values(resp) -> dict[str, dict[str, tuple[int, int]]]:
    """`QUOTA "root" (RES used limit ...)` responses as {root: {RES: (used, limit)}}."""
    out = {}
    for line in resp.lines("QUOTA"):
        m = re.match(rb'QUOTA "([^"]*)" \(([^)]*)\)$', line)
        assert m, line
        words = m.group(2).decode().split()
        out[m.group(1).decode()] = {
            words[i]: (int(words[i + 1]), int(words[i + 2])) for i in range(0, len(words), 3)
        }
    return out


class Lmtp:
    """A minimal LMTP client: one transaction, the replies per recipient."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection((server.host, server.lmtp_port), 10)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"220")
        self.sock.sendall(b"LHLO test\r\n")
        while self.file.readline()[3:4] == b"-":
            pass

    def line(self) -> str:
        return self.file.readline().decode().rstrip("\r\n")

    def deliver(self, rcpts: list[str], data: bytes) -> list[str]:
        self.sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
        assert self.line().startswith("250")
        for r in rcpts:
            self.sock.sendall(f"RCPT TO:<{r}>\r\n".encode())
            assert self.line().startswith("250")
        self.sock.sendall(b"DATA\r\n")
        assert self.line().startswith("354")
        self.sock.sendall(data + b".\r\n")
        return [self.line() for _ in rcpts]

    def close(self) -> None:
        self.sock.sendall(b"QUIT\r\n")
        self.sock.close()


@pytest.fixture
def limited(mcp_factory, resources_copy):
    """A server where alice may store 5 messages and 4 KiB (bob is unlimited)."""
    limit_mailbox(resources_copy, "alice", "    storage: 4Ki\n    messages: 5\n")
    return mcp_factory(resources=resources_copy)


def test_capabilities_getquotaroot_getquota_and_status(limited):
    with connect(limited) as c:
        caps = c.cmd("CAPABILITY").ok().lines("CAPABILITY")[0].decode().split()
        for cap in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", f"APPENDLIMIT={APPENDLIMIT}"):
            assert cap in caps
        assert "QUOTASET" not in caps
        r = c.cmd("GETQUOTAROOT INBOX").ok()
        assert r.lines("QUOTAROOT") == [b'QUOTAROOT "INBOX" "User quota"']
        assert quota_values(r) == {"User quota": {"STORAGE": (0, 4), "MESSAGE": (0, 5)}}
        c.append("INBOX", message("one", 1000)).ok()
        c.append("Sent", message("two", 1500)).ok()
        # Any folder, existing or not, has the account's root (as in Dovecot).
        r = c.cmd("GETQUOTAROOT Nonexistent").ok()
        assert r.lines("QUOTAROOT") == [b'QUOTAROOT "Nonexistent" "User quota"']
        # STORAGE is in units of 1024 octets, rounded up: 2500 octets are 3.
        assert quota_values(r) == {"User quota": {"STORAGE": (3, 4), "MESSAGE": (2, 5)}}
        assert quota_values(c.cmd('GETQUOTA "User quota"').ok()) == quota_values(r)
        r = c.cmd('GETQUOTA "Tenant quota"')
        assert (r.status, r.code) == ("NO", "NONEXISTENT")
        c.select("Sent")
        c.cmd("STORE 1 +FLAGS (\\Deleted)").ok()
        r = c.cmd("STATUS Sent (MESSAGES DELETED DELETED-STORAGE APPENDLIMIT)").ok()
        assert r.lines("STATUS") == [
            b'STATUS "Sent" (MESSAGES 1 DELETED 1 DELETED-STORAGE 1500 APPENDLIMIT 67108864)'
        ]
        r = c.cmd("STATUS INBOX (APPENDLIMIT)").ok()
        assert r.lines("STATUS") == [b'STATUS "INBOX" (APPENDLIMIT 67108864)']
        r = c.cmd('LIST "" "INBOX" RETURN (STATUS (MESSAGES APPENDLIMIT))').ok()
        assert b'STATUS "INBOX" (MESSAGES 1 APPENDLIMIT 67108864)' in r.untagged
        c.cmd("EXPUNGE").ok()
        r = c.cmd("GETQUOTAROOT INBOX").ok()
        assert quota_values(r) == {"User quota": {"STORAGE": (1, 4), "MESSAGE": (1, 5)}}
        # The limits come from the resources: SETQUOTA is refused, nothing changes.
        r = c.cmd('SETQUOTA "User quota" (STORAGE 100000)')
        assert (r.status, r.code) == ("NO", "NOPERM")
        assert quota_values(c.cmd('GETQUOTA "User quota"').ok())["User quota"]["STORAGE"] == (1, 4)


def test_unlimited_account_has_no_quota_root(mcp):
    with connect(mcp) as c:
        r = c.cmd("GETQUOTAROOT INBOX").ok()
        assert r.lines("QUOTAROOT") == [b'QUOTAROOT "INBOX"']
        assert r.lines("QUOTA") == []
        r = c.cmd('GETQUOTA "User quota"')
        assert (r.status, r.code) == ("NO", "NONEXISTENT")


@pytest.mark.parametrize(
    "command, reason",
    [
        ("GETQUOTA", "Error in IMAP command GETQUOTA"),
        ("GETQUOTAROOT", "Error in IMAP command GETQUOTAROOT"),
        ("GETQUOTAROOT INBOX extra", "GETQUOTAROOT"),
        ('SETQUOTA "User quota"', "Error in IMAP command SETQUOTA"),
        ('SETQUOTA "User quota" (STORAGE lots)', "Error in IMAP command SETQUOTA"),
        ('SETQUOTA "User quota" (STORAGE 1', "Error in IMAP command SETQUOTA"),
        ("STATUS INBOX (APPENDLIMIT", "Error in IMAP command STATUS"),
        ("STATUS INBOX (APPENDLIMIT BOGUS)", "Error in IMAP command STATUS"),
    ],
)
def test_hostile_quota_commands_get_bad_with_a_reason(limited, command, reason):
    with connect(limited) as c:
        r = c.cmd(command)
        assert r.status == "BAD" and reason in r.text, r
        # The session goes on, nothing changed.
        assert quota_values(c.cmd("GETQUOTAROOT INBOX").ok())["User quota"]["MESSAGE"] == (0, 5)


def test_quota_commands_need_authentication(limited):
    with connect(limited, login=False) as c:
        for command in ("GETQUOTAROOT INBOX", 'GETQUOTA "User quota"', 'SETQUOTA "" ()'):
            assert c.cmd(command).status == "BAD"


def test_append_copy_and_move_at_the_limit(limited):
    with connect(limited) as c:
        for i in range(4):
            c.append("INBOX", message(f"m{i}", 1000)).ok()
        # 4000 + 97 > 4096 octets: refused whole, on both APPEND forms.
        for sync in (False, True):
            r = c.append("INBOX", message("big", 97), sync=sync)
            assert (r.status, r.code) == ("NO", "OVERQUOTA"), r
        c.append("INBOX", message("fits", 96)).ok()
        r = c.cmd("STATUS INBOX (MESSAGES UIDNEXT)").ok()
        assert r.lines("STATUS") == [b'STATUS "INBOX" (MESSAGES 5 UIDNEXT 6)']
        r = c.append("INBOX", message("sixth", 10))
        assert (r.status, r.code) == ("NO", "OVERQUOTA")
        c.select("INBOX")
        r = c.cmd("COPY 1 Archive")
        assert (r.status, r.code) == ("NO", "OVERQUOTA")
        assert c.cmd("STATUS Archive (MESSAGES)").ok().lines("STATUS") == [
            b'STATUS "Archive" (MESSAGES 0)'
        ]
        # MOVE within the account changes nothing and is allowed at the limit.
        c.cmd("MOVE 1:2 Archive").ok()
        assert quota_values(c.cmd("GETQUOTAROOT INBOX").ok())["User quota"] == {
            "STORAGE": (4, 4),
            "MESSAGE": (5, 5),
        }
        c.cmd("STORE 1 +FLAGS (\\Deleted)").ok()
        c.cmd("EXPUNGE").ok()
        c.append("INBOX", message("after", 500)).ok()


def test_lmtp_is_refused_per_recipient_at_the_limit(limited):
    lmtp = Lmtp(limited)
    try:
        # Delivery adds a Received: header, a few hundred octets: 4 copies fit in 4 KiB.
        for i in range(4):
            assert lmtp.deliver(["alice@example.com"], message(f"d{i}", 700))[0].startswith("250")
        replies = lmtp.deliver(["alice@example.com", "bob@example.com"], message("full", 1000))
        assert replies[0].startswith("452 4.2.2 <alice@example.com>: mailbox full"), replies
        assert replies[1].startswith("250 2.0.0"), replies
    finally:
        lmtp.close()
    with connect(limited) as c:
        r = c.cmd("STATUS INBOX (MESSAGES)").ok()
        assert r.lines("STATUS") == [b'STATUS "INBOX" (MESSAGES 4)']


def test_a_quota_changed_in_the_yaml_applies_after_restart(mcp_factory, resources_copy, tmp_path):
    data = tmp_path / "data"
    limit_mailbox(resources_copy, "alice", "    messages: 1\n")
    server = mcp_factory(data_dir=data, resources=resources_copy)
    with connect(server) as c:
        c.append("INBOX", message("one")).ok()
        assert c.append("INBOX", message("two")).code == "OVERQUOTA"
    assert server.stop() == 0
    limit_mailbox(resources_copy, "alice", "    messages: 3\n    storage: 1Mi\n")
    server = mcp_factory(data_dir=data, resources=resources_copy)
    with connect(server) as c:
        assert quota_values(c.cmd("GETQUOTAROOT INBOX").ok()) == {
            "User quota": {"STORAGE": (1, 1024), "MESSAGE": (1, 3)}
        }
        c.append("INBOX", message("two")).ok()
    assert server.stop() == 0
    # Removing the quota lifts it.
    limit_mailbox(resources_copy, "alice", "")
    (resources_copy / "alice.yaml").write_text(
        (resources_copy / "alice.yaml").read_text().replace("\n  quota:\n", "\n")
    )
    server = mcp_factory(data_dir=data, resources=resources_copy)
    with connect(server) as c:
        for i in range(3):
            c.append("INBOX", message(f"free{i}")).ok()


def test_tenant_storage_limit_and_mailbox_default(mcp_factory, resources_copy):
    limit_tenant(resources_copy, "5Ki")
    path = resources_copy / "tenant.yaml"
    path.write_text(path.read_text() + "    mailboxDefault:\n      messages: 4\n")
    server = mcp_factory(resources=resources_copy)
    bob = ("bob@example.com", "bob-demo")
    with connect(server) as alice, connect(server, user=bob) as b:
        r = alice.cmd("GETQUOTAROOT INBOX").ok()
        assert r.lines("QUOTAROOT") == [b'QUOTAROOT "INBOX" "User quota" "Tenant quota"']
        assert quota_values(r) == {
            "User quota": {"MESSAGE": (0, 4)},
            "Tenant quota": {"STORAGE": (0, 5)},
        }
        alice.append("INBOX", message("a1", 2000)).ok()
        b.append("INBOX", message("b1", 2000)).ok()
        # 4000 + 1200 > 5120: the tenant's limit refuses bob as well as alice.
        for c in (alice, b):
            r = c.append("INBOX", message("over", 1200))
            assert (r.status, r.code) == ("NO", "OVERQUOTA") and "tenant" in r.text, r
        b.append("INBOX", message("b2", 1000)).ok()
        r = alice.cmd('GETQUOTA "Tenant quota"').ok()
        assert quota_values(r) == {"Tenant quota": {"STORAGE": (5, 5)}}


def test_two_processes_on_one_database_never_exceed_the_limit(
    mcp_factory, resources_copy, storage, tmp_path
):
    """Two `mcp` processes on one database (PostgreSQL, or one SQLite file) APPEND
    concurrently near the limit: exactly the limit is stored, every other APPEND gets
    NO [OVERQUOTA]."""
    limit = 12
    limit_mailbox(resources_copy, "alice", f"    messages: {limit}\n")
    extra: tuple[str, ...] = ()
    if storage.kind == "sqlite":
        extra = ("--store-url", f"sqlite://{tmp_path / 'shared.sqlite'}")
    servers = [
        mcp_factory(data_dir=tmp_path / f"replica{i}", resources=resources_copy, extra_args=extra)
        for i in range(2)
    ]
    results: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with connect(servers[n % 2]) as c:
            for i in range(6):
                r = c.append("INBOX", message(f"w{n}-{i}", 600))
                with lock:
                    results.append((r.status, r.code))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 36
    ok = [r for r in results if r[0] == "OK"]
    refused = [r for r in results if r[0] != "OK"]
    assert len(ok) == limit, results
    assert all(r == ("NO", "OVERQUOTA") for r in refused), refused
    for server in servers:
        with connect(server) as c:
            assert c.cmd("STATUS INBOX (MESSAGES)").ok().lines("STATUS") == [
                f'STATUS "INBOX" (MESSAGES {limit})'.encode()
            ]
            assert quota_values(c.cmd(f"GETQUOTA {quote('User quota')}").ok()) == {
                "User quota": {"MESSAGE": (limit, limit)}
            }


def test_managed_mode_enforces_the_operators_quotas(mcp_binary, storage, tmp_path):
    """`mcp dataplane`: the Mailbox quota arrives with the account over the admin API, the
    Tenant's storage limit as `tenantStorageQuota` in config.yaml (docs/quota.md)."""
    from test_dataplane_mode import ALICE, Dataplane, write_config_dir

    etc = tmp_path / "etc"
    token = write_config_dir(etc, storage, {"tenantStorageQuota": "3Ki"})
    dp = Dataplane(mcp_binary, etc, tmp_path / "data", storage, token, tmp_path / "mcp.log")
    try:
        assert dp.put(ALICE, spec={"quota": {"messages": 2}}).status == 200
        bob = "bob@acme.example"
        assert dp.put(bob, password="bob-pw").status == 200
        imap = dp.imaps(ALICE, "alice-pw")
        typ, data = imap.getquotaroot("INBOX")
        assert typ == "OK"
        assert data == [
            [b'"INBOX" "User quota" "Tenant quota"'],
            [b'"User quota" (MESSAGE 0 2)', b'"Tenant quota" (STORAGE 0 3)'],
        ]
        for i in range(2):
            assert imap.append("INBOX", None, None, message(f"a{i}", 1000))[0] == "OK"
        typ, data = imap.append("INBOX", None, None, message("a3", 10))
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        imap.logout()
        imap = dp.imaps(bob, "bob-pw")
        assert imap.append("INBOX", None, None, message("b1", 1000))[0] == "OK"
        typ, data = imap.append("INBOX", None, None, message("b2", 1100))
        assert typ == "NO" and b"tenant" in data[0], data
        imap.logout()
        assert dp.get(ALICE).json["messages"] == 2
    finally:
        assert dp.stop() == 0
