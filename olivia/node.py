"""What a node does with a command: the verb table, the store, expiry, INFO.

The server turns bytes into commands with :mod:`olivia.protocol` and hands
each one to :meth:`Node.execute`, which returns the reply bytes.  Nothing here
reads or writes a socket, so the command semantics are tested without one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from olivia import __version__
from olivia.config import Config
from olivia.errors import ReplyTooLargeError
from olivia.protocol import (
    Bye,
    Command,
    Del,
    Deleted,
    Fulfilled,
    Get,
    Got,
    Info,
    InfoReply,
    Ping,
    Pong,
    Quit,
    RequestBloomFilter,
    RequestPeers,
    Sat,
    SatEx,
    Set,
    SetEx,
    encode_reply,
    error_line,
)
from olivia.store import Store

log = logging.getLogger(__name__)

# Evict at most this many keys per timer callback, so a mass expiry never
# holds the event loop for long; the rest follow on the next loop iteration.
EXPIRY_BATCH = 2000


@dataclass
class Stats:
    """Counters behind INFO; plain attribute increments on the hot path."""

    started_at: float
    connected_clients: int = 0
    total_connections: int = 0
    total_commands: int = 0
    rejected_connections: int = 0
    remote_lookups: int = 0
    remote_probes: int = 0
    remote_hits: int = 0


def resident_memory() -> int:
    """Resident set size of this process in bytes (peak RSS where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Node:
    """One node's state and command semantics."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.name = config.name
        self.store = store if store is not None else Store()
        self.stats = Stats(started_at=time.monotonic())
        self.event_loop_name = "none"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = float("inf")
        self._handlers: dict[type, Callable[[Any], bytes]] = {
            Set: self._set,
            SetEx: self._setex,
            Get: self._get,
            Del: self._del,
            Ping: self._ping,
            Info: self._info,
            Quit: self._quit,
            RequestPeers: self._request_peers,
            RequestBloomFilter: self._request_bloomfilter,
        }

    # -- lifecycle ----------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self.name = name
        self.event_loop_name = type(loop).__module__.split(".")[0]
        self._schedule_expiry()

    def close(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        self._loop = None

    # -- commands -----------------------------------------------------------

    def execute(self, command: Command) -> bytes:
        """Carry out one command and return its reply line."""
        return self._handlers[type(command)](command)

    def _set(self, command: Set) -> bytes:
        store_set = self.store.set
        for key, value in command.items:
            store_set(key, value)
        return encode_reply(Sat(command.items, command.tag))

    def _setex(self, command: SetEx) -> bytes:
        earliest = float("inf")
        for item in command.items:
            earliest = min(earliest, self.store.set_with_ttl(item.key, item.value, item.ttl))
        if earliest < self._expiry_at:
            self._schedule_expiry()
        return encode_reply(SatEx(command.items, command.tag))

    def _get(self, command: Get) -> bytes:
        store_get = self.store.get
        found = []
        size = 0
        for key in command.keys:
            value = store_get(key)
            if value is not None:
                found.append((key, value))
                size += len(value)
        if size > self.config.max_reply_bytes:
            raise ReplyTooLargeError(
                f"GET reply too large: {size} bytes of values, over max_reply_bytes "
                f"({self.config.max_reply_bytes}); ask for fewer keys at a time")
        return encode_reply(Got(tuple(found), command.tag))

    def _del(self, command: Del) -> bytes:
        store_delete = self.store.delete
        deleted = tuple(key for key in command.keys if store_delete(key))
        return encode_reply(Deleted(deleted, command.tag))

    def _ping(self, command: Ping) -> bytes:
        return encode_reply(Pong(command.text, command.tag))

    def _quit(self, command: Quit) -> bytes:
        return encode_reply(Bye(command.tag))

    def _info(self, command: Info) -> bytes:
        return encode_reply(InfoReply(tuple(self.info().items()), command.tag))

    def _request_peers(self, command: RequestPeers) -> bytes:
        # A single node sees no peers; the cluster issue fills this in.
        return encode_reply(Fulfilled(b"", command.tag))

    def _request_bloomfilter(self, command: RequestBloomFilter) -> bytes:
        return error_line("REQUEST BLOOMFILTER is not available: this build has no filter yet",
                          command.tag)

    # -- INFO ---------------------------------------------------------------

    def info(self) -> dict[str, str]:
        """The INFO fields, in a stable order (contract fields first)."""
        self._evict_due(limit=None)  # so 'keys' counts live keys only
        stats, store = self.stats, self.store
        fields: dict[str, object] = {
            "name": self.name,
            "version": __version__,
            "uptime_s": int(time.monotonic() - stats.started_at),
            "keys": len(store),
            "peers": 0,
            "connected_clients": stats.connected_clients,
            "used_memory": resident_memory(),
            "expired_keys": store.expired_count,
            "remote_lookups": stats.remote_lookups,
            "remote_probes": stats.remote_probes,
            "remote_hits": stats.remote_hits,
            "bloom_bits": 0,
            "bloom_hashes": 0,
            "bloom_fp_estimate": 0,
            "pid": os.getpid(),
            "event_loop": self.event_loop_name,
            "total_connections_received": stats.total_connections,
            "rejected_connections": stats.rejected_connections,
            "total_commands_processed": stats.total_commands,
            "max_line_bytes": self.config.max_line_bytes,
        }
        return {name: str(value) for name, value in fields.items()}

    # -- expiry -------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        """(Re)arm one timer for the earliest deadline on the store's heap."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        deadline = self.store.next_deadline()
        self._expiry_at = float("inf") if deadline is None else deadline
        if deadline is None or self._loop is None:
            return
        delay = max(0.0, deadline - self.store.clock())
        self._expiry_timer = self._loop.call_later(delay, self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        self._evict_due(limit=EXPIRY_BATCH)
        self._schedule_expiry()

    def _evict_due(self, limit: int | None) -> None:
        evicted = self.store.expire_due(limit)
        if evicted:
            log.debug("expired %d keys", len(evicted))
