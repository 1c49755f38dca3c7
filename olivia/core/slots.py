"""Key slots and their digests: what anti-entropy compares between nodes.

Every key belongs to one of SLOTS slots (a hash of the key, the same on every
node).  The cluster places copies per slot (rendezvous hashing of the slot
over the alive members, olivia.cluster.placement), and two nodes that should
both hold a slot compare it by a digest: the XOR, over every key the node
holds in the slot, of a 64-bit hash of the key's version stamp seeded with a
hash of the key, and the same over the slot's tombstones (with another seed).
XOR makes the digest cheap to keep up to date: a write XORs the old version
out and the new one in.  Two nodes that hold the same versions of the same
keys have the same digests; a difference tells them which slots to list.

Keeping the digests costs about 0.6 µs a write, so it is switched on only
when a node has peers to compare with (:meth:`SlotDigests.rebuild`).
"""

from __future__ import annotations

from collections.abc import Iterable

import mmh3

from olivia.core.clock import STAMP_BYTES

SLOTS = 4096
_SLOT_MASK = SLOTS - 1
_KEY_SEED = 0x0117A
_TOMB_SEED_FLIP = 0x5BD1E995
_hash32 = mmh3.hash
_hash64 = mmh3.hash64


def slot_of(key: bytes) -> int:
    return _hash32(key, _KEY_SEED, False) & _SLOT_MASK


def version_hash(key_hash: int, stamp: bytes, tombstone: bool = False) -> int:
    """The 64-bit hash (signed, as the digests are kept) of one version: a
    key's stamp, or its tombstone's."""
    seed = key_hash ^ _TOMB_SEED_FLIP if tombstone else key_hash
    return _hash64(stamp, seed, True, True)[0]


class SlotDigests:
    """Per slot: the digest of what this node holds, and how many keys."""

    __slots__ = ("counts", "digests", "on")

    def __init__(self) -> None:
        # Lists, not arrays: an array converts every item read and written
        # (measured 0.85 µs a change instead of 0.65).
        self.digests = [0] * SLOTS
        self.counts = [0] * SLOTS
        self.on = False

    def rebuild(self, stored: Iterable[tuple[bytes, bytes]],
                tombstones: Iterable[tuple[bytes, bytes]]) -> None:
        """Start keeping digests: work them out from every key held and every
        tombstone, then follow each change (see the module docstring)."""
        self.digests = [0] * SLOTS
        self.counts = [0] * SLOTS
        for key, value in stored:
            self._toggle(key, value[:STAMP_BYTES], False, 1)
        for key, stamp in tombstones:
            self._toggle(key, stamp, True, 0)
        self.on = True

    def off(self) -> None:
        self.on = False

    def changed(self, key: bytes, old: bytes | None, new: bytes | None) -> None:
        """``key``'s stored form went from ``old`` to ``new`` (None: absent)."""
        key_hash = _hash32(key, _KEY_SEED, False)
        slot = key_hash & _SLOT_MASK
        digest = self.digests[slot]
        if old is not None:
            digest ^= _hash64(old[:STAMP_BYTES], key_hash, True, True)[0]
            self.counts[slot] -= 1
        if new is not None:
            digest ^= _hash64(new[:STAMP_BYTES], key_hash, True, True)[0]
            self.counts[slot] += 1
        self.digests[slot] = digest

    def tombstone(self, key: bytes, stamp: bytes) -> None:
        """A tombstone came or went (XOR both ways)."""
        self._toggle(key, stamp, True, 0)

    def _toggle(self, key: bytes, stamp: bytes, tombstone: bool, count: int) -> None:
        key_hash = _hash32(key, _KEY_SEED, False)
        slot = key_hash & _SLOT_MASK
        self.digests[slot] ^= version_hash(key_hash, stamp, tombstone)
        self.counts[slot] += count
