"""Messages larger than the S3 blob store's multipart threshold (8 MiB), and partial FETCH of
the whole message (`BODY[]<start.len>`, `BINARY[]<start.len>`), which the server answers
with ranged reads instead of reading the body (RFC 9051 §6.4.5, RFC 3516 §4.2). On every
storage backend: on `postgres` with MCP_TEST_S3_ENDPOINT set the bodies are in S3, where
these are multipart uploads and ranged GETs (docs/storage.md)."""

from __future__ import annotations

import pytest

from imaputil import connect, mailbox_with, simple_message

MIB = 1024 * 1024
#: docs/storage.md: bodies above 8 MiB are multipart uploads of 8 MiB parts.
PART = 8 * MIB


def big_message() -> bytes:
    """A text message of 9.5 MiB whose lines are numbered, so that any range is unique."""
    head = (
        b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
        b"Subject: large\r\nDate: Mon, 1 May 2023 10:00:00 +0000\r\n\r\n"
    )
    lines = []
    size = len(head)
    n = 0
    while size < PART + PART // 8:
        line = b"line %08d of a large message, in several S3 parts\r\n" % n
        lines.append(line)
        size += len(line)
        n += 1
    return head + b"".join(lines)


@pytest.fixture(scope="module")
def big(shared_mcp):
    raw = big_message()
    name = mailbox_with(shared_mcp, [raw], prefix="large")
    c = connect(shared_mcp)
    c.select(name, examine=True)
    yield c, raw
    c.close()


def test_a_message_above_the_multipart_threshold_round_trips(big):
    """APPEND of a 9 MiB message, then its size and whole body come back unchanged."""
    c, raw = big
    f = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])").ok().fetches()[1]
    assert int(f["RFC822.SIZE"]) == len(raw)
    assert f["BODY[]"] == raw


@pytest.mark.parametrize(
    "start, length",
    [
        (0, 64),
        (PART - 100, 200),  # across the boundary of the first two parts
        (PART, 10),
        (1000, 3 * MIB),
        (-30, 100),  # from the end: fewer octets than asked
    ],
    ids=["head", "across-parts", "second-part", "large-range", "past-the-end"],
)
def test_partial_fetch_of_the_whole_message_rfc9051_6_4_5(big, start, length):
    """BODY.PEEK[]<start.len> and BINARY.PEEK[]<start.len> return exactly those octets (fewer
    at the end of the message), echoed with the origin only."""
    c, raw = big
    if start < 0:
        start += len(raw)
    want = raw[start:start + length]
    f = c.cmd(f"FETCH 1 (BODY.PEEK[]<{start}.{length}> BINARY.PEEK[]<{start}.{length}>)").ok()
    got = f.fetches()[1]
    assert got[f"BODY[]<{start}>"] == want
    assert got[f"BINARY[]<{start}>"] == want


def test_partial_fetch_past_the_end_is_empty_rfc9051_6_4_5(shared_mcp):
    """A partial fetch that starts at or past the end of the message returns an empty
    string, and one with an origin inside returns what is left."""
    raw = simple_message("short")
    name = mailbox_with(shared_mcp, [raw], prefix="partial")
    with connect(shared_mcp) as c:
        c.select(name, examine=True)
        for start, want in [(len(raw), b""), (len(raw) + 1000, b""), (len(raw) - 2, raw[-2:])]:
            got = c.cmd(f"FETCH 1 (BODY.PEEK[]<{start}.10> BINARY.PEEK[]<{start}.10>)").ok()
            f = got.fetches()[1]
            assert f[f"BODY[]<{start}>"] == want, start
            assert f[f"BINARY[]<{start}>"] == want, start


def test_a_partial_mixed_with_sections_reads_the_same_octets(big):
    """A whole-message partial next to items that parse the message (HEADER, TEXT) gives the
    same answer as alone."""
    c, raw = big
    head_end = raw.index(b"\r\n\r\n") + 4
    f = c.cmd("FETCH 1 (BODY.PEEK[]<10.20> BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.16>)").ok()
    got = f.fetches()[1]
    assert got["BODY[]<10>"] == raw[10:30]
    assert got["BODY[HEADER]"] == raw[:head_end]
    assert got["BODY[TEXT]<0>"] == raw[head_end:head_end + 16]
