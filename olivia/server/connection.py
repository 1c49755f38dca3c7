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
:class:`~olivia.protocols.frontend.Pending`) holds back the replies behind it,
and, as its verb says (``VerbSpec.holds``), the requests behind it: a pending
read (a GET asking peers) lets only reads run (a write must not change what
it sees), a pending barrier (a DEL) lets nothing run (a read must not see the
key meanwhile), and a write waiting for its copies (replication) holds back
nothing but the order of the replies.  Frames are executed in steps of at
most REPLY_BUDGET reply bytes, and reading pauses while the client does not
read its replies, while frames wait to run, or while too many replies are
queued: requests and replies never pile up without bound.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any

from olivia.core.registry import HOLDS_ALL, HOLDS_WRITES
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


# The phases as module constants, compared by identity: on CPython 3.11 an
# Enum member read from its class (Phase.OPEN) costs ~100 ns, and Enum's
# __hash__ is Python code, both too slow for every read from a client.
OPEN, DRAINING, STOPPING, DONE = Phase.OPEN, Phase.DRAINING, Phase.STOPPING, Phase.DONE
_NO_FRAMES: list[Any] = []  # shared, never changed: the empty backlog


class ConnectionState:
    """The state of one connection; ``watch`` is told of each pending reply
    (the transport calls :meth:`pending_done` when it resolves)."""

    def __init__(self, front: FrontEnd, watch: Callable[[Pending], None],
                 max_output: int = 64 << 20) -> None:
        self.front = front
        # Reply bytes waiting behind a pending reply at most (max_client_output_bytes);
        # the transport's own buffer pauses us at its high-water mark.
        self._max_output = max_output
        self._queued_bytes = 0
        self._run = front.run
        self._framer = front.framer
        self._feed = front.framer.feed
        self._watch = watch
        self._frames: list[Any] = _NO_FRAMES  # received, not yet executed, from _next on
        self._next = 0
        self._queue: deque[bytes | Pending] = deque()  # replies behind a pending one
        self._pending_reads = 0  # pending replies that hold later writes back
        self._pending_barriers = 0  # pending replies that hold everything back
        self._blocked = False  # the next frame waits for those replies
        self.write_paused = False  # the client does not read its replies (pause_writing)
        self.phase = OPEN
        #: Whether the transport should read from the client now (kept up to
        #: date by every change below, so it is an attribute, not a call).
        self.wants_reading = True

    # -- what happens to the connection ------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.phase is not OPEN:
            return  # discarded: nothing more will be executed
        frames = self._feed(data)
        if self._next < len(self._frames):
            self._frames = self._frames[self._next:] + frames
            self._next = 0
        else:
            self._frames, self._next = frames, 0

    def receive_eof(self) -> None:
        """The client sent all it will send (a half-closed client still gets
        the replies to what it sent)."""
        if self.phase is OPEN:
            self.phase = DRAINING

    def shutdown(self) -> None:
        """Read nothing more; finish what was received."""
        self.receive_eof()

    def pause_writing(self, paused: bool) -> None:
        """The transport's buffer is full (the client does not read), or drained."""
        self.write_paused = paused
        self.wants_reading = not (paused or self._next < len(self._frames) or self._full())

    def _full(self) -> bool:
        return (len(self._queue) >= MAX_QUEUED_REPLIES
                or self._queued_bytes >= self._max_output)

    def _enqueue(self, reply: bytes) -> None:
        """A ready reply that has to wait behind a pending one."""
        self._queue.append(reply)
        self._queued_bytes += len(reply)

    def pending_done(self, holds: int) -> None:
        """A pending reply that held back ``holds`` has resolved."""
        if holds == HOLDS_WRITES:
            self._pending_reads -= 1
        elif holds == HOLDS_ALL:
            self._pending_barriers -= 1
        self._blocked = False

    def abandon(self) -> list[Pending]:
        """The connection is gone: the pending replies nobody will read."""
        pending = [reply for reply in self._queue if isinstance(reply, Pending)]
        self._queue.clear()
        self._queued_bytes = 0
        self._frames, self._next = _NO_FRAMES, 0
        self.phase = DONE
        return pending

    # -- what the transport asks ---------------------------------------------------

    @property
    def has_queue(self) -> bool:
        """Replies wait behind a pending one."""
        return bool(self._queue)

    def step(self) -> tuple[bytes, bool]:
        """One round: execute received frames up to REPLY_BUDGET bytes of
        replies.  Returns the bytes to write now, and whether another round
        could run at once (the transport writes first, so that a client that
        does not read pauses us before the next round).

        The server's path for every read from a client, so written out flat:
        one call here and one into the front end per round.
        """
        out: list[bytes] = []
        queue = self._queue
        if queue:
            self._flush(out)  # replies that resolved since: they may free the queue
        frames = self._frames
        index = self._next
        end = len(frames)
        phase = self.phase
        if (index < end and (phase is OPEN or phase is DRAINING) and not self.write_paused
                and not self._blocked and not self._full()):
            if self._pending_barriers:
                self._blocked = True  # nothing may overtake a pending barrier
            else:
                # Replies go out at once until one has to wait; from then on,
                # and when something already waits, to the queue behind it.
                append = self._enqueue if queue else out.append
                reads_only = self._pending_reads > 0
                budget = REPLY_BUDGET
                while index < end and budget > 0:
                    # The front end runs the frames whose replies are ready
                    # bytes; it stops at the first reply that is anything else.
                    index, budget, reply = self._run(frames, index, budget, reads_only, append)
                    if reply is None:
                        break
                    if reply is BLOCKED:
                        self._blocked = True
                        break
                    if type(reply) is Final:
                        append(bytes(reply))
                        self.phase = STOPPING
                        break
                    self._watch(reply)
                    queue.append(reply)
                    append = self._enqueue
                    holds = reply.holds
                    if holds == HOLDS_WRITES:
                        self._pending_reads += 1
                        reads_only = True
                    elif holds == HOLDS_ALL:
                        self._pending_barriers += 1
                        self._blocked = True  # nothing may overtake it
                        break
                self._next = index
        more = index < end
        if not more:
            if frames:
                self._frames, self._next = _NO_FRAMES, 0
            if self._framer.overflowed and self.phase in (OPEN, DRAINING):
                self._enqueue(self.front.overflow_reply())
                self.phase = STOPPING
        elif self.phase is STOPPING:
            self._frames, self._next = _NO_FRAMES, 0
            more = False
        if queue:
            self._flush(out)
        if self.phase is not OPEN and not queue and (self.phase is STOPPING or (
                self.phase is DRAINING and not more)):
            self.phase = DONE
        full = self._full()
        self.wants_reading = not (self.write_paused or more or full)
        return (b"".join(out) if len(out) != 1 else out[0]), (
            more and not self._blocked and not self.write_paused and not full)

    def _flush(self, out: list[bytes]) -> None:
        """Move the queued replies that are ready, in order, to ``out``."""
        queue = self._queue
        while queue:
            head = queue[0]
            if type(head) is bytes:
                out.append(head)
                queue.popleft()
                self._queued_bytes -= len(head)
                continue
            assert isinstance(head, Pending)
            if not head.future.done():
                break  # pending_done + step again when it resolves
            queue.popleft()
            reply = head.reply()
            out.append(reply)
            if type(reply) is Final:  # e.g. a peer handshake that failed late
                self.phase = STOPPING
