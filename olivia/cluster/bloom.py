"""Bloom filters of a node's keys, and the copies its peers keep of them.

A node keeps a :class:`BloomFilter` of its own keys; a deleted or expired key
leaves it when the node next refreshes the filter from its live keys.  Peers
get the bit array: a full copy when a link opens, then deltas of the
positions whose bit flipped.  A peer holds that
copy in a :class:`FilterReplica` and asks this node for a key only when the
replica may contain it.

Hashing (identical on both ends, so it is part of the wire contract)::

    h1, h2 = mmh3.hash64(key, seed, signed=False)   # MurmurHash3 x64 128-bit
    h2 = h2 | 1                                      # odd, so never zero
    position[i] = (h1 + i * h2) % m                  for i in range(k)

``h2`` is forced odd so that it is never zero: with ``h2 == 0`` all k positions
of a key would be the same one.  (For an even ``m``, ``h2 % m`` is then never 0
either; for an odd ``m`` it is 0 with probability ``1/m``.  A key whose
positions coincide is still found, it only gets a higher false-positive rate.)

Wire encoding (the payload of a filter push; the reference for docs/protocol.md)
--------------------------------------------------------------------------------

Every field is printable ASCII without spaces; fields are separated by one
space; no ``,`` ``:`` ``%`` CR or LF appears anywhere, so the whole encoding can
be carried as a protocol payload without escaping.  Numbers are unsigned
decimal (ASCII digits only, at most 20 of them).

Full copy::

    FULL <version> <m> <k> <seed> <data>

``m`` is the number of bits (8 .. the receiver's limit), ``k`` the number of
hashes (1..16), ``seed`` the mmh3 seed (0..2**32-1).  ``data`` is standard
base64 (``A-Z a-z 0-9 + /``, ``=`` padding) of the zlib stream of the bit
array: bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8`` (big-endian bit order),
padded with zero bits to ``ceil(m / 8)`` bytes.  The stream must decompress to
exactly that many bytes, with nothing after it, and the padding bits must be
zero.  A full copy replaces whatever the receiver held, at any version.

Delta::

    DELTA <base_version> <version> <set> <clear>

Applies only to a replica currently at ``base_version`` (otherwise the
receiver answers with a version error and the sender must send a full copy);
``version`` must be greater than ``base_version`` and becomes the replica's
version.  ``set`` and ``clear`` are the positions whose bit is now 1 and now 0:
each is ``-`` when empty, else standard base64 of the zlib stream of
little-endian uint32 positions, strictly increasing, all below ``m``, and no
position in both lists.  Positions are absolute values, not toggles, so
applying a delta twice, or after a full copy that already contains it, is
harmless.

A delta cannot change ``m``, ``k`` or ``seed``: after the filter is resized
(:meth:`BloomFilter.rebuild`) the next update is always a full copy.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import mmh3
from bitarray import bitarray

from olivia.core.errors import FilterError, FilterVersionError

MIN_BITS = 8
# A peer's filter may be sized for this many times the keys it holds (a node
# shrinks its own filter on refresh once it is 8x too large for its keys).
OVERSIZE_FACTOR = 16
MIN_FP_RATE = 0.0001  # the lowest bloom.fp_rate a node may be configured with
MAX_HASHES = 16
# How much larger than the size-optimal filter one with fewer hashes may be.
SIZE_SLACK = 1.10
# Keys whose positions are set in one bitarray call, at most.
ADD_CHUNK = 4096
# Positions travel as uint32, so no filter can be larger than this.
MAX_BITS = 1 << 32
MAX_SEED = (1 << 32) - 1
# Longest number accepted in a field: 20 digits hold any uint64, and refusing
# longer ones spares int() a hostile peer's megabyte of digits (which it would
# refuse anyway past 4300 digits, with a ValueError instead of a FilterError).
_MAX_DIGITS = 20
_EMPTY_LIST = b"-"
# zlib level 1: bloom bits are close to random, so higher levels gain under 10%
# in size and cost up to 8x the time (170 ms instead of 21 ms for a 1.2 MB
# filter one tenth full), all of it blocking the event loop.
_ZLIB_LEVEL = 1
_LITTLE_ENDIAN = sys.byteorder == "little"
# When a change is sent as a full copy without listing its positions.
# Listing, merging and encoding positions costs about 0.5 us each of the
# event loop: a bulk load's delta of a million positions took 0.2-0.4 s, only
# to lose to the full copy.  So a change of more than MAX_DELTA_POSITIONS
# positions is always sent whole (a full copy of the default filter is ~40 ms
# of work), and so is one of more than FULL_ONLY_MIN_POSITIONS whose delta
# would surely be longer than a full copy: a position costs a delta at least
# MIN_DELTA_BYTES_PER_POSITION bytes (measured: ~1.9).  Smaller changes are
# listed; encode_best still sends the shorter of the two encodings.
MAX_DELTA_POSITIONS = 100_000
FULL_ONLY_MIN_POSITIONS = 16_384
MIN_DELTA_BYTES_PER_POSITION = 1.5

if array("I").itemsize != 4:  # pragma: no cover - every supported platform
    raise ImportError("olivia.bloom needs a 4-byte array('I')")

_hash64 = mmh3.hash64


def bloom_positions(key: bytes, bits: int, hashes: int, seed: int) -> list[int]:
    """The positions of ``key``: the reference form of the hashing above.

    The filters inline an incremental version of this loop (``pos += step``
    modulo ``m``, which is the same arithmetic) because it is on the path of
    every SET and GET; the tests check that they agree with this function.
    """
    h1, h2 = _hash64(key, seed, True, False)
    h2 |= 1
    return [(h1 + i * h2) % bits for i in range(hashes)]


def filter_size(capacity: int, fp_rate: float) -> tuple[int, int]:
    """``(m, k)`` for ``capacity`` keys at false-positive rate ``fp_rate``.

    Each hash is Python arithmetic on every new key (and a random access into
    the bits), so k is not the size-optimal ``m/n ln 2`` but the smallest k
    whose filter is at most SIZE_SLACK larger than the optimal one: with k
    hashes the rate is ``(1 - e^(-kn/m))^k``, so ``m_k = ceil(-n k / ln(1 -
    p^(1/k)))``.  For the default p = 0.005 that is k = 5 and 6.4% more bits
    than k = 8 needs: three positions fewer per new key for 90 KB.  m is at
    least 8 (the smallest filter a replica accepts); k is at most 16.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"bloom filter capacity must be a positive integer, not {capacity!r}")
    if not 0.0 < fp_rate < 1.0:
        raise ValueError(f"bloom filter fp_rate must be between 0 and 1, not {fp_rate!r}")
    optimal = -capacity * math.log(fp_rate) / math.log(2) ** 2
    for hashes in range(1, MAX_HASHES + 1):
        needed = -capacity * hashes / math.log1p(-fp_rate ** (1 / hashes))
        if needed <= SIZE_SLACK * optimal:
            break
    bits = max(MIN_BITS, math.ceil(needed))
    if bits > MAX_BITS:
        raise ValueError(f"bloom filter of {bits} bits is larger than the {MAX_BITS} limit")
    return bits, hashes


