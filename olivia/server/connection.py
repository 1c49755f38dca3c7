"""One connection's state, sans I/O: bytes in, replies out, in request order.

Everything that affects a connection's life lives here, as h11 keeps its
state machine in one place; the asyncio transport
(:mod:`olivia.server.transport`) only moves bytes and applies what this says
about reading.  The protocol (line, RESP) is a front end
(:mod:`olivia.protocols.frontend`): this class never looks inside a frame.

Phases::

    OPEN --eof / shutdown--> DRAINING --backlog answered, all written--> DONE
      |                                                                 ^
      +--QUIT / oversized frame / broken peer--> STOPPING --all written-+

* OPEN: frames are read and executed.
* DRAINING: no more input (the client half-closed, or the server is shutting
  down); what was received is still answered.
* STOPPING: nothing more is executed; the replies already made are written.
* DONE: everything is written; the transport closes.

Replies come in request order.  A reply that waits on peers (a
:class:`~olivia.protocols.frontend.Pending`) holds back the ones behind it.
While one waits, only reads may run (a write must not overtake it), and
nothing at all runs while a pending *write* waits (a read must not overtake a
DEL).  Frames are executed in steps of at most REPLY_BUDGET reply bytes, and
reading pauses while the client does not read its replies, while frames wait
to run, or while too many replies are queued: requests and replies never
pile up without bound.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any

from olivia.protocols.frontend import BLOCKED, Final, FrontEnd, Pending

# Execute at most this many reply bytes before writing and checking whether
# the client keeps up; bounds memory per connection for huge pipelines.
REPLY_BUDGET = 1 << 20
# Unwritten replies per connection (waiting behind a pending one) at most.
MAX_QUEUED_REPLIES = 10_000


class Phase(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"
    STOPPING = "stopping"
    DONE = "done"


class ConnectionState:
    """The state of one connection; ``watch`` is told of each pending reply
    (the transport calls :meth:`pending_done` when it resolves)."""

    def __init__(self, front: FrontEnd, watch: Callable[[Pending], None]) -> None:
        self.front = front
        self._execute = front.execute
        self._watch = watch
        self._frames: list[Any] = []  # received, not yet executed, from _next on
        self._next = 0
        self._queue: deque[bytes | Pending] = deque()  # replies behind a pending one
        self._pending = 0  # replies waiting on peers
        self._pending_writes = 0  # of which writes
        self._blocked = False  # the next frame waits for those replies
        self.write_paused = False  # the client does not read its replies
        self.phase = Phase.OPEN

    # -- what happens to the connection ------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.phase is not Phase.OPEN:
            return  # discarded: nothing more will be executed
        frames = self.front.framer.feed(data)
        if self._next < len(self._frames):
            self._frames = self._frames[self._next:] + frames
            self._next = 0
        else:
            self._frames, self._next = frames, 0

    def receive_eof(self) -> None:
        """The client sent all it will send (a half-closed client still gets
        the replies to what it sent)."""
        if self.phase is Phase.OPEN:
            self.phase = Phase.DRAINING

    def shutdown(self) -> None:
        """Read nothing more; finish what was received."""
        self.receive_eof()

    def pending_done(self, pending: Pending) -> None:
        self._pending -= 1
        self._pending_writes -= pending.is_write
        self._blocked = False

    def abandon(self) -> list[Pending]:
        """The connection is gone: the pending replies nobody will read."""
        pending = [reply for reply in self._queue if isinstance(reply, Pending)]
        self._queue.clear()
        self._frames, self._next = [], 0
        self.phase = Phase.DONE
        return pending

    # -- what the transport asks ---------------------------------------------------

    @property
    def wants_reading(self) -> bool:
        return not (self.write_paused or self._next < len(self._frames)
                    or len(self._queue) >= MAX_QUEUED_REPLIES)

    @property
    def has_queue(self) -> bool:
        """Replies wait behind a pending one (the transport then re-checks reading)."""
        return bool(self._queue)

    def step(self) -> bytes:
        """Execute received frames while allowed; the bytes to write now."""
        out: list[bytes] = []
        self._flush(out)  # replies that resolved since: they may free the queue
        while self._next < len(self._frames) and self._may_execute():
            self._execute_some(out)
        if self._next >= len(self._frames):
            self._frames, self._next = [], 0
            if self.front.framer.overflowed and self.phase in (Phase.OPEN, Phase.DRAINING):
                self._queue.append(self.front.overflow_reply())
                self.phase = Phase.STOPPING
        elif self.phase is Phase.STOPPING:
            self._frames, self._next = [], 0
        self._flush(out)
        if not self._queue and (self.phase is Phase.STOPPING or (
                self.phase is Phase.DRAINING and self._next >= len(self._frames))):
            self.phase = Phase.DONE
        return b"".join(out) if len(out) != 1 else out[0]

    def _may_execute(self) -> bool:
        return (self.phase in (Phase.OPEN, Phase.DRAINING) and not self.write_paused
                and not self._blocked and len(self._queue) < MAX_QUEUED_REPLIES)

    def _execute_some(self, out: list[bytes]) -> None:
        """Execute frames until REPLY_BUDGET bytes of replies, a pending reply
        that holds the rest, or the end of the backlog.

        The hot loop of the server: kept flat, one front-end call a frame.
        """
        queue = self._queue
        # Replies go out at once until one has to wait; from then on, and
        # when something already waits, to the queue behind it.
        append = queue.append if queue else out.append
        execute = self._execute
        frames, index, end = self._frames, self._next, len(self._frames)
        budget = REPLY_BUDGET
        start = index
        while index < end and budget > 0:
            if self._pending_writes:
                self._blocked = True  # nothing may overtake a pending write
                break
            reply = execute(frames[index], self._pending > 0)
            if type(reply) is bytes:  # the usual case (b"": an empty line, no reply)
                index += 1
                if reply:
                    append(reply)
                    budget -= len(reply)
                continue
            if reply is BLOCKED:
                self._blocked = True
                break
            index += 1
            if type(reply) is Final:
                append(bytes(reply))
                self.phase = Phase.STOPPING
                break
            self._pending += 1
            self._pending_writes += reply.is_write
            self._watch(reply)
            queue.append(reply)
            append = queue.append
        self.front.end_batch(index - start)
        self._next = index

    def _flush(self, out: list[bytes]) -> None:
        """Move the queued replies that are ready, in order, to ``out``."""
        queue = self._queue
        while queue:
            head = queue[0]
            if type(head) is bytes:
                out.append(head)
                queue.popleft()
                continue
            assert isinstance(head, Pending)
            if not head.future.done():
                break  # pending_done + step again when it resolves
            queue.popleft()
            out.append(head.reply())
