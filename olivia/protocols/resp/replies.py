"""RESP replies as bytes, for RESP2 and RESP3 (after ``HELLO 3``).

Only the types the RESP port sends: simple strings, errors, integers, bulk
strings, arrays, nil, and (RESP3) maps.  Errors carry Redis's prefix: the
error code for the codes the contract names (``-NOAUTH``, ``-WRONGPASS``,
``-OOM``), Redis's own wording where clients match on it (``ERR value is not
an integer or out of range``, ``ERR no such key``), else ``-ERR`` and the
message the line protocol sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from olivia.core.errors import ErrorCode, ProtocolError

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NIL2 = b"$-1\r\n"
NIL3 = b"_\r\n"
EMPTY_ARRAY = b"*0\r\n"

#: Redis's own wording, for the codes whose message a Redis client matches on.
_REDIS_WORDING = {
    ErrorCode.NOTINT: "ERR value is not an integer or out of range",
    ErrorCode.NOKEY: "ERR no such key",
}


def simple(text: bytes) -> bytes:
    return b"+" + text + b"\r\n"


def integer(number: int) -> bytes:
    return b":%d\r\n" % number


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def error(message: str) -> bytes:
    """``-message``; the message forced onto one line."""
    one_line = message.replace("\r", " ").replace("\n", " ")
    return b"-" + one_line.encode("utf-8", "backslashreplace") + b"\r\n"


def error_of(exc: ProtocolError) -> bytes:
    """The RESP error for a core error: the code as its prefix when the
    contract names one, Redis's wording for NOTINT and NOKEY."""
    wording = _REDIS_WORDING.get(exc.code)
    if wording is not None:
        return error(wording)
    if exc.code.named:
        return error(exc.message)  # it starts with its code: -NOAUTH ..., -OOM ...
    return error("ERR " + exc.message)


class Encoder:
    """The reply types of one connection's protocol version (2 or 3)."""

    __slots__ = ("nil", "version")

    def __init__(self, version: int = 2) -> None:
        self.version = version
        self.nil = NIL3 if version == 3 else NIL2

    def bulk_or_nil(self, data: bytes | None) -> bytes:
        return self.nil if data is None else bulk(data)

    def array(self, items: Sequence[bytes]) -> bytes:
        """An array of already-encoded replies."""
        return b"*%d\r\n" % len(items) + b"".join(items)

    def bulks(self, items: Iterable[bytes | None]) -> bytes:
        encoded = [self.bulk_or_nil(item) for item in items]
        return b"*%d\r\n" % len(encoded) + b"".join(encoded)

    def mapping(self, pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
        """A map of bulk-string keys to encoded values (RESP2: a flat array)."""
        head = b"%%%d\r\n" % len(pairs) if self.version == 3 else b"*%d\r\n" % (2 * len(pairs))
        return head + b"".join(bulk(key) + value for key, value in pairs)
