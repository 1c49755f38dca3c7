"""The line protocol as a front end: request lines in, reply lines out,
through the command core (see olivia.protocols.frontend for the contract).

:class:`LineProtocol` holds what all connections share (the parser over the
registry, the fast path); :meth:`LineProtocol.connection` makes the
per-connection :class:`LineFrontEnd` (its framer, and whether the other side
turned out to be a peer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from olivia.core.errors import BadItemError, DeniedError, ErrorCode, ProtocolError
from olivia.core.keyspace import Keyspace
from olivia.core.registry import Registry
from olivia.core.requests import Admitted, Bye, Payload, Request
from olivia.core.session import Guard, Session
from olivia.observe.latency import TIME_EVERY
from olivia.observe.stats import Stats
from olivia.protocols.frontend import (
    BLOCKED,
    INTERNAL_ERROR,
    NO_REPLY,
    Final,
    Pending,
    is_loopback,
    result_of,
    timed,
)
from olivia.protocols.line.fastpath import FastPath
from olivia.protocols.line.framing import LineFramer
from olivia.protocols.line.parser import LineParser
from olivia.protocols.line.replies import encode_result, error_line, line_too_long

log = logging.getLogger(__name__)

_NO_FAST: dict[bytes, Any] = {}


class LineProtocol:
    """The line protocol of one node: shared by all its line connections."""

    def __init__(self, registry: Registry, keyspace: Keyspace, stats: Stats,
                 max_line_bytes: int, max_peer_line_bytes: int, fast_path: bool = True,
                 guard: Guard | None = None) -> None:
        self.registry = registry
        self.guard = guard if guard is not None else Guard("", False, stats)
        self.parser = LineParser(registry)
        self.keyspace = keyspace
        self.stats = stats
        self.max_line_bytes = max_line_bytes
        self.max_peer_line_bytes = max_peer_line_bytes
        self.fast = FastPath(keyspace, pending_bytes, acked_reply)
        self.fast_handlers = self.fast.handlers if fast_path else {}

    def connection(self, peer: str = "?", tls_verified: bool = False) -> LineFrontEnd:
        return LineFrontEnd(self, self.guard.session(peer, is_loopback(peer), tls_verified))

    def execute_forwarded(self, line: bytes) -> Payload | asyncio.Future[Payload]:
        """REQUEST EXEC: a client line another node forwarded to this one, the
        keys' home, carried out here (``VerbSpec.here``: never forwarded on).
        The answer holds the client reply line, errors included, so that an
        error of the request is not one of the peer link."""
        try:
            parsed = self.parser.parse(line)
            if parsed is None:
                raise BadItemError("REQUEST EXEC needs a request line")
            _, request = parsed
            here = request.verb.here
            if here is None:
                raise BadItemError(f"REQUEST EXEC takes a read-modify-write verb, not "
                                   f"{request.verb.name}")
            outcome = here(request.items)
        except ProtocolError as exc:
            return Payload(error_line(exc.message)[:-1])
        if isinstance(outcome, Awaitable):
            return asyncio.ensure_future(self._forwarded_reply(request, outcome))
        return Payload(encode_result(request, outcome)[:-1])

    async def _forwarded_reply(self, request: Request, outcome: Awaitable[Any]) -> Payload:
        try:
            result = await outcome
        except ProtocolError as exc:
            return Payload(error_line(exc.message)[:-1])
        return Payload(encode_result(request, result)[:-1])


def acked_reply(reply: bytes) -> Callable[[asyncio.Future[Any]], bytes]:
    """How a write whose reply is known is answered once its copies are stored."""
    def finish(future: asyncio.Future[Any]) -> bytes:
        try:
            result_of(future)
        except ProtocolError as exc:
            return error_line(exc.message, exc.tag)
        return reply
    return finish


def pending_bytes(future: asyncio.Future[bytes]) -> bytes:
    """The reply of a pending reply whose future holds the reply itself."""
    try:
        return result_of(future)  # type: ignore[no-any-return]
    except ProtocolError as exc:
        return error_line(exc.message, exc.tag)


class LineFrontEnd:
    """One connection's line protocol."""

    def __init__(self, protocol: LineProtocol, session: Session) -> None:
        self._protocol = protocol
        self._parse = protocol.parser.parse
        self._guard = protocol.guard
        self.session = session
        # Until the connection may use every client verb (AUTH, protected
        # mode), every line takes the general path, which checks it.
        self._fast_get = (protocol.fast_handlers if session.trusted else _NO_FAST).get
        self._keyspace = protocol.keyspace
        self._stats = protocol.stats
        self._calls = protocol.stats.calls
        self._latencies = protocol.stats.latencies
        self._reads_until_timed = 1  # a connection's first read is timed
        self.framer = LineFramer(protocol.max_line_bytes)
        self.peer = session.where  # host:port of the other end, for logs

    @property
    def peer_name(self) -> str | None:
        """The node on the other end, once it completed the peer handshake."""
        return self.session.peer_name

    def execute(self, line: bytes, reads_only: bool) -> Any:
        """The reply to one line (see run for many)."""
        replies: list[bytes] = []
        _, _, reply = self.run([line], 0, 1, reads_only, replies.append)
        if reply is not None:
            return reply
        return replies[0] if replies else NO_REPLY

    def run(self, lines: list[bytes], index: int, budget: int, reads_only: bool,
            out: Callable[[bytes], object]) -> tuple[int, int, Any]:
        """The server's hot loop (olivia.protocols.frontend.FrontEnd.run): kept
        flat, because nearly every request is one turn of it.  A line goes to
        the fast path if its verb has a handler there (only GET's may run
        while earlier replies wait), else, or if the fast path declines it,
        to the general path."""
        fast_get = self._fast_get
        end = len(lines)
        start = index
        # One read in TIME_EVERY has its first request timed (olivia.observe.latency).
        timing = self._reads_until_timed == 1
        self._reads_until_timed = TIME_EVERY if timing else self._reads_until_timed - 1
        while index < end and budget > 0:
            line = lines[index]
            verb, _, args = line.partition(b" ")
            handler = fast_get(verb)
            reply = None
            if handler is not None and (not reads_only or verb == b"GET"):
                try:
                    if not timing:
                        reply = handler(args)
                    else:
                        timing = False
                        began = perf_counter()
                        reply = handler(args)
                        timed(self._latencies, "line", verb.decode(), began, reply)
                except ProtocolError as exc:
                    reply = error_line(exc.message)
                except Exception as exc:
                    reply = self._internal_error(line, exc, b"")
            if reply is None:
                reply = self._general(line, reads_only, timing)
                timing = False
            if type(reply) is bytes:
                index += 1
                if reply:
                    out(reply)
                    budget -= len(reply)
                continue
            if reply is not BLOCKED:
                index += 1
            break
        else:
            reply = None
        # The end of the batch (written out: it runs once a read).
        self._stats.total_commands += index - start
        self._keyspace.end_batch()
        return index, budget, reply

    def _general(self, line: bytes, reads_only: bool, timing: bool = False) -> Any:
        """Anything the fast path does not take: parse, check, execute."""
        tag = b""
        began = perf_counter() if timing else 0.0
        try:
            parsed = self._parse(line)
            if parsed is None:
                return NO_REPLY
            tag, request = parsed
            spec = request.verb
            if reads_only and spec.writes:
                return BLOCKED  # it must not overtake the replies that wait
            self._calls[spec.name] += 1
            session = self.session
            if session.peer_name is None:
                self._guard.check(session, spec.name, spec.peer)
            if spec.local_only and not session.loopback:
                raise DeniedError(f"{spec.name} is accepted only from a client on this "
                                  "machine (loopback)")
            if spec.session:
                outcome = spec.handler(request.items, session)
                if session.trusted:
                    self._fast_get = self._protocol.fast_handlers.get
            else:
                outcome = spec.handler(request.items)
        except ProtocolError as exc:
            return self._error(exc, exc.tag or tag)
        except Exception as exc:
            return self._internal_error(line, exc, tag)
        if timing:
            timed(self._latencies, "line" if session.peer_name is None else "peer", spec.name,
                  began, outcome)
        if isinstance(outcome, asyncio.Future):
            return Pending(outcome, lambda future: self._finish(request, tag, future),
                           spec.holds)
        result_type = type(outcome)
        if result_type is Bye:
            return Final(encode_result(request, outcome, tag))
        if result_type is Admitted:
            self._admitted()
        return encode_result(request, outcome, tag)

    def _admitted(self) -> None:
        """A peer completed the handshake: filters it pushes may be large."""
        self.framer.max_line_bytes = self._protocol.max_peer_line_bytes
        self._fast_get = self._protocol.fast_handlers.get

    def _finish(self, request: Request, tag: bytes, future: asyncio.Future[Any]) -> bytes:
        try:
            result = result_of(future)
        except ProtocolError as exc:
            reply = error_line(exc.message, exc.tag or tag)
            return Final(reply) if exc.closes else reply
        if type(result) is Admitted:
            self._admitted()
        return encode_result(request, result, tag)

    def _error(self, exc: ProtocolError, tag: bytes) -> bytes:
        reply = error_line(exc.message, tag)
        if exc.closes:
            return Final(reply)
        if self.peer_name is not None and exc.code is not ErrorCode.FILTER_VERSION:
            # A peer must speak the dialect exactly: garbage, a bad or
            # oversized filter means a broken or hostile peer.
            log.warning("dropping peer %s (%s): it sent a bad request: %s",
                        self.peer_name, self.peer, exc.message)
            return Final(reply)
        return reply

    def _internal_error(self, line: bytes, exc: Exception, tag: bytes) -> bytes:
        """A bug must cost one request, not the node: log it, answer ERR."""
        log.error("internal error on %r from %s: %r", line[:80], self.peer, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return error_line(INTERNAL_ERROR, tag)

    def overflow_reply(self) -> bytes:
        return line_too_long(self.framer.max_line_bytes)
