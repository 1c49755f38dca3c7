"""What the peer dialect's verbs mean: the handlers of ``REQUEST ...``, and
their registry entries (the formats are in olivia.protocols.line.peer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from olivia.cluster.bloom import FilterReplica
from olivia.cluster.dialer import Dialer
from olivia.cluster.own_filter import OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.config import Config
from olivia.core.errors import FilterError, NoSuchPeerError, NotReadyError
from olivia.core.help import VERB_HELP
from olivia.core.keyspace import Keyspace
from olivia.core.registry import HOLDS_NOTHING, VerbSpec
from olivia.core.requests import (
    COPIES,
    FILTER_PUSH,
    HELLO,
    KEY_STAMPS,
    KEYS,
    NAME,
    NONE,
    SLOT_DIGESTS,
    SLOTS,
    STAMPED_KEYS,
    VERSIONS,
    Admitted,
    Copies,
    FilterPush,
    Hello,
    Keys,
    KeyStamps,
    Payload,
    SlotDigestItems,
    Slots,
    StampedKeys,
    Versions,
)
from olivia.core.slots import slot_of
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import (
    copies_payload,
    found_payload,
    identity,
    slots_payload,
    versions_payload,
)
from olivia.protocols.line.requests import keys_payload

log = logging.getLogger(__name__)


class PeerVerbs:
    """The handlers of the peer dialect, over one node's cluster state."""

    def __init__(self, config: Config, table: PeerTable, dialer: Dialer, keyspace: Keyspace,
                 own_filter: OwnFilter, stats: Stats,
                 homes_here: Callable[[int], bool], guests: dict[bytes, None]) -> None:
        self._config = config
        self._table = table
        self._dialer = dialer
        self._keyspace = keyspace
        self._own_filter = own_filter
        self._stats = stats
        self._homes_here = homes_here  # is this node a home of the slot?
        self._guests = guests  # keys held here out of their homes (olivia.cluster.sync)

    def _me(self) -> Hello:
        me = self._dialer.me
        if not me.name:
            raise NotReadyError("this node is not serving a cluster yet")
        return me

    def peers(self, _: None) -> Payload:
        return Payload(",".join(self._table.alive_addresses()).encode())

    def bloomfilter(self, _: None) -> Payload:
        self._own_filter.flush()
        return Payload(self._own_filter.bloom.encode_full())

    def connect(self, hello: Hello) -> Admitted:
        """A node introduced itself: admit it and make sure we dial it back."""
        me = self._me()
        if hello.name == me.name:
            if hello.incarnation != me.incarnation:
                log.warning("another node uses our name %r (at %s)", me.name, hello.address)
            return Admitted(identity(me), hello.name)
        table = self._table
        table.check_node_id(hello.name)
        peer, _ = table.admit(hello.name, hello.address, hello.incarnation)
        # Its link to us is new, so it may have dropped our filter while we
        # were down to it (a paused node): it gets a full copy next round.
        table.link_opened(hello.name)
        self._dialer.dial_back(peer)
        return Admitted(identity(me), hello.name)

    def disconnect(self, name: str) -> Payload:
        self._me()
        self._table.leave(name)
        return Payload(b"")

    def forget(self, name: str) -> Payload:
        """An operator removes a peer now (a decommissioned node): it is no
        longer redialled.  One that still runs comes back when it dials us."""
        self._me()
        if not self._table.leave(name, "forgotten by an operator (REQUEST FORGET)"):
            raise NoSuchPeerError(f"no peer named {name!r} (REQUEST PEERS lists the alive ones)")
        return Payload(b"")

    def lookup(self, keys: Keys) -> Payload:
        """Answered from this node's own store only: no recursion, no loops."""
        return Payload(found_payload(self._keyspace.local(keys)))

    def delete(self, request: StampedKeys) -> Payload:
        """A delete elsewhere: drop older copies here and keep its tombstone."""
        keyspace = self._keyspace
        keyspace.observe(request.stamp)
        deleted = [key for key in request.keys
                   if keyspace.drop_if_older(key, request.stamp, deleted=True)]
        self._note_guests(request.keys)
        return Payload(keys_payload(deleted))

    def replicate(self, copies: Copies) -> Payload:
        """Copies of another node's writes, to keep here."""
        taken = self._keyspace.apply_copies(copies)
        self._note_guests(taken)
        return Payload(str(len(taken)).encode())

    def repair(self, copies: Copies) -> Payload:
        """Copies sent by anti-entropy or a leaving node."""
        taken = self._keyspace.apply_copies(copies)
        self._note_guests(taken)
        self._stats.repair_keys_received += len(taken)
        return Payload(str(len(taken)).encode())

    def _note_guests(self, keys: Iterable[bytes]) -> None:
        """Keys taken although this node is not their home (a fallback copy,
        a view of the members not yet shared) are handed on later."""
        homes_here, guests = self._homes_here, self._guests
        for key in keys:
            if not homes_here(slot_of(key)):
                guests[key] = None

    def digests(self, items: SlotDigestItems) -> Payload:
        """The slots whose digest here differs from the asker's."""
        keyspace = self._keyspace
        keyspace.start_digests()
        mine = keyspace.digests.digests
        return Payload(slots_payload(b"", [slot for slot, digest in items
                                           if mine[slot] != digest]))

    def versions(self, slots: Slots) -> asyncio.Future[Payload]:
        """The versions held here in ``slots`` (a scan of the store, in steps)."""
        return asyncio.ensure_future(self._versions(slots))

    async def _versions(self, slots: Slots) -> Payload:
        versions = []
        for step in self._keyspace.versions_in(slots):
            versions.extend(step)
            await asyncio.sleep(0)
        return Payload(versions_payload(b"", versions))

    def fetch(self, keys: Keys) -> Payload:
        return Payload(copies_payload(b"", self._keyspace.copies_of(keys)))

    def offer(self, versions: Versions) -> Payload:
        """The keys of which this node holds nothing as new as offered."""
        version_of = self._keyspace.version_of
        wanted = [version.key for version in versions
                  if (held := version_of(version.key)) is None or held.stamp < version.stamp]
        return Payload(keys_payload(wanted))

    def invalidate(self, items: KeyStamps) -> Payload:
        keyspace = self._keyspace
        dropped = sum(keyspace.drop_if_older(key, stamp) for key, stamp in items)
        keyspace.observe(max(stamp for _, stamp in items))
        self._stats.invalidated_keys += dropped
        return Payload(str(dropped).encode())

    def filter(self, push: FilterPush) -> Payload:
        """Apply a peer's filter push; answers the version we now hold."""
        self._me()
        if self._table.membership.get(push.name) is None:
            raise FilterError(f"filter from unknown peer {push.name!r}: "
                              "send REQUEST CONNECT first")
        replica = self._table.replicas.setdefault(push.name, FilterReplica())
        replica.apply(push.data, max_bits=self._config.max_peer_line_bytes * 8)
        return Payload(str(replica.version).encode())


