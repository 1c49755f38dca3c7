"""The RESP codec, sans I/O: commands encoded, replies parsed from any
chunking, garbage refused with RespError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from olivia.protocols.resp.codec import ErrorReply, ReplyReader, RespError, command

STREAM = (b"+PONG\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhe\r\no\r\n$-1\r\n$0\r\n\r\n"
          b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n+x\r\n$-1\r\n*-1\r\n*0\r\n")
PARSED = [b"PONG", ErrorReply("ERR wrong"), 42, -7, b"he\r\no", None, b"",
          [b"a", [1, b"x"], None], None, []]


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert command(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert command(b"SET", b"a\r\nb", b"") == b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"


def test_every_reply_type_is_read() -> None:
    reader = ReplyReader()
    assert reader.feed(STREAM) == PARSED and reader.buffered == 0


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_replies_are_read_the_same_whatever_the_chunks(cuts: list[int]) -> None:
    reader = ReplyReader()
    got = []
    start = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        got += reader.feed(STREAM[start:cut])
        start = cut
    assert got == PARSED


@pytest.mark.parametrize("bad", [b"?x\r\n", b":1x\r\n", b":+1\r\n", b"$-2\r\n",
                                 b"$2\r\nabcd\r\n", b"*1\r\n" * 40 + b":1\r\n",
                                 b"+" + b"a" * 70000])
def test_garbage_is_refused(bad: bytes) -> None:
    with pytest.raises(RespError):
        ReplyReader().feed(bad)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_resp_errors(data: bytes) -> None:
    with contextlib.suppress(RespError):
        ReplyReader().feed(data)
