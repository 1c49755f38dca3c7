"""The RESP fast path (GET and SET of one key) answers exactly as the general
path does, for any key and value: the same reply bytes, the same data."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.config import Config
from olivia.protocols.frontend import Pending
from olivia.server.lifecycle import NodeServer

KEYS = st.binary(min_size=0, max_size=260)
VALUES = st.binary(max_size=64)


def _both(frames: list[list[bytes]]) -> tuple[list[bytes], list[bytes]]:
    """The replies of ``frames`` through the fast path (run) and through the
    general path alone (execute), each on a fresh node."""
    async def replies(fast: bool) -> list[bytes]:
        node = NodeServer(Config(port=0, name="fast" if fast else "general"))
        await node.start()
        try:
            front = node.resp.connection("127.0.0.1:1")
            out: list[bytes] = []
            for frame in frames:
                if fast:
                    _, _, reply = front.run([frame], 0, 1 << 20, False, out.append)
                else:
                    reply = front.execute(frame, False)
                    if isinstance(reply, bytes):
                        out.append(reply)
                        reply = None
                if isinstance(reply, Pending):
                    await reply.future
                    out.append(reply.reply())
            return out
        finally:
            await node.shutdown()
    return asyncio.run(replies(True)), asyncio.run(replies(False))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from([b"SET", b"set"]), KEYS, VALUES).map(list),
    st.tuples(st.sampled_from([b"GET", b"get"]), KEYS).map(list)), min_size=1, max_size=12))
def test_the_fast_path_answers_as_the_general_path(frames: list[list[bytes]]) -> None:
    fast, general = _both(frames)
    assert fast == general
