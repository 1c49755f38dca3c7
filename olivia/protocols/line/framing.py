"""Cutting a byte stream into LF-terminated lines, with a hard limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from olivia.protocols.line.escaping import LF


@dataclass
class LineFramer:
    """Cuts a byte stream into LF-terminated lines, never holding more than
    ``max_line_bytes`` of an unfinished line.

    ``feed`` returns the complete lines (without LF).  Once a line exceeds the
    limit, the lines before it are still returned, ``overflowed`` becomes True
    and every later call returns nothing: the server answers with
    ``line too long`` and hangs up.  A CR before the LF does not count.
    """

    max_line_bytes: int
    overflowed: bool = False
    _partial: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        if self.overflowed:
            return []
        limit = self.max_line_bytes
        if not self._partial and data[-1:] == b"\n" and len(data) <= limit:
            lines = data.split(b"\n")  # whole lines, none too long: the usual chunk
            lines.pop()
            return lines
        if LF not in data:
            self._partial += data
            if len(self._partial) > limit + 1:
                self._overflow()
            return []
        if self._partial:
            self._partial += data
            chunk = bytes(self._partial)
            self._partial.clear()
        else:
            chunk = data
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if len(chunk) > limit:  # only then can a single line be too long
            for index, line in enumerate(lines):
                # A CR before the LF is not part of the line, so not counted.
                if len(line) > limit and not (len(line) == limit + 1 and line[-1] == 13):
                    self._overflow()
                    return lines[:index]
        if len(rest) > limit + 1:  # +1: the CR of a line whose LF is still to come
            self._overflow()
        elif rest:
            self._partial += rest
        return lines

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held."""
        return len(self._partial)

    def _overflow(self) -> None:
        self.overflowed = True
        self._partial = bytearray()