@dataclass(frozen=True, slots=True)
class FilterUpdate:
    """What changed in a filter from ``base_version`` to ``version``.

    ``set_positions`` and ``clear_positions`` are sorted and disjoint.  When
    ``full_only`` is true there are no positions: the change is sent as a full
    copy, because the filter was resized or because so many bits changed that
    a full copy is shorter.
    """

    base_version: int
    version: int
    set_positions: tuple[int, ...] = ()
    clear_positions: tuple[int, ...] = ()
    full_only: bool = False


class BloomFilter:
    """This node's filter of its own keys; not thread-safe (one event loop).

    Adding a key sets its bits at once.  Removing one does not clear them:
    a bit may be shared with other keys, and counting who shares it (a
    counting filter) costs a random memory access per hash on every new
    key, which made the filter most of the cost of a SET.  Instead a removal
    is only counted (:attr:`stale`), and the node *refreshes* the filter from
    its live keys now and then (:meth:`begin_refresh`, :meth:`refresh_add`,
    :meth:`finish_refresh`), a few thousand keys per step so the event loop
    stays responsive.  Until then a removed key is a false positive, never a
    false negative.  Cache digests in Squid work the same way.

    The caller adds a key once when it appears in the store and removes it
    once when it leaves (delete or expiry); overwriting a key must not add it
    again, or :attr:`count` drifts.
    """

    __slots__ = (
        "_best_cache",
        "_bitarray",
        "_bits",
        "_capacity",
        "_count",
        "_fp_rate",
        "_fresh",
        "_fresh_size",
        "_full_cache",
        "_full_pending",
        "_hashes",
        "_krange",
        "_ops",
        "_ops_at_delta",
        "_seed",
        "_sent",
        "_stale",
        "_stale_at_refresh",
        "_version",
    )

    def __init__(self, capacity: int, fp_rate: float, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"bloom filter seed must be in 0..{MAX_SEED}, not {seed!r}")
        self._fp_rate = fp_rate
        self._seed = seed
        self._version = 0
        self._full_pending = False
        self._resize(capacity)

    def _resize(self, capacity: int) -> None:
        """Empty the filter at the size for ``capacity`` keys (same fp_rate)."""
        bits, hashes = filter_size(capacity, self._fp_rate)
        self._capacity = capacity
        self._bits = bits
        self._hashes = hashes
        self._krange = range(hashes - 1)  # the positions after the first
        # The bits peers receive.
        self._bitarray = bitarray(bits, endian="big")
        self._bitarray.setall(0)
        # The bits as of the last delta: the next delta is their difference,
        # found at C speed, so add and remove record nothing per position.
        self._sent = self._bitarray.copy()
        self._count = 0
        self._stale = 0  # removed keys whose bits are still set
        # While a refresh runs: the bits being rebuilt from the held keys,
        # their size as (capacity, m, range(k - 1)), and how many removals
        # it will account for.
        self._fresh: bitarray | None = None
        self._fresh_size = (capacity, bits, self._krange)
        self._stale_at_refresh = 0
        # Bit changes since the resize: with the version, it identifies the
        # bit state, so a full copy is compressed once however many peers
        # ask, and an idle round costs one comparison.
        self._ops = 0
        self._ops_at_delta = 0
        self._full_cache: tuple[int, int, bytes] | None = None
        # The last update encode_best was asked for and its answer: every peer
        # that is up to date gets the same bytes, compressed once.
        self._best_cache: tuple[FilterUpdate, bytes] | None = None

    # -- read-only state ------------------------------------------------------

    @property
    def bits(self) -> int:
        """m, the number of positions."""
        return self._bits

    @property
    def hashes(self) -> int:
        """k, the number of positions per key."""
        return self._hashes

    @property
    def capacity(self) -> int:
        """Keys the filter is sized for (the owner grows it past that)."""
        return self._capacity

    @property
    def fp_rate(self) -> float:
        """The false-positive rate the filter is sized for, at capacity."""
        return self._fp_rate

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def count(self) -> int:
        """Keys currently in the filter: adds minus removes (never below 0)."""
        return self._count

    @property
    def stale(self) -> int:
        """Removed keys whose bits are still set, until a refresh clears them."""
        return self._stale

    @property
    def refreshing(self) -> bool:
        """True between begin_refresh and finish_refresh."""
        return self._fresh is not None

    @property
    def version(self) -> int:
        """Version of the state peers know; bumped by take_delta and rebuild."""
        return self._version

    def bit_bytes(self) -> bytes:
        """The bit array peers receive, packed as in the full encoding."""
        return self._bitarray.tobytes()

    def positions(self, key: bytes) -> list[int]:
        """The positions of ``key`` in this filter."""
        return bloom_positions(key, self._bits, self._hashes, self._seed)

    # -- the hot path ---------------------------------------------------------

    def add(self, key: bytes) -> None:
        """Add ``key``; the bits it sets reach peers in the next delta."""
        self.add_many((key,))

    def add_many(self, keys: Sequence[bytes]) -> None:
        """Add each of ``keys``: their positions are worked out in Python and
        set with one bitarray call per ADD_CHUNK keys (the chunk bounds the
        list of positions: a million ints would outlive the load as
        allocator fragmentation)."""
        fresh = self._fresh
        for start in range(0, len(keys), ADD_CHUNK):
            chunk = keys[start:start + ADD_CHUNK]
            positions = self._positions_of(chunk, self._bits, self._krange)
            self._bitarray[positions] = 1
            if fresh is not None:
                _, bits, krange = self._fresh_size
                if bits != self._bits:  # growing: the new size has its own positions
                    positions = self._positions_of(chunk, bits, krange)
                fresh[positions] = 1
        self._count += len(keys)
        self._ops += 1

    def _positions_of(self, keys: Iterable[bytes], m: int, krange: range) -> list[int]:
        # The reference arithmetic of bloom_positions, incrementally: this
        # loop is most of what a new key costs, so it stays flat.
        seed = self._seed
        positions: list[int] = []
        append = positions.append
        for key in keys:
            h1, h2 = _hash64(key, seed, True, False)
            pos = h1 % m
            step = (h2 | 1) % m
            append(pos)
            for _ in krange:
                pos += step
                if pos >= m:
                    pos -= m
                append(pos)
        return positions

    def remove(self, key: bytes) -> None:
        """Count ``key`` out.  Its bits stay set until the next refresh."""
        if self._count:
            self._count -= 1
        self._stale += 1

    def __contains__(self, key: bytes) -> bool:
        h1, h2 = _hash64(key, self._seed, True, False)
        m = self._bits
        pos = h1 % m
        step = (h2 | 1) % m
        bits = self._bitarray
        if not bits[pos]:
            return False
        for _ in self._krange:
            pos += step
            if pos >= m:
                pos -= m
            if not bits[pos]:
                return False
        return True

    def fill(self) -> float:
        """The fraction of bits set, 0..1."""
        return self._bitarray.count() / self._bits

    def fp_estimate(self) -> float:
        """Current false-positive estimate: (fraction of bits set) ** k."""
        return self.fill() ** self._hashes

    # -- refresh and growth: rebuilding the bits from the held keys -----------

    def begin_refresh(self, capacity: int | None = None) -> None:
        """Start rebuilding the bits from the held keys, which the caller then
        passes to :meth:`refresh_add` (in steps) before :meth:`finish_refresh`.

        With ``capacity`` (growth) the new bits are sized for that many keys;
        the filter keeps answering from the old ones until the end.  Keys
        added meanwhile go into both bit arrays; keys removed meanwhile count
        as stale for the next refresh.  A refresh in progress is abandoned.
        """
        capacity = self._capacity if capacity is None else capacity
        bits, hashes = filter_size(capacity, self._fp_rate)
        fresh = bitarray(bits, endian="big")
        fresh.setall(0)
        self._fresh = fresh
        self._fresh_size = (capacity, bits, range(hashes - 1))
        self._stale_at_refresh = self._stale

    @property
    def growing_to(self) -> int | None:
        """The capacity a refresh in progress grows the filter to, if it does."""
        if self._fresh is None or self._fresh_size[0] == self._capacity:
            return None
        return self._fresh_size[0]

    def refresh_add(self, keys: Sequence[bytes]) -> None:
        """Add held keys to the bits being rebuilt."""
        fresh = self._fresh
        if fresh is not None:
            _, bits, krange = self._fresh_size
            for start in range(0, len(keys), ADD_CHUNK):
                fresh[self._positions_of(keys[start:start + ADD_CHUNK], bits, krange)] = 1

    def finish_refresh(self) -> None:
        """Put the rebuilt bits in place: the removed keys' bits are gone, and
        the next delta tells peers which bits cleared (a resized filter can
        only be sent whole: the version is bumped and the next
        :meth:`take_delta` returns a ``full_only`` update)."""
        fresh = self._fresh
        if fresh is None:
            return
        self._fresh = None
        self._stale -= self._stale_at_refresh
        capacity, bits, krange = self._fresh_size
        if capacity != self._capacity:
            self._capacity, self._bits, self._krange = capacity, bits, krange
            self._hashes = len(krange) + 1
            self._bitarray = fresh
            self._sent = fresh.copy()
            self._ops += 1
            self._ops_at_delta = self._ops
            self._version += 1
            self._full_pending = True
        elif fresh != self._bitarray:
            self._bitarray = fresh
            self._ops += 1

    def rebuild(self, keys: Iterable[bytes], capacity: int) -> None:
        """Re-size for ``capacity`` keys (same fp_rate) and add ``keys`` again,
        all at once: a whole refresh in one call (see finish_refresh)."""
        keys = list(keys)  # if iterating fails, it fails before anything changed
        self.begin_refresh(capacity)
        self.refresh_add(keys)
        self.finish_refresh()
        self._count = len(keys)

    # -- change tracking and encoding -----------------------------------------

    def take_delta(self) -> FilterUpdate | None:
        """The change since the last call as a new version, or None if none.

        The positions are those whose bit differs from the last delta's state
        (a bit that flipped and flipped back is not sent), with their value
        now.  The difference is taken between two bit arrays, in C: nothing is
        recorded per add or remove.
        """
        if self._full_pending:
            self._full_pending = False
            self._version += 1
            self._sent = self._bitarray.copy()
            self._ops_at_delta = self._ops
            return FilterUpdate(self._version - 1, self._version, full_only=True)
        if self._ops == self._ops_at_delta:
            return None
        self._ops_at_delta = self._ops
        now, before = self._bitarray, self._sent
        diff = now ^ before
        if not diff.any():
            return None
        self._sent = now.copy()
        self._version += 1
        if self.prefers_full(diff.count()):
            return FilterUpdate(self._version - 1, self._version, full_only=True)
        return FilterUpdate(
            self._version - 1,
            self._version,
            tuple(_ones(diff & now)),
            tuple(_ones(diff & before)),
        )

    def encode_full(self) -> bytes:
        """The full copy of the current bits, labelled with the current version."""
        return self._encode_full(self._version)

    def encode_update(self, update: FilterUpdate) -> bytes:
        """The delta encoding of ``update`` (a full copy if it is full_only).

        Encode an update promptly after :meth:`take_delta`: a full copy
        always carries the bits as they are now.
        """
        if update.full_only:
            return self._encode_full(update.version)
        return b"DELTA %d %d %s %s" % (
            update.base_version,
            update.version,
            _encode_positions(update.set_positions),
            _encode_positions(update.clear_positions),
        )

    def encode_best(self, update: FilterUpdate) -> bytes:
        """The shorter of the delta and the full encoding of ``update``.

        The full copy (a compression of ceil(m/8) bytes) is only built when the
        delta is not obviously smaller: bloom bits are pseudo-random, so zlib
        cannot compress them below their entropy, m * H(set fraction) / 8
        bytes; a delta under half that estimate is sent as is.

        The answer for the latest update is kept, so calling this once per
        peer costs one encoding.  A full copy carries the bits as they were at
        that first call; later changes reach the peer in later deltas.
        """
        cached = self._best_cache
        if cached is not None and cached[0] is update:
            return cached[1]
        if update.full_only:
            best = self._encode_full(update.version)
        else:
            best = self.encode_update(update)
            if 2 * len(best) >= self._full_size_estimate():
                full = self._encode_full(update.version)
                if len(full) < len(best):
                    best = full
        self._best_cache = (update, best)
        return best

    def prefers_full(self, changed: int) -> bool:
        """True when a change of ``changed`` positions goes out as a full copy
        without its positions being listed (see MAX_DELTA_POSITIONS)."""
        if changed > MAX_DELTA_POSITIONS:
            return True
        return (changed >= FULL_ONLY_MIN_POSITIONS
                and changed * MIN_DELTA_BYTES_PER_POSITION >= self._full_size_estimate())

    def _full_size_estimate(self) -> float:
        """Lower estimate of len(encode_full()), in base64 bytes.

        The larger of the entropy of the bits and deflate's hard floor (it
        never compresses better than 1032 to 1).
        """
        raw = (self._bits + 7) // 8
        p = self._bitarray.count() / self._bits
        entropy = 0.0
        if 0.0 < p < 1.0:
            entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
        return max(raw * entropy, raw / 1032) * 4 / 3

    def _encode_full(self, version: int) -> bytes:
        cached = self._full_cache
        if cached is not None and cached[0] == version and cached[1] == self._ops:
            return cached[2]
        data = base64.b64encode(zlib.compress(self._bitarray.tobytes(), _ZLIB_LEVEL))
        encoded = b"FULL %d %d %d %d %s" % (version, self._bits, self._hashes, self._seed, data)
        self._full_cache = (version, self._ops, encoded)
        return encoded


