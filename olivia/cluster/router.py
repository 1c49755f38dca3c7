"""Routing reads and deletes to the peers whose filters may hold the keys.

A local miss asks only the alive peers whose filter copy matches the key,
never all of them.  The misses of one turn of the event loop (every client's
GETs that missed) go to each peer in one ``REQUEST LOOKUP``, so remote reads
cost one peer round trip per batch, not per key, and the answers are handed
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
from olivia.config import Config
from olivia.core.clock import STAMP_BYTES
from olivia.core.errors import OliviaError
from olivia.core.keyspace import Keyspace
from olivia.core.peers import RemoteFound
from olivia.core.requests import StampedKeys
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

    def __init__(self, config: Config, table: PeerTable, keyspace: Keyspace, stats: Stats,
                 tasks: TaskSet) -> None:
        self._config = config
        self._table = table
        self._keyspace = keyspace
        self._stats = stats
        self._tasks = tasks
        # Per alive peer: its filter and the lookup batch of this turn (None
        # between turns).
        self._turn: list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]] | None = None

    def lookup(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        """Ask the peers whose filters may hold ``keys``; False if there are none.

        Otherwise ``done`` is called once, later, with key -> stored form of
        the keys found, the newest copy where several peers answer.
        """
        waiter: _Waiter | None = None
        probes = 0
        for _, replica, batch in self._targets():
            wanted = [key for key in keys if key in replica]
            if wanted:
                if waiter is None:
                    waiter = _Waiter(keys, done)
                probes += len(wanted)
                waiter.remaining += 1
                batch_keys = batch.keys
                for key in wanted:
                    batch_keys[key] = None
                batch.waiters.append(waiter)
        self._stats.remote_lookups += len(keys)
        self._stats.remote_probes += probes
        return waiter is not None

    def _targets(self) -> list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]]:
        """This turn's alive, linked peers with their filters and batches,
        worked out when the first lookup of the turn comes; the batches go
        out when the turn ends (_send)."""
        targets = self._turn
        if targets is None:
            asyncio.get_running_loop().call_soon(self._send)
            table = self._table
            targets = self._turn = [(peer.name, table.filter_of(peer.name), _LookupBatch())
                                    for peer, _ in table.alive_linked()]
        return targets

    def _send(self) -> None:
        targets, self._turn = self._turn or [], None
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
            # gets an answer: what was found, possibly nothing.
            for waiter in batch.waiters:
                waiter.peer_answered(found, self._stats)

    async def delete(self, keys: Collection[bytes], stamp: bytes) -> set[bytes]:
        """Delete keys on the peers whose filters match; the keys they had."""
        by_peer: dict[str, list[bytes]] = {}
        for key in keys:
            for name in self._table.candidates(key):
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
    """The keys one peer is asked for in one turn of the loop, and who asked."""

    keys: dict[bytes, None] = field(default_factory=dict)  # an ordered set
    waiters: list[_Waiter] = field(default_factory=list)


class _Waiter:
    """One lookup() call: its keys, the peers yet to answer, what they found."""

    __slots__ = ("done", "found", "keys", "remaining")

    def __init__(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> None:
        self.keys = keys
        self.done = done
        self.remaining = 0
        self.found: RemoteFound = {}

    def peer_answered(self, answers: RemoteFound, stats: Stats) -> None:
        found = self.found
        for key in self.keys:
            hit = answers.get(key)
            if hit is not None:
                best = found.get(key)
                if best is None or hit[:STAMP_BYTES] > best[:STAMP_BYTES]:
                    found[key] = hit
        self.remaining -= 1
        if self.remaining == 0:
            stats.remote_hits += len(found)
            try:
                self.done(found)
            except Exception as exc:  # one asker's bug must not starve the others
                log.error("internal error answering a lookup: %r", exc)


def _batches(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + BATCH_ITEMS] for i in range(0, len(items), BATCH_ITEMS)]
