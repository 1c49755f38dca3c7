"""The RESP port with clients nobody here wrote: redis-py for every command
the contract lists (section 9), redis-cli and redis-benchmark from Debian's
redis-tools; and the same data seen through the line protocol."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import (
    DEADLINE,
    ClusterProcesses,
    OliviaProcess,
    config_flag,
    running_cluster,
    running_node,
    wait_until,
)

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
needs_redis_cli = pytest.mark.skipif(
    REDIS_CLI is None, reason="redis-cli not installed (Debian: apt-get install redis-tools)")
needs_redis_benchmark = pytest.mark.skipif(
    REDIS_BENCHMARK is None,
    reason="redis-benchmark not installed (Debian: apt-get install redis-tools)")


def command(client: redis.Redis, *args: Any) -> Any:
    """A command redis-py has no (undeprecated) method for."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def node() -> Iterator[OliviaProcess]:
    with running_node("--resp-port", "0") as started:
        yield started


@pytest.fixture
def r(node: OliviaProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=node.resp_port, socket_timeout=DEADLINE)
    try:
        yield client
    finally:
        client.close()


def test_strings_counters_and_keys(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.echo("hello") == b"hello"
    assert r.set("rs-a", "1") is True and r.get("rs-a") == b"1"
    assert r.get("rs-missing") is None
    assert r.incr("rs-n") == 1 and r.incrby("rs-n", 10) == 11
    assert r.decr("rs-n") == 10 and r.decrby("rs-n", 4) == 6
    assert r.mset({"rs-m1": "x", "rs-m2": "y"}) is True
    assert r.mget("rs-m1", "rs-missing", "rs-m2") == [b"x", None, b"y"]
    assert r.exists("rs-m1", "rs-m1", "rs-missing") == 2
    assert command(r, "SETNX", "rs-once", "a") == 1
    assert command(r, "SETNX", "rs-once", "b") == 0
    assert r.getdel("rs-once") == b"a" and r.getdel("rs-once") is None
    assert r.rename("rs-m1", "rs-m3") is True and r.get("rs-m3") == b"x"
    assert r.delete("rs-m2", "rs-m3", "rs-missing") == 2
    assert r.unlink("rs-a") == 1
    assert command(r, "SELECT", 0) is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        command(r, "SELECT", 1)


def test_set_options(r: redis.Redis) -> None:
    assert r.set("so-a", "1", ex=100) is True
    assert 99 <= r.ttl("so-a") <= 100 and 99_000 < r.pttl("so-a") <= 100_000
    assert r.set("so-b", "1", px=1500) is True and 0 < r.pttl("so-b") <= 1500
    assert r.set("so-a", "2", nx=True) is None and r.get("so-a") == b"1"
    assert r.set("so-c", "3", nx=True, ex=50) is True and 49 <= r.ttl("so-c") <= 50
    assert r.set("so-a", "4", xx=True) is True and r.get("so-a") == b"4"
    assert r.set("so-none", "4", xx=True) is None and r.get("so-none") is None
    assert r.set("so-c", "5", keepttl=True) is True and 48 <= r.ttl("so-c") <= 50
    assert r.set("so-c", "6", get=True) == b"5" and r.ttl("so-c") == -1
    assert r.set("so-new", "7", get=True) is None and r.get("so-new") == b"7"
    # redis-py 8 deprecates its setex/psetex/setnx helpers: the commands themselves.
    assert command(r, "SETEX", "so-d", 30, "v") is True and 29 <= r.ttl("so-d") <= 30
    assert command(r, "PSETEX", "so-e", 2000, "v") is True
    assert 0 < r.pttl("so-e") <= 2000
    with pytest.raises(redis.ResponseError, match="syntax error"):
        command(r, "SET", "so-a", "1", "BOGUS")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        command(r, "SET", "so-a", "1", "EX", "0")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        command(r, "SET", "so-a", "1", "EX", "soon")


def test_ttls(r: redis.Redis) -> None:
    r.set("tt-a", "v")
    assert r.ttl("tt-a") == -1 and r.ttl("tt-missing") == -2 and r.pttl("tt-missing") == -2
    assert r.expire("tt-a", 100) is True and r.expire("tt-missing", 100) is False
    assert r.persist("tt-a") is True and r.persist("tt-a") is False
    assert r.pexpire("tt-a", 100_000) is True and 99 <= r.ttl("tt-a") <= 100
    assert r.expire("tt-a", 0) is True and r.get("tt-a") is None  # as Redis: deleted


def test_binary_values_with_crlf_and_nul(r: redis.Redis) -> None:
    value = b"\r\n\x00 \xff$*-+:\r\n"
    key = b"bin-\x00\r\n:,%"
    assert r.set(key, value) is True
    assert r.get(key) == value
    assert r.mget([key]) == [value]
    assert r.getdel(key) == value


def test_errors_are_redis_py_exception_classes(r: redis.Redis) -> None:
    r.set("er-text", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("er-text")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("er-missing", "er-other")
    with pytest.raises(redis.ResponseError, match="unknown command 'HGET'"):
        r.hget("h", "f")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get'"):
        command(r, "GET")
    with pytest.raises(redis.ResponseError, match="key too long"):
        r.get("k" * 251)
    assert r.get("er-text") == b"abc"  # nothing changed, the connection is usable


def test_a_pipeline_of_ten_thousand_commands(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.set(f"pl-{i}", i)
    assert pipe.execute() == [True] * 10_000
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.get(f"pl-{i}")
    assert pipe.execute() == [str(i).encode() for i in range(10_000)]


def test_decode_responses_info_client_and_command(node: OliviaProcess) -> None:
    client = redis.Redis(port=node.resp_port, decode_responses=True, socket_timeout=DEADLINE)
    try:
        client.set("dr-a", "héllo")
        assert client.get("dr-a") == "héllo"
        info = client.info()
        assert info["redis_version"] == "7.0.0" and info["tcp_port"] == node.resp_port
        assert "db0" in client.info("keyspace")
        assert {"peers", "bloom_bits"} <= set(client.info("cluster"))
        assert client.client_setname("tester") is True and client.client_getname() == "tester"
        assert isinstance(client.client_id(), int)
        assert client.command_count() > 30
        assert "get" in client.command()
        assert client.dbsize() == len(set(client.scan_iter()))
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_resp3_after_hello_3(node: OliviaProcess) -> None:
    client = redis.Redis(port=node.resp_port, protocol=3, socket_timeout=DEADLINE)
    try:
        assert client.ping() is True
        assert client.get("r3-missing") is None
        assert client.set("r3-a", "1") is True and client.get("r3-a") == b"1"
        assert client.incr("r3-n") == 1
    finally:
        client.close()


def test_auth_and_protected_mode_are_the_line_ports(tmp_path: Path) -> None:
    toml = '[auth]\npassword = "s3cret"\n'
    with running_node("--resp-port", "0", *config_flag(tmp_path, toml)) as secured:
        port = secured.resp_port
        anonymous = redis.Redis(port=port, socket_timeout=DEADLINE)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("a")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong", socket_timeout=DEADLINE).ping()
        authed = redis.Redis(port=port, password="s3cret", socket_timeout=DEADLINE)
        assert authed.set("a", "1") is True and authed.get("a") == b"1"
        anonymous.close()
        authed.close()


def test_the_same_data_through_both_protocols_and_across_nodes() -> None:
    with running_cluster(2, "--resp-port", "0") as cluster:
        first, second = cluster.nodes
        at_first = redis.Redis(port=first.resp_port, socket_timeout=DEADLINE)
        at_second = redis.Redis(port=second.resp_port, socket_timeout=DEADLINE)
        try:
            at_first.set("user:2", "Bob")
            with second.client() as line:
                wait_until(lambda: line.request("GET user%3A2") == b":GOT user%3A2:Bob")
                assert line.request("SET via-line:x") == b":SAT via-line:x"
            wait_until(lambda: at_first.get("via-line") == b"x")
            assert at_second.incr("shared") == 1 and at_first.incr("shared") == 2
        finally:
            at_first.close()
            at_second.close()


def test_scan_iter_over_a_four_node_cluster_returns_every_key() -> None:
    with running_cluster(4, "--resp-port", "0") as cluster:
        clients = [redis.Redis(port=n.resp_port, socket_timeout=DEADLINE) for n in cluster.nodes]
        try:
            keys = {f"sc:{i}".encode() for i in range(1000)}
            clients[0].mset({key: "v" for key in keys})
            _visible_everywhere(cluster, clients, b"sc:999")
            for client in clients:
                assert set(client.scan_iter(match="sc:*", count=77)) == keys
            assert clients[3].dbsize() == 1000
            assert set(clients[2].keys("sc:*")) == keys
        finally:
            for client in clients:
                client.close()


def _visible_everywhere(cluster: ClusterProcesses, clients: list[redis.Redis],
                        key: bytes) -> None:
    for client in clients:
        def seen(c: redis.Redis = client) -> bool:
            return c.get(key) is not None
        wait_until(seen, what="the key everywhere")


# -- redis-cli and redis-benchmark ----------------------------------------------------


def _cli(node: OliviaProcess, *args: str, stdin: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    assert REDIS_CLI is not None
    return subprocess.run([REDIS_CLI, "-p", str(node.resp_port), *args], input=stdin,
                          capture_output=True, timeout=60,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


@needs_redis_cli
def test_redis_cli_one_shot_scan_and_pipe(node: OliviaProcess) -> None:
    assert _cli(node, "SET", "cli-a", "hello world").stdout == b"OK\n"
    assert _cli(node, "GET", "cli-a").stdout == b"hello world\n"
    assert _cli(node, "INCR", "cli-n").stdout == b"1\n"
    assert _cli(node, "PING").stdout == b"PONG\n"
    commands = b"".join(b"SET pipe-%d %d\r\n" % (i, i) for i in range(100_000))
    piped = _cli(node, "--pipe", stdin=commands)
    assert piped.returncode == 0, piped.stderr
    assert b"errors: 0, replies: 100000" in piped.stdout
    assert _cli(node, "GET", "pipe-99999").stdout == b"99999\n"
    scanned = _cli(node, "--scan", "--pattern", "pipe-1234?")
    assert sorted(scanned.stdout.split()) == sorted(b"pipe-1234%d" % i for i in range(10))


@needs_redis_cli
def test_redis_cli_stat_and_latency(node: OliviaProcess) -> None:
    assert REDIS_CLI is not None
    _cli(node, "SET", "stat-key", "v")
    rows = _on_a_terminal([REDIS_CLI, "-p", str(node.resp_port), "--stat", "-i", "0.2"], 4)
    assert rows[0].startswith("------- data ------"), rows
    keys, memory, clients, blocked = rows[2].split()[:4]
    assert int(keys) >= 1 and memory[-1] in "BKMG" and int(clients) >= 1 and blocked == "0"
    # Off a terminal, --latency prints "min max avg samples" each interval, until killed.
    proc = subprocess.Popen([REDIS_CLI, "-p", str(node.resp_port), "--latency", "-i", "0.2"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        fields = proc.stdout.readline().split()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert len(fields) == 4 and int(fields[3]) > 0, fields
    assert float(fields[0]) <= float(fields[2]) <= float(fields[1])


def _on_a_terminal(argv: list[str], lines: int) -> list[str]:
    """The first ``lines`` lines a command prints on a pseudo-terminal (it is then killed)."""
    import os
    import select
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    try:
        deadline = DEADLINE
        while output.count(b"\n") < lines:
            ready, _, _ = select.select([master], [], [], deadline)
            assert ready, f"no output from {argv[0]}: {output!r}"
            output += os.read(master, 65536)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return output.decode().replace("\r", "").splitlines()


@needs_redis_benchmark
def test_redis_benchmark_runs_with_no_errors(node: OliviaProcess) -> None:
    assert REDIS_BENCHMARK is not None
    done = subprocess.run([REDIS_BENCHMARK, "-p", str(node.resp_port), "-t",
                           "ping,set,get,incr,mset", "-n", "20000", "-q"],
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    for test in ("PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"):
        assert f"{test}: " in out and "requests per second" in out, out
    assert "error" not in out.lower() and "error" not in done.stderr.decode().lower()
