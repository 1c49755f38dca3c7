"""The asyncio server: bytes in, bytes out, nothing else.

:class:`ClientConnection` is an ``asyncio.Protocol``.  Each ``data_received``
chunk is cut into lines by a :class:`~olivia.protocol.LineFramer`; every
complete line is parsed and executed, and the replies of the whole chunk go
out in one ``transport.write``.  Pipelined input is therefore handled in
batches with no per-line awaits.

Replies are queued per connection in request order.  A reply is normally
bytes; a future (a reply that must wait, e.g. for a peer) holds back the
replies behind it until it resolves, so order is kept either way.

:class:`Server` owns the listener and a strong reference to every
connection; shutdown closes the listener, lets connections flush, waits up
to ``shutdown_timeout``, then aborts whatever is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import partial
from typing import Union, cast

from olivia.bloom import FilterVersionError
from olivia.config import Config
from olivia.errors import ProtocolError
from olivia.node import Node
from olivia.protocol import (
    Get,
    LineFramer,
    Ping,
    Quit,
    RequestConnect,
    error_line,
    line_too_long,
    parse_request,
)

log = logging.getLogger(__name__)

PendingReply = Union[bytes, "asyncio.Future[bytes]"]
# Execute at most this many reply bytes before writing and checking whether
# the client keeps up; bounds memory per connection for huge pipelines.
REPLY_BUDGET = 1 << 20
# How long a finished connection waits for the client's EOF before closing.
LINGER_SECONDS = 1.0
# Unwritten replies per connection (waiting behind an unresolved one) at most.
MAX_QUEUED_REPLIES = 10_000
# Commands that may run while an earlier GET still waits on peers.
_READS = (Get, Ping)
_INTERNAL_ERROR = "internal error; the request may not have been carried out (see the node's log)"


class ClientConnection(asyncio.Protocol):
    """One client (or peer) connection.

    Received lines wait in a backlog and are executed in steps of at most
    ``REPLY_BUDGET`` reply bytes.  While the transport is paused for writing
    (the client reads slower than it asks) or a backlog remains, reading is
    paused too, so neither requests nor replies pile up without bound.
    """

    def __init__(self, server: Server) -> None:
        self._server = server
        self._node = server.node
        self._framer = LineFramer(server.config.max_line_bytes)
        self._transport: asyncio.Transport | None = None
        self._lines: list[bytes] = []  # received, not yet executed, from _next on
        self._next = 0
        self._queue: deque[PendingReply] = deque()  # replies not yet written
        self._write_paused = False
        self._reading_paused = False
        self._input_done = False  # EOF or shutdown: finish the backlog, then close
        self._stopped = False  # QUIT or overflow: execute nothing more, then close
        self._eof_seen = False
        self._deferred = 0  # replies waiting on peers
        self._deferred_writes = 0  # of which writes (a DEL)
        self._blocked = False  # the next line waits for those replies
        self._finishing = False  # our side is half-closed; waiting for the client's EOF
        self._linger: asyncio.TimerHandle | None = None
        self._resume_scheduled = False
        self.peer = "?"
        self.peer_name: str | None = None  # set once the other side is a peer

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; same API.
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "?"
        if not self._server.admit(self):
            limit = self._server.config.max_clients
            self._transport.write(error_line(f"max clients reached (limit {limit})"))
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._linger is not None:
            self._linger.cancel()
        for pending in self._queue:
            if isinstance(pending, asyncio.Future):
                pending.cancel()
        self._queue.clear()
        self._lines = []
        self._server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self._input_done or self._stopped:
            return  # discarded: nothing more will be executed
        lines = self._framer.feed(data)
        if self._next < len(self._lines):
            self._lines = self._lines[self._next:] + lines
            self._next = 0
        else:
            self._lines, self._next = lines, 0
        self._pump()

    def eof_received(self) -> bool | None:
        self._eof_seen = True
        if self._finishing:
            return False  # both sides are done: let the transport close
        # A half-closed client still gets the replies to what it sent.
        self._input_done = True
        self._pump()
        return True

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._pump()

    # -- request handling ---------------------------------------------------

    def _pump(self) -> None:
        """Execute backlog lines while the client keeps up, then write."""
        transport = self._transport
        if transport is None:
            return
        while self._next < len(self._lines):
            if (self._stopped or self._write_paused or self._blocked
                    or len(self._queue) >= MAX_QUEUED_REPLIES):
                break
            ready = self._execute_some()
            if self._queue or self._stopped or self._input_done:
                self._flush(ready)
            elif ready:  # the usual case: every reply is ready, nothing to close
                transport.write(b"".join(ready) if len(ready) > 1 else ready[0])
        else:  # every line executed (also the usual case)
            self._lines, self._next = [], 0
            if self._framer.overflowed and not self._stopped:
                self._queue.append(line_too_long(self._framer.max_line_bytes))
                self._stopped = True
                self._flush([])
            elif self._stopped or self._input_done:
                self._flush([])  # nothing left to execute: close if all is written
            if self._reading_paused or self._write_paused or self._queue:
                self._update_reading()
            return
        if self._stopped:
            self._lines, self._next = [], 0
            self._flush([])
        self._update_reading()

    def _execute_some(self) -> list[bytes]:
        """Execute lines from the backlog until REPLY_BUDGET bytes of replies.

        Returns the replies that can be written at once.  Once a reply has to
        wait (a future), it and every reply after it go to the queue instead.
        """
        queue = self._queue
        ready: list[bytes] = []
        # Replies go to ``ready`` until one has to wait; from then on, and
        # when something already waits, to the queue behind it.
        append = queue.append if queue else ready.append
        execute, plain = self._node.execute, self._node.plain_handlers
        lines, index, end = self._lines, self._next, len(self._lines)
        budget = REPLY_BUDGET
        start = index
        reply: bytes | asyncio.Future[bytes] | None
        while index < end and budget > 0:
            # The plain lane: no parsing into objects, for most requests.
            # While replies wait on peers only GETs may take it (a write must
            # not overtake them: the general lane below blocks it).
            while index < end and budget > 0 and not self._deferred_writes:
                line = lines[index]
                verb, _, args = line.partition(b" ")
                handler = plain.get(verb)
                if handler is None or (self._deferred and verb != b"GET"):
                    break
                try:
                    reply = handler(args)
                except ProtocolError as exc:
                    reply = error_line(exc.message)
                except Exception as exc:
                    reply = self._internal_error(line, exc, b"")
                if reply is None:
                    break  # nothing was done: the general lane parses it
                index += 1
                if type(reply) is bytes:
                    append(reply)
                    budget -= len(reply)
                else:  # a GET waiting on peers: it and what follows queue up
                    self._wait_for(cast("asyncio.Future[bytes]", reply), False)
                    append = queue.append
            if index >= end or budget <= 0:
                break
            # The general lane, for one line: anything the plain lane does not take.
            line = lines[index]
            index += 1
            command = None
            try:
                command = parse_request(line)
                if command is None:
                    continue
                if self._deferred and (self._deferred_writes or type(command) not in _READS):
                    # Waiting on peers for an earlier request: a write must
                    # not overtake it, nor a read overtake an earlier DEL.
                    index -= 1
                    self._blocked = True
                    break
                reply = execute(command)
            except ProtocolError as exc:
                # Errors raised while executing carry no tag; the command's applies.
                tag = exc.tag or (command.tag if command is not None else b"")
                reply = error_line(exc.message, tag)
                if self.peer_name is not None and not isinstance(exc, FilterVersionError):
                    # A peer must speak the dialect exactly: garbage, a bad or
                    # oversized filter means a broken or hostile peer.
                    log.warning("dropping peer %s (%s): it sent a bad request: %s",
                                self.peer_name, self.peer, exc.message)
                    append(reply)
                    self._stopped = True
                    break
            except Exception as exc:
                reply = self._internal_error(line, exc, command.tag if command else b"")
            else:
                if type(command) is Quit:
                    self._stopped = True  # its reply is the last one
                elif type(command) is RequestConnect:
                    # A peer introduced itself: filters it pushes may be large.
                    self._framer.max_line_bytes = self._server.config.max_peer_line_bytes
                    self.peer_name = command.name
            if type(reply) is bytes:
                append(reply)
                budget -= len(reply)
            else:
                self._wait_for(cast("asyncio.Future[bytes]", reply), type(command) is not Get)
                append = queue.append
            if self._stopped:
                break
        node = self._node
        node.stats.total_commands += index - start
        node.end_batch()
        self._next = index
        return ready

    def _wait_for(self, future: asyncio.Future[bytes], is_write: bool) -> None:
        """Queue a reply that waits on peers; what follows queues behind it."""
        self._deferred += 1
        self._deferred_writes += is_write
        future.add_done_callback(partial(self._on_deferred_done, is_write))
        self._queue.append(future)

    def _internal_error(self, line: bytes, exc: Exception, tag: bytes) -> bytes:
        """A bug must cost one request, not the node: log it, answer ERR."""
        log.error("internal error on %r from %s: %r", line[:80], self.peer, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return error_line(_INTERNAL_ERROR, tag)

    def _flush(self, ready: list[bytes]) -> None:
        """Write ``ready`` and every queued reply that has resolved, in order, in
        one write; close when all is done."""
        transport = self._transport
        if transport is None:
            return
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, bytes):
                ready.append(head)
                queue.popleft()
                continue
            if not head.done():
                break  # _on_deferred_done flushes again when it resolves
            queue.popleft()
            ready.append(_result_line(head))
        if ready and not transport.is_closing():
            transport.write(b"".join(ready) if len(ready) > 1 else ready[0])
        if not queue and (self._stopped or (self._input_done
                                            and self._next >= len(self._lines))):
            self._finish(transport)

    def _finish(self, transport: asyncio.Transport) -> None:
        """Close after the last reply without letting the close destroy it.

        Closing while the client is still sending (an oversized line, requests
        after QUIT) makes the kernel answer with a reset, which can discard
        replies the client has not read yet.  So: half-close, keep reading and
        discarding, and close on the client's EOF or after a short linger.
        """
        if self._finishing:
            return
        self._finishing = True
        if self._eof_seen or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self._reading_paused:
            transport.resume_reading()
            self._reading_paused = False
        self._linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def _update_reading(self) -> None:
        pause = (self._write_paused or self._next < len(self._lines)
                 or len(self._queue) >= MAX_QUEUED_REPLIES)
        if pause == self._reading_paused:
            return  # the usual case: nothing to change
        transport = self._transport
        if transport is None or transport.is_closing() or self._finishing:
            return
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()
        self._reading_paused = pause

    def _on_deferred_done(self, is_write: bool, future: asyncio.Future[bytes]) -> None:
        self._deferred -= 1
        self._deferred_writes -= is_write
        self._blocked = False
        if not self._resume_scheduled:
            # Replies that resolve together (one peer answer serves many GETs)
            # go out in one write, after all of them have resolved.
            self._resume_scheduled = True
            asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_scheduled = False
        self._flush([])
        self._pump()

    # -- shutdown -----------------------------------------------------------

    def close_when_flushed(self) -> None:
        """Read nothing more; close once what was received is answered."""
        self._input_done = True
        self._pump()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _result_line(future: asyncio.Future[bytes]) -> bytes:
    if future.cancelled():
        return error_line(_INTERNAL_ERROR)
    exc = future.exception()
    if exc is None:
        return future.result()
    if isinstance(exc, ProtocolError):
        return error_line(exc.message, exc.tag)
    log.error("internal error in a deferred reply: %r", exc)
    return error_line(_INTERNAL_ERROR)


class Server:
    """The listening socket and every open connection."""

    def __init__(self, config: Config, node: Node) -> None:
        self.config = config
        self.node = node
        self.connections: set[ClientConnection] = set()
        self.address: tuple[str, int] = (config.host, config.port)
        self._listener: asyncio.AbstractServer | None = None
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    async def start(self) -> tuple[str, int]:
        """Bind and listen; return the bound (host, port).  Raises OSError."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: ClientConnection(self), self.config.host, self.config.port,
            reuse_address=True, backlog=1024,
        )
        sockname = self._listener.sockets[0].getsockname()
        self.address = (self.config.host, sockname[1])
        return self.address

    def admit(self, connection: ClientConnection) -> bool:
        stats = self.node.stats
        if len(self.connections) >= self.config.max_clients:
            stats.rejected_connections += 1
            log.warning("refused %s: max_clients (%d) reached", connection.peer,
                        self.config.max_clients)
            return False
        self.connections.add(connection)
        self._all_closed.clear()
        stats.total_connections += 1
        stats.connected_clients = len(self.connections)
        return True

    def forget(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)
        self.node.stats.connected_clients = len(self.connections)
        if not self.connections:
            self._all_closed.set()

    def stop_accepting(self) -> None:
        if self._listener is not None:
            self._listener.close()

    async def shutdown(self) -> None:
        """Stop accepting, flush every connection, wait, then abort stragglers."""
        self.stop_accepting()
        for connection in list(self.connections):
            connection.close_when_flushed()
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_timeout)
        except TimeoutError:
            log.warning("%d connections did not drain in %.1fs; closing them",
                        len(self.connections), self.config.shutdown_timeout)
            for connection in list(self.connections):
                connection.abort()
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
