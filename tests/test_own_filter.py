"""The node's own filter against its store: it never says "no" for a key the
store holds, through any sequence of writes, deletes, expiry, growth,
refresh and gossip, and neither does a peer's copy once the update arrived.

A stateful Hypothesis test over the real Store, OwnFilter (with its paced
refresh and stepwise growth), FilterFeed and FilterReplica, on a fake clock
and a fake event loop whose turns and timers are rules of their own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from olivia.cluster.bloom import BloomFilter, FilterReplica
from olivia.cluster.own_filter import REFRESH_STEP_KEYS, FilterFeed, FilterRefresh, OwnFilter
from olivia.core.store import Store
from tests.helpers import FakeClock

KEYS = [b"k%d" % i for i in range(14)]
keys = st.sampled_from(KEYS)
ttls = st.sampled_from([0.001, 0.5, 1.0, 3.0])
PEERS = ("p1", "p2")


class FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Callbacks run only when a test says a turn ends; timers when their
    time has come on the fake clock and a turn ends."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._ready: list[tuple[FakeHandle, Callable[[], object]]] = []
        self._timers: list[tuple[float, int, FakeHandle, Callable[[], object]]] = []
        self._order = count()

    def time(self) -> float:
        return self._clock()

    def call_soon(self, callback: Callable[[], object], /) -> FakeHandle:
        handle = FakeHandle()
        self._ready.append((handle, callback))
        return handle

    def call_later(self, delay: float, callback: Callable[[], object], /) -> FakeHandle:
        handle = FakeHandle()
        heapq.heappush(self._timers, (self._clock() + delay, next(self._order), handle, callback))
        return handle

    def run_once(self) -> None:
        """One turn: the callbacks ready now (not those they schedule)."""
        while self._timers and self._timers[0][0] <= self._clock():
            _, _, handle, callback = heapq.heappop(self._timers)
            self._ready.append((handle, callback))
        ready, self._ready = self._ready, []
        for handle, callback in ready:
            if not handle.cancelled:
                callback()


class OwnFilterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.loop = FakeLoop(self.clock)
        self.store = Store(self.clock)
        # A tiny filter, so that it grows again and again.
        self.bloom = BloomFilter(capacity=3, fp_rate=0.01)
        self.own = OwnFilter(self.bloom, self.store, self.loop)
        self.feed = FilterFeed(self.bloom)
        self.replicas = {peer: FilterReplica() for peer in PEERS}

    # -- what clients do ------------------------------------------------------

    @rule(chosen=st.lists(keys, min_size=1, max_size=5), value=st.binary(max_size=3))
    def set_many(self, chosen: list[bytes], value: bytes) -> None:
        self.store.set_many([(key, value) for key in chosen], b"")

    @rule(key=keys, value=st.binary(max_size=3))
    def set_one(self, key: bytes, value: bytes) -> None:
        self.store.set(key, value)

    @rule(key=keys, ttl=ttls)
    def setex(self, key: bytes, ttl: float) -> None:
        self.store.set_with_ttl(key, b"v", ttl)

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        self.store.delete(key)

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        self.store.get(key)  # may evict the key lazily

    # -- time and the event loop ------------------------------------------------

    @rule(seconds=st.sampled_from([0.0005, 0.01, 0.2, 2.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(limit=st.sampled_from([1, 2, None]))
    def expiry_timer(self, limit: int | None) -> None:
        self.store.expire_due(limit)

    @rule(turns=st.integers(1, 4))
    def turns_end(self, turns: int) -> None:
        for _ in range(turns):
            self.loop.run_once()

    # -- gossip -------------------------------------------------------------

    @rule(peer=st.sampled_from(PEERS),
          outcome=st.sampled_from(["delivered", "lost", "applied but not acknowledged"]))
    def gossip_round(self, peer: str, outcome: str) -> None:
        self.own.flush()
        self.feed.new_round()
        data = self.feed.update_for(peer)
        if data is None:
            return
        version = self.bloom.version
        replica = self.replicas[peer]
        if outcome == "lost":
            self.feed.reset(peer)
            return
        replica.apply(data, max_bits=1 << 20)
        if outcome == "delivered":
            self.feed.acked(peer, version)
        else:
            self.feed.reset(peer)
        # What the peer holds now is exactly our filter: no key of ours is missing.
        assert replica.bit_bytes() == self.bloom.bit_bytes()
        for key in self.store.key_snapshot():
            assert key in replica, key

    # -- the invariant --------------------------------------------------------

    @invariant()
    def filter_holds_every_key_of_the_table(self) -> None:
        if self.own.pending:
            return  # new keys enter at the end of the turn
        held = self.store.key_snapshot()
        for key in held:
            assert key in self.bloom, key
        assert self.bloom.count == len(held)

    @invariant()
    def live_keys_are_in_the_table(self) -> None:
        assert set(self.store.keys()) <= set(self.store.key_snapshot())


OwnFilterMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
test_own_filter_never_misses_a_held_key = OwnFilterMachine.TestCase


def test_a_lazily_expired_key_written_again_stays_in_a_grown_filter() -> None:
    """The issue's reproduction, in process: a key past its TTL but not yet
    evicted, the filter grown (rebuilt), then the key written again."""
    clock = FakeClock()
    store = Store(clock)
    bloom = BloomFilter(capacity=4, fp_rate=0.01)
    OwnFilter(bloom, store)
    store.set_with_ttl(b"k", b"v1", 0.0001)
    clock.advance(1)
    store.set_many([(b"f%d" % i, b"x") for i in range(10)], b"")  # grows the filter
    assert bloom.capacity > 4
    store.set(b"k", b"v2")
    assert b"k" in bloom
    assert bloom.count == len(store) == 11


def test_growth_runs_in_steps_while_the_old_bits_answer() -> None:
    clock = FakeClock()
    loop = FakeLoop(clock)
    store = Store(clock)
    bloom = BloomFilter(capacity=2 * REFRESH_STEP_KEYS, fp_rate=0.01)
    own = OwnFilter(bloom, store, loop)
    held = [b"k%d" % i for i in range(2 * REFRESH_STEP_KEYS + 5)]
    store.set_many([(key, b"") for key in held], b"")
    own.flush()  # over capacity: growth begins, nothing rebuilt yet
    assert bloom.growing_to == 4 * REFRESH_STEP_KEYS
    turns = 0
    while bloom.refreshing:
        assert all(key in bloom for key in held[::97])
        loop.run_once()
        turns += 1
    assert turns == 3 and bloom.capacity == 4 * REFRESH_STEP_KEYS
    assert all(key in bloom for key in held) and bloom.count == len(held)


def test_refresh_steps_cover_more_keys_than_one_step() -> None:
    store = Store(FakeClock())
    bloom = BloomFilter(capacity=3 * REFRESH_STEP_KEYS, fp_rate=0.01)
    own = OwnFilter(bloom, store)
    store.set_many([(b"k%d" % i, b"") for i in range(2 * REFRESH_STEP_KEYS + 5)], b"")
    store.delete(b"k0")
    refresh = FilterRefresh(bloom, own.held_keys)
    assert refresh.begin()
    steps = 1
    while refresh.step():
        steps += 1
    assert steps == 3 and not bloom.stale and not bloom.refreshing
    assert all(b"k%d" % i in bloom for i in range(1, 2 * REFRESH_STEP_KEYS + 5))
