"""What a node does with a command: the verb table, the store, expiry, INFO.

The server turns bytes into commands with :mod:`olivia.protocol` and hands
each one to :meth:`Node.execute`, which returns the reply: bytes, or a
future of bytes when peers must be asked first (a GET or DEL that misses
locally).  Nothing here reads or writes a socket.

Every stored value starts with the 12-byte version stamp of the write that
made it (:mod:`olivia.clock`); the store itself only sees bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from olivia import __version__
from olivia.bloom import BloomFilter
from olivia.clock import STAMP_BYTES, HybridClock
from olivia.cluster import Cluster
from olivia.config import Config
from olivia.errors import ProtocolError, ReplyTooLargeError
from olivia.membership import PeerState
from olivia.own_filter import OwnFilter
from olivia.protocol import (
    Bye,
    Command,
    Del,
    Deleted,
    Fulfilled,
    Get,
    Info,
    InfoReply,
    Ping,
    Pong,
    Quit,
    RequestBloomFilter,
    RequestConnect,
    RequestDelete,
    RequestDisconnect,
    RequestFilter,
    RequestInvalidate,
    RequestLookup,
    RequestPeers,
    Sat,
    SatEx,
    Set,
    SetEx,
    encode_field,
    encode_reply,
    got_line,
    join_found,
    join_keys,
    plain_items,
    plain_keys,
)
from olivia.stats import Stats, resident_memory
from olivia.store import Store

Reply = bytes | asyncio.Future[bytes]

log = logging.getLogger(__name__)

# Evict at most this many keys per timer callback, so a mass expiry never
# holds the event loop for long; the rest follow on the next loop iteration.
EXPIRY_BATCH = 2000


class Node:
    """One node's state and command semantics."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.name = config.name or f"{config.host}:{config.port}"
        self.bloom = BloomFilter(config.bloom_capacity, config.bloom_fp_rate)
        self.store = store if store is not None else Store()
        self.own_filter = OwnFilter(self.bloom, self.store)
        self.clock = HybridClock(self.name)
        self.stats = Stats(started_at=time.monotonic())
        self.cluster: Cluster | None = None
        self.event_loop_name = "none"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = float("inf")
        self._batch_stamp: bytes | None = None
        # Bound once: the plain lane calls them for nearly every request.
        self._store_get = self.store.get
        self._store_set_many = self.store.set_many
        # A stored value longer than this could not go out in one GOT line.
        self._max_stored_reply = config.max_reply_bytes + STAMP_BYTES
        # Verb -> plain-lane handler, tried by the server before parse_request.
        self.plain_handlers: dict[bytes, Callable[[bytes], Reply | None]] = {
            b"GET": self.get_plain,
            b"SET": self.set_plain,
        }
        self._handlers: dict[type, Callable[[Any], Reply]] = {
            Set: self._set,
            SetEx: self._setex,
            Get: self._get,
            Del: self._del,
            Ping: self._ping,
            Info: self._info,
            Quit: self._quit,
            RequestPeers: self._request_peers,
            RequestBloomFilter: self._request_bloomfilter,
            RequestConnect: self._request_connect,
            RequestDisconnect: self._request_disconnect,
            RequestLookup: self._request_lookup,
            RequestDelete: self._request_delete,
            RequestInvalidate: self._request_invalidate,
            RequestFilter: self._request_filter,
        }

    # -- lifecycle ----------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, name: str, advertise: str) -> None:
        """Begin serving as ``name``; join the cluster through the configured seeds."""
        self._loop = loop
        self.name = name
        self.clock = HybridClock(name)
        self._batch_stamp = None
        self.event_loop_name = type(loop).__module__.split(".")[0]
        self.own_filter.attach(loop)
        self.cluster = Cluster(self.config, name, advertise, self.store, self.own_filter,
                               self.clock, self.stats)
        self.cluster.start()
        self._schedule_expiry()

    async def leave(self) -> None:
        """Tell the peers we are going and stop all cluster traffic."""
        if self.cluster is not None:
            await self.cluster.stop()

    def close(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        self.own_filter.attach(None)
        self._loop = None

    # -- commands -----------------------------------------------------------

    def execute(self, command: Command) -> Reply:
        """Carry out one command; its reply line, or a future of it."""
        return self._handlers[type(command)](command)

    def _announcer(self) -> Callable[[bytes, bytes], None] | None:
        cluster = self.cluster
        return cluster.note_write if cluster is not None and cluster.has_peers() else None

    # The plain lane (see olivia.protocol.plain_items): the server tries these
    # first for untagged GET and SET lines.  None means "not plain": the line
    # then goes through parse_request and execute.  Only a GET may answer with
    # a future (a one-key GET that asks the peers).

    def set_plain(self, args: bytes) -> bytes | None:
        """``SET`` of arguments that need no decoding; they are stored and echoed as sent."""
        pairs = plain_items(args)
        if pairs is None:
            return None
        self._store(pairs)
        return b"".join((b":SAT ", args, b"\n"))

    def get_plain(self, args: bytes) -> Reply | None:
        """``GET`` of keys that need no decoding, answered from wire-form values."""
        keys = plain_keys(args)
        if keys is None:
            return None
        store_get = self._store_get
        if len(keys) == 1:
            stored = store_get(args)
            if stored is None:
                if self._peers_alive():
                    return self._get_one_remote(args, keys)
                return b":GOT\n"
            if len(stored) <= self._max_stored_reply:
                return b"".join((b":GOT ", args, b":", stored[STAMP_BYTES:], b"\n"))
            return None
        found = []
        for key in keys:
            stored = store_get(key)
            if stored is not None:
                found.append(key + b":" + stored[STAMP_BYTES:])
            elif self._peers_alive():
                return None  # the general path asks the peers
        payload = b",".join(found)
        if len(payload) > self.config.max_reply_bytes:
            return None  # the general path words the error
        return b":GOT " + payload + b"\n" if payload else b":GOT\n"

    def _stamp(self) -> bytes:
        """The version stamp of this batch's writes (see end_batch)."""
        stamp = self._batch_stamp
        if stamp is None:
            stamp = self._batch_stamp = self.clock.now()
        return stamp

    def end_batch(self) -> None:
        """Called by the server after each batch of lines it executed in one go.

        All writes of one batch share one stamp: they are one version, as if
        made at the same instant, which they are as far as any other node can
        tell (nothing else runs between them, so no stamp is observed in
        between).  A SET then costs one clock read per batch, not one each.
        """
        self._batch_stamp = None

    def _peers_alive(self) -> bool:
        cluster = self.cluster
        return cluster is not None and cluster.has_alive_peer()

    def _store(self, pairs: Sequence[Sequence[bytes]]) -> None:
        """Store (key, wire-form value) pairs under this batch's stamp; tell the peers."""
        stamp = self._batch_stamp or self._stamp()
        self._store_set_many(pairs, stamp)
        cluster = self.cluster
        if cluster is not None and cluster.membership.peers:
            cluster.note_writes(pairs, stamp)

    def _set(self, command: Set) -> bytes:
        self._store([(key, encode_field(value)) for key, value in command.items])
        return encode_reply(Sat(command.items, command.tag))

    def _setex(self, command: SetEx) -> bytes:
        stamp = self._stamp()
        store_set, announce = self.store.set_with_ttl, self._announcer()
        for item in command.items:
            store_set(item.key, stamp + encode_field(item.value), item.ttl)
            if announce is not None:
                announce(item.key, stamp)
        deadline = self.store.next_deadline()
        if deadline is not None and deadline < self._expiry_at:
            self._schedule_expiry()
        return encode_reply(SatEx(command.items, command.tag))

    def _get(self, command: Get) -> Reply:
        store_get = self.store.get
        found: dict[bytes, bytes] = {}
        misses = []
        for key in command.keys:
            stored = store_get(key)
            if stored is None:
                misses.append(key)
            else:
                found[key] = stored[STAMP_BYTES:]
        if not misses or not self._peers_alive():
            return self._got(command, found)
        return self._get_remote(command, found, misses)

    def _get_remote(self, command: Get, found: dict[bytes, bytes], misses: list[bytes]) -> Reply:
        """The GOT reply once the peers whose filters match have answered for
        ``misses``; at once if no filter matches."""
        assert self._loop is not None and self.cluster is not None
        reply: asyncio.Future[bytes] = self._loop.create_future()

        def answered(remote: dict[bytes, tuple[bytes, bytes]]) -> None:
            if reply.done():
                return  # the client went away and the reply was cancelled
            for key, (value, _) in remote.items():
                found[key] = value
            try:
                reply.set_result(self._got(command, found))
            except ProtocolError as exc:
                reply.set_exception(exc)

        if not self.cluster.lookup(misses, answered):
            return self._got(command, found)
        return reply

    def _get_one_remote(self, key: bytes, keys: list[bytes]) -> Reply:
        """_get_remote for the plain lane's one-key GET, without a command
        object: under a remote-read load this runs once per request."""
        assert self._loop is not None and self.cluster is not None
        reply: asyncio.Future[bytes] = self._loop.create_future()

        def answered(remote: dict[bytes, tuple[bytes, bytes]]) -> None:
            if not reply.done():  # else the client went away
                hit = remote.get(key)
                reply.set_result(b":GOT\n" if hit is None
                                 else b"".join((b":GOT ", key, b":", hit[0], b"\n")))

        if not self.cluster.lookup(keys, answered):
            return b":GOT\n"
        return reply

    def _got(self, command: Get, found: dict[bytes, bytes]) -> bytes:
        """The GOT line for ``found`` (key -> wire-form value), in the order asked."""
        items = [(key, found[key]) for key in command.keys if key in found]
        size = sum(len(value) for _, value in items)
        if size > self.config.max_reply_bytes:
            raise ReplyTooLargeError(
                f"GET reply too large: {size} bytes of values, over max_reply_bytes "
                f"({self.config.max_reply_bytes}); ask for fewer keys at a time", command.tag)
        return got_line(items, command.tag)

    def _del(self, command: Del) -> Reply:
        stamp = self._stamp()
        announce = self._announcer()
        deleted, misses = set(), []
        for key in command.keys:
            if self._delete_local(key):
                deleted.add(key)
            else:
                misses.append(key)
            if announce is not None:
                announce(key, stamp)
        if not misses or not self._peers_alive():
            return self._deleted(command, deleted)
        return self._defer(self._del_remote(command, deleted, misses, stamp))

    async def _del_remote(self, command: Del, deleted: set[bytes], misses: list[bytes],
                          stamp: bytes) -> bytes:
        assert self.cluster is not None
        deleted |= await self.cluster.delete(dict.fromkeys(misses), stamp)
        return self._deleted(command, deleted)

    def _deleted(self, command: Del, deleted: set[bytes]) -> bytes:
        listed = tuple(dict.fromkeys(key for key in command.keys if key in deleted))
        return encode_reply(Deleted(listed, command.tag))

    def _delete_local(self, key: bytes) -> bool:
        return self.store.delete(key)

    def _defer(self, coro: Any) -> asyncio.Future[bytes]:
        """Run a reply that needs peers; the connection's reply queue holds it."""
        assert self._loop is not None
        return self._loop.create_task(coro)

    def _ping(self, command: Ping) -> bytes:
        return encode_reply(Pong(command.text, command.tag))

    def _quit(self, command: Quit) -> bytes:
        return encode_reply(Bye(command.tag))

    def _info(self, command: Info) -> bytes:
        return encode_reply(InfoReply(tuple(self.info().items()), command.tag))

    # -- the peer dialect ---------------------------------------------------------

    def _cluster(self) -> Cluster:
        if self.cluster is None:
            raise ProtocolError("this node is not serving a cluster yet")
        return self.cluster

    def _request_peers(self, command: RequestPeers) -> bytes:
        addresses = self.cluster.alive_addresses() if self.cluster is not None else []
        return encode_reply(Fulfilled(",".join(addresses).encode(), command.tag))

    def _request_bloomfilter(self, command: RequestBloomFilter) -> bytes:
        self.own_filter.flush()
        return encode_reply(Fulfilled(self.bloom.encode_full(), command.tag))

    def _request_connect(self, command: RequestConnect) -> bytes:
        return encode_reply(Fulfilled(self._cluster().on_connect(command), command.tag))

    def _request_disconnect(self, command: RequestDisconnect) -> bytes:
        self._cluster().on_disconnect(command.name)
        return encode_reply(Fulfilled(b"", command.tag))

    def _request_lookup(self, command: RequestLookup) -> bytes:
        """Answered from this node's own store only: no recursion, no loops."""
        store_get = self.store.get
        found = []
        for key in command.keys:
            stored = store_get(key)
            if stored is not None:
                found.append((key, stored[STAMP_BYTES:], stored[:STAMP_BYTES]))
        return encode_reply(Fulfilled(join_found(found), command.tag))

    def _drop_if_older(self, key: bytes, stamp: bytes) -> bool:
        stored = self.store.get(key)
        if stored is not None and stored[:STAMP_BYTES] < stamp:
            return self._delete_local(key)
        return False

    def _request_delete(self, command: RequestDelete) -> bytes:
        self.clock.observe(command.stamp)
        self._batch_stamp = None
        deleted = [key for key in command.keys if self._drop_if_older(key, command.stamp)]
        return encode_reply(Fulfilled(join_keys(deleted), command.tag))

    def _request_invalidate(self, command: RequestInvalidate) -> bytes:
        dropped = 0
        newest = b""
        for key, stamp in command.items:
            newest = max(newest, stamp)
            if self._drop_if_older(key, stamp):
                dropped += 1
        if newest:
            self.clock.observe(newest)
            self._batch_stamp = None
        self.stats.invalidated_keys += dropped
        return encode_reply(Fulfilled(str(dropped).encode(), command.tag))

    def _request_filter(self, command: RequestFilter) -> bytes:
        version = self._cluster().on_filter(command.name, command.data)
        return encode_reply(Fulfilled(str(version).encode(), command.tag))

    # -- INFO ---------------------------------------------------------------

    def info(self) -> dict[str, str]:
        """The INFO fields, in a stable order (contract fields first)."""
        self._evict_due(limit=None)  # so 'keys' counts live keys only
        self.own_filter.flush()  # so 'bloom_keys' counts this turn's new keys
        stats, store, bloom, cluster = self.stats, self.store, self.bloom, self.cluster
        states = cluster.membership.counts() if cluster is not None else {}
        fields: dict[str, object] = {
            "name": self.name,
            "version": __version__,
            "uptime_s": int(time.monotonic() - stats.started_at),
            "keys": len(store),
            "peers": cluster.alive_count() if cluster is not None else 0,
            "connected_clients": stats.connected_clients,
            "used_memory": resident_memory(),
            "expired_keys": store.expired_count,
            "remote_lookups": stats.remote_lookups,
            "remote_probes": stats.remote_probes,
            "remote_hits": stats.remote_hits,
            "bloom_bits": bloom.bits,
            "bloom_hashes": bloom.hashes,
            "bloom_fp_estimate": f"{bloom.fp_estimate():.6f}",
            "pid": os.getpid(),
            "event_loop": self.event_loop_name,
            "total_connections_received": stats.total_connections,
            "rejected_connections": stats.rejected_connections,
            "total_commands_processed": stats.total_commands,
            "max_line_bytes": self.config.max_line_bytes,
            "bloom_keys": bloom.count,
            "bloom_version": bloom.version,
            "invalidated_keys": stats.invalidated_keys,
            "invalidations_pending": cluster.invalidations_pending() if cluster else 0,
            "lookup_messages": stats.lookup_messages,
            "gossip_messages": stats.gossip_messages,
            "gossip_bytes": stats.gossip_bytes,
            "peers_known": sum(states.values()),
            "peers_suspect": states.get(PeerState.SUSPECT, 0),
            "peers_down": states.get(PeerState.DOWN, 0),
        }
        return {name: str(value) for name, value in fields.items()}

    # -- filter growth, refresh and expiry ----------------------------------------------

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
