"""One listening port and every connection it accepted.

A :class:`Listener` binds its address, admits connections up to
``max_clients`` (counted over all of the node's listeners), keeps a strong
reference to each, and on shutdown stops accepting, lets every connection
finish what it received, waits up to a timeout, then aborts the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from ssl import SSLContext

from olivia.observe.stats import Stats
from olivia.protocols.frontend import FrontEnd
from olivia.server.transport import Transport

log = logging.getLogger(__name__)


class Listener:
    """A port serving one protocol."""

    def __init__(self, what: str, host: str, port: int,
                 front_end: Callable[[str, bool], FrontEnd], refusal: Callable[[int], bytes],
                 stats: Stats, max_clients: int, max_output: int = 64 << 20,
                 ssl: SSLContext | None = None) -> None:
        self.max_output = max_output
        self._ssl = ssl
        self.what = what  # for logs: "line protocol", "RESP"
        self.host = host
        self.port = port
        self._front_end = front_end
        self._refusal = refusal
        self._stats = stats
        self._max_clients = max_clients
        self.connections: set[Transport] = set()
        self._server: asyncio.AbstractServer | None = None
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    async def start(self) -> tuple[str, int]:
        """Bind and listen; the bound (host, port).  Raises OSError."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Transport(self), self.host, self.port,
                                                reuse_address=True, backlog=1024, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.host, self.port

    # -- what each Transport asks --------------------------------------------------

    def front_end(self, peer: str, tls_verified: bool) -> FrontEnd:
        return self._front_end(peer, tls_verified)

    def admit(self, connection: Transport) -> bytes | None:
        stats = self._stats
        if stats.connected_clients >= self._max_clients:
            stats.rejected_connections += 1
            log.warning("refused %s: max_clients (%d) reached", connection.peer,
                        self._max_clients)
            return self._refusal(self._max_clients)
        self.connections.add(connection)
        self._all_closed.clear()
        stats.total_connections += 1
        stats.connected_clients += 1
        return None

    def forget(self, connection: Transport) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            self._stats.connected_clients -= 1
        if not self.connections:
            self._all_closed.set()

    # -- shutdown ------------------------------------------------------------------

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def drain(self, timeout: float) -> None:
        """Let every connection finish what it received; abort what is left
        after ``timeout`` seconds."""
        self.stop_accepting()
        for connection in list(self.connections):
            connection.close_when_flushed()
        try:
            await asyncio.wait_for(self._all_closed.wait(), timeout)
        except TimeoutError:
            count = len(self.connections)
            log.warning("%d %s connection%s did not drain in %.1fs; closing %s", count,
                        self.what, "" if count == 1 else "s", timeout,
                        "it" if count == 1 else "them")
            for connection in list(self.connections):
                connection.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
