"""The asyncio client, :class:`AsyncClient`, and its :class:`AsyncPipeline`.

Both take every command of :class:`~olivia.client.commands.Commands`; the
client's methods are coroutines, the pipeline queues the commands and
``await execute()`` sends them together on one pooled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from ssl import SSLContext
from types import TracebackType
from typing import Any, TypeVar

from olivia.client.calls import (
    DEFAULT_MAX_LINE_BYTES,
    Call,
    Data,
    ReplyReader,
    ScanCursor,
    _BadReply,
    _reason,
    auth_call,
    tls_context,
)
from olivia.client.commands import Commands
from olivia.client.sync import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT, _Queue
from olivia.core.errors import ConnectionLostError, ConnectionTimeoutError

T = TypeVar("T")


class _Connection(asyncio.Protocol):
    """One pooled connection of an AsyncClient: bytes in go to a ReplyReader."""

    def __init__(self, address: str, generation: int) -> None:
        self.address = address
        self.generation = generation
        self.reader = ReplyReader()
        self.transport: asyncio.Transport | None = None
        self.error: ConnectionLostError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def usable(self) -> bool:
        return (self.error is None and self.transport is not None
                and not self.transport.is_closing() and not self.reader.closing
                and not self.reader.waiting)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.reader.feed(data)
        except _BadReply as exc:
            self._fail(f"{exc}; the connection was dropped")
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        self._fail("the server closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {_reason(exc)}" if exc else "the connection was closed")
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, what: str) -> None:
        if self.error is None:
            self.error = ConnectionLostError(f"{self.address}: {what}")
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def exchange(self, calls: Sequence[Call[Any]], timeout: float | None) -> None:
        assert self.transport is not None
        last: Call[Any] | None = None
        for call in calls:
            self.reader.expect(call)
            if call.count:
                last = call
        if last is None:
            return
        self.transport.write(b"".join(call.data for call in calls))
        loop = asyncio.get_running_loop()
        while not last.done:
            if self.error is not None:
                raise self.error
            self._waiter = loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                raise ConnectionTimeoutError(
                    f"{self.address}: timed out waiting for a reply (nothing for {timeout} s); "
                    "the connection was dropped") from None
            finally:
                self._waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class AsyncClient(Commands):
    """An asyncio Olivia client with a small connection pool.

    ::

        async with AsyncClient("127.0.0.1", 5454) as db:
            await db.set("greeting", "hello")
            await db.get("greeting")     # b'hello'

    Every command borrows a connection from the pool (opening one if none is
    idle, at most ``max_connections``; more concurrent commands wait for
    one), so many tasks can share one client.  A connection goes back to the
    pool after a complete exchange and is closed after any error, timeout or
    cancellation.  The methods, errors and limits are those of
    :class:`Client`, as coroutines.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: float | None = DEFAULT_TIMEOUT, max_connections: int = 10, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, password: Data | None = None,
                 ssl: bool | SSLContext | None = None, ssl_ca_certs: str | None = None,
                 decode_responses: bool = False) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if password is not None:
            auth_call(password)  # a bad one raises here, not at the first command
        self._password = password
        self._tls = tls_context(ssl, ssl_ca_certs)
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_line_bytes = max_line_bytes
        self.decode_responses = decode_responses
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max_connections)
        self._generation = 0

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<AsyncClient {self.address} open={len(self._open)} idle={len(self._idle)}>"

    @property
    def connections(self) -> int:
        """Connections open now (idle or in use)."""
        return len(self._open)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; commands in flight keep theirs until they
        finish, and it is closed then.  The client stays usable."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
        waits = [conn.closed for conn in idle]
        if waits:
            await asyncio.wait(waits, timeout=1.0)

    async def connect(self) -> None:
        """Open one connection now, to check that the server is reachable."""
        conn = await self._borrow()
        self._give_back(conn, True)

    async def _borrow(self) -> _Connection:
        await self._slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if conn.usable:
                    return conn
                self._discard(conn)
            return await self._connect()
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        generation = self._generation
        try:
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self.address, generation), self.host, self.port,
                    ssl=self._tls)
        except TimeoutError as exc:
            raise ConnectionTimeoutError(
                f"{self.address}: timed out connecting after {self.timeout} s") from exc
        except OSError as exc:
            raise ConnectionLostError(f"cannot connect to {self.address}: {_reason(exc)}") from exc
        self._open.add(conn)
        if self._password is not None:
            call = auth_call(self._password)
            try:
                await conn.exchange([call], self.timeout)
                call.result()
            except BaseException:
                self._discard(conn)
                raise
        return conn

    def _give_back(self, conn: _Connection, ok: bool) -> None:
        if ok and conn.usable and conn.generation == self._generation:
            self._idle.append(conn)
        else:
            self._discard(conn)
        self._slots.release()

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def _run(self, calls: Sequence[Call[Any]]) -> None:
        conn = await self._borrow()
        ok = False
        try:
            await conn.exchange(calls, self.timeout)
            ok = True
        finally:
            self._give_back(conn, ok)

    async def _one(self, call: Call[T]) -> T:
        await self._run((call,))
        return call.result()

    def _dispatch(self, call: Call[T]) -> Coroutine[Any, Any, T]:
        return self._one(call)

    async def scan_iter(self, match: Data | None = None,
                        count: int | None = None) -> AsyncIterator[Any]:
        """Every key of the cluster, page by page, as :meth:`Client.scan_iter`."""
        cursor: ScanCursor = 0
        while True:
            cursor, keys = await self.scan(cursor, match, count)
            for key in keys:
                yield key
            if cursor == 0:
                return

    def pipeline(self) -> AsyncPipeline:
        """An :class:`AsyncPipeline`: queue commands, then ``await execute()``."""
        return AsyncPipeline(self)


class AsyncPipeline(_Queue, Commands):
    """Commands queued on an :class:`AsyncClient`, sent together on one
    pooled connection by ``await execute()``; see :class:`Pipeline`.
    ``async with`` executes on exit unless the block raised."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__()
        self.max_line_bytes = client.max_line_bytes
        self.decode_responses = client.decode_responses
        self._client = client

    def _dispatch(self, call: Call[Any]) -> AsyncPipeline:
        self._add(call)
        return self

    async def execute(self, raise_on_error: bool = False) -> list[Any]:
        """Send the queued commands in one write; return their results in order."""
        calls = self._take()
        await self._client._run(calls)
        return self._results(calls, raise_on_error)

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None and self._calls:
            await self.execute()
