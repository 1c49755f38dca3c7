"""SCAN across the cluster: the cursor, and each node's own part of a scan.

A cluster scan visits the alive members one after the other, in the order
of a hash of their names (the same order on every node), and each member
lists the keys it holds that it is the one to list (each key is listed by
one node: with replicas its first home, else its one holder: Peers.lists_slot).  The
cursor says which member and where in it: ``<member hash>.<snapshot>.<position>``
in hex and decimals, opaque to clients; ``0`` starts a scan and ends one.

A member's part is a walk over a **snapshot** of its keys, taken at its
first page and kept (up to SNAPSHOTS of them, each until SNAPSHOT_IDLE
seconds after its last page): a key present for the whole scan was in the
snapshot, so it is listed; a key is listed only if it is still there when its
page is made, so no key that existed at no time during the scan comes back.
Keys added during a scan may or may not be listed, as in Redis.
"""

from __future__ import annotations

import re
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
#: A page examines at most this many snapshot entries per key asked for.
WORK_PER_KEY = 4
START = b"0"
_POSITION = re.compile(rb"([0-9]{1,12})\.([0-9]{1,12})\Z").match
_CURSOR = re.compile(rb"([0-9a-f]{8})\.([0-9]{1,12}\.[0-9]{1,12})\Z").match


def member_hash(name: str) -> int:
    return zlib.crc32(name.encode())


def scan_order(members: Iterable[str]) -> list[str]:
    """The order a cluster scan visits the members in."""
    return sorted(members, key=lambda name: (member_hash(name), name))


class Cursor(NamedTuple):
    """Where a scan is: the hash of the member being scanned, and the
    position in that member's own scan (b"0.0": its start)."""

    member: int
    position: bytes

    def encode(self) -> bytes:
        return b"%08x." % self.member + self.position


def parse_cursor(text: bytes) -> Cursor | None:
    """The cursor a client sent back (None: ``0``, a new scan)."""
    if text == START:
        return None
    match = _CURSOR(text)
    if match is None:
        raise BadItemError(f"SCAN has a bad cursor {text.decode('ascii', 'replace')[:40]!r}: "
                           "not one SCAN returned; start a scan with cursor 0")
    return Cursor(int(match.group(1), 16), match.group(2))


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
    """This node's part of cluster scans: snapshots of its keys, and pages of them."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._snapshots: OrderedDict[int, tuple[list[bytes], float]] = OrderedDict()
        self._next_id = 1

    def page(self, position: bytes, count: int, pattern: bytes,
             lists: Callable[[bytes], bool]) -> tuple[bytes, list[bytes]]:
        """Up to ``count`` keys matching ``pattern`` that ``lists`` accepts,
        from ``position`` (``0.0``: a new snapshot); the position after them,
        or b"" when this node has no more."""
        match = _POSITION(position)
        if match is None:
            raise BadItemError("SCAN has a bad position: need <snapshot>.<index>")
        snapshot_id, index = int(match.group(1)), int(match.group(2))
        keys = self._snapshot(snapshot_id)
        if snapshot_id == 0:
            snapshot_id = self._next_id - 1
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
            self._snapshots.pop(snapshot_id, None)
            return b"", found
        self._snapshots[snapshot_id] = (keys, self._clock())
        return b"%d.%d" % (snapshot_id, index), found

    def _snapshot(self, snapshot_id: int) -> list[bytes]:
        now = self._clock()
        snapshots = self._snapshots
        for old in [key for key, (_, used) in snapshots.items() if now - used > SNAPSHOT_IDLE]:
            del snapshots[old]
        if snapshot_id == 0:
            keys = self._store.key_snapshot()
            snapshots[self._next_id] = (keys, now)
            self._next_id += 1
            while len(snapshots) > SNAPSHOTS:
                snapshots.popitem(last=False)
            return keys
        held = snapshots.get(snapshot_id)
        if held is None:
            raise BadItemError(
                f"SCAN has a bad cursor: it has expired (a node keeps a scan's place for "
                f"{SNAPSHOT_IDLE:.0f} s after its last page, for {SNAPSHOTS} scans at most); "
                "start again with cursor 0")
        snapshots.move_to_end(snapshot_id)
        return held[0]
