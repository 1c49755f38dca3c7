"""Pure tests of the hybrid logical clock: stamps, their order, and the receive rule.

The wall clock is always a :class:`FakeClock` set to whole milliseconds (plus
half a millisecond, so float rounding can never move a reading to the
neighbouring millisecond); nothing here reads real time.
"""

from __future__ import annotations

import itertools
import random
import zlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from olivia.core.clock import MAX_DRIFT_MS, STAMP_BYTES, ZERO_STAMP, HybridClock, describe, node_id
from tests.helpers import FakeClock

START_MS = 1_700_000_000_000  # a realistic wall clock, in milliseconds
LOGICAL_MAX = 0xFFFF
NODE_IDS = st.integers(0, 0xFFFFFFFF)
LOGICALS = st.integers(0, LOGICAL_MAX)
NAMES = st.text(min_size=1, max_size=12)


def seconds(ms: int) -> float:
    """Wall-clock seconds that read back as exactly ``ms`` milliseconds."""
    return (ms + 0.5) / 1000


def wall_at(ms: int) -> FakeClock:
    return FakeClock(seconds(ms))


def make_stamp(ms: int, logical: int, ident: int) -> bytes:
    """A stamp in the documented layout, built independently of olivia.clock."""
    return ((ms << 16) | logical).to_bytes(8, "big") + ident.to_bytes(4, "big")


def parts(stamp: bytes) -> tuple[int, int, int]:
    """(wall ms, logical counter, node id) of a stamp."""
    hlc = int.from_bytes(stamp[:8], "big")
    return hlc >> 16, hlc & LOGICAL_MAX, int.from_bytes(stamp[8:], "big")


# -- format --------------------------------------------------------------------


def test_stamps_are_twelve_bytes_with_the_node_id_at_the_end() -> None:
    clock = HybridClock("node-a", wall=wall_at(START_MS))
    stamp = clock.now()
    assert isinstance(stamp, bytes)
    assert len(stamp) == STAMP_BYTES == 12
    assert parts(stamp) == (START_MS, 0, zlib.crc32(b"node-a"))
    assert node_id("node-a") == zlib.crc32(b"node-a")
    assert bytes(12) == ZERO_STAMP


def test_describe_gives_ms_dot_logical_at_node_id_hex() -> None:
    wall = wall_at(START_MS)
    clock = HybridClock("node-a", wall=wall)
    ident = f"{zlib.crc32(b'node-a'):08x}"
    assert describe(clock.now()) == f"{START_MS}.0@{ident}"
    assert describe(clock.now()) == f"{START_MS}.1@{ident}"
    wall.now = seconds(START_MS + 7)
    assert describe(clock.now()) == f"{START_MS + 7}.0@{ident}"


@pytest.mark.parametrize(("stamp", "text"), [
    (ZERO_STAMP, "0.0@00000000"),
    (make_stamp(1, 2, 3), "1.2@00000003"),
    (make_stamp(START_MS, LOGICAL_MAX, 0xDEADBEEF), f"{START_MS}.65535@deadbeef"),
    (make_stamp((1 << 48) - 1, LOGICAL_MAX, 0xFFFFFFFF), f"{(1 << 48) - 1}.65535@ffffffff"),
])
def test_describe_examples(stamp: bytes, text: str) -> None:
    assert describe(stamp) == text


@given(st.integers(0, (1 << 48) - 1), LOGICALS, NODE_IDS)
def test_describe_reads_back_every_field(ms: int, logical: int, ident: int) -> None:
    assert describe(make_stamp(ms, logical, ident)) == f"{ms}.{logical}@{ident:08x}"


@given(st.tuples(st.integers(0, (1 << 48) - 1), LOGICALS, NODE_IDS),
       st.tuples(st.integers(0, (1 << 48) - 1), LOGICALS, NODE_IDS))
def test_byte_order_is_version_order(x: tuple[int, int, int], y: tuple[int, int, int]) -> None:
    """Later ms wins, then the larger logical counter, then the larger node id."""
    a, b = make_stamp(*x), make_stamp(*y)
    assert (a < b) == (x < y)
    assert (a == b) == (x == y)


# -- one clock: strictly increasing ---------------------------------------------

# (operation, ms offset, logical, node id); offsets may be negative: the wall
# clock is stepped backwards, or a peer's clock is behind ours.
OPS = st.lists(st.tuples(st.sampled_from(["wall", "now", "observe", "same_ms"]),
                         st.integers(-3000, 3000), LOGICALS, NODE_IDS),
               min_size=1, max_size=60)


