"""RESP (the Redis serialization protocol), sans I/O: the one codec for
everything in Olivia that speaks it (``olivia-bench --redis`` today, the
RESP port later).

* :func:`command` encodes a command as an array of bulk strings;
* :class:`ReplyCounter` counts complete replies in a stream of bytes (and
  the ``-ERR`` ones) without building them: what a load generator needs;
* :class:`ReplyReader` parses complete replies out of a stream of bytes,
  for the few commands whose answer matters (PING, INFO, GET, DBSIZE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias


class RespError(Exception):
    """Bytes that are not RESP where RESP was expected."""


def command(*args: bytes) -> bytes:
    """One command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class ReplyCounter:
    """Counts complete RESP2 replies in a byte stream, and the ``-ERR`` ones.

    Bulk strings are skipped by their length (they may hold CR LF), arrays by
    counting their elements; an incomplete reply waits for the next read.
    """

    __slots__ = ("_header", "_header_total", "_partial", "errors", "first_error")

    def __init__(self) -> None:
        self._partial = b""
        # No valid reply starts so; if one does, it is a 5-byte nil as below.
        self._header = b"$-2\r\n"
        self._header_total = 5
        self.errors = 0
        self.first_error = ""

    def feed(self, data: bytes) -> int:
        if self._partial:
            data = self._partial + data
            self._partial = b""
        # Fast path: with no '$' or '*' anywhere, every reply is a one-line
        # +, - or : reply, which cannot contain CR LF.
        if b"$" not in data and b"*" not in data and data[-2:] == b"\r\n":
            if data[:1] == b"-" or b"\n-" in data:
                self._line_errors(data)
            return data.count(b"\r\n")
        count, end = self._scan(data)
        if end < len(data):
            self._partial = data[end:]
        return count

    def _line_errors(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            if line[:1] == b"-":
                self._error(line)

    def _error(self, line: bytes) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = line[1:].decode("utf-8", "replace")

    def _scan(self, data: bytes) -> tuple[int, int]:
        """Complete top-level replies in ``data`` and where the first incomplete one starts."""
        count = 0
        pos = 0
        size = len(data)
        find = data.find
        startswith = data.startswith
        # GET replies of one value size share their header ($16\r\n): after a
        # bulk string, a reply that starts with the same header has the same
        # length, which skips the find and int() (the costly part) for most.
        header, header_total = self._header, self._header_total
        try:
            while pos < size:
                if startswith(header, pos):
                    stop = pos + header_total
                    if stop > size:
                        break
                    pos = stop
                    count += 1
                    continue
                end = find(b"\r\n", pos)
                if end < 0:
                    break
                kind = data[pos]
                if kind == 36:  # $: bulk string, skipped by its length
                    length = int(data[pos + 1:end])
                    if length < 0:
                        stop = end + 2
                    else:
                        stop = end + length + 4
                        header, header_total = data[pos:end + 2], stop - pos
                    if stop > size:
                        break
                elif kind == 42:  # *: array (MGET), its elements skipped as above
                    stop = end + 2
                    for _ in range(int(data[pos + 1:end])):  # *-1 (nil) has none
                        if startswith(header, stop):
                            stop += header_total
                        else:
                            stop = _resp_skip(data, stop)
                            if stop < 0:
                                break
                    if stop < 0 or stop > size:
                        break
                elif kind == 45:  # -: error
                    self._error(data[pos:end])
                    stop = end + 2
                elif kind == 43 or kind == 58:  # + simple string, : integer
                    stop = end + 2
                else:
                    raise RespError(f"unexpected RESP reply {data[pos:pos + 60]!r}")
                pos = stop
                count += 1
        except ValueError:
            raise RespError(f"malformed RESP reply {data[pos:pos + 60]!r}") from None
        finally:
            self._header, self._header_total = header, header_total
        return count, pos


def _resp_int(data: bytes, pos: int, end: int) -> int:
    try:
        return int(data[pos + 1:end])
    except ValueError:
        raise RespError(f"malformed RESP length {data[pos:end][:60]!r}") from None


def _resp_skip(data: bytes, pos: int) -> int:
    """End of the complete RESP value at ``pos``, or -1 if it is not all there."""
    end = data.find(b"\r\n", pos)
    if end < 0:
        return -1
    kind = data[pos]
    if kind == 36:  # $
        length = _resp_int(data, pos, end)
        stop = end + 2 if length < 0 else end + length + 4
        return stop if stop <= len(data) else -1
    if kind == 42:  # *: its elements follow; a nil array (*-1) has none
        count = _resp_int(data, pos, end)
        pos = end + 2
        for _ in range(count):
            pos = _resp_skip(data, pos)
            if pos < 0:
                return -1
        return pos
    if kind in (43, 45, 58):  # + - :
        return end + 2
    raise RespError(f"unexpected RESP reply {data[pos:pos + 60]!r}")


# -- reading replies -----------------------------------------------------------------

#: A header or simple-string line longer than this is garbage, not a reply
#: still arriving: without a bound, a stream with no CR LF would buffer forever.
MAX_LINE_BYTES = 64 * 1024
#: Arrays nested deeper than this are garbage (and would exhaust the stack).
MAX_DEPTH = 32
_INTEGER = re.compile(rb"-?[0-9]+")  # stricter than int(): no "+1", " 1" or "1_0"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A ``-`` reply: the server refused the command; the stream is still in step."""

    message: str


#: A parsed RESP2 reply: a simple or bulk string (bytes), an integer, nil
#: (None, for both the nil bulk string and the nil array), an error, or an array.
Reply: TypeAlias = "bytes | int | ErrorReply | list[Reply] | None"


class ReplyReader:
    """Parses complete RESP2 replies out of a byte stream, sans I/O.

    :meth:`feed` takes bytes as they arrive and returns the replies they
    completed, in order; an incomplete reply waits in the buffer for the next
    feed.  Bytes that are not RESP raise :class:`RespError`; the stream cannot
    be resynchronised after that, so drop the connection.  An incomplete
    array is parsed again from its start on each feed: fine for the replies
    a tool inspects, not meant for multi-megabyte arrays.
    """

    __slots__ = ("_buffer", "max_line_bytes")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self.max_line_bytes = max_line_bytes

    @property
    def buffered(self) -> int:
        """Bytes received that do not complete a reply yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Reply]:
        """Take bytes read from the connection; return the replies they completed."""
        self._buffer += data
        replies: list[Reply] = []
        pos = 0
        while (parsed := self._value(pos, 0)) is not None:
            reply, pos = parsed
            replies.append(reply)
        del self._buffer[:pos]
        return replies

    def _line_end(self, pos: int) -> int:
        """Where the CR LF ending the line at ``pos`` starts, or -1 if it has not arrived."""
        end = self._buffer.find(b"\r\n", pos)
        if end - pos > self.max_line_bytes or (
                end < 0 and len(self._buffer) - pos > self.max_line_bytes):
            raise RespError(f"no CR LF within {self.max_line_bytes} bytes "
                            f"{bytes(self._buffer[pos:pos + 60])!r}")
        return end

    def _value(self, pos: int, depth: int) -> tuple[Reply, int] | None:
        """The reply at ``pos`` and where the next one starts, or None if incomplete."""
        buffer = self._buffer
        if pos >= len(buffer):
            return None
        end = self._line_end(pos)
        if end < 0:
            return None
        kind, body = buffer[pos], bytes(buffer[pos + 1:end])
        if kind == 43:  # + simple string
            return body, end + 2
        if kind == 45:  # - error
            return ErrorReply(body.decode("utf-8", "replace")), end + 2
        if kind == 58:  # : integer
            return _integer(body), end + 2
        if kind == 36:  # $ bulk string
            return self._bulk(_length(body), end + 2)
        if kind == 42:  # * array
            return self._array(_length(body), end + 2, depth)
        raise RespError(f"unexpected RESP reply {bytes(buffer[pos:pos + 60])!r}")

    def _bulk(self, length: int, start: int) -> tuple[Reply, int] | None:
        if length < 0:
            return None, start
        stop = start + length
        if len(self._buffer) < stop + 2:
            return None
        if self._buffer[stop:stop + 2] != b"\r\n":
            raise RespError(f"a bulk string of {length} bytes is not followed by CR LF")
        return bytes(self._buffer[start:stop]), stop + 2

    def _array(self, count: int, pos: int, depth: int) -> tuple[Reply, int] | None:
        if count < 0:
            return None, pos
        if depth >= MAX_DEPTH:
            raise RespError(f"arrays nested more than {MAX_DEPTH} deep")
        items: list[Reply] = []
        for _ in range(count):
            parsed = self._value(pos, depth + 1)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos


def _integer(text: bytes) -> int:
    if _INTEGER.fullmatch(text) is None:
        raise RespError(f"malformed RESP integer {text[:60]!r}")
    return int(text)


def _length(text: bytes) -> int:
    """A bulk string's or array's length: -1 (nil) or more."""
    length = _integer(text)
    if length < -1:
        raise RespError(f"negative RESP length {length}")
    return length
