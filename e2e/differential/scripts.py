"""Scripted IMAP sessions for the Dovecot differential (test_sessions_vs_dovecot.py).

Every script starts with the same seed: the corpus messages of e2e/corpus/ APPENDed to
INBOX in file order, each with a fixed flag set and INTERNALDATE (`seed()`), so that both
servers hold identical mailboxes. The seed commands' responses are compared too.
A command is a str; a literal is written inline as `{N}\\r\\n<octets>` (see imapdiff).
"""

from __future__ import annotations

import glob
import os

from imapdiff import GIVEN_DATES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = sorted(glob.glob(os.path.join(ROOT, "e2e", "corpus", "*.eml")))
N = len(CORPUS)

# Flag sets cycled over the corpus: system flags, a keyword, none.
FLAG_SETS = ["(\\Seen)", "()", "(\\Seen \\Flagged)", "(\\Answered $Label1)", "(\\Draft)", "(\\Deleted \\Seen)"]


def _date(i: int) -> str:
    d = f"{(i % 28) + 1:02d}-{['Jan', 'Feb', 'Mar', 'Nov'][i % 4]}-202{i % 5} {i % 24:02d}:{i % 60:02d}:{(7 * i) % 60:02d} {'+' if i % 2 else '-'}0{i % 10}30"
    GIVEN_DATES.add(d.encode())
    return d


def literal(data: bytes) -> str:
    return "{%d}\r\n" % len(data) + data.decode("latin-1")


def append(mailbox: str, i: int, data: bytes) -> str:
    return f'APPEND {mailbox} {FLAG_SETS[i % len(FLAG_SETS)]} "{_date(i)}" ' + literal(data)


def seed(mailbox: str = "INBOX", files=None) -> list[str]:
    cmds = []
    for i, path in enumerate(files or CORPUS):
        with open(path, "rb") as f:
            cmds.append(append(mailbox, i, f.read()))
    return cmds


SMALL = b"From: a@example.com\r\nSubject: small\r\n\r\nhello\r\n"
# Message sets used across scripts.
ALL = f"1:{N}"

# FETCH data items (RFC 3501 §6.4.5 / RFC 9051 §6.4.5), each fetched over the whole corpus.
FETCH_ITEMS = [
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "UID",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "FAST",
    "ALL",
    "FULL",
    "RFC822.HEADER",
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[1]",
    "BODY.PEEK[2]",
    "BODY.PEEK[1.MIME]",
    "BODY.PEEK[2.MIME]",
    "BODY.PEEK[1.1]",
    "BODY.PEEK[2.HEADER]",
    "BODY.PEEK[2.TEXT]",
    "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED CONTENT-TYPE)]",
    "BODY.PEEK[1.HEADER.FIELDS (CONTENT-TYPE)]",
    "BODY.PEEK[]<0.100>",
    "BODY.PEEK[]<50.30>",
    "BODY.PEEK[TEXT]<10.20>",
    "BODY.PEEK[1]<0.5>",
    "BODY.PEEK[HEADER]<100000.10>",
    "BINARY.PEEK[1]",
    "BINARY.PEEK[2]",
    "BINARY.PEEK[]",
    "BINARY.SIZE[1]",
    "BINARY.SIZE[]",
    "BINARY.PEEK[1]<0.10>",
    "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
]

SCRIPTS: dict[str, list[str]] = {}

SCRIPTS["select_examine"] = seed() + [
    "SELECT INBOX",
    "EXAMINE INBOX",
    "SELECT inbox",
    "SELECT Drafts",
    "STATUS INBOX (MESSAGES UIDNEXT UNSEEN)",
    "EXAMINE Nonexistent",
    "FETCH 1 FLAGS",
    "SELECT INBOX",
    "CLOSE",
    "CLOSE",
    "EXAMINE INBOX",
    "UNSELECT",
    "NOOP",
    "CHECK",
]

SCRIPTS["fetch_items"] = seed() + ["EXAMINE INBOX"] + [
    f"FETCH {ALL} {item}" if item.startswith("(") else f"FETCH {ALL} ({item})" for item in FETCH_ITEMS
]