def peer_verbs(verbs: PeerVerbs) -> list[VerbSpec[Any]]:
    """The peer dialect's registry entries, bound to ``verbs``."""
    return [
        VerbSpec("REQUEST PEERS", NONE, verbs.peers, peer=True,
                 summary=VERB_HELP["REQUEST PEERS"].summary),
        VerbSpec("REQUEST BLOOMFILTER", NONE, verbs.bloomfilter, peer=True,
                 summary=VERB_HELP["REQUEST BLOOMFILTER"].summary),
        VerbSpec("REQUEST CONNECT", HELLO, verbs.connect, peer=True),
        VerbSpec("REQUEST DISCONNECT", NAME, verbs.disconnect, peer=True),
        VerbSpec("REQUEST FORGET", NAME, verbs.forget, writes=True, peer=True, local_only=True,
                 summary=VERB_HELP["REQUEST FORGET"].summary),
        VerbSpec("REQUEST LOOKUP", KEYS, verbs.lookup, peer=True),
        VerbSpec("REQUEST DELETE", STAMPED_KEYS, verbs.delete, writes=True, peer=True),
        VerbSpec("REQUEST INVALIDATE", KEY_STAMPS, verbs.invalidate, writes=True, peer=True),
        VerbSpec("REQUEST FILTER", FILTER_PUSH, verbs.filter, peer=True),
        VerbSpec("REQUEST REPLICATE", COPIES, verbs.replicate, writes=True, peer=True),
        VerbSpec("REQUEST REPAIR", COPIES, verbs.repair, writes=True, peer=True),
        VerbSpec("REQUEST DIGESTS", SLOT_DIGESTS, verbs.digests, peer=True),
        VerbSpec("REQUEST VERSIONS", SLOTS, verbs.versions, peer=True, holds=HOLDS_NOTHING),
        VerbSpec("REQUEST FETCH", KEYS, verbs.fetch, peer=True),
        VerbSpec("REQUEST OFFER", VERSIONS, verbs.offer, peer=True),
    ]
