"""The hybrid logical clock that orders writes across the cluster.

Every stored value carries a 12-byte stamp: 8 bytes of HLC time (48 bits of
wall-clock milliseconds, 16 bits of logical counter) and 4 bytes of node id
(CRC-32 of the node name), all big-endian.  Comparing two stamps as bytes is
comparing them as versions: later HLC time wins, the node id breaks ties, so
every node picks the same winner ("last writer wins").  CRC-32 can give
two names the same id (e.g. 'plumless' and 'buckeroo'); a node refuses a peer
whose id collides with its own or a known peer's, so ids are unique in a
cluster.

The HLC never runs backwards, stays within a few milliseconds of the wall
clock, and moves past every stamp it has seen from a peer, so a write made
after reading a value always gets a larger stamp than that value.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable

STAMP_BYTES = 12
_PACK = struct.Struct(">QI")
_pack = _PACK.pack
_LOGICAL_BITS = 16
_LOGICAL_MAX = (1 << _LOGICAL_BITS) - 1
ZERO_STAMP = bytes(STAMP_BYTES)
# Peers' stamps further ahead of our wall clock than this are not adopted.
MAX_DRIFT_MS = 60_000


def node_id(name: str) -> int:
    """The 32-bit tie-breaker of a node name."""
    return zlib.crc32(name.encode())


class HybridClock:
    """Issues increasing stamps for one node."""

    __slots__ = ("_logical", "_node_id", "_time", "_wall")

    def __init__(self, name: str, wall: Callable[[], float] = time.time) -> None:
        self._node_id = node_id(name)
        self._wall = wall
        self._time = 0  # HLC milliseconds
        self._logical = 0

    def now(self) -> bytes:
        """A stamp larger than every stamp issued or observed before."""
        wall = int(self._wall() * 1000)
        if wall > self._time:  # the usual case, once per SET: kept short
            self._time = wall
            self._logical = 0
            return _pack(wall << _LOGICAL_BITS, self._node_id)
        self._tick_logical()
        return _pack((self._time << _LOGICAL_BITS) | self._logical, self._node_id)

    def observe(self, stamp: bytes) -> bool:
        """Move past a stamp received from a peer (the HLC receive rule).

        A stamp more than MAX_DRIFT_MS ahead of our wall clock is not adopted
        (False): one bad or hostile peer must not drag the clock into the far
        future, where it would stop every later write from winning.
        """
        remote, _ = _PACK.unpack(stamp)
        remote_time, remote_logical = remote >> _LOGICAL_BITS, remote & _LOGICAL_MAX
        wall = int(self._wall() * 1000)
        if remote_time > wall + MAX_DRIFT_MS:
            return False
        if wall > self._time and wall > remote_time:
            self._time, self._logical = wall, 0
        elif remote_time > self._time:
            self._time, self._logical = remote_time, remote_logical
            self._tick_logical()
        elif remote_time == self._time:
            self._logical = max(self._logical, remote_logical)
            self._tick_logical()
        else:
            self._tick_logical()
        return True

    def _tick_logical(self) -> None:
        if self._logical < _LOGICAL_MAX:
            self._logical += 1
        else:  # 65,536 stamps in one millisecond: borrow the next millisecond
            self._time += 1
            self._logical = 0


def describe(stamp: bytes) -> str:
    """Human-readable stamp for logs and docs: ``<ms>.<logical>@<node id hex>``."""
    packed, ident = _PACK.unpack(stamp)
    return f"{packed >> _LOGICAL_BITS}.{packed & _LOGICAL_MAX}@{ident:08x}"