SCRIPTS["fetch_seen_side_effects"] = seed() + [
    "SELECT INBOX",
    "FETCH 2 BODY[TEXT]",
    "FETCH 2 FLAGS",
    "FETCH 8 RFC822",
    "FETCH 9 RFC822.TEXT",
    "FETCH 14 BINARY[1]",
    "FETCH 20 (BODY[1] FLAGS)",
    "FETCH 26 RFC822.HEADER",
    "FETCH 1:* FLAGS",
    "EXAMINE INBOX",
    "FETCH 32 BODY[]",
    "FETCH 32 FLAGS",
    "UID FETCH 1:* (FLAGS)",
    "UID FETCH 5,7,30:32 (UID RFC822.SIZE)",
    "UID FETCH 100:* (FLAGS)",
    "UID FETCH * (FLAGS)",
    "FETCH 5:3 (UID)",
    "FETCH *:38 (UID)",
]

SEARCH_KEYS = [
    "ALL",
    "ANSWERED",
    "UNANSWERED",
    "DELETED",
    "UNDELETED",
    "DRAFT",
    "UNDRAFT",
    "FLAGGED",
    "UNFLAGGED",
    "SEEN",
    "UNSEEN",
    "KEYWORD $Label1",
    "UNKEYWORD $Label1",
    "KEYWORD nosuchkeyword",
    "FROM example",
    "FROM alice",
    "TO bob",
    "CC example",
    "BCC example",
    'SUBJECT "test"',
    "SUBJECT message",
    "BODY hello",
    "TEXT attachment",
    "TEXT multipart",
    "HEADER Message-ID example",
    'HEADER X-Nonexistent ""',
    'HEADER Subject ""',
    "LARGER 1000",
    "SMALLER 500",
    "BEFORE 1-Jan-2022",
    "ON 2-Feb-2021",
    "SINCE 1-Jun-2023",
    "SENTBEFORE 1-Jan-2010",
    "SENTON 1-Jan-2024",
    "SENTSINCE 1-Jan-2020",
    "NOT SEEN",
    "OR SEEN FLAGGED",
    "OR (SEEN DRAFT) (ANSWERED UNSEEN)",
    "NOT (OR DELETED DRAFT)",
    "1:10",
    "2,4,6:8",
    "*",
    "UID 1:5",
    "UID 10:*",
    "1:5 SEEN",
    "SEEN UNSEEN",
    "CHARSET UTF-8 SUBJECT test",
    "CHARSET US-ASCII ALL",
    "CHARSET X-UNKNOWN ALL",
    "NEW",
    "OLD",
]

SCRIPTS["search"] = seed() + ["SELECT INBOX"] + [f"SEARCH {k}" for k in SEARCH_KEYS] + [
    f"UID SEARCH {k}" for k in ("ALL", "SEEN", "OR FLAGGED DRAFT", "UID 3:9", "NOT UID 1:30")
] + [
    "SEARCH RETURN () ALL",
    "SEARCH RETURN (MIN MAX COUNT) SEEN",
    "SEARCH RETURN (ALL) UNSEEN",
    "SEARCH RETURN (COUNT) KEYWORD nosuchkeyword",
    "SEARCH RETURN (MIN) KEYWORD nosuchkeyword",
    "UID SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED",
    "SEARCH RETURN (SAVE) SEEN",
    "FETCH $ (UID)",
    "UID SEARCH RETURN (SAVE MIN) DRAFT",
    "UID FETCH $ (FLAGS)",
    "SEARCH BADKEY",
    "SEARCH BEFORE notadate",
    "SEARCH 1:1000",
]

SCRIPTS["store_flags"] = seed() + [
    "SELECT INBOX",
    "STORE 1 FLAGS (\\Seen \\Flagged)",
    "STORE 2:4 +FLAGS (\\Answered)",
    "STORE 3 -FLAGS (\\Answered \\Seen)",
    "STORE 5 +FLAGS.SILENT (\\Flagged)",
    "FETCH 5 FLAGS",
    "STORE 6:7 FLAGS.SILENT ()",
    "FETCH 6:7 FLAGS",
    "STORE 8 +FLAGS (newkeyword $Junk)",
    "STORE 9 +FLAGS (NEWKEYWORD)",
    "FETCH 8:9 FLAGS",
    "STORE 1:* +FLAGS (\\Draft)",
    "UID STORE 2,4 -FLAGS (\\Draft)",
    "UID STORE 1000 +FLAGS (\\Seen)",
    "STORE 11 FLAGS (\\Recent)",
    "STORE 11 FLAGS (\\Bogus)",
    "STORE 12 +FLAGS \\Seen",
    "SEARCH DRAFT",
    "EXAMINE INBOX",
    "STORE 1 +FLAGS (\\Seen)",
    "SELECT INBOX",
    "FETCH 1:12 FLAGS",
    "STORE 10 -FLAGS (nothere)",
]

