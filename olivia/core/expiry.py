"""Evicting keys whose TTL has passed, without anyone reading them.

The store removes an expired key lazily when it is read; this timer makes
sure the others go too (and leave the filter): one timer, armed for the
earliest deadline on the store's heap, evicting at most EXPIRY_BATCH keys per
callback so that a mass expiry never holds the event loop for long.
"""

from __future__ import annotations

import asyncio
import logging

from olivia.core.store import Store

log = logging.getLogger(__name__)

# Evict at most this many keys per timer callback; the rest follow on the
# next loop iteration.
EXPIRY_BATCH = 2000


class ExpiryTimer:
    """One timer for the store's earliest deadline."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = float("inf")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    def deadline_added(self) -> None:
        """A key got a TTL: re-arm if it is due before the armed time."""
        deadline = self._store.next_deadline()
        if deadline is not None and deadline < self._armed_for:
            self._arm()

    def evict_due(self, limit: int | None = EXPIRY_BATCH) -> None:
        evicted = self._store.expire_due(limit)
        if evicted:
            log.debug("expired %d keys", len(evicted))

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._store.next_deadline()
        self._armed_for = float("inf") if deadline is None else deadline
        if deadline is None or self._loop is None:
            return
        delay = max(0.0, deadline - self._store.clock())
        self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.evict_due()
        self._arm()
