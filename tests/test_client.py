"""The Python clients against real nodes (subprocesses on free ports)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Iterator

import pytest

import olivia
from olivia import (
    AsyncClient,
    BadItemError,
    Client,
    ConnectionLostError,
    ConnectionTimeoutError,
    KeyTooLongError,
    LineTooLongError,
    OliviaError,
)
from olivia.client.calls import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    ReplyReader,
    get_call,
    mget_call,
    mset_call,
    set_lines,
)
from olivia.protocols.line.requests import pairs_payload, request_line
from tests.helpers import DEADLINE, OliviaProcess, fake_server, running_node, wait_until

TRICKY_VALUES = [
    b"a,b,c",
    b"k:v:ttl",
    b"100% %41 %zz %",
    b"\"quoted\" and 'single'",
    b"line1\nline2\n",
    b"cr\r\nlf\r",
    "non-ASCII: Ωlivia, 日本語, emoji \N{GRINNING FACE}".encode(),
    bytes(range(256)),
    b"",
    b" leading and trailing spaces ",
    b"\x00nul\x00",
    b"x" * 100_000,
]


@pytest.fixture
def db(node: OliviaProcess) -> Iterator[Client]:
    with Client(node.host, node.port, timeout=DEADLINE) as client:
        yield client


@pytest.fixture
def own_node() -> Iterator[OliviaProcess]:
    """A node of this test's own, for killing and pausing."""
    with running_node() as process:
        yield process


def test_package_exports_the_client_and_errors() -> None:
    assert olivia.Client is Client and olivia.AsyncClient is AsyncClient
    assert issubclass(ConnectionLostError, OliviaError)
    assert issubclass(ConnectionTimeoutError, ConnectionLostError)
    assert issubclass(ConnectionTimeoutError, TimeoutError)
    assert olivia.__version__


@pytest.mark.parametrize("value", TRICKY_VALUES, ids=range(len(TRICKY_VALUES)))
def test_values_round_trip(db: Client, value: bytes) -> None:
    db.set(b"rt-value", value)
    assert db.get(b"rt-value") == value


@pytest.mark.parametrize("key", [b"a,b", b"a:b", b"50%", b"%41", b"new\nline", b"cr\r",
                                 "ключ".encode(), b"\x00\xff", b"k" * 250, b" "])
def test_keys_round_trip(db: Client, key: bytes) -> None:
    db.set(key, b"v-" + key)
    assert db.get(key) == b"v-" + key
    assert db.mget([key, b"rt-missing"]) == {key: b"v-" + key}
    assert db.delete(key) == 1
    assert db.get(key) is None


