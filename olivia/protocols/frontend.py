"""What every front end (the line protocol, RESP) gives the connection state.

A front end turns one frame (a request line, a RESP command) into its reply,
through the command core.  The connection state
(:class:`olivia.server.connection.ConnectionState`) only orders the replies,
so its contract with a front end is small:

* :meth:`FrontEnd.execute` returns the reply bytes, or
* :data:`NO_REPLY` for a frame that gets none (an empty line), or
* a :class:`Pending` reply (one that waits on peers), or
* :data:`BLOCKED` when asked to run only reads (earlier replies still wait
  on peers) and the frame is a write: nothing was done, ask again later, or
* a :class:`Final` reply: the last one on this connection (QUIT, or a peer
  that broke the dialect); the state then closes once everything is written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

from olivia.core.errors import InternalError, ProtocolError
from olivia.observe.latency import Latencies

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error; the request may not have been carried out (see the node's log)"


class Final(bytes):
    """The last reply of a connection."""


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


BLOCKED: Any = _Blocked()
NO_REPLY = b""


class Pending:
    """A reply that waits on a future; ``finish`` turns its outcome (the
    future itself, done) into the reply bytes, errors included.  ``holds``
    says what it holds back meanwhile (olivia.core.registry: HOLDS_NOTHING,
    HOLDS_WRITES, HOLDS_ALL)."""

    __slots__ = ("finish", "future", "holds")

    def __init__(self, future: asyncio.Future[Any],
                 finish: Callable[[asyncio.Future[Any]], bytes], holds: int) -> None:
        self.future = future
        self.finish = finish
        self.holds = holds

    def reply(self) -> bytes:
        return self.finish(self.future)


def timed(latencies: Latencies, port: str, verb: str, began: float, outcome: object) -> None:
    """Put the time since ``began`` in ``verb``'s histogram, now or, for an
    outcome that waits (a future, a Pending reply), once it is done."""
    future = outcome.future if type(outcome) is Pending else outcome
    if isinstance(future, asyncio.Future):
        future.add_done_callback(
            lambda _: latencies.observe(port, verb, perf_counter() - began))
    elif outcome is not None:  # None: the fast path declined it
        latencies.observe(port, verb, perf_counter() - began)


class Framer(Protocol):
    """Cuts a byte stream into frames, never holding more than a bound."""

    overflowed: bool

    def feed(self, data: bytes) -> list[Any]: ...


class FrontEnd(Protocol):
    """One connection's protocol over the command core."""

    @property
    def framer(self) -> Framer: ...

    def execute(self, frame: Any, reads_only: bool) -> Any:
        """The reply to ``frame``: bytes, NO_REPLY, a Pending, a Final, or BLOCKED."""

    def run(self, frames: list[Any], index: int, budget: int, reads_only: bool,
            out: Callable[[bytes], object]) -> tuple[int, int, Any]:
        """Execute ``frames`` from ``index`` while the replies are plain bytes,
        passing each to ``out``, until ``budget`` bytes of replies or the end;
        stop at the first other reply.  Returns (the next frame's index, the
        budget left, that other reply or None).  A BLOCKED frame is not
        consumed; any other is.

        One call is one batch: nothing else runs between its frames, so
        their writes share one version stamp (olivia.core.keyspace).  It is
        the server's hot loop: a front end runs it itself, so that a request
        costs one call into the front end's handler, not two.
        """

    def overflow_reply(self) -> bytes:
        """The reply sent before hanging up on a frame over the size limit."""


class FrameByFrame:
    """``run`` over ``execute``, for front ends with no hot loop of their own
    (and no batch stamps to drop)."""

    def execute(self, frame: Any, reads_only: bool) -> Any:
        raise NotImplementedError

    def run(self, frames: list[Any], index: int, budget: int, reads_only: bool,
            out: Callable[[bytes], object]) -> tuple[int, int, Any]:
        end = len(frames)
        while index < end and budget > 0:
            reply = self.execute(frames[index], reads_only)
            if type(reply) is not bytes:
                return (index if reply is BLOCKED else index + 1), budget, reply
            index += 1
            if reply:
                out(reply)
                budget -= len(reply)
        return index, budget, None


def result_of(future: asyncio.Future[Any]) -> Any:
    """A pending reply's result; a lost one (cancelled, or a bug) becomes a
    ProtocolError the client can be told of."""
    if future.cancelled():
        raise InternalError(INTERNAL_ERROR)
    exc = future.exception()
    if exc is None:
        return future.result()
    if isinstance(exc, ProtocolError):
        raise exc
    log.error("internal error in a pending reply: %r", exc)
    raise InternalError(INTERNAL_ERROR)


def is_loopback(peer: str) -> bool:
    """Whether ``host:port`` is on this machine's loopback (127.0.0.0/8, ::1)."""
    host = peer.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
