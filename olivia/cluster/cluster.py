"""The cluster of one node: the parts, wired together, behind one object.

:class:`Cluster` is what the command core knows as its
:class:`~olivia.core.peers.Peers`, and what the node's lifecycle starts and
stops.  The work is done by the parts, each in its module:

* :mod:`~olivia.cluster.peer_table`: every peer, its link and its filter copy;
* :mod:`~olivia.cluster.dialer`: joining, handshakes, dial-back, peer exchange;
* :mod:`~olivia.cluster.detector`: heartbeats and the timed state changes;
* :mod:`~olivia.cluster.gossip`: filter pushes and invalidations;
* :mod:`~olivia.cluster.router`: routed lookups and deletes;
* :mod:`~olivia.cluster.placement`: which nodes are each slot's homes;
* :mod:`~olivia.cluster.replication`: a write's copies, before its acknowledgement;
* :mod:`~olivia.cluster.sync`: anti-entropy, repair and hand-over;
* :mod:`~olivia.cluster.peer_verbs`: what the peer dialect's verbs do.

How writes reach other copies (see docs/design.md): a key lives on its
slot's ``replicas + 1`` homes (and, for a while, on the node that accepted
the write).  A write is stored on the homes before it is acknowledged, and
announced to all peers as ``key:stamp``; a peer holding an older copy drops
it.  Anti-entropy repairs what replication missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

from olivia.cluster.detector import FailureDetector
from olivia.cluster.dialer import Dialer, PeerSecurity
from olivia.cluster.discovery import Discovery
from olivia.cluster.forwarding import Forwarding
from olivia.cluster.gossip import Gossip
from olivia.cluster.membership import Membership, PeerState, Timing
from olivia.cluster.own_filter import OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.cluster.peer_verbs import PeerVerbs, peer_verbs
from olivia.cluster.placement import Placement
from olivia.cluster.replication import Replicator
from olivia.cluster.router import Router
from olivia.cluster.sync import AntiEntropy
from olivia.config import Config
from olivia.core.errors import OliviaError
from olivia.core.keyspace import Keyspace
from olivia.core.peers import RemoteFound
from olivia.core.registry import VerbSpec
from olivia.core.requests import Copy, Hello, Result
from olivia.core.session import Guard
from olivia.core.slots import slot_of
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import disconnect_payload, peer_line
from olivia.protocols.line.replies import decode_fields
from olivia.protocols.line.requests import request_line

log = logging.getLogger(__name__)


class Cluster:
    """This node's view of, and traffic with, every other node."""

    def __init__(self, config: Config, keyspace: Keyspace, own_filter: OwnFilter,
                 stats: Stats, guard: Guard | None = None,
                 security: PeerSecurity | None = None) -> None:
        self.config = config
        self.membership = Membership(Timing(
            heartbeat_interval=config.heartbeat_interval,
            # Generous: a node busy with a large pipelined load answers late,
            # and a killed node is caught by its closed link anyway.
            heartbeat_timeout=max(config.heartbeat_interval * 4, 1.0),
            suspect_timeout=config.suspect_timeout,
        ))
        self.table = PeerTable(self.membership)
        self.tasks = TaskSet("cluster")
        self.dialer = Dialer(config, self.table, self.tasks, security)
        self.discovery = Discovery(config, self.dialer.discovered, self.tasks)
        self.detector = FailureDetector(self.table, self.dialer, self.tasks,
                                        config.forget_after)
        self.detector.after_tick = self.members_changed
        self.placement = Placement("", config.cluster_replicas)
        self.gossip = Gossip(config, self.table, own_filter, stats, self.tasks, self.placement)
        self.router = Router(config, self.table, self.placement, keyspace, stats, self.tasks)
        self.sync = AntiEntropy(config, self.table, self.placement, keyspace, stats, self.tasks)
        self.replicator = Replicator(config, self.table, self.placement, stats, self.tasks,
                                     self.sync.guests)
        self.verbs = PeerVerbs(config, self.table, self.dialer, keyspace, own_filter, stats,
                               self.homes_here, self.sync.guests,
                               guard or Guard("", False, stats))
        self.table.on_link(lambda _: self.members_changed())
        self.table.on_drop(lambda _, __: self.members_changed())
        self.table.on_state(self.members_changed)
        self._keyspace = keyspace
        self.incarnation = time.time_ns()
        #: The peers known in any state; its truthiness is checked on every write.
        self.known = self.membership.peers
        # What the core asks on every miss, bound straight to the part that
        # answers (these shadow the methods below, which say what they are).
        self.has_alive_peer = self.table.has_alive_peer  # type: ignore[method-assign]
        self.lookup = self.router.lookup  # type: ignore[method-assign]
        self.replicate = self.replicator.replicate  # type: ignore[method-assign]
        self.replicates = config.cluster_replicas > 0
        self.forwarding = Forwarding(config, self.table, self.placement)
        self.home = self.forwarding.home  # type: ignore[method-assign]
        self.lists_slot = self.forwarding.lists_slot  # type: ignore[method-assign]

    def specs(self) -> list[VerbSpec[Any]]:
        """The peer dialect's registry entries."""
        return peer_verbs(self.verbs)

    # -- lifecycle ----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.dialer.me.name

    def start(self, name: str, advertise: str) -> None:
        me = Hello(name, advertise, self.incarnation)
        self.table.my_name = name
        self.placement.me = name
        self.placement.update(())
        self.dialer.start(me)
        self.discovery.start()
        self.detector.start()
        self.gossip.start(name)
        self.sync.start()

    def members_changed(self) -> None:
        """Peers' states or links may have changed: placement follows the
        alive members, and a change starts an anti-entropy round."""
        if self.placement.me and self.placement.update(
                peer.name for peer in self.membership.alive()):
            log.info("members now %s", ", ".join(self.placement.members))
            self.sync.members_changed()

    def homes_here(self, slot: int) -> bool:
        """Whether this node is one of ``slot``'s homes."""
        return self.placement.home_here(slot)

    async def hand_over(self, timeout: float) -> None:
        """Leaving: push the keys that would lose a copy to their new homes."""
        self.members_changed()
        try:
            sent = await self.sync.hand_over(timeout)
        except TimeoutError:
            log.error("hand-over did not finish in leave_timeout (%gs): some keys may "
                      "have fewer copies", timeout)
            return
        except OliviaError as exc:
            log.error("hand-over failed: %s", exc)
            return
        if sent:
            log.info("handed %d keys over (%s)", sum(sent.values()),
                     ", ".join(f"{count} to {name}" for name, count in sent.items()))

    async def stop(self, timeout: float = 0.5) -> None:
        """Tell every peer we are leaving, then stop all cluster traffic."""
        self.dialer.running = self.detector.running = self.gossip.running = False
        self.discovery.running = False
        self.sync.running = self.router.running = False
        alive = self.table.alive_linked()
        if alive and self.name:
            goodbye = peer_line(disconnect_payload(self.name))
            await asyncio.gather(*(link.request(goodbye, timeout) for _, link in alive),
                                 return_exceptions=True)
            log.info("told %d peers we are leaving", len(alive))
        await self.tasks.cancel(timeout)
        self.table.close()

    # -- what the command core asks (olivia.core.peers.Peers) -------------------

    def has_alive_peer(self) -> bool:
        return self.table.has_alive_peer()

    def lookup(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        return self.router.lookup(keys, done)

    def announce(self, keys: Iterable[bytes], stamp: bytes) -> None:
        if self.known:
            self.gossip.announce(keys, stamp)

    def delete(self, keys: Collection[bytes], stamp: bytes) -> Awaitable[set[bytes]]:
        if self.placement.replicas:
            guests, homes_here = self.sync.guests, self.homes_here
            for key in keys:
                if not homes_here(slot_of(key)):
                    guests[key] = None  # its tombstone is offered to the homes
        return self.router.delete(keys, stamp)

    def replicate(self, stamp: bytes, pairs: Sequence[Sequence[bytes]],
                  ttls: Sequence[float | None] | None) -> Awaitable[None] | None:
        return self.replicator.replicate(stamp, pairs, ttls)

    def home(self, key: bytes) -> str | None:
        return self.forwarding.home(key)

    def execute(self, name: str, verb: str, items: Any) -> Awaitable[Result]:
        return self.forwarding.execute(name, verb, items)

    def fetch(self, keys: Collection[bytes]) -> Awaitable[list[Copy]] | None:
        return self.forwarding.fetch(keys)

    def lists_slot(self, slot: int) -> bool:
        return self.forwarding.lists_slot(slot)

    def members(self) -> tuple[str, ...]:
        return self.placement.members

    def scan_page(self, name: str, position: bytes, count: int,
                  pattern: bytes) -> Awaitable[tuple[bytes, list[bytes]]]:
        return self.forwarding.scan_page(name, position, count, pattern)

    def count_elsewhere(self) -> Awaitable[int] | None:
        return self.forwarding.count_elsewhere()

    async def peer_infos(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Every peer known, its state and address, and the INFO fields of
        those alive (asked over their links; None if one does not answer)."""
        peers = list(self.membership.peers.values())
        links = self.table.links

        async def info_of(name: str) -> dict[str, str] | None:
            link = links.get(name)
            if link is None:
                return None
            try:
                reply = await link.request(lambda tag: request_line(b"INFO", b"", tag), timeout)
            except OliviaError:
                return None
            return dict(decode_fields(reply.payload))

        infos = await asyncio.gather(*(info_of(peer.name) for peer in peers))
        return [{"name": peer.name, "address": peer.address_text, "state": peer.state.value,
                 "info": info} for peer, info in zip(peers, infos, strict=True)]

    # -- INFO -------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, object]]:
        states = self.membership.counts()
        return [
            ("peers", self.table.alive_count()),
            ("invalidations_pending", self.gossip.pending()),
            ("peers_known", sum(states.values())),
            ("peers_suspect", states.get(PeerState.SUSPECT, 0)),
            ("peers_down", states.get(PeerState.DOWN, 0)),
            ("seeds_unreachable", self.dialer.seeds_unreachable()),
            ("replicas", self.placement.replicas),
            ("under_replicated_keys", self.sync.under_replicated()),
            ("tombstones", len(self._keyspace.tombstones)),
        ]
