"""The data verbs through the Python client, blocking and asyncio, with
redis-py's names, arguments and results (issue: client parity)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from olivia.client import AsyncClient, Client
from olivia.core.errors import BadItemError, NoSuchKeyError, NotIntegerError, TooManyError
from tests.helpers import DEADLINE, OliviaProcess, config_flag, running_node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OliviaProcess]:
    directory = tmp_path_factory.mktemp("verbs")
    with running_node(*config_flag(directory, "max_keys_reply = 50\n")) as started:
        yield started


@pytest.fixture
def db(node: OliviaProcess) -> Iterator[Client]:
    with Client(node.host, node.port, timeout=DEADLINE) as client:
        yield client


def test_counters(db: Client) -> None:
    assert db.incr("cv-n") == 1
    assert db.incr("cv-n", 10) == 11
    assert db.incrby("cv-n", 5) == 16
    assert db.decr("cv-n") == 15
    assert db.decrby("cv-n", 20) == -5
    db.set("cv-text", "abc")
    with pytest.raises(NotIntegerError, match="NOTINT"):
        db.incr("cv-text")
    with pytest.raises(TypeError):
        db.incr("cv-n", 1.5)  # type: ignore[arg-type]
    assert db.get("cv-n") == b"-5"


def test_write_once_compare_and_set_and_conditional_delete(db: Client) -> None:
    assert db.setnx("cv-once", "first") is True
    assert db.setnx("cv-once", "second") is False
    assert db.cas("cv-once", "first", "third") is True
    assert db.cas("cv-once", "first", "fourth") is False
    assert db.get("cv-once") == b"third"
    assert db.delifeq("cv-once", "nope") is False
    assert db.delifeq("cv-once", "third") is True
    assert db.exists("cv-once") == 0


def test_getdel_rename_exists(db: Client) -> None:
    db.set("cv-a", b"\x00,:\r\n")
    assert db.exists("cv-a", "cv-a", "cv-missing") == 2  # as Redis counts
    assert db.rename("cv-a", "cv-b") is True
    with pytest.raises(NoSuchKeyError, match="NOKEY"):
        db.rename("cv-a", "cv-c")
    assert db.getdel("cv-b") == b"\x00,:\r\n"
    assert db.getdel("cv-b") is None


def test_ttls(db: Client) -> None:
    db.set("cv-t", "v")
    assert db.ttl("cv-t") == -1
    assert db.ttl("cv-never") == -2
    assert db.expire("cv-t", 100) is True
    assert db.expire("cv-never", 100) is False
    assert 99 <= db.ttl("cv-t") <= 100
    assert 98_000 < db.pttl("cv-t") <= 100_000
    assert db.persist("cv-t") is True
    assert db.persist("cv-t") is False
    db.setex("cv-t2", 0.5, "soon")  # redis-py's order: name, time, value
    assert 0 < db.pttl("cv-t2") <= 500


def test_keys_scan_iter_and_dbsize(db: Client) -> None:
    keys = {f"cv-s{i}".encode() for i in range(30)}
    db.mset({key: "x" for key in keys})
    assert set(db.keys("cv-s*")) == keys
    assert set(db.scan_iter(match="cv-s*", count=7)) == keys
    cursor, page = db.scan(0, match="cv-s*", count=1000)
    assert cursor == 0 and set(page) == keys
    assert db.dbsize() == len(set(db.scan_iter()))
    db.mset({f"cv-many{i}": "x" for i in range(60)})
    with pytest.raises(TooManyError, match="TOOMANY"):
        db.keys()
    with pytest.raises(BadItemError):
        db.scan("nonsense")


def test_every_argument_form_of_redis_py(db: Client) -> None:
    db.mset({"cv-m1": "1", "cv-m2": "2"})
    assert db.mget("cv-m1", "cv-m2") == {b"cv-m1": b"1", b"cv-m2": b"2"}
    assert db.mget(["cv-m1", "cv-m2"]) == {b"cv-m1": b"1", b"cv-m2": b"2"}
    assert db.delete(["cv-m1"], "cv-m2") == 2
    db.set(7, 2.5)
    assert db.get(7) == b"2.5"
    assert db.ping() is True


def test_decode_responses(node: OliviaProcess) -> None:
    # The results' types say bytes (the default); with decode_responses they are str.
    decoding: Any = Client(node.host, node.port, timeout=DEADLINE, decode_responses=True)
    with decoding as client:
        client.set("cv-d", "héllo")
        assert client.get("cv-d") == "héllo"
        assert client.mget("cv-d") == {"cv-d": "héllo"}
        assert "cv-d" in client.keys("cv-d*")
        assert client.incr("cv-dn") == 1
        client.set("cv-bin", b"\xff")
        assert client.get("cv-bin").encode("utf-8", "surrogateescape") == b"\xff"
        assert client.pipeline().get("cv-d").getdel("cv-d").execute() == ["héllo", "héllo"]


def test_pipelines_carry_the_data_verbs(db: Client) -> None:
    results = (db.pipeline().set("cv-p", "1").incr("cv-p").setnx("cv-p", "x").ttl("cv-p")
               .rename("cv-p", "cv-q").exists("cv-q").getdel("cv-q").execute())
    assert results == [None, 2, False, -1, True, 1, b"2"]


async def _async_verbs(node: OliviaProcess) -> None:
    db = AsyncClient(node.host, node.port, timeout=DEADLINE)
    try:
        assert await db.ping() is True
        assert await db.incr("cva-n", 3) == 3
        assert await db.setnx("cva-n", "x") is False
        assert await db.cas("cva-n", "3", "4") is True
        assert await db.expire("cva-n", 60) is True
        assert 59 <= await db.ttl("cva-n") <= 60
        assert await db.persist("cva-n") is True
        assert await db.rename("cva-n", "cva-m") is True
        assert await db.exists("cva-m", "cva-n") == 1
        assert await db.delifeq("cva-m", "4") is True
        await db.mset({f"cva-s{i}": "x" for i in range(12)})
        assert {key async for key in db.scan_iter(match="cva-s*", count=5)} == {
            f"cva-s{i}".encode() for i in range(12)}
        assert await db.getdel("cva-s0") == b"x"
        assert await db.dbsize() >= 11
        pipe = db.pipeline()
        pipe.incr("cva-p").decr("cva-p", 5).keys("cva-p")
        assert await pipe.execute() == [1, -4, [b"cva-p"]]
    finally:
        await db.aclose()


@pytest.mark.asyncio
async def test_the_async_client_has_the_same_verbs(node: OliviaProcess) -> None:
    await _async_verbs(node)
