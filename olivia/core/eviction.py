"""Which keys go when a node is at ``max_memory``: the eviction policies.

Like Redis, nothing here orders all the keys: each eviction *samples* a few
candidates (SAMPLES) and evicts the best of them by the policy, which is
close to exact LRU/LFU at a fraction of the cost.  Sampling needs random
access, which a dict does not give, so candidates are drawn from a snapshot
of the keys (a list, 8 bytes a key, made at C speed) that is renewed once a
quarter of it has been drawn; a drawn key no longer held is skipped.

What each policy needs to know of a key, and what it costs:

* ``allkeys-random``: nothing.
* ``volatile-ttl``: the key's deadline (the store has it).
* ``allkeys-lru`` / ``volatile-lru``: when the key was last used.  A write's
  time is in its version stamp (the store has it); reads are recorded in two
  generations of sets (:class:`Recency`): a key read since the last rotation
  is in ``current``, one read in the rotation before in ``previous``.  A
  rotation happens every ``len(store) // 8`` reads (and at least 1024), so
  the sets hold at most about a quarter of the keys: a few bytes a key on
  average, and one set insertion a read.  A sampled key scores by the
  generation of its last read, then by its write stamp: the least recently
  used goes first.
* ``allkeys-lfu``: how often the key is read: a counter per key read since
  it last decayed (:class:`Frequency`); every rotation halves every counter
  and forgets the zeros, so a key's count is a recent, decaying frequency.
  Ties go by write stamp.

A key that was never read scores lowest under lru and lfu, and among those
the oldest write goes first; so a hot set of keys that are read survives a
flood of writes, which is what these policies are for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from olivia.core.clock import STAMP_BYTES
from olivia.core.store import Store

SAMPLES = 5  # candidates per eviction, as Redis's maxmemory-samples
MIN_ROTATION = 1024  # reads between rotations at least
POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
            "volatile-ttl")


class Tracker(Protocol):
    """What a policy records of reads."""

    def touch(self, key: bytes) -> None: ...

    def score(self, key: bytes) -> int: ...


class Recency:
    """Two generations of recently read keys (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.current: set[bytes] = set()
        self.previous: set[bytes] = set()
        self._reads = 0

    def touch(self, key: bytes) -> None:
        self.current.add(key)
        self._reads += 1
        if self._reads >= max(MIN_ROTATION, len(self._store) // 8):
            self.previous, self.current = self.current, set()
            self._reads = 0

    def score(self, key: bytes) -> int:
        return 2 if key in self.current else 1 if key in self.previous else 0


class Frequency:
    """Decaying read counts (see the module's docstring)."""

    MAX_COUNT = 255

    def __init__(self, store: Store) -> None:
        self._store = store
        self.counts: dict[bytes, int] = {}
        self._reads = 0

    def touch(self, key: bytes) -> None:
        counts = self.counts
        counts[key] = min(counts.get(key, 0) + 1, self.MAX_COUNT)
        self._reads += 1
        if self._reads >= max(MIN_ROTATION, len(self._store) // 8):
            self.counts = {k: c // 2 for k, c in counts.items() if c > 1}
            self._reads = 0

    def score(self, key: bytes) -> int:
        return self.counts.get(key, 0)


class Evictor:
    """Frees memory from ``store`` by ``policy``; ``evicted(key, stamp)`` is
    called for each key removed (so the cluster drops its copies)."""

    def __init__(self, store: Store, policy: str,
                 evicted: Callable[[bytes, bytes], None] | None = None,
                 rng: random.Random | None = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown eviction policy {policy!r}")
        self.policy = policy
        self._store = store
        self._evicted = evicted
        self._rng = rng or random.Random()
        self._volatile = policy.startswith("volatile-")
        self.tracker: Tracker | None = (
            Recency(store) if policy.endswith("-lru")
            else Frequency(store) if policy == "allkeys-lfu" else None)
        #: Called on every read of a key (None: the policy needs no reads).
        self.touch: Callable[[bytes], None] | None = (
            self.tracker.touch if self.tracker is not None else None)
        self._pool: list[bytes] = []
        self._drawn = 0
        self.evicted_count = 0

    @property
    def evicts(self) -> bool:
        return self.policy != "noeviction"

    def free(self, needed: int) -> int:
        """Evict keys until ``needed`` bytes are freed or nothing can go;
        returns the bytes freed."""
        store = self._store
        start = store.used
        while start - store.used < needed:
            key = self._choose()
            if key is None:
                break
            stored = store.peek(key)
            if stored is None or not store.delete(key):
                continue  # expired meanwhile: gone anyway
            self.evicted_count += 1
            if self._evicted is not None:
                self._evicted(key, stored[:STAMP_BYTES])
        return start - store.used

    def _choose(self) -> bytes | None:
        """The best of SAMPLES live candidates, or None if there are none."""
        key = self._sample()
        if key is None and self._drawn > 0:
            self._pool = []  # the snapshot may be stale: draw once more from a new one
            key = self._sample()
        return key

    def _sample(self) -> bytes | None:
        best: bytes | None = None
        best_rank: tuple[float, bytes] | None = None
        found = 0
        for _ in range(SAMPLES * 4):  # dead draws do not count, but are bounded
            key = self._draw()
            if key is None:
                return best
            rank = self._rank(key)
            if rank is None:
                continue
            if best_rank is None or rank < best_rank:
                best, best_rank = key, rank
            found += 1
            if found >= SAMPLES or self.policy == "allkeys-random":
                break
        return best

    def _rank(self, key: bytes) -> tuple[float, bytes] | None:
        """Lower goes first; None for a key no longer a candidate."""
        store = self._store
        stored = store.peek(key)
        if stored is None or (self._volatile and not store.has_ttl(key)):
            return None
        if self.policy == "volatile-ttl":
            deadline = store.deadline_of(key)
            return (deadline if deadline is not None else float("inf")), b""
        score = self.tracker.score(key) if self.tracker is not None else 0
        return float(score), stored[:STAMP_BYTES]

    def _draw(self) -> bytes | None:
        pool = self._pool
        if not pool or self._drawn * 4 >= len(pool):
            store = self._store
            pool = self._pool = (store.volatile_snapshot() if self._volatile
                                 else store.key_snapshot())
            self._drawn = 0
            if not pool:
                return None
        self._drawn += 1
        return pool[self._rng.randrange(len(pool))]
