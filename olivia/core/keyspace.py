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
from olivia.core.errors import OutOfMemoryError, ReplyTooLargeError
from olivia.core.eviction import Evictor
from olivia.core.peers import NoPeers, Peers, RemoteFound
from olivia.core.requests import Copy, Keys, Pairs, TtlItems, Version
from olivia.core.scan import Scanner
from olivia.core.slots import SLOTS, SlotDigests, slot_of
from olivia.core.store import DEADLINE_BYTES, ENTRY_BYTES, Store
from olivia.core.tombstones import Tombstones
from olivia.core.values import HEADER_BYTES, pack, plain_header, stamp_of, value_of

#: Keys looked at per step of a scan (versions_in): a step holds the loop ~10 ms.
SCAN_STEP = 20_000

#: key -> stored form (olivia.core.values) of the keys found, locally or on peers.
StoredFound = dict[bytes, bytes]


class Keyspace:
    """This node's data, and the rules for reading and writing it."""

    def __init__(self, store: Store, clock: HybridClock, max_reply_bytes: int,
                 tombstones: Tombstones | None = None, max_memory: int = 0,
                 eviction_policy: str = "noeviction") -> None:
        self.store = store
        self.max_memory = max_memory
        if max_memory:
            store.start_accounting()
        self.evictor = Evictor(store, eviction_policy, self._evicted)
        #: Told of every read of a key, for the lru and lfu policies (else None).
        self.touch = self.evictor.touch if max_memory else None
        self.tombstones = tombstones if tombstones is not None else Tombstones(300.0, 1_000_000)
        self.digests = SlotDigests()
        self.scanner = Scanner(store, store.clock)
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

    def fresh_stamp(self) -> bytes:
        """A stamp of its own (the atomic verbs: each version distinct); the
        batch's later writes get newer ones."""
        self._batch_stamp = self._batch_header = None
        return self.clock.now()

    def end_batch(self) -> None:
        self._batch_stamp = self._batch_header = None

    def observe(self, stamp: bytes) -> None:
        """A peer's stamp: later writes here must be newer (and the batch's
        stamp, issued before, no longer is)."""
        self.clock.observe(stamp)
        self._batch_stamp = self._batch_header = None

    # -- writes ------------------------------------------------------------------
    # Each write returns None once it is done, or an awaitable that is done
    # when the copies it needs on other nodes are stored (replication): the
    # front end answers the client then.

    def set_plain(self, pairs: Sequence[Sequence[bytes]]) -> Awaitable[None] | None:
        """Store (key, value) pairs whose values hold no byte a text front end
        escapes (the caller checked); clears their TTLs; tells the peers."""
        if self.max_memory:
            self.make_room(pairs, "SET")
        header = self._batch_header
        if header is None:  # the first write of the batch
            self.stamp()
            header = self._batch_header
            assert header is not None
        self._set_many(pairs, header)
        if not self._known:
            return None
        return self._written(header[:STAMP_BYTES], [pair[0] for pair in pairs], pairs)

    def set_pairs(self, pairs: Pairs) -> Awaitable[None] | None:
        """Store any (key, value) pairs; clears their TTLs; tells the peers."""
        if self.max_memory:
            self.make_room(pairs, "SET")
        stamp = self.stamp()
        self.store.set_many([(key, pack(stamp, value)) for key, value in pairs])
        if not self._known:
            return None
        return self._written(stamp, [key for key, _ in pairs], pairs)

    def set_with_ttl(self, items: TtlItems) -> Awaitable[None] | None:
        """Store each item to expire after its TTL; tells the peers."""
        if self.max_memory:
            self.make_room([(item.key, item.value) for item in items], "SETEX", DEADLINE_BYTES)
        stamp = self.stamp()
        set_with_ttl = self.store.set_with_ttl
        for item in items:
            set_with_ttl(item.key, pack(stamp, item.value), item.ttl)
        if self.on_deadline is not None:
            self.on_deadline()
        if not self._known:
            return None
        return self._written(stamp, [item.key for item in items],
                             [(item.key, item.value) for item in items],
                             [item.ttl for item in items])

    def write_versions(self, entries: Sequence[tuple[bytes, bytes, float | None]],
                       verb: str) -> Awaitable[None] | None:
        """Store (key, value, TTL seconds or None) under one fresh stamp (the
        atomic verbs' writes, olivia.core.atomic); tells the peers."""
        if self.max_memory:
            with_ttl = sum(ttl is not None for _, _, ttl in entries)
            self.make_room([(key, value) for key, value, _ in entries], verb,
                           DEADLINE_BYTES if with_ttl else 0)
        stamp = self.fresh_stamp()
        store = self.store
        for key, value, ttl in entries:
            if ttl is None:
                store.set(key, pack(stamp, value))
            else:
                store.set_with_ttl(key, pack(stamp, value), ttl)
        if self.on_deadline is not None:
            self.on_deadline()
        self._batch_stamp = self._batch_header = None
        if not self._known:
            return None
        return self._written(stamp, [key for key, _, _ in entries],
                             [(key, value) for key, value, _ in entries],
                             [ttl for _, _, ttl in entries])

    def _written(self, stamp: bytes, keys: list[bytes], pairs: Sequence[Sequence[bytes]],
                 ttls: Sequence[float | None] | None = None) -> Awaitable[None] | None:
        """The rest of a write once stored here: revive deleted keys, announce
        the new version to every peer, replicate it to the keys' homes."""
        tombstones = self.tombstones
        if tombstones:
            for key in keys:
                tombstones.discard(key, stamp)
        peers = self.peers
        peers.announce(keys, stamp)
        return peers.replicate(stamp, pairs, ttls)

    def delete(self, keys: Keys) -> set[bytes] | Awaitable[set[bytes]]:
        """Delete keys here and on the peers that may hold them (or should:
        the keys' homes keep the tombstones); the keys that existed anywhere
        (an awaitable of them when peers must be asked)."""
        stamp = self.stamp()
        delete = self.store.delete
        deleted = {key for key in keys if delete(key)}
        peers = self.peers
        if not self._known:
            return deleted
        for key in keys:
            self.tombstones.add(key, stamp)
        peers.announce(keys, stamp)
        # With replicas every key goes out: its homes keep the tombstone.
        # Without, only the misses: older copies of the others go by invalidation.
        remote = [key for key in dict.fromkeys(keys) if peers.replicates or key not in deleted]
        if not remote or not peers.has_alive_peer():
            return deleted
        return self._spawn(self._delete_remote(deleted, remote, stamp))

    async def _delete_remote(self, deleted: set[bytes], keys: list[bytes],
                             stamp: bytes) -> set[bytes]:
        return deleted | await self.peers.delete(keys, stamp)

    def drop_if_older(self, key: bytes, stamp: bytes, deleted: bool = False) -> bool:
        """Delete the local copy of ``key`` if it is older than ``stamp`` (a
        newer write, or with ``deleted`` a delete, happened elsewhere); True if
        it was dropped.  A delete leaves its tombstone here either way."""
        stored = self.store.get(key)
        dropped = stored is not None and stamp_of(stored) < stamp and self.store.delete(key)
        if deleted and (stored is None or dropped):
            self.tombstones.add(key, stamp)
        return dropped

    def apply_copies(self, items: Iterable[Copy]) -> list[bytes]:
        """Store copies sent by other nodes (replication, repair, hand-over):
        (key, raw value or None for a delete, stamp, TTL seconds or None).  A
        copy older than what is here (a value or a tombstone) is ignored; the
        newest version wins everywhere, by the clock's stamps.  Nothing is
        announced or replicated on: the sender did that.  The keys taken."""
        store, tombstones = self.store, self.tombstones
        taken = []
        newest = b""
        for key, value, stamp, ttl in items:
            newest = max(newest, stamp)
            current = store.peek(key)
            held = current[:STAMP_BYTES] if current is not None else tombstones.get(key)
            if held is not None and held > stamp:
                continue
            if value is None:
                store.delete(key)
                tombstones.add(key, stamp)
            else:
                if tombstones:
                    tombstones.discard(key, stamp)
                if ttl is None:
                    store.set(key, pack(stamp, value))
                else:
                    store.set_with_ttl(key, pack(stamp, value), ttl)
            taken.append(key)
        if newest:
            self.observe(newest)
        if self.on_deadline is not None:
            self.on_deadline()
        if self.max_memory and store.used > self.max_memory and self.evictor.evicts:
            # Copies are taken whatever the budget (an acknowledged write
            # must not be lost to it); an evicting policy makes room after.
            self.evictor.free(store.used - self.max_memory)
        return taken

    # -- memory ----------------------------------------------------------------

    def make_room(self, pairs: Sequence[Sequence[bytes]], verb: str, extra: int = 0) -> None:
        """Before a write of ``pairs``: within max_memory, evicting by the
        policy if need be, or OutOfMemoryError and nothing changes.  Counted
        as if every key were new (an overwrite is refused a little early)."""
        store = self.store
        incoming = sum(len(key) + len(value) for key, value in pairs) \
            + len(pairs) * (HEADER_BYTES + ENTRY_BYTES + extra)
        over = store.used + incoming - self.max_memory
        if over <= 0:
            return
        if self.evictor.evicts:
            over -= self.evictor.free(over)
        if over > 0:
            raise OutOfMemoryError(
                f"{verb} refused: it would take the node over max_memory ({self.max_memory} "
                f"bytes, {store.used} in use) and eviction_policy {self.evictor.policy} "
                "cannot free enough; nothing was stored (delete keys, raise max_memory or "
                "choose an evicting eviction_policy)")

    def _evicted(self, key: bytes, stamp: bytes) -> None:
        """An evicted key's copies elsewhere go too: peers drop versions up
        to the evicted one (not a newer write), and no tombstone is kept."""
        if self._known:
            after = (int.from_bytes(stamp, "big") + 1).to_bytes(STAMP_BYTES, "big")
            self.peers.announce([key], after)

    def scan_here(self, position: bytes, count: int,
                  pattern: bytes) -> tuple[bytes, list[bytes]]:
        """A page of this node's own part of a cluster scan (olivia.core.scan)."""
        lists_slot = self.peers.lists_slot
        return self.scanner.page(position, count, pattern, lambda key: lists_slot(slot_of(key)))

    def count_listed(self, lists_slot: Callable[[int], bool]) -> int:
        """The live keys held here of the slots ``lists_slot`` accepts (COUNT:
        each key is counted by one node); with no peers, every key."""
        if not self._known:
            return len(self.store)
        self.start_digests()
        counts = self.digests.counts
        return sum(counts[slot] for slot in range(SLOTS) if lists_slot(slot))

    # -- what anti-entropy compares and moves ------------------------------------------

    def start_digests(self) -> None:
        """Keep per-slot digests from now on (once there are peers to compare
        with): one pass over every key and tombstone, then each change."""
        digests = self.digests
        if digests.on:
            return
        digests.rebuild(self.store.items(), self.tombstones.items())
        self.store.versions = digests
        self.tombstones.on_change = digests.tombstone

    def version_of(self, key: bytes) -> Version | None:
        """The version held here: a live value's, or a tombstone's."""
        store = self.store
        stored = store.peek(key)
        if stored is not None and store.ttl(key) != 0.0:
            return Version(key, stored[:STAMP_BYTES], False)
        stamp = self.tombstones.get(key)
        return None if stamp is None else Version(key, stamp, True)

    def versions_in(self, slots: Collection[int]) -> Iterable[list[Version]]:
        """The versions held here of every key and tombstone in ``slots``, in
        steps of SCAN_STEP keys (a caller on the loop yields between steps)."""
        wanted = set(slots)
        store = self.store
        ttl = store.ttl
        items = store.items()
        for start in range(0, len(items), SCAN_STEP):
            yield [Version(key, stored[:STAMP_BYTES], False)
                   for key, stored in items[start:start + SCAN_STEP]
                   if slot_of(key) in wanted and ttl(key) != 0.0]
        yield [Version(key, stamp, True) for key, stamp in self.tombstones.items()
               if slot_of(key) in wanted]

    def keys_in(self, keep: Callable[[int], bool]) -> Iterable[list[bytes]]:
        """The keys held here whose slot ``keep`` accepts, in steps (as versions_in)."""
        keys = self.store.key_snapshot()
        for start in range(0, len(keys), SCAN_STEP):
            yield [key for key in keys[start:start + SCAN_STEP] if keep(slot_of(key))]

    def copies_of(self, keys: Iterable[bytes]) -> list[Copy]:
        """What is held here of ``keys``, as copies to send: live values with
        the TTL they have left, and tombstones; keys with neither are left out."""
        store, tombstones = self.store, self.tombstones
        copies = []
        for key in keys:
            stored = store.peek(key)
            ttl = store.ttl(key) if stored is not None else None
            if stored is not None and ttl != 0.0:
                copies.append(Copy(key, value_of(stored), stored[:STAMP_BYTES], ttl))
            elif (stamp := tombstones.get(key)) is not None:
                copies.append(Copy(key, None, stamp, None))
        return copies

    def drop_copy(self, key: bytes, stamp: bytes) -> bool:
        """Forget this node's copy of ``key`` if it is still the version of
        ``stamp`` (a copy handed to the key's homes); no tombstone, nothing
        announced: the key lives on elsewhere."""
        stored = self.store.peek(key)
        return stored is not None and stored[:STAMP_BYTES] == stamp and self.store.delete(key)

    # -- reads -------------------------------------------------------------------

    def read(self, keys: Keys) -> StoredFound | Awaitable[StoredFound]:
        """The stored form of each key found here or, for local misses, on the
        peers whose filters may hold it (an awaitable then)."""
        get = self.get_stored
        found: StoredFound = {}
        misses = []
        touch = self.touch
        for key in keys:
            stored = get(key)
            if stored is None:
                misses.append(key)
            else:
                found[key] = stored
                if touch is not None:
                    touch(key)
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
        found = [(key, stored) for key in keys if (stored := get(key)) is not None]
        if self.touch is not None:  # a peer's read is a use too
            for key, _ in found:
                self.touch(key)
        return found

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
