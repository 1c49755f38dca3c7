"""What the store holds for a key: the value's version stamp, one byte of
flags, and the value's own bytes, in one ``bytes`` object::

    stamp (12 bytes, olivia.core.clock) | flags (1 byte) | value (raw bytes)

Values are kept raw, as clients sent them, so every front end (the line
protocol, RESP, HTTP) reads the same bytes.  One object per key instead of a
tuple keeps memory at one allocation per value.

The flag byte caches one fact about the value, worked out once per write so
that reads need not: ``ESCAPE`` is set when the value contains one of the
bytes ``% , : CR LF``, which a text front end has to escape.  A value without
them is sent by the line protocol as it is stored (a slice), which is what
keeps a GET a concatenation.
"""

from __future__ import annotations

import re

from olivia.core.clock import STAMP_BYTES

HEADER_BYTES = STAMP_BYTES + 1
#: The flag byte: the value holds a byte a text front end must escape.
ESCAPE = 1
PLAIN_FLAGS = b"\x00"
ESCAPE_FLAGS = b"\x01"

#: The search for a byte a text front end escapes (None: the value is plain).
NEEDS_ESCAPE = re.compile(rb"[%,:\r\n]").search
_NEEDS_ESCAPE = NEEDS_ESCAPE


def flags_for(value: bytes) -> bytes:
    """The flag byte for ``value``."""
    return ESCAPE_FLAGS if _NEEDS_ESCAPE(value) is not None else PLAIN_FLAGS


def pack(stamp: bytes, value: bytes) -> bytes:
    """The stored form of ``value`` written at ``stamp``."""
    return stamp + flags_for(value) + value


def plain_header(stamp: bytes) -> bytes:
    """The header of a value known to need no escaping (checked by the caller),
    so a batch of such writes costs one concatenation each."""
    return stamp + PLAIN_FLAGS


def value_of(stored: bytes) -> bytes:
    return stored[HEADER_BYTES:]


def stamp_of(stored: bytes) -> bytes:
    return stored[:STAMP_BYTES]


def needs_escape(stored: bytes) -> bool:
    return stored[STAMP_BYTES] == ESCAPE
