"""What the peer dialect's verbs mean: the handlers of ``REQUEST ...``, and
their registry entries (the formats are in olivia.protocols.line.peer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from olivia.cluster.bloom import FilterReplica, filter_size
from olivia.cluster.dialer import Dialer
from olivia.cluster.handshake import (
    ANSWER,
    DIAL,
    Handshake,
    new_nonce,
    proof,
    proof_matches,
)
from olivia.cluster.own_filter import OwnFilter
from olivia.cluster.peer_table import PeerTable
from olivia.config import Config
from olivia.core.errors import (
    DeniedError,
    FilterError,
    NoSuchPeerError,
    NotReadyError,
    ProtocolError,
)
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
    SCAN_ARGS,
    SLOT_DIGESTS,
    SLOTS,
    STAMPED_KEYS,
    TEXT,
    VERSIONS,
    Admitted,
    Answer,
    Copies,
    FilterPush,
    Hello,
    Keys,
    KeyStamps,
    Payload,
    ScanArgs,
    SlotDigestItems,
    Slots,
    StampedKeys,
    Versions,
)
from olivia.core.session import Guard, Session
from olivia.core.slots import slot_of
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import (
    answer_payload,
    copies_payload,
    found_payload,
    slots_payload,
    versions_payload,
)
from olivia.protocols.line.requests import keys_payload

log = logging.getLogger(__name__)


class PeerVerbs:
    """The handlers of the peer dialect, over one node's cluster state."""

    def __init__(self, config: Config, table: PeerTable, dialer: Dialer, keyspace: Keyspace,
                 own_filter: OwnFilter, stats: Stats,
                 homes_here: Callable[[int], bool], guests: dict[bytes, None],
                 guard: Guard) -> None:
        self._config = config
        self._guard = guard
        self._table = table
        self._dialer = dialer
        self._keyspace = keyspace
        self._own_filter = own_filter
        self._stats = stats
        self._homes_here = homes_here  # is this node a home of the slot?
        self._guests = guests  # keys held here out of their homes (olivia.cluster.sync)
        #: Carries out a forwarded client line (set by the node: the line protocol's).
        self.execute_here: Callable[[bytes], Any] | None = None
        # A peer's filter may be this big whatever it holds (olivia.cluster.bloom).
        self._base_bits = filter_size(config.bloom_capacity, config.bloom_fp_rate)[0]

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

    def connect(self, hello: Hello, session: Session) -> Payload:
        """The first half of the handshake (olivia.cluster.handshake): who we
        are, our challenge, our proof; nothing is admitted yet."""
        me = self._me()
        dialer = self._dialer
        if dialer.needs_certificate and not session.tls_verified:
            self._guard.failed(session.where, f"{hello.name} presented no certificate")
            raise _closing(DeniedError("REQUEST CONNECT over TLS needs a client certificate "
                                       "signed by this cluster's tls.ca"))
        if session.protected and not dialer.key:
            # Nothing to prove: no secret and no password.
            raise self._guard.protected_denial(session)
        if hello.name != me.name:
            self._table.check_node_id(hello.name)
        elif hello.incarnation != me.incarnation:
            log.warning("another node uses our name %r (at %s)", me.name, hello.address)
        nonce = new_nonce()
        session.handshake = Handshake(hello, hello.nonce, nonce)
        answer = proof(dialer.key, ANSWER, hello.nonce, nonce, hello.name, me.name)
        return Payload(answer_payload(Answer(me, nonce, answer, dialer.vouch_for(hello))))

    def prove(self, given: bytes, session: Session) -> Admitted | asyncio.Future[Admitted]:
        """The second half: the dialler's proof.  Without a cluster secret the
        dialler is also dialled back (a probe) before it is admitted."""
        me = self._me()
        handshake: Handshake | None = session.handshake
        session.handshake = None
        if handshake is None:
            raise DeniedError("REQUEST PROVE comes after REQUEST CONNECT on the same connection")
        hello = handshake.hello
        if hello.name == me.name:
            raise _closing(DeniedError(f"node name {me.name!r} is this node's own"))
        expected = proof(self._dialer.key, DIAL, handshake.dialer_nonce, handshake.answer_nonce,
                         hello.name, me.name)
        if not proof_matches(given, expected):
            self._guard.failed(session.where, f"node {hello.name!r} failed the cluster secret "
                               "check (a different cluster.secret?)")
            raise _closing(DeniedError("wrong proof: this node's cluster.secret (or, without "
                                       "one, auth.password) is not the one you have"))
        if self._dialer.secret:
            return self._admit(hello, session)
        return asyncio.ensure_future(self._dialled_back(hello, session))

    async def _dialled_back(self, hello: Hello, session: Session) -> Admitted:
        if not await self._dialer.probe(hello):
            self._guard.failed(session.where, f"node {hello.name!r} did not vouch for the "
                               f"connection when dialled back at {hello.address}")
            raise _closing(DeniedError(
                f"dialled back {hello.address}, but the node there did not vouch for this "
                "connection (without cluster.secret a peer must be reachable at the address "
                "it gives)"))
        return self._admit(hello, session)

    def _admit(self, hello: Hello, session: Session) -> Admitted:
        """A verified node: admit it and make sure we dial it back."""
        table = self._table
        table.check_node_id(hello.name)
        peer, _ = table.admit(hello.name, hello.address, hello.incarnation)
        session.peer_name = hello.name
        # Its link to us is new, so it may have dropped our filter while we
        # were down to it (a paused node): it gets a full copy next round.
        table.link_opened(hello.name)
        self._dialer.dial_back(peer)
        return Admitted(b"", hello.name)

    def disconnect(self, name: str, session: Session) -> Payload:
        self._me()
        if name != session.peer_name:
            raise DeniedError(f"a peer says goodbye for itself only (this connection is "
                              f"{session.peer_name!r}'s)")
        self._table.leave(name)
        return Payload(b"")

    def forget(self, name: str) -> Payload:
        """An operator removes a peer now (a decommissioned node): it is no
        longer redialled.  One that still runs comes back when it dials us."""
        self._me()
        if not self._table.leave(name, "forgotten by an operator (FORGET)"):
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

    def execute(self, line: bytes) -> Any:
        """A read-modify-write request forwarded by a node that is not the
        keys' home (olivia.core.atomic): carried out here, answered with the
        client reply line."""
        if self.execute_here is None:
            raise NotReadyError("this node is not serving a cluster yet")
        return self.execute_here(line)

    def scan(self, args: ScanArgs) -> Payload:
        """A page of this node's own part of a cluster scan."""
        position, keys = self._keyspace.scan_here(args.cursor, args.size, args.pattern)
        payload = keys_payload(keys)
        cursor = position or b"0"
        return Payload(cursor + b" " + payload if payload else cursor)

    def count(self, _: None) -> Payload:
        keyspace = self._keyspace
        return Payload(b"%d" % keyspace.count_listed(keyspace.peers.lists_slot))

    def invalidate(self, items: KeyStamps) -> Payload:
        keyspace = self._keyspace
        dropped = sum(keyspace.drop_if_older(key, stamp) for key, stamp in items)
        keyspace.observe(max(stamp for _, stamp in items))
        self._stats.invalidated_keys += dropped
        return Payload(str(dropped).encode())

    def filter(self, push: FilterPush, session: Session) -> Payload:
        """Apply a peer's filter push; answers the version we now hold."""
        self._me()
        if push.name != session.peer_name:
            raise DeniedError(f"a peer pushes its own filter only (this connection is "
                              f"{session.peer_name!r}'s, not {push.name!r}'s)")
        if self._table.membership.get(push.name) is None:
            raise FilterError(f"filter from unknown peer {push.name!r}: "
                              "send REQUEST CONNECT first")
        replica = self._table.replicas.get(push.name) or FilterReplica()
        replica.apply(push.data, max_bits=self._config.max_peer_line_bytes * 8,
                      base_bits=self._base_bits)
        self._table.replicas[push.name] = replica
        return Payload(str(replica.version).encode())


