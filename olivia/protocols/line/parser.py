"""Reading request lines into requests, by the registry and the verbs' shapes.

Wire format (docs/protocol.md)::

    [TAG:]VERB[ ARGS]          ARGS = item[,item...]

``REQUEST`` takes a second word, and ``REQUEST LOOKUP`` is a verb of its
own in the registry.  The arguments are parsed by the verb's shape, one
parser per shape; every error is a ProtocolError worded for the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from olivia.core.errors import (
    BadEncodingError,
    BadItemError,
    BadTagError,
    KeyTooLongError,
    ProtocolError,
    UnknownVerbError,
)
from olivia.core.registry import Registry, VerbSpec
from olivia.core.requests import (
    AMOUNTS,
    COPIES,
    FILTER_PUSH,
    HELLO,
    KEY_STAMPS,
    KEY_TTLS,
    KEYS,
    MAX_KEY_BYTES,
    MAX_TTL_SECONDS,
    NAME,
    NONE,
    PAIRS,
    PATTERN,
    RENAME,
    SCAN_ARGS,
    SLOT_DIGESTS,
    SLOTS,
    STAMPED_KEYS,
    SWAP,
    TEXT,
    TTL_ITEMS,
    VERSIONS,
    Amounts,
    Keys,
    KeyStamps,
    KeyTtl,
    KeyTtls,
    Pairs,
    Rename,
    Request,
    ScanArgs,
    Shape,
    StampedKeys,
    Swap,
    TtlItem,
    TtlItems,
)
from olivia.protocols.line import peer
from olivia.protocols.line.escaping import COLON, CR, decode_field, show

MAX_TAG_BYTES = 64
_TAG_MATCH = re.compile(rb"[A-Za-z0-9_.-]{1,64}\Z").match
_TTL_MATCH = re.compile(rb"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z").match
_AMOUNT_MATCH = re.compile(rb"[-+]?[0-9]{1,19}\Z").match
_COUNT_MATCH = re.compile(rb"[0-9]{1,7}\Z").match
_CURSOR_MATCH = re.compile(rb"[A-Za-z0-9_.-]{1,200}\Z").match
MAX_AMOUNT = 1 << 63  # INCR's n, either sign (a DECR of -2**63 is an INCR of 2**63)
MAX_SCAN_COUNT = 1_000_000
DEFAULT_SCAN_COUNT = 100
_REQUEST = "REQUEST"


def items_of(verb: str, args: bytes) -> list[bytes]:
    """The comma-separated items of ``args``; at least one, none empty."""
    if not args:
        raise BadItemError(f"{verb} needs at least one item")
    items = args.split(b",")
    if b"" in items:
        raise BadItemError(
            f"empty item in {verb} (a stray ','? write ',' inside a key or value as %2C)")
    return items


def key_of(verb: str, item: bytes, raw_key: bytes) -> bytes:
    key = decode_field(raw_key)
    if not key:
        raise BadItemError(f"empty key in {verb} item {show(item)}")
    if len(key) > MAX_KEY_BYTES:
        raise KeyTooLongError(
            f"key too long in {verb} item {show(item)}: {len(key)} bytes (limit {MAX_KEY_BYTES})"
        )
    return key


# -- one parser per shape: (verb name, arguments or None) -> items -------------------


def _none(verb: str, args: bytes | None) -> None:
    if args:
        raise BadItemError(f"{verb} takes no arguments")


def _text(verb: str, args: bytes | None) -> bytes:
    return args or b""


def parse_keys(verb: str, args: bytes | None) -> Keys:
    keys = []
    for item in items_of(verb, args or b""):
        if COLON in item:
            raise BadItemError(
                f"{verb} item {show(item)} needs a key only; write ':' inside a key as %3A"
            )
        keys.append(key_of(verb, item, item))
    return tuple(keys)


def _pairs(verb: str, args: bytes | None) -> Pairs:
    pairs = []
    for item in items_of(verb, args or b""):
        fields = item.split(b":")
        if len(fields) != 2:
            raise BadItemError(
                f"{verb} item {show(item)} needs key:value; "
                "write ':' inside a key or value as %3A and ',' as %2C"
            )
        pairs.append((key_of(verb, item, fields[0]), decode_field(fields[1])))
    return tuple(pairs)


def _ttl_items(verb: str, args: bytes | None) -> TtlItems:
    items = []
    for item in items_of(verb, args or b""):
        fields = item.split(b":")
        if len(fields) != 3:
            hint = "" if len(fields) < 3 else "; write ':' inside a key or value as %3A"
            raise BadItemError(f"{verb} item {show(item)} needs key:value:ttl{hint}")
        raw_key, raw_value, ttl_text = fields
        ttl = _ttl(verb, item, ttl_text)
        items.append(TtlItem(key_of(verb, item, raw_key), decode_field(raw_value), ttl, ttl_text))
    return tuple(items)


def _ttl(verb: str, item: bytes, ttl_text: bytes) -> float:
    ttl = float(ttl_text) if _TTL_MATCH(ttl_text) else 0.0
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise BadItemError(
            f"{verb} item {show(item)} has a bad ttl {show(ttl_text)}: need a number of "
            "seconds written as digits with an optional decimal part (30, 0.25), more than "
            f"0 and at most {MAX_TTL_SECONDS:.0f}"
        )
    return ttl


def _key_ttls(verb: str, args: bytes | None) -> KeyTtls:
    items = []
    for item in items_of(verb, args or b""):
        fields = item.split(b":")
        if len(fields) != 2:
            raise BadItemError(f"{verb} item {show(item)} needs key:ttl; write ':' inside a "
                               "key as %3A")
        items.append(KeyTtl(key_of(verb, item, fields[0]), _ttl(verb, item, fields[1]),
                            fields[1]))
    return tuple(items)


def _amounts(verb: str, args: bytes | None) -> Amounts:
    items = []
    for item in items_of(verb, args or b""):
        fields = item.split(b":")
        if len(fields) > 2:
            raise BadItemError(f"{verb} item {show(item)} needs key or key:n; write ':' inside "
                               "a key as %3A")
        amount = 1
        if len(fields) == 2:
            text = fields[1]
            amount = int(text) if _AMOUNT_MATCH(text) else MAX_AMOUNT + 1
            if abs(amount) > MAX_AMOUNT:
                raise BadItemError(f"{verb} item {show(item)} has a bad amount {show(text)}: "
                                   "need a signed decimal integer of 64 bits")
        items.append((key_of(verb, item, fields[0]), amount))
    return tuple(items)


def _one_item(verb: str, args: bytes | None, form: str) -> tuple[bytes, list[bytes]]:
    items = items_of(verb, args or b"")
    if len(items) != 1:
        raise BadItemError(f"{verb} takes one {form} item")
    return items[0], items[0].split(b":")


def _swap(verb: str, args: bytes | None) -> Swap:
    item, fields = _one_item(verb, args, "key:old:new")
    if len(fields) != 3:
        raise BadItemError(f"{verb} item {show(item)} needs key:old:new; write ':' inside a "
                           "key or value as %3A")
    return Swap(key_of(verb, item, fields[0]), decode_field(fields[1]), decode_field(fields[2]))


def _rename(verb: str, args: bytes | None) -> Rename:
    item, fields = _one_item(verb, args, "old:new")
    if len(fields) != 2:
        raise BadItemError(f"{verb} item {show(item)} needs old:new; write ':' inside a key "
                           "as %3A")
    return Rename(key_of(verb, item, fields[0]), key_of(verb, item, fields[1]))


def _scan_args(verb: str, args: bytes | None) -> ScanArgs:
    if not args:
        raise BadItemError(f"{verb} needs a cursor: 0 starts a scan")
    if b"," in args:
        raise BadItemError(f"{verb} takes one cursor[:count[:pattern]] item; write ',' inside "
                           "a pattern as %2C")
    fields = args.split(b":")
    if len(fields) > 3:
        raise BadItemError(f"{verb} item {show(args)} needs cursor[:count[:pattern]]; write "
                           "':' inside a pattern as %3A")
    cursor = fields[0]
    if not _CURSOR_MATCH(cursor):
        raise BadItemError(f"{verb} has a bad cursor {show(cursor)}: send 0 or a cursor "
                           "SCAN returned")
    count = DEFAULT_SCAN_COUNT
    if len(fields) > 1 and fields[1]:
        count = int(fields[1]) if _COUNT_MATCH(fields[1]) else 0
        if not 1 <= count <= MAX_SCAN_COUNT:
            raise BadItemError(f"{verb} has a bad count {show(fields[1])}: need 1 to "
                               f"{MAX_SCAN_COUNT}")
    pattern = decode_field(fields[2]) if len(fields) > 2 and fields[2] else b"*"
    return ScanArgs(cursor, count, pattern)


def _pattern(verb: str, args: bytes | None) -> bytes:
    if not args:
        return b"*"
    if b"," in args or COLON in args:
        raise BadItemError(f"{verb} takes one pattern; write ',' inside it as %2C and ':' "
                           "as %3A")
    return decode_field(args)


def _stamped_keys(verb: str, args: bytes | None) -> StampedKeys:
    raw_stamp, keys = peer.words(verb, args or b"", 2, "<stamp> <key>[,<key>...]")
    return StampedKeys(peer.stamp(verb, raw_stamp), parse_keys(verb, keys))


def _key_stamps(verb: str, args: bytes | None) -> KeyStamps:
    items = []
    for item in items_of(verb, args or b""):
        raw_key, sep, raw_stamp = item.partition(b":")
        if not sep:
            raise BadItemError(f"{verb} item {show(item)} needs key:stamp")
        items.append((key_of(verb, item, raw_key), peer.stamp(verb, raw_stamp)))
    return tuple(items)


def _copies(verb: str, args: bytes | None) -> Any:
    return peer.parse_copies(verb, items_of(verb, args or b""))


SHAPE_PARSERS: dict[Shape[Any], Callable[[str, bytes | None], Any]] = {
    NONE: _none,
    TEXT: _text,
    KEYS: parse_keys,
    PAIRS: _pairs,
    TTL_ITEMS: _ttl_items,
    AMOUNTS: _amounts,
    SWAP: _swap,
    RENAME: _rename,
    KEY_TTLS: _key_ttls,
    SCAN_ARGS: _scan_args,
    PATTERN: _pattern,
    HELLO: lambda verb, args: peer.parse_hello(verb, args or b""),
    NAME: lambda verb, args: peer.parse_name(verb, args or b""),
    STAMPED_KEYS: _stamped_keys,
    KEY_STAMPS: _key_stamps,
    FILTER_PUSH: lambda verb, args: peer.parse_filter_push(verb, args or b""),
    COPIES: _copies,
    SLOT_DIGESTS: lambda verb, args: peer.parse_slot_digests(verb, items_of(verb, args or b"")),
    SLOTS: lambda verb, args: peer.parse_slots(verb, items_of(verb, args or b"")),
    VERSIONS: lambda verb, args: peer.parse_versions(verb, items_of(verb, args or b"")),
}


class LineParser:
    """Request lines to requests, for the verbs of one registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._request_words = sorted(name.split(" ", 1)[1] for name in
                                     registry.names(_REQUEST + " "))
        for spec in registry:
            if spec.shape not in SHAPE_PARSERS:
                raise ValueError(f"no line parser for the shape of {spec.name}")

    def parse(self, line: bytes) -> tuple[bytes, Request] | None:
        """The tag and request of one line (without its LF); None for an empty
        line, which gets no reply.  Raises a ProtocolError, tagged with the
        request's tag when it could be read."""
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
                    f"invalid tag {show(tag)}: use 1-{MAX_TAG_BYTES} characters of "
                    "A-Z a-z 0-9 _ . -")
        try:
            spec = self._verb(head)
            if CR in args:
                raise BadEncodingError("raw CR inside a request; write it as %0D")
            if spec is None:  # REQUEST: the second word names the verb
                spec, args, sep = self._request_verb(args)
            items = SHAPE_PARSERS[spec.shape](spec.name, args if sep else None)
        except ProtocolError as exc:
            raise exc.with_tag(tag) from None
        return tag, Request(spec, items)

    def _verb(self, head: bytes) -> VerbSpec[Any] | None:
        name = head.upper().decode("ascii", "replace")
        if name == _REQUEST:
            return None
        spec = self._registry.get(name) if " " not in name else None
        if spec is None or spec.peer:
            if not head:
                raise UnknownVerbError("missing verb: a request starts with it, as in 'GET key'")
            raise UnknownVerbError(f"unknown verb {show(head)}")
        return spec

    def _request_verb(self, args: bytes) -> tuple[VerbSpec[Any], bytes, bytes]:
        what, sep, rest = args.partition(b" ")
        what = what.upper()
        if not what:
            raise UnknownVerbError(
                "missing verb after REQUEST: one of " + ", ".join(self._request_words))
        spec = self._registry.get(_REQUEST + " " + what.decode("ascii", "replace"))
        if spec is None:
            raise UnknownVerbError(f"unknown verb {show(b'REQUEST ' + what)}")
        return spec, rest, sep
