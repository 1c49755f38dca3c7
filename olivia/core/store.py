"""The key/value store of one node: bytes -> bytes, with optional expiry.

Memory is the constraint that shapes this module.  A key without a TTL costs
one dict entry and its two bytes objects, nothing more.  Keys with a TTL also
have an entry in ``_deadlines`` and one in a min-heap of ``(deadline, key)``.

The heap is never updated in place: overwriting or deleting a key leaves its
old heap entry behind.  An entry is acted on only if its deadline is still the
key's current deadline in ``_deadlines``, so a stale entry can never remove a
newer value.  When stale entries outnumber live ones, the heap is rebuilt.

Time comes from an injected clock (monotonic seconds), so tests drive expiry
with a fake clock and no sleeping.

The store keeps an account of the memory its data takes (:attr:`Store.used`):
each key costs its key and stored bytes plus ENTRY_BYTES (the two bytes
objects' headers and the table's entry, measured on CPython 3.11: RSS grew by
130-160 bytes a key beyond the data for 10-100 byte values), a key with a TTL
DEADLINE_BYTES more (its deadline entry and heap entry).  It is an estimate
of what the data costs, not of the process (docs/design.md, "Memory").

The store tells one :class:`KeyListener` (the node's bloom filter) whenever a
key enters or leaves its table, whatever the reason: the listener's view of
which keys are held is then exactly the table, with no second definition.
A key whose TTL has passed stays in the table until it is evicted (by
``expire_due``, or lazily when it is read or deleted).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

Clock = Callable[[], float]


class KeyListener(Protocol):
    """Told of every change to the set of keys in the table."""

    def keys_added(self, keys: list[bytes]) -> None:
        """``keys`` entered the table (each was absent; each listed once)."""

    def key_removed(self, key: bytes) -> None:
        """``key`` left the table (deleted, or evicted after its TTL)."""


class VersionListener(Protocol):
    """Told of every change of any key's value, with the old and the new
    (anti-entropy's slot digests).  Costs a lookup a write, so it is None
    unless something needs it."""

    def changed(self, key: bytes, old: bytes | None, new: bytes | None) -> None:
        """``key`` went from ``old`` to ``new`` (None: not in the table)."""


ENTRY_BYTES = 128  # per key, beyond its key and stored bytes
DEADLINE_BYTES = 144  # per key with a TTL: a deadlines entry, its float, a heap entry


def cost_of(key: bytes, stored_bytes: int) -> int:
    """What storing ``stored_bytes`` under ``key`` adds to Store.used (no TTL)."""
    return len(key) + stored_bytes + ENTRY_BYTES


# Rebuild the heap once it holds this many more entries than live deadlines
# (and more than twice as many): bounded waste, amortised O(1) per write.
_HEAP_SLACK = 1024


class Store:
    """Keys and values with optional expiry; not thread-safe (one event loop)."""

    __slots__ = ("_clock", "_data", "_deadlines", "_heap", "accounting", "expired_count",
                 "listener", "used", "versions")

    def __init__(self, clock: Clock = time.monotonic,
                 listener: KeyListener | None = None) -> None:
        self._data: dict[bytes, bytes] = {}
        self._deadlines: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._clock = clock
        self.expired_count = 0
        """Keys removed because their TTL ran out, lazily or by the heap."""
        self.used = 0
        """Bytes the data is accounted to take (see the module's docstring); kept
        exactly while ``accounting`` (max_memory is set), else see memory()."""
        self.accounting = False
        self.listener = listener
        """Told of every key that enters or leaves the table (see KeyListener)."""
        self.versions: VersionListener | None = None
        """Told of every change of a value, old and new (see VersionListener)."""

    def __len__(self) -> int:
        """Keys held, including expired ones not yet evicted (see expire_due)."""
        return len(self._data)

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def keys(self) -> Iterator[bytes]:
        """Live keys (a snapshot, safe to modify the store while iterating).
        Not what the filter holds: that is key_snapshot()."""
        now = self._clock()
        deadlines = self._deadlines
        return iter([k for k in self._data if deadlines.get(k, now + 1) > now])

    def items(self) -> list[tuple[bytes, bytes]]:
        """(key, stored) of every key in the table (a copy, made at C speed)."""
        return list(self._data.items())

    def peek(self, key: bytes) -> bytes | None:
        """The stored value, expired or not, without evicting anything."""
        return self._data.get(key)

    def key_snapshot(self) -> list[bytes]:
        """Every key in the table, expired or not yet evicted (a copy, made at
        C speed): the keys a KeyListener has been told are there."""
        return list(self._data)

    def get(self, key: bytes) -> bytes | None:
        value = self._data.get(key)
        deadlines = self._deadlines
        if value is not None and deadlines and key in deadlines and deadlines[key] <= self._clock():
            self._expire(key)
            return None
        return value

    def set(self, key: bytes, value: bytes) -> bool:
        """Store ``value`` under ``key`` with no expiry (clearing any TTL).
        True if the key is new (was absent)."""
        data = self._data
        old = data.get(key)
        data[key] = value
        self.used += (len(value) - len(old)) if old is not None else cost_of(key, len(value))
        if self._deadlines and self._deadlines.pop(key, None) is not None:
            self.used -= DEADLINE_BYTES
        if self.versions is not None:
            self.versions.changed(key, old, value)
        if old is None and self.listener is not None:
            self.listener.keys_added([key])
        return old is None

    def set_many(self, pairs: Sequence[Sequence[bytes]], prefix: bytes = b"") -> list[bytes]:
        """Store ``prefix + value`` under each ``key`` of ``(key, value)`` pairs,
        clearing TTLs; the keys that are new, each once.

        One call for a whole multi-key SET: a bulk load spends its time here.
        """
        data = self._data
        new = []
        versions = self.versions
        if versions is None and not self.accounting:
            # The bulk-load path, kept as it was: one hash probe a pair (the
            # account is kept only under max_memory: see memory()).
            size = len(data)
            for key, value in pairs:
                data[key] = prefix + value
                if len(data) != size:
                    size += 1
                    new.append(key)
            if self._deadlines:
                pop = self._deadlines.pop
                for key, _ in pairs:
                    pop(key, None)
            if new and self.listener is not None:
                self.listener.keys_added(new)
            return new
        get = data.get
        used = self.used
        extra = len(prefix) + ENTRY_BYTES  # a new key's cost beyond its key and value
        for key, value in pairs:
            old = get(key)
            data[key] = stored = prefix + value
            if old is None:
                new.append(key)
                used += len(key) + len(value) + extra
            else:
                used += len(stored) - len(old)
            if versions is not None:
                versions.changed(key, old, stored)
        if self._deadlines:
            pop = self._deadlines.pop
            for key, _ in pairs:
                if pop(key, None) is not None:
                    used -= DEADLINE_BYTES
        self.used = used
        if new and self.listener is not None:
            self.listener.keys_added(new)
        return new

    def set_with_ttl(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` to expire ``ttl`` seconds from now.  True if the key is new."""
        deadline = self._clock() + ttl
        old = self._data.get(key)
        is_new = old is None
        self._data[key] = value
        self.used += (len(value) - len(old)) if old is not None else cost_of(key, len(value))
        if self.versions is not None:
            self.versions.changed(key, old, value)
        if key not in self._deadlines:
            self.used += DEADLINE_BYTES
        self._deadlines[key] = deadline
        heapq.heappush(self._heap, (deadline, key))
        if len(self._heap) > 2 * len(self._deadlines) + _HEAP_SLACK:
            self._rebuild_heap()
        if is_new and self.listener is not None:
            self.listener.keys_added([key])
        return is_new

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was there and not yet expired."""
        if self._deadlines and key in self._deadlines:
            if self._deadlines[key] <= self._clock():
                self._expire(key)
                return False
            del self._deadlines[key]
            self.used -= DEADLINE_BYTES
        stored = self._data.pop(key, None)
        if stored is None:
            return False
        self._removed(key, stored)
        return True

    def memory(self) -> int:
        """The account of the data's memory.  Without ``accounting`` a bulk
        SET does not keep it (a probe a key saved), so it is summed here, at
        C speed (some 30 ms for a million keys)."""
        if self.accounting:
            return self.used
        data = self._data
        return (sum(map(len, data)) + sum(map(len, data.values()))
                + ENTRY_BYTES * len(data) + DEADLINE_BYTES * len(self._deadlines))

    def start_accounting(self) -> None:
        """Keep Store.used exactly from now on (max_memory is set)."""
        self.used = self.memory()
        self.accounting = True

    def has_ttl(self, key: bytes) -> bool:
        return key in self._deadlines

    def volatile_count(self) -> int:
        """Keys with a TTL (expired ones not yet evicted included)."""
        return len(self._deadlines)

    def volatile_snapshot(self) -> list[bytes]:
        """Every key with a TTL (a copy): what the volatile-* policies evict from."""
        return list(self._deadlines)

    def deadline_of(self, key: bytes) -> float | None:
        return self._deadlines.get(key)

    def ttl(self, key: bytes) -> float | None:
        """Seconds left before ``key`` expires, or None if it has no TTL."""
        deadline = self._deadlines.get(key)
        return None if deadline is None else max(0.0, deadline - self._clock())

    def next_deadline(self) -> float | None:
        """Earliest pending deadline on the heap (may belong to a stale entry)."""
        return self._heap[0][0] if self._heap else None

    def expire_due(self, limit: int | None = None) -> list[bytes]:
        """Evict keys whose deadline has passed, at most ``limit`` of them.

        Returns the evicted keys.  Stale heap entries are dropped on the way
        and do not count towards ``limit``.
        """
        now = self._clock()
        heap, deadlines = self._heap, self._deadlines
        evicted: list[bytes] = []
        while heap and heap[0][0] <= now:
            if limit is not None and len(evicted) >= limit:
                break
            deadline, key = heapq.heappop(heap)
            if deadlines.get(key) == deadline:
                del deadlines[key]
                self.used -= DEADLINE_BYTES
                evicted.append(key)
                self.expired_count += 1
                self._removed(key, self._data.pop(key))  # told at once: it may read the table
        return evicted

    def clock(self) -> float:
        return self._clock()

    def _expire(self, key: bytes) -> None:
        # The heap entry stays; it is recognised as stale when popped.
        del self._deadlines[key]
        self.used -= DEADLINE_BYTES
        self.expired_count += 1
        self._removed(key, self._data.pop(key))

    def _removed(self, key: bytes, stored: bytes) -> None:
        self.used -= cost_of(key, len(stored))
        if self.versions is not None:
            self.versions.changed(key, stored, None)
        if self.listener is not None:
            self.listener.key_removed(key)

    def _rebuild_heap(self) -> None:
        self._heap = [(deadline, key) for key, deadline in self._deadlines.items()]
        heapq.heapify(self._heap)
