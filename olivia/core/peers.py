"""What the command core needs of the rest of the cluster, as an interface.

The core never imports the cluster: it is given an object with these
methods (the cluster's :class:`~olivia.cluster.cluster.Cluster`, or
:class:`NoPeers` for a node on its own and for unit tests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence, Sized
from typing import Protocol

#: key -> stored form (olivia.core.values) of the keys found on peers, the
#: newest copy where several answer.
RemoteFound = dict[bytes, bytes]


class Peers(Protocol):
    @property
    def known(self) -> Sized:
        """The peers known in any state (true when there is any): checked on
        every write, so a container, not a call."""

    @property
    def replicates(self) -> bool:
        """Whether writes are copied to other nodes (``cluster.replicas`` > 0)."""

    def has_alive_peer(self) -> bool:
        """Whether any other node can be asked now (checked on every local miss)."""

    def lookup(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        """Ask the peers whose filters may hold ``keys``; False if there are none.
        Otherwise ``done`` is called once, later, with what they found."""

    def announce(self, keys: Iterable[bytes], stamp: bytes) -> None:
        """``keys`` were written or deleted here at ``stamp``: older copies elsewhere go."""

    def delete(self, keys: Collection[bytes], stamp: bytes) -> Awaitable[set[bytes]]:
        """Delete ``keys`` on the peers that may hold them, and leave tombstones
        on the keys' homes; the keys they had."""

    def replicate(self, stamp: bytes, pairs: Sequence[Sequence[bytes]],
                  ttls: Sequence[float] | None) -> Awaitable[None] | None:
        """Copy just-written (key, raw value) pairs (with their TTLs in seconds,
        or None) to the keys' homes; an awaitable done once the copies the
        write must wait for are stored, or None if there are none to wait for."""


class NoPeers:
    """A node with no cluster: nothing to ask, nobody to tell."""

    known: Sized = ()
    replicates = False

    def has_alive_peer(self) -> bool:
        return False

    def lookup(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        return False

    def announce(self, keys: Iterable[bytes], stamp: bytes) -> None:
        pass

    async def delete(self, keys: Collection[bytes], stamp: bytes) -> set[bytes]:
        return set()

    def replicate(self, stamp: bytes, pairs: Sequence[Sequence[bytes]],
                  ttls: Sequence[float] | None) -> None:
        return None
