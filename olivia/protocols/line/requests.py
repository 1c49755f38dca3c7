"""Writing request lines (what clients and peers send): ``[TAG:]VERB[ ARGS]\\n``.

One payload encoder per item shape; keys and values are escaped here, so
callers pass raw bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

from olivia.core.requests import KeyTtl, Rename, Swap, TtlItem
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


def amounts_payload(items: Iterable[tuple[bytes, int]]) -> bytes:
    """``k:n,...`` (INCR, DECR)."""
    return b",".join(encode_field(key) + b":%d" % amount for key, amount in items)


def swap_payload(swap: Swap) -> bytes:
    """``k:old:new`` (CAS)."""
    return b":".join(map(encode_field, swap))


def rename_payload(rename: Rename) -> bytes:
    """``old:new`` (RENAME)."""
    return encode_field(rename.old) + b":" + encode_field(rename.new)


def key_ttls_payload(items: Iterable[KeyTtl]) -> bytes:
    """``k:ttl,...`` (EXPIRE, and the echo of EXPIRY)."""
    return b",".join(encode_field(item.key) + b":" + item.ttl_text for item in items)


def scan_payload(cursor: bytes, count: int, pattern: bytes) -> bytes:
    """``cursor:count:pattern`` (SCAN)."""
    return cursor + b":%d:" % count + encode_field(pattern)


#: How the items of each read-modify-write verb are written, for a node that
#: forwards the request to the keys' home (olivia.core.atomic): the items
#: are a sequence (a one-item tuple for CAS and RENAME).
FORWARDED: dict[str, Callable[[Any], bytes]] = {
    "INCR": amounts_payload,
    "SETNX": pairs_payload,
    "CAS": lambda items: swap_payload(items[0]),
    "DELIFEQ": pairs_payload,
    "GETDEL": keys_payload,
    "RENAME": lambda items: rename_payload(items[0]),
    "EXPIRE": key_ttls_payload,
    "PERSIST": keys_payload,
    "TTL": keys_payload,
}
