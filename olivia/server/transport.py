"""The asyncio side of a connection: it only moves bytes.

:class:`Transport` is an ``asyncio.Protocol``.  Bytes received go to the
connection's :class:`~olivia.server.connection.ConnectionState`; the bytes it
returns are written in one ``transport.write``; reading is paused and resumed
as the state says; pending replies are watched and the state is stepped
again when they resolve (once per loop turn, so replies that resolve
together go out in one write).  Closing is done so that the last replies
survive it (see :meth:`_finish`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Protocol, cast

from olivia.protocols.frontend import FrontEnd, Pending
from olivia.server.connection import DONE, ConnectionState

# How long a finished connection waits for the client's EOF before closing.
LINGER_SECONDS = 1.0


class Admission(Protocol):
    """What a transport needs of its listener."""

    def admit(self, connection: Transport) -> bytes | None:
        """None if the connection may stay; else the reply to send before closing."""

    def forget(self, connection: Transport) -> None: ...

    def front_end(self, peer: str, tls_verified: bool) -> FrontEnd: ...

    @property
    def max_output(self) -> int:
        """Reply bytes a connection may queue (max_client_output_bytes)."""


class Transport(asyncio.Protocol):
    """One client (or peer) connection."""

    def __init__(self, listener: Admission) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self.state: ConnectionState | None = None
        self._reading_paused = False
        self._finishing = False  # our side is half-closed; waiting for the client's EOF
        self._eof_seen = False
        self._linger: asyncio.TimerHandle | None = None
        self._step_scheduled = False
        # One callback per kind of pending reply, made once (HOLDS_* index it).
        self._when_resolved = tuple(partial(self._resolved, holds) for holds in range(3))
        self.peer = "?"

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; same API.
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "?"
        refusal = self._listener.admit(self)
        if refusal is not None:
            self._transport.write(refusal)
            self._transport.close()
            return
        # Over TLS with tls.ca, a certificate the client presented was verified
        # in the handshake (an unverifiable one fails it).
        verified = bool(transport.get_extra_info("peercert"))
        self.state = ConnectionState(self._listener.front_end(self.peer, verified), self._watch,
                                     self._listener.max_output)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._linger is not None:
            self._linger.cancel()
        if self.state is not None:
            for pending in self.state.abandon():
                pending.future.cancel()
            self._listener.forget(self)

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is not None:
            state.receive_data(data)
            self._pump()

    def eof_received(self) -> bool | None:
        self._eof_seen = True
        if self._finishing or self.state is None:
            return False  # both sides are done: let the transport close
        self.state.receive_eof()
        self._pump()
        return True

    def pause_writing(self) -> None:
        if self.state is not None:
            self.state.pause_writing(True)
            self._update_reading()

    def resume_writing(self) -> None:
        if self.state is not None:
            self.state.pause_writing(False)
            self._pump()

    # -- moving bytes -----------------------------------------------------------

    def _pump(self) -> None:
        transport, state = self._transport, self.state
        if transport is None or state is None:
            return
        more = True
        while more:
            data, more = state.step()
            if data:
                transport.write(data)  # may pause us (pause_writing) before the next round
                more = more and not state.write_paused
        if state.phase is DONE:
            self._finish(transport)
        elif self._reading_paused or not state.wants_reading:
            self._update_reading()

    def _watch(self, pending: Pending) -> None:
        pending.future.add_done_callback(self._when_resolved[pending.holds])

    def _resolved(self, holds: int, _: object) -> None:
        if self.state is None or self._transport is None:
            return
        self.state.pending_done(holds)
        if not self._step_scheduled:
            self._step_scheduled = True
            asyncio.get_running_loop().call_soon(self._step_again)

    def _step_again(self) -> None:
        self._step_scheduled = False
        self._pump()

    def _update_reading(self) -> None:
        state, transport = self.state, self._transport
        if state is None or transport is None or transport.is_closing() or self._finishing:
            return
        pause = not state.wants_reading
        if pause == self._reading_paused:
            return
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()
        self._reading_paused = pause

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

    # -- shutdown -----------------------------------------------------------

    def close_when_flushed(self) -> None:
        """Read nothing more; close once what was received is answered."""
        if self.state is not None:
            self.state.shutdown()
            self._pump()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

