"""SCAN across the cluster: the cursor, and each node's own part of a scan.

A cluster scan visits the alive members one after the other, in the order
of a hash of their names (the same order on every node), and each member
lists the keys it holds that it is the one to list (each key is listed by
one node: with replicas its first home, else its one holder: Peers.lists_slot).  The
cursor says which member and where in it, in one decimal below 2**64 (as
Redis's, which redis-py and redis-cli read as integers): the member's hash
in the high 32 bits, a token for the place in that member's scan in the low
32; opaque to clients; ``0`` starts a scan and ends one.

A member's part is a walk over a **snapshot** of its keys, taken at its
first page and kept (up to SNAPSHOTS of them, each until SNAPSHOT_IDLE
seconds after its last page): a key present for the whole scan was in the
snapshot, so it is listed; a key is listed only if it is still there when its
page is made, so no key that existed at no time during the scan comes back.
Keys added during a scan may or may not be listed, as in Redis.
"""

from __future__ import annotations

import re
import secrets
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from olivia.core.errors import BadItemError
from olivia.core.glob import matcher
from olivia.core.store import Store

#: How many scans a node keeps a snapshot for, and for how long unused.
SNAPSHOTS = 16
SNAPSHOT_IDLE = 600.0
#: Places (tokens) remembered per node: a few per kept scan, so that the
#: last cursor of each can be sent again (a client's retry).
TOKENS = SNAPSHOTS * 4
#: A page examines at most this many snapshot entries per key asked for.
WORK_PER_KEY = 4
START = b"0"
_DECIMAL = re.compile(rb"[0-9]{1,20}\Z").match
_TOKEN_BITS = 32
_TOKEN_MASK = (1 << _TOKEN_BITS) - 1


def member_hash(name: str) -> int:
    return zlib.crc32(name.encode())


def scan_order(members: Iterable[str]) -> list[str]:
    """The order a cluster scan visits the members in."""
    return sorted(members, key=lambda name: (member_hash(name), name))


class Cursor(NamedTuple):
    """Where a scan is: the hash of the member being scanned, and the place
    in that member's own scan (b"0": its start, else a token it gave)."""

    member: int
    position: bytes

    def encode(self) -> bytes:
        """A decimal below 2**64, as Redis's cursors (redis-py and redis-cli
        read them as integers): the member's hash, then its token."""
        return b"%d" % ((self.member << _TOKEN_BITS) | int(self.position))


def parse_cursor(text: bytes) -> Cursor | None:
    """The cursor a client sent back (None: ``0``, a new scan)."""
    if text == START:
        return None
    value = int(text) if _DECIMAL(text) else -1
    if not 0 < value < 1 << 64:
        raise BadItemError(f"SCAN has a bad cursor {text.decode('ascii', 'replace')[:40]!r}: "
                           "not one SCAN returned; start a scan with cursor 0")
    return Cursor(value >> _TOKEN_BITS, b"%d" % (value & _TOKEN_MASK))


def first_at_or_after(order: Sequence[str], member: int) -> tuple[str, bool] | None:
    """The member a scan goes on with: the one whose hash is ``member`` (True),
    or, if it is gone, the next one in the order (False); None past the last."""
    for name in order:
        key = member_hash(name)
        if key >= member:
            return name, key == member
    return None


def next_member(order: Sequence[str], member: int) -> str | None:
    """The member after the one of hash ``member`` (None: it was the last)."""
    for name in order:
        if member_hash(name) > member:
            return name
    return None


class Scanner:
    """This node's part of cluster scans: snapshots of its keys, and pages of them.

    A page's place is a random 32-bit token standing for (snapshot, index):
    the cursor must fit Redis's 64 bits, so the place is kept here."""

    def __init__(self, store: Store, clock: Callable[[], float],
                 tokens: Callable[[], int] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._snapshots: OrderedDict[int, tuple[list[bytes], float]] = OrderedDict()
        self._places: OrderedDict[int, tuple[int, int]] = OrderedDict()  # token -> place
        self._next_id = 1
        self._new_token = tokens or (lambda: secrets.randbits(_TOKEN_BITS) or 1)

    def page(self, position: bytes, count: int, pattern: bytes,
             lists: Callable[[bytes], bool]) -> tuple[bytes, list[bytes]]:
        """Up to ``count`` keys matching ``pattern`` that ``lists`` accepts,
        from ``position`` (``0``: a new snapshot, else a token a page gave);
        the token of the place after them, or b"" when this node has no more."""
        snapshot_id, index = self._place(position)
        keys = self._snapshots[snapshot_id][0]
        wanted = matcher(pattern)
        get = self._store.get
        found: list[bytes] = []
        end = min(len(keys), index + max(count, 1) * WORK_PER_KEY)
        while index < end and len(found) < count:
            key = keys[index]
            index += 1
            if get(key) is not None and wanted(key) and lists(key):
                found.append(key)
        if index >= len(keys):
            return b"", found
        self._snapshots[snapshot_id] = (keys, self._clock())
        token = self._new_token()
        self._places[token] = (snapshot_id, index)
        while len(self._places) > TOKENS:
            self._places.popitem(last=False)
        return b"%d" % token, found

    def _place(self, position: bytes) -> tuple[int, int]:
        now = self._clock()
        snapshots = self._snapshots
        for old in [key for key, (_, used) in snapshots.items() if now - used > SNAPSHOT_IDLE]:
            del snapshots[old]
        if position == START:
            snapshots[self._next_id] = (self._store.key_snapshot(), now)
            self._next_id += 1
            while len(snapshots) > SNAPSHOTS:
                snapshots.popitem(last=False)
            return self._next_id - 1, 0
        token = int(position) if _DECIMAL(position) else -1
        place = self._places.get(token)
        if place is None or place[0] not in snapshots:
            raise BadItemError(
                f"SCAN has a bad cursor: it has expired (a node keeps a scan's place for "
                f"{SNAPSHOT_IDLE:.0f} s after its last page, for {SNAPSHOTS} scans at most); "
                "start again with cursor 0")
        snapshots.move_to_end(place[0])
        return place
