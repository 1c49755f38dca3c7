"""Reply lines, both ways: ``TAG:WORD[ PAYLOAD]\\n``.

The server side turns a verb's result (:mod:`olivia.core.requests`) into its
reply line; the word for each verb is in :data:`REPLY_WORDS`.  The client
side reads a reply line back (:func:`parse_reply`) and decodes its payload
by shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from olivia.core.errors import OliviaError, ProtocolError, error_from_message
from olivia.core.requests import (
    TTL_ITEMS,
    Ack,
    Admitted,
    Bye,
    Done,
    Fields,
    Found,
    KeyList,
    Payload,
    Request,
    Result,
    Text,
    TtlItem,
)
from olivia.core.values import HEADER_BYTES, needs_escape
from olivia.protocols.line.escaping import decode_field, encode_field, show
from olivia.protocols.line.requests import keys_payload, pairs_payload, ttl_payload

#: The reply word of each client verb; the peer dialect answers FULFILLED.
REPLY_WORDS: dict[str, bytes] = {
    "SET": b"SAT",
    "SETEX": b"SATEX",
    "GET": b"GOT",
    "DEL": b"DELETED",
    "PING": b"PONG",
    "INFO": b"INFO",
    "QUIT": b"BYE",
    "AUTH": b"AUTHED",
    "FORGET": b"FORGOTTEN",
}
FULFILLED = b"FULFILLED"
_TTL_TEXT = frozenset(b"0123456789.")


# -- server side ---------------------------------------------------------------------


def reply_line(word: bytes, payload: bytes = b"", tag: bytes = b"") -> bytes:
    head = tag + b":" + word
    return head + b" " + payload + b"\n" if payload else head + b"\n"


def error_line(message: str, tag: bytes = b"") -> bytes:
    """``TAG:ERR message`` as bytes; the message is forced onto one line."""
    one_line = message.replace("\r", " ").replace("\n", " ")
    return tag + b":ERR " + one_line.encode("utf-8", "backslashreplace") + b"\n"


def line_too_long(max_line_bytes: int) -> bytes:
    return error_line(f"line too long (limit {max_line_bytes} bytes)")


def found_payload(found: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``k:v,...`` of (key, stored form) pairs: values that need no escaping
    go out as stored (a slice)."""
    return b",".join(
        encode_field(key) + b":" + (encode_field(stored[HEADER_BYTES:]) if needs_escape(stored)
                                    else stored[HEADER_BYTES:])
        for key, stored in found)


def encode_result(request: Request, result: Result, tag: bytes = b"") -> bytes:
    """The reply line to ``request`` for ``result``."""
    word = REPLY_WORDS.get(request.verb.name, FULFILLED)
    if type(result) is Found:
        payload = found_payload(result.pairs)
    elif type(result) is Done:
        # SET and SETEX echo their items, in canonical form.
        items = request.items
        payload = ttl_payload(items) if request.verb.shape is TTL_ITEMS else pairs_payload(items)
    elif type(result) is KeyList:
        payload = keys_payload(result.keys)
    elif type(result) is Text:
        payload = result.text
    elif type(result) is Fields:
        payload = ",".join(f"{name}={value}" for name, value in result.fields).encode()
    elif type(result) is Payload or type(result) is Admitted:
        payload = result.data
    else:
        assert type(result) is Bye or type(result) is Ack
        payload = b""
    return reply_line(word, payload, tag)


# -- client side ---------------------------------------------------------------------


class ReplyLine(NamedTuple):
    """A reply line split into its parts; the payload is still encoded."""

    tag: bytes
    word: bytes
    payload: bytes

    @property
    def is_error(self) -> bool:
        return self.word == b"ERR"

    def error(self) -> OliviaError:
        """The typed exception for an ``ERR`` reply."""
        return error_from_message(self.payload.decode("utf-8", "replace"), self.tag)


def parse_reply(line: bytes) -> ReplyLine:
    """Split one reply line (LF and CR optional); ProtocolError if it is not one."""
    line = line.rstrip(b"\r\n")
    tag, sep, rest = line.partition(b":")
    word, _, payload = rest.partition(b" ")
    if not sep or not word.isalpha() or not word.isupper():
        raise ProtocolError(f"malformed reply {show(line)}")
    return ReplyLine(tag, word, payload)


def decode_pairs(payload: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """``k:v,...`` to raw (key, value) pairs."""
    if not payload:
        return ()
    pairs = []
    for item in payload.split(b","):
        key, sep, value = item.partition(b":")
        if not sep or b":" in value:
            raise ProtocolError(f"malformed reply item {show(item)}")
        pairs.append((decode_field(key), decode_field(value)))
    return tuple(pairs)


def decode_keys(payload: bytes) -> tuple[bytes, ...]:
    """``k,...`` to raw keys."""
    return tuple(decode_field(k) for k in payload.split(b",")) if payload else ()


def decode_ttl_items(payload: bytes) -> tuple[TtlItem, ...]:
    """``k:v:ttl,...`` (the SATEX echo) to items."""
    items = []
    for item in payload.split(b","):
        fields = item.split(b":")
        if len(fields) != 3 or not fields[2] or not _TTL_TEXT.issuperset(fields[2]):
            raise ProtocolError(f"malformed reply item {show(item)}")
        try:
            ttl = float(fields[2])
        except ValueError:
            raise ProtocolError(f"malformed reply item {show(item)}") from None
        items.append(TtlItem(decode_field(fields[0]), decode_field(fields[1]), ttl, fields[2]))
    return tuple(items)


def decode_fields(payload: bytes) -> tuple[tuple[str, str], ...]:
    """``name=value,...`` (INFO) to pairs of text."""
    if not payload:
        return ()
    fields = []
    for item in payload.decode("utf-8", "replace").split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise ProtocolError(f"malformed INFO field {item!r}")
        fields.append((name, value))
    return tuple(fields)
