"""Pure tests of the counting bloom filter, its wire encoding and peer replicas."""

from __future__ import annotations

import base64
import math
import re
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.cluster.bloom import (
    BloomFilter,
    FilterReplica,
    FilterUpdate,
    bloom_positions,
    filter_size,
)
from olivia.core.errors import FilterError, FilterVersionError, ProtocolError

MAX_BITS = 1 << 24
# Every byte a filter encoding may contain: printable ASCII without the
# protocol's reserved bytes (and without spaces inside fields).
ENCODING_MATCH = re.compile(rb"(FULL|DELTA)( [A-Za-z0-9+/=-]+)+\Z").match


def keys(prefix: bytes, n: int) -> list[bytes]:
    return [b"%s:%d" % (prefix, i) for i in range(n)]


def state(replica: FilterReplica) -> tuple[int, int, int, int, bytes, float]:
    """Everything observable about a replica, to check a failed apply changed nothing."""
    return (replica.version, replica.bits, replica.hashes, replica.seed,
            replica.bit_bytes(), replica.fp_estimate())


def synced(source: BloomFilter) -> FilterReplica:
    replica = FilterReplica()
    replica.apply(source.encode_full(), MAX_BITS)
    return replica


def bits_of(bloom: BloomFilter, members: Iterable[bytes]) -> bytes:
    """What the bit array must be for ``members``, packed big-endian (slow, independent)."""
    packed = bytearray((bloom.bits + 7) // 8)
    for key in members:
        for position in bloom_positions(key, bloom.bits, bloom.hashes, bloom.seed):
            packed[position // 8] |= 0x80 >> (position % 8)
    return bytes(packed)


def refresh(bloom: BloomFilter, live: Iterable[bytes]) -> None:
    """A whole refresh in one go (the node does it in steps)."""
    bloom.begin_refresh()
    bloom.refresh_add(list(live))
    bloom.finish_refresh()


def b64z(raw: bytes) -> bytes:
    return base64.b64encode(zlib.compress(raw))


def uint32s(*positions: int) -> bytes:
    return array("I", positions).tobytes()


# -- sizing and hashing -----------------------------------------------------------


def test_sizing_matches_the_formulas() -> None:
    bloom = BloomFilter(1_000_000, 0.01)
    optimal = -1_000_000 * math.log(0.01) / math.log(2) ** 2  # 9,585,059 bits at k = 7

    def bits_for(k: int) -> float:
        return -1_000_000 * k / math.log(1 - 0.01 ** (1 / k))

    # The fewest hashes within 10% of the optimal size: k = 3 needs 12.1%
    # more bits, k = 4 needs 9.8% more.
    assert bits_for(3) > 1.10 * optimal >= bits_for(4)
    assert bloom.hashes == 4
    assert bloom.bits == math.ceil(bits_for(4)) == 10_522_705
    assert (bloom.capacity, bloom.fp_rate, bloom.seed, bloom.count) == (1_000_000, 0.01, 0, 0)
    assert bloom.version == 0
    assert filter_size(1_000_000, 0.005) == (11_750_231, 5)  # the defaults


def test_sizing_clamps() -> None:
    assert filter_size(1, 0.5) == (8, 1)  # at least 8 bits
    assert filter_size(10, 1e-12)[1] == 16  # k capped at 16
    assert filter_size(1_000_000, 0.5)[1] == 1


@pytest.mark.parametrize(("capacity", "fp_rate", "seed"), [
    (0, 0.01, 0), (-5, 0.01, 0), (10, 0.0, 0), (10, 1.0, 0), (10, 0.01, -1), (10, 0.01, 1 << 32),
])
def test_bad_sizes_are_refused(capacity: int, fp_rate: float, seed: int) -> None:
    with pytest.raises(ValueError):
        BloomFilter(capacity, fp_rate, seed)


@given(st.binary(max_size=64), st.integers(8, 1 << 20), st.integers(1, 16),
       st.integers(0, (1 << 32) - 1))
def test_hot_paths_use_the_reference_positions(key: bytes, m: int, k: int, seed: int) -> None:
    """add, remove and both __contains__ inline the hashing; they must agree with it."""
    # The filter is built through the wire so that m and k can be chosen freely.
    raw = bytearray((m + 7) // 8)
    replica = FilterReplica()
    expected = set(bloom_positions(key, m, k, seed))
    for position in expected:
        raw[position // 8] |= 0x80 >> (position % 8)
    replica.apply(b"FULL 0 %d %d %d %s" % (m, k, seed, b64z(bytes(raw))), 1 << 21)
    assert key in replica
    one_short = bytearray(raw)
    missing = min(expected)
    one_short[missing // 8] &= ~(0x80 >> (missing % 8)) & 0xFF
    replica.apply(b"FULL 0 %d %d %d %s" % (m, k, seed, b64z(bytes(one_short))), 1 << 21)
    assert key not in replica


@given(st.binary(max_size=64), st.integers(0, (1 << 32) - 1))
def test_the_filter_sets_exactly_the_reference_positions(key: bytes, seed: int) -> None:
    bloom = BloomFilter(1000, 0.01, seed)
    bloom.add(key)
    assert bloom.bit_bytes() == bits_of(bloom, [key])
    assert bloom.positions(key) == bloom_positions(key, bloom.bits, bloom.hashes, seed)
    bloom.remove(key)
    assert key in bloom  # until the next refresh
    refresh(bloom, [])
    assert not any(bloom.bit_bytes())


# -- membership -------------------------------------------------------------------


@given(st.sets(st.binary(min_size=1, max_size=40), max_size=300))
def test_no_false_negatives(members: set[bytes]) -> None:
    bloom = BloomFilter(200, 0.01)
    for key in members:
        bloom.add(key)
    assert all(key in bloom for key in members)
    replica = synced(bloom)
    assert all(key in replica for key in members)
    assert bloom.count == len(members)


def test_false_positive_rate_at_capacity() -> None:
    bloom = BloomFilter(100_000, 0.01)
    for key in keys(b"present", 100_000):
        bloom.add(key)
    absent = keys(b"absent", 100_000)
    rate = sum(key in bloom for key in absent) / len(absent)
    assert 0.8 * 0.01 <= rate <= 1.2 * 0.01, rate
    replica = synced(bloom)
    assert sum(key in replica for key in absent) / len(absent) == rate
    # The estimate from the fraction of bits set agrees with what was measured.
    assert rate / 2 <= bloom.fp_estimate() <= rate * 2
    assert replica.fp_estimate() == bloom.fp_estimate()


def test_fp_estimate_starts_at_zero_and_grows() -> None:
    bloom = BloomFilter(1000, 0.01)
    assert bloom.fp_estimate() == 0.0
    assert FilterReplica().fp_estimate() == 0.0
    estimates = []
    for i, key in enumerate(keys(b"k", 1000)):
        bloom.add(key)
        if i % 100 == 99:
            estimates.append(bloom.fp_estimate())
    assert estimates == sorted(estimates)
    assert 0.0 < estimates[0] < estimates[-1] <= 1.0


# -- removal and refresh ---------------------------------------------------------------


def test_removed_keys_stay_until_a_refresh_clears_them() -> None:
    bloom = BloomFilter(10_000, 0.001)
    added = keys(b"k", 2000)
    bloom.add_many(added)
    for key in added:
        bloom.remove(key)
    assert (bloom.count, bloom.stale) == (0, 2000)
    assert all(key in bloom for key in added)  # false positives, never false negatives
    refresh(bloom, [])
    assert (bloom.count, bloom.stale) == (0, 0)
    assert bloom.fp_estimate() == 0.0
    assert not any(bloom.bit_bytes())
    assert not any(key in bloom for key in added)


def test_a_refresh_keeps_exactly_the_live_keys() -> None:
    bloom = BloomFilter(100_000, 0.001)
    added = keys(b"k", 1000)
    bloom.add_many(added)
    removed, kept = added[::2], added[1::2]
    for key in removed:
        bloom.remove(key)
    refresh(bloom, kept)
    assert bloom.bit_bytes() == bits_of(bloom, kept)
    assert all(key in bloom for key in kept)
    assert sum(key in bloom for key in removed) <= 2
    assert (bloom.count, bloom.stale) == (len(kept), 0)


def test_keys_added_or_removed_during_a_refresh() -> None:
    bloom = BloomFilter(1000, 0.01)
    bloom.add_many([b"old", b"going"])
    bloom.remove(b"going")
    bloom.begin_refresh()
    during = bloom.refreshing
    bloom.refresh_add([b"old"])
    bloom.add(b"new")  # lands in the rebuilt bits too
    bloom.remove(b"old")  # after its step: stale for the next refresh
    bloom.finish_refresh()
    assert (during, bloom.refreshing) == (True, False)
    assert bloom.bit_bytes() == bits_of(bloom, [b"old", b"new"])
    assert (bloom.count, bloom.stale) == (1, 1)
    refresh(bloom, [b"new"])
    assert bloom.bit_bytes() == bits_of(bloom, [b"new"])
    assert bloom.stale == 0


def test_a_rebuild_ends_a_refresh() -> None:
    bloom = BloomFilter(10, 0.01)
    bloom.add_many(keys(b"k", 11))
    bloom.remove(b"k:0")
    bloom.begin_refresh()
    bloom.rebuild(keys(b"k", 11)[1:], 20)
    assert not bloom.refreshing and bloom.stale == 0
    bloom.refresh_add([b"ignored"])  # a late step of the ended refresh does nothing
    bloom.finish_refresh()
    assert bloom.bit_bytes() == bits_of(bloom, keys(b"k", 11)[1:])


def test_removing_a_key_never_added_clamps_at_zero() -> None:
    bloom = BloomFilter(100, 0.01)
    bloom.remove(b"ghost")
    assert bloom.count == 0
    assert not any(bloom.bit_bytes())
    assert bloom.take_delta() is None
    refresh(bloom, [])
    assert bloom.take_delta() is None  # nothing changed, nothing to send


def test_a_growing_refresh_answers_from_the_old_bits_until_it_ends() -> None:
    bloom = BloomFilter(10, 0.01)
    held = keys(b"k", 11)
    bloom.add_many(held)
    bloom.remove(b"k:0")
    old_bits, old_version = bloom.bits, bloom.version
    bloom.begin_refresh(40)
    assert bloom.growing_to == 40 and bloom.bits == old_bits
    bloom.refresh_add(held[1:6])
    bloom.add(b"during")  # goes into the old bits and the new ones
    bloom.remove(b"k:1")  # stale for the next refresh
    assert b"during" in bloom and all(key in bloom for key in held[1:])
    bloom.refresh_add(held[6:])
    bloom.finish_refresh()
    assert not bloom.refreshing and bloom.capacity == 40 and bloom.bits > old_bits
    assert bloom.version == old_version + 1 and bloom.stale == 1
    assert bloom.bit_bytes() == bits_of(bloom, [*held[1:], b"during"])
    update = bloom.take_delta()
    assert update is not None and update.full_only


# -- replicas, deltas and versions ----------------------------------------------------


def test_full_copy_gives_identical_bits() -> None:
    bloom = BloomFilter(1000, 0.01, seed=12345)
    for key in keys(b"k", 700):
        bloom.add(key)
    replica = synced(bloom)
    assert replica.bit_bytes() == bloom.bit_bytes()
    assert (replica.version, replica.bits, replica.hashes, replica.seed) == (
        bloom.version, bloom.bits, bloom.hashes, 12345)


def test_an_empty_replica_holds_nothing() -> None:
    replica = FilterReplica()
    assert (replica.version, replica.bits, replica.hashes, replica.bit_bytes()) == (-1, 0, 0, b"")
    assert b"anything" not in replica


def test_take_delta_reports_flipped_positions() -> None:
    bloom = BloomFilter(1000, 0.01)
    assert bloom.take_delta() is None
    bloom.add(b"a")
    update = bloom.take_delta()
    assert update is not None
    assert (update.base_version, update.version, bloom.version) == (0, 1, 1)
    assert update.set_positions == tuple(sorted(set(bloom.positions(b"a"))))
    assert update.clear_positions == ()
    assert not update.full_only
    assert bloom.take_delta() is None
    bloom.add(b"a")  # bits already set: no flips
    assert bloom.take_delta() is None
    bloom.remove(b"a")
    assert bloom.take_delta() is None  # bits stay until a refresh
    refresh(bloom, [])
    update = bloom.take_delta()
    assert update is not None
    assert update.clear_positions == tuple(sorted(set(bloom.positions(b"a"))))
    assert update.set_positions == ()


Op = tuple[bool, int]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80), st.booleans())
def test_deltas_keep_the_replica_identical(ops: list[Op], best: bool) -> None:
    bloom = BloomFilter(20, 0.05, seed=7)
    replica = synced(bloom)
    present: set[bytes] = set()
    encode: Callable[[FilterUpdate], bytes] = bloom.encode_best if best else bloom.encode_update
    for add, which in ops:
        key = b"key%d" % which
        if add:
            if key not in present:
                bloom.add(key)
                present.add(key)
        elif key in present:
            bloom.remove(key)
            present.discard(key)
            if which % 3 == 0:
                refresh(bloom, present)
        update = bloom.take_delta()
        if update is not None:
            data = encode(update)
            assert ENCODING_MATCH(data), data
            replica.apply(data, MAX_BITS)
        assert replica.bit_bytes() == bloom.bit_bytes()
        assert replica.version == bloom.version
        assert replica.fp_estimate() == bloom.fp_estimate()
        assert all(key in replica for key in present)


def test_encode_best_picks_the_smaller() -> None:
    bloom = BloomFilter(10_000, 0.01)
    many = keys(b"k", 10_000)
    for key in many:
        bloom.add(key)
    bloom.take_delta()
    # A full filter and a small change: the delta is far smaller.
    bloom.add(b"new")
    update = bloom.take_delta()
    assert update is not None
    assert bloom.encode_best(update) == bloom.encode_update(update)
    assert len(bloom.encode_update(update)) < len(bloom.encode_full()) / 100
    # Emptying it clears nearly every position; the all-zero full copy is
    # smaller, and so obviously so that the positions are never listed.
    for key in [*many, b"new"]:
        bloom.remove(key)
    refresh(bloom, [])
    update = bloom.take_delta()
    assert update is not None and update.full_only and not update.clear_positions
    best = bloom.encode_best(update)
    assert best == bloom.encode_full()
    replica = FilterReplica()
    replica.apply(best, MAX_BITS)
    assert replica.version == update.version


@settings(max_examples=30)
@given(st.integers(0, 3000), st.integers(0, 3000))
def test_encode_best_is_never_longer_than_either(filled: int, changed: int) -> None:
    bloom = BloomFilter(2000, 0.01)
    for key in keys(b"k", filled):
        bloom.add(key)
    bloom.take_delta()
    for key in keys(b"c", changed):
        bloom.add(key)
    update = bloom.take_delta()
    if update is None:
        return
    best = bloom.encode_best(update)
    assert len(best) <= min(len(bloom.encode_update(update)), len(bloom.encode_full()))


def test_a_delta_from_another_version_is_refused() -> None:
    bloom = BloomFilter(1000, 0.01)
    replica = synced(bloom)
    bloom.add(b"a")
    first = bloom.take_delta()
    bloom.add(b"b")
    second = bloom.take_delta()
    assert first is not None and second is not None
    before = state(replica)
    with pytest.raises(FilterVersionError, match="send a full copy"):
        replica.apply(bloom.encode_update(second), MAX_BITS)  # the first was lost
    assert state(replica) == before
    replica.apply(bloom.encode_update(first), MAX_BITS)
    replica.apply(bloom.encode_update(second), MAX_BITS)
    assert replica.bit_bytes() == bloom.bit_bytes()
    # Replaying an old delta is a version error too.
    with pytest.raises(FilterVersionError):
        replica.apply(bloom.encode_update(first), MAX_BITS)


def test_a_delta_before_any_full_copy_is_a_version_error() -> None:
    bloom = BloomFilter(1000, 0.01)
    bloom.add(b"a")
    update = bloom.take_delta()
    assert update is not None
    replica = FilterReplica()
    with pytest.raises(FilterVersionError):
        replica.apply(bloom.encode_update(update), MAX_BITS)
    assert state(replica) == state(FilterReplica())


def test_a_full_copy_replaces_any_version() -> None:
    """A peer that restarted starts again from version 0; its full copy wins."""
    old = BloomFilter(1000, 0.01)
    for key in keys(b"k", 50):
        old.add(key)
        old.take_delta()
    replica = synced(old)
    assert replica.version == 50
    restarted = BloomFilter(500, 0.01)
    replica.apply(restarted.encode_full(), MAX_BITS)
    assert (replica.version, replica.bits) == (0, restarted.bits)
    assert b"k:1" not in replica


def test_rebuild_sends_a_full_copy_of_the_new_size() -> None:
    bloom = BloomFilter(100, 0.01)
    present = keys(b"k", 150)
    for key in present:
        bloom.add(key)
    replica = synced(bloom)
    first = bloom.take_delta()
    assert first is not None
    replica.apply(bloom.encode_best(first), MAX_BITS)
    assert bloom.count > bloom.capacity
    old_bits, old_version = bloom.bits, bloom.version
    bloom.rebuild(present, 400)
    assert (bloom.capacity, bloom.count, bloom.fp_rate) == (400, 150, 0.01)
    assert bloom.bits > old_bits
    assert bloom.version == old_version + 1
    bloom.add(b"after")
    update = bloom.take_delta()
    assert update is not None and update.full_only
    assert update.base_version == old_version + 1
    data = bloom.encode_best(update)
    assert data.startswith(b"FULL ")
    assert bloom.encode_update(update) == data
    replica.apply(data, MAX_BITS)
    assert (replica.bits, replica.version) == (bloom.bits, bloom.version)
    assert replica.bit_bytes() == bloom.bit_bytes() == bits_of(bloom, [*present, b"after"])
    assert all(key in replica for key in [*present, b"after"])
    # Deltas flow again from the new full copy.
    bloom.remove(b"after")
    refresh(bloom, present)
    update = bloom.take_delta()
    assert update is not None and not update.full_only
    replica.apply(bloom.encode_best(update), MAX_BITS)
    assert replica.bit_bytes() == bloom.bit_bytes()


@given(st.sets(st.binary(max_size=20), max_size=50), st.integers(0, (1 << 32) - 1))
def test_encodings_are_safe_payloads(members: set[bytes], seed: int) -> None:
    bloom = BloomFilter(30, 0.1, seed)
    for key in members:
        bloom.add(key)
    update = bloom.take_delta()
    encodings = [bloom.encode_full()]
    if update is not None:
        encodings += [bloom.encode_update(update), bloom.encode_best(update)]
    for data in encodings:
        assert ENCODING_MATCH(data), data


# -- malformed input ---------------------------------------------------------------


@pytest.fixture
def source() -> BloomFilter:
    bloom = BloomFilter(1000, 0.01, seed=3)
    for key in keys(b"k", 500):
        bloom.add(key)
    bloom.take_delta()
    return bloom


@pytest.fixture(params=["empty", "synced"])
def replica(request: pytest.FixtureRequest, source: BloomFilter) -> FilterReplica:
    return FilterReplica() if request.param == "empty" else synced(source)


def full(m: int, data: bytes, k: int = 3, seed: int = 0, version: int = 9) -> bytes:
    return b"FULL %d %d %d %d %s" % (version, m, k, seed, data)


def zlib_bomb() -> bytes:
    """100 MB of zeros, compressed to about 100 KB."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(100)]
    return b"".join([*parts, compressor.flush()])


def bad_fulls() -> Iterator[tuple[str, bytes]]:
    zeros = b64z(bytes(125))  # right size for m = 1000
    yield "unknown kind", b"HALF 0 1000 3 0 " + zeros
    yield "empty", b""
    yield "too few fields", b"FULL 0 1000 3 " + zeros
    yield "too many fields", full(1000, zeros) + b" extra"
    yield "double space", b"FULL 0  1000 3 0 " + zeros
    yield "lower case kind", b"full 0 1000 3 0 " + zeros
    yield "non-numeric m", b"FULL 0 lots 3 0 " + zeros
    yield "signed m", b"FULL 0 +1000 3 0 " + zeros
    yield "negative version", b"FULL -1 1000 3 0 " + zeros
    yield "huge number", b"FULL 0 1" + b"0" * 30 + b" 3 0 " + zeros
    yield "m over max_bits", full(MAX_BITS + 8, b64z(bytes((MAX_BITS + 15) // 8)))
    yield "m below 8", full(7, b64z(b"\x00"))
    yield "m zero", full(0, b64z(b""))
    yield "k zero", full(1000, zeros, k=0)
    yield "k 17", full(1000, zeros, k=17)
    yield "seed too big", full(1000, zeros, seed=1 << 32)
    yield "bad base64 alphabet", full(1000, zeros[:-4] + b"!!!!")
    yield "bad base64 length", full(1000, zeros[:-1])
    yield "not zlib", full(1000, base64.b64encode(bytes(125)))
    yield "truncated zlib", full(1000, base64.b64encode(zlib.compress(bytes(125))[:-6]))
    yield "short data", full(1000, b64z(bytes(124)))
    yield "long data", full(1000, b64z(bytes(126)))
    yield "trailing bytes", full(1000, base64.b64encode(zlib.compress(bytes(125)) + b"xx"))
    yield "padding bits set", full(1001, b64z(bytes(125) + b"\x01"))
    yield "zlib bomb", full(8000, base64.b64encode(zlib_bomb()))


@pytest.mark.parametrize(("name", "data"), list(bad_fulls()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_malformed_full_copies_are_refused(replica: FilterReplica, name: str, data: bytes) -> None:
    before = state(replica)
    with pytest.raises(FilterError) as caught:
        replica.apply(data, MAX_BITS)
    assert type(caught.value) is FilterError
    assert state(replica) == before
    message = caught.value.message
    assert message.startswith("filter ") and message.isascii() and "\n" not in message


def bad_deltas(base: int, m: int) -> Iterator[tuple[str, bytes]]:
    one = b64z(uint32s(5))
    yield "too few fields", b"DELTA %d %d %s" % (base, base + 1, one)
    yield "too many fields", b"DELTA %d %d %s - -" % (base, base + 1, one)
    yield "non-numeric version", b"DELTA %d next %s -" % (base, one)
    yield "version not after base", b"DELTA %d %d %s -" % (base, base, one)
    yield "position out of range", b"DELTA %d %d %s -" % (base, base + 1, b64z(uint32s(m)))
    yield "clear out of range", b"DELTA %d %d - %s" % (base, base + 1, b64z(uint32s(1, 1 << 31)))
    yield "unsorted", b"DELTA %d %d %s -" % (base, base + 1, b64z(uint32s(9, 5)))
    yield "duplicate", b"DELTA %d %d %s -" % (base, base + 1, b64z(uint32s(5, 5)))
    yield "set and clear", b"DELTA %d %d %s %s" % (base, base + 1, one, one)
    yield "not whole uint32", b"DELTA %d %d %s -" % (base, base + 1, b64z(b"\x05\x00\x00"))
    yield "empty list not dash", b"DELTA %d %d %s -" % (base, base + 1, b64z(b""))
    yield "empty field", b"DELTA %d %d  -" % (base, base + 1)
    yield "bad base64", b"DELTA %d %d %s -" % (base, base + 1, one[:-2] + b"*=")
    yield "truncated zlib", b"DELTA %d %d %s -" % (
        base, base + 1, base64.b64encode(zlib.compress(uint32s(1, 2, 3))[:-3]))
    yield "zlib bomb", b"DELTA %d %d %s -" % (base, base + 1, base64.b64encode(zlib_bomb()))


def test_malformed_deltas_are_refused(source: BloomFilter) -> None:
    replica = synced(source)
    before = state(replica)
    for name, data in bad_deltas(replica.version, replica.bits):
        with pytest.raises(FilterError) as caught:
            replica.apply(data, MAX_BITS)
        assert type(caught.value) is FilterError, name
        assert state(replica) == before, name
    # The same deltas from the wrong base: refused too, as malformed or as a version error.
    for _name, data in bad_deltas(replica.version + 5, replica.bits):
        with pytest.raises(FilterError):
            replica.apply(data, MAX_BITS)
        assert state(replica) == before


def test_max_bits_is_the_callers_limit(source: BloomFilter) -> None:
    data = source.encode_full()
    replica = FilterReplica()
    with pytest.raises(FilterError, match="exceeds the limit"):
        replica.apply(data, source.bits - 1)
    assert replica.version == -1
    replica.apply(data, source.bits)
    assert replica.bits == source.bits


def test_filter_errors_are_protocol_errors() -> None:
    assert issubclass(FilterVersionError, FilterError)
    assert issubclass(FilterError, ProtocolError)
    error = FilterError("filter data is truncated").with_tag(b"7")
    assert isinstance(error, FilterError) and error.tag == b"7"


@given(st.binary(max_size=300))
def test_garbage_raises_only_filter_error(data: bytes) -> None:
    replica = FilterReplica()
    try:
        replica.apply(data, MAX_BITS)
    except FilterError:
        assert state(replica) == state(FilterReplica())


WORDS = st.sampled_from([b"FULL", b"DELTA", b"-", b"0", b"1", b"8", b"16", b"1000", b"AAAA",
                         b"eJwDAAAAAAE=", b"eJxjYAAAAAQAAQ==", b""])


@given(st.lists(st.one_of(WORDS, st.binary(max_size=12)), min_size=1, max_size=7))
def test_near_miss_updates_raise_only_filter_error(fields: list[bytes]) -> None:
    replica = FilterReplica()
    replica.apply(b"FULL 0 16 2 0 eJxjYAAAAAIAAQ==", MAX_BITS)
    before = state(replica)
    try:
        replica.apply(b" ".join(fields), MAX_BITS)
    except FilterError:
        assert state(replica) == before


@given(st.data())
def test_corrupted_encodings_raise_only_filter_error(data: st.DataObject) -> None:
    bloom = BloomFilter(50, 0.05)
    for key in keys(b"k", 30):
        bloom.add(key)
    replica = synced(bloom)
    bloom.add(b"x")
    bloom.remove(b"k:3")
    update = bloom.take_delta()
    assert update is not None
    valid = data.draw(st.sampled_from([bloom.encode_full(), bloom.encode_update(update)]))
    at = data.draw(st.integers(0, len(valid) - 1))
    corrupted = data.draw(st.sampled_from([
        valid[:at],
        valid[:at] + bytes([data.draw(st.integers(0, 255))]) + valid[at + 1:],
        valid[:at] + valid[at + 1:],
    ]))
    before = state(replica)
    try:
        replica.apply(corrupted, MAX_BITS)
    except FilterError:
        assert state(replica) == before


def test_full_copies_are_compressed_once_per_state() -> None:
    bloom = BloomFilter(1000, 0.01)
    bloom.add(b"a")
    first = bloom.encode_full()
    assert bloom.encode_full() is first
    bloom.add(b"b")
    second = bloom.encode_full()
    assert second != first
    bloom.remove(b"b")
    refresh(bloom, [b"a"])  # back to the first bits, but the copy is built afresh
    third = bloom.encode_full()
    assert third == first and third is not first
    replica = FilterReplica()
    replica.apply(third, MAX_BITS)
    assert replica.bit_bytes() == bloom.bit_bytes()


def test_encode_best_encodes_an_update_once() -> None:
    bloom = BloomFilter(1000, 0.01)
    bloom.add(b"a")
    update = bloom.take_delta()
    assert update is not None
    first = bloom.encode_best(update)
    bloom.add(b"b")  # a later change does not alter what this update encodes to
    assert bloom.encode_best(update) is first
    replica = FilterReplica()
    replica.apply(bloom.encode_full(), MAX_BITS)
    later = bloom.take_delta()
    assert later is not None
    replica.apply(bloom.encode_best(later), MAX_BITS)  # harmless on a full copy that had it
    assert replica.bit_bytes() == bloom.bit_bytes()


def test_bit_bytes_are_current_between_deltas() -> None:
    bloom = BloomFilter(100, 0.01)
    bloom.add(b"a")
    assert bloom.bit_bytes() == bits_of(bloom, [b"a"]) != bytes(len(bloom.bit_bytes()))
    bloom.remove(b"a")
    refresh(bloom, [])
    assert bloom.bit_bytes() == bytes(len(bloom.bit_bytes()))
    # a and back: the bits are as they were at the last delta, so nothing to send
    assert bloom.take_delta() is None
