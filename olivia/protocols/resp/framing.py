"""RESP requests, sans I/O: bytes in, commands (lists of byte strings) out.

A client sends either a multibulk command (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``,
what every client library sends) or an inline command (``PING`` typed into
``nc``: words split on spaces, ``"..."`` and ``'...'`` quoting as Redis
reads it).  The framer keeps an incomplete command until the rest comes, and
never holds more than its limits: a bulk string over ``max_bulk_bytes``, an
inline line over it, or more than MAX_ARGS arguments is a protocol error.
A protocol error ends the connection, as Redis does: :attr:`overflowed` is
set, :attr:`error` says why, and the commands before it are still answered.
"""

from __future__ import annotations

from typing import Any

import hiredis  # parses RESP in C, some 10x faster than the pure loop below

MAX_ARGS = 1 << 20  # as Redis: *N over this is an error
_CRLF = b"\r\n"
#: Bytes a command may take beyond its bulk strings' limit (headers).
_SLACK = 1 << 16


class RespFramer:
    """Cuts a RESP byte stream into commands."""

    __slots__ = ("_buffer", "_reader", "_unfinished", "error", "max_bulk_bytes", "overflowed")

    def __init__(self, max_bulk_bytes: int, fast: bool = True) -> None:
        self.max_bulk_bytes = max_bulk_bytes
        self._buffer = b""
        self._reader: Any = hiredis.Reader() if fast else None
        # Bytes given to hiredis since its last complete command; -1 before
        # the first read.
        self._unfinished = -1
        self.overflowed = False
        self.error = ""

    def feed(self, data: bytes) -> list[list[bytes]]:
        """The complete commands in what has come so far (empty inline lines
        are skipped); after a protocol error, nothing more.

        A connection whose first byte starts a multibulk command (every
        client library's) is parsed by hiredis from then on; one that starts
        with an inline command (typed into nc) by the pure loop below, which
        takes both kinds.  So on the first kind an inline command is a
        protocol error (Redis would take it): clients send one kind."""
        if self.overflowed or not data:
            return []
        reader = self._reader
        if reader is not None and self._unfinished < 0:  # the first bytes decide
            self._unfinished = 0
            if data[0] != 42:
                self._reader = reader = None
        if reader is not None:
            return self._parsed_by_hiredis(reader, data)
        return self._framed(data)

    def _parsed_by_hiredis(self, reader: Any, data: bytes) -> list[list[bytes]]:
        limit = self.max_bulk_bytes
        try:
            reader.feed(data)
            commands: list[list[bytes]] = []
            while (command := reader.gets()) is not False:
                if type(command) is not list or not all(type(a) is bytes for a in command):
                    if command is None or command == []:
                        continue  # a null or empty array: no command
                    self._fail("expected '*' and bulk strings")
                    return commands
                if max(map(len, command)) > limit:
                    self._fail("invalid bulk length")
                    return commands
                commands.append(command)
        except hiredis.ProtocolError as exc:
            self._fail(str(exc) or "invalid multibulk request")
            return []
        # What is held for a command not complete yet is bounded, as the
        # pure framer's buffer is (a bulk over the limit, still coming).
        self._unfinished = 0 if commands else self._unfinished + len(data)
        if self._unfinished > limit + _SLACK:
            self._fail("too big request")
            return []
        return commands

    def _framed(self, data: bytes) -> list[list[bytes]]:
        buffer = self._buffer + data if self._buffer else data
        commands: list[list[bytes]] = []
        start = 0
        end = len(buffer)
        while start < end:
            if buffer[start] == 42:  # '*': multibulk
                command, after = self._multibulk(buffer, start)
            else:
                command, after = self._inline(buffer, start)
            if after < 0:
                break  # incomplete (or an error, with overflowed set)
            start = after
            if command:
                commands.append(command)
        self._buffer = b"" if self.overflowed else buffer[start:]
        if len(self._buffer) > self.max_bulk_bytes + _SLACK:
            self._fail("too big request")
            self._buffer = b""
        return commands

    def _fail(self, why: str) -> tuple[list[bytes], int]:
        self.overflowed = True
        self.error = why
        return [], -1

    def _multibulk(self, buffer: bytes, start: int) -> tuple[list[bytes], int]:
        # The hot loop of the RESP port: one call per command, the numbers
        # read with int() (it takes b"12"; a sign, spaces or "_" it also
        # takes are caught by the range checks or harmless).
        find = buffer.find
        line_end = find(b"\r\n", start)
        if line_end < 0:
            if len(buffer) - start > 32:
                return self._fail("invalid multibulk length")
            return [], -1
        try:
            count = int(buffer[start + 1:line_end])
        except ValueError:
            return self._fail("invalid multibulk length")
        if not -1 <= count <= MAX_ARGS:
            return self._fail("invalid multibulk length")
        position = line_end + 2
        args: list[bytes] = []
        append = args.append
        limit = self.max_bulk_bytes
        size_of_buffer = len(buffer)
        for _ in range(count):
            if position >= size_of_buffer:
                return [], -1
            if buffer[position] != 36:  # '$'
                return self._fail(f"expected '$', got '{chr(buffer[position])}'")
            line_end = find(b"\r\n", position)
            if line_end < 0:
                if size_of_buffer - position > 32:
                    return self._fail("invalid bulk length")
                return [], -1
            try:
                size = int(buffer[position + 1:line_end])
            except ValueError:
                return self._fail("invalid bulk length")
            if not 0 <= size <= limit:
                return self._fail("invalid bulk length")
            position = line_end + 2 + size
            if position + 2 > size_of_buffer:
                return [], -1
            append(buffer[line_end + 2:position])
            position += 2
        return args, position

    def _inline(self, buffer: bytes, start: int) -> tuple[list[bytes], int]:
        line_end = buffer.find(b"\n", start)
        if line_end < 0:
            if len(buffer) - start > self.max_bulk_bytes:
                return self._fail("too big inline request")
            return [], -1
        line = buffer[start:line_end]
        if line.endswith(b"\r"):
            line = line[:-1]
        words = split_inline(line)
        if words is None:
            return self._fail("unbalanced quotes in request")
        return words, line_end + 1


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
            ord("a"): b"\a"}


