"""The blocking client, :class:`Client`, and its :class:`Pipeline`.

Both take every command of :class:`~olivia.client.commands.Commands`; the
client runs each at once, the pipeline queues them and sends them together.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable, Iterable, Iterator
from ssl import SSLContext, SSLSocket, SSLWantReadError, SSLWantWriteError
from types import TracebackType
from typing import Any, TypeVar

from olivia.client.calls import (
    DEFAULT_MAX_LINE_BYTES,
    Call,
    Data,
    ReplyReader,
    ScanCursor,
    _BadReply,
    _finish_set,
    _reason,
    as_bytes,
    auth_call,
    set_lines,
    tls_context,
)
from olivia.client.commands import Commands
from olivia.core.errors import ConnectionLostError, ConnectionTimeoutError, OliviaError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5454
DEFAULT_TIMEOUT = 5.0
#: Request bytes a streaming load (:meth:`Client.mset_iter`) keeps unanswered.
WINDOW_BYTES = 4 << 20
_RECV_BYTES = 1 << 18
_QUEUE_BYTES = 64 * 1024  # queue this much of a lazy source's requests before writing
_SEND_BYTES = 4 << 20  # the most one send() is offered

T = TypeVar("T")
# What a non-blocking socket raises when it cannot go on now (TLS adds two).
_WOULD_BLOCK = (BlockingIOError, SSLWantReadError, SSLWantWriteError)


class Client(Commands):
    """A blocking Olivia client over one TCP connection.

    ::

        with Client("127.0.0.1", 5454) as db:
            db.set("greeting", "hello, world")
            db.get("greeting")          # b'hello, world'

    The connection opens on the first command (or :meth:`connect`) and is
    reopened by the next command after it broke.  ``timeout`` (seconds, or
    None to wait forever) bounds connecting and each wait for the server to
    accept bytes or send some.  ``max_line_bytes`` is the server's limit on a
    request line (1 MiB by default): a command that cannot fit raises
    :class:`~olivia.errors.LineTooLongError` before anything is sent.

    ``password`` is sent (``AUTH``) first on every connection; a wrong one
    raises :class:`~olivia.errors.WrongPassError`.  ``ssl=True`` connects over
    TLS, verifying the server's certificate against ``ssl_ca_certs`` (a PEM
    file) or the system's CAs; an ``ssl.SSLContext`` is used as given.

    Not thread-safe: use one client per thread (or :class:`AsyncClient`).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: float | None = DEFAULT_TIMEOUT, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, password: Data | None = None,
                 ssl: bool | SSLContext | None = None, ssl_ca_certs: str | None = None,
                 decode_responses: bool = False) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_line_bytes = max_line_bytes
        self.decode_responses = decode_responses
        if password is not None:
            auth_call(password)  # a bad one raises here, not at the first command
        self._password = password
        self._tls = tls_context(ssl, ssl_ca_certs)
        self._sock: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._reader = ReplyReader()

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "not connected"
        return f"<Client {self.address} {state}>"

    # -- connection ----------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now (commands do it when needed).

        Raises ConnectionLostError if the server cannot be reached.
        """
        self._connection()

    def close(self) -> None:
        """Close the connection; a later command opens a new one."""
        self._drop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _connection(self) -> tuple[socket.socket, selectors.BaseSelector]:
        if self._sock is not None and not self._idle_and_healthy():
            self._drop()  # closed by the server while idle: reconnect, nothing was sent
        if self._sock is None or self._selector is None:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except TimeoutError as exc:
                raise ConnectionTimeoutError(
                    f"{self.address}: timed out connecting after {self.timeout} s") from exc
            except OSError as exc:
                raise ConnectionLostError(
                    f"cannot connect to {self.address}: {_reason(exc)}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(sock, selectors.EVENT_READ)
            self._sock = sock
            self._reader = ReplyReader()
            if self._password is not None:
                self._authenticate(auth_call(self._password))
        assert self._sock is not None and self._selector is not None
        return self._sock, self._selector

    def _authenticate(self, call: Call[None]) -> None:
        try:
            self._run(iter((call,)))
            call.result()
        except BaseException:
            self._drop()
            raise

    def _idle_and_healthy(self) -> bool:
        assert self._sock is not None
        if self._reader.closing:
            return False
        try:
            if isinstance(self._sock, SSLSocket):
                # No peeking through TLS; a read that finds no application
                # data (a session ticket, or nothing) leaves it healthy.
                self._sock.recv(1)
            else:
                self._sock.recv(1, socket.MSG_PEEK)
        except _WOULD_BLOCK:
            return True
        except OSError:
            return False
        return False  # EOF, or bytes nobody asked for: start afresh

    def _drop(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._reader = ReplyReader()

    # -- the exchange --------------------------------------------------------

    def _run(self, source: Iterator[Call[Any]],
             on_done: Callable[[Call[Any]], bool] | None = None,
             window: int = WINDOW_BYTES) -> None:
        """Send the calls pulled from ``source``, pipelined, while reading replies.

        Calls are pulled while fewer than ``window`` request bytes are
        unanswered, so a lazy source (a file being parsed) is read while the
        server works.  ``on_done(call)`` is called for each finished call in
        order; returning False stops pulling (calls already sent are still
        answered).  If ``source`` raises, the calls already sent are answered
        first, then the exception propagates.  Writing and reading are
        interleaved, so a request larger than the socket buffers cannot
        deadlock against its replies.
        """
        sock, selector = self._connection()
        tls = isinstance(sock, SSLSocket)
        reader = self._reader
        out = bytearray()
        offset = 0  # bytes of out already sent
        unanswered = 0  # bytes of requests sent or queued whose replies are still due
        pulling = True
        source_error: Exception | None = None
        mask = selectors.EVENT_READ
        phase = "sending"
        clean = False
        try:
            while True:
                # Queue calls until a write's worth is ready or the window is full.
                while pulling and unanswered < window and len(out) - offset < _QUEUE_BYTES:
                    try:
                        call = next(source)
                    except StopIteration:
                        pulling = False
                        break
                    except Exception as exc:  # re-raised once the sent calls are answered
                        source_error = exc
                        pulling = False
                        break
                    reader.expect(call)
                    if call.count:
                        out += call.data
                        unanswered += len(call.data)
                    elif on_done is not None and not on_done(call):
                        pulling = False
                if not reader.waiting:
                    if pulling:
                        continue
                    break
                if offset < len(out):
                    phase = "sending"
                    with contextlib.suppress(*_WOULD_BLOCK):
                        offset += sock.send(memoryview(out)[offset:offset + _SEND_BYTES])
                    if offset == len(out):
                        out.clear()
                        offset = 0
                    elif offset > _QUEUE_BYTES and offset * 2 > len(out):
                        del out[:offset]  # amortised: at most as much as was sent
                        offset = 0
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
                if want != mask:
                    selector.modify(sock, want)
                    mask = want
                more_to_pull = pulling and unanswered < window
                events = selector.select(0 if more_to_pull else self.timeout)
                if not events and tls and sock.pending():  # type: ignore[attr-defined]
                    events = [(selector.get_key(sock), selectors.EVENT_READ)]  # decrypted, unread
                if not events:
                    if more_to_pull:
                        continue
                    phase = "sending" if out else "waiting for a reply"
                    raise ConnectionTimeoutError(
                        f"{self.address}: timed out {phase} (nothing for {self.timeout} s); "
                        "the connection was dropped")
                if events[0][1] & selectors.EVENT_READ:
                    phase = "waiting for a reply"
                    try:
                        data = sock.recv(_RECV_BYTES)
                    except _WOULD_BLOCK:
                        continue
                    if not data:
                        raise ConnectionLostError(
                            f"{self.address}: the server closed the connection before "
                            f"answering {reader.waiting} request(s)")
                    for call in reader.feed(data):
                        unanswered -= len(call.data)
                        if on_done is not None and not on_done(call):
                            pulling = False
            clean = True
        except _BadReply as exc:
            raise ConnectionLostError(
                f"{self.address}: {exc}; the connection was dropped") from None
        except ConnectionLostError:
            raise
        except OSError as exc:
            raise ConnectionLostError(
                f"{self.address}: connection lost while {phase}: {_reason(exc)}") from exc
        finally:
            if not clean or reader.closing:
                self._drop()
        if source_error is not None:
            raise source_error

    def _execute(self, calls: list[Call[Any]]) -> list[Any]:
        self._run(iter(calls))
        return [call.outcome for call in calls]

    def _one(self, call: Call[T]) -> T:
        self._run(iter((call,)))
        return call.result()

    def _dispatch(self, call: Call[T]) -> T:
        return self._one(call)

    # -- commands: every one of Commands, and these ----------------------------

    def scan_iter(self, match: Data | None = None, count: int | None = None) -> Iterator[Any]:
        """Every key of the cluster (matching the glob ``match``), page by page
        (``count`` keys a page, as a hint), as redis-py's scan_iter.  Every key
        that exists for the whole scan comes at least once; one may come twice."""
        cursor: ScanCursor = 0
        while True:
            cursor, keys = self.scan(cursor, match, count)
            yield from keys
            if cursor == 0:
                return

    def mset_iter(self, pairs: Iterable[tuple[Data, Data]],
                  on_stored: Callable[[int], None] | None = None) -> int:
        """Store (key, value) pairs from an iterable, streaming: for bulk loads.

        The pairs are pulled lazily and sent in bounded lines while the
        server's replies are read, at most a few MiB ahead.  Returns how many
        pairs were stored.  ``on_stored(n)`` is called as each line of ``n``
        pairs is acknowledged.  On the first ``ERR`` reply no more pairs are
        pulled; the lines already sent are answered, then the error is
        raised.  If the iterable raises, the lines already sent are answered
        (the pairs pulled since, in the unfinished line, are not sent), then
        its exception propagates.
        """
        stored = 0
        error: OliviaError | None = None

        def calls() -> Iterator[Call[None]]:
            encoded = ((k if type(k) is bytes else as_bytes(k),
                        v if type(v) is bytes else as_bytes(v, "value")) for k, v in pairs)
            for line, count in set_lines(encoded, self.max_line_bytes):
                yield Call([line], _finish_set, count)

        def done(call: Call[Any]) -> bool:
            nonlocal stored, error
            if isinstance(call.outcome, OliviaError):
                error = error or call.outcome
                return False
            stored += call.items
            if on_stored is not None:
                on_stored(call.items)
            return error is None

        self._run(calls(), done)
        if error is not None:
            raise error
        return stored

    def pipeline(self) -> Pipeline:
        """A :class:`Pipeline` that queues commands and sends them in one write."""
        return Pipeline(self)


class _Queue:
    """Commands queued by a pipeline (shared by the sync and async pipelines)."""

    def __init__(self) -> None:
        self._calls: list[Call[Any]] = []
        #: The results of the last execute(), in order.
        self.results: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._calls)

    def _add(self, call: Call[Any]) -> None:
        self._calls.append(call)

    def _take(self) -> list[Call[Any]]:
        calls, self._calls = self._calls, []
        return calls

    def _results(self, calls: list[Call[Any]], raise_on_error: bool) -> list[Any]:
        self.results = [call.outcome for call in calls]
        if raise_on_error:
            for result in self.results:
                if isinstance(result, OliviaError):
                    raise result
        return self.results


class Pipeline(_Queue, Commands):
    """Commands queued on a :class:`Client` and sent together.

    Each method queues its command and returns the pipeline, so calls chain.
    :meth:`execute` writes every queued request in one go, reads all replies
    and returns the results in order; an ``ERR`` reply's exception takes the
    place of its result (``raise_on_error=True`` raises the first one instead,
    after all replies are read).  Used as a context manager, the pipeline
    executes on exit (unless the block raised); read ``results`` afterwards.
    """

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.max_line_bytes = client.max_line_bytes
        self.decode_responses = client.decode_responses
        self._client = client

    def _dispatch(self, call: Call[Any]) -> Pipeline:
        self._add(call)
        return self

    def execute(self, raise_on_error: bool = False) -> list[Any]:
        """Send the queued commands in one write; return their results in order."""
        calls = self._take()
        self._client._run(iter(calls))
        return self._results(calls, raise_on_error)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and self._calls:
            self.execute()


