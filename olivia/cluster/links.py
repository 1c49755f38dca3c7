"""Our outgoing connection to one peer: many tagged requests in flight.

A :class:`PeerLink` is the client side of the peer dialect.  Requests are
tagged with a per-link counter and written at once; replies are matched to
their requests by tag, in whatever order they come (in practice, request
order).  The same framer and reply parser as every other client
(olivia.protocols.line).

A peer that answers with garbage, with a tag nobody asked for, or that stops
reading (our write buffer grows past a bound) is dropped: the link closes and
every request still waiting fails with :class:`PeerUnavailableError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from ssl import SSLContext
from typing import cast

from olivia.core.errors import OliviaError, ProtocolError
from olivia.protocols.line.framing import LineFramer
from olivia.protocols.line.replies import ReplyLine, parse_reply

#: Builds a request line for a tag: ``lambda tag: lookup_line(keys, tag)``.
LineMaker = Callable[[bytes], bytes]

log = logging.getLogger(__name__)

# A peer that lets this much of our output pile up has stopped reading.
MAX_WRITE_BUFFER = 32 << 20


class PeerUnavailableError(OliviaError):
    """The link to the peer is closed, or closed while we waited."""


class PeerTimeoutError(OliviaError):
    """The peer did not answer in time."""


class PeerLink(asyncio.Protocol):
    """The client end of one connection to a peer."""

    def __init__(self, label: str, max_line_bytes: int,
                 on_lost: Callable[[PeerLink], None] | None = None) -> None:
        self.label = label  # for logs: the peer's name or address
        self._framer = LineFramer(max_line_bytes)
        self._transport: asyncio.Transport | None = None
        self._pending: dict[bytes, asyncio.Future[ReplyLine]] = {}
        self._next_tag = 0
        self._on_lost = on_lost
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int, label: str, max_line_bytes: int,
                   timeout: float, on_lost: Callable[[PeerLink], None] | None = None,
                   ssl: SSLContext | None = None) -> PeerLink:
        """Connect (over TLS with ``ssl``); raises PeerUnavailableError if the
        peer cannot be reached or its certificate is refused."""
        loop = asyncio.get_running_loop()
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(lambda: cls(label, max_line_bytes, on_lost), host, port,
                                       ssl=ssl), timeout)
        except (OSError, TimeoutError) as exc:
            raise PeerUnavailableError(f"cannot connect to {host}:{port}: {exc}") from None
        return link

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(PeerUnavailableError(f"link to {self.label} closed"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        lines = self._framer.feed(data)
        if self._framer.overflowed:
            self._drop("sent a reply line over the limit")
            return
        for line in lines:
            if not line:
                continue
            try:
                reply = parse_reply(line)
            except ProtocolError as exc:
                self._drop(f"sent an unreadable reply ({exc.message})")
                return
            future = self._pending.pop(reply.tag, None)
            if future is None and self._was_issued(reply.tag):
                log.debug("late reply from %s to a request that timed out", self.label)
                continue
            if future is None:
                if reply.is_error and not reply.tag:
                    # e.g. "max clients reached", sent before closing on us
                    log.warning("peer %s: %s", self.label, reply.payload.decode("utf-8", "replace"))
                    continue
                self._drop(f"answered a request never made (tag {reply.tag!r})")
                return
            if not future.done():
                future.set_result(reply)

    # -- requests -----------------------------------------------------------

    async def request(self, make_line: LineMaker, timeout: float) -> ReplyLine:
        """Send one request (``make_line(tag)``) and wait for its reply.

        An ``ERR`` reply is raised as its typed exception; a closed link as
        PeerUnavailableError; no answer in ``timeout`` as PeerTimeoutError.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            raise PeerUnavailableError(f"link to {self.label} is closed")
        self._next_tag += 1
        tag = b"%x" % self._next_tag
        future: asyncio.Future[ReplyLine] = asyncio.get_running_loop().create_future()
        self._pending[tag] = future
        transport.write(make_line(tag))
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self._drop("stopped reading (our requests piled up)")
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise PeerTimeoutError(f"{self.label} did not answer in {timeout:.2f}s") from None
        finally:
            self._pending.pop(tag, None)
        if reply.is_error:
            raise reply.error()
        return reply

    def _was_issued(self, tag: bytes) -> bool:
        """True for a tag of ours whose request already gave up waiting."""
        try:
            return 0 < int(tag, 16) <= self._next_tag
        except ValueError:
            return False

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _drop(self, why: str) -> None:
        log.warning("dropping link to %s: it %s", self.label, why)
        if self._transport is not None:
            self._transport.abort()
