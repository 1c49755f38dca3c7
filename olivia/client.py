"""Python clients for Olivia: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

Both speak the line protocol of docs/protocol.md through :mod:`olivia.protocol`:
a method builds command objects (``Set``, ``Get``, ...), ``encode_request``
turns them into wire lines (percent-encoding included), and the replies go
through one :class:`ReplyReader` (``LineFramer`` + ``parse_reply``) that turns
reply lines into results or typed exceptions.  That part is sans-IO and shared;
each client only moves bytes.

Keys and values may be ``str`` (sent as UTF-8) or ``bytes``; results are
``bytes``.  ``ERR`` replies raise the typed exceptions of :mod:`olivia.errors`
(``KeyTooLongError``, ``BadItemError``, ...).  A broken connection, a
timeout or a reply that makes no sense raises :class:`ConnectionLostError`
(a timeout: :class:`ConnectionTimeoutError`, also a ``TimeoutError``); the
connection is then dropped, so a late reply can never be taken for the answer
to a later command, and the next command connects again.

Multi-key commands are split into request lines of at most
:data:`MAX_BATCH_ITEMS` items and :data:`MAX_BATCH_BYTES` bytes of keys and
values, written together (pipelined) and answered together.  They are
therefore not atomic: if one line fails, the lines before it were applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from types import TracebackType
from typing import Any, Generic, TypeVar

from olivia.errors import (
    ConnectionLostError,
    ConnectionTimeoutError,
    LineTooLongError,
    OliviaError,
    ProtocolError,
)
from olivia.protocol import (
    Command,
    Del,
    Deleted,
    ErrorReply,
    Get,
    Got,
    Info,
    InfoReply,
    LineFramer,
    Ping,
    Pong,
    Reply,
    Sat,
    SatEx,
    Set,
    SetEx,
    TtlItem,
    encode_request,
    parse_reply,
    show,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ITEMS",
    "AsyncClient",
    "AsyncPipeline",
    "Client",
    "Pipeline",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5454
DEFAULT_TIMEOUT = 5.0
#: The server's default ``max_line_bytes``; pass the real one if it differs.
DEFAULT_MAX_LINE_BYTES = 1 << 20
#: At most this many keys (GET, DEL) or items (SET) per request line.
MAX_BATCH_ITEMS = 1000
#: At most this many bytes of keys and values per request line, before
#: percent-encoding (which can triple a byte at worst); a single larger item
#: gets a line of its own.
MAX_BATCH_BYTES = 64 * 1024
#: The longest reply line accepted: a GET reply may carry the server's
#: ``max_reply_bytes`` (64 MiB) of values, up to three times that escaped.
MAX_REPLY_LINE_BYTES = 256 << 20
#: Request bytes a streaming load (:meth:`Client.mset_iter`) keeps unanswered.
WINDOW_BYTES = 4 << 20
_RECV_BYTES = 1 << 18
_QUEUE_BYTES = 64 * 1024  # queue this much of a lazy source's requests before writing
_SEND_BYTES = 4 << 20  # the most one send() is offered

T = TypeVar("T")
R = TypeVar("R", bound=Reply)
Data = str | bytes
#: What mset takes: str or bytes keys and values.  The key type is Any because
#: Mapping is invariant in it, so ``dict[str, str]`` would not be a
#: ``Mapping[str | bytes, ...]``; a key of another type raises TypeError.
DataMapping = Mapping[Any, Data]

# ---------------------------------------------------------------------------
# The sans-IO part shared by both clients: commands to bytes, reply lines to
# results or exceptions.
# ---------------------------------------------------------------------------


class _BadReply(Exception):
    """A reply that cannot belong to the request it answers: the connection
    is out of step and must be dropped (turned into ConnectionLostError)."""


_PENDING: Any = object()


class Call(Generic[T]):
    """One client operation: its request lines and how their replies become a result.

    ``data`` is the request lines, LF-terminated and joined; ``count`` is how
    many reply lines they get; ``finish`` turns those lines into the result,
    raising an :class:`OliviaError` for an ``ERR`` reply.  After the exchange,
    ``outcome`` holds the result or that exception.
    """

    __slots__ = ("count", "data", "finish", "items", "outcome")

    def __init__(self, lines: Sequence[bytes], finish: Callable[[list[bytes]], T],
                 items: int = 0) -> None:
        self.data = b"".join(lines)
        self.count = len(lines)
        self.finish = finish
        self.items = items  # keys or pairs carried, for progress reports
        self.outcome: T | OliviaError = _PENDING

    @property
    def done(self) -> bool:
        """Whether all the replies have arrived (``outcome`` is set)."""
        return self.outcome is not _PENDING

    def settle(self, lines: list[bytes]) -> None:
        """Set ``outcome`` from the call's reply lines (an ERR becomes the
        exception); a reply out of step raises ``_BadReply``."""
        try:
            self.outcome = self.finish(lines)
        except _BadReply:
            raise
        except OliviaError as exc:
            self.outcome = exc

    def result(self) -> T:
        """The result, or raise the error the server answered with."""
        outcome = self.outcome
        if isinstance(outcome, OliviaError):
            raise outcome
        return outcome


def _closes(line: bytes) -> bool:
    """Whether the server closes the connection after this reply line."""
    _, _, rest = line.partition(b":")
    return (rest == b"BYE" or rest.startswith(b"ERR line too long")
            or rest.startswith(b"ERR max clients reached"))


class ReplyReader:
    """The reading side of one connection, sans I/O.

    ``expect`` registers a call whose request is (about to be) sent; ``feed``
    takes bytes from the socket and returns the calls those bytes completed,
    in request order, each with its ``outcome`` set.  Raises ``_BadReply``
    when a reply cannot be read or matched.
    """

    def __init__(self, max_line_bytes: int = MAX_REPLY_LINE_BYTES) -> None:
        self._framer = LineFramer(max_line_bytes)
        self._pending: deque[Call[Any]] = deque()
        self._lines: list[bytes] = []
        self.closing = False  # the server said it will close the connection

    @property
    def waiting(self) -> int:
        """Calls still waiting for (some of) their replies."""
        return len(self._pending)

    def expect(self, call: Call[Any]) -> None:
        """Register a call whose request lines are (about to be) sent."""
        if call.count == 0:
            call.settle([])
        else:
            self._pending.append(call)

    def feed(self, data: bytes) -> list[Call[Any]]:
        """Take bytes read from the connection; return the calls they completed."""
        lines = self._framer.feed(data)
        if self._framer.overflowed:
            raise _BadReply(f"a reply line is longer than {self._framer.max_line_bytes} bytes")
        done: list[Call[Any]] = []
        pending = self._pending
        for line in lines:
            if not pending:
                raise _BadReply(f"unexpected reply {show(line)} (no request was waiting)")
            if b":BYE" in line or b":ERR " in line[:80]:
                self.closing = self.closing or _closes(line)
            call = pending[0]
            self._lines.append(line)
            if len(self._lines) == call.count:
                pending.popleft()
                call_lines, self._lines = self._lines, []
                call.settle(call_lines)
                done.append(call)
        return done


def _reply(line: bytes, expected: type[R]) -> R:
    """Parse a reply line; raise the server's error, or _BadReply if out of step."""
    try:
        reply = parse_reply(line)
    except ProtocolError as exc:
        raise _BadReply(f"unreadable reply {show(line)}: {exc}") from None
    if isinstance(reply, ErrorReply):
        raise reply.exception()
    if not isinstance(reply, expected):
        raise _BadReply(f"unexpected reply {show(line)} (expected {expected.WORD.decode()})")
    return reply