SCRIPTS["copy_move_expunge"] = seed() + [
    "SELECT INBOX",
    "CREATE Dest",
    "COPY 1:3 Dest",
    "UID COPY 10:12 Dest",
    "COPY 1 Nonexistent",
    "MOVE 4:5 Dest",
    "UID MOVE 20 Dest",
    "FETCH 1:6 (UID FLAGS)",
    "STORE 1:3 +FLAGS.SILENT (\\Deleted)",
    "EXPUNGE",
    "UID EXPUNGE 1:100",
    "SEARCH DELETED",
    "STORE 1:4 +FLAGS.SILENT (\\Deleted)",
    "UID EXPUNGE 7:15",
    "EXPUNGE",
    "STATUS Dest (MESSAGES UIDNEXT UNSEEN)",
    "SELECT Dest",
    "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)",
    "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    "COPY 1:2 INBOX",
    "MOVE 3 Dest",
    "STORE 1 +FLAGS.SILENT (\\Deleted)",
    "CLOSE",
    "STATUS Dest (MESSAGES)",
    "SELECT INBOX",
    "FETCH 1:* (UID)",
]

SCRIPTS["mailboxes"] = [
    'LIST "" *',
    'LIST "" %',
    'LIST "" ""',
    "LSUB \"\" *",
    "CREATE Work",
    "CREATE Work/Projects",
    "CREATE Work/Projects/2024",
    "CREATE Work",
    "CREATE INBOX",
    'CREATE "With Space"',
    'LIST "" *',
    'LIST "" Work/%',
    'LIST Work/ %',
    'LIST "" W*',
    'LIST "" *2024',
    'LIST "" inbox',
    "SUBSCRIBE Work",
    "SUBSCRIBE Work/Projects",
    'LSUB "" *',
    'LSUB "" %',
    "UNSUBSCRIBE Work/Projects",
    'LSUB "" *',
    "STATUS Work (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
    "STATUS INBOX (MESSAGES)",
    "STATUS Nonexistent (MESSAGES)",
    "RENAME Work Job",
    'LIST "" *',
    "RENAME Job/Projects/2024 Year2024",
    "RENAME Nonexistent Foo",
    "RENAME Job Year2024",
    'LIST "" *',
    "DELETE Year2024",
    "DELETE Year2024",
    "DELETE Job/Projects",
    "DELETE INBOX",
    'DELETE "With Space"',
    'LIST "" *',
    'LIST (SUBSCRIBED) "" *',
    'LIST (SPECIAL-USE) "" *',
    'LIST "" * RETURN (SPECIAL-USE)',
    'LIST "" % RETURN (CHILDREN)',
    'LIST "" INBOX RETURN (STATUS (MESSAGES UIDNEXT))',
    "NAMESPACE",
    "APPEND Job " + literal(SMALL),
    "STATUS Job (MESSAGES UIDNEXT UNSEEN SIZE)",
    "APPEND Nonexistent " + literal(SMALL),
    # Last, because Dovecot's answers differ by implementation choice (see ALLOW_DIFF).
    "CREATE Archive2/",
    'LIST "" Archive2',
    "RENAME Job Drafts",
]

SCRIPTS["uid_and_errors"] = seed() + [
    "FETCH 1 FLAGS",
    "SELECT INBOX",
    "FETCH 0 FLAGS",
    "FETCH 41:50 FLAGS",
    "FETCH 1:x FLAGS",
    "FETCH 1 (NOSUCHITEM)",
    "FETCH 1 BODY[99]",
    "FETCH 1 BODY.PEEK[1.2.3.4]",
    "STORE 0 +FLAGS (\\Seen)",
    "STORE 100 +FLAGS (\\Seen)",
    "UID FETCH 0 FLAGS",
    "UID FETCH 41:50 FLAGS",
    "UID SEARCH UID 1000",
    "COPY 100 INBOX",
    "UID COPY 1000 INBOX",
    "NOSUCHCOMMAND",
    "FETCH",
    "CREATE",
    "LOGIN alice alice",
    "APPEND INBOX (\\Seen) \"99-Foo-2020 00:00:00 +0000\" " + literal(SMALL),
    "APPEND INBOX (\\Seen) " + literal(SMALL),
    "FETCH * (FLAGS INTERNALDATE RFC822.SIZE)",
    "APPEND INBOX {0}\r\n",
    "NOOP",
    "UID FETCH 1:* (FLAGS)",
    "STATUS INBOX (MESSAGES BOGUS)",
    "SELECT",
]
