"""The pure parts of replication: placement, tombstones, slot digests, and
the rule that the newest version wins whatever order copies arrive in."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.cluster.placement import Placement
from olivia.core.clock import HybridClock
from olivia.core.keyspace import Keyspace
from olivia.core.requests import Copy
from olivia.core.slots import SLOTS, SlotDigests, slot_of
from olivia.core.store import Store
from olivia.core.tombstones import Tombstones
from tests.helpers import FakeClock

NAMES = [f"node{i}" for i in range(6)]


# -- placement ---------------------------------------------------------------------------


@given(st.sets(st.sampled_from(NAMES), min_size=1), st.integers(0, 3))
def test_every_node_computes_the_same_homes(members: set[str], replicas: int) -> None:
    views = []
    for me in members:
        placement = Placement(me, replicas)
        placement.update(members - {me})
        views.append([placement.homes(slot) for slot in range(0, SLOTS, 97)])
    assert all(view == views[0] for view in views)
    for homes in views[0]:
        assert len(homes) == min(replicas + 1, len(members))
        assert len(set(homes)) == len(homes)


def test_a_member_leaving_moves_only_the_slots_it_was_a_home_of() -> None:
    placement = Placement("node0", 1)
    placement.update(NAMES[1:5])
    before = {slot: placement.homes(slot) for slot in range(SLOTS)}
    staying = [name for name in NAMES[:5] if name != "node3"]
    for slot, homes in before.items():
        after = placement.homes(slot, staying)
        if "node3" not in homes:
            assert after == homes
        else:
            assert set(homes) - {"node3"} <= set(after)
    moved = sum("node3" in homes for homes in before.values())
    assert 0.3 < moved / SLOTS < 0.5  # about 2 of 5 slots


def test_update_reports_changes_and_moves_the_epoch() -> None:
    placement = Placement("a", 1)
    assert placement.update(["b", "c"])
    epoch = placement.epoch
    assert not placement.update(["c", "b", "a"])
    assert placement.epoch == epoch
    assert placement.update(["b"])
    assert placement.members == ("a", "b")


def test_likely_holders_come_first() -> None:
    placement = Placement("a", 1)
    placement.update(["b", "c", "d"])
    key = b"some-key"
    homes = placement.homes(slot_of(key))
    ordered = placement.order(key, ["a", "b", "c", "d"])
    assert tuple(ordered[:2]) == homes


# -- tombstones ----------------------------------------------------------------------------


def test_tombstones_expire_after_their_ttl() -> None:
    clock = FakeClock()
    tombstones = Tombstones(10.0, 100, clock)
    tombstones.add(b"k", b"\x01" * 12)
    clock.advance(9.9)
    assert tombstones.expire() == 0
    assert tombstones.get(b"k") == b"\x01" * 12
    clock.advance(0.2)
    assert tombstones.expire() == 1
    assert tombstones.get(b"k") is None
    assert len(tombstones) == 0


def test_tombstones_are_bounded_and_the_oldest_go_first() -> None:
    tombstones = Tombstones(100.0, 1000, FakeClock())
    for i in range(5000):
        tombstones.add(b"k%d" % i, i.to_bytes(12, "big"))
    assert len(tombstones) == 1000
    assert tombstones.get(b"k3999") is None
    assert tombstones.get(b"k4000") is not None


def test_deleting_one_key_over_and_over_stays_bounded() -> None:
    tombstones = Tombstones(100.0, 1000, FakeClock())
    for i in range(100_000):
        tombstones.add(b"k", i.to_bytes(12, "big"))
    assert len(tombstones) == 1
    assert len(tombstones._order) <= 2 * 1 + 1024


def test_only_a_newer_write_or_delete_replaces_a_tombstone() -> None:
    tombstones = Tombstones(100.0, 1000, FakeClock())
    new, old = (2).to_bytes(12, "big"), (1).to_bytes(12, "big")
    assert tombstones.add(b"k", new)
    assert not tombstones.add(b"k", old)
    tombstones.discard(b"k", old)  # a write older than the delete
    assert tombstones.get(b"k") == new
    tombstones.discard(b"k", (3).to_bytes(12, "big"))
    assert tombstones.get(b"k") is None


# -- newest wins, in any order ---------------------------------------------------------------

KEYS = [b"a", b"b", b"c"]
copies = st.lists(
    st.builds(Copy, st.sampled_from(KEYS), st.one_of(st.none(), st.binary(max_size=4)),
              st.integers(1, 10**6).map(lambda n: n.to_bytes(12, "big")), st.none()),
    max_size=12, unique_by=lambda copy: copy.stamp)


def _keyspace() -> Keyspace:
    clock = FakeClock()
    return Keyspace(Store(clock), HybridClock("n"), 1 << 20, Tombstones(100.0, 1000, clock))


def _state(keyspace: Keyspace) -> dict[bytes, tuple[bytes, bool]]:
    state = {}
    for key in KEYS:
        version = keyspace.version_of(key)
        if version is not None:
            state[key] = (version.stamp, version.tombstone)
    return state


@settings(max_examples=200)
@given(copies, st.randoms())
def test_copies_in_any_order_end_at_the_newest_version(versions: list[Copy], rnd: object
                                                       ) -> None:
    expected = {}
    for copy in sorted(versions, key=lambda copy: copy.stamp):
        expected[copy.key] = (copy.stamp, copy.value is None)
    for _ in range(3):
        shuffled = list(versions)
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        keyspace = _keyspace()
        # Deliveries in pieces, some twice (a retried push): the same end.
        for copy in itertools.chain(shuffled, shuffled[:2]):
            keyspace.apply_copies([copy])
        assert _state(keyspace) == expected
        for key, (stamp, tombstone) in expected.items():
            held = keyspace.store.get(key)
            assert (held is None) == tombstone
            if held is not None:
                assert held[:12] == stamp


def test_a_delete_elsewhere_leaves_a_tombstone_an_older_copy_cannot_beat() -> None:
    keyspace = _keyspace()
    old, delete = (1).to_bytes(12, "big"), (2).to_bytes(12, "big")
    keyspace.apply_copies([Copy(b"k", b"v", old, None)])
    assert keyspace.drop_if_older(b"k", delete, deleted=True)
    assert keyspace.apply_copies([Copy(b"k", b"v", old, None)]) == []
    assert keyspace.store.get(b"k") is None


# -- slot digests ----------------------------------------------------------------------------


@settings(max_examples=100)
@given(copies, st.randoms())
def test_digests_depend_only_on_the_versions_held(versions: list[Copy], rnd: object) -> None:
    digests = []
    for _ in range(2):
        shuffled = list(versions)
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        keyspace = _keyspace()
        keyspace.start_digests()
        for copy in shuffled:
            keyspace.apply_copies([copy])
        rebuilt = SlotDigests()
        rebuilt.rebuild(keyspace.store.items(), keyspace.tombstones.items())
        assert rebuilt.digests == keyspace.digests.digests
        assert rebuilt.counts == keyspace.digests.counts
        digests.append(keyspace.digests.digests)
    assert digests[0] == digests[1]


def test_a_different_version_changes_its_slot_digest_only() -> None:
    a, b = _keyspace(), _keyspace()
    for keyspace in (a, b):
        keyspace.start_digests()
        keyspace.apply_copies([Copy(b"x%d" % i, b"v", (5).to_bytes(12, "big"), None)
                               for i in range(100)])
    assert a.digests.digests == b.digests.digests
    b.apply_copies([Copy(b"x7", b"w", (6).to_bytes(12, "big"), None)])
    differ = [slot for slot in range(SLOTS) if a.digests.digests[slot] != b.digests.digests[slot]]
    assert differ == [slot_of(b"x7")]
