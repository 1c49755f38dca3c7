"""Routing reads and deletes to the peers whose filters may hold the keys.

A local miss asks only the alive peers whose filter copy matches the key,
never all of them, and one at a time: the key's homes first (where its
copies belong), the next only if that one misses.  The misses of one turn
of the event loop (every client's GETs that missed) go to each peer in one
``REQUEST LOOKUP``, so remote reads cost one peer round trip per batch,
not per key, and the answers are handed
out with plain calls, not one future per GET.  A peer that fails or times out
contributes nothing; no lookup waits longer than ``lookup_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from olivia.cluster.bloom import FilterReplica
from olivia.cluster.links import PeerTimeoutError, PeerUnavailableError
from olivia.cluster.peer_table import PeerTable, _NoFilter
from olivia.cluster.placement import Placement
from olivia.config import Config
from olivia.core.clock import STAMP_BYTES
from olivia.core.errors import OliviaError
from olivia.core.keyspace import Keyspace
from olivia.core.peers import RemoteFound
from olivia.core.requests import StampedKeys
from olivia.core.slots import slot_of
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import (
    delete_payload,
    lookup_payload,
    peer_line,
    split_found,
)
from olivia.protocols.line.replies import ReplyLine, decode_keys

log = logging.getLogger(__name__)

# Keys per LOOKUP or DELETE line, so no peer line grows without bound.
BATCH_ITEMS = 2000


class Router:
    """Remote lookups and deletes of one node."""

    def __init__(self, config: Config, table: PeerTable, placement: Placement,
                 keyspace: Keyspace, stats: Stats, tasks: TaskSet) -> None:
        self._config = config
        self._table = table
        self._placement = placement
        self.running = True  # false once stopping: a miss asks no further peer
        self._keyspace = keyspace
        self._stats = stats
        self._tasks = tasks
        # Per alive peer: its filter and the lookup batch of this turn, and
        # the batches by name (None between turns).
        self._turn: tuple[list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]],
                          dict[str, _LookupBatch]] | None = None

    def lookup(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        """Ask the peers whose filters may hold ``keys``; False if there are none.

        Otherwise ``done`` is called once, later, with key -> stored form of
        the keys found.  A key several filters match is asked of one peer at
        a time, its homes first (placement), the next only if that one
        misses: with copies on several nodes a hit still costs one probe.
        """
        waiter: _Waiter | None = None
        targets, by_name = self._targets()
        ranked = self._placement.ranked
        for key in keys:
            names = [name for name, replica, _ in targets if key in replica]
            if not names:
                continue
            if len(names) > 1:
                order = ranked(slot_of(key))
                names.sort(key=lambda name: order.index(name) if name in order else len(order))
            if waiter is None:
                waiter = _Waiter(keys, done)
            waiter.remaining += 1
            self._ask_next(key, names, waiter, by_name)
        self._stats.remote_lookups += len(keys)
        return waiter is not None

    def _ask_next(self, key: bytes, names: list[str], waiter: _Waiter,
                  by_name: dict[str, _LookupBatch]) -> bool:
        """Put ``key`` in the batch of the first of ``names`` still alive this
        turn (the rest stay for a miss); False if there is none."""
        while names:
            batch = by_name.get(names.pop(0))
            if batch is not None:
                batch.keys[key] = None
                batch.asks.append((waiter, key, names))
                self._stats.remote_probes += 1
                return True
        return False

    def _targets(self) -> tuple[list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]],
                                dict[str, _LookupBatch]]:
        """This turn's alive, linked peers with their filters and batches,
        worked out when the first lookup of the turn comes; the batches go
        out when the turn ends (_send)."""
        turn = self._turn
        if turn is None:
            asyncio.get_running_loop().call_soon(self._send)
            table = self._table
            targets = [(peer.name, table.filter_of(peer.name), _LookupBatch())
                       for peer, _ in table.alive_linked()]
            turn = self._turn = (targets, {name: batch for name, _, batch in targets})
        return turn

    def _send(self) -> None:
        targets, _ = self._turn or ([], {})
        self._turn = None
        for name, _, batch in targets:
            if batch.keys:
                self._tasks.spawn(self._run_lookup(name, batch), f"lookup on {name}")

    async def _run_lookup(self, name: str, batch: _LookupBatch) -> None:
        found: RemoteFound = {}
        try:
            chunks = _batches(list(batch.keys))
            self._stats.lookup_messages += len(chunks)
            results = await asyncio.gather(
                *(self._ask(name, lookup_payload(chunk)) for chunk in chunks),
                return_exceptions=True)
            for result in results:
                if not isinstance(result, ReplyLine):
                    continue
                try:
                    answered = split_found(result.payload)
                except OliviaError as exc:
                    log.warning("bad LOOKUP reply from %s: %s", name, exc)
                    continue
                found.update(answered)
                if answered:
                    self._keyspace.observe(max(s[:STAMP_BYTES] for s in answered.values()))
        finally:
            # Whatever happened (even cancellation at shutdown), every asker
            # gets an answer: what was found, or the next candidate's.
            self._answered(batch, found)

    def _answered(self, batch: _LookupBatch, found: RemoteFound) -> None:
        by_name: dict[str, _LookupBatch] | None = None
        for waiter, key, rest in batch.asks:
            hit = found.get(key)
            if hit is None and rest and self.running:
                if by_name is None:
                    by_name = self._targets()[1]
                if self._ask_next(key, rest, waiter, by_name):
                    continue
            waiter.key_answered(key, hit, self._stats)

    async def delete(self, keys: Collection[bytes], stamp: bytes) -> set[bytes]:
        """Delete keys on the peers whose filters match and on the keys'
        homes (which keep the tombstones); the keys they had."""
        table = self._table
        alive = [(peer.name, table.filter_of(peer.name)) for peer, _ in table.alive_linked()]
        homes = self._placement.homes
        by_peer: dict[str, list[bytes]] = {}
        for key in keys:
            key_homes = homes(slot_of(key)) if self._placement.replicas else ()
            for name, replica in alive:
                if key in replica or name in key_homes:
                    by_peer.setdefault(name, []).append(key)
        deleted: set[bytes] = set()
        if not by_peer:
            return deleted
        requests = [(name, delete_payload(StampedKeys(stamp, tuple(chunk))))
                    for name, peer_keys in by_peer.items() for chunk in _batches(peer_keys)]
        self._stats.lookup_messages += len(requests)
        results = await asyncio.gather(*(self._ask(name, payload) for name, payload in requests),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, ReplyLine):
                deleted.update(decode_keys(result.payload))
        return deleted

    async def _ask(self, name: str, payload: bytes) -> ReplyLine:
        link = self._table.links.get(name)
        if link is None:
            raise PeerUnavailableError(f"no link to {name}")
        try:
            return await link.request(peer_line(payload), self._config.lookup_timeout)
        except PeerTimeoutError:
            log.warning("peer %s did not answer a lookup in %.2fs", name,
                        self._config.lookup_timeout)
            raise


@dataclass(slots=True)
class _LookupBatch:
    """The keys one peer is asked for in one turn of the loop, and who asked:
    (waiter, key, the candidates left for that key if this peer misses)."""

    keys: dict[bytes, None] = field(default_factory=dict)  # an ordered set
    asks: list[tuple[_Waiter, bytes, list[str]]] = field(default_factory=list)


class _Waiter:
    """One lookup() call: its keys, how many are still asked, what was found."""

    __slots__ = ("done", "found", "keys", "remaining")

    def __init__(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> None:
        self.keys = keys
        self.done = done
        self.remaining = 0
        self.found: RemoteFound = {}

    def key_answered(self, key: bytes, hit: bytes | None, stats: Stats) -> None:
        if hit is not None:
            self.found[key] = hit
        self.remaining -= 1
        if self.remaining == 0:
            stats.remote_hits += len(self.found)
            try:
                self.done(self.found)
            except Exception as exc:  # one asker's bug must not starve the others
                log.error("internal error answering a lookup: %r", exc)


def _batches(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + BATCH_ITEMS] for i in range(0, len(items), BATCH_ITEMS)]