def split_inline(line: bytes) -> list[bytes] | None:
    """The words of an inline command, as Redis's sdssplitargs reads them:
    spaces separate, ``"..."`` allows ``\\n``, ``\\xHH`` and ``\\"`` escapes,
    ``'...'`` only ``\\'``; a closing quote must be followed by a space.
    None for unbalanced quotes."""
    words: list[bytes] = []
    index, end = 0, len(line)
    while True:
        while index < end and line[index] in b" \t\n\r\v\f":
            index += 1
        if index >= end:
            return words
        word = bytearray()
        quote = 0
        while True:
            if index >= end:
                if quote:
                    return None
                break
            byte = line[index]
            if quote == 34:  # inside "..."
                if byte == 92 and index + 3 < end and line[index + 1] == 120 and \
                        _is_hex(line[index + 2:index + 4]):
                    word.append(int(line[index + 2:index + 4], 16))
                    index += 3
                elif byte == 92 and index + 1 < end:
                    index += 1
                    word += _ESCAPES.get(line[index], bytes((line[index],)))
                elif byte == 34:
                    if index + 1 < end and line[index + 1] not in b" \t\n\r\v\f":
                        return None
                    quote = 0
                    index += 1
                    break
                else:
                    word.append(byte)
            elif quote == 39:  # inside '...'
                if byte == 92 and index + 1 < end and line[index + 1] == 39:
                    index += 1
                    word.append(39)
                elif byte == 39:
                    if index + 1 < end and line[index + 1] not in b" \t\n\r\v\f":
                        return None
                    quote = 0
                    index += 1
                    break
                else:
                    word.append(byte)
            elif byte in b" \t\n\r\v\f":
                break
            elif byte in (34, 39) and not word:
                quote = byte
            else:
                word.append(byte)
            index += 1
        words.append(bytes(word))


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)
