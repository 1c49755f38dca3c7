"""Gossip: this node's filter and its invalidations, pushed to every peer.

Every ``gossip_interval``:

* the filter's change since the last round goes to each alive peer (a full
  copy or a delta: :class:`~olivia.cluster.own_filter.FilterFeed`);
* the invalidations of keys written or deleted here since the last round
  (``key:stamp``) go to each peer, so a peer holding an older copy drops it
  and afterwards the filters route every GET to the newest copy.

Each peer has at most one filter push and one invalidation batch in flight,
and neither waits for the other: a new key's filter bits never queue behind
a bulk load's invalidations.  Invalidations for peers that cannot be reached
are kept (bounded) for when they are back: a node that was only paused may
still hold old copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from olivia.cluster.own_filter import FilterFeed, OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.cluster.placement import Placement
from olivia.config import Config
from olivia.core.errors import OliviaError
from olivia.core.requests import FilterPush, KeyStamps
from olivia.core.slots import slot_of
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import filter_payload, invalidate_payload, peer_line

log = logging.getLogger(__name__)

# Items per INVALIDATE line, so no peer line grows without bound.
BATCH_ITEMS = 2000
# Pending invalidations kept for a peer at most; past it the oldest are dropped
# (logged): a cluster that cannot keep up loses freshness, not memory.
MAX_PENDING_INVALIDATIONS = 1_000_000
LINE_OVERHEAD = 16  # tag, verb and LF, as counted in gossip_bytes


def batches(items: list[tuple[bytes, bytes]]) -> list[KeyStamps]:
    return [tuple(items[i:i + BATCH_ITEMS]) for i in range(0, len(items), BATCH_ITEMS)]


class Gossip:
    """The gossip rounds of one node."""

    def __init__(self, config: Config, table: PeerTable, own_filter: OwnFilter,
                 stats: Stats, tasks: TaskSet, placement: Placement) -> None:
        self._config = config
        # With replicas, a key's homes get the new version itself (olivia.
        # cluster.replication): an invalidation to them would only cost.
        self._placement = placement if config.cluster_replicas else None
        self._table = table
        self._own_filter = own_filter
        self._bloom = own_filter.bloom
        self._stats = stats
        self._tasks = tasks
        self.feed = FilterFeed(self._bloom)
        self.name = ""
        self.running = False
        self._fresh: list[tuple[bytes, bytes]] = []  # since the last round
        self._outbox: dict[str, list[tuple[bytes, bytes]]] = {}  # per peer, not yet sent
        self._pushing_filter: set[str] = set()
        self._pushing_invalidations: dict[str, int] = {}  # name -> items not yet delivered
        table.on_link(self.feed.reset)
        table.on_drop(self._dropped)

    def start(self, name: str) -> None:
        self.name = name
        self.running = True
        self._tasks.spawn(self._loop(), "gossip")

    def announce(self, keys: Iterable[bytes], stamp: bytes) -> None:
        """Queue the invalidations of ``keys``, written or deleted here at ``stamp``."""
        self._fresh.extend([(key, stamp) for key in keys])

    def pending(self) -> int:
        """Invalidations not yet delivered, counted once per peer."""
        waiting = sum(len(outbox) for outbox in self._outbox.values())
        return (len(self._fresh) * len(self._table.membership.peers) + waiting
                + sum(self._pushing_invalidations.values()))

    def _dropped(self, name: str, keep_pending: bool) -> None:
        self.feed.reset(name)
        if not keep_pending:  # it left, or restarted empty
            self._outbox.pop(name, None)

    async def _loop(self) -> None:
        while self.running:
            await asyncio.sleep(self._config.gossip_interval)
            self.round()

    def round(self) -> None:
        table = self._table
        if not table.has_peers():
            return  # alone: a peer that arrives gets a full copy first anyway
        self._own_filter.flush()  # this turn's new keys go out in this round
        self.feed.new_round()
        fresh, self._fresh = self._fresh, []
        homed = self._homed(fresh)
        for peer in table.membership:
            outbox = self._outbox.setdefault(peer.name, [])
            if homed is None:
                outbox.extend(fresh)
            else:
                name = peer.name
                outbox.extend([item for item, homes in zip(fresh, homed, strict=True)
                               if name not in homes])
            if len(outbox) > MAX_PENDING_INVALIDATIONS:
                log.warning("dropping %d invalidations for %s: it is not keeping up",
                            len(outbox) - MAX_PENDING_INVALIDATIONS, peer.name)
                del outbox[:-MAX_PENDING_INVALIDATIONS]
        for peer, _ in table.alive_linked():
            name = peer.name
            if name not in self._pushing_filter:
                data = self.feed.update_for(name)
                if data is not None:
                    self._pushing_filter.add(name)
                    self._tasks.spawn(self._push_filter(name, data, self._bloom.version),
                                      f"filter to {name}")
            if name not in self._pushing_invalidations and self._outbox.get(name):
                invalidations = self._outbox.pop(name)
                self._pushing_invalidations[name] = len(invalidations)
                self._tasks.spawn(self._push_invalidations(name, invalidations),
                                  f"invalidations to {name}")

    def _homed(self, fresh: list[tuple[bytes, bytes]]) -> list[tuple[str, ...]] | None:
        """The homes of each fresh key, when they get copies instead."""
        placement = self._placement
        if placement is None or not fresh:
            return None
        homes = placement.homes
        return [homes(slot_of(key)) for key, _ in fresh]

    def _timeout(self) -> float:
        return max(self._config.lookup_timeout, 1.0)

    async def _push_filter(self, name: str, data: bytes, version: int) -> None:
        """Send one peer our filter change (a full copy or a delta)."""
        try:
            link = self._table.links.get(name)
            if link is None:
                return
            payload = filter_payload(FilterPush(self.name, data))
            self._stats.gossip_messages += 1
            self._stats.gossip_bytes += len(payload) + LINE_OVERHEAD
            try:
                await link.request(peer_line(payload), self._timeout())
                self.feed.acked(name, version)
            except OliviaError as exc:
                # Unknown version, lost update, rejected: a full copy next round.
                self.feed.reset(name)
                log.debug("filter push to %s failed: %s", name, exc)
        finally:
            self._pushing_filter.discard(name)

    async def _push_invalidations(self, name: str,
                                  invalidations: list[tuple[bytes, bytes]]) -> None:
        """Send one peer the invalidations, in order, one batch in flight at a
        time; what is not delivered goes back to the front of its outbox."""
        pending = batches(invalidations)
        try:
            link = self._table.links.get(name)
            if link is None:
                self._requeue(name, pending)
                return
            for index, batch in enumerate(pending):
                payload = invalidate_payload(batch)
                self._stats.gossip_messages += 1
                self._stats.gossip_bytes += len(payload) + LINE_OVERHEAD
                try:
                    await link.request(peer_line(payload), self._timeout())
                except OliviaError as exc:
                    self._requeue(name, pending[index:])
                    log.debug("invalidations to %s failed: %s", name, exc)
                    return
                self._pushing_invalidations[name] -= len(batch)
        finally:
            self._pushing_invalidations.pop(name, None)

    def _requeue(self, name: str, rest: list[KeyStamps]) -> None:
        if self._table.membership.get(name) is None:
            return  # it left: nothing of ours to replace
        items = [item for batch in rest for item in batch]
        self._outbox[name] = items + self._outbox.get(name, [])
