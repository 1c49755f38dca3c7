"""The pure parts of SCAN (olivia.core.scan): cursors, the member order, and
one node's pages over a snapshot, with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.core.errors import BadItemError
from olivia.core.scan import (
    SNAPSHOT_IDLE,
    SNAPSHOTS,
    Cursor,
    Scanner,
    first_at_or_after,
    member_hash,
    next_member,
    parse_cursor,
    scan_order,
)
from olivia.core.store import Store
from olivia.core.values import pack
from tests.helpers import FakeClock

STAMP = b"\x00" * 12


def _store(keys: list[bytes], clock: FakeClock) -> Store:
    store = Store(clock)
    for key in keys:
        store.set(key, pack(STAMP, b"v"))
    return store


def _all(scanner: Scanner, count: int, pattern: bytes = b"*") -> list[bytes]:
    position, keys = scanner.page(b"0", count, pattern, lambda key: True)
    while position:
        position, page = scanner.page(position, count, pattern, lambda key: True)
        keys += page
    return keys


@settings(max_examples=60, deadline=None)
@given(st.sets(st.binary(min_size=1, max_size=8), max_size=300), st.integers(1, 50))
def test_a_scan_returns_every_key_once_when_nothing_changes(keys: set[bytes], count: int) -> None:
    clock = FakeClock()
    scanner = Scanner(_store(sorted(keys), clock), clock)
    assert sorted(_all(scanner, count)) == sorted(keys)


def test_pages_skip_deleted_keys_and_respect_count() -> None:
    clock = FakeClock()
    keys = [b"k%03d" % i for i in range(100)]
    store = _store(keys, clock)
    scanner = Scanner(store, clock)
    position, first = scanner.page(b"0", 10, b"*", lambda key: True)
    assert first == keys[:10]
    store.delete(b"k010")
    position, second = scanner.page(position, 10, b"*", lambda key: True)
    assert b"k010" not in second and len(second) == 10
    _, odd = scanner.page(position, 10, b"k??1", lambda key: True)
    assert all(key.endswith(b"1") for key in odd) and len(odd) <= 10


def test_snapshots_expire_and_are_bounded() -> None:
    clock = FakeClock()
    scanner = Scanner(_store([b"a%d" % i for i in range(50)], clock), clock)
    position, _ = scanner.page(b"0", 5, b"*", lambda key: True)
    clock.advance(SNAPSHOT_IDLE + 1)
    with pytest.raises(BadItemError, match="expired"):
        scanner.page(position, 5, b"*", lambda key: True)
    positions = [scanner.page(b"0", 5, b"*", lambda key: True)[0]
                 for _ in range(SNAPSHOTS + 1)]
    with pytest.raises(BadItemError, match="expired"):
        scanner.page(positions[0], 5, b"*", lambda key: True)  # the oldest went
    assert scanner.page(positions[-1], 5, b"*", lambda key: True)[1]


def test_cursors_and_the_member_order() -> None:
    order = scan_order(["n3", "n1", "n2"])
    assert sorted(order) == ["n1", "n2", "n3"]
    assert [member_hash(name) for name in order] == sorted(member_hash(n) for n in order)
    cursor = Cursor(member_hash(order[1]), b"3040")
    assert parse_cursor(cursor.encode()) == cursor
    assert int(cursor.encode()) < 1 << 64  # a Redis cursor
    assert parse_cursor(b"0") is None
    assert first_at_or_after(order, cursor.member) == (order[1], True)
    after = first_at_or_after(order, cursor.member + 1)  # that member is gone: the next
    assert after is not None and after[0] == order[2]
    assert next_member(order, member_hash(order[-1])) is None
    for bad in (b"x", b"-5", b"1.5", b"%d" % (1 << 64), b"00"):
        with pytest.raises(BadItemError):
            parse_cursor(bad)
