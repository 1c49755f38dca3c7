"""Command semantics without sockets: a node's verbs run through its line
front end, and its expiry timer and filter on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from olivia.config import Config
from olivia.core.store import Store
from olivia.server.lifecycle import NodeServer
from tests.helpers import FakeClock

Node = NodeServer


def run(node: NodeServer, line: bytes) -> bytes:
    reply = node.line.connection("127.0.0.1:1").execute(line, False)
    assert isinstance(reply, bytes)  # no peers: every reply is immediate
    return reply


async def started(config: Config | None = None) -> NodeServer:
    node = NodeServer(config or Config(port=0))
    await node.start()
    return node


def test_commands_against_the_store() -> None:
    node = Node(Config(), Store(FakeClock()))
    assert run(node, b"SET a:1,b:2,a:3") == b":SAT a:1,b:2,a:3\n"
    assert run(node, b"GET a") == b":GOT a:3\n"  # the last duplicate wins
    assert run(node, b"GET a,a,zz") == b":GOT a:3,a:3\n"
    assert run(node, b"DEL a,a") == b":DELETED a\n"
    assert run(node, b"t:PING x") == b"t:PONG x\n"
    assert run(node, b"QUIT") == b":BYE\n"


def test_info_counts_live_keys_only() -> None:
    clock = FakeClock()
    node = Node(Config(), Store(clock))
    run(node, b"SET a:1")
    run(node, b"SETEX b:2:1,c:3:5")
    clock.advance(2)
    fields = dict(node.info_fields())
    assert fields["keys"] == "2"
    assert fields["expired_keys"] == "1"
    assert fields["bloom_keys"] == "2"  # the filter counts exactly the keys held
    run(node, b"SETEX c:3:0.5")
    run(node, b"DEL a,zz")
    clock.advance(1)
    run(node, b"SET c:4")  # c was past its TTL, not yet evicted: written again
    fields = dict(node.info_fields())
    assert fields["keys"] == fields["bloom_keys"] == "1"


@pytest.mark.asyncio
async def test_expiry_timer_evicts_without_access() -> None:
    node = await started()
    try:
        run(node, b"SETEX later:v:30")
        run(node, b"SETEX soon:v:0.05")  # earlier than the armed timer: re-armed
        deadline = asyncio.get_running_loop().time() + 5
        while node.store.expired_count == 0:
            assert asyncio.get_running_loop().time() < deadline, "timer never fired"
            await asyncio.sleep(0.01)  # poll until the deadline above
        assert len(node.store) == 1
    finally:
        await node.shutdown()


@pytest.mark.asyncio
async def test_mass_expiry_is_done_in_batches() -> None:
    node = await started()
    try:
        items = b",".join(b"k%d:v:0.01" % i for i in range(5000))
        run(node, b"SETEX " + items)
        deadline = asyncio.get_running_loop().time() + 5
        while len(node.store):
            assert asyncio.get_running_loop().time() < deadline, "keys never expired"
            await asyncio.sleep(0.01)  # poll until the deadline above
        assert node.store.expired_count == 5000
    finally:
        await node.shutdown()


def test_writes_of_one_batch_share_a_stamp_and_the_next_batch_gets_a_newer_one() -> None:
    node = Node(Config(), Store(FakeClock()))
    replies: list[bytes] = []
    # One batch: the fast path's SET and the general path's stamp the same way.
    node.line.connection("127.0.0.1:1").run([b"SET a:1,b:2", b"SET c:%33"], 0, 1 << 20, False,
                               replies.append)
    assert replies == [b":SAT a:1,b:2\n", b":SAT c:3\n"]
    stamps = {node.store.get(key)[:12] for key in (b"a", b"b", b"c")}  # type: ignore[index]
    assert len(stamps) == 1
    run(node, b"SET a:4")  # the next batch
    newer = node.store.get(b"a")
    assert newer is not None and newer[:12] > stamps.pop()
    # A stamp observed from a peer is passed by the very next write.
    far = (int.from_bytes(newer[:8], "big") + (1000 << 16)).to_bytes(8, "big") + bytes(4)
    peer = node.line.connection("127.0.0.1:1")
    peer.session.peer_name = "p"  # as if it had completed the handshake
    peer.execute(b"REQUEST INVALIDATE zz:" + far.hex().encode(), False)
    run(node, b"SET a:5")
    latest = node.store.get(b"a")
    assert latest is not None and latest[:12] > far


def test_values_are_stored_raw_and_replies_are_canonical() -> None:
    node = Node(Config(), Store(FakeClock()))
    fast = node.line.fast_handlers
    assert fast[b"SET"](b"k:v") == b":SAT k:v\n"
    assert fast[b"SET"](b"k:a%2Cb") is None  # needs decoding: the general path
    run(node, b"SET k:a%2cb,j:%41")
    assert node.store.get(b"k")[13:] == b"a,b"  # type: ignore[index]
    assert fast[b"GET"](b"k,j") == b":GOT k:a%2Cb,j:A\n"  # canonical escapes
    assert fast[b"GET"](b"k%41") is None


@pytest.mark.asyncio
async def test_deleted_and_expired_keys_leave_the_filter_by_refresh() -> None:
    node = await started()
    loop = asyncio.get_running_loop()
    try:
        # More keys than one refresh step, so the refresh takes several steps.
        run(node, b"SET " + b",".join(b"k%d:v" % i for i in range(10_000)))
        run(node, b"SETEX brief:v:0.05")
        run(node, b"DEL " + b",".join(b"k%d" % i for i in range(0, 10_000, 2)))
        deadline = loop.time() + 5
        while node.bloom.count == 0:  # new keys enter the filter when the turn ends
            assert loop.time() < deadline, "the new keys never reached the filter"
            await asyncio.sleep(0.001)  # poll until the deadline above
        assert node.bloom.stale == 5000 and b"k0" in node.bloom
        deadline = loop.time() + 5
        while node.bloom.stale or node.bloom.refreshing or b"brief" in node.store:
            assert loop.time() < deadline, "the filter was never refreshed"
            await asyncio.sleep(0.01)  # poll until the deadline above
        live = [b"k%d" % i for i in range(1, 10_000, 2)]
        assert all(key in node.bloom for key in live)
        assert sum(b"k%d" % i in node.bloom for i in range(0, 10_000, 2)) < 50
        assert node.bloom.count == len(live)
    finally:
        await node.shutdown()
