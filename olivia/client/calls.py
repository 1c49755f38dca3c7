"""The sans-IO core of the clients: calls (request lines and how their
replies become a result) and the reader that matches replies to calls.

Every client (blocking, asyncio, their pipelines) builds the same
:class:`Call` objects here and feeds the bytes it reads to a
:class:`ReplyReader`; only moving bytes differs between them.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Generic, TypeVar

from olivia.core.errors import LineTooLongError, OliviaError, ProtocolError
from olivia.core.requests import KeyTtl, Rename, Swap, TtlItem
from olivia.protocols.line.escaping import encode_field, show
from olivia.protocols.line.framing import LineFramer
from olivia.protocols.line.parser import DEFAULT_SCAN_COUNT
from olivia.protocols.line.replies import (
    ReplyLine,
    decode_count,
    decode_expiries,
    decode_fields,
    decode_keys,
    decode_numbers,
    decode_pairs,
    decode_scan_page,
    decode_ttls,
    parse_reply,
)
from olivia.protocols.line.requests import (
    amounts_payload,
    key_ttls_payload,
    keys_payload,
    pairs_payload,
    rename_payload,
    request_line,
    scan_payload,
    swap_payload,
    text_payload,
    ttl_payload,
)

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

T = TypeVar("T")
X = TypeVar("X")
#: A key or value: bytes as they are, str as UTF-8, int and float as str()
#: (as redis-py takes them).
Data = str | bytes | int | float
#: What mset takes: str or bytes keys and values.  The key type is Any because
#: Mapping is invariant in it, so ``dict[str, str]`` would not be a
#: ``Mapping[str | bytes, ...]``; a key of another type raises TypeError.
DataMapping = Mapping[Any, Data]


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


def decoded(call: Call[T]) -> Call[Any]:
    """``call`` with its result's bytes turned into str (``decode_responses``):
    UTF-8, with bytes that are not UTF-8 kept as surrogates (surrogateescape),
    so nothing is lost and nothing raises."""
    finish = call.finish

    def finish_decoded(lines: list[bytes]) -> Any:
        return _to_str(finish(lines))

    call.finish = finish_decoded
    return call


def _to_str(result: Any) -> Any:
    if isinstance(result, bytes):
        return result.decode("utf-8", "surrogateescape")
    if isinstance(result, dict):
        return {_to_str(key): _to_str(value) for key, value in result.items()}
    if isinstance(result, list | tuple):
        return type(result)(_to_str(item) for item in result)
    return result


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


def _reply(line: bytes, expected: bytes) -> ReplyLine:
    """Parse a reply line; raise the server's error, or _BadReply if out of step."""
    try:
        reply = parse_reply(line)
    except ProtocolError as exc:
        raise _BadReply(f"unreadable reply {show(line)}: {exc}") from None
    if reply.is_error:
        raise reply.error()
    if reply.word != expected:
        raise _BadReply(f"unexpected reply {show(line)} (expected {expected.decode()})")
    return reply


def _decoded(decode: Callable[[bytes], X], payload: bytes, line: bytes) -> X:
    try:
        return decode(payload)
    except ProtocolError as exc:
        raise _BadReply(f"unreadable reply {show(line)}: {exc}") from None


def _finish_stored(word: bytes) -> Callable[[list[bytes]], None]:
    # SET and SETEX echo every item; nothing in the echo is needed, so a
    # success is recognised without parsing it (loads send millions).
    prefix = b":" + word + b" "

    def finish(lines: list[bytes]) -> None:
        for line in lines:
            if not line.startswith(prefix):
                _reply(line, word)

    return finish


_finish_set = _finish_stored(b"SAT")
_finish_setex = _finish_stored(b"SATEX")


