"""Where copies of a key belong: the homes of its slot, by rendezvous hashing.

Every node ranks the alive members (itself included) for a slot by a hash of
(slot, node name) and takes the first ``replicas + 1``: the slot's homes.
Every node that sees the same members computes the same homes, without
asking anyone, and a member joining or leaving moves only the slots it
wins or held (rendezvous hashing's minimal disruption).  Placement decides
where copies are made and repaired; reads still find copies through the
peers' bloom filters (it only orders the candidates: likely holders first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mmh3

from olivia.core.slots import SLOTS, slot_of

_RANK_SEED = 0x0A1AC3


def _score(slot: int, name: str) -> int:
    return mmh3.hash64(b"%d/%s" % (slot, name.encode()), _RANK_SEED, True, False)[0]


class Placement:
    """The homes of every slot, for one view of the alive members."""

    def __init__(self, me: str, replicas: int) -> None:
        self.me = me
        self.replicas = replicas
        self._members: tuple[str, ...] = (me,)
        self._ranked: dict[int, tuple[str, ...]] = {}  # slot -> members, best first
        # slot -> its homes, and whether this node is one: looked up for
        # every key written or copied, so kept in lists (filled on first use).
        self._homes: list[tuple[str, ...] | None] = [None] * SLOTS
        self._home_here: bytearray = bytearray(SLOTS)
        self._home_known: bytearray = bytearray(SLOTS)
        self.epoch = 0  # changes whenever the members do

    @property
    def members(self) -> tuple[str, ...]:
        return self._members

    def update(self, alive: Iterable[str]) -> bool:
        """The alive peers now (this node is always a member); True if that changed."""
        members = tuple(sorted({self.me, *alive}))
        if members == self._members:
            return False
        self._members = members
        self._ranked = {}
        self._homes = [None] * SLOTS
        self._home_known = bytearray(SLOTS)
        self.epoch += 1
        return True

    def ranked(self, slot: int) -> tuple[str, ...]:
        """Every member, the slot's best home first."""
        ranked = self._ranked.get(slot)
        if ranked is None:
            ranked = self._ranked[slot] = tuple(
                sorted(self._members, key=lambda name: _score(slot, name), reverse=True))
        return ranked

    def homes(self, slot: int, members: Sequence[str] | None = None) -> tuple[str, ...]:
        """The slot's ``replicas + 1`` homes (among ``members`` if given:
        a view without some node, as a leaving node computes)."""
        if members is None:
            homes = self._homes[slot]
            if homes is None:
                homes = self._homes[slot] = self.ranked(slot)[:self.replicas + 1]
            return homes
        return tuple(sorted(members, key=lambda name: _score(slot, name),
                            reverse=True))[:self.replicas + 1]

    def home_here(self, slot: int) -> bool:
        """Whether this node is one of the slot's homes."""
        if not self._home_known[slot]:
            self._home_here[slot] = self.me in self.homes(slot)
            self._home_known[slot] = 1
        return bool(self._home_here[slot])

    def homes_of(self, key: bytes) -> tuple[str, ...]:
        return self.homes(slot_of(key))

    def order(self, key: bytes, names: Iterable[str]) -> list[str]:
        """``names`` ordered as likely holders of ``key``: its homes first, in rank."""
        rank = {name: index for index, name in enumerate(self.ranked(slot_of(key)))}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def slots_shared(self, a: str, b: str) -> list[int]:
        """The slots of which both ``a`` and ``b`` are homes."""
        return [slot for slot in range(SLOTS)
                if a in (homes := self.homes(slot)) and b in homes]
