"""What the peer dialect's verbs mean: the handlers of ``REQUEST ...``, and
their registry entries (the formats are in olivia.protocols.line.peer)."""

from __future__ import annotations

import logging
from typing import Any

from olivia.cluster.bloom import FilterReplica
from olivia.cluster.dialer import Dialer
from olivia.cluster.own_filter import OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.config import Config
from olivia.core.errors import FilterError, NoSuchPeerError, NotReadyError
from olivia.core.help import VERB_HELP
from olivia.core.keyspace import Keyspace
from olivia.core.registry import VerbSpec
from olivia.core.requests import (
    FILTER_PUSH,
    HELLO,
    KEY_STAMPS,
    KEYS,
    NAME,
    NONE,
    STAMPED_KEYS,
    Admitted,
    FilterPush,
    Hello,
    Keys,
    KeyStamps,
    Payload,
    StampedKeys,
)
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import found_payload, identity
from olivia.protocols.line.requests import keys_payload

log = logging.getLogger(__name__)


class PeerVerbs:
    """The handlers of the peer dialect, over one node's cluster state."""

    def __init__(self, config: Config, table: PeerTable, dialer: Dialer, keyspace: Keyspace,
                 own_filter: OwnFilter, stats: Stats) -> None:
        self._config = config
        self._table = table
        self._dialer = dialer
        self._keyspace = keyspace
        self._own_filter = own_filter
        self._stats = stats

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
        keyspace = self._keyspace
        keyspace.observe(request.stamp)
        deleted = [key for key in request.keys if keyspace.drop_if_older(key, request.stamp)]
        return Payload(keys_payload(deleted))

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
    ]
