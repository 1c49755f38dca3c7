"""The sans-IO connection state: replies in request order, pending replies,
what may overtake what, phases and backpressure, with a fake front end and
futures on a real event loop (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from olivia.core.registry import HOLDS_ALL, HOLDS_WRITES
from olivia.protocols.frontend import BLOCKED, NO_REPLY, Final, FrameByFrame, Pending
from olivia.protocols.line.framing import LineFramer
from olivia.server.connection import MAX_QUEUED_REPLIES, REPLY_BUDGET, ConnectionState, Phase


class FakeFront(FrameByFrame):
    """Frames are lines: ``r:x`` a read answered ``x``, ``w:x`` a write,
    ``pr:n`` / ``pw:n`` a read / write that waits on future n, ``q`` QUIT,
    an empty line no reply."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.framer = LineFramer(20)
        self.futures: dict[bytes, asyncio.Future[bytes]] = {}
        self.executed: list[bytes] = []
        self._loop = loop

    def execute(self, frame: bytes, reads_only: bool) -> Any:
        kind, _, arg = frame.partition(b":")
        if reads_only and kind in (b"w", b"pw"):
            return BLOCKED
        self.executed.append(frame)
        if not frame:
            return NO_REPLY
        if kind == b"q":
            return Final(b"bye\n")
        if kind in (b"pr", b"pw"):
            future = self.futures[arg] = self._loop.create_future()
            return Pending(future, lambda f: f.result(),
                           HOLDS_ALL if kind == b"pw" else HOLDS_WRITES)
        return arg + b"\n"

    def overflow_reply(self) -> bytes:
        return b"too long\n"


def phase(state: ConnectionState) -> Phase:
    return state.phase  # a call, so that the type checker does not narrow it


def pump(state: ConnectionState) -> bytes:
    """What the transport does: step while another round may run (and the
    client reads), collecting what it would write."""
    out = []
    more = True
    while more:
        data, more = state.step()
        out.append(data)
        more = more and not state.write_paused
    return b"".join(out)


def queued(state: ConnectionState) -> bool:
    return state.has_queue


def make() -> tuple[ConnectionState, FakeFront, list[Pending]]:
    front = FakeFront(asyncio.get_running_loop())
    watched: list[Pending] = []
    return ConnectionState(front, watched.append), front, watched


def resolve(state: ConnectionState, front: FakeFront, watched: list[Pending],
            name: bytes, reply: bytes) -> None:
    front.futures[name].set_result(reply)
    for pending in watched:
        if pending.future is front.futures[name]:
            state.pending_done(pending.holds)


@pytest.mark.asyncio
async def test_replies_come_in_request_order_behind_a_pending_one() -> None:
    state, front, watched = make()
    state.receive_data(b"r:a\npr:1\nr:b\n\nr:c\n")
    assert pump(state) == b"a\n"  # b and c wait behind the pending reply
    assert front.executed == [b"r:a", b"pr:1", b"r:b", b"", b"r:c"]  # reads ran meanwhile
    assert len(watched) == 1 and queued(state)
    resolve(state, front, watched, b"1", b"one\n")
    assert pump(state) == b"one\nb\nc\n"
    assert not queued(state)


@pytest.mark.asyncio
async def test_a_write_never_overtakes_a_pending_reply_nor_anything_a_pending_write() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\nw:x\nr:y\n")
    assert pump(state) == b""
    assert front.executed == [b"pr:1"]  # the write waits, and the read behind it too
    assert not state.wants_reading  # frames wait to run: read nothing more
    resolve(state, front, watched, b"1", b"one\n")
    assert pump(state) == b"one\nx\ny\n"
    state.receive_data(b"pw:2\nr:z\n")
    assert pump(state) == b""
    assert front.executed[-1] == b"pw:2"  # a read must not overtake a pending write
    resolve(state, front, watched, b"2", b"two\n")
    assert pump(state) == b"two\nz\n"


@pytest.mark.asyncio
async def test_quit_is_the_last_reply_and_later_frames_are_dropped() -> None:
    state, front, _ = make()
    state.receive_data(b"r:a\nq\nr:never\n")
    assert pump(state) == b"a\nbye\n"
    assert phase(state) is Phase.DONE and b"r:never" not in front.executed
    state.receive_data(b"r:after\n")
    assert pump(state) == b"" and b"r:after" not in front.executed


@pytest.mark.asyncio
async def test_eof_answers_what_was_sent_then_finishes() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\nr:b\n")
    state.receive_eof()
    assert pump(state) == b"" and phase(state) is Phase.DRAINING
    resolve(state, front, watched, b"1", b"one\n")
    assert pump(state) == b"one\nb\n" and phase(state) is Phase.DONE


@pytest.mark.asyncio
async def test_an_oversized_frame_gets_its_reply_and_stops_the_connection() -> None:
    state, _, _ = make()
    state.receive_data(b"r:ok\n" + b"x" * 30)
    assert pump(state) == b"ok\ntoo long\n"
    assert phase(state) is Phase.DONE


@pytest.mark.asyncio
async def test_a_client_that_does_not_read_is_not_read_from() -> None:
    state, front, _ = make()
    state.pause_writing(True)
    state.receive_data(b"r:a\nr:b\n")
    assert pump(state) == b"" and not state.wants_reading and front.executed == []
    state.pause_writing(False)
    assert pump(state) == b"a\nb\n" and state.wants_reading


@pytest.mark.asyncio
async def test_the_reply_queue_is_bounded() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\n" + b"r:x\n" * MAX_QUEUED_REPLIES)
    pump(state)  # one step runs up to REPLY_BUDGET bytes of replies
    assert not state.wants_reading  # then nothing more is read...
    state.receive_data(b"r:later\n")
    pump(state)
    assert b"r:later" not in front.executed  # ...or executed, until the queue drains
    resolve(state, front, watched, b"1", b"one\n")
    assert pump(state).count(b"\n") == MAX_QUEUED_REPLIES + 2
    assert front.executed[-1] == b"r:later" and state.wants_reading


@pytest.mark.asyncio
async def test_abandoning_returns_the_pending_replies() -> None:
    state, _, _ = make()
    state.receive_data(b"pr:1\npr:2\n")
    pump(state)
    pending = state.abandon()
    assert len(pending) == 2 and phase(state) is Phase.DONE
    for reply in pending:
        reply.future.cancel()


@pytest.mark.asyncio
async def test_one_step_makes_at_most_a_budget_of_replies() -> None:
    state, front, _ = make()
    reply = b"r:" + b"x" * 16  # 17-byte replies, LF included
    state.receive_data((reply + b"\n") * 10)
    front.framer.max_line_bytes = 1 << 20
    state.receive_data((reply + b"\n") * (REPLY_BUDGET // 17 + 100))
    data, more = state.step()
    assert REPLY_BUDGET <= len(data) < REPLY_BUDGET + 17 and more
    state.pause_writing(True)  # the transport's buffer filled up: no more rounds
    assert not state.wants_reading
    data, more = state.step()
    assert data == b"" and not more
    state.pause_writing(False)
    assert len(pump(state)) > 0 and state.wants_reading