@given(OPS)
def test_stamps_strictly_increase_whatever_the_wall_clock_does(
        ops: list[tuple[str, int, int, int]]) -> None:
    wall_ms = START_MS
    wall = wall_at(wall_ms)
    clock = HybridClock("me", wall=wall)
    seen = ZERO_STAMP  # the largest stamp issued or observed so far
    last = ZERO_STAMP  # the last stamp issued
    for op, offset, logical, ident in ops:
        if op == "wall":
            wall_ms = max(0, wall_ms + offset)
            wall.now = seconds(wall_ms)
        elif op == "observe":
            remote = make_stamp(max(0, wall_ms + offset), logical, ident)
            clock.observe(remote)
            seen = max(seen, remote)
        elif op == "same_ms":  # a peer's stamp in the clock's current millisecond
            remote = make_stamp(parts(last)[0] if last != ZERO_STAMP else wall_ms,
                                logical, ident)
            clock.observe(remote)
            seen = max(seen, remote)
        stamp = clock.now()
        assert len(stamp) == STAMP_BYTES
        assert stamp > seen, (describe(stamp), describe(seen))
        assert stamp > last
        assert parts(stamp)[0] >= wall_ms  # never behind the wall clock
        assert parts(stamp)[2] == node_id("me")
        seen = last = stamp


def test_stamps_increase_while_the_wall_clock_stands_still() -> None:
    clock = HybridClock("me", wall=wall_at(START_MS))
    stamps = [clock.now() for _ in range(1000)]
    assert stamps == sorted(set(stamps))
    assert [parts(s)[:2] for s in stamps[:3]] == [(START_MS, 0), (START_MS, 1), (START_MS, 2)]


def test_stamps_increase_when_the_wall_clock_goes_backwards() -> None:
    wall = wall_at(START_MS)
    clock = HybridClock("me", wall=wall)
    before = clock.now()
    wall.now = seconds(START_MS - 60_000)  # NTP stepped the clock back a minute
    after = clock.now()
    assert after > before
    assert parts(after)[:2] == (START_MS, 1)  # stays on its own time, counts on
    wall.now = seconds(START_MS + 1)  # the wall clock catches up again
    assert parts(clock.now())[:2] == (START_MS + 1, 0)


def test_logical_counter_overflow_borrows_the_next_millisecond() -> None:
    """More than 65,535 stamps in one millisecond still increase."""
    clock = HybridClock("me", wall=wall_at(START_MS))
    stamps = [clock.now() for _ in range(LOGICAL_MAX + 3)]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert parts(stamps[LOGICAL_MAX])[:2] == (START_MS, LOGICAL_MAX)
    assert parts(stamps[LOGICAL_MAX + 1])[:2] == (START_MS + 1, 0)
    assert parts(stamps[LOGICAL_MAX + 2])[:2] == (START_MS + 1, 1)


def test_logical_counter_overflow_after_observing_a_full_millisecond() -> None:
    clock = HybridClock("me", wall=wall_at(START_MS))
    remote = make_stamp(START_MS + 5, LOGICAL_MAX, 0xFFFFFFFF)
    clock.observe(remote)
    stamp = clock.now()
    assert stamp > remote
    assert parts(stamp)[0] == START_MS + 6


# -- the receive rule: observe() -------------------------------------------------


@given(st.integers(0, 300), st.integers(-10**9, 10**9), LOGICALS, NODE_IDS, NAMES)
def test_now_after_observe_is_greater_than_the_observed_stamp(
        issued: int, offset: int, logical: int, ident: int, name: str) -> None:
    clock = HybridClock(name, wall=wall_at(START_MS))
    own = [clock.now() for _ in range(issued)]
    remote = make_stamp(START_MS + offset, logical, ident)
    adopted = clock.observe(remote)
    stamp = clock.now()
    # Stamps within MAX_DRIFT_MS of our wall clock are moved past; further
    # ahead they are refused, and our clock stays near the wall.
    assert adopted is (offset <= MAX_DRIFT_MS)
    if adopted:
        assert stamp > remote
    assert all(stamp > s for s in own)


def test_observe_a_stamp_from_a_peer_whose_clock_is_ahead() -> None:
    clock = HybridClock("me", wall=wall_at(START_MS))
    clock.now()
    remote = make_stamp(START_MS + 5_000, 3, 0xFFFFFFFF)  # 5 s in our future
    clock.observe(remote)
    stamp = clock.now()
    assert stamp > remote
    assert parts(stamp)[0] == START_MS + 5_000  # adopts the peer's time, not beyond


