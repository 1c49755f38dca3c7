"""Every other node this one knows: its state, its link, its filter.

The membership state machine (:mod:`olivia.cluster.membership`) says who is
alive; this table adds what goes with each peer here: the outgoing link and
the copy of its filter.  Every part of the cluster (dialer, failure detector,
gossip, router, peer verbs) reads and changes peers through it, so dropping
a peer's link, marking it down or forgetting it is done in one place, and
the parts that keep per-peer state of their own hear of it (``on_link``,
``on_drop``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from olivia.cluster.bloom import FilterReplica
from olivia.cluster.links import PeerLink
from olivia.cluster.membership import Membership, Peer, PeerEvent, PeerState
from olivia.core.clock import node_id
from olivia.core.errors import PeerRefusedError

log = logging.getLogger(__name__)


class _NoFilter:
    def __contains__(self, key: bytes) -> bool:
        return False


NO_FILTER = _NoFilter()
_ALIVE = PeerState.ALIVE


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class PeerTable:
    """The peers, their links and their filters."""

    def __init__(self, membership: Membership) -> None:
        self.membership = membership
        self.links: dict[str, PeerLink] = {}
        self.replicas: dict[str, FilterReplica] = {}
        self.my_name = ""
        self._link_hooks: list[Callable[[str], None]] = []
        self._drop_hooks: list[Callable[[str, bool], None]] = []
        self._state_hooks: list[Callable[[], None]] = []

    def on_link(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(name)`` when a peer gets a new link (it needs our whole filter)."""
        self._link_hooks.append(hook)

    def on_drop(self, hook: Callable[[str, bool], None]) -> None:
        """Call ``hook(name, keep_pending)`` when a peer's link and filter are
        dropped; ``keep_pending`` is false when it left or restarted empty."""
        self._drop_hooks.append(hook)

    def on_state(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when a peer's state changed outside the failure
        detector's tick (a handshake made it alive)."""
        self._state_hooks.append(hook)

    def state_changed(self) -> None:
        for hook in self._state_hooks:
            hook()

    # -- reading --------------------------------------------------------------

    def has_peers(self) -> bool:
        return bool(self.membership.peers)

    def has_alive_peer(self) -> bool:
        """Any peer alive (asked on every local miss, so no list is built, and
        ALIVE is a module constant: an Enum member read from its class costs
        ~100 ns on CPython 3.11)."""
        for peer in self.membership.peers.values():  # noqa: SIM110 (a loop is faster than any())
            if peer.state is _ALIVE:
                return True
        return False

    def alive_count(self) -> int:
        return len(self.membership.alive())

    def alive_linked(self) -> list[tuple[Peer, PeerLink]]:
        """Alive peers with an open link, and their links."""
        links = self.links
        return [(p, links[p.name]) for p in self.membership.alive() if p.name in links]

    def alive_addresses(self) -> list[str]:
        return [p.address_text for p in self.membership.alive()]

    def filter_of(self, name: str) -> FilterReplica | _NoFilter:
        return self.replicas.get(name, NO_FILTER)

    def candidates(self, key: bytes) -> list[str]:
        """Alive, linked peers whose filter may hold ``key``."""
        return [p.name for p, _ in self.alive_linked() if key in self.filter_of(p.name)]

    # -- changing -------------------------------------------------------------

    def admit(self, name: str, address: str, incarnation: int) -> tuple[Peer, bool]:
        """Record a peer that introduced itself; a restarted one loses its old
        link and filter.  Returns (peer, is_new)."""
        peer, is_new = self.membership.admit(name, parse_address(address), incarnation,
                                             time.monotonic())
        if is_new:
            self.drop_link(name)
            log.info("peer %s (%s) joined", name, address)
        return peer, is_new

    def set_link(self, name: str, link: PeerLink) -> None:
        old = self.links.get(name)
        if old is not None and old is not link:
            old.close()
        link.label = name
        self.links[name] = link
        for hook in self._link_hooks:
            hook(name)

    def link_opened(self, name: str) -> None:
        """The peer has a new link to us (it dialled again): it may have lost
        our filter (a paused node), so it gets a whole copy."""
        for hook in self._link_hooks:
            hook(name)

    def link_lost(self, link: PeerLink) -> None:
        for name, current in list(self.links.items()):
            if current is link:
                del self.links[name]
                peer = self.membership.get(name)
                if peer is not None and peer.apply(PeerEvent.LINK_LOST, time.monotonic()):
                    log.warning("lost link to %s: %s", name, peer.state.value)
                    if peer.state is PeerState.DOWN:
                        self.mark_down(peer)

    def mark_down(self, peer: Peer) -> None:
        log.warning("peer %s is down; retrying with backoff", peer.name)
        # What is queued for it stays: if it was only cut off or paused, it
        # still holds copies the invalidations must replace when it is back.
        self.drop_link(peer.name, keep_pending=True)
        self.membership.schedule_retry(peer, time.monotonic())

    def drop_link(self, name: str, keep_pending: bool = False) -> None:
        link = self.links.pop(name, None)
        if link is not None:
            link.close()
        self.replicas.pop(name, None)
        for hook in self._drop_hooks:
            hook(name, keep_pending)

    def leave(self, name: str, why: str = "left the cluster") -> bool:
        """The peer said goodbye (or is to be forgotten): forget it.  False if
        no peer has that name."""
        peer = self.membership.get(name)
        if peer is None:
            return False
        peer.apply(PeerEvent.LEAVE, time.monotonic())
        log.info("peer %s %s", name, why)
        self.drop_link(name)
        self.membership.forget(name)
        return True

    def check_node_id(self, name: str) -> None:
        """Stamps break ties by node id: two names with one id cannot coexist."""
        ident = node_id(name)
        for other in [self.my_name, *self.membership.peers]:
            if other != name and node_id(other) == ident:
                raise PeerRefusedError(
                    f"node name {name!r} has the same id (CRC-32 {ident:08x}) as {other!r}; "
                    "rename one of them")

    def close(self) -> None:
        for link in list(self.links.values()):
            link.close()
        self.links.clear()
