"""Crash safety (issue 6, DESIGN.md §3): dataplane processes are killed with SIGKILL at
random points during a storm of IMAP APPEND (+ STORE), LMTP deliveries and EXPUNGEs, and
restarted on the same data. Afterwards:

- every acknowledged message (APPEND OK, LMTP 250) is present exactly once, with its UID
  and its flags (those given at APPEND and those of an acknowledged STORE);
- a message whose command got no answer is there at most once;
- an acknowledged EXPUNGE stays expunged;
- no UID is given twice, UIDVALIDITY does not change, and later APPENDs get UIDs above
  every UID handed out before;
- no message refers to a missing body (every message can be fetched whole);
- bodies left behind by interrupted APPENDs are collected (`mcp gc`), and then the stored
  bodies are exactly the referenced ones.

On SQLite one process is killed and restarted; on PostgreSQL two replicas share the
database and the bodies, and either may be killed. The storm lasts MCP_CRASH_STORM_SECONDS
(default 20)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))
from imaputil import connect, quote, simple_message, unique  # noqa: E402

STORM_SECONDS = float(os.environ.get("MCP_CRASH_STORM_SECONDS", "20"))


class Cluster:
    """One or two `mcp standalone` processes on one storage, restartable on the same data."""

    def __init__(self, mcp_factory, tmp_path: Path, storage, count: int) -> None:
        self.factory = mcp_factory
        self.storage = storage
        #: The shared blob directory; None when the storage keeps bodies in S3.
        self.blobs = None if storage.s3 else tmp_path / "blobs"
        self.dirs = [tmp_path / f"replica-{i}" for i in range(count)]
        self.servers = [self._start(d) for d in self.dirs]
        self.lock = threading.Lock()
        self.kills = 0

    def _start(self, data_dir: Path):
        shared = ("--blob-dir", str(self.blobs)) if self.blobs else ()
        return self.factory(data_dir=data_dir, extra_args=shared)

    def bodies(self) -> set[str]:
        """The names of the stored bodies (SHA-256 hex), listed from the directory or S3."""
        if self.blobs:
            return {p.name for p in self.blobs.rglob("*") if p.is_file() and re.fullmatch(r"[0-9a-f]{64}", p.name)}
        import boto3

        s3 = self.storage.s3
        client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"])
        names = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=s3["prefix"]):
            for o in page.get("Contents", []):
                name = o["Key"][len(s3["prefix"]):]
                if re.fullmatch(r"[0-9a-f]{64}", name):
                    names.add(name)
        return names

    def any(self):
        with self.lock:
            return random.choice(self.servers)

    def kill_one(self) -> None:
        with self.lock:
            i = random.randrange(len(self.servers))
            victim = self.servers[i]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(30)
            victim.kill()
            self.kills += 1
            self.servers[i] = self._start(self.dirs[i])

    def stop_all(self) -> None:
        for s in self.servers:
            assert s.stop() == 0


def uid_of(code: str | None, kind: str) -> int:
    m = re.fullmatch(rf"{kind} \d+ (\d+)", code or "")
    assert m, code
    return int(m.group(1))


@pytest.fixture
def cluster(mcp_factory, tmp_path, storage):
    return Cluster(mcp_factory, tmp_path, storage, 2 if storage.kind == "postgres" else 1)


def test_acknowledged_mail_survives_a_kill_9_storm(cluster, storage, mcp_binary, tmp_path):
    box = unique("storm")
    with connect(cluster.any()) as c:
        c.create(box)
        validity = re.search(rb"UIDVALIDITY (\d+)", b" ".join(c.select(box).untagged)).group(1)

    stop = threading.Event()
    lock = threading.Lock()
    acked: dict[str, dict] = {}  # subject -> {"box", "uid", "flags", "body"}
    unsure: set[str] = set()  # sent, no answer
    expunged: set[str] = set()  # acknowledged EXPUNGE
    errors: list[str] = []

    def appender(k: int) -> None:
        n = 0
        while not stop.is_set():
            subject = f"a-{k}-{n}"
            n += 1
            body = simple_message(subject, f"appended by {k}, number {n}")
            try:
                with connect(cluster.any()) as c:
                    with lock:
                        unsure.add(subject)
                    r = c.append(box, body, flags=f"$w{k}")
                    if r.status != "OK":
                        errors.append(f"APPEND {subject}: {r}")
                        return
                    entry = {"box": box, "uid": uid_of(r.code, "APPENDUID"), "flags": {f"$w{k}"}, "body": body}
                    with lock:
                        unsure.discard(subject)
                        acked[subject] = entry
                    c.select(box)
                    c.cmd(f"UID STORE {entry['uid']} +FLAGS.SILENT (\\Seen)").ok()
                    with lock:
                        entry["flags"].add("\\Seen")
            except (OSError, EOFError, AssertionError):
                continue  # killed mid-command: that message stays unsure

    def deliverer(k: int) -> None:
        n = 0
        while not stop.is_set():
            subject = f"l-{k}-{n}"
            n += 1
            body = simple_message(subject, f"delivered by {k}, number {n}")
            server = cluster.any()
            try:
                with smtplib.LMTP(server.host, server.lmtp_port, timeout=30) as lmtp:
                    with lock:
                        unsure.add(subject)
                    lmtp.sendmail("bob@example.com", ["alice@example.com"], body)
                with lock:
                    unsure.discard(subject)
                    acked[subject] = {"box": "INBOX", "uid": None, "flags": set(), "body": body}
            except smtplib.SMTPResponseException as e:
                if e.smtp_code >= 500:
                    errors.append(f"LMTP {subject}: {e}")
                    return
            except (OSError, smtplib.SMTPException):
                continue

    def expunger() -> None:
        n = 0
        while not stop.is_set():
            subject = f"e-{n}"
            n += 1
            try:
                with connect(cluster.any()) as c:
                    with lock:
                        unsure.add(subject)
                    r = c.append(box, simple_message(subject, "to be expunged"))
                    if r.status != "OK":
                        errors.append(f"APPEND {subject}: {r}")
                        return
                    uid = uid_of(r.code, "APPENDUID")
                    c.select(box)
                    c.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)").ok()
                    c.cmd(f"UID EXPUNGE {uid}").ok()
                    with lock:
                        unsure.discard(subject)
                        expunged.add(subject)
            except (OSError, EOFError, AssertionError):
                continue

    workers = [threading.Thread(target=appender, args=(k,)) for k in range(3)]
    workers += [threading.Thread(target=deliverer, args=(k,)) for k in range(2)]
    workers += [threading.Thread(target=expunger)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + STORM_SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(random.uniform(0.3, 2.0))
            cluster.kill_one()
    finally:
        stop.set()
        for w in workers:
            w.join(120)
    assert not errors, errors
    assert cluster.kills >= 5
    appended = [s for s in acked if s.startswith("a-")]
    delivered = [s for s in acked if s.startswith("l-")]
    assert appended and delivered and expunged, "the storm did some of everything"

    def messages(c, mailbox: str) -> dict[str, list[dict]]:
        """subject -> [{uid, flags, body}] for every message of `mailbox`."""
        c.select(mailbox)
        out: dict[str, list[dict]] = {}
        for item in c.cmd("UID FETCH 1:* (UID FLAGS BODY.PEEK[])").ok().fetches().values():
            body = item["BODY[]"]
            subject = re.search(rb"^Subject: (\S+)\r$", body, re.M).group(1).decode()
            flags = {f.decode() for f in item["FLAGS"]}
            out.setdefault(subject, []).append({"uid": int(item["UID"]), "flags": flags, "body": body})
        return out

    with connect(cluster.any()) as c:
        sel = c.select(box)
        assert re.search(rb"UIDVALIDITY (\d+)", b" ".join(sel.untagged)).group(1) == validity
        stored = {box: messages(c, box), "INBOX": messages(c, "INBOX")}
        for subject, want in acked.items():
            got = stored[want["box"]].get(subject, [])
            assert len(got) == 1, f"{subject}: acknowledged, stored {len(got)} times"
            (m,) = got
            # LMTP prepends Return-Path and Received (RFC 5321 §4.4).
            assert m["body"].endswith(want["body"]), subject
            if want["uid"] is not None:
                assert m["uid"] == want["uid"], subject
            assert want["flags"] <= m["flags"], (subject, want["flags"], m["flags"])
        for subject in unsure:
            for mailbox in stored.values():
                assert len(mailbox.get(subject, [])) <= 1, f"{subject} stored twice"
        for subject in expunged:
            assert subject not in stored[box], f"{subject}: expunged, yet there"
        uids = [m["uid"] for msgs in stored[box].values() for m in msgs]
        assert len(uids) == len(set(uids)), "a UID was given twice"
        handed = [a["uid"] for a in acked.values() if a["uid"] is not None]
        later = uid_of(c.append(box, simple_message("after the storm")).ok().code, "APPENDUID")
        assert later > max(handed + uids), "a later APPEND reuses no UID"
    print(
        f"\ncrash storm: {cluster.kills} kills, {len(appended)} APPENDs, {len(delivered)} LMTP "
        f"deliveries and {len(expunged)} EXPUNGEs acknowledged, {len(unsure)} commands unanswered"
    )

    # Bodies of interrupted APPENDs are orphans: collected once no command is in flight.
    cluster.stop_all()
    referenced = set()
    for row in storage.rows(cluster.dirs[0]):
        if isinstance(row.get("blob_id"), str):
            referenced.add(row["blob_id"])
    before = cluster.bodies()
    assert referenced <= before, f"{len(referenced - before)} referenced bodies missing"
    cmd = [str(mcp_binary), "gc", "--data-dir", str(cluster.dirs[0]), "--min-age-secs", "0"]
    cmd += ["--blob-dir", str(cluster.blobs)] if cluster.blobs else []
    cmd += storage.args()
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report == {"referenced": len(referenced), "deleted": len(before - referenced)}, report
    assert cluster.bodies() == referenced, "exactly the referenced bodies are left"
    print(f"orphan collection: {report['deleted']} orphaned bodies of {len(before)} deleted")
