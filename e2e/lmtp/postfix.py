"""A private Postfix instance for the LMTP tests: its own configuration, queue and data
directories in a temporary directory, no network listener at all, and every mail for
example.com handed to MCP over `lmtp:inet:127.0.0.1:PORT`.

Several instances can run at once on one machine: nothing is shared but the binaries. Mail is
submitted with `sendmail -C DIR`; Postfix logs to `DIR/maillog` (postlogd), which is where a
bounce's status (e.g. `said: 550 5.1.1 ...`) is read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SENDMAIL = shutil.which("sendmail") or "/usr/sbin/sendmail"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"

# Only the services pickup -> cleanup -> qmgr -> lmtp (and bounces) need; no smtpd, no
# chroot (the queue lives in a temporary directory).
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def available() -> bool:
    """Whether Postfix is installed (`.ci/run` installs it)."""
    return Path(POSTFIX).is_file() and Path(SENDMAIL).is_file()


class Postfix:
    """One running instance; `stop()` it (the fixture does)."""

    def __init__(self, lmtp_port: int, domain: str = "example.com") -> None:
        # Not pytest's tmp_path: Postfix's unprivileged daemons must be able to reach the
        # directories, and pytest's are private to root.
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-postfix-"))
        self.dir.chmod(0o755)
        self.etc = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        self.maillog = self.dir / "maillog"
        for d in (self.etc, self.queue, self.data):
            d.mkdir()
        shutil.chown(self.data, "postfix", "postfix")
        self.lmtp_port = lmtp_port
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.test",
            "mydomain": "postfix.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            # No lookups, no mail leaving the machine: only example.com is deliverable.
            "smtp_dns_support_level": "disabled",
            "lmtp_host_lookup": "native",
            "default_transport": "error:mail outside the test domain is not delivered",
            "relay_transport": "error:mail outside the test domain is not delivered",
            "local_transport": "error:no local delivery",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "virtual_mailbox_domains": domain,
            "virtual_transport": f"lmtp:inet:127.0.0.1:{lmtp_port}",
            "lmtp_lhlo_name": "postfix.test",
            "smtputf8_enable": "yes",
            "biff": "no",
            "notify_classes": "",
            "delay_warning_time": "0",
            # Quick retries when MCP answered 4xx (a test that restarts it).
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.dir),
        }
        (self.etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.etc / "master.cf").write_text(MASTER_CF)
        self._postfix("set-permissions")
        self._postfix("start")
        self.running = True

    def _postfix(self, *args: str) -> None:
        out = subprocess.run(
            [POSTFIX, "-c", str(self.etc), *args], capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)} failed ({out.returncode}):\n"
                               f"{out.stdout}{out.stderr}\n{self.log()}")

    def sendmail(self, message: bytes, recipients: list[str], sender: str) -> None:
        """Submits `message` like a local program would (`sendmail -C DIR -f SENDER -- RCPT...`)."""
        out = subprocess.run(
            [SENDMAIL, "-C", str(self.etc), "-f", sender, "-i", "--", *recipients],
            input=message, capture_output=True, timeout=60,
        )
        assert out.returncode == 0, out

    def log(self) -> str:
        """The instance's mail log so far."""
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 60) -> re.Match:
        """Waits until the mail log matches `pattern` (a regex); returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the Postfix log:\n{self.log()}\n"
                                     f"queue:\n{self.queue_listing()}")
            self.flush()
            time.sleep(0.2)

    def flush(self) -> None:
        """Asks the queue manager to retry deferred mail now."""
        subprocess.run([POSTQUEUE, "-c", str(self.etc), "-f"], capture_output=True, timeout=30)

    def queue_listing(self) -> str:
        """`postqueue -p`: what is still queued, with the reason."""
        out = subprocess.run([POSTQUEUE, "-c", str(self.etc), "-p"], capture_output=True,
                             text=True, timeout=30)
        return out.stdout + out.stderr

    def stop(self) -> None:
        if self.running:
            self.running = False
            try:
                self._postfix("stop")
            finally:
                shutil.rmtree(self.dir, ignore_errors=True)
