"""What reading and writing a key means, on this node and across the cluster.

:class:`Keyspace` is the one place that stamps writes, stores them, tells the
peers, reads locally and falls back to the peers on a miss.  The verb
handlers (:mod:`olivia.core.verbs`) and the line protocol's fast path both
call it; neither touches the store or the peers directly.

Writes of one batch (the lines a connection executes in one go) share one
version stamp: they are one version, as if made at the same instant, which
they are as far as any other node can tell (nothing else runs between them,
so no stamp is observed in between).  A SET then costs one clock read per
batch, not one each.  The front end calls :meth:`end_batch` after each batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Sequence, Sized
from typing import Any

from olivia.core.clock import STAMP_BYTES, HybridClock
from olivia.core.errors import ReplyTooLargeError
from olivia.core.peers import NoPeers, Peers, RemoteFound
from olivia.core.requests import Keys, Pairs, TtlItems
from olivia.core.store import Store
from olivia.core.values import HEADER_BYTES, pack, plain_header, stamp_of

#: key -> stored form (olivia.core.values) of the keys found, locally or on peers.
StoredFound = dict[bytes, bytes]


class Keyspace:
    """This node's data, and the rules for reading and writing it."""

    def __init__(self, store: Store, clock: HybridClock, max_reply_bytes: int) -> None:
        self.store = store
        self.clock = clock
        self.max_reply_bytes = max_reply_bytes
        self.peers: Peers = NoPeers()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch_stamp: bytes | None = None
        self._batch_header: bytes | None = None  # the stamp and plain flags, for set_plain
        self._known: Sized = ()  # the peers' table: truthy when any is known
        self.on_deadline: Callable[[], None] | None = None
        """Called after a write with a TTL (the expiry timer may need to move)."""
        # Bound once: the fast path calls them for nearly every request.
        self.get_stored = store.get
        self._set_many = store.set_many

    def start(self, loop: asyncio.AbstractEventLoop, clock: HybridClock, peers: Peers) -> None:
        """Serve on ``loop`` under ``clock`` (the node's name is known now), with ``peers``."""
        self._loop = loop
        self.clock = clock
        self.peers = peers
        self._known = peers.known
        self.end_batch()

    def stop(self) -> None:
        self.peers = NoPeers()
        self._known = ()
        self._loop = None

    def new_future(self) -> asyncio.Future[Any]:
        assert self._loop is not None, "peers are asked only while serving"
        return self._loop.create_future()

    # -- stamps ------------------------------------------------------------------

    def stamp(self) -> bytes:
        """The version stamp of this batch's writes."""
        stamp = self._batch_stamp
        if stamp is None:
            stamp = self._batch_stamp = self.clock.now()
            self._batch_header = plain_header(stamp)
        return stamp

    def end_batch(self) -> None:
        self._batch_stamp = self._batch_header = None

    def observe(self, stamp: bytes) -> None:
        """A peer's stamp: later writes here must be newer (and the batch's
        stamp, issued before, no longer is)."""
        self.clock.observe(stamp)
        self._batch_stamp = self._batch_header = None

    # -- writes ------------------------------------------------------------------

    def set_plain(self, pairs: Sequence[Sequence[bytes]]) -> None:
        """Store (key, value) pairs whose values hold no byte a text front end
        escapes (the caller checked); clears their TTLs; tells the peers."""
        header = self._batch_header
        if header is None:  # the first write of the batch
            self.stamp()
            header = self._batch_header
            assert header is not None
        self._set_many(pairs, header)
        if self._known:
            self.peers.announce([pair[0] for pair in pairs], header[:STAMP_BYTES])

    def set_pairs(self, pairs: Pairs) -> None:
        """Store any (key, value) pairs; clears their TTLs; tells the peers."""
        stamp = self.stamp()
        self.store.set_many([(key, pack(stamp, value)) for key, value in pairs])
        if self._known:
            self.peers.announce([key for key, _ in pairs], stamp)

    def set_with_ttl(self, items: TtlItems) -> None:
        """Store each item to expire after its TTL; tells the peers."""
        stamp = self.stamp()
        set_with_ttl = self.store.set_with_ttl
        for item in items:
            set_with_ttl(item.key, pack(stamp, item.value), item.ttl)
        if self._known:
            self.peers.announce([item.key for item in items], stamp)
        if self.on_deadline is not None:
            self.on_deadline()

    def delete(self, keys: Keys) -> set[bytes] | Awaitable[set[bytes]]:
        """Delete keys here and on the peers that may hold them; the keys that
        existed anywhere (an awaitable of them when peers must be asked)."""
        stamp = self.stamp()
        delete = self.store.delete
        deleted = {key for key in keys if delete(key)}
        peers = self.peers
        if self._known:
            peers.announce(keys, stamp)
        misses = [key for key in dict.fromkeys(keys) if key not in deleted]
        if not misses or not peers.has_alive_peer():
            return deleted
        return self._spawn(self._delete_remote(deleted, misses, stamp))

    async def _delete_remote(self, deleted: set[bytes], misses: list[bytes],
                             stamp: bytes) -> set[bytes]:
        return deleted | await self.peers.delete(misses, stamp)

    def drop_if_older(self, key: bytes, stamp: bytes) -> bool:
        """Delete the local copy of ``key`` if it is older than ``stamp`` (a
        newer write or delete happened elsewhere); True if it was dropped."""
        stored = self.store.get(key)
        if stored is not None and stamp_of(stored) < stamp:
            return self.store.delete(key)
        return False

    # -- reads -------------------------------------------------------------------

    def read(self, keys: Keys) -> StoredFound | Awaitable[StoredFound]:
        """The stored form of each key found here or, for local misses, on the
        peers whose filters may hold it (an awaitable then)."""
        get = self.get_stored
        found: StoredFound = {}
        misses = []
        for key in keys:
            stored = get(key)
            if stored is None:
                misses.append(key)
            else:
                found[key] = stored
        if not misses:
            return found
        future: asyncio.Future[StoredFound] | None = None

        def answered(remote: RemoteFound) -> None:
            if future is not None and not future.done():  # else the client went away
                found.update(remote)
                future.set_result(found)

        if not self.read_remote(misses, answered):
            return found  # nobody may hold them
        future = self.new_future()
        return future

    def read_remote(self, keys: Collection[bytes], done: Callable[[RemoteFound], None]) -> bool:
        """Ask the peers whose filters may hold ``keys`` (missed here); False if
        none may, else ``done`` is called once, later, with what they found."""
        peers = self.peers
        return peers.has_alive_peer() and peers.lookup(keys, done)

    def local(self, keys: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
        """(key, stored form) of the keys held here: what a peer's lookup gets."""
        get = self.get_stored
        return [(key, stored) for key in keys if (stored := get(key)) is not None]

    # -- limits ------------------------------------------------------------------

    def check_reply_size(self, found: Sequence[tuple[bytes, bytes]], verb: str) -> None:
        """Refuse a reply whose values ((key, stored form) pairs) add up to more
        than ``max_reply_bytes``: the one rule, for every front end and lane."""
        size = sum(len(stored) for _, stored in found) - HEADER_BYTES * len(found)
        raise_if_too_large(size, self.max_reply_bytes, verb)

    def _spawn(self, coro: Coroutine[Any, Any, set[bytes]]) -> asyncio.Task[set[bytes]]:
        assert self._loop is not None, "peers are asked only while serving"
        # Not fire-and-forget: the connection that asked keeps the task as
        # its pending reply, and cancels it if it goes away.
        return self._loop.create_task(coro)


def raise_if_too_large(size: int, limit: int, verb: str) -> None:
    """The reply-size rule: ``size`` bytes of values may not exceed ``limit``."""
    if size > limit:
        raise ReplyTooLargeError(
            f"{verb} reply too large: {size} bytes of values, over max_reply_bytes "
            f"({limit}); ask for fewer keys at a time")
