"""The Olivia line protocol, sans I/O.

Everything here is a pure function or class over ``bytes``: the server, the
clients, the peer links and the benchmark all use it, and none of it touches a
socket.  Parsing returns command or reply objects, or raises a
:class:`~olivia.errors.ProtocolError` whose message is fit to send back as
``ERR``.  Formatting turns those objects back into wire bytes.

Wire format (see docs/protocol.md for the full reference)::

    request:  [TAG:]VERB[ ARGS]\\n      ARGS = item[,item...]
    reply:    TAG:WORD[ PAYLOAD]\\n      (TAG empty when the request had none)

Inside keys and values the five bytes ``% , : CR LF`` are percent-encoded;
any other byte may be, and the parser decodes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import ClassVar, NamedTuple

from olivia.errors import (
    BadEncodingError,
    BadItemError,
    BadTagError,
    KeyTooLongError,
    ProtocolError,
    UnknownVerbError,
    error_from_reply,
)

MAX_KEY_BYTES = 250
# A TTL above a century is almost certainly a unit mistake (ms for s); refuse
# it rather than keep a key forever by accident.
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600.0
MAX_TAG_BYTES = 64

# --------------------------------------------------------------------------
# Percent-encoding of keys and values
# --------------------------------------------------------------------------

# Single byte values, for membership tests on the hot path: ``37 in data`` is
# a memchr, measured ~8x faster than ``b"%" in data`` on CPython 3.11.
PERCENT, CR, LF, COLON, COMMA = b"%\r\n:,"
_RESERVED_SEARCH = re.compile(rb"[%,:\r\n]").search
_TAG_MATCH = re.compile(rb"[A-Za-z0-9_.-]{1,64}\Z").match
_NAME_MATCH = re.compile(rb"[A-Za-z0-9_.:-]{1,64}\Z").match
_HEX_MATCH = re.compile(rb"[0-9a-fA-F]+\Z").match
_TTL_MATCH = re.compile(rb"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z").match
# Every two-character hex pair in either case, to its byte: a dict lookup is
# both faster and stricter than int(..., 16), which accepts "+1" and " 1".
_HEX_DIGITS = "0123456789abcdefABCDEF"
_HEX_PAIRS: dict[bytes, bytes] = {
    (hi + lo).encode(): bytes([int(hi + lo, 16)]) for hi in _HEX_DIGITS for lo in _HEX_DIGITS
}


def encode_field(data: bytes) -> bytes:
    """Canonical wire form of a key or value: the five reserved bytes escaped."""
    if _RESERVED_SEARCH(data) is None:
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


# --------------------------------------------------------------------------
# Commands (client -> server)
# --------------------------------------------------------------------------


class TtlItem(NamedTuple):
    """One ``key:value:ttl`` item of SETEX; ``ttl_text`` is echoed as sent."""

    key: bytes
    value: bytes
    ttl: float
    ttl_text: bytes

    @classmethod
    def of(cls, key: bytes, value: bytes, ttl: float) -> TtlItem:
        """Build an item from a number of seconds, for clients."""
        if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_SECONDS):
            raise ValueError(f"ttl must be > 0 and at most {MAX_TTL_SECONDS:.0f} seconds")
        text = repr(float(ttl)).encode()
        if b"e" in text:  # the wire takes plain decimals only
            text = f"{ttl:.9f}".rstrip("0").encode()
        return cls(key, value, float(text), text)


def _join_pairs(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    if _RESERVED_SEARCH(b"".join(chain.from_iterable(pairs))) is None:
        # Nothing to escape (the usual bulk load): one join, no per-field calls.
        return b",".join(map(b":".join, pairs))
    return b",".join(encode_field(k) + b":" + encode_field(v) for k, v in pairs)


def _join_keys(keys: Iterable[bytes]) -> bytes:
    return b",".join(encode_field(k) for k in keys)


def _join_ttl_items(items: Iterable[TtlItem]) -> bytes:
    return b",".join(
        encode_field(i.key) + b":" + encode_field(i.value) + b":" + i.ttl_text for i in items
    )


@dataclass(frozen=True, slots=True)
class Set:
    WORD: ClassVar[bytes] = b"SET"
    items: tuple[tuple[bytes, bytes], ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_pairs(self.items)


@dataclass(frozen=True, slots=True)
class SetEx:
    WORD: ClassVar[bytes] = b"SETEX"
    items: tuple[TtlItem, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_ttl_items(self.items)


@dataclass(frozen=True, slots=True)
class Get:
    WORD: ClassVar[bytes] = b"GET"
    keys: tuple[bytes, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_keys(self.keys)


@dataclass(frozen=True, slots=True)
class Del:
    WORD: ClassVar[bytes] = b"DEL"
    keys: tuple[bytes, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_keys(self.keys)


@dataclass(frozen=True, slots=True)
class Ping:
    WORD: ClassVar[bytes] = b"PING"
    text: bytes = b""
    tag: bytes = b""

    def payload(self) -> bytes:
        return self.text


@dataclass(frozen=True, slots=True)
class Info:
    WORD: ClassVar[bytes] = b"INFO"
    tag: bytes = b""

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Quit:
    WORD: ClassVar[bytes] = b"QUIT"
    tag: bytes = b""

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class RequestPeers:
    WORD: ClassVar[bytes] = b"REQUEST"
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"PEERS"


@dataclass(frozen=True, slots=True)
class RequestBloomFilter:
    WORD: ClassVar[bytes] = b"REQUEST"
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"BLOOMFILTER"


# -- the peer dialect: REQUEST verbs nodes send each other (docs/protocol.md) --

STAMP_HEX = 24  # a 12-byte version stamp (olivia.clock) as hex


@dataclass(frozen=True, slots=True)
class RequestConnect:
    """A node introduces itself: ``REQUEST CONNECT <name> <host:port> <incarnation>``."""

    WORD: ClassVar[bytes] = b"REQUEST"
    name: str
    address: str
    incarnation: int
    tag: bytes = b""

    def payload(self) -> bytes:
        return f"CONNECT {self.name} {self.address} {self.incarnation}".encode()


@dataclass(frozen=True, slots=True)
class RequestDisconnect:
    """A node leaves the cluster: ``REQUEST DISCONNECT <name>``."""

    WORD: ClassVar[bytes] = b"REQUEST"
    name: str
    tag: bytes = b""

    def payload(self) -> bytes:
        return f"DISCONNECT {self.name}".encode()


@dataclass(frozen=True, slots=True)
class RequestLookup:
    """Keys a peer asks us for, answered from our own store only."""

    WORD: ClassVar[bytes] = b"REQUEST"
    keys: tuple[bytes, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"LOOKUP " + _join_keys(self.keys)


@dataclass(frozen=True, slots=True)
class RequestDelete:
    """A cluster-wide DEL: drop these keys if older than ``stamp``."""

    WORD: ClassVar[bytes] = b"REQUEST"
    stamp: bytes
    keys: tuple[bytes, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"DELETE " + self.stamp.hex().encode() + b" " + _join_keys(self.keys)


@dataclass(frozen=True, slots=True)
class RequestInvalidate:
    """Keys written or deleted elsewhere: drop local copies older than each stamp."""

    WORD: ClassVar[bytes] = b"REQUEST"
    items: tuple[tuple[bytes, bytes], ...]  # (key, stamp)
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"INVALIDATE " + b",".join(
            encode_field(key) + b":" + stamp.hex().encode() for key, stamp in self.items)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """A peer pushes its bloom filter, full or delta (olivia.bloom encoding)."""

    WORD: ClassVar[bytes] = b"REQUEST"
    name: str
    data: bytes
    tag: bytes = b""

    def payload(self) -> bytes:
        return b"FILTER " + self.name.encode() + b" " + self.data


Command = (Set | SetEx | Get | Del | Ping | Info | Quit | RequestPeers | RequestBloomFilter
           | RequestConnect | RequestDisconnect | RequestLookup | RequestDelete
           | RequestInvalidate | RequestFilter)


def _items(verb: str, args: bytes) -> list[bytes]:
    if not args:
        raise BadItemError(f"{verb} needs at least one item")
    items = args.split(b",")
    if b"" in items:
        raise BadItemError(
            f"empty item in {verb} (a stray ','? write ',' inside a key or value as %2C)")
    return items


def _key(verb: str, item: bytes, raw_key: bytes) -> bytes:
    key = decode_field(raw_key)
    if not key:
        raise BadItemError(f"empty key in {verb} item {show(item)}")
    if len(key) > MAX_KEY_BYTES:
        raise KeyTooLongError(
            f"key too long in {verb} item {show(item)}: {len(key)} bytes (limit {MAX_KEY_BYTES})"
        )
    return key


def _parse_set(tag: bytes, args: bytes) -> Set:
    items = []
    for item in _items("SET", args):
        fields = item.split(b":")
        if len(fields) != 2:
            raise BadItemError(
                f"SET item {show(item)} needs key:value; "
                "write ':' inside a key or value as %3A and ',' as %2C"
            )
        items.append((_key("SET", item, fields[0]), decode_field(fields[1])))
    return Set(tuple(items), tag)


def _parse_setex(tag: bytes, args: bytes) -> SetEx:
    items = []
    for item in _items("SETEX", args):
        fields = item.split(b":")
        if len(fields) != 3:
            hint = "" if len(fields) < 3 else "; write ':' inside a key or value as %3A"
            raise BadItemError(f"SETEX item {show(item)} needs key:value:ttl{hint}")
        raw_key, raw_value, ttl_text = fields
        ttl = float(ttl_text) if _TTL_MATCH(ttl_text) else 0.0
        if not 0 < ttl <= MAX_TTL_SECONDS:
            raise BadItemError(
                f"SETEX item {show(item)} has a bad ttl {show(ttl_text)}: "
                f"need seconds > 0 and at most {MAX_TTL_SECONDS:.0f} (decimals allowed, e.g. 0.25)"
            )
        items.append(TtlItem(_key("SETEX", item, raw_key), decode_field(raw_value), ttl, ttl_text))
    return SetEx(tuple(items), tag)


def _parse_keys(verb: str, args: bytes) -> tuple[bytes, ...]:
    keys = []
    for item in _items(verb, args):
        if b":" in item:
            raise BadItemError(
                f"{verb} item {show(item)} needs a key only; write ':' inside a key as %3A"
            )
        keys.append(_key(verb, item, item))
    return tuple(keys)


def _no_args(verb: str, args: bytes | None) -> None:
    if args:
        raise BadItemError(f"{verb} takes no arguments")


def _words(verb: str, args: bytes, count: int, form: str) -> list[bytes]:
    words = args.split(b" ", count - 1) if args else []
    if len(words) != count or not all(words):
        raise BadItemError(f"{verb} needs {form}")
    return words


def _node_name(verb: str, raw: bytes) -> str:
    if not _NAME_MATCH(raw):
        raise BadItemError(f"{verb} has a bad node name {show(raw)}")
    return raw.decode()


def _stamp(verb: str, raw: bytes) -> bytes:
    if len(raw) != STAMP_HEX or not _HEX_MATCH(raw):
        raise BadItemError(f"{verb} has a bad stamp {show(raw)}: need {STAMP_HEX} hex digits")
    return bytes.fromhex(raw.decode())


def _parse_connect(tag: bytes, args: bytes) -> RequestConnect:
    verb = "REQUEST CONNECT"
    name, address, incarnation = _words(verb, args, 3, "<name> <host:port> <incarnation>")
    host, _, port = address.rpartition(b":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or len(address) > 300:
        raise BadItemError(f"{verb} has a bad address {show(address)}: need host:port")
    if not incarnation.isdigit() or len(incarnation) > 20:
        raise BadItemError(f"{verb} has a bad incarnation {show(incarnation)}")
    return RequestConnect(_node_name(verb, name), address.decode("ascii", "replace"),
                          int(incarnation), tag)


def _parse_delete(tag: bytes, args: bytes) -> RequestDelete:
    stamp, keys = _words("REQUEST DELETE", args, 2, "<stamp> <key>[,<key>...]")
    return RequestDelete(_stamp("REQUEST DELETE", stamp), _parse_keys("REQUEST DELETE", keys), tag)


def _parse_invalidate(tag: bytes, args: bytes) -> RequestInvalidate:
    verb = "REQUEST INVALIDATE"
    items = []
    for item in _items(verb, args):
        raw_key, sep, stamp = item.partition(b":")
        if not sep:
            raise BadItemError(f"{verb} item {show(item)} needs key:stamp")
        items.append((_key(verb, item, raw_key), _stamp(verb, stamp)))
    return RequestInvalidate(tuple(items), tag)


def _parse_filter(tag: bytes, args: bytes) -> RequestFilter:
    name, data = _words("REQUEST FILTER", args, 2, "<name> <filter>")
    return RequestFilter(_node_name("REQUEST FILTER", name), data, tag)


def _parse_request(tag: bytes, args: bytes | None) -> Command:
    what, _, rest = (args or b"").partition(b" ")
    what = what.upper()
    if not what:
        raise UnknownVerbError(
            "missing verb after REQUEST: one of " + ", ".join(sorted(_REQUEST_VERBS)))
    if what == b"PEERS":
        _no_args("REQUEST PEERS", rest)
        return RequestPeers(tag)
    if what == b"BLOOMFILTER":
        _no_args("REQUEST BLOOMFILTER", rest)
        return RequestBloomFilter(tag)
    if what == b"CONNECT":
        return _parse_connect(tag, rest)
    if what == b"DISCONNECT":
        (name,) = _words("REQUEST DISCONNECT", rest, 1, "<name>")
        return RequestDisconnect(_node_name("REQUEST DISCONNECT", name), tag)
    if what == b"LOOKUP":
        return RequestLookup(_parse_keys("REQUEST LOOKUP", rest), tag)
    if what == b"DELETE":
        return _parse_delete(tag, rest)
    if what == b"INVALIDATE":
        return _parse_invalidate(tag, rest)
    if what == b"FILTER":
        return _parse_filter(tag, rest)
    raise UnknownVerbError(f"unknown verb {show(b'REQUEST ' + what)}")


_REQUEST_VERBS = ("PEERS", "BLOOMFILTER", "CONNECT", "DISCONNECT", "LOOKUP", "DELETE",
                  "INVALIDATE", "FILTER")


def _parse_quit(tag: bytes, args: bytes | None) -> Quit:
    _no_args("QUIT", args)
    return Quit(tag)


def _parse_info(tag: bytes, args: bytes | None) -> Info:
    _no_args("INFO", args)
    return Info(tag)


# The verb table: upper-case verb -> parser(tag, args or None).
_VERBS: dict[bytes, Callable[[bytes, bytes | None], Command]] = {
    b"SET": lambda tag, args: _parse_set(tag, args or b""),
    b"SETEX": lambda tag, args: _parse_setex(tag, args or b""),
    b"GET": lambda tag, args: Get(_parse_keys("GET", args or b""), tag),
    b"DEL": lambda tag, args: Del(_parse_keys("DEL", args or b""), tag),
    b"PING": lambda tag, args: Ping(args or b"", tag),
    b"INFO": _parse_info,
    b"QUIT": _parse_quit,
    b"REQUEST": _parse_request,
}


def parse_request(line: bytes) -> Command | None:
    """Parse one request line (without its LF) into a command.

    Returns None for an empty line, which gets no reply.  Raises a
    ProtocolError, tagged with the request's tag when it could be read.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        return None
    head, sep, args = line.partition(b" ")
    tag = b""
    if COLON in head:
        tag, _, head = head.partition(b":")
        if tag and not _TAG_MATCH(tag):
            raise BadTagError(
                f"invalid tag {show(tag)}: use 1-{MAX_TAG_BYTES} characters of A-Z a-z 0-9 _ . -"
            )
    parser = _VERBS.get(head.upper())
    if parser is None:
        if not head:
            raise UnknownVerbError("missing verb: a request starts with it, as in 'GET key'", tag)
        raise UnknownVerbError(f"unknown verb {show(head)}", tag)
    if CR in args:
        raise BadEncodingError("raw CR inside a request; write it as %0D", tag)
    try:
        return parser(tag, args if sep else None)
    except ProtocolError as exc:
        raise exc.with_tag(tag) from None


