"""The peer dialect of the line protocol: the ``REQUEST`` verbs nodes send
each other, both ways (docs/protocol.md, "The peer dialect").

Requests::

    REQUEST CONNECT <name> <host:port> <inc> <nonce>
                        -> FULFILLED <name> <host:port> <inc> <nonce> <proof> <vouch>
    REQUEST PROVE <proof>                               -> FULFILLED
    REQUEST DISCONNECT <name>                           -> FULFILLED
    REQUEST PEERS                                       -> FULFILLED host:port,...
    REQUEST BLOOMFILTER                                 -> FULFILLED <filter>
    REQUEST FILTER <name> <filter>                      -> FULFILLED <version held>
    REQUEST LOOKUP k,...                                -> FULFILLED k:v:stamp,...
    REQUEST DELETE <stamp> k,...                        -> FULFILLED k,...  (the keys it had)
    REQUEST INVALIDATE k:stamp,...                      -> FULFILLED <copies dropped>
    REQUEST REPLICATE k:v:stamp:ttl,...                 -> FULFILLED <copies taken>
    REQUEST DIGESTS slot:digest,...                     -> FULFILLED slot,...  (those that differ)
    REQUEST VERSIONS slot,...                           -> FULFILLED k:stamp:kind,...
    REQUEST FETCH k,...                                 -> FULFILLED k:v:stamp:ttl,...
    REQUEST OFFER k:stamp:kind,...                      -> FULFILLED k,...  (those it wants)

Stamps travel as 24 hex digits; values of LOOKUP replies are escaped like
any value.  In a copy (``k:v:stamp:ttl``) the TTL is the milliseconds left,
``-`` for none, or ``x`` for a delete (a tombstone, its value empty); in a
version (``k:stamp:kind``) the kind is ``v`` for a value, ``x`` for a
tombstone.  A digest is 16 hex digits (the slot digest's 64 bits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from olivia.core.clock import STAMP_BYTES
from olivia.core.errors import BadItemError, ProtocolError
from olivia.core.requests import (
    Answer,
    Copies,
    Copy,
    FilterPush,
    Hello,
    KeyStamps,
    SlotDigestItems,
    Slots,
    StampedKeys,
    Version,
    Versions,
)
from olivia.core.slots import SLOTS
from olivia.core.values import ESCAPE_FLAGS, HEADER_BYTES, PLAIN_FLAGS, needs_escape
from olivia.protocols.line.escaping import CR, PERCENT, decode_field, encode_field, show
from olivia.protocols.line.requests import keys_payload, request_line

STAMP_HEX = 24  # a 12-byte version stamp as hex
NONCE_HEX = 32  # a handshake's 16-byte nonce, as hex (olivia.cluster.handshake)
PROOF_HEX = 64  # an HMAC-SHA256, as hex
_NAME_MATCH = re.compile(rb"[A-Za-z0-9_.:-]{1,64}\Z").match
_HEX_MATCH = re.compile(rb"[0-9a-fA-F]+\Z").match
REQUEST = b"REQUEST"


# -- parsing requests (server side); the parser hands these the arguments --------


def words(verb: str, args: bytes, count: int, form: str) -> list[bytes]:
    found = args.split(b" ", count - 1) if args else []
    if len(found) != count or not all(found):
        raise BadItemError(f"{verb} needs {form}")
    return found


def node_name(verb: str, raw: bytes) -> str:
    if not _NAME_MATCH(raw):
        raise BadItemError(f"{verb} has a bad node name {show(raw)}")
    return raw.decode()


def stamp(verb: str, raw: bytes) -> bytes:
    if len(raw) != STAMP_HEX or not _HEX_MATCH(raw):
        raise BadItemError(f"{verb} has a bad stamp {show(raw)}: need {STAMP_HEX} hex digits")
    return bytes.fromhex(raw.decode())


def parse_hello(verb: str, args: bytes) -> Hello:
    name, address, incarnation, nonce = words(verb, args, 4,
                                              "<name> <host:port> <incarnation> <nonce>")
    if len(nonce) != NONCE_HEX or not _HEX_MATCH(nonce):
        raise BadItemError(f"{verb} has a bad nonce {show(nonce)}: need {NONCE_HEX} hex digits")
    host, _, port = address.rpartition(b":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or len(address) > 300:
        raise BadItemError(f"{verb} has a bad address {show(address)}: need host:port")
    if not incarnation.isdigit() or len(incarnation) > 20:
        raise BadItemError(f"{verb} has a bad incarnation {show(incarnation)}")
    return Hello(node_name(verb, name), address.decode("ascii", "replace"), int(incarnation),
                 nonce)


def parse_name(verb: str, args: bytes) -> str:
    (name,) = words(verb, args, 1, "<name>")
    return node_name(verb, name)


def parse_filter_push(verb: str, args: bytes) -> FilterPush:
    name, data = words(verb, args, 2, "<name> <filter>")
    return FilterPush(node_name(verb, name), data)


def parse_copies(verb: str, items: list[bytes]) -> Copies:
    copies = []
    for item in items:
        fields = item.split(b":")
        if len(fields) != 4:
            raise BadItemError(f"{verb} item {show(item)} needs key:value:stamp:ttl")
        raw_key, raw_value, raw_stamp, raw_ttl = fields
        key = decode_field(raw_key)
        if not key:
            raise BadItemError(f"empty key in {verb} item {show(item)}")
        value: bytes | None = decode_field(raw_value)
        ttl: float | None = None
        if raw_ttl == b"x":
            value = None
        elif raw_ttl != b"-":
            if not raw_ttl.isdigit() or len(raw_ttl) > 15:
                raise BadItemError(f"{verb} item {show(item)} has a bad ttl {show(raw_ttl)}")
            ttl = max(int(raw_ttl), 1) / 1000
        copies.append(Copy(key, value, stamp(verb, raw_stamp), ttl))
    return tuple(copies)


def parse_versions(verb: str, items: list[bytes]) -> Versions:
    versions = []
    for item in items:
        fields = item.split(b":")
        if len(fields) != 3 or fields[2] not in (b"v", b"x"):
            raise BadItemError(f"{verb} item {show(item)} needs key:stamp:kind (kind v or x)")
        key = decode_field(fields[0])
        if not key:
            raise BadItemError(f"empty key in {verb} item {show(item)}")
        versions.append(Version(key, stamp(verb, fields[1]), fields[2] == b"x"))
    return tuple(versions)


def parse_slot_digests(verb: str, items: list[bytes]) -> SlotDigestItems:
    pairs = []
    for item in items:
        raw_slot, sep, raw_digest = item.partition(b":")
        if not sep or not raw_slot.isdigit() or int(raw_slot) >= SLOTS \
                or len(raw_digest) != 16 or not _HEX_MATCH(raw_digest):
            raise BadItemError(f"{verb} item {show(item)} needs slot:digest")
        pairs.append((int(raw_slot), _signed(int(raw_digest, 16))))
    return tuple(pairs)


def parse_slots(verb: str, items: list[bytes]) -> Slots:
    slots = []
    for item in items:
        if not item.isdigit() or len(item) > 5 or int(item) >= SLOTS:
            raise BadItemError(f"{verb} item {show(item)} is not a slot (0..{SLOTS - 1})")
        slots.append(int(item))
    return tuple(slots)


def _signed(digest: int) -> int:
    return digest - (1 << 64) if digest >= 1 << 63 else digest


# -- writing requests (client side: the cluster's links) -----------------------------
# Each function gives the arguments after REQUEST; peer_line makes the line
# for a link's tag (PeerLink.request), so a payload is encoded once.


def peer_line(payload: bytes) -> Callable[[bytes], bytes]:
    """The request line ``REQUEST <payload>`` for any tag."""
    return lambda tag: request_line(REQUEST, payload, tag)


def connect_payload(hello: Hello, nonce: bytes) -> bytes:
    return f"CONNECT {hello.name} {hello.address} {hello.incarnation} ".encode() + nonce


def prove_payload(proof: bytes) -> bytes:
    return b"PROVE " + proof


def disconnect_payload(name: str) -> bytes:
    return f"DISCONNECT {name}".encode()


PEERS_PAYLOAD = b"PEERS"


def filter_payload(push: FilterPush) -> bytes:
    return b"FILTER " + push.name.encode() + b" " + push.data


def lookup_payload(keys: Iterable[bytes]) -> bytes:
    return b"LOOKUP " + keys_payload(keys)


def delete_payload(request: StampedKeys) -> bytes:
    return b"DELETE " + request.stamp.hex().encode() + b" " + keys_payload(request.keys)


def invalidate_payload(items: KeyStamps) -> bytes:
    return b"INVALIDATE " + b",".join(
        encode_field(key) + b":" + item_stamp.hex().encode() for key, item_stamp in items)


def copies_payload(verb: bytes, copies: Iterable[Copy]) -> bytes:
    """``REPLICATE k:v:stamp:ttl,...`` (and the answer to FETCH without the verb)."""
    items = b",".join(copy_item(copy) for copy in copies)
    return verb + b" " + items if verb else items


def copy_item(copy: Copy) -> bytes:
    if copy.value is None:
        return encode_field(copy.key) + b"::" + copy.stamp.hex().encode() + b":x"
    ttl = b"-" if copy.ttl is None else b"%d" % max(1, round(copy.ttl * 1000))
    return (encode_field(copy.key) + b":" + encode_field(copy.value) + b":"
            + copy.stamp.hex().encode() + b":" + ttl)


def digests_payload(digests: Iterable[tuple[int, int]]) -> bytes:
    return b"DIGESTS " + b",".join(b"%d:%016x" % (slot, digest & (1 << 64) - 1)
                                   for slot, digest in digests)


def slots_payload(verb: bytes, slots: Iterable[int]) -> bytes:
    """``VERSIONS s,...`` (and the answer to DIGESTS without the verb)."""
    items = b",".join(b"%d" % slot for slot in slots)
    return verb + b" " + items if verb else items


def versions_payload(verb: bytes, versions: Iterable[Version]) -> bytes:
    """``OFFER k:stamp:kind,...`` (and the answer to VERSIONS without the verb)."""
    items = b",".join(encode_field(version.key) + b":" + version.stamp.hex().encode()
                      + (b":x" if version.tombstone else b":v") for version in versions)
    return verb + b" " + items if verb else items


def split_versions(payload: bytes) -> Versions:
    """An answer to VERSIONS, read (a peer's malformed answer: ProtocolError)."""
    try:
        return parse_versions("VERSIONS reply", payload.split(b",") if payload else [])
    except BadItemError as exc:
        raise ProtocolError(f"malformed {exc.message}") from None


def split_copies(payload: bytes) -> Copies:
    """An answer to FETCH, read."""
    try:
        return parse_copies("FETCH reply", payload.split(b",") if payload else [])
    except BadItemError as exc:
        raise ProtocolError(f"malformed {exc.message}") from None


def split_slots(payload: bytes) -> Slots:
    """An answer to DIGESTS, read."""
    try:
        return parse_slots("DIGESTS reply", payload.split(b",") if payload else [])
    except BadItemError as exc:
        raise ProtocolError(f"malformed {exc.message}") from None


# -- the answers ---------------------------------------------------------------------


def answer_payload(answer: Answer) -> bytes:
    """The payload that answers REQUEST CONNECT: who answered, and its half
    of the challenge (olivia.cluster.handshake)."""
    me = answer.identity
    return b" ".join((f"{me.name} {me.address} {me.incarnation}".encode(), answer.nonce,
                      answer.proof, answer.vouch))


def parse_answer(payload: bytes) -> Answer:
    """Read an answer to REQUEST CONNECT (ValueError if it is not one)."""
    name, address, incarnation, nonce, proof, vouch = payload.decode("ascii").split(" ")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad address {address!r}")
    if len(nonce) != NONCE_HEX or len(proof) != PROOF_HEX:
        raise ValueError("bad nonce or proof")
    return Answer(Hello(name, address, int(incarnation)), nonce.encode(), proof.encode(),
                  vouch.encode())


def found_payload(found: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The answer to REQUEST LOOKUP: ``key:value:stamp`` of (key, stored form) pairs."""
    return b",".join(
        encode_field(key) + b":"
        + (encode_field(stored[HEADER_BYTES:]) if needs_escape(stored) else stored[HEADER_BYTES:])
        + b":" + stored[:STAMP_BYTES].hex().encode()
        for key, stored in found)


def split_found(payload: bytes) -> dict[bytes, bytes]:
    """Read a REQUEST LOOKUP answer into key -> stored form (stamp, flags, raw value)."""
    found = {}
    for item in payload.split(b",") if payload else ():
        fields = item.split(b":")
        if len(fields) != 3 or len(fields[2]) != STAMP_HEX:
            raise ProtocolError(f"malformed LOOKUP reply item {show(item)}")
        try:
            item_stamp = bytes.fromhex(fields[2].decode("ascii"))
        except ValueError:
            item_stamp = b""
        if len(item_stamp) != STAMP_HEX // 2:  # fromhex skips spaces: count the bytes
            raise ProtocolError(f"malformed LOOKUP reply item {show(item)}")
        value = fields[1]
        if PERCENT in value or CR in value:
            raw = decode_field(value)
            flags = ESCAPE_FLAGS if encode_field(raw) != raw else PLAIN_FLAGS
        else:
            raw, flags = value, PLAIN_FLAGS
        found[decode_field(fields[0])] = item_stamp + flags + raw
    return found