@pytest.mark.parametrize("remote_logical", [0, 1, 500, LOGICAL_MAX - 1, LOGICAL_MAX])
@pytest.mark.parametrize("remote_ident", [0, 0xFFFFFFFF])
def test_observe_a_stamp_in_the_same_millisecond(remote_logical: int,
                                                   remote_ident: int) -> None:
    clock = HybridClock("me", wall=wall_at(START_MS))
    own = clock.now()
    remote = make_stamp(START_MS, remote_logical, remote_ident)
    clock.observe(remote)
    stamp = clock.now()
    assert stamp > remote
    assert stamp > own
    # a full counter borrows the next millisecond
    assert parts(stamp)[0] == START_MS + (remote_logical >= LOGICAL_MAX - 1)


def test_observe_an_old_stamp_still_moves_on() -> None:
    clock = HybridClock("me", wall=wall_at(START_MS))
    own = clock.now()
    clock.observe(make_stamp(START_MS - 10_000, 9, 1))
    assert clock.now() > own


def test_observe_when_the_wall_clock_has_moved_past_both() -> None:
    wall = wall_at(START_MS)
    clock = HybridClock("me", wall=wall)
    clock.now()
    remote = make_stamp(START_MS + 1, LOGICAL_MAX, 0xFFFFFFFF)
    wall.now = seconds(START_MS + 10)
    clock.observe(remote)
    stamp = clock.now()
    assert stamp > remote
    assert parts(stamp)[0] == START_MS + 10


def test_observing_the_largest_stamp_does_not_break_now() -> None:
    # A peer can send this (REQUEST DELETE ffff...): it must not be adopted.
    clock = HybridClock("me", wall=wall_at(START_MS))
    assert clock.observe(b"\xff" * STAMP_BYTES) is False
    stamp = clock.now()
    assert len(stamp) == STAMP_BYTES
    assert parts(stamp)[0] == START_MS


# -- several clocks ---------------------------------------------------------------


@given(st.integers(START_MS - 10**6, START_MS + 10**6), st.integers(1, 10**6),
       st.integers(1, 300), st.integers(1, 300), NAMES, NAMES)
def test_a_later_wall_millisecond_always_wins(ms: int, later: int, earlier_count: int,
                                              later_count: int, a: str, b: str) -> None:
    """However many stamps the earlier clock issued in its millisecond, the first
    stamp of a later millisecond is larger, whatever the node ids."""
    early = HybridClock(a, wall=wall_at(ms))
    late = HybridClock(b, wall=wall_at(ms + later))
    early_stamps = [early.now() for _ in range(earlier_count)]
    late_stamps = [late.now() for _ in range(later_count)]
    assert min(late_stamps) > max(early_stamps)


def test_a_later_millisecond_beats_a_full_logical_counter() -> None:
    early = HybridClock("zzz", wall=wall_at(START_MS))
    late = HybridClock("aaa", wall=wall_at(START_MS + 1))
    early.observe(make_stamp(START_MS, LOGICAL_MAX - 2, 0))
    full = early.now()
    assert parts(full)[:2] == (START_MS, LOGICAL_MAX)
    assert late.now() > full


@given(st.lists(NAMES, min_size=2, max_size=6, unique=True), st.integers(0, 50),
       st.randoms(use_true_random=False))
def test_equal_hlc_time_ties_are_broken_by_node_id(names: list[str], issued: int,
                                                  rng: random.Random) -> None:
    assume(len({node_id(n) for n in names}) == len(names))
    clocks = [HybridClock(n, wall=wall_at(START_MS)) for n in names]
    for clock in clocks:
        for _ in range(issued):
            clock.now()
    stamps = {name: clock.now() for name, clock in zip(names, clocks, strict=True)}
    assert len({s[:8] for s in stamps.values()}) == 1  # the same HLC time everywhere
    by_bytes = sorted(stamps, key=lambda n: stamps[n])
    assert by_bytes == sorted(names, key=node_id)
    # every node, whatever order the stamps arrive in, picks the same winner
    winner = max(stamps.values())
    shuffled = list(stamps.values())
    for _ in range(5):
        rng.shuffle(shuffled)
        assert max(shuffled) == winner
        assert sorted(shuffled) == sorted(stamps.values())


@given(NAMES, NAMES, st.integers(0, 10**9), st.integers(0, 100))
def test_clocks_with_different_names_never_issue_equal_stamps(a: str, b: str, offset: int,
                                                               issued: int) -> None:
    assume(a != b)
    first = HybridClock(a, wall=wall_at(START_MS + offset))
    second = HybridClock(b, wall=wall_at(START_MS + offset))
    first_stamps = {first.now() for _ in range(issued + 1)}
    second_stamps = {second.now() for _ in range(issued + 1)}
    assert not first_stamps & second_stamps


def test_crc32_names_can_collide_so_the_cluster_checks_ids() -> None:
    """Two names with one id would tie; the cluster refuses such a peer
    (tests/test_cluster.py), so within a cluster stamps never tie."""
    assert node_id("plumless") == node_id("buckeroo")
