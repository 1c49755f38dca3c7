"""Glob patterns over raw keys, as Redis's KEYS and SCAN MATCH read them.

``*`` matches any run of bytes (none included), ``?`` any one byte,
``[abc]`` one of a set, ``[a-z]`` a range, ``[^a]`` anything but, and ``\\``
makes the next byte literal (``\\*`` is a star), inside a set too.  A ``[``
that is never closed is a literal ``[``.  Keys are bytes: a pattern is
matched byte by byte, so it works on binary keys as on text.

A pattern is translated once into a regular expression (cached): matching
a key is then one C call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _CARET, _DASH = b"*?[]\\^-"


def matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """A predicate: does a key match ``pattern``?"""
    if pattern == b"*":
        return _everything
    match = _compiled(pattern).fullmatch
    return lambda key: match(key) is not None


def matches(pattern: bytes, key: bytes) -> bool:
    return _compiled(pattern).fullmatch(key) is not None


def _everything(_: bytes) -> bool:
    return True


@functools.lru_cache(maxsize=256)
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(translate(pattern), re.DOTALL)


def translate(pattern: bytes) -> bytes:
    """The regular expression (bytes) equivalent to ``pattern``."""
    out: list[bytes] = []
    index, end = 0, len(pattern)
    while index < end:
        byte = pattern[index]
        index += 1
        if byte == _STAR:
            if not out or out[-1] != b".*":  # a run of stars is one star
                out.append(b".*")
        elif byte == _QUESTION:
            out.append(b".")
        elif byte == _BACKSLASH and index < end:
            out.append(_literal(pattern[index]))
            index += 1
        elif byte == _OPEN:
            translated, index = _set(pattern, index)
            out.append(translated)
        else:
            out.append(_literal(byte))
    return b"".join(out)


def _set(pattern: bytes, index: int) -> tuple[bytes, int]:
    """``[...]`` starting after its ``[``: (regex, index after its ``]``);
    an unclosed set is a literal ``[``."""
    start, end = index, len(pattern)
    negate = index < end and pattern[index] == _CARET
    if negate:
        index += 1
    members: list[bytes] = []
    while index < end and pattern[index] != _CLOSE:
        byte = pattern[index]
        if byte == _BACKSLASH and index + 1 < end:
            index += 1
            byte = pattern[index]
        index += 1
        if index + 1 < end and pattern[index] == _DASH and pattern[index + 1] != _CLOSE:
            high = pattern[index + 1]
            if high == _BACKSLASH and index + 2 < end:
                high = pattern[index + 2]
                index += 1
            index += 2
            low, high = min(byte, high), max(byte, high)  # [z-a] is [a-z], as in Redis
            members.append(_in_set(low) + b"-" + _in_set(high))
        else:
            members.append(_in_set(byte))
    if index >= end:
        return _literal(_OPEN), start
    body = b"".join(members)
    if not body:
        # [] matches nothing, [^] anything (no byte is in the empty set).
        return (b"." if negate else b"(?!)"), index + 1
    return b"[" + (b"^" if negate else b"") + body + b"]", index + 1


def _literal(byte: int) -> bytes:
    return re.escape(bytes((byte,)))


def _in_set(byte: int) -> bytes:
    return b"\\x%02x" % byte
