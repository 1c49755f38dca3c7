"""A key a node holds is always found from its peers: regression tests for
filters that lost a live key, or whose updates queued behind bulk traffic
(two real nodes on loopback; contract section 3, visibility within 0.5 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ClusterProcesses, LineClient, OliviaProcess, info_of, wait_until

VISIBLE_WITHIN = 0.5  # seconds, the contract's visibility bound


@pytest.fixture
def pair_with_capacity(tmp_path: Path, request: pytest.FixtureRequest
                       ) -> Iterator[tuple[OliviaProcess, OliviaProcess]]:
    """Node A with ``[bloom] capacity`` set to the test's parameter, and B joined to it."""
    config = tmp_path / "a.toml"
    config.write_text(f"[bloom]\ncapacity = {request.param}\n")
    cluster = ClusterProcesses()
    try:
        a = cluster.add("--config", str(config))
        b = cluster.add()
        cluster.wait_formed()
        yield a, b
    finally:
        cluster.close()


def load(client: LineClient, keys: list[bytes], value: bytes = b"x") -> None:
    """SET every key, 1000 to a line, 50 lines in flight (the node stops
    reading from a client that does not read its replies)."""
    lines = [b"SET " + b",".join(k + b":" + value for k in keys[i:i + 1000]) + b"\n"
             for i in range(0, len(keys), 1000)]
    for start in range(0, len(lines), 50):
        window = lines[start:start + 50]
        client.send(b"".join(window))
        replies = client.read_lines(len(window))
        assert all(r.startswith(b":SAT ") for r in replies)


def seen_from(client: LineClient, key: bytes, value: bytes, within: float) -> float:
    """Seconds until ``GET key`` at ``client`` answers ``value``; fails after ``within``."""
    started = time.monotonic()
    expected = b":GOT " + key + b":" + value
    wait_until(lambda: client.request(b"GET " + key) == expected, timeout=within,
               interval=0.005, what=f"{key!r} to be visible from the other node")
    return time.monotonic() - started


@pytest.mark.parametrize("pair_with_capacity", [1000], indirect=True)
def test_a_key_rewritten_after_lazy_expiry_survives_filter_growth(
        pair_with_capacity: tuple[OliviaProcess, OliviaProcess]) -> None:
    a, b = pair_with_capacity
    with a.client() as at_a, b.client() as at_b:
        load(at_a, [b"f%d" % i for i in range(1000)])
        wait_until(lambda: info_of(at_b)["remote_lookups"] is not None and
                   at_b.request(b"GET f999") == b":GOT f999:x", what="A's keys at B")
        # k expires at once; REQUEST BLOOMFILTER flushes the new-key batch,
        # which grows the filter (1001 > 1000) while k is still in the table.
        at_a.send(b"SETEX k:v1:0.0001\n" + b"SET f0:y\n" * 100
                  + b"REQUEST BLOOMFILTER\nSET k:v2\n")
        replies = at_a.read_lines(103)
        assert replies[-1] == b":SAT k:v2"
        assert at_a.request(b"GET k") == b":GOT k:v2"
        seen_from(at_b, b"k", b"v2", VISIBLE_WITHIN)
        wait_until(lambda: (lambda i: i["keys"] == i["bloom_keys"] == "1001")(info_of(at_a)),
                   what="A's filter to count exactly its keys")


@pytest.mark.slow
@pytest.mark.parametrize("pair_with_capacity", [262_144], indirect=True)
def test_a_key_rewritten_after_lazy_expiry_is_found_while_a_refresh_is_due(
        pair_with_capacity: tuple[OliviaProcess, OliviaProcess]) -> None:
    """No REQUEST BLOOMFILTER: growth comes from an ordinary batch, and the
    key used to stay unfindable until a refresh of the whole table ended."""
    a, b = pair_with_capacity
    with a.client() as at_a, b.client() as at_b:
        load(at_a, [b"f%d" % i for i in range(262_142)])
        wait_until(lambda: at_b.request(b"GET f262141") == b":GOT f262141:x",
                   what="A's keys at B")
        assert at_a.request(b"DEL f1") == b":DELETED f1"
        wait_until(lambda: info_of(at_a)["bloom_keys"] == "262141", what="the DEL counted")
        at_a.send(b"SETEX k:v1:0.002\n" + b"SET f0:y\n" * 3000
                  + b"SET n1:x,n2:x,n3:x,n4:x\nDEL f5\nSET k:v2\n")
        replies = at_a.read_lines(3004)
        assert replies[-1] == b":SAT k:v2" and replies[-2] == b":DELETED f5"
        seen_from(at_b, b"n4", b"x", VISIBLE_WITHIN)
        seen_from(at_b, b"k", b"v2", VISIBLE_WITHIN)
        wait_until(lambda: (lambda i: i["keys"] == i["bloom_keys"])(info_of(at_a)),
                   what="A's filter to count exactly its keys")


@pytest.mark.slow
def test_a_new_key_is_visible_while_a_bulk_load_is_still_being_invalidated() -> None:
    """A bulk load queues hundreds of INVALIDATE lines for each peer; the
    filter update for a key written after it must not wait behind them."""
    cluster = ClusterProcesses()
    try:
        a, b = cluster.add(), cluster.add()
        cluster.wait_formed()
        with a.client() as at_a, b.client() as at_b:
            load(at_a, [b"bulk%07d" % i for i in range(300_000)])
            assert at_a.request(b"SET fresh:1") == b":SAT fresh:1"
            seen_from(at_b, b"fresh", b"1", VISIBLE_WITHIN)
            pending = int(info_of(at_a)["invalidations_pending"])
        assert pending > 0, "the invalidations were all sent already: the test proves nothing"
    finally:
        cluster.close()
