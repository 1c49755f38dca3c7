"""The peer logic: membership, filter gossip, routed lookups, cluster-wide writes.

One :class:`Cluster` per node.  It dials every peer it learns of (one
outgoing :class:`~olivia.peer_link.PeerLink` each, used only for this node's
own requests), answers the peer dialect on the ordinary server port, and runs
two loops:

* maintenance, every ``heartbeat_interval``: heartbeats, the timer-driven
  state changes of :mod:`olivia.membership`, redials with backoff, and a peer
  exchange with one random peer;
* gossip, every ``gossip_interval``: this node's filter (full copy to a peer
  that has none or missed a version, else the delta) and the invalidations
  of keys written or deleted here since the last round.

How writes reach other copies (see docs/design.md): a key lives on the node
that last wrote it.  Every write or delete is announced to all peers as
``key:stamp``; a peer holding an older copy drops it, so afterwards the
filters route every GET to the newest copy.  GET and DEL use the filters to
ask only the peers that may hold a key.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from olivia.bloom import FilterError, FilterReplica
from olivia.clock import HybridClock, node_id
from olivia.config import Config
from olivia.errors import OliviaError, ProtocolError
from olivia.membership import Membership, Peer, PeerEvent, PeerState, Timing
from olivia.own_filter import FilterFeed, OwnFilter
from olivia.peer_link import PeerLink, PeerTimeoutError, PeerUnavailableError
from olivia.protocol import (
    Fulfilled,
    Ping,
    RequestConnect,
    RequestDelete,
    RequestDisconnect,
    RequestFilter,
    RequestInvalidate,
    RequestLookup,
    RequestPeers,
    split_found,
    split_keys,
)
from olivia.stats import Stats
from olivia.store import Store

log = logging.getLogger(__name__)

# Items per INVALIDATE or LOOKUP line, so no peer line grows without bound.
BATCH_ITEMS = 2000
# Pending invalidations kept for peers at most; past it the oldest are dropped
# (logged): a cluster that cannot keep up loses freshness, not memory.
MAX_PENDING_INVALIDATIONS = 1_000_000


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Cluster:
    """This node's view of, and traffic with, every other node."""

    def __init__(self, config: Config, name: str, advertise: str, store: Store,
                 own_filter: OwnFilter, clock: HybridClock, stats: Stats) -> None:
        self.config = config
        self.name = name
        self.advertise = advertise
        self.incarnation = time.time_ns()
        self.store = store
        self.own_filter = own_filter
        self.bloom = own_filter.bloom
        self.feed = FilterFeed(self.bloom)
        self.clock = clock
        self.stats = stats
        self.membership = Membership(Timing(
            heartbeat_interval=config.heartbeat_interval,
            # Generous: a node busy with a large pipelined load answers late,
            # and a killed node is caught by its closed link anyway.
            heartbeat_timeout=max(config.heartbeat_interval * 4, 1.0),
            suspect_timeout=config.suspect_timeout,
        ))
        self.links: dict[str, PeerLink] = {}
        self.replicas: dict[str, FilterReplica] = {}
        self.invalidations: list[tuple[bytes, bytes]] = []  # since the last gossip round
        self._outbox: dict[str, list[tuple[bytes, bytes]]] = {}  # per peer, not yet sent
        self._dialing: set[str] = set()  # names or addresses being dialled
        # Peers with a filter push, or an invalidation push, in flight: each
        # kind waits only for its own kind, so a new key's filter bits never
        # queue behind a bulk load's invalidations.
        self._pushing_filter: set[str] = set()
        self._pushing_invalidations: dict[str, int] = {}  # name -> items not yet delivered
        # Per alive peer: its filter and the lookup batch of this turn (None
        # between turns).
        self._turn_targets: list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._heartbeating = False
        self._last_exchange = 0.0

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._running = True
        for seed in self.config.peers:
            if seed != self.advertise:
                self._spawn(self._dial_seed(seed), f"dial seed {seed}")
        self._spawn(self._maintenance_loop(), "maintenance")
        self._spawn(self._gossip_loop(), "gossip")

    async def stop(self, timeout: float = 0.5) -> None:
        """Tell every peer we are leaving, then close everything."""
        self._running = False
        goodbye = RequestDisconnect(self.name)
        alive = [(p, self.links[p.name]) for p in self.membership.alive() if p.name in self.links]
        if alive:
            await asyncio.gather(*(link.request(goodbye, timeout) for _, link in alive),
                                 return_exceptions=True)
            log.info("told %d peers we are leaving", len(alive))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for link in list(self.links.values()):
            link.close()
        self.links.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster task %r failed: %r", task.get_name(), task.exception())

    # -- what the node asks ---------------------------------------------------

    def alive_count(self) -> int:
        return len(self.membership.alive())

    def has_alive_peer(self) -> bool:
        """alive_count() > 0, without building the list (asked on every miss)."""
        return any(p.state is PeerState.ALIVE for p in self.membership.peers.values())

    def has_peers(self) -> bool:
        return bool(self.membership.peers)

    def invalidations_pending(self) -> int:
        """Invalidations written here and not yet delivered to every peer
        (counted once per peer): the backlog a bulk load leaves."""
        waiting = sum(len(outbox) for outbox in self._outbox.values())
        return len(self.invalidations) * len(self.membership.peers) + waiting + sum(
            self._pushing_invalidations.values())

    def alive_addresses(self) -> list[str]:
        return [p.address_text for p in self.membership.alive()]

    def candidates(self, key: bytes) -> list[str]:
        """Alive peers whose filter may hold ``key``."""
        return [p.name for p in self.membership.alive()
                if p.name in self.links and key in self.replicas.get(p.name, _EMPTY)]

    def note_write(self, key: bytes, stamp: bytes) -> None:
        """Queue the announcement that ``key`` was written or deleted here."""
        if self.membership.peers:
            self.invalidations.append((key, stamp))

    def note_writes(self, pairs: Iterable[Sequence[bytes]], stamp: bytes) -> None:
        """note_write for the key of each (key, value) pair: one call per SET."""
        if self.membership.peers:
            self.invalidations.extend((pair[0], stamp) for pair in pairs)

    def lookup(self, keys: Collection[bytes], done: Callable[[Found], None]) -> bool:
        """Ask the peers whose filters may hold ``keys``; False if there are none.

        Otherwise ``done`` is called once, later, with key -> (wire-form
        value, stamp) for the keys found, the newest copy where several
        peers answer.  Lookups for the same peer made in one turn of the
        event loop (every client's GETs that missed) travel in one REQUEST
        LOOKUP, so remote reads cost one peer round trip per batch, not per
        key, and the answers are handed out with plain calls, not one future
        per GET.  A peer that fails or times out contributes nothing.
        """
        waiter: _Waiter | None = None
        probes = 0
        for _, replica, batch in self._lookup_targets():
            wanted = [key for key in keys if key in replica]
            if wanted:
                if waiter is None:
                    waiter = _Waiter(keys, done)
                probes += len(wanted)
                waiter.remaining += 1
                batch_keys = batch.keys
                for key in wanted:
                    batch_keys[key] = None
                batch.waiters.append(waiter)
        self.stats.remote_lookups += len(keys)
        self.stats.remote_probes += probes
        return waiter is not None

    def _lookup_targets(self) -> list[tuple[str, FilterReplica | _NoFilter, _LookupBatch]]:
        """This turn's alive, linked peers with their filters and batches.

        Worked out once per turn, when the first lookup comes; the batches
        go out when the turn ends (_send_lookups).
        """
        targets = self._turn_targets
        if targets is None:
            asyncio.get_running_loop().call_soon(self._send_lookups)
            targets = self._turn_targets = [
                (peer.name, self.replicas.get(peer.name, _EMPTY), _LookupBatch())
                for peer in self.membership.alive() if peer.name in self.links]
        return targets

    def _send_lookups(self) -> None:
        targets, self._turn_targets = self._turn_targets or [], None
        for name, _, batch in targets:
            if not batch.keys:
                continue
            self._spawn(self._run_lookup(name, batch), f"lookup on {name}")

    async def _run_lookup(self, name: str, batch: _LookupBatch) -> None:
        found: Found = {}
        try:
            requests = [RequestLookup(tuple(chunk)) for chunk in _batches(list(batch.keys))]
            self.stats.lookup_messages += len(requests)
            results = await asyncio.gather(*(self._ask(name, request) for request in requests),
                                           return_exceptions=True)
            for result in results:
                if not isinstance(result, Fulfilled):
                    continue
                try:
                    items = split_found(result.data)
                except OliviaError as exc:
                    log.warning("bad LOOKUP reply from %s: %s", name, exc)
                    continue
                newest = b""
                for key, value, stamp in items:
                    found[key] = (value, stamp)
                    newest = max(newest, stamp)
                if newest:
                    self.clock.observe(newest)
        finally:
            # Whatever happened (even cancellation at shutdown), every asker
            # gets an answer: what was found, possibly nothing.
            for waiter in batch.waiters:
                waiter.peer_answered(found, self.stats)

    async def delete(self, keys: Iterable[bytes], stamp: bytes) -> set[bytes]:
        """Delete keys on the peers whose filters match; the keys they had."""
        by_peer: dict[str, list[bytes]] = {}
        for key in keys:
            for name in self.candidates(key):
                by_peer.setdefault(name, []).append(key)
        deleted: set[bytes] = set()
        if not by_peer:
            return deleted
        requests = [(name, RequestDelete(stamp, tuple(batch)))
                    for name, peer_keys in by_peer.items() for batch in _batches(peer_keys)]
        self.stats.lookup_messages += len(requests)
        results = await asyncio.gather(*(self._ask(name, request) for name, request in requests),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Fulfilled):
                deleted.update(split_keys(result.data))
        return deleted

    async def _ask(self, name: str, command: Any) -> Any:
        link = self.links.get(name)
        if link is None:
            raise PeerUnavailableError(f"no link to {name}")
        try:
            return await link.request(command, self.config.lookup_timeout)
        except PeerTimeoutError:
            log.warning("peer %s did not answer a lookup in %.2fs", name,
                        self.config.lookup_timeout)
            raise

    # -- what peers ask (called by Node for the peer dialect) ------------------

    def on_connect(self, command: RequestConnect) -> bytes:
        """A peer introduced itself: admit it and make sure we dial it back."""
        if command.name == self.name:
            if command.incarnation != self.incarnation:
                log.warning("another node uses our name %r (at %s)", self.name, command.address)
            return self.identity()
        self._check_node_id(command.name)
        now = time.monotonic()
        peer, is_new = self.membership.admit(command.name, parse_address(command.address),
                                             command.incarnation, now)
        # Its link to us is new, so it may have dropped our filter while we
        # were down to it (a paused node): send it a full copy next round.
        self.feed.reset(command.name)
        if is_new:
            self._drop_link(command.name)
            log.info("peer %s (%s) joined", command.name, command.address)
        if command.name not in self.links and command.name not in self._dialing:
            self._spawn(self._dial(peer), f"dial {peer.name}")
        return self.identity()

    def _check_node_id(self, name: str) -> None:
        """Stamps break ties by node id: two names with one id cannot coexist."""
        ident = node_id(name)
        for other in [self.name, *self.membership.peers]:
            if other != name and node_id(other) == ident:
                raise ProtocolError(
                    f"node name {name!r} has the same id (CRC-32 {ident:08x}) as {other!r}; "
                    "rename one of them")

    def identity(self) -> bytes:
        return f"{self.name} {self.advertise} {self.incarnation}".encode()

    def on_disconnect(self, name: str) -> None:
        peer = self.membership.get(name)
        if peer is not None:
            peer.apply(PeerEvent.LEAVE, time.monotonic())
            log.info("peer %s left the cluster", name)
            self._forget(name)

    def on_filter(self, name: str, data: bytes) -> int:
        """Apply a peer's filter push; returns the version we now hold."""
        if self.membership.get(name) is None:
            raise FilterError(f"filter from unknown peer {name!r}: send REQUEST CONNECT first")
        replica = self.replicas.setdefault(name, FilterReplica())
        replica.apply(data, max_bits=self.config.max_peer_line_bytes * 8)
        return replica.version

    # -- dialling and handshakes ------------------------------------------------

    async def _dial_seed(self, address: str) -> None:
        """Dial a seed until it answers (it may start after us)."""
        delay = self.membership.timing.retry_base
        while self._running:
            known = self.membership.by_address(parse_address(address))
            if known is not None and known.name in self.links:
                return
            if await self._connect(address):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.membership.timing.retry_max)

    async def _dial(self, peer: Peer) -> None:
        if peer.name in self._dialing:
            return
        self._dialing.add(peer.name)
        try:
            if not await self._connect(peer.address_text, expected=peer.name):
                current = self.membership.get(peer.name)
                if current is peer:
                    peer.apply(PeerEvent.DIAL_FAILED, time.monotonic())
                    self.membership.schedule_retry(peer, time.monotonic())
        finally:
            self._dialing.discard(peer.name)

    async def _connect(self, address: str, expected: str | None = None) -> bool:
        """Open a link, introduce ourselves, learn who answered; True on success."""
        host, port = parse_address(address)
        timeout = self.config.lookup_timeout
        try:
            link = await PeerLink.open(host, port, expected or address,
                                       self.config.max_peer_line_bytes, timeout, self._link_lost)
        except PeerUnavailableError as exc:
            log.debug("%s", exc)
            return False
        try:
            reply = await link.request(
                RequestConnect(self.name, self.advertise, self.incarnation), timeout)
            name, their_address, incarnation = _parse_identity(reply)
        except (OliviaError, ValueError) as exc:
            log.warning("handshake with %s failed: %s", address, exc)
            link.close()
            return False
        if name == self.name:
            link.close()  # we dialled ourselves (a seed list naming this node)
            return True
        try:
            self._check_node_id(name)
        except ProtocolError as exc:
            log.error("not joining %s: %s", name, exc.message)
            link.close()
            return False
        now = time.monotonic()
        peer, is_new = self.membership.admit(name, parse_address(their_address), incarnation, now)
        if is_new:
            self._drop_link(name)
            log.info("peer %s (%s) joined", name, their_address)
        old = self.links.get(name)
        if old is not None and old is not link:
            old.close()
        link.label = name
        self.links[name] = link
        self.feed.reset(name)  # it gets our full filter next round
        if peer.apply(PeerEvent.HANDSHAKE_OK, now):
            log.info("peer %s is %s", name, peer.state.value)
        self._spawn(self._exchange_peers(name), f"peer exchange with {name}")
        return True

    def _link_lost(self, link: PeerLink) -> None:
        for name, current in list(self.links.items()):
            if current is link:
                del self.links[name]
                peer = self.membership.get(name)
                if peer is not None and peer.apply(PeerEvent.LINK_LOST, time.monotonic()):
                    log.warning("lost link to %s: %s", name, peer.state.value)
                    if peer.state is PeerState.DOWN:
                        self._mark_down(peer)

    async def _exchange_peers(self, name: str) -> None:
        """Ask a peer whom it sees alive; dial the ones we do not know."""
        link = self.links.get(name)
        if link is None:
            return
        try:
            reply = await link.request(RequestPeers(), self.config.lookup_timeout)
        except OliviaError:
            return
        if not isinstance(reply, Fulfilled) or not reply.data:
            return
        for address in reply.data.decode("ascii", "replace").split(","):
            if address == self.advertise or address in self._dialing:
                continue
            try:
                known = self.membership.by_address(parse_address(address))
            except ValueError:
                continue
            if known is None or known.state in (PeerState.DOWN, PeerState.LEFT):
                self._dialing.add(address)
                self._spawn(self._connect_once(address), f"dial {address}")

    async def _connect_once(self, address: str) -> None:
        try:
            await self._connect(address)
        finally:
            self._dialing.discard(address)

    # -- failure detection --------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        timing = self.membership.timing
        while self._running:
            await asyncio.sleep(timing.heartbeat_interval)
            if not self._heartbeating:
                # Not awaited: a silent peer's timeout must not delay the
                # timer-driven transitions below (suspect -> down).
                self._heartbeating = True
                self._spawn(self._heartbeats(), "heartbeats")
            now = time.monotonic()
            for peer, event in self.membership.due(now):
                if not peer.apply(event, now):
                    continue
                if peer.state is PeerState.DOWN:
                    self._mark_down(peer)
                elif peer.state is PeerState.CONNECTING:
                    self._spawn(self._dial(peer), f"redial {peer.name}")
            for peer in self.membership:
                if peer.state is PeerState.SUSPECT and peer.name not in self.links:
                    self._spawn(self._dial(peer), f"redial {peer.name}")
            if now - self._last_exchange > 1.0 and self.links:
                self._last_exchange = now
                self._spawn(self._exchange_peers(random.choice(list(self.links))),
                            "peer exchange")

    async def _heartbeats(self) -> None:
        try:
            await self._heartbeat_round()
        finally:
            self._heartbeating = False

    async def _heartbeat_round(self) -> None:
        timing = self.membership.timing
        targets = [(p, self.links[p.name]) for p in self.membership
                   if p.state in (PeerState.ALIVE, PeerState.SUSPECT) and p.name in self.links]
        if not targets:
            return
        results = await asyncio.gather(
            *(link.request(Ping(b"heartbeat"), timing.heartbeat_timeout) for _, link in targets),
            return_exceptions=True)
        now = time.monotonic()
        for (peer, _), result in zip(targets, results, strict=True):
            event = PeerEvent.HEARTBEAT_MISSED if isinstance(result, BaseException) \
                else PeerEvent.HEARTBEAT_OK
            if peer.apply(event, now):
                log.warning("peer %s is %s", peer.name, peer.state.value)

    def _mark_down(self, peer: Peer) -> None:
        log.warning("peer %s is down; retrying with backoff", peer.name)
        # Its queued invalidations stay: if it was only cut off or paused, it
        # still holds copies they must replace when it is back.
        self._drop_link(peer.name, keep_outbox=True)
        self.membership.schedule_retry(peer, time.monotonic())

    def _drop_link(self, name: str, keep_outbox: bool = False) -> None:
        link = self.links.pop(name, None)
        if link is not None:
            link.close()
        self.replicas.pop(name, None)
        self.feed.reset(name)
        if not keep_outbox:  # it left, or restarted empty
            self._outbox.pop(name, None)

    def _forget(self, name: str) -> None:
        self._drop_link(name)
        self.membership.forget(name)

    # -- gossip -----------------------------------------------------------------

    async def _gossip_loop(self) -> None:
        while self._running:
            await asyncio.sleep(self.config.gossip_interval)
            self._gossip_round()

    def _gossip_round(self) -> None:
        if not self.membership.peers:
            return  # alone: a peer that arrives gets a full copy first anyway
        self.own_filter.flush()  # this turn's new keys go out in this round
        self.feed.new_round()
        fresh, self.invalidations = self.invalidations, []
        for peer in self.membership:
            # Peers that are unreachable keep theirs (bounded) for when they are
            # back: a node that was only paused may still hold old copies.
            outbox = self._outbox.setdefault(peer.name, [])
            outbox.extend(fresh)
            if len(outbox) > MAX_PENDING_INVALIDATIONS:
                log.warning("dropping %d invalidations for %s: it is not keeping up",
                            len(outbox) - MAX_PENDING_INVALIDATIONS, peer.name)
                del outbox[:-MAX_PENDING_INVALIDATIONS]
        for peer in self.membership.alive():
            name = peer.name
            if name not in self.links:
                continue
            if name not in self._pushing_filter:
                data = self.feed.update_for(name)
                if data is not None:
                    self._pushing_filter.add(name)
                    self._spawn(self._push_filter(name, data, self.bloom.version),
                                f"filter to {name}")
            if name not in self._pushing_invalidations and self._outbox.get(name):
                invalidations = self._outbox.pop(name)
                self._pushing_invalidations[name] = len(invalidations)
                self._spawn(self._push_invalidations(name, invalidations),
                            f"invalidations to {name}")

    async def _push_filter(self, name: str, data: bytes, version: int) -> None:
        """Send one peer our filter change (a full copy or a delta)."""
        try:
            link = self.links.get(name)
            if link is None:
                return
            push = RequestFilter(self.name, data)
            self.stats.gossip_messages += 1
            self.stats.gossip_bytes += len(push.payload()) + 16  # + tag, verb, LF
            try:
                await link.request(push, max(self.config.lookup_timeout, 1.0))
                self.feed.acked(name, version)
            except OliviaError as exc:
                # Unknown version, lost update, rejected: a full copy next round.
                self.feed.reset(name)
                log.debug("filter push to %s failed: %s", name, exc)
        finally:
            self._pushing_filter.discard(name)

    async def _push_invalidations(self, name: str,
                                  invalidations: list[tuple[bytes, bytes]]) -> None:
        """Send one peer the invalidations, in order, one batch in flight at a
        time; what is not delivered goes back to the front of its outbox."""
        batches = _batches(invalidations)
        try:
            link = self.links.get(name)
            if link is None:
                self._requeue(name, batches)
                return
            timeout = max(self.config.lookup_timeout, 1.0)
            for index, batch in enumerate(batches):
                notice = RequestInvalidate(tuple(batch))
                self.stats.gossip_messages += 1
                self.stats.gossip_bytes += len(notice.payload()) + 16
                try:
                    await link.request(notice, timeout)
                except OliviaError as exc:
                    self._requeue(name, batches[index:])
                    log.debug("invalidations to %s failed: %s", name, exc)
                    return
                self._pushing_invalidations[name] -= len(batch)
        finally:
            self._pushing_invalidations.pop(name, None)

    def _requeue(self, name: str, batches: list[list[tuple[bytes, bytes]]]) -> None:
        if self.membership.get(name) is None:
            return  # it left: nothing of ours to replace
        rest = [item for batch in batches for item in batch]
        self._outbox[name] = rest + self._outbox.get(name, [])