def _finish_stored(word: bytes) -> Callable[[list[bytes]], None]:
    # SET and SETEX echo every item; nothing in the echo is needed, so a
    # success is recognised without parsing it (loads send millions).
    prefix = b":" + word + b" "
    expected: type[Sat] | type[SatEx] = Sat if word == b"SAT" else SatEx

    def finish(lines: list[bytes]) -> None:
        for line in lines:
            if not line.startswith(prefix):
                _reply(line, expected)

    return finish


_finish_set = _finish_stored(b"SAT")
_finish_setex = _finish_stored(b"SATEX")


def _finish_get(lines: list[bytes]) -> bytes | None:
    items = _reply(lines[0], Got).items
    return items[0][1] if items else None


def _finish_mget(lines: list[bytes]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for line in lines:
        found.update(_reply(line, Got).items)
    return found


def _finish_delete(lines: list[bytes]) -> int:
    return sum(len(_reply(line, Deleted).keys) for line in lines)


def _finish_ping(lines: list[bytes]) -> bytes:
    return _reply(lines[0], Pong).text


def _finish_info(lines: list[bytes]) -> dict[str, str]:
    return _reply(lines[0], InfoReply).as_dict()


def _finish_raw(lines: list[bytes]) -> bytes:
    return lines[0]


def as_bytes(data: Data, what: str = "key") -> bytes:
    """A key or value as bytes: ``str`` is encoded as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise TypeError(f"{what} must be str or bytes, not {type(data).__name__}")


def _too_long(verb: str, key: bytes, length: int, limit: int) -> LineTooLongError:
    return LineTooLongError(
        f"{verb} of key {show(key)} would be a request line of {length} bytes, over the "
        f"server's max_line_bytes ({limit}); nothing was sent (store a smaller value, or "
        "raise max_line_bytes in the server's config.toml and pass it to the client)")


X = TypeVar("X")


def _batches(items: Iterable[X], size_of: Callable[[X], int]) -> Iterator[list[X]]:
    """Cut items into batches of at most MAX_BATCH_ITEMS and MAX_BATCH_BYTES."""
    batch: list[X] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if batch and (len(batch) >= MAX_BATCH_ITEMS or size + item_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _encode_batch(make: Callable[[list[X]], Command], batch: list[X], max_line_bytes: int,
                  key_of: Callable[[X], bytes]) -> list[bytes]:
    """Request lines for a batch; halved until each line fits max_line_bytes."""
    command = make(batch)
    line = encode_request(command)
    if len(line) - 1 <= max_line_bytes:
        return [line]
    if len(batch) == 1:
        raise _too_long(command.WORD.decode(), key_of(batch[0]), len(line) - 1, max_line_bytes)
    middle = len(batch) // 2
    return (_encode_batch(make, batch[:middle], max_line_bytes, key_of)
            + _encode_batch(make, batch[middle:], max_line_bytes, key_of))


def _key_size(key: bytes) -> int:
    return len(key) + 1


def _same(key: bytes) -> bytes:
    return key


def _make_get(batch: list[bytes]) -> Command:
    return Get(tuple(batch))


def _make_del(batch: list[bytes]) -> Command:
    return Del(tuple(batch))


def _pairs(mapping: DataMapping | Iterable[tuple[Data, Data]]
           ) -> list[tuple[bytes, bytes]]:
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return [(as_bytes(k), as_bytes(v, "value")) for k, v in items]


def _set_lines(batch: list[tuple[bytes, bytes]], max_line_bytes: int
               ) -> list[tuple[bytes, int]]:
    line = encode_request(Set(tuple(batch)))
    if len(line) - 1 <= max_line_bytes:
        return [(line, len(batch))]
    if len(batch) == 1:
        raise _too_long("SET", batch[0][0], len(line) - 1, max_line_bytes)
    middle = len(batch) // 2  # rare: heavy escaping made the line too long
    return (_set_lines(batch[:middle], max_line_bytes)
            + _set_lines(batch[middle:], max_line_bytes))


def set_lines(pairs: Iterable[tuple[bytes, bytes]], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
              ) -> Iterator[tuple[bytes, int]]:
    """Bounded ``SET`` request lines for (key, value) pairs, lazily.

    Yields ``(line, number of pairs in it)``: at most :data:`MAX_BATCH_ITEMS`
    pairs and :data:`MAX_BATCH_BYTES` bytes of keys and values per line (a
    larger pair gets a line of its own).  Raises LineTooLongError, before the
    line is yielded, for a pair that cannot fit in ``max_line_bytes``.
    """
    it = iter(pairs)
    while batch := list(islice(it, MAX_BATCH_ITEMS)):
        if sum(map(_pair_size, batch)) <= MAX_BATCH_BYTES:
            yield from _set_lines(batch, max_line_bytes)
        else:
            for part in _batches(batch, _pair_size):
                yield from _set_lines(part, max_line_bytes)


def _pair_size(pair: tuple[bytes, bytes]) -> int:
    return len(pair[0]) + len(pair[1]) + 2


def set_call(key: Data, value: Data, max_line_bytes: int) -> Call[None]:
    """SET of one key."""
    return mset_call({key: value}, max_line_bytes)


def mset_call(mapping: DataMapping, max_line_bytes: int) -> Call[None]:
    """SET of many keys, in bounded lines."""
    pairs = _pairs(mapping)
    lines = [line for line, _ in set_lines(pairs, max_line_bytes)]
    return Call(lines, _finish_set, len(pairs))


def setex_call(key: Data, value: Data, ttl: float, max_line_bytes: int) -> Call[None]:
    """SETEX of one key; ``ttl`` in seconds (> 0, decimals allowed)."""
    item = TtlItem.of(as_bytes(key), as_bytes(value, "value"), ttl)
    line = encode_request(SetEx((item,)))
    if len(line) - 1 > max_line_bytes:
        raise _too_long("SETEX", item.key, len(line) - 1, max_line_bytes)
    return Call([line], _finish_setex, 1)


def get_call(key: Data) -> Call[bytes | None]:
    """GET of one key."""
    return Call([encode_request(Get((as_bytes(key),)))], _finish_get, 1)


def mget_call(keys: Iterable[Data], max_line_bytes: int) -> Call[dict[bytes, bytes]]:
    """GET of many keys, in bounded lines."""
    encoded = [as_bytes(k) for k in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(_make_get, batch, max_line_bytes, _same)]
    return Call(lines, _finish_mget, len(encoded))


def delete_call(keys: Iterable[Data], max_line_bytes: int) -> Call[int]:
    """DEL of keys, in bounded lines; the result is how many existed."""
    encoded = [as_bytes(k) for k in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(_make_del, batch, max_line_bytes, _same)]
    return Call(lines, _finish_delete, len(encoded))


def ping_call(text: Data = b"") -> Call[bytes]:
    """PING; the result is the echoed text."""
    return Call([encode_request(Ping(as_bytes(text, "text")))], _finish_ping)


def info_call() -> Call[dict[str, str]]:
    """INFO; the result is the fields as a dict."""
    return Call([encode_request(Info())], _finish_info)


def raw_call(line: Data) -> Call[bytes]:
    """One raw request line, sent as is (LF added); the result is the raw reply line."""
    data = as_bytes(line, "line")
    if data.endswith(b"\n"):
        data = data[:-1]
    if b"\n" in data:
        raise ValueError("a raw request is one line: it cannot contain LF")
    if not data.rstrip(b"\r"):
        raise ValueError("an empty line gets no reply; nothing to send")
    return Call([data + b"\n"], _finish_raw)


def is_error_reply(line: bytes) -> bool:
    """Whether a raw reply line is an ``ERR`` reply (``TAG:ERR ...``)."""
    _, _, rest = line.partition(b":")
    return rest == b"ERR" or rest.startswith(b"ERR ")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's messages lack the reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------
# The blocking client
# ---------------------------------------------------------------------------


class Client:
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

    Not thread-safe: use one client per thread (or :class:`AsyncClient`).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: float | None = DEFAULT_TIMEOUT, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_line_bytes = max_line_bytes
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
        return self._sock, self._selector

    def _idle_and_healthy(self) -> bool:
        assert self._sock is not None
        if self._reader.closing:
            return False
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
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
                    with contextlib.suppress(BlockingIOError):
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
                    except BlockingIOError:
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

    # -- commands ------------------------------------------------------------

    def get(self, key: Data) -> bytes | None:
        """The value of ``key``, or None if it does not exist."""
        return self._one(get_call(key))

    def mget(self, keys: Iterable[Data]) -> dict[bytes, bytes]:
        """The values of the keys that exist, as ``{key: value}`` (bytes keys)."""
        return self._one(mget_call(keys, self.max_line_bytes))

    def set(self, key: Data, value: Data) -> None:
        """Store ``value`` under ``key`` (clearing any TTL the key had)."""
        self._one(set_call(key, value, self.max_line_bytes))

    def mset(self, mapping: DataMapping) -> None:
        """Store every pair of ``mapping``; large mappings go in several lines.

        Not atomic across lines: if one line is refused, the lines before it
        were stored, and its error is raised after all replies are read.
        """
        self._one(mset_call(mapping, self.max_line_bytes))

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

    def setex(self, key: Data, value: Data, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (> 0, decimals allowed)."""
        self._one(setex_call(key, value, ttl, self.max_line_bytes))

    def delete(self, *keys: Data) -> int:
        """Delete keys; returns how many of them existed."""
        return self._one(delete_call(keys, self.max_line_bytes))

    def ping(self, text: Data = b"") -> bytes:
        """Round trip to the server; returns ``text`` as echoed."""
        return self._one(ping_call(text))

    def info(self) -> dict[str, str]:
        """The node's INFO fields (``keys``, ``peers``, ``used_memory``...)."""
        return self._one(info_call())

    def raw(self, line: Data) -> bytes:
        """Send one raw protocol line (e.g. ``"SET a:1,b:2"``); return the
        reply line exactly as sent by the server, without its LF.  Keys and
        values must already be percent-encoded; ``ERR`` replies are returned,
        not raised."""
        return self._one(raw_call(line))

    def pipeline(self) -> Pipeline:
        """A :class:`Pipeline` that queues commands and sends them in one write."""
        return Pipeline(self)


class _Queue:
    """Commands queued by a pipeline (shared by the sync and async pipelines)."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max_line_bytes = max_line_bytes
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


class Pipeline(_Queue):
    """Commands queued on a :class:`Client` and sent together.

    Each method queues its command and returns the pipeline, so calls chain.
    :meth:`execute` writes every queued request in one go, reads all replies
    and returns the results in order; an ``ERR`` reply's exception takes the
    place of its result (``raise_on_error=True`` raises the first one instead,
    after all replies are read).  Used as a context manager, the pipeline
    executes on exit (unless the block raised); read ``results`` afterwards.
    """

    def __init__(self, client: Client) -> None:
        super().__init__(client.max_line_bytes)
        self._client = client

    def get(self, key: Data) -> Pipeline:
        """Queue :meth:`Client.get`."""
        self._add(get_call(key))
        return self

    def mget(self, keys: Iterable[Data]) -> Pipeline:
        """Queue :meth:`Client.mget`."""
        self._add(mget_call(keys, self._max_line_bytes))
        return self

    def set(self, key: Data, value: Data) -> Pipeline:
        """Queue :meth:`Client.set`."""
        self._add(set_call(key, value, self._max_line_bytes))
        return self

    def mset(self, mapping: DataMapping) -> Pipeline:
        """Queue :meth:`Client.mset`."""
        self._add(mset_call(mapping, self._max_line_bytes))
        return self

    def setex(self, key: Data, value: Data, ttl: float) -> Pipeline:
        """Queue :meth:`Client.setex`."""
        self._add(setex_call(key, value, ttl, self._max_line_bytes))
        return self

    def delete(self, *keys: Data) -> Pipeline:
        """Queue :meth:`Client.delete`."""
        self._add(delete_call(keys, self._max_line_bytes))
        return self

    def ping(self, text: Data = b"") -> Pipeline:
        """Queue :meth:`Client.ping`."""
        self._add(ping_call(text))
        return self

    def info(self) -> Pipeline:
        """Queue :meth:`Client.info`."""
        self._add(info_call())
        return self

    def raw(self, line: Data) -> Pipeline:
        """Queue :meth:`Client.raw`."""
        self._add(raw_call(line))
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


# ---------------------------------------------------------------------------
# The asyncio client
# ---------------------------------------------------------------------------


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


class AsyncClient:
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
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_line_bytes = max_line_bytes
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
                    lambda: _Connection(self.address, generation), self.host, self.port)
        except TimeoutError as exc:
            raise ConnectionTimeoutError(
                f"{self.address}: timed out connecting after {self.timeout} s") from exc
        except OSError as exc:
            raise ConnectionLostError(f"cannot connect to {self.address}: {_reason(exc)}") from exc
        self._open.add(conn)
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

    async def get(self, key: Data) -> bytes | None:
        """The value of ``key``, or None if it does not exist."""
        return await self._one(get_call(key))

    async def mget(self, keys: Iterable[Data]) -> dict[bytes, bytes]:
        """The values of the keys that exist, as ``{key: value}`` (bytes keys)."""
        return await self._one(mget_call(keys, self.max_line_bytes))

    async def set(self, key: Data, value: Data) -> None:
        """Store ``value`` under ``key`` (clearing any TTL the key had)."""
        await self._one(set_call(key, value, self.max_line_bytes))

    async def mset(self, mapping: DataMapping) -> None:
        """Store every pair of ``mapping``, in bounded lines (see :meth:`Client.mset`)."""
        await self._one(mset_call(mapping, self.max_line_bytes))

    async def setex(self, key: Data, value: Data, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (> 0, decimals allowed)."""
        await self._one(setex_call(key, value, ttl, self.max_line_bytes))

    async def delete(self, *keys: Data) -> int:
        """Delete keys; returns how many of them existed."""
        return await self._one(delete_call(keys, self.max_line_bytes))

    async def ping(self, text: Data = b"") -> bytes:
        """Round trip to the server; returns ``text`` as echoed."""
        return await self._one(ping_call(text))

    async def info(self) -> dict[str, str]:
        """The node's INFO fields."""
        return await self._one(info_call())

    async def raw(self, line: Data) -> bytes:
        """Send one raw protocol line; return the raw reply line (see :meth:`Client.raw`)."""
        return await self._one(raw_call(line))

    def pipeline(self) -> AsyncPipeline:
        """An :class:`AsyncPipeline`: queue commands, then ``await execute()``."""
        return AsyncPipeline(self)


class AsyncPipeline(_Queue):
    """Commands queued on an :class:`AsyncClient`, sent together on one
    pooled connection by ``await execute()``; see :class:`Pipeline`.
    ``async with`` executes on exit unless the block raised."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client.max_line_bytes)
        self._client = client

    def get(self, key: Data) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.get`."""
        self._add(get_call(key))
        return self

    def mget(self, keys: Iterable[Data]) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.mget`."""
        self._add(mget_call(keys, self._max_line_bytes))
        return self

    def set(self, key: Data, value: Data) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.set`."""
        self._add(set_call(key, value, self._max_line_bytes))
        return self

    def mset(self, mapping: DataMapping) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.mset`."""
        self._add(mset_call(mapping, self._max_line_bytes))
        return self

    def setex(self, key: Data, value: Data, ttl: float) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.setex`."""
        self._add(setex_call(key, value, ttl, self._max_line_bytes))
        return self

    def delete(self, *keys: Data) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.delete`."""
        self._add(delete_call(keys, self._max_line_bytes))
        return self

    def ping(self, text: Data = b"") -> AsyncPipeline:
        """Queue :meth:`AsyncClient.ping`."""
        self._add(ping_call(text))
        return self

    def info(self) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.info`."""
        self._add(info_call())
        return self

    def raw(self, line: Data) -> AsyncPipeline:
        """Queue :meth:`AsyncClient.raw`."""
        self._add(raw_call(line))
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
