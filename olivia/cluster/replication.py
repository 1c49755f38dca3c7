"""Replication: a write is acknowledged once its copies are stored.

A node that stores a write sends each key to the key's homes (placement)
other than itself, and the write is acknowledged when every one of them has
stored it: ``replicas`` copies besides this node's when it is a home, one
more when it is not (it keeps its own copy too).  The copies of all the
writes of one turn of the event loop travel to each home in one ``REQUEST
REPLICATE`` (as remote reads do), so a pipeline of SETs costs one round trip
per home and turn, not per SET.  A home that fails or does not answer in
time is replaced, for the keys it was sent, by the next member in the slot's
rank (the node that becomes a home once the failed one is marked down); with
no member left, the write is acknowledged with the copies it has: there is
nobody else to hold one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from olivia.cluster.peer_table import PeerTable
from olivia.cluster.placement import Placement
from olivia.config import Config
from olivia.core.errors import OliviaError
from olivia.core.requests import Copy
from olivia.core.slots import slot_of
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import copies_payload, peer_line

log = logging.getLogger(__name__)

BATCH_ITEMS = 2000  # copies per REQUEST REPLICATE line at most
BATCH_BYTES = 8 << 20  # and bytes of values


def replicate_timeout(config: Config) -> float:
    """Seconds a home may take to store copies before they go elsewhere: as
    long as a lookup may wait (a paused home is suspected about then)."""
    return max(config.lookup_timeout, 1.0)


class _Write:
    """One write waiting for its copies: per home, the copies sent there."""

    __slots__ = ("future", "waiting")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.waiting: dict[str, list[Copy]] = {}

    def stored(self, name: str) -> None:
        self.waiting.pop(name, None)
        if not self.waiting and not self.future.done():
            self.future.set_result(None)


@dataclass(slots=True)
class _Batch:
    """The copies one home gets this turn, and the writes that wait for them."""

    copies: list[Copy] = field(default_factory=list)
    writes: list[_Write] = field(default_factory=list)


class Replicator:
    """The copies of this node's writes, on their way to the keys' homes."""

    def __init__(self, config: Config, table: PeerTable, placement: Placement,
                 stats: Stats, tasks: TaskSet, guests: dict[bytes, None]) -> None:
        self.replicas = config.cluster_replicas
        self._timeout = replicate_timeout(config)
        self._guests = guests  # written here, homed elsewhere (olivia.cluster.sync)
        self._table = table
        self._placement = placement
        self._stats = stats
        self._tasks = tasks
        self._turn: dict[str, _Batch] | None = None

    def replicate(self, stamp: bytes, pairs: Sequence[Sequence[bytes]],
                  ttls: Sequence[float | None] | None) -> asyncio.Future[None] | None:
        """Send (key, value) pairs written at ``stamp`` to their homes; a
        future done when they are stored there, or None when no copy is owed
        (replication off, or no other member alive)."""
        placement = self._placement
        if not self.replicas or len(placement.members) < 2:
            return None
        me = placement.me
        homes_of = placement.homes
        guests = self._guests
        write = _Write(asyncio.get_running_loop().create_future())
        for index, pair in enumerate(pairs):
            key = pair[0]
            copy = Copy(key, pair[1], stamp, ttls[index] if ttls is not None else None)
            homes = homes_of(slot_of(key))
            if me not in homes:
                guests[key] = None  # this copy is handed on and forgotten later
            for name in homes:
                if name != me:
                    self._send(name, copy, write)
        if not write.waiting:
            return None  # every key's only home is this node
        return write.future

    def _send(self, name: str, copy: Copy, write: _Write) -> None:
        turn = self._turn
        if turn is None:
            turn = self._turn = {}
            asyncio.get_running_loop().call_soon(self._flush)
        batch = turn.get(name)
        if batch is None:
            batch = turn[name] = _Batch()
        batch.copies.append(copy)
        waiting = write.waiting.get(name)
        if waiting is None:
            write.waiting[name] = waiting = []
            batch.writes.append(write)
        waiting.append(copy)

    def _flush(self) -> None:
        turn, self._turn = self._turn or {}, None
        for name, batch in turn.items():
            self._tasks.spawn(self._deliver(name, batch), f"replicate to {name}")

    async def _deliver(self, name: str, batch: _Batch) -> None:
        try:
            link = self._table.links.get(name)
            if link is None:
                raise OliviaError(f"no link to {name}")
            for chunk in _chunks(batch.copies):
                await link.request(peer_line(copies_payload(b"REPLICATE", chunk)),
                                   self._timeout)
            self._stats.replicated_keys += len(batch.copies)
        except OliviaError as exc:
            log.debug("replication to %s failed: %s", name, exc)
            self._elsewhere(name, batch)
            return
        for write in batch.writes:
            write.stored(name)

    def _elsewhere(self, failed: str, batch: _Batch) -> None:
        """The copies ``failed`` did not take go to the next member in rank."""
        placement = self._placement
        for write in batch.writes:
            copies = write.waiting.get(failed, [])
            for copy in copies:
                tried = set(write.waiting) | {placement.me, failed}
                fallback = next((name for name in placement.ranked(slot_of(copy.key))
                                 if name not in tried and name in self._table.links), None)
                if fallback is not None:
                    self._send(fallback, copy, write)
            write.stored(failed)  # whatever it holds, nothing more is waited for from it


def _chunks(copies: list[Copy]) -> list[list[Copy]]:
    chunks: list[list[Copy]] = [[]]
    size = 0
    for copy in copies:
        length = len(copy.key) + len(copy.value or b"")
        if chunks[-1] and (len(chunks[-1]) >= BATCH_ITEMS or size + length > BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(copy)
        size += length
    return chunks