class _NoFilter:
    def __contains__(self, key: bytes) -> bool:
        return False


_EMPTY = _NoFilter()


Found = dict[bytes, tuple[bytes, bytes]]  # key -> (wire-form value, stamp)


@dataclass(slots=True)
class _LookupBatch:
    """The keys one peer is asked for in one turn of the loop, and who asked."""

    keys: dict[bytes, None] = field(default_factory=dict)  # an ordered set
    waiters: list[_Waiter] = field(default_factory=list)


class _Waiter:
    """One lookup() call: its keys, the peers yet to answer, what they found."""

    __slots__ = ("done", "found", "keys", "remaining")

    def __init__(self, keys: Collection[bytes], done: Callable[[Found], None]) -> None:
        self.keys = keys
        self.done = done
        self.remaining = 0
        self.found: Found = {}

    def peer_answered(self, answers: Found, stats: Stats) -> None:
        found = self.found
        for key in self.keys:
            hit = answers.get(key)
            if hit is not None:
                best = found.get(key)
                if best is None or hit[1] > best[1]:
                    found[key] = hit
        self.remaining -= 1
        if self.remaining == 0:
            stats.remote_hits += len(found)
            try:
                self.done(found)
            except Exception as exc:  # one asker's bug must not starve the others
                log.error("internal error answering a lookup: %r", exc)


def _batches(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + BATCH_ITEMS] for i in range(0, len(items), BATCH_ITEMS)]


def _parse_identity(reply: Any) -> tuple[str, str, int]:
    if not isinstance(reply, Fulfilled):
        raise ValueError(f"unexpected reply {reply!r}")
    name, address, incarnation = reply.data.decode("ascii").split(" ")
    parse_address(address)
    return name, address, int(incarnation)
