"""The sans-IO connection state: replies in request order, pending replies,
what may overtake what, phases and backpressure, with a fake front end and
futures on a real event loop (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from olivia.protocols.frontend import BLOCKED, NO_REPLY, Final, Pending
from olivia.protocols.line.framing import LineFramer
from olivia.server.connection import MAX_QUEUED_REPLIES, ConnectionState, Phase


class FakeFront:
    """Frames are lines: ``r:x`` a read answered ``x``, ``w:x`` a write,
    ``pr:n`` / ``pw:n`` a read / write that waits on future n, ``q`` QUIT,
    an empty line no reply."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.framer = LineFramer(20)
        self.futures: dict[bytes, asyncio.Future[bytes]] = {}
        self.executed: list[bytes] = []
        self.batches: list[int] = []
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
            return Pending(future, lambda f: f.result(), kind == b"pw")
        return arg + b"\n"

    def end_batch(self, executed: int) -> None:
        self.batches.append(executed)

    def overflow_reply(self) -> bytes:
        return b"too long\n"


def phase(state: ConnectionState) -> Phase:
    return state.phase  # a call, so that the type checker does not narrow it


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
            state.pending_done(pending)


@pytest.mark.asyncio
async def test_replies_come_in_request_order_behind_a_pending_one() -> None:
    state, front, watched = make()
    state.receive_data(b"r:a\npr:1\nr:b\n\nr:c\n")
    assert state.step() == b"a\n"  # b and c wait behind the pending reply
    assert front.executed == [b"r:a", b"pr:1", b"r:b", b"", b"r:c"]  # reads ran meanwhile
    assert len(watched) == 1 and queued(state)
    resolve(state, front, watched, b"1", b"one\n")
    assert state.step() == b"one\nb\nc\n"
    assert not queued(state) and front.batches == [5]


@pytest.mark.asyncio
async def test_a_write_never_overtakes_a_pending_reply_nor_anything_a_pending_write() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\nw:x\nr:y\n")
    assert state.step() == b""
    assert front.executed == [b"pr:1"]  # the write waits, and the read behind it too
    assert not state.wants_reading  # frames wait to run: read nothing more
    resolve(state, front, watched, b"1", b"one\n")
    assert state.step() == b"one\nx\ny\n"
    state.receive_data(b"pw:2\nr:z\n")
    assert state.step() == b""
    assert front.executed[-1] == b"pw:2"  # a read must not overtake a pending write
    resolve(state, front, watched, b"2", b"two\n")
    assert state.step() == b"two\nz\n"


@pytest.mark.asyncio
async def test_quit_is_the_last_reply_and_later_frames_are_dropped() -> None:
    state, front, _ = make()
    state.receive_data(b"r:a\nq\nr:never\n")
    assert state.step() == b"a\nbye\n"
    assert phase(state) is Phase.DONE and b"r:never" not in front.executed
    state.receive_data(b"r:after\n")
    assert state.step() == b"" and b"r:after" not in front.executed


@pytest.mark.asyncio
async def test_eof_answers_what_was_sent_then_finishes() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\nr:b\n")
    state.receive_eof()
    assert state.step() == b"" and phase(state) is Phase.DRAINING
    resolve(state, front, watched, b"1", b"one\n")
    assert state.step() == b"one\nb\n" and phase(state) is Phase.DONE


@pytest.mark.asyncio
async def test_an_oversized_frame_gets_its_reply_and_stops_the_connection() -> None:
    state, _, _ = make()
    state.receive_data(b"r:ok\n" + b"x" * 30)
    assert state.step() == b"ok\ntoo long\n"
    assert phase(state) is Phase.DONE


@pytest.mark.asyncio
async def test_a_client_that_does_not_read_is_not_read_from() -> None:
    state, front, _ = make()
    state.write_paused = True
    state.receive_data(b"r:a\nr:b\n")
    assert state.step() == b"" and not state.wants_reading and front.executed == []
    state.write_paused = False
    assert state.step() == b"a\nb\n" and state.wants_reading


@pytest.mark.asyncio
async def test_the_reply_queue_is_bounded() -> None:
    state, front, watched = make()
    state.receive_data(b"pr:1\n" + b"r:x\n" * MAX_QUEUED_REPLIES)
    state.step()  # one step runs up to REPLY_BUDGET bytes of replies
    assert not state.wants_reading  # then nothing more is read...
    state.receive_data(b"r:later\n")
    state.step()
    assert b"r:later" not in front.executed  # ...or executed, until the queue drains
    resolve(state, front, watched, b"1", b"one\n")
    assert state.step().count(b"\n") == MAX_QUEUED_REPLIES + 2
    assert front.executed[-1] == b"r:later" and state.wants_reading


@pytest.mark.asyncio
async def test_abandoning_returns_the_pending_replies() -> None:
    state, _, _ = make()
    state.receive_data(b"pr:1\npr:2\n")
    state.step()
    pending = state.abandon()
    assert len(pending) == 2 and phase(state) is Phase.DONE
    for reply in pending:
        reply.future.cancel()