def encode_request(command: Command) -> bytes:
    """Wire bytes of a command, LF included (what a client sends)."""
    payload = command.payload()
    if isinstance(command, Ping) and (b"\n" in payload or b"\r" in payload):
        raise ValueError("PING text cannot contain CR or LF")
    head = command.tag + b":" + command.WORD if command.tag else command.WORD
    return head + b" " + payload + b"\n" if payload else head + b"\n"


# --------------------------------------------------------------------------
# The plain lane: GET and SET with nothing to decode
# --------------------------------------------------------------------------
# Almost all traffic is untagged GET and SET of keys and values that contain
# no '%'.  Their wire form is already canonical, so the node can store and
# echo the bytes as they came: no decoding, no re-encoding, no command
# object.  These functions say whether a request's arguments are that plain
# and split them; for anything else (or anything wrong) they return None and
# parse_request handles the line, wording the error if there is one.


def plain_keys(args: bytes) -> list[bytes] | None:
    """The keys of ``GET``/``DEL`` arguments when none needs decoding, else None."""
    if PERCENT in args or CR in args or COLON in args:
        return None
    if COMMA not in args:  # one key: most requests
        return [args] if 0 < len(args) <= MAX_KEY_BYTES else None
    keys = args.split(b",")
    for key in keys:
        if not key or len(key) > MAX_KEY_BYTES:
            return None
    return keys