def _closing(error: ProtocolError) -> ProtocolError:
    """``error``, after which the connection is closed (a failed handshake)."""
    error.closes = True
    return error


def peer_verbs(verbs: PeerVerbs) -> list[VerbSpec[Any]]:
    """The peer dialect's registry entries, bound to ``verbs``."""
    return [
        VerbSpec("REQUEST PEERS", NONE, verbs.peers, peer=True,
                 summary=VERB_HELP["REQUEST PEERS"].summary),
        VerbSpec("REQUEST BLOOMFILTER", NONE, verbs.bloomfilter, peer=True,
                 summary=VERB_HELP["REQUEST BLOOMFILTER"].summary),
        VerbSpec("REQUEST CONNECT", HELLO, verbs.connect, peer=True, session=True),
        VerbSpec("REQUEST PROVE", TEXT, verbs.prove, peer=True, session=True),
        VerbSpec("REQUEST DISCONNECT", NAME, verbs.disconnect, peer=True, session=True),
        VerbSpec("FORGET", NAME, verbs.forget, writes=True, local_only=True,
                 summary=VERB_HELP["FORGET"].summary),
        VerbSpec("REQUEST LOOKUP", KEYS, verbs.lookup, peer=True),
        VerbSpec("REQUEST DELETE", STAMPED_KEYS, verbs.delete, writes=True, peer=True),
        VerbSpec("REQUEST INVALIDATE", KEY_STAMPS, verbs.invalidate, writes=True, peer=True),
        VerbSpec("REQUEST FILTER", FILTER_PUSH, verbs.filter, peer=True, session=True),
        VerbSpec("REQUEST REPLICATE", COPIES, verbs.replicate, writes=True, peer=True),
        VerbSpec("REQUEST REPAIR", COPIES, verbs.repair, writes=True, peer=True),
        VerbSpec("REQUEST DIGESTS", SLOT_DIGESTS, verbs.digests, peer=True),
        VerbSpec("REQUEST VERSIONS", SLOTS, verbs.versions, peer=True, holds=HOLDS_NOTHING),
        VerbSpec("REQUEST FETCH", KEYS, verbs.fetch, peer=True),
        VerbSpec("REQUEST OFFER", VERSIONS, verbs.offer, peer=True),
        # The step of a forwarded verb runs as its line is read (olivia.core.atomic);
        # what may wait is its copies: later lines need not wait for them.
        VerbSpec("REQUEST EXEC", TEXT, verbs.execute, writes=True, peer=True,
                 holds=HOLDS_NOTHING),
        VerbSpec("REQUEST SCAN", SCAN_ARGS, verbs.scan, peer=True),
        VerbSpec("REQUEST COUNT", NONE, verbs.count, peer=True),
    ]
