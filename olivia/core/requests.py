"""Requests and results as plain Python values: what every front end
translates to and from.  No wire bytes here: a key is its raw bytes, a value
its raw bytes, a number a number.

A verb's arguments have one of a few **shapes** (a list of keys, of key:value
pairs, ...).  A front end parses by shape, so a new verb with an existing
shape needs no new parser; a handler receives the items of its shape.

Results are equally few: the line protocol words each verb's reply (``:GOT``,
``:SAT``...), RESP picks Redis's reply type, HTTP a status and body; none of
them needs to know more than the result's class and the verb's name.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

MAX_KEY_BYTES = 250
# A TTL above a century is almost certainly a unit mistake (ms for s); refuse
# it rather than keep a key forever by accident.
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600.0

Keys = tuple[bytes, ...]
Pairs = tuple[tuple[bytes, bytes], ...]


class TtlItem(NamedTuple):
    """One key, value and TTL of SETEX; ``ttl_text`` is the TTL as the client
    wrote it (the line protocol echoes it as sent)."""

    key: bytes
    value: bytes
    ttl: float
    ttl_text: bytes

    @classmethod
    def of(cls, key: bytes, value: bytes, ttl: float) -> TtlItem:
        """An item from a number of seconds (> 0, at most a century)."""
        if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_SECONDS):
            raise ValueError(f"ttl must be > 0 and at most {MAX_TTL_SECONDS:.0f} seconds")
        text = repr(float(ttl)).encode()
        if b"e" in text:  # the wire takes plain decimals only
            text = f"{ttl:.9f}".rstrip("0").encode()
        return cls(key, value, float(text), text)


TtlItems = tuple[TtlItem, ...]


class KeyTtl(NamedTuple):
    """A key and the TTL to give it (EXPIRE), with the TTL as written."""

    key: bytes
    ttl: float
    ttl_text: bytes


KeyTtls = tuple[KeyTtl, ...]
Amounts = tuple[tuple[bytes, int], ...]  # (key, signed amount): INCR, DECR


class Swap(NamedTuple):
    """CAS: replace ``key``'s value by ``new`` if it is ``old``."""

    key: bytes
    old: bytes
    new: bytes


class Rename(NamedTuple):
    old: bytes
    new: bytes


class ScanArgs(NamedTuple):
    """SCAN's arguments: the cursor as sent (``0`` starts), how many keys a
    page should hold (a hint), and the glob the keys must match (b"*": all)."""

    cursor: bytes
    size: int
    pattern: bytes


# -- the peer dialect's items -------------------------------------------------


class Hello(NamedTuple):
    """A node introducing itself (REQUEST CONNECT), with the nonce of its
    challenge (olivia.cluster.handshake; empty where none is sent)."""

    name: str
    address: str
    incarnation: int
    nonce: bytes = b""


class Answer(NamedTuple):
    """What a node answers REQUEST CONNECT with: who it is, and its half of
    the challenge (olivia.cluster.handshake)."""

    identity: Hello
    nonce: bytes
    proof: bytes
    vouch: bytes


class StampedKeys(NamedTuple):
    """Keys to drop if older than ``stamp`` (REQUEST DELETE)."""

    stamp: bytes
    keys: Keys


KeyStamps = tuple[tuple[bytes, bytes], ...]  # (key, stamp): REQUEST INVALIDATE


class FilterPush(NamedTuple):
    """A peer's filter update, in the bloom module's encoding (REQUEST FILTER)."""

    name: str
    data: bytes


class Copy(NamedTuple):
    """One version of a key sent between nodes (replication, repair,
    hand-over): the raw value (None for a delete), its stamp, and the TTL left
    in seconds (None: none)."""

    key: bytes
    value: bytes | None
    stamp: bytes
    ttl: float | None


Copies = tuple[Copy, ...]


class Version(NamedTuple):
    """Which version of a key a node holds: its stamp, and whether it is a
    delete's tombstone (anti-entropy compares these, not values)."""

    key: bytes
    stamp: bytes
    tombstone: bool


Versions = tuple[Version, ...]
SlotDigestItems = tuple[tuple[int, int], ...]  # (slot, digest): REQUEST DIGESTS
Slots = tuple[int, ...]  # REQUEST VERSIONS