def test_str_and_bytes_are_interchangeable(db: Client) -> None:
    db.set("sb-text", "héllo, wörld")
    assert db.get(b"sb-text") == "héllo, wörld".encode()
    db.set(b"sb-bytes", b"\xff\xfe")
    assert db.get("sb-bytes") == b"\xff\xfe"
    assert db.mget(["sb-text", b"sb-bytes"]) == {b"sb-text": "héllo, wörld".encode(),
                                                   b"sb-bytes": b"\xff\xfe"}
    db.set(42, 1.5)  # int and float as str(), as redis-py takes them
    assert db.get("42") == b"1.5"
    with pytest.raises(TypeError, match="key must be str, bytes, int or float"):
        db.get(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bool"):
        db.get(True)


def test_get_of_missing_key_is_none(db: Client) -> None:
    assert db.get("gm-never-set") is None
    assert db.mget([]) == {}
    assert db.mget(["gm-never-set"]) == {}


def test_mset_and_mget_split_into_bounded_lines(db: Client) -> None:
    mapping = {f"chunk-{i}".encode(): (b"%d," % i) * 30 for i in range(5000)}
    call = mset_call(mapping, 1 << 20)
    assert call.count >= 5  # more than one line: both the item and the byte bound apply
    db.mset(mapping)
    keys = [*mapping, b"chunk-missing"]
    assert mget_call(keys, 1 << 20).count >= 5
    assert db.mget(keys) == mapping
    assert db.delete(*mapping) == len(mapping)
    assert db.mget(keys) == {}


def test_set_lines_respect_the_bounds_and_match_the_request_encoder() -> None:
    pairs = [(b"k%d" % i, b"v" * (i % 300)) for i in range(5000)]
    pairs += [(b"esc%d" % i, b"a,b:c%d\n" % i) for i in range(100)]
    pairs.append((b"big", b"B" * (MAX_BATCH_BYTES + 10)))
    sent: list[tuple[bytes, bytes]] = []
    for line, count in set_lines(pairs):
        batch = pairs[len(sent):len(sent) + count]
        sent.extend(batch)
        assert line == request_line(b"SET", pairs_payload(tuple(batch)))
        assert count <= MAX_BATCH_ITEMS
        assert count == 1 or sum(len(k) + len(v) + 2 for k, v in batch) <= MAX_BATCH_BYTES
    assert sent == pairs


def test_a_value_too_big_for_one_line_fails_before_sending() -> None:
    # Port 1 has no server: the error must come before any connection attempt.
    client = Client("127.0.0.1", 1, max_line_bytes=1 << 20)
    with pytest.raises(LineTooLongError, match=r"key 'huge'.*max_line_bytes \(1048576\)"):
        client.set("huge", b"x" * (1 << 20))
    with pytest.raises(LineTooLongError):
        client.mset({"small": "v", "huge": b"%" * 400_000})  # escaping triples it
    with pytest.raises(LineTooLongError):
        client.setex("huge", 5, b"x" * (1 << 20))
    with pytest.raises(LineTooLongError):
        client.pipeline().set("huge", b"x" * (1 << 20))


def test_a_value_just_under_the_line_limit_is_stored(db: Client) -> None:
    value = b"y" * ((1 << 20) - 100)
    db.set("near-limit", value)
    assert db.get("near-limit") == value


def test_a_request_bigger_than_the_socket_buffers_does_not_deadlock(db: Client) -> None:
    # SAT echoes every item, so the replies are as big as the requests: the
    # client must read while it writes.
    mapping = {b"dl-%d" % i: b"v" * 200 for i in range(40_000)}  # about 9 MB each way
    db.mset(mapping)
    assert db.mget([b"dl-0", b"dl-39999"]) == {b"dl-0": b"v" * 200, b"dl-39999": b"v" * 200}


def test_setex_expires(db: Client) -> None:
    db.setex("ttl-key", 0.2, "soon gone")
    db.setex(b"ttl-long", 60, b"stays")
    assert db.get("ttl-key") == b"soon gone"
    wait_until(lambda: db.get("ttl-key") is None, timeout=5, what="ttl-key to expire")
    assert db.get("ttl-long") == b"stays"
    with pytest.raises(ValueError, match="ttl"):
        db.setex("ttl-bad", 0, "v")


def test_delete_counts_the_keys_that_existed(db: Client) -> None:
    db.mset({"del-a": "1", "del-b": "2"})
    assert db.delete("del-a", "del-b", "del-missing") == 2
    assert db.delete("del-a") == 0
    assert db.delete() == 0


def test_ping_info_and_raw(node: OliviaProcess, db: Client) -> None:
    assert db.ping() is True
    assert db.echo("are you there?") == b"are you there?"
    fields = db.info()
    assert fields["name"] == f"127.0.0.1:{node.port}"
    assert int(fields["keys"]) >= 0
    assert db.raw("SET raw%3Akey:a%2Cb") == b":SAT raw%3Akey:a%2Cb"
    assert db.get("raw:key") == b"a,b"
    assert db.raw(b"t1:GET raw%3Akey\n") == b"t1:GOT raw%3Akey:a%2Cb"
    assert db.raw("FROB") == b":ERR unknown verb 'FROB'"  # returned, not raised
    with pytest.raises(ValueError, match="empty line"):
        db.raw("")


def test_error_replies_raise_typed_exceptions(db: Client) -> None:
    with pytest.raises(KeyTooLongError, match="key too long"):
        db.set("k" * 251, "v")
    with pytest.raises(KeyTooLongError):
        db.get("k" * 251)
    with pytest.raises(BadItemError, match="empty key"):
        db.set("", "v")
    assert db.echo("still usable") == b"still usable"


def test_pipeline_returns_results_in_order_with_errors_in_place(db: Client) -> None:
    pipe = db.pipeline()
    pipe.set("pl-a", "1").get("pl-a").set("k" * 251, "v").mset({"pl-b": "2"}).delete("pl-a")
    pipe.get("pl-a").echo("x").info().raw("NOPE")
    assert len(pipe) == 9
    results = pipe.execute()
    assert results[:2] == [None, b"1"]
    assert isinstance(results[2], KeyTooLongError)
    assert results[3:6] == [None, 1, None]
    assert results[6] == b"x"
    assert isinstance(results[7], dict) and "keys" in results[7]
    assert results[8] == b":ERR unknown verb 'NOPE'"
    assert len(pipe) == 0 and pipe.results == results


def test_pipeline_raise_on_error_reads_every_reply_first(db: Client) -> None:
    pipe = db.pipeline().get("k" * 251).set("pl-after", "stored")
    with pytest.raises(KeyTooLongError):
        pipe.execute(raise_on_error=True)
    assert db.get("pl-after") == b"stored"  # the command after the error ran


def test_pipeline_context_manager_executes_on_exit(db: Client) -> None:
    with db.pipeline() as pipe:
        pipe.set("cm-a", "1").get("cm-a")
    assert pipe.results == [None, b"1"]
    with pytest.raises(RuntimeError), db.pipeline() as pipe:
        pipe.set("cm-b", "never")
        raise RuntimeError("the block failed")
    assert db.get("cm-b") is None


def test_connection_refused_is_connection_lost() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with Client("127.0.0.1", port) as client, \
                pytest.raises(ConnectionLostError, match=f"127.0.0.1:{port}.*refused"):
            client.get("x")


def test_killed_server_then_reconnect(own_node: OliviaProcess) -> None:
    port = own_node.port
    with Client(own_node.host, port, timeout=DEADLINE) as client:
        client.set("survivor", "1")
        assert own_node.proc is not None
        own_node.proc.kill()
        own_node.proc.wait(DEADLINE)
        with pytest.raises(ConnectionLostError, match=f"127.0.0.1:{port}"):
            client.get("survivor")
        with running_node("--port", str(port)):
            assert client.get("survivor") is None  # a new, empty node
            client.set("survivor", "2")
            assert client.get("survivor") == b"2"


def test_server_closing_an_idle_connection_is_reconnected(own_node: OliviaProcess) -> None:
    with Client(own_node.host, own_node.port) as client:
        assert client.raw("QUIT") == b":BYE"
        assert client.echo("again") == b"again"
        client.set("idle", "1")
        own_node.stop()  # SIGTERM: the node closes every connection
        with running_node("--port", str(own_node.port)):
            assert client.echo("new node") == b"new node"


def test_a_timeout_drops_the_connection_so_a_late_reply_is_never_taken(
        own_node: OliviaProcess) -> None:
    assert own_node.proc is not None
    with Client(own_node.host, own_node.port, timeout=0.3) as client:
        client.mset({"late-a": "A", "late-b": "B"})
        own_node.signal(signal.SIGSTOP)
        try:
            with pytest.raises(ConnectionTimeoutError, match="timed out waiting for a reply"):
                client.get("late-a")
        finally:
            own_node.signal(signal.SIGCONT)
        client.timeout = DEADLINE
        assert client.get("late-b") == b"B"  # not the late reply to GET late-a
        assert client.get("late-a") == b"A"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose listener accepts (in the backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def test_timeout_on_a_server_that_never_answers(silent_server: int) -> None:
    with Client("127.0.0.1", silent_server, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=f"127.0.0.1:{silent_server}: timed out"):
            client.ping()
        assert time.monotonic() - started < 2


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """A server that answers every line with something that is not a reply."""
    def handle(conn: socket.socket) -> None:
        while conn.recv(65536):
            conn.sendall(b"hello there\n")

    with fake_server(handle) as port:
        yield port


def test_a_reply_out_of_step_drops_the_connection(garbage_server: int) -> None:
    with Client("127.0.0.1", garbage_server) as client:
        with pytest.raises(ConnectionLostError, match="unreadable reply 'hello there'"):
            client.get("x")
        assert client._sock is None


def test_reply_reader_matches_lines_to_calls_across_pieces() -> None:
    reader = ReplyReader()
    first, second = get_call("a"), get_call("b")
    reader.expect(first)
    reader.expect(second)
    stream = b":GOT a:1%2C2\n:ERR key too long in GET item 'b'\n"
    done = []
    for i in range(len(stream)):
        done += reader.feed(stream[i:i + 1])
    assert done == [first, second]
    assert first.outcome == b"1,2"
    assert isinstance(second.outcome, KeyTooLongError)
    assert not reader.waiting


# --------------------------------------------------------------------------
# AsyncClient
# --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_round_trips_and_errors(node: OliviaProcess) -> None:
    async with AsyncClient(node.host, node.port) as db:
        for value in TRICKY_VALUES:
            await db.set("as-value", value)
            assert await db.get("as-value") == value
        await db.mset({"as-a": "1", "as-b": b"2"})
        assert await db.mget(["as-a", "as-b", "as-c"]) == {b"as-a": b"1", b"as-b": b"2"}
        assert await db.delete("as-a", "as-c") == 1
        await db.setex("as-ttl", 30, "v")
        assert await db.echo("p") == b"p"
        assert "keys" in await db.info()
        assert await db.raw("GET as-b") == b":GOT as-b:2"
        with pytest.raises(KeyTooLongError):
            await db.get("k" * 251)
        with pytest.raises(BadItemError):  # a typed error from a pipeline
            await db.pipeline().raw("GET as-b").set("", "v").execute(raise_on_error=True)
        assert await db.get("as-b") == b"2"


@pytest.mark.asyncio
async def test_async_pool_serves_many_tasks_at_once(node: OliviaProcess) -> None:
    async with AsyncClient(node.host, node.port, max_connections=4) as db:
        async def worker(i: int) -> bytes | None:
            await db.set(f"task-{i}", f"value-{i}")
            return await db.get(f"task-{i}")

        results = await asyncio.gather(*(worker(i) for i in range(300)))
        assert results == [f"value-{i}".encode() for i in range(300)]
        assert 1 <= db.connections <= 4
    assert db.connections == 0


@pytest.mark.asyncio
async def test_async_pipeline(node: OliviaProcess) -> None:
    async with AsyncClient(node.host, node.port) as db:
        async with db.pipeline() as pipe:
            pipe.set("ap-a", "1").get("ap-a").set("k" * 251, "v").delete("ap-a")
        assert pipe.results is not None
        assert pipe.results[:2] == [None, b"1"]
        assert isinstance(pipe.results[2], KeyTooLongError)
        assert pipe.results[3] == 1
        big = {f"ap-{i}": "v" * 50 for i in range(3000)}
        assert await db.pipeline().mset(big).mget(list(big)).execute() == [
            None, {k.encode(): b"v" * 50 for k in big}]


@pytest.mark.asyncio
async def test_async_connection_errors(silent_server: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with AsyncClient("127.0.0.1", port) as db:
            with pytest.raises(ConnectionLostError, match=f"127.0.0.1:{port}.*refused"):
                await db.get("x")
    async with AsyncClient("127.0.0.1", silent_server, timeout=0.2) as db:
        with pytest.raises(ConnectionTimeoutError):
            await db.ping()
        assert db.connections == 0  # the timed-out connection was discarded


@pytest.mark.asyncio
async def test_async_cancelled_command_discards_its_connection(
        own_node: OliviaProcess) -> None:
    async with AsyncClient(own_node.host, own_node.port, timeout=DEADLINE) as db:
        await db.set("cancel-a", "A")
        own_node.signal(signal.SIGSTOP)
        try:
            task = asyncio.create_task(db.get("cancel-a"))
            # The task borrows the idle connection and writes in one step:
            # poll until it has, then cancel while it waits for the reply.
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while db._idle:
                assert asyncio.get_running_loop().time() < deadline, "the GET was never sent"
                await asyncio.sleep(0.001)  # poll until the deadline above
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert db.connections == 0
        finally:
            own_node.signal(signal.SIGCONT)
        await db.set("cancel-b", "B")
        assert await db.get("cancel-b") == b"B"
