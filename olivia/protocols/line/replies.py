"""Reply lines, both ways: ``TAG:WORD[ PAYLOAD]\\n``.

The server side turns a verb's result (:mod:`olivia.core.requests`) into its
reply line; the word for each verb is in :data:`REPLY_WORDS`.  The client
side reads a reply line back (:func:`parse_reply`) and decodes its payload
by shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from olivia.core.errors import OliviaError, ProtocolError, error_from_message
from olivia.core.requests import (
    TTL_ITEMS,
    Ack,
    Admitted,
    Bye,
    Count,
    Done,
    Expiries,
    Fields,
    Found,
    KeyList,
    KeyTtl,
    Numbers,
    Payload,
    Renamed,
    Request,
    Result,
    ScanPage,
    Swapped,
    Text,
    TtlItem,
    Ttls,
    Values,
)
from olivia.core.values import HEADER_BYTES, needs_escape
from olivia.protocols.line.escaping import decode_field, encode_field, show
from olivia.protocols.line.requests import (
    key_ttls_payload,
    keys_payload,
    pairs_payload,
    ttl_payload,
)

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
    "INCR": b"INCRED",
    "DECR": b"DECRED",
    "SETNX": b"SATNX",
    "CAS": b"CASSED",  # or CASFAILED
    "DELIFEQ": b"DELETED",
    "GETDEL": b"GOT",
    "RENAME": b"RENAMED",
    "EXISTS": b"EXISTS",
    "TTL": b"TTL",
    "EXPIRE": b"EXPIRY",
    "PERSIST": b"PERSISTED",
    "SCAN": b"SCANNED",
    "KEYS": b"KEYS",
    "COUNT": b"COUNT",
}
CAS_FAILED = b"CASFAILED"
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
    elif type(result) is Swapped:
        if not result.swapped:
            word = CAS_FAILED
        payload = encode_field(result.key)
        if result.value is not None:
            payload += b":" + encode_field(result.value)
    else:
        payload = _payload_of(result)
    return reply_line(word, payload, tag)


def _payload_of(result: Result) -> bytes:
    """The payload of the results the atomic verbs, SCAN and COUNT give."""
    if type(result) is Numbers:
        return b",".join(encode_field(key) + b":%d" % number for key, number in result.pairs)
    if type(result) is Values:
        return pairs_payload(result.pairs)
    if type(result) is Renamed:
        return encode_field(result.old) + b":" + encode_field(result.new)
    if type(result) is Ttls:
        return b",".join(encode_field(key) + b":" + ttl_text(ttl) for key, ttl in result.pairs)
    if type(result) is Expiries:
        return key_ttls_payload(result.items)
    if type(result) is ScanPage:
        keys = keys_payload(result.keys)
        return result.cursor + b" " + keys if keys else result.cursor
    if type(result) is Count:
        return b"%d" % result.count
    assert type(result) is Bye or type(result) is Ack, result
    return b""


def ttl_text(ttl: float | None) -> bytes:
    """Seconds left as TTL answers them: up to 3 decimals, ``-1`` for none."""
    if ttl is None:
        return b"-1"
    return (b"%.3f" % ttl).rstrip(b"0").rstrip(b".")


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


def decode_numbers(payload: bytes) -> tuple[tuple[bytes, int], ...]:
    """``k:n,...`` (INCRED, DECRED) to (key, integer) pairs."""
    pairs = []
    for key, text in decode_pairs(payload):
        try:
            pairs.append((key, int(text)))
        except ValueError:
            raise ProtocolError(f"malformed reply item {show(text)}") from None
    return tuple(pairs)


def decode_ttls(payload: bytes) -> tuple[tuple[bytes, float | None], ...]:
    """``k:s,...`` (TTL) to (key, seconds left or None for no TTL)."""
    pairs = []
    for key, text in decode_pairs(payload):
        try:
            seconds = float(text)
        except ValueError:
            raise ProtocolError(f"malformed reply item {show(text)}") from None
        pairs.append((key, None if seconds < 0 else seconds))
    return tuple(pairs)


def decode_expiries(payload: bytes) -> tuple[KeyTtl, ...]:
    """``k:ttl,...`` (EXPIRY) to items."""
    items = []
    for key, text in decode_pairs(payload):
        try:
            items.append(KeyTtl(key, float(text), text))
        except ValueError:
            raise ProtocolError(f"malformed reply item {show(text)}") from None
    return tuple(items)


def decode_swapped(word: bytes, payload: bytes) -> Swapped:
    """CASSED k:new / CASFAILED k[:current]."""
    raw_key, sep, value = payload.partition(b":")
    return Swapped(decode_field(raw_key), word == b"CASSED",
                   decode_field(value) if sep else None)


def decode_scan_page(payload: bytes) -> ScanPage:
    """``next [k,...]`` (SCANNED)."""
    cursor, _, keys = payload.partition(b" ")
    if not cursor:
        raise ProtocolError("malformed SCANNED reply: no cursor")
    return ScanPage(cursor, decode_keys(keys))


def decode_renamed(payload: bytes) -> Renamed:
    pairs = decode_pairs(payload)
    if len(pairs) != 1:
        raise ProtocolError(f"malformed RENAMED reply {show(payload)}")
    return Renamed(*pairs[0])


def decode_count(payload: bytes) -> Count:
    if not payload.isdigit():
        raise ProtocolError(f"malformed COUNT reply {show(payload)}")
    return Count(int(payload))


def decode_result(reply: ReplyLine) -> Result:
    """The result a reply line of the atomic verbs, SCAN or COUNT stands
    for (what a forwarded request's home answered); an ERR is raised."""
    if reply.is_error:
        raise reply.error()
    decode = _RESULT_DECODERS.get(reply.word)
    if decode is None:
        raise ProtocolError(f"unexpected reply word {show(reply.word)}")
    return decode(reply.word, reply.payload)


_RESULT_DECODERS: dict[bytes, Callable[[bytes, bytes], Result]] = {
    b"INCRED": lambda _, payload: Numbers(decode_numbers(payload)),
    b"DECRED": lambda _, payload: Numbers(decode_numbers(payload)),
    b"SATNX": lambda _, payload: KeyList(decode_keys(payload)),
    b"DELETED": lambda _, payload: KeyList(decode_keys(payload)),
    b"PERSISTED": lambda _, payload: KeyList(decode_keys(payload)),
    b"EXISTS": lambda _, payload: KeyList(decode_keys(payload)),
    b"KEYS": lambda _, payload: KeyList(decode_keys(payload)),
    b"CASSED": decode_swapped,
    b"CASFAILED": decode_swapped,
    b"GOT": lambda _, payload: Values(decode_pairs(payload)),
    b"RENAMED": lambda _, payload: decode_renamed(payload),
    b"TTL": lambda _, payload: Ttls(decode_ttls(payload)),
    b"EXPIRY": lambda _, payload: Expiries(decode_expiries(payload)),
    b"SCANNED": lambda _, payload: decode_scan_page(payload),
    b"COUNT": lambda _, payload: decode_count(payload),
}
