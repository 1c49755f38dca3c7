"""Writing request lines (what clients and peers send): ``[TAG:]VERB[ ARGS]\\n``.

One payload encoder per item shape; keys and values are escaped here, so
callers pass raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

from olivia.core.requests import TtlItem
from olivia.protocols.line.escaping import CR, LF, RESERVED_SEARCH, encode_field


def request_line(verb: bytes, payload: bytes = b"", tag: bytes = b"") -> bytes:
    """One request line, LF included."""
    head = tag + b":" + verb if tag else verb
    return head + b" " + payload + b"\n" if payload else head + b"\n"


def keys_payload(keys: Iterable[bytes]) -> bytes:
    """``k1,k2,...`` (GET, DEL, REQUEST LOOKUP)."""
    return b",".join(encode_field(k) for k in keys)


def pairs_payload(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``k:v,k:v,...`` (SET; also the echo of SAT and the items of GOT)."""
    if RESERVED_SEARCH(b"".join(chain.from_iterable(pairs))) is None:
        # Nothing to escape (the usual bulk load): one join, no per-field calls.
        return b",".join(map(b":".join, pairs))
    return b",".join(encode_field(k) + b":" + encode_field(v) for k, v in pairs)


def ttl_payload(items: Iterable[TtlItem]) -> bytes:
    """``k:v:ttl,...`` (SETEX, and the echo of SATEX), the TTL as written."""
    return b",".join(
        encode_field(i.key) + b":" + encode_field(i.value) + b":" + i.ttl_text for i in items
    )


def text_payload(text: bytes) -> bytes:
    """Free text (PING): sent as is, so it cannot hold CR or LF."""
    if LF in text or CR in text:
        raise ValueError("PING text cannot contain CR or LF")
    return text
