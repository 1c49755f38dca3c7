"""Deletes remembered for a while, so that an older copy cannot come back.

A delete leaves a tombstone: the key and the stamp of the delete.  Another
node's copy with an older stamp (one that missed the delete: down, paused,
partitioned) loses to it wherever they meet (replication, anti-entropy), for
``ttl`` seconds; a newer write removes it.  At most ``limit`` are kept, the
oldest forgotten first, so memory stays bounded (a key plus 12 bytes and a
float each).  Time comes from an injected clock (monotonic seconds).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator


class Tombstones:
    """key -> stamp of its delete, for ``ttl`` seconds."""

    def __init__(self, ttl: float, limit: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._stamps: dict[bytes, bytes] = {}
        # (deadline, key, stamp) in the order they were made: a key deleted
        # again leaves its old entry behind, recognised by its stamp.
        self._order: deque[tuple[float, bytes, bytes]] = deque()
        self.on_change: Callable[[bytes, bytes], None] | None = None
        """Told (key, stamp) of each tombstone that comes or goes (expired, over
        the limit, or overtaken by a newer write): the slot digests."""

    def __len__(self) -> int:
        return len(self._stamps)

    def __bool__(self) -> bool:
        return bool(self._stamps)

    def get(self, key: bytes) -> bytes | None:
        return self._stamps.get(key)

    def add(self, key: bytes, stamp: bytes) -> bool:
        """Remember that ``key`` was deleted at ``stamp``; False if a newer
        tombstone is there already."""
        old = self._stamps.get(key)
        if old is not None:
            if old >= stamp:
                return False
            self._forget(key, old)
        self._stamps[key] = stamp
        if self.on_change is not None:
            self.on_change(key, stamp)
        order = self._order
        order.append((self._clock() + self._ttl, key, stamp))
        while len(self._stamps) > self._limit:
            self._pop_oldest()
        if len(order) > 2 * len(self._stamps) + 1024:
            # A key deleted again and again leaves stale entries: drop them
            # (amortised O(1) a delete), so the order stays bounded too.
            stamps = self._stamps
            self._order = deque(entry for entry in order if stamps.get(entry[1]) == entry[2])
        return True

    def discard(self, key: bytes, stamp: bytes) -> None:
        """The key was written again at ``stamp``: a delete older than that
        no longer matters."""
        old = self._stamps.get(key)
        if old is not None and old < stamp:
            self._forget(key, old)

    def expire(self) -> int:
        """Forget the tombstones past their TTL; how many went."""
        now = self._clock()
        order = self._order
        gone = 0
        while order and order[0][0] <= now:
            _, key, stamp = order.popleft()
            if self._stamps.get(key) == stamp:
                self._forget(key, stamp)
                gone += 1
        return gone

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._stamps.items()))

    def _pop_oldest(self) -> None:
        _, key, stamp = self._order.popleft()
        if self._stamps.get(key) == stamp:
            self._forget(key, stamp)

    def _forget(self, key: bytes, stamp: bytes) -> None:
        del self._stamps[key]
        if self.on_change is not None:
            self.on_change(key, stamp)
