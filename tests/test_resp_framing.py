"""The RESP request framer (olivia.protocols.resp.framing), fuzzed: any
bytes are framed or refused as a protocol error, never an exception; any
command round-trips, however the stream is cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.protocols.resp.codec import command
from olivia.protocols.resp.framing import RespFramer, split_inline

LIMIT = 1 << 16


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_are_framed_or_refused_never_raised(chunks: list[bytes]) -> None:
    framer = RespFramer(LIMIT)
    for chunk in chunks:
        commands = framer.feed(chunk)
        assert all(isinstance(arg, bytes) for frame in commands for arg in frame)
        assert all(frame for frame in commands)  # an empty command is skipped
    if framer.overflowed:
        assert framer.error and framer.feed(b"*1\r\n$4\r\nPING\r\n") == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1,
                max_size=6),
       st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_every_command_round_trips_however_the_stream_is_cut(
        commands: list[list[bytes]], cuts: list[int]) -> None:
    stream = b"".join(command(*args) for args in commands)
    framer = RespFramer(LIMIT)
    framed: list[list[bytes]] = []
    position = 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        framed += framer.feed(stream[position:position + size])
        position += size
        if position >= len(stream):
            break
    assert not framer.overflowed
    assert framed == commands


def test_limits_and_malformed_headers_end_the_connection() -> None:
    for bad in (b"*x\r\n", b"*1\r\n+PING\r\n", b"*1\r\n$99999999\r\n", b"*99999999999\r\n",
                b'GET "unbalanced\r\n', b"*1\r\n$-5\r\n"):
        framer = RespFramer(LIMIT, fast=False)
        assert framer.feed(bad) == []
        assert framer.overflowed and framer.error, bad
    # hiredis takes a simple string or waits for a long bulk: what it refuses
    # here, and the bound on what it waits for (the next test), end it too.
    for bad in (b"*x\r\n", b"*1\r\n:5\r\n", b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n"):
        framer = RespFramer(LIMIT)
        framer.feed(bad)
        assert framer.overflowed and framer.error, bad
    framer = RespFramer(16)
    assert framer.feed(b"x" * 17) == [] and framer.overflowed  # an inline line over the limit


def test_inline_commands_split_as_redis_splits_them() -> None:
    framer = RespFramer(LIMIT)
    assert framer.feed(b"PING\r\n\r\nSET a b\nGET a\r\n") == [
        [b"PING"], [b"SET", b"a", b"b"], [b"GET", b"a"]]
    assert split_inline(b'SET k "a b\\r\\n\\x41"') == [b"SET", b"k", b"a b\r\nA"]
    assert split_inline(b"SET k 'it''s'") is None  # a closing quote must end the word
    assert split_inline(b"SET k 'it\\'s'") == [b"SET", b"k", b"it's"]
    assert split_inline(b'  a  ""  b ') == [b"a", b"", b"b"]


# -- the front end: any command, any arguments, a reply and never an exception ---------

_NAMES = sorted(__import__("olivia.protocols.resp.frontend", fromlist=["COMMANDS"]).COMMANDS)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*_NAMES, "HGET", "FLUSHALL"]),
       st.lists(st.one_of(st.binary(max_size=12), st.sampled_from(
           [b"EX", b"PX", b"NX", b"XX", b"GET", b"KEEPTTL", b"MATCH", b"COUNT", b"0", b"-1",
            b"10", b"3", b"AUTH", b"default", b"SETNAME", b"DOCS", b"INFO", b"COUNT"])),
           max_size=6))
def test_any_command_gets_a_reply(name: str, args: list[bytes]) -> None:
    import asyncio

    from olivia.config import Config
    from olivia.protocols.frontend import BLOCKED, Pending
    from olivia.server.lifecycle import NodeServer

    async def run() -> None:
        node = NodeServer(Config(port=0, name="fuzz"))
        await node.start()
        try:
            front = node.resp.connection("127.0.0.1:1")
            reply = front.execute([name.encode(), *args], False)
            if isinstance(reply, Pending):
                await asyncio.wait_for(asyncio.shield(reply.future), 5)
                reply = reply.reply()
            assert reply is not BLOCKED
            assert isinstance(reply, bytes) and reply[:1] in b"+-:$*%_", reply
            if name in ("HGET", "FLUSHALL"):
                assert reply.startswith(b"-ERR unknown command")
            assert b"internal error" not in reply, reply
        finally:
            await node.shutdown()

    asyncio.run(run())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1,
                max_size=6),
       st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_the_hiredis_path_and_the_pure_framer_agree(commands: list[list[bytes]],
                                                    cuts: list[int]) -> None:
    stream = b"".join(command(*args) for args in commands)
    fast, pure = RespFramer(LIMIT), RespFramer(LIMIT, fast=False)
    got_fast: list[list[bytes]] = []
    got_pure: list[list[bytes]] = []
    position = 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        got_fast += fast.feed(stream[position:position + size])
        got_pure += pure.feed(stream[position:position + size])
        position += size
        if position >= len(stream):
            break
    assert got_fast == got_pure == commands


def test_a_request_that_never_ends_is_bounded() -> None:
    for fast in (True, False):
        framer = RespFramer(1024, fast=fast)
        framer.feed(b"*1000000\r\n")
        for _ in range(400):
            framer.feed(b"$1\r\na\r\n" * 100)
        assert framer.overflowed, fast
        framer = RespFramer(1024, fast=fast)
        assert framer.feed(b"*1\r\n$2000\r\n" + b"x" * 2000 + b"\r\n") == [] and framer.overflowed
