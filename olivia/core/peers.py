"""What the command core needs of the rest of the cluster, as an interface.

The core never imports the cluster: it is given an object with these
methods (the cluster's :class:`~olivia.cluster.cluster.Cluster`, or
:class:`NoPeers` for a node on its own and for unit tests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence, Sized
from typing import Any, Protocol

from olivia.core.requests import Copy, Result

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
                  ttls: Sequence[float | None] | None) -> Awaitable[None] | None:
        """Copy just-written (key, raw value) pairs (with their TTLs in seconds,
        or None) to the keys' homes; an awaitable done once the copies the
        write must wait for are stored, or None if there are none to wait for."""

    # -- the atomic verbs (olivia.core.atomic), SCAN and COUNT ----------------------

    def home(self, key: bytes) -> str | None:
        """The node where the read-modify-write verbs on ``key`` run: None
        for this node, else the peer's name."""

    def execute(self, name: str, verb: str, items: Any) -> Awaitable[Result]:
        """Have peer ``name`` carry out ``verb`` on ``items`` (keys it is home
        of) and give back its result."""

    def fetch(self, keys: Collection[bytes]) -> Awaitable[list[Copy]] | None:
        """The copies (with TTLs, and tombstones) of ``keys`` held by the peers
        whose filters may hold them; None if no peer may."""

    def lists_slot(self, slot: int) -> bool:
        """Whether SCAN and COUNT take this node's keys of ``slot`` (each key
        is listed by one node: with replicas its first home, else its holder)."""

    @property
    def name(self) -> str:
        """This node's name in the cluster."""

    def members(self) -> tuple[str, ...]:
        """The names of the alive members, this node's included."""

    def scan_page(self, name: str, position: bytes, count: int,
                  pattern: bytes) -> Awaitable[tuple[bytes, list[bytes]]]:
        """One page of peer ``name``'s own part of a scan (olivia.core.scan)."""

    def count_elsewhere(self) -> Awaitable[int] | None:
        """The keys the alive peers list (see lists_slot), summed; None
        without peers."""


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
                  ttls: Sequence[float | None] | None) -> None:
        return None

    def home(self, key: bytes) -> str | None:
        return None

    def execute(self, name: str, verb: str, items: Any) -> Awaitable[Result]:
        raise AssertionError("a node on its own is every key's home")

    def fetch(self, keys: Collection[bytes]) -> Awaitable[list[Copy]] | None:
        return None

    def lists_slot(self, slot: int) -> bool:
        return True

    name = ""

    def members(self) -> tuple[str, ...]:
        return ("",)

    def scan_page(self, name: str, position: bytes, count: int,
                  pattern: bytes) -> Awaitable[tuple[bytes, list[bytes]]]:
        raise AssertionError("a node on its own scans itself")

    def count_elsewhere(self) -> Awaitable[int] | None:
        return None