def _pairs_of(line: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return _decoded(decode_pairs, _reply(line, b"GOT").payload, line)


def _finish_get(lines: list[bytes]) -> bytes | None:
    items = _pairs_of(lines[0])
    return items[0][1] if items else None


def _finish_mget(lines: list[bytes]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for line in lines:
        found.update(_pairs_of(line))
    return found


def _finish_delete(lines: list[bytes]) -> int:
    return sum(len(_decoded(decode_keys, _reply(line, b"DELETED").payload, line))
               for line in lines)


def _finish_echo(lines: list[bytes]) -> bytes:
    return _reply(lines[0], b"PONG").payload


def _finish_ping(lines: list[bytes]) -> bool:
    _reply(lines[0], b"PONG")
    return True


def _finish_info(lines: list[bytes]) -> dict[str, str]:
    return dict(_decoded(decode_fields, _reply(lines[0], b"INFO").payload, lines[0]))


def _finish_raw(lines: list[bytes]) -> bytes:
    return lines[0]


def as_bytes(data: Data, what: str = "key") -> bytes:
    """A key or value as bytes: ``str`` is encoded as UTF-8, ``int`` and
    ``float`` are written as ``str()`` writes them (``bool`` is refused, as
    redis-py refuses it: ``True`` is rarely meant as ``"True"``)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, int | float) and not isinstance(data, bool):
        return repr(data).encode()
    raise TypeError(f"{what} must be str, bytes, int or float, not {type(data).__name__}")


def _too_long(verb: str, key: bytes, length: int, limit: int) -> LineTooLongError:
    return LineTooLongError(
        f"{verb} of key {show(key)} would be a request line of {length} bytes, over the "
        f"server's max_line_bytes ({limit}); nothing was sent (store a smaller value, or "
        "raise max_line_bytes in the server's config.toml and pass it to the client)")


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


def _encode_batch(verb: bytes, batch: list[bytes], max_line_bytes: int) -> list[bytes]:
    """Key request lines for a batch; halved until each line fits max_line_bytes."""
    line = request_line(verb, keys_payload(batch))
    if len(line) - 1 <= max_line_bytes:
        return [line]
    if len(batch) == 1:
        raise _too_long(verb.decode(), batch[0], len(line) - 1, max_line_bytes)
    middle = len(batch) // 2
    return (_encode_batch(verb, batch[:middle], max_line_bytes)
            + _encode_batch(verb, batch[middle:], max_line_bytes))


def _key_size(key: bytes) -> int:
    return len(key) + 1


def _pairs(mapping: DataMapping | Iterable[tuple[Data, Data]]
           ) -> list[tuple[bytes, bytes]]:
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return [(as_bytes(k), as_bytes(v, "value")) for k, v in items]


def _set_lines(batch: list[tuple[bytes, bytes]], max_line_bytes: int
               ) -> list[tuple[bytes, int]]:
    line = request_line(b"SET", pairs_payload(batch))
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
    line = request_line(b"SETEX", ttl_payload((item,)))
    if len(line) - 1 > max_line_bytes:
        raise _too_long("SETEX", item.key, len(line) - 1, max_line_bytes)
    return Call([line], _finish_setex, 1)


def get_call(key: Data) -> Call[bytes | None]:
    """GET of one key."""
    return Call([request_line(b"GET", keys_payload((as_bytes(key),)))], _finish_get, 1)


def mget_call(keys: Iterable[Data], max_line_bytes: int) -> Call[dict[bytes, bytes]]:
    """GET of many keys, in bounded lines."""
    encoded = [as_bytes(k) for k in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(b"GET", batch, max_line_bytes)]
    return Call(lines, _finish_mget, len(encoded))


def delete_call(keys: Iterable[Data], max_line_bytes: int) -> Call[int]:
    """DEL of keys, in bounded lines; the result is how many existed."""
    encoded = [as_bytes(k) for k in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(b"DEL", batch, max_line_bytes)]
    return Call(lines, _finish_delete, len(encoded))


def ping_call() -> Call[bool]:
    """PING; True when the server answers."""
    return Call([request_line(b"PING")], _finish_ping)


def echo_call(text: Data) -> Call[bytes]:
    """PING text; the result is the echoed text."""
    return Call([request_line(b"PING", text_payload(as_bytes(text, "text")))], _finish_echo)


# -- the data verbs (docs/protocol.md, "The data verbs") ------------------------------


def _one_line(verb: bytes, payload: bytes, finish: Callable[[list[bytes]], T],
              max_line_bytes: int, key: bytes) -> Call[T]:
    line = request_line(verb, payload)
    if len(line) - 1 > max_line_bytes:
        raise _too_long(verb.decode(), key, len(line) - 1, max_line_bytes)
    return Call([line], finish, 1)


def _payload_of(word: bytes, decode: Callable[[bytes], X]) -> Callable[[bytes], X]:
    def read(line: bytes) -> X:
        return _decoded(decode, _reply(line, word).payload, line)
    return read


def incr_call(key: Data, amount: int, max_line_bytes: int) -> Call[int]:
    """INCR key:amount; the result is the new value."""
    raw = as_bytes(key)
    read = _payload_of(b"INCRED", decode_numbers)
    return _one_line(b"INCR", amounts_payload([(raw, _integer(amount))]),
                     lambda lines: read(lines[0])[0][1], max_line_bytes, raw)


def _integer(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"amount must be an int, not {type(amount).__name__}")
    return amount


def setnx_call(key: Data, value: Data, max_line_bytes: int) -> Call[bool]:
    """SETNX key:value; True if it was set (the key existed nowhere)."""
    raw = as_bytes(key)
    read = _payload_of(b"SATNX", decode_keys)
    return _one_line(b"SETNX", pairs_payload([(raw, as_bytes(value, "value"))]),
                     lambda lines: bool(read(lines[0])), max_line_bytes, raw)


def cas_call(key: Data, old: Data, new: Data, max_line_bytes: int) -> Call[bool]:
    """CAS key:old:new; True if the value was old and is now new."""
    raw = as_bytes(key)

    def finish(lines: list[bytes]) -> bool:
        swapped = lines[0].partition(b":")[2].startswith(b"CASSED")
        _reply(lines[0], b"CASSED" if swapped else b"CASFAILED")  # raises an ERR
        return swapped

    return _one_line(b"CAS", swap_payload(Swap(raw, as_bytes(old, "value"),
                                               as_bytes(new, "value"))),
                     finish, max_line_bytes, raw)


def delifeq_call(key: Data, value: Data, max_line_bytes: int) -> Call[bool]:
    """DELIFEQ key:value; True if the key held value and was deleted."""
    raw = as_bytes(key)
    read = _payload_of(b"DELETED", decode_keys)
    return _one_line(b"DELIFEQ", pairs_payload([(raw, as_bytes(value, "value"))]),
                     lambda lines: bool(read(lines[0])), max_line_bytes, raw)


def getdel_call(key: Data) -> Call[bytes | None]:
    """GETDEL key; its value (None if it did not exist), and it is deleted."""
    def finish(lines: list[bytes]) -> bytes | None:
        pairs = _decoded(decode_pairs, _reply(lines[0], b"GOT").payload, lines[0])
        return pairs[0][1] if pairs else None
    return Call([request_line(b"GETDEL", keys_payload((as_bytes(key),)))], finish, 1)


def rename_call(old: Data, new: Data, max_line_bytes: int) -> Call[bool]:
    """RENAME old:new; True (NoSuchKeyError if old does not exist)."""
    raw = as_bytes(old)

    def finish(lines: list[bytes]) -> bool:
        _reply(lines[0], b"RENAMED")
        return True

    return _one_line(b"RENAME", rename_payload(Rename(raw, as_bytes(new))), finish,
                     max_line_bytes, raw)


def exists_call(keys: Sequence[Data], max_line_bytes: int) -> Call[int]:
    """EXISTS; how many of ``keys`` exist (a key named twice counts twice, as in Redis)."""
    encoded = [as_bytes(key) for key in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(b"EXISTS", batch, max_line_bytes)]

    def finish(replies: list[bytes]) -> int:
        present = {key for line in replies
                   for key in _decoded(decode_keys, _reply(line, b"EXISTS").payload, line)}
        return sum(key in present for key in encoded)

    return Call(lines, finish, len(encoded))


def expire_call(key: Data, seconds: float, max_line_bytes: int) -> Call[bool]:
    """EXPIRE key:seconds; True if the key exists (and now has that TTL)."""
    item = TtlItem.of(as_bytes(key), b"", seconds)
    read = _payload_of(b"EXPIRY", decode_expiries)
    return _one_line(b"EXPIRE", key_ttls_payload([KeyTtl(item.key, item.ttl, item.ttl_text)]),
                     lambda lines: bool(read(lines[0])), max_line_bytes, item.key)


def ttl_call(key: Data, scale: float) -> Call[int]:
    """TTL key, as Redis answers it: the time left (in seconds times
    ``scale``, rounded), -1 for a key with no TTL, -2 for none."""
    def finish(lines: list[bytes]) -> int:
        pairs = _decoded(decode_ttls, _reply(lines[0], b"TTL").payload, lines[0])
        if not pairs:
            return -2
        seconds = pairs[0][1]
        return -1 if seconds is None else round(seconds * scale)
    return Call([request_line(b"TTL", keys_payload((as_bytes(key),)))], finish, 1)


def ttls_call(keys: Iterable[Data], max_line_bytes: int) -> Call[dict[bytes, float | None]]:
    """TTL of many keys, in bounded lines: {key: seconds left, or None for no
    TTL} of the keys that exist."""
    encoded = [as_bytes(key) for key in keys]
    lines = [line for batch in _batches(encoded, _key_size)
             for line in _encode_batch(b"TTL", batch, max_line_bytes)]

    def finish(replies: list[bytes]) -> dict[bytes, float | None]:
        return {key: seconds for line in replies
                for key, seconds in _decoded(decode_ttls, _reply(line, b"TTL").payload, line)}

    return Call(lines, finish, len(encoded))


def persist_call(key: Data) -> Call[bool]:
    """PERSIST key; True if it had a TTL (now removed)."""
    read = _payload_of(b"PERSISTED", decode_keys)
    return Call([request_line(b"PERSIST", keys_payload((as_bytes(key),)))],
                lambda lines: bool(read(lines[0])), 1)


def keys_call(pattern: Data) -> Call[list[bytes]]:
    """KEYS pattern; every matching key of the cluster."""
    read = _payload_of(b"KEYS", decode_keys)
    raw = as_bytes(pattern, "pattern")
    return Call([request_line(b"KEYS", encode_field(raw) if raw != b"*" else b"")],
                lambda lines: list(read(lines[0])))


#: What scan() returns as the cursor when the scan is over: 0, as redis-py's
#: scan does (so ``while cursor != 0`` loops work); otherwise Olivia's cursor.
ScanCursor = int | str


def scan_call(cursor: ScanCursor, match: Data | None,
              count: int | None) -> Call[tuple[ScanCursor, list[bytes]]]:
    """SCAN; (the cursor to send next, 0 when done; a page of keys)."""
    text = str(cursor).encode()
    pattern = b"*" if match is None else as_bytes(match, "pattern")
    size = DEFAULT_SCAN_COUNT if count is None else count
    read = _payload_of(b"SCANNED", decode_scan_page)

    def finish(lines: list[bytes]) -> tuple[ScanCursor, list[bytes]]:
        page = read(lines[0])
        after: ScanCursor = 0 if page.cursor == b"0" else page.cursor.decode()
        return after, list(page.keys)

    return Call([request_line(b"SCAN", scan_payload(text, size, pattern))], finish)


def dbsize_call() -> Call[int]:
    """COUNT; the live keys of the cluster."""
    read = _payload_of(b"COUNT", decode_count)
    return Call([request_line(b"COUNT")], lambda lines: read(lines[0]).count)


def info_call() -> Call[dict[str, str]]:
    """INFO; the result is the fields as a dict."""
    return Call([request_line(b"INFO")], _finish_info)


def auth_call(password: Data) -> Call[None]:
    """AUTH, sent first on every connection of a client given a password."""
    secret = as_bytes(password, "password")
    if not secret or b"\n" in secret or b"\r" in secret:
        raise ValueError("a password is one line of at least one byte")
    return Call([request_line(b"AUTH", secret)], _finish_stored(b"AUTHED"))


def tls_context(ssl_option: bool | ssl.SSLContext | None,
                ca_certs: str | None = None) -> ssl.SSLContext | None:
    """The client's TLS context: ``ssl=True`` verifies the server against the
    system's CAs, or ``ca_certs`` (a PEM file) when given; an SSLContext is
    used as it is; None or False: no TLS."""
    if isinstance(ssl_option, ssl.SSLContext):
        return ssl_option
    if not ssl_option and ca_certs is None:
        return None
    return ssl.create_default_context(cafile=ca_certs)


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
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.reason}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's messages lack the reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