def estimated_keys(bits: int, hashes: int, set_bits: int) -> float:
    """How many keys a filter with ``set_bits`` of ``bits`` set holds (Swamidass
    and Baldi's estimate; a full filter counts as holding very many)."""
    if set_bits >= bits:
        return float(bits)
    return -bits / hashes * math.log1p(-set_bits / bits)


def _ones(bits: bitarray) -> list[int]:
    """Positions of the set bits, in increasing order (C speed; searching for
    the int 1 is some 40x faster than for bitarray('1'))."""
    return list(bits.search(1))


class FilterReplica:
    """Our copy of a peer's filter, built only from what the peer sent.

    An update is checked completely before anything changes, so a rejected
    one leaves the replica exactly as it was.
    """

    __slots__ = ("_bitarray", "_bits", "_hashes", "_krange", "_seed", "_set_bits", "_version")

    def __init__(self) -> None:
        self._version = -1
        self._bits = 0
        self._hashes = 0
        self._seed = 0
        self._krange = range(0)
        self._set_bits = 0
        self._bitarray: bitarray | None = None

    @property
    def version(self) -> int:
        """The peer's version we hold, -1 before the first full copy."""
        return self._version

    @property
    def bits(self) -> int:
        """m, 0 before the first full copy."""
        return self._bits

    @property
    def hashes(self) -> int:
        """k, 0 before the first full copy."""
        return self._hashes

    @property
    def seed(self) -> int:
        return self._seed

    def bit_bytes(self) -> bytes:
        """The bit array, packed as in the full encoding (empty before any)."""
        return b"" if self._bitarray is None else self._bitarray.tobytes()

    def __contains__(self, key: bytes) -> bool:
        array_ = self._bitarray
        if array_ is None:
            return False
        h1, h2 = _hash64(key, self._seed, True, False)
        m = self._bits
        pos = h1 % m
        step = (h2 | 1) % m
        for _ in self._krange:
            if not array_[pos]:
                return False
            pos = (pos + step) % m
        return True

    def fp_estimate(self) -> float:
        """(fraction of bits set) ** k, 0 before the first full copy."""
        if not self._bits:
            return 0.0
        return (self._set_bits / self._bits) ** self._hashes

    def apply(self, data: bytes, max_bits: int, base_bits: int = 0) -> None:
        """Apply a full or delta encoding; ``max_bits`` bounds a full copy's m.

        With ``base_bits`` (the size of a default filter), a full copy larger
        than twice that must also be in proportion to the keys it holds: at
        most the size a filter for OVERSIZE_FACTOR times its estimated key
        count needs at the lowest fp_rate allowed.  So the memory a peer's
        filter costs is bounded by its key count, not by what it claims.

        Raises :class:`FilterVersionError` for a delta that does not start
        from our version, :class:`FilterError` for anything malformed.
        """
        fields = data.split(b" ")
        kind = fields[0]
        if kind == b"FULL":
            self._apply_full(fields, max_bits, base_bits)
        elif kind == b"DELTA":
            self._apply_delta(fields)
        else:
            raise FilterError("filter update must start with FULL or DELTA")

    def _apply_full(self, fields: list[bytes], max_bits: int, base_bits: int) -> None:
        if len(fields) != 6:
            raise FilterError(f"filter FULL needs 5 fields, got {len(fields) - 1}")
        version = _number(fields[1], "version")
        bits = _number(fields[2], "size")
        hashes = _number(fields[3], "hash count")
        seed = _number(fields[4], "seed")
        limit = min(max_bits, MAX_BITS)
        if bits > limit:
            raise FilterError(f"filter size {bits} bits exceeds the limit of {limit}")
        if bits < MIN_BITS:
            raise FilterError(f"filter size {bits} bits is below the minimum of {MIN_BITS}")
        if not 1 <= hashes <= MAX_HASHES:
            raise FilterError(f"filter hash count {hashes} is not in 1..{MAX_HASHES}")
        if seed > MAX_SEED:
            raise FilterError(f"filter seed {seed} is not in 0..{MAX_SEED}")
        size = (bits + 7) // 8
        raw = _inflate(fields[5], size, "filter data")
        if len(raw) != size:
            raise FilterError(f"filter data is {len(raw)} bytes, {size} expected for {bits} bits")
        if bits % 8 and raw[-1] & (0xFF >> (bits % 8)):
            raise FilterError("filter data has bits set past the filter size")
        new = bitarray(endian="big")
        new.frombytes(raw)
        del new[bits:]
        set_bits = new.count()
        if base_bits and bits > 2 * base_bits:
            keys = estimated_keys(bits, hashes, set_bits)
            needed = filter_size(max(1, math.ceil(keys * OVERSIZE_FACTOR)), MIN_FP_RATE)[0]
            if bits > needed:
                raise FilterError(f"filter size {bits} bits is out of proportion to the "
                                  f"~{keys:.0f} keys it holds (at most {max(needed, 2 * base_bits)}"
                                  " bits)")
        self._bitarray = new
        self._bits = bits
        self._hashes = hashes
        self._krange = range(hashes)
        self._seed = seed
        self._set_bits = set_bits
        self._version = version

    def _apply_delta(self, fields: list[bytes]) -> None:
        if len(fields) != 5:
            raise FilterError(f"filter DELTA needs 4 fields, got {len(fields) - 1}")
        base = _number(fields[1], "base version")
        version = _number(fields[2], "version")
        if version <= base:
            raise FilterError(f"filter delta goes back from version {base} to {version}")
        if base != self._version or self._bitarray is None:
            held = "none" if self._bitarray is None else f"version {self._version}"
            raise FilterVersionError(
                f"filter delta is based on version {base} but we hold {held}: send a full copy")
        set_positions = _decode_positions(fields[3], self._bits, "set")
        clear_positions = _decode_positions(fields[4], self._bits, "clear")
        if not set(set_positions).isdisjoint(clear_positions):
            raise FilterError("filter delta sets and clears the same position")
        bits = self._bitarray
        for position in set_positions:
            bits[position] = 1
        for position in clear_positions:
            bits[position] = 0
        self._set_bits = self._bitarray.count()
        self._version = version


