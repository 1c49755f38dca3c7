"""This node's bloom filter, kept equal to the keys its store holds, and
what each peer is sent of it.

One rule decides which keys the filter must hold: **every key in the
store's table**, expired or not, from the moment it enters the table until
the moment it leaves it.  The store says when either happens
(:class:`~olivia.store.KeyListener`), whatever the verb or the reason
(a write, a delete, a lazy or timed expiry), at the moment it happens; growth
and refresh rebuild from that same table (:meth:`OwnFilter.held_keys`).  A
key whose TTL has passed but that the store has not evicted yet stays a
(harmless) false positive; a key the store holds is never missing, so a
peer's copy never says "no" for a key this node can answer.

* :class:`OwnFilter` keeps the filter in step: new keys wait in a list and
  enter the filter in one call per turn of the loop; removed keys are counted
  out at once and their bits cleared by a paced refresh; past its capacity the
  filter grows (to twice the size) by a refresh into a larger bit array, in
  steps, while the old bits keep answering.
* :class:`FilterRefresh` is one such rebuild, step by step, with no timing.
* :class:`FilterFeed` decides what each peer is sent (a full copy or a delta).

Nothing here reads a clock or touches the event loop except through the
:class:`Scheduler` it is given (the loop itself, or a test's fake).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from olivia.cluster.bloom import BloomFilter, FilterUpdate
from olivia.core.store import Store

log = logging.getLogger(__name__)

# A filter refresh takes at most this share of the event loop's time: after
# a refresh that kept the loop busy for t seconds, the next starts no sooner
# than t / REFRESH_SHARE later (and never sooner than REFRESH_MIN_INTERVAL).
# Growth is not paced: an over-full filter answers with more false positives.
REFRESH_SHARE = 0.1
REFRESH_MIN_INTERVAL = 0.1
# Keys per refresh step (~3 ms); other callbacks run between steps.
REFRESH_STEP_KEYS = 4000
# Filter deltas kept so a peer a few rounds behind gets one merged delta.
HISTORY_ROUNDS = 20


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What OwnFilter needs of an event loop (asyncio's loop has it all)."""

    def call_soon(self, callback: Callable[[], object], /) -> Cancellable: ...

    def call_later(self, delay: float, callback: Callable[[], object], /) -> Cancellable: ...

    def time(self) -> float: ...


