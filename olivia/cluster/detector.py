"""Failure detection: heartbeats, and the timer-driven peer state changes.

Every ``heartbeat_interval`` the detector pings each alive or suspect peer
(in the background: a silent peer's timeout must not delay the timers),
applies the transitions that are due (suspect too long -> down, down long
enough -> redial), redials suspects that lost their link, forgets peers
unreachable for ``forget_after``, and once a second asks a random peer whom
it sees.  The states and transitions themselves are
in :mod:`olivia.cluster.membership`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from olivia.cluster.dialer import Dialer
from olivia.cluster.membership import PeerEvent, PeerState
from olivia.cluster.peer_table import PeerTable
from olivia.core.tasks import TaskSet
from olivia.protocols.line.requests import request_line

log = logging.getLogger(__name__)

EXCHANGE_EVERY = 1.0  # seconds between peer exchanges with a random peer


def _heartbeat(tag: bytes) -> bytes:
    return request_line(b"PING", b"heartbeat", tag)


class FailureDetector:
    """The maintenance loop of one node."""

    def __init__(self, table: PeerTable, dialer: Dialer, tasks: TaskSet,
                 forget_after: float) -> None:
        self._table = table
        self._forget_after = forget_after
        self._dialer = dialer
        self._tasks = tasks
        self._heartbeating = False
        self._last_exchange = 0.0
        self.running = False
        self.after_tick: Callable[[], None] | None = None
        """Called after each tick (states may have changed)."""

    def start(self) -> None:
        self.running = True
        self._tasks.spawn(self._loop(), "maintenance")

    async def _loop(self) -> None:
        timing = self._table.membership.timing
        while self.running:
            await asyncio.sleep(timing.heartbeat_interval)
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        table = self._table
        if not self._heartbeating:
            self._heartbeating = True
            self._tasks.spawn(self._heartbeats(), "heartbeats")
        for peer, event in table.membership.due(now):
            if not peer.apply(event, now):
                continue
            if peer.state is PeerState.DOWN:
                table.mark_down(peer)
            elif peer.state is PeerState.CONNECTING:
                self._dialer.dial(peer, "redial")
        for peer in table.membership:
            if peer.state is PeerState.SUSPECT and peer.name not in table.links:
                self._dialer.dial(peer, "redial")
        for peer in table.membership.unheard_for(now, self._forget_after):
            # Decommissioned, most likely: stop redialling it for ever.
            table.leave(peer.name, f"forgotten: unreachable for {now - peer.last_heard:.0f}s "
                                   f"(forget_after {self._forget_after:g}s)")
        if now - self._last_exchange > EXCHANGE_EVERY and table.links:
            self._last_exchange = now
            self._dialer.exchange_with(random.choice(list(table.links)))
        if self.after_tick is not None:
            self.after_tick()

    async def _heartbeats(self) -> None:
        try:
            await self._heartbeat_round()
        finally:
            self._heartbeating = False

    async def _heartbeat_round(self) -> None:
        table = self._table
        timeout = table.membership.timing.heartbeat_timeout
        targets = [(p, table.links[p.name]) for p in table.membership
                   if p.state in (PeerState.ALIVE, PeerState.SUSPECT) and p.name in table.links]
        if not targets:
            return
        results = await asyncio.gather(
            *(link.request(_heartbeat, timeout) for _, link in targets), return_exceptions=True)
        now = time.monotonic()
        for (peer, _), result in zip(targets, results, strict=True):
            event = (PeerEvent.HEARTBEAT_MISSED if isinstance(result, BaseException)
                     else PeerEvent.HEARTBEAT_OK)
            if peer.apply(event, now):
                log.warning("peer %s is %s", peer.name, peer.state.value)
