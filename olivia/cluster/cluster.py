"""The cluster of one node: the parts, wired together, behind one object.

:class:`Cluster` is what the command core knows as its
:class:`~olivia.core.peers.Peers`, and what the node's lifecycle starts and
stops.  The work is done by the parts, each in its module:

* :mod:`~olivia.cluster.peer_table`: every peer, its link and its filter copy;
* :mod:`~olivia.cluster.dialer`: joining, handshakes, dial-back, peer exchange;
* :mod:`~olivia.cluster.detector`: heartbeats and the timed state changes;
* :mod:`~olivia.cluster.gossip`: filter pushes and invalidations;
* :mod:`~olivia.cluster.router`: routed lookups and deletes;
* :mod:`~olivia.cluster.peer_verbs`: what the peer dialect's verbs do.

How writes reach other copies (see docs/design.md): a key lives on the node
that last wrote it.  Every write or delete is announced to all peers as
``key:stamp``; a peer holding an older copy drops it, so afterwards the
filters route every GET to the newest copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

from olivia.cluster.detector import FailureDetector
from olivia.cluster.dialer import Dialer
from olivia.cluster.gossip import Gossip
from olivia.cluster.membership import Membership, PeerState, Timing
from olivia.cluster.own_filter import OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.cluster.peer_verbs import PeerVerbs, peer_verbs
from olivia.cluster.router import Router
from olivia.config import Config
from olivia.core.keyspace import Keyspace
from olivia.core.peers import RemoteFound
from olivia.core.registry import VerbSpec
from olivia.core.requests import Hello
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import disconnect_payload, peer_line

log = logging.getLogger(__name__)


class Cluster:
    """This node's view of, and traffic with, every other node."""

    def __init__(self, config: Config, keyspace: Keyspace, own_filter: OwnFilter,
                 stats: Stats) -> None:
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
        self.dialer = Dialer(config, self.table, self.tasks)
        self.detector = FailureDetector(self.table, self.dialer, self.tasks,
                                        config.forget_after)
        self.gossip = Gossip(config, self.table, own_filter, stats, self.tasks)
        self.router = Router(config, self.table, keyspace, stats, self.tasks)
        self.verbs = PeerVerbs(config, self.table, self.dialer, keyspace, own_filter, stats)
        self.incarnation = time.time_ns()
        #: The peers known in any state; its truthiness is checked on every write.
        self.known = self.membership.peers
        # What the core asks on every miss, bound straight to the part that
        # answers (these shadow the methods below, which say what they are).
        self.has_alive_peer = self.table.has_alive_peer  # type: ignore[method-assign]
        self.lookup = self.router.lookup  # type: ignore[method-assign]

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
        self.dialer.start(me)
        self.detector.start()
        self.gossip.start(name)

    async def stop(self, timeout: float = 0.5) -> None:
        """Tell every peer we are leaving, then stop all cluster traffic."""
        self.dialer.running = self.detector.running = self.gossip.running = False
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
        return self.router.delete(keys, stamp)

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
        ]