def plain_items(args: bytes) -> list[list[bytes]] | None:
    """``[key, value]`` pairs of ``SET`` arguments when none needs decoding, else None."""
    if PERCENT in args or CR in args:
        return None
    if COMMA not in args:  # one item: most requests
        pair = args.split(b":")
        if len(pair) == 2 and 0 < len(pair[0]) <= MAX_KEY_BYTES:
            return [pair]
        return None
    pairs = [item.split(b":") for item in args.split(b",")]
    for pair in pairs:
        if len(pair) != 2 or not pair[0] or len(pair[0]) > MAX_KEY_BYTES:
            return None
    return pairs


def got_line(found: Iterable[tuple[bytes, bytes]], tag: bytes = b"") -> bytes:
    """A ``GOT`` reply for (key, value) pairs whose values are already in wire form.

    The node keeps values in wire form (it answers far more GETs than it
    takes SETs), so only keys are encoded here.
    """
    payload = b",".join(encode_field(k) + b":" + v for k, v in found)
    return tag + b":GOT " + payload + b"\n" if payload else tag + b":GOT\n"


# --------------------------------------------------------------------------
# Replies (server -> client)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sat:
    WORD: ClassVar[bytes] = b"SAT"
    items: tuple[tuple[bytes, bytes], ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_pairs(self.items)


@dataclass(frozen=True, slots=True)
class SatEx:
    WORD: ClassVar[bytes] = b"SATEX"
    items: tuple[TtlItem, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_ttl_items(self.items)


@dataclass(frozen=True, slots=True)
class Got:
    WORD: ClassVar[bytes] = b"GOT"
    items: tuple[tuple[bytes, bytes], ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_pairs(self.items)


@dataclass(frozen=True, slots=True)
class Deleted:
    WORD: ClassVar[bytes] = b"DELETED"
    keys: tuple[bytes, ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return _join_keys(self.keys)


@dataclass(frozen=True, slots=True)
class Pong:
    WORD: ClassVar[bytes] = b"PONG"
    text: bytes = b""
    tag: bytes = b""

    def payload(self) -> bytes:
        return self.text


@dataclass(frozen=True, slots=True)
class InfoReply:
    WORD: ClassVar[bytes] = b"INFO"
    fields: tuple[tuple[str, str], ...]
    tag: bytes = b""

    def payload(self) -> bytes:
        return ",".join(f"{name}={value}" for name, value in self.fields).encode()

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


@dataclass(frozen=True, slots=True)
class Fulfilled:
    WORD: ClassVar[bytes] = b"FULFILLED"
    data: bytes
    tag: bytes = b""

    def payload(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class Bye:
    WORD: ClassVar[bytes] = b"BYE"
    tag: bytes = b""

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    WORD: ClassVar[bytes] = b"ERR"
    message: str
    tag: bytes = b""

    def payload(self) -> bytes:
        return self.message.encode("utf-8", "backslashreplace")

    def exception(self) -> Exception:
        """The typed exception a client raises for this reply."""
        return error_from_reply(self.message, self.tag)


Reply = Sat | SatEx | Got | Deleted | Pong | InfoReply | Fulfilled | Bye | ErrorReply


def encode_reply(reply: Reply) -> bytes:
    """Wire bytes of a reply, LF included."""
    payload = reply.payload()
    head = reply.tag + b":" + reply.WORD
    return head + b" " + payload + b"\n" if payload else head + b"\n"


def error_line(message: str, tag: bytes = b"") -> bytes:
    """``TAG:ERR message`` as bytes; the message is forced onto one line."""
    one_line = message.replace("\r", " ").replace("\n", " ")
    return tag + b":ERR " + one_line.encode("utf-8", "backslashreplace") + b"\n"


def _split_pairs(payload: bytes) -> tuple[tuple[bytes, bytes], ...]:
    if not payload:
        return ()
    pairs = []
    for item in payload.split(b","):
        key, sep, value = item.partition(b":")
        if not sep or b":" in value:
            raise ProtocolError(f"malformed reply item {show(item)}")
        pairs.append((decode_field(key), decode_field(value)))
    return tuple(pairs)


def _split_keys(payload: bytes) -> tuple[bytes, ...]:
    return tuple(decode_field(k) for k in payload.split(b",")) if payload else ()


def join_keys(keys: Iterable[bytes]) -> bytes:
    """Comma-joined canonical keys, as in the reply to REQUEST DELETE."""
    return _join_keys(keys)


def split_keys(payload: bytes) -> tuple[bytes, ...]:
    """Keys of a FULFILLED payload such as the reply to REQUEST DELETE."""
    return _split_keys(payload)


def join_found(items: Iterable[tuple[bytes, bytes, bytes]]) -> bytes:
    """Payload of the reply to REQUEST LOOKUP: ``key:value:stamp`` items.

    Values are given, and sent, in wire form (as the node stores them).
    """
    return b",".join(encode_field(k) + b":" + v + b":" + s.hex().encode() for k, v, s in items)


def split_found(payload: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """Parse a REQUEST LOOKUP reply payload into (key, value, stamp) triples.

    Values stay in wire form, checked and made canonical, ready for a GOT reply.
    """
    found = []
    for item in payload.split(b",") if payload else ():
        fields = item.split(b":")
        if len(fields) != 3 or len(fields[2]) != STAMP_HEX:
            raise ProtocolError(f"malformed LOOKUP reply item {show(item)}")
        try:
            stamp = bytes.fromhex(fields[2].decode("ascii"))
        except ValueError:
            stamp = b""
        if len(stamp) != STAMP_HEX // 2:  # fromhex skips spaces: count the bytes
            raise ProtocolError(f"malformed LOOKUP reply item {show(item)}")
        value = fields[1]
        if PERCENT in value or CR in value:
            value = encode_field(decode_field(value))
        found.append((decode_field(fields[0]), value, stamp))
    return found


def _split_ttl_items(payload: bytes) -> tuple[TtlItem, ...]:
    items = []
    for item in payload.split(b","):
        fields = item.split(b":")
        if len(fields) != 3 or not _TTL_MATCH(fields[2]):
            raise ProtocolError(f"malformed reply item {show(item)}")
        items.append(TtlItem(decode_field(fields[0]), decode_field(fields[1]),
                             float(fields[2]), fields[2]))
    return tuple(items)


def _split_info(payload: bytes) -> tuple[tuple[str, str], ...]:
    fields = []
    for item in payload.decode("utf-8", "replace").split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise ProtocolError(f"malformed INFO field {item!r}")
        fields.append((name, value))
    return tuple(fields)


_REPLY_PARSERS: dict[bytes, Callable[[bytes, bytes], Reply]] = {
    b"SAT": lambda tag, p: Sat(_split_pairs(p), tag),
    b"SATEX": lambda tag, p: SatEx(_split_ttl_items(p), tag),
    b"GOT": lambda tag, p: Got(_split_pairs(p), tag),
    b"DELETED": lambda tag, p: Deleted(_split_keys(p), tag),
    b"PONG": lambda tag, p: Pong(p, tag),
    b"INFO": lambda tag, p: InfoReply(_split_info(p) if p else (), tag),
    b"FULFILLED": lambda tag, p: Fulfilled(p, tag),
    b"BYE": lambda tag, p: Bye(tag),
    b"ERR": lambda tag, p: ErrorReply(p.decode("utf-8", "replace"), tag),
}


def parse_reply(line: bytes) -> Reply:
    """Parse one reply line (LF and CR optional) into a reply object."""
    line = line.rstrip(b"\r\n")
    tag, sep, rest = line.partition(b":")
    if not sep:
        raise ProtocolError(f"malformed reply {show(line)}")
    word, _, payload = rest.partition(b" ")
    parser = _REPLY_PARSERS.get(word)
    if parser is None:
        raise ProtocolError(f"unknown reply {show(word)}")
    return parser(tag, payload)


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------


@dataclass
class LineFramer:
    """Cuts a byte stream into LF-terminated lines, never holding more than
    ``max_line_bytes`` of an unfinished line.

    ``feed`` returns the complete lines (without LF).  Once a line exceeds the
    limit, the lines before it are still returned, ``overflowed`` becomes True
    and every later call returns nothing: the caller answers with
    :data:`line_too_long` and hangs up.
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


def line_too_long(max_line_bytes: int) -> bytes:
    return error_line(f"line too long (limit {max_line_bytes} bytes)")