ItemsT = TypeVar("ItemsT")


class Shape(Generic[ItemsT]):
    """The shape of a verb's arguments; ``ItemsT`` is the type of its items."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Shape({self.name})"


NONE: Shape[None] = Shape("none")  # INFO, QUIT
TEXT: Shape[bytes] = Shape("text")  # PING [text]
KEYS: Shape[Keys] = Shape("keys")  # GET, DEL
PAIRS: Shape[Pairs] = Shape("pairs")  # SET
TTL_ITEMS: Shape[TtlItems] = Shape("ttl_items")  # SETEX
AMOUNTS: Shape[Amounts] = Shape("amounts")  # INCR, DECR
SWAP: Shape[Swap] = Shape("swap")  # CAS
RENAME: Shape[Rename] = Shape("rename")
KEY_TTLS: Shape[KeyTtls] = Shape("key_ttls")  # EXPIRE
SCAN_ARGS: Shape[ScanArgs] = Shape("scan_args")
PATTERN: Shape[bytes] = Shape("pattern")  # KEYS [pattern]
HELLO: Shape[Hello] = Shape("hello")
NAME: Shape[str] = Shape("name")
STAMPED_KEYS: Shape[StampedKeys] = Shape("stamped_keys")
KEY_STAMPS: Shape[KeyStamps] = Shape("key_stamps")
FILTER_PUSH: Shape[FilterPush] = Shape("filter_push")
COPIES: Shape[Copies] = Shape("copies")
SLOT_DIGESTS: Shape[SlotDigestItems] = Shape("slot_digests")
SLOTS: Shape[Slots] = Shape("slots")
VERSIONS: Shape[Versions] = Shape("versions")


# -- results ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """The request was carried out; nothing to report (SET, SETEX): the line
    protocol echoes the request, RESP answers +OK."""


@dataclass(frozen=True, slots=True)
class Found:
    """Key/value pairs found, in request order (GET)."""

    pairs: Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class KeyList:
    """Keys the request acted on, in request order (DEL: those that existed)."""

    keys: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class Values:
    """Raw (key, value) pairs, in request order (GETDEL: the values taken)."""

    pairs: Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Numbers:
    """(key, integer) pairs, in request order (INCR, DECR: the new values)."""

    pairs: Sequence[tuple[bytes, int]]


@dataclass(frozen=True, slots=True)
class Swapped:
    """CAS's answer: whether it swapped, and the value now held (None: no key)."""

    key: bytes
    swapped: bool
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Renamed:
    old: bytes
    new: bytes


@dataclass(frozen=True, slots=True)
class Ttls:
    """(key, seconds left or None for no TTL) of the keys that exist (TTL)."""

    pairs: Sequence[tuple[bytes, float | None]]


@dataclass(frozen=True, slots=True)
class Expiries:
    """The EXPIRE items carried out (keys that exist), as sent."""

    items: Sequence[KeyTtl]


@dataclass(frozen=True, slots=True)
class ScanPage:
    """One page of a SCAN: the cursor to send next (b"0": the scan is over)
    and keys (a key may come in more than one page)."""

    cursor: bytes
    keys: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class Count:
    """A number (COUNT: the live keys of the cluster)."""

    count: int


@dataclass(frozen=True, slots=True)
class Text:
    """Bytes to give back as they are (PING's text)."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Fields:
    """Named values (INFO), in a stable order."""

    fields: Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Ack:
    """Done, with nothing to echo (AUTH): the line protocol answers the verb's
    word alone, RESP +OK."""


@dataclass(frozen=True, slots=True)
class Bye:
    """The client asked to close; this is the last reply (QUIT)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """A peer verb's answer, already in the peer dialect's form (``FULFILLED``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Admitted:
    """A peer introduced itself and was admitted: the connection is now a
    peer's (its lines may be longer, and a broken one is dropped)."""

    data: bytes
    name: str


Result = (Done | Ack | Found | KeyList | Text | Fields | Bye | Payload | Admitted | Values
          | Numbers | Swapped | Renamed | Ttls | Expiries | ScanPage | Count)
Outcome = Result | Awaitable[Result]


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request: the verb's registry entry and its items."""

    verb: Any  # VerbSpec; Any so that this module does not import the registry
    items: Any
