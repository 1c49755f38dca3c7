"""Anti-entropy, repair and hand-over: every key back on its homes.

Replication (olivia.cluster.replication) puts each write on its slot's
homes while they are reachable; this module repairs whatever it missed:

* **Homes agree.**  For every slot it leads (the first of its homes), a node
  compares the slot's digest with each other home (``REQUEST DIGESTS``).
  Only slots that differ twice in a row, a replication timeout apart, and
  were not written here in between, are listed (a write in flight makes a
  slot differ until its copies are stored or have gone elsewhere; a slot
  under a steady load of writes is always in flight, so it is listed anyway
  after MAX_BUSY_ROUNDS rounds): both sides list the
  versions they hold there (``REQUEST VERSIONS``), and each key goes where it is older or
  missing: fetched (``REQUEST FETCH``) or pushed (``REQUEST REPAIR``).  A
  node that restarts empty, comes back from a partition or takes over a dead
  node's slots is brought up to date this way, and only the differences
  travel.
* **Guests hand over.**  A node that holds keys of slots it is not a home of
  (it accepted the write, or it lost the slot when a member joined, or it
  served alone during a partition) offers their versions to the homes
  (``REQUEST OFFER``), pushes what they want, and then forgets its copies,
  so each key ends on exactly its homes.
* **Leaving.**  A node that leaves pushes every key whose copies would drop
  below ``replicas + 1`` (with ``replicas = 0``, every key) to the node that
  becomes a home in its place (:meth:`AntiEntropy.hand_over`).

A round runs every ``cluster.sync_interval`` and soon after each membership
change.  ``under_replicated_keys`` counts the keys of led slots not yet
confirmed on every home since the last change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence

from olivia.cluster.links import PeerLink
from olivia.cluster.peer_table import PeerTable
from olivia.cluster.placement import Placement
from olivia.cluster.replication import replicate_timeout
from olivia.config import Config
from olivia.core.errors import OliviaError
from olivia.core.keyspace import Keyspace
from olivia.core.requests import Copy, Version
from olivia.core.slots import SLOTS, slot_of
from olivia.core.tasks import TaskSet
from olivia.observe.stats import Stats
from olivia.protocols.line.peer import (
    copies_payload,
    digests_payload,
    peer_line,
    slots_payload,
    split_copies,
    split_slots,
    split_versions,
    versions_payload,
)
from olivia.protocols.line.replies import ReplyLine, decode_keys
from olivia.protocols.line.requests import keys_payload

log = logging.getLogger(__name__)

CHUNK = 2000  # keys, versions or copies per request
SLOT_CHUNK = 512  # slots per VERSIONS request
RECHECK_MARGIN = 0.1  # seconds past the replication timeout for the second check
# Rounds a differing slot may be skipped because it is being written to.
# Listing versions costs a scan of the store, so reconciling slots that only
# differ by writes in flight made a 1M-key bulk load 15 times slower.
MAX_BUSY_ROUNDS = 3
CHANGE_DELAY = 0.2  # seconds from a membership change to its round (changes come in bursts)
REQUEST_TIMEOUT = 10.0  # seconds one sync request may take (a VERSIONS scan of 1M keys)
# Seconds a guest copy stays after its homes took it: until their filters
# have surely reached every peer (a gossip round or two), it may be the only
# copy a peer can find.  Checked every DROP_CHECK seconds.
DROP_AFTER = 1.0
DROP_CHECK = 0.25


class AntiEntropy:
    """This node's side of keeping every key on its homes."""

    def __init__(self, config: Config, table: PeerTable, placement: Placement,
                 keyspace: Keyspace, stats: Stats, tasks: TaskSet) -> None:
        self._interval = config.cluster_sync_interval
        self._recheck_delay = replicate_timeout(config) + RECHECK_MARGIN
        self.replicas = config.cluster_replicas
        self._table = table
        self._placement = placement
        self._keyspace = keyspace
        self._stats = stats
        self._tasks = tasks
        #: Keys (values or tombstones) held here in slots this node is not a
        #: home of: offered to the homes next round, then forgotten here.
        self.guests: dict[bytes, None] = {}
        # Guest copies the homes hold, oldest first: forgotten here
        # DROP_AFTER seconds later if still that version.
        self._handed: deque[tuple[bytes, bytes, float]] = deque()  # (key, stamp, when)
        # Led slot -> the other homes it is not yet confirmed with.
        self._unconfirmed: dict[int, set[str]] = {}
        # Led slot -> rounds in a row it differed but was being written to.
        self._busy_rounds: dict[int, int] = {}
        self._members_seen: tuple[str, ...] = ()
        self._lost: set[int] = set()  # slots no longer homed here, keys not yet guests
        self._wake = asyncio.Event()
        self.running = False
        self.rounds = 0

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self.replicas:
            self.running = True
            self._tasks.spawn(self._loop(), "anti-entropy")
            self._tasks.spawn(self._drop_loop(), "guest copies")

    def members_changed(self) -> None:
        """The alive members changed (placement's epoch moved): note what it
        means for this node now, while the view before is known (a round may
        be busy for seconds, and a partition's views come and go faster),
        and start a round soon."""
        if self.running:
            self._keyspace.start_digests()
            self._note_members()
            self._wake.set()

    async def _loop(self) -> None:
        while self.running:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
                await asyncio.sleep(CHANGE_DELAY)
            except TimeoutError:
                pass
            self._wake.clear()
            if len(self._placement.members) > 1:
                try:
                    await self.round()
                except OliviaError as exc:  # a peer went away mid-round: next round
                    log.info("anti-entropy round cut short: %s", exc)
            self._keyspace.tombstones.expire()

    async def _drop_loop(self) -> None:
        while self.running:
            await asyncio.sleep(DROP_CHECK)
            self._forget_handed()

    # -- one round ----------------------------------------------------------

    async def round(self) -> None:
        """Compare led slots with every other home, then hand guests over.
        A change of members ends the round early: the next one starts soon."""
        placement = self._placement
        epoch = placement.epoch
        await self._collect_guests()
        me = placement.me
        for name in placement.members:
            link = self._table.links.get(name)
            if name == me or link is None:
                continue
            slots = [slot for slot in range(SLOTS) if placement.homes(slot)[0] == me
                     and name in placement.homes(slot)]
            if slots:
                await self._sync_homes(name, link, slots)
            if placement.epoch != epoch:
                return
        await self._offer_guests()
        self.rounds += 1

    def _note_members(self) -> None:
        """Led slots are unconfirmed again; slots lost are noted, so that
        their keys become guests (:meth:`_collect_guests`)."""
        placement = self._placement
        before, self._members_seen = self._members_seen, placement.members
        me = placement.me
        self._unconfirmed = {}
        for slot in range(SLOTS):
            homes = placement.homes(slot)
            if homes[0] == me and len(homes) > 1:
                self._unconfirmed[slot] = set(homes[1:])
        if before:
            home_here = placement.home_here
            self._lost.update(slot for slot in range(SLOTS)
                              if not home_here(slot) and me in placement.homes(slot, before))

    async def _collect_guests(self) -> None:
        """The keys and tombstones of slots lost since the last round (and
        not won back) become guests, offered to their homes."""
        home_here = self._placement.home_here
        lost = {slot for slot in self._lost if not home_here(slot)}
        self._lost = set()
        if not lost:
            return
        guests = self.guests
        for step in self._keyspace.keys_in(lost.__contains__):
            guests.update(dict.fromkeys(step))
            await asyncio.sleep(0)
        for key, _ in self._keyspace.tombstones.items():
            if slot_of(key) in lost:
                guests[key] = None
        log.debug("%d slots lost to other members: %d guest keys", len(lost), len(guests))

    async def _sync_homes(self, name: str, link: PeerLink, slots: list[int]) -> None:
        """Bring this node and ``name`` to the same versions of ``slots``."""
        digests = self._keyspace.digests
        differ = await self._differing(link, slots)
        busy: set[int] = set()
        if differ:
            before = {slot: digests.digests[slot] for slot in differ}
            await asyncio.sleep(self._recheck_delay)
            differ = await self._differing(link, differ)
            # Slots not confirmed since the members changed are expected to
            # differ for real: repaired now, writes in flight or not.
            unconfirmed = self._unconfirmed
            busy = {slot for slot in differ if digests.digests[slot] != before[slot]
                    and slot not in unconfirmed
                    and self._busy_rounds.get(slot, 0) < MAX_BUSY_ROUNDS}
            differ = [slot for slot in differ if slot not in busy]
        if differ:
            await self._reconcile(name, link, differ)
        for slot in slots:
            if slot in busy:
                self._busy_rounds[slot] = self._busy_rounds.get(slot, 0) + 1
                continue
            self._busy_rounds.pop(slot, None)
            waiting = self._unconfirmed.get(slot)
            if waiting is not None:
                waiting.discard(name)
                if not waiting:
                    del self._unconfirmed[slot]

    async def _differing(self, link: PeerLink, slots: Sequence[int]) -> list[int]:
        digests = self._keyspace.digests.digests
        payload = digests_payload((slot, digests[slot]) for slot in slots)
        reply = await ask(link, payload, self._stats)
        return list(split_slots(reply.payload))

    async def _reconcile(self, name: str, link: PeerLink, slots: list[int]) -> None:
        keyspace = self._keyspace
        mine: dict[bytes, Version] = {}
        for step in keyspace.versions_in(slots):
            mine.update((version.key, version) for version in step)
            await asyncio.sleep(0)
        theirs: dict[bytes, Version] = {}
        for start in range(0, len(slots), SLOT_CHUNK):
            payload = slots_payload(b"VERSIONS", slots[start:start + SLOT_CHUNK])
            reply = await ask(link, payload, self._stats)
            theirs.update((version.key, version) for version in split_versions(reply.payload))
        wanted = [key for key, version in theirs.items()
                  if (held := mine.get(key)) is None or held.stamp < version.stamp]
        given = [key for key, version in mine.items()
                 if (held := theirs.get(key)) is None or held.stamp < version.stamp]
        for start in range(0, len(wanted), CHUNK):
            payload = b"FETCH " + keys_payload(wanted[start:start + CHUNK])
            reply = await ask(link, payload, self._stats)
            taken = keyspace.apply_copies(split_copies(reply.payload))
            self._stats.repair_keys_received += len(taken)
        sent = await push(link, self._stats, keyspace.copies_of(given))
        self._stats.repair_keys_sent += sent
        if wanted or given:
            log.info("anti-entropy with %s: %d slots differed, %d keys fetched, %d sent",
                     name, len(slots), len(wanted), len(given))

    async def _offer_guests(self) -> None:
        """Offer guest keys to their homes; their copies here are forgotten
        DROP_AFTER seconds after the homes took them.  A slot whose digest
        here equals the home's (it holds the same versions: the usual case
        once replication or repair got there) is settled for all its keys at
        once; only the keys of the other slots are offered one by one."""
        guests = self.guests
        if not guests:
            return
        placement, keyspace = self._placement, self._keyspace
        me = placement.me
        by_slot: dict[int, list[Version]] = {}
        owed: dict[bytes, tuple[Version, int]] = {}  # key -> (version, homes yet to take it)
        for key in list(guests):
            slot = slot_of(key)
            homes = placement.homes(slot)
            version = keyspace.version_of(key)
            if me in homes or version is None:
                del guests[key]
                continue
            owed[key] = (version, len(homes))
            by_slot.setdefault(slot, []).append(version)
        for home in {home for slot in by_slot for home in placement.homes(slot)}:
            link = self._table.links.get(home)
            if link is not None:
                slots = sorted(slot for slot in by_slot if home in placement.homes(slot))
                await self._hand_guests(home, link, slots, by_slot, owed)
        now = time.monotonic()
        for key, (version, left) in owed.items():
            if left == 0 and keyspace.version_of(key) == version:
                del guests[key]  # a newer write since puts it back (replication)
                if not version.tombstone:
                    self._handed.append((key, version.stamp, now))

    async def _hand_guests(self, home: str, link: PeerLink, slots: list[int],
                           by_slot: dict[int, list[Version]],
                           owed: dict[bytes, tuple[Version, int]]) -> None:
        """Make sure ``home`` holds this node's guest versions in ``slots``."""
        differ = set(await self._differing(link, slots))
        offered = [version for slot in slots if slot in differ for version in by_slot[slot]]
        taken = 0
        for start in range(0, len(offered), CHUNK):
            chunk = offered[start:start + CHUNK]
            reply = await ask(link, versions_payload(b"OFFER", chunk), self._stats)
            taken += await push(link, self._stats, self._keyspace.copies_of(
                decode_keys(reply.payload)))
        for slot in slots:
            for version in by_slot[slot]:
                held, left = owed[version.key]
                owed[version.key] = (held, left - 1)
        self._stats.repair_keys_sent += taken
        if taken:
            log.info("offered %d guest keys to %s, which took %d", len(offered), home, taken)

    def _forget_handed(self) -> None:
        """Drop the guest copies handed over long enough ago, if unchanged."""
        handed = self._handed
        if not handed:
            return
        due = time.monotonic() - DROP_AFTER
        home_here = self._placement.home_here
        # Oldest first: a tick costs what it drops, not what is waiting.
        while handed and handed[0][2] <= due:
            key, stamp, _ = handed.popleft()
            if not home_here(slot_of(key)):
                self._keyspace.drop_copy(key, stamp)  # only if still that version

    # -- leaving --------------------------------------------------------------

    async def hand_over(self, timeout: float) -> dict[str, int]:
        """Push each key that would fall below its copies when this node goes
        to the node that becomes a home in its place; keys sent, per node."""
        placement, keyspace = self._placement, self._keyspace
        me = placement.me
        staying = [name for name in placement.members if name != me]
        if not staying:
            return {}
        targets: dict[int, tuple[str, ...]] = {}  # slot -> nodes that must get its keys
        for slot in range(SLOTS):
            after = placement.homes(slot, staying)
            now = placement.homes(slot)
            targets[slot] = tuple(after) if not self.replicas else \
                tuple(name for name in after if name not in now)
        batches: dict[str, list[bytes]] = {}
        keys: Iterable[bytes] = (key for step in keyspace.keys_in(lambda _: True)
                                 for key in step)
        tombstoned = (key for key, _ in keyspace.tombstones.items())
        for source in (keys, tombstoned):
            for key in source:
                slot = slot_of(key)
                to = targets[slot] if key not in self.guests else placement.homes(slot, staying)
                for name in to:
                    batches.setdefault(name, []).append(key)
        sent = await asyncio.wait_for(self._send_all(batches), timeout)
        self._stats.handoff_keys += sum(sent.values())
        return sent

    async def _send_all(self, batches: dict[str, list[bytes]]) -> dict[str, int]:
        sent: dict[str, int] = {}

        async def send(name: str, keys: list[bytes]) -> None:
            link = self._table.links.get(name)
            if link is None:
                log.warning("cannot hand %d keys over to %s: no link", len(keys), name)
                return
            sent[name] = 0
            for start in range(0, len(keys), CHUNK):
                copies = self._keyspace.copies_of(keys[start:start + CHUNK])
                sent[name] += await push(link, self._stats, copies)

        started = time.monotonic()
        await asyncio.gather(*(send(name, keys) for name, keys in batches.items()))
        for name, count in sent.items():
            log.info("handed %d keys over to %s in %.1fs", count, name,
                     time.monotonic() - started)
        return sent

    # -- INFO -------------------------------------------------------------------

    def under_replicated(self) -> int:
        """Keys of led slots not yet confirmed on every other home."""
        if not self.running or not self._keyspace.digests.on:
            return 0
        counts = self._keyspace.digests.counts
        return sum(counts[slot] for slot in self._unconfirmed)


async def ask(link: PeerLink, payload: bytes, stats: Stats) -> ReplyLine:
    """One anti-entropy request; its bytes and its reply's count in ``sync_bytes``."""
    stats.sync_bytes += len(payload)
    reply = await link.request(peer_line(payload), REQUEST_TIMEOUT)
    stats.sync_bytes += len(reply.payload)
    return reply


async def push(link: PeerLink, stats: Stats, copies: list[Copy]) -> int:
    """Send ``copies`` with ``REQUEST REPAIR``, one chunk at a time (so a
    large hand-over never piles up in the link's buffer); how many were sent."""
    for start in range(0, len(copies), CHUNK):
        await ask(link, copies_payload(b"REPAIR", copies[start:start + CHUNK]), stats)
    return len(copies)
