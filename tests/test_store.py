"""Pure tests of the store and its expiry heap, driven by a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from olivia.core.store import Store
from tests.helpers import FakeClock


def make() -> tuple[Store, FakeClock]:
    clock = FakeClock()
    return Store(clock), clock


def test_set_get_delete() -> None:
    store, _ = make()
    store.set(b"k", b"v")
    assert store.get(b"k") == b"v"
    assert len(store) == 1
    assert store.delete(b"k") is True
    assert store.delete(b"k") is False
    assert store.get(b"k") is None


def test_empty_value_is_a_value() -> None:
    store, _ = make()
    store.set(b"k", b"")
    assert store.get(b"k") == b""
    assert b"k" in store


def test_key_expires_lazily_on_access() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"v", 0.2)
    clock.advance(0.19)
    assert store.get(b"k") == b"v"
    clock.advance(0.01 + 1e-9)
    assert store.get(b"k") is None
    assert store.expired_count == 1
    assert len(store) == 0


def test_expire_due_evicts_from_the_heap_without_access() -> None:
    store, clock = make()
    for i in range(10):
        store.set_with_ttl(b"k%d" % i, b"v", 1 + i)
    store.set(b"forever", b"v")
    clock.advance(5.5)
    assert sorted(store.expire_due()) == [b"k%d" % i for i in range(5)]
    assert len(store) == 6
    assert store.expired_count == 5


def test_expire_due_respects_the_limit() -> None:
    store, clock = make()
    for i in range(10):
        store.set_with_ttl(b"k%d" % i, b"v", 1)
    clock.advance(2)
    assert len(store.expire_due(limit=3)) == 3
    assert len(store.expire_due(limit=None)) == 7


def test_overwrite_without_ttl_survives_the_old_heap_entry() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"old", 1)
    store.set(b"k", b"new")
    clock.advance(2)
    assert store.expire_due() == []
    assert store.get(b"k") == b"new"
    assert store.ttl(b"k") is None


def test_overwrite_with_longer_ttl_survives_the_old_heap_entry() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"old", 1)
    store.set_with_ttl(b"k", b"new", 10)
    clock.advance(2)
    assert store.expire_due() == []
    assert store.get(b"k") == b"new"
    clock.advance(9)
    assert store.expire_due() == [b"k"]


def test_delete_then_recreate_survives_the_old_heap_entry() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"old", 1)
    assert store.delete(b"k")
    store.set(b"k", b"new")
    clock.advance(2)
    assert store.expire_due() == []
    assert store.get(b"k") == b"new"


def test_deleting_an_expired_key_reports_it_absent() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"v", 1)
    clock.advance(1)
    assert store.delete(b"k") is False
    assert store.expired_count == 1


def test_stale_heap_entries_are_compacted() -> None:
    store, _ = make()
    for i in range(20_000):
        store.set_with_ttl(b"k", b"v%d" % i, 100 + i)
    # One live deadline: the heap is rebuilt instead of growing to 20,000.
    assert len(store._heap) <= 2 * 1 + 1024 + 1
    assert store.next_deadline() is not None


def test_keys_lists_live_keys_only() -> None:
    store, clock = make()
    store.set(b"a", b"1")
    store.set_with_ttl(b"b", b"2", 1)
    clock.advance(2)
    assert list(store.keys()) == [b"a"]


def test_ttl_reports_time_left() -> None:
    store, clock = make()
    store.set_with_ttl(b"k", b"v", 10)
    clock.advance(4)
    assert store.ttl(b"k") == 6


ops = st.lists(st.tuples(
    st.sampled_from(["set", "setex", "del", "tick", "expire"]),
    st.sampled_from([b"a", b"b", b"c"]),
    st.integers(1, 5),
), max_size=60)


@given(ops)
def test_store_matches_a_simple_model(operations: list[tuple[str, bytes, int]]) -> None:
    """Against a dict of key -> (value, deadline), whatever the interleaving."""
    store, clock = make()
    model: dict[bytes, tuple[bytes, float | None]] = {}
    for step, (op, key, n) in enumerate(operations):
        value = b"v%d" % step
        if op == "set":
            store.set(key, value)
            model[key] = (value, None)
        elif op == "setex":
            store.set_with_ttl(key, value, n)
            model[key] = (value, clock.now + n)
        elif op == "del":
            live = key in model and (model[key][1] is None or model[key][1] > clock.now)  # type: ignore[operator]
            assert store.delete(key) is live
            model.pop(key, None)
        elif op == "tick":
            clock.advance(n / 2)
        else:
            store.expire_due()
        for k in (b"a", b"b", b"c"):
            entry = model.get(k)
            expected = None
            if entry is not None and (entry[1] is None or entry[1] > clock.now):
                expected = entry[0]
            assert store.get(k) == expected