class OwnFilter:
    """The filter of the keys in ``store``'s table (see the module docstring).

    It registers itself as the store's key listener.  Without a scheduler
    (unit use, or before the node serves) new keys enter at once and growth
    is done in one go; removed keys wait for a refresh that someone starts.
    """

    def __init__(self, bloom: BloomFilter, store: Store,
                 scheduler: Scheduler | None = None) -> None:
        self.bloom = bloom
        self._initial_capacity = bloom.capacity
        self._store = store
        self._scheduler = scheduler
        self._pending: list[bytes] = []  # in the table, not yet in the filter
        self._refresh = FilterRefresh(bloom, self.held_keys)
        self._timer: Cancellable | None = None  # the next paced refresh
        self._step_handle: Cancellable | None = None  # the next step of a rebuild
        self._busy = 0.0  # seconds the steps of the current rebuild took
        self._not_before = 0.0  # scheduler time of the next allowed refresh
        self._growth_started: float | None = None  # monotonic time, while growing
        store.listener = self

    def attach(self, scheduler: Scheduler | None) -> None:
        """Schedule with ``scheduler`` from now on (None: stop scheduling)."""
        self.flush()
        for handle in (self._timer, self._step_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._step_handle = None
        self._scheduler = scheduler
        if scheduler is not None:
            if self.bloom.refreshing:  # carry on with the rebuild begun before
                self._step_handle = scheduler.call_soon(self._step)
            elif self.bloom.stale:
                self._refresh_soon()

    def info_fields(self) -> list[tuple[str, object]]:
        bloom = self.bloom
        fill = bloom.fill()
        return [
            ("bloom_bits", bloom.bits),
            ("bloom_hashes", bloom.hashes),
            ("bloom_fp_estimate", f"{fill ** bloom.hashes:.6f}"),
            ("bloom_fill", f"{fill:.6f}"),
            ("bloom_keys", bloom.count),
            ("bloom_version", bloom.version),
        ]

    @property
    def pending(self) -> int:
        """New keys not yet in the filter (they go in at the end of the turn)."""
        return len(self._pending)

    def held_keys(self) -> list[bytes]:
        """The keys the filter must hold: the store's whole table, now."""
        return self._store.key_snapshot()

    # -- the store's KeyListener ------------------------------------------------

    def keys_added(self, keys: list[bytes]) -> None:
        """Keys entered the table.  They go into the filter at the end of this
        turn, all in one call: one bitarray call per turn, not per SET, when
        every line of a pipeline is a one-key SET.  Peers learn of them in the
        next gossip round either way."""
        pending = self._pending
        if not pending:
            if self._scheduler is None:
                self._add(keys)
                return
            self._scheduler.call_soon(self.flush)
        pending.extend(keys)

    def key_removed(self, key: bytes) -> None:
        """A key left the table: it is counted out now; its bits go at the
        next refresh."""
        bloom = self.bloom
        if self._pending:  # it may be one of them: count them in first
            keys, self._pending = self._pending, []
            bloom.add_many(keys)
        bloom.remove(key)
        # Only now may the filter grow: a rebuild reads the table, which no
        # longer holds the key, so it must not be counted out again after.
        self._grow_if_full()
        self._refresh_soon()

    # -- adding, growing, refreshing ------------------------------------------------

    def flush(self) -> None:
        """Put the pending new keys into the filter (growing it if needed)."""
        keys, self._pending = self._pending, []
        if keys:
            self._add(keys)

    def _add(self, keys: list[bytes]) -> None:
        self.bloom.add_many(keys)
        self._grow_if_full()

    def _grow_if_full(self) -> None:
        bloom = self.bloom
        if bloom.count <= bloom.capacity or bloom.growing_to is not None:
            return
        capacity = bloom.capacity * 2
        while bloom.count > capacity:
            capacity *= 2
        log.info("filter over capacity (%d keys): growing to %d keys", bloom.count, capacity)
        self._refresh.begin(capacity)  # replaces a refresh of the old size
        self._busy = 0.0
        self._growth_started = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._scheduler is None:
            while self._refresh.step():
                pass
            self._finished()
        elif self._step_handle is None:
            self._step_handle = self._scheduler.call_soon(self._step)

    def _shrunk_capacity(self) -> int | None:
        """A smaller capacity once most keys are gone (a filter 8x too large for
        its keys would cost peers memory for nothing, and peers refuse one
        out of proportion: olivia.cluster.bloom.OVERSIZE_FACTOR); else None."""
        bloom = self.bloom
        if bloom.capacity <= self._initial_capacity or bloom.count * 8 >= bloom.capacity:
            return None
        capacity = self._initial_capacity
        while capacity < 2 * bloom.count:
            capacity *= 2
        return capacity if capacity < bloom.capacity else None

    def _refresh_soon(self) -> None:
        """Removed keys wait: refresh when the pacing allows, unless one is due."""
        scheduler = self._scheduler
        if (scheduler is None or self._timer is not None or self._step_handle is not None
                or not self.bloom.stale):
            return
        delay = max(0.0, self._not_before - scheduler.time())
        self._timer = scheduler.call_later(delay, self._begin_refresh)

    def _begin_refresh(self) -> None:
        self._timer = None
        started = time.perf_counter()
        if self._refresh.begin(self._shrunk_capacity()):
            self._busy = time.perf_counter() - started
            self._step()

    def _step(self) -> None:
        self._step_handle = None
        started = time.perf_counter()
        more = self._refresh.step()
        self._busy += time.perf_counter() - started
        if more and self._scheduler is not None:
            self._step_handle = self._scheduler.call_soon(self._step)
        elif not more:
            self._finished()

    def _finished(self) -> None:
        if self._growth_started is not None:
            log.info("filter grown to %d keys capacity (%d bits) in %.2fs (%.2fs of work)",
                     self.bloom.capacity, self.bloom.bits,
                     time.monotonic() - self._growth_started, self._busy)
            self._growth_started = None
        if self._scheduler is not None:
            self._not_before = self._scheduler.time() + max(REFRESH_MIN_INTERVAL,
                                                            self._busy / REFRESH_SHARE)
        self._grow_if_full()  # keys may have come faster than it grew
        self._refresh_soon()


class FilterRefresh:
    """One rebuild of the filter's bits from ``held_keys()``, in steps of
    REFRESH_STEP_KEYS keys: a refresh (same size, clears removed keys' bits;
    see BloomFilter for why removal works this way) or a growth (a larger
    size).  Nothing here is scheduled: the caller calls ``begin`` and then
    ``step`` until it returns False."""

    def __init__(self, bloom: BloomFilter, held_keys: Callable[[], list[bytes]]) -> None:
        self._bloom = bloom
        self._held_keys = held_keys
        self._keys: list[bytes] = []
        self._index = 0

    def begin(self, capacity: int | None = None) -> bool:
        """Start a rebuild; True if started.  Without ``capacity``, a refresh,
        only if removed keys wait for one and no rebuild is in progress; with
        it, a growth to that capacity, replacing any rebuild in progress."""
        bloom = self._bloom
        if capacity is None and (not bloom.stale or bloom.refreshing):
            return False
        bloom.begin_refresh(capacity)
        self._keys = self._held_keys()
        self._index = 0
        return True

    def step(self) -> bool:
        """One step of the rebuild begun last; True while steps remain."""
        bloom = self._bloom
        if bloom.refreshing:
            end = self._index + REFRESH_STEP_KEYS
            bloom.refresh_add(self._keys[self._index:end])
            self._index = end
            if end < len(self._keys):
                return True
            bloom.finish_refresh()
        self._keys = []
        return False


class FilterFeed:
    """What each peer is sent of this node's filter.

    Once per gossip round :meth:`new_round` takes the change since the last
    round as a new version.  A peer that acknowledged version ``v`` then gets
    (:meth:`update_for`) nothing if ``v`` is current, one delta from ``v``
    (merged from the recent rounds' deltas, so a peer a few rounds behind
    does not need the whole filter), or a full copy.  A peer that never
    acknowledged anything, or whose push failed, gets a full copy.
    """

    def __init__(self, bloom: BloomFilter) -> None:
        self._bloom = bloom
        self._history: deque[FilterUpdate] = deque(maxlen=HISTORY_ROUNDS)
        self._acked: dict[str, int] = {}  # filter version each peer confirmed
        self._deltas: dict[int, FilterUpdate | None] = {}  # by acked version, this round

    def new_round(self) -> None:
        update = self._bloom.take_delta()
        self._deltas = {}
        if update is None:
            return
        if update.full_only:
            self._history.clear()
        else:
            self._history.append(update)

    def update_for(self, peer: str) -> bytes | None:
        """The encoded update for ``peer`` this round, or None if it is current.

        Call it in the same turn as :meth:`new_round`: a full copy carries the
        bits as they are now, labelled with the current version.
        """
        bloom = self._bloom
        acked = self._acked.get(peer)
        if acked == bloom.version:
            return None
        if acked is None:
            return bloom.encode_full()
        if acked not in self._deltas:
            self._deltas[acked] = self._delta_since(acked)
        delta = self._deltas[acked]
        return bloom.encode_best(delta) if delta is not None else bloom.encode_full()

    def acked(self, peer: str, version: int) -> None:
        """``peer`` now holds our filter at ``version``."""
        self._acked[peer] = version

    def reset(self, peer: str) -> None:
        """``peer`` may hold nothing of ours (new link, failed push): full copy next."""
        self._acked.pop(peer, None)

    def _delta_since(self, acked: int) -> FilterUpdate | None:
        """One delta from ``acked`` to now, merged from the recent updates; None
        if they do not reach back that far (the peer then gets a full copy)."""
        chain = [u for u in self._history if u.base_version >= acked]
        if (not chain or chain[0].base_version != acked
                or chain[-1].version != self._bloom.version):
            return None
        if len(chain) == 1:
            return chain[0]
        changed = sum(len(u.set_positions) + len(u.clear_positions) for u in chain)
        if self._bloom.prefers_full(changed):
            return None  # merging would cost more than the full copy saves
        bits: dict[int, bool] = {}
        for update in chain:  # later updates override earlier ones
            bits.update(dict.fromkeys(update.set_positions, True))
            bits.update(dict.fromkeys(update.clear_positions, False))
        return FilterUpdate(acked, self._bloom.version,
                            tuple(sorted(p for p, on in bits.items() if on)),
                            tuple(sorted(p for p, on in bits.items() if not on)))