# -- encoding helpers ----------------------------------------------------------


def _encode_positions(positions: tuple[int, ...]) -> bytes:
    if not positions:
        return _EMPTY_LIST
    packed = array("I", positions)
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return base64.b64encode(zlib.compress(packed.tobytes(), _ZLIB_LEVEL))


def _decode_positions(field: bytes, bits: int, what: str) -> list[int]:
    """Sorted, distinct positions below ``bits`` from a delta's list field."""
    if field == _EMPTY_LIST:
        return []
    raw = _inflate(field, 4 * bits, f"filter {what} list")
    if not raw or len(raw) % 4:
        raise FilterError(f"filter {what} list is {len(raw)} bytes, not a whole number of uint32")
    packed = array("I")
    packed.frombytes(raw)
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    positions = packed.tolist()
    if max(positions) >= bits:
        raise FilterError(
            f"filter {what} position {max(positions)} is past the filter size {bits}")
    if positions != sorted(set(positions)):
        raise FilterError(f"filter {what} positions are not strictly increasing")
    return positions


def _number(field: bytes, what: str) -> int:
    if not 0 < len(field) <= _MAX_DIGITS or not field.isdigit():
        raise FilterError(f"filter {what} is not an unsigned decimal number")
    return int(field)


def _inflate(field: bytes, max_size: int, what: str) -> bytes:
    """Base64-decode and decompress ``field``, refusing more than ``max_size`` bytes.

    Decompression stops one byte past the limit, so a small stream that
    expands to gigabytes (a zlib bomb) costs no more than ``max_size`` bytes.
    """
    try:
        compressed = base64.b64decode(field, validate=True)
    except (binascii.Error, ValueError):
        raise FilterError(f"{what} is not valid base64") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, max_size + 1)
    except zlib.error:
        raise FilterError(f"{what} is not a valid zlib stream") from None
    if len(raw) > max_size or inflater.unconsumed_tail:
        raise FilterError(f"{what} decompresses to more than {max_size} bytes")
    if not inflater.eof:
        raise FilterError(f"{what} is truncated")
    if inflater.unused_data:
        raise FilterError(f"{what} has bytes after the end of its zlib stream")
    return raw
