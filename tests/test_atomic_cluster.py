"""The data verbs across a cluster of real processes: every verb where the
key is held by another node than the one asked, and the contract's
atomicity numbers (section 6), which are correctness, not speed."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.helpers import (
    ClusterProcesses,
    LineClient,
    OliviaProcess,
    no_replicas,
    running_cluster,
    wait_until,
)

T = TypeVar("T")

#: Lines sent before reading their replies, per client (keeps 8 clients busy).
WINDOW = 50


@pytest.fixture(scope="module")
def four() -> Iterator[ClusterProcesses]:
    with running_cluster(4) as cluster:
        yield cluster


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]
    return [result for result in results if result is not None]


def _one_line(nodes: list[OliviaProcess], template: str, index: int) -> list[bytes]:
    return _pipelined(nodes[index % 4], [template.format(i=index).encode()])


def _sees(node: OliviaProcess, line: str, reply: bytes, what: str = "the reply") -> None:
    with node.client() as client:
        wait_until(lambda: client.request(line) == reply, what=what)


def _pipelined(node: OliviaProcess, lines: list[bytes]) -> list[bytes]:
    replies = []
    with node.client() as client:
        for start in range(0, len(lines), WINDOW):
            chunk = lines[start:start + WINDOW]
            client.send(b"".join(line + b"\n" for line in chunk))
            replies.extend(client.read_lines(len(chunk)))
    return replies


def test_ten_thousand_incrs_from_eight_clients_on_four_nodes_count_exactly(
        four: ClusterProcesses) -> None:
    nodes = four.nodes
    with nodes[0].client() as client:
        assert client.request("SET hits:0") == b":SAT hits:0"

    def incr(index: int) -> list[int]:
        replies = _pipelined(nodes[index % 4], [b"INCR hits"] * 1250)
        assert all(reply.startswith(b":INCRED hits:") for reply in replies), replies[:3]
        return [int(reply.rpartition(b":")[2]) for reply in replies]

    values = [value for part in _in_threads(8, incr) for value in part]
    assert sorted(values) == list(range(1, 10_001))
    for node in nodes:
        _sees(node, "GET hits", b":GOT hits:10000")


def test_concurrent_setnx_and_getdel_have_exactly_one_winner(four: ClusterProcesses) -> None:
    nodes = four.nodes
    for round_ in range(5):
        key = f"once{round_}"
        replies = _in_threads(8, functools.partial(_one_line, nodes, f"SETNX {key}:{{i}}"))
        winners = [i for i, reply in enumerate(replies) if reply != [b":SATNX"]]
        assert len(winners) == 1, replies
        assert replies[winners[0]] == [f":SATNX {key}".encode()]
        taken = _in_threads(8, functools.partial(_one_line, nodes, f"GETDEL {key}"))
        got = [reply for reply in taken if reply != [b":GOT"]]
        assert got == [[f":GOT {key}:{winners[0]}".encode()]], taken


def test_cas_loops_on_four_nodes_lose_no_update(four: ClusterProcesses) -> None:
    nodes = four.nodes
    with nodes[1].client() as client:
        assert client.request("SET casn:0") == b":SAT casn:0"

    def loop(index: int) -> int:
        swaps = 0
        with nodes[index % 4].client() as client:
            # A CAS that cannot succeed says what is there.
            current = client.request("CAS casn:unknown:x").rpartition(b":")[2]
            while swaps < 100:
                new = b"%d" % (int(current) + 1)
                reply = client.request(b"CAS casn:" + current + b":" + new)
                if reply.startswith(b":CASSED"):
                    swaps += 1
                    current = new
                else:
                    assert reply.startswith(b":CASFAILED casn:"), reply
                    current = reply.rpartition(b":")[2]
        return swaps

    assert _in_threads(8, loop) == [100] * 8
    with nodes[3].client() as client:
        assert client.request("GET casn") == b":GOT casn:800"


def test_every_verb_works_from_a_node_that_does_not_hold_the_key(
        four: ClusterProcesses) -> None:
    nodes = four.nodes
    asked, writer = nodes[2], nodes[0]
    with writer.client() as w, asked.client() as a:
        assert w.request("SET far:5,v:old,gone:x").startswith(b":SAT")
        assert w.request("SETEX temp:t:100") == b":SATEX temp:t:100"
        assert a.request("INCR far:2") == b":INCRED far:7"
        assert a.request("DECR far") == b":DECRED far:6"
        assert a.request("CAS v:old:new") == b":CASSED v:new"
        assert a.request("CAS v:old:x") == b":CASFAILED v:new"
        assert a.request("EXISTS far,nope,v") == b":EXISTS far,v"
        ttl = a.request("TTL temp,far")
        assert ttl.startswith(b":TTL temp:") and ttl.endswith(b",far:-1"), ttl
        assert 99 < float(ttl.split(b",")[0].rpartition(b":")[2]) <= 100
        assert a.request("RENAME temp:moved") == b":RENAMED temp:moved"
        assert a.request("TTL moved").startswith(b":TTL moved:9")
        assert a.request("EXPIRE far:50") == b":EXPIRY far:50"
        assert a.request("PERSIST far") == b":PERSISTED far"
        assert a.request("DELIFEQ gone:x") == b":DELETED gone"
        assert a.request("GETDEL v") == b":GOT v:new"
        assert a.request("RENAME v:w").startswith(b":ERR NOKEY")
        assert a.request("INCR moved").startswith(b":ERR NOTINT")
    for node in nodes:
        _sees(node, "GET far,v,gone,temp,moved", b":GOT far:6,moved:t", "the changes")


def test_an_expire_is_seen_everywhere(four: ClusterProcesses) -> None:
    nodes = four.nodes
    with nodes[0].client() as client:
        client.request("SET fleeting:1")
    with nodes[3].client() as client:
        assert client.request("EXPIRE fleeting:0.3") == b":EXPIRY fleeting:0.3"
    for node in nodes:
        _sees(node, "GET fleeting", b":GOT", "the key to expire on every node")


def test_scan_keys_and_count_see_each_key_once(four: ClusterProcesses) -> None:
    nodes = four.nodes
    keys = [f"sc:{i}" for i in range(300)]
    with nodes[1].client() as client:
        for start in range(0, 300, 100):
            items = ",".join(f"{key.replace(':', '%3A')}:x" for key in keys[start:start + 100])
            assert client.request("SET " + items).startswith(b":SAT")
    for node in nodes:
        with node.client() as client:
            assert set(_scan(client, "sc%3A*")) == {key.encode() for key in keys}
            listed = client.request("KEYS sc%3A*")
            assert sorted(listed[len(b":KEYS "):].split(b",")) == sorted(
                key.replace(":", "%3A").encode() for key in keys)
    with nodes[0].client() as client:
        total = int(client.request("COUNT").rpartition(b" ")[2])
        everything = set(_scan(client, "*"))
        assert total == len(everything), (total, len(everything))


def _scan(client: LineClient, pattern: str, count: int = 37) -> list[bytes]:
    from olivia.protocols.line.replies import decode_keys
    found: list[bytes] = []
    cursor = b"0"
    while True:
        reply = client.request(b"SCAN " + cursor + b":%d:" % count + pattern.encode())
        assert reply.startswith(b":SCANNED "), reply
        cursor, _, keys = reply[len(b":SCANNED "):].partition(b" ")
        found.extend(decode_keys(keys))
        if cursor == b"0":
            return found


def test_without_replicas_incrs_of_a_key_written_elsewhere_count(tmp_path: Path) -> None:
    with running_cluster(3, *no_replicas(tmp_path)) as cluster:
        nodes = cluster.nodes
        with nodes[0].client() as client:
            client.request("SET lone:10")
        for node in nodes:  # its filter has reached every node (visible everywhere)
            _sees(node, "GET lone", b":GOT lone:10")
        replies = _in_threads(6, lambda i: _pipelined(nodes[i % 3], [b"INCR lone"] * 100))
        assert all(len(part) == 100 for part in replies)
        values = sorted(int(r.rpartition(b":")[2]) for part in replies for r in part)
        assert values == list(range(11, 611))
        with nodes[2].client() as client:
            # The copy left where the key was first written goes (invalidated).
            wait_until(lambda: client.request("COUNT") == b":COUNT 1", what="one copy left")


def test_the_client_scans_and_counts_the_whole_cluster(four: ClusterProcesses) -> None:
    from olivia.client import Client
    nodes = four.nodes
    with Client(nodes[2].host, nodes[2].port) as writer:
        writer.mset({f"ci:{i}": i for i in range(500)})
    with Client(nodes[3].host, nodes[3].port) as reader:
        assert set(reader.scan_iter(match="ci:*", count=60)) == {
            f"ci:{i}".encode() for i in range(500)}
        assert reader.dbsize() == len(set(reader.scan_iter()))
        assert reader.incr("ci:7", 3) == 10


def test_a_cluster_scan_returns_every_key_present_throughout(four: ClusterProcesses) -> None:
    from olivia.client import Client
    nodes = four.nodes
    stay = {f"churn-stay:{i}".encode() for i in range(800)}
    going = [f"churn-going:{i}".encode() for i in range(800)]
    with Client(nodes[0].host, nodes[0].port) as writer, \
            Client(nodes[1].host, nodes[1].port) as scanner:
        writer.mset({key: "x" for key in stay | set(going)})
        for node in nodes:  # the keys' filters have reached every node
            _sees(node, "EXISTS churn-stay%3A0", b":EXISTS churn-stay%3A0")
        seen: set[bytes] = set()
        cursor: int | str = 0
        pages = 0
        while True:
            cursor, page = scanner.scan(cursor, match="churn-*", count=40)
            seen.update(page)
            pages += 1
            writer.delete(*going[pages * 20:pages * 20 + 20])
            writer.mset({f"churn-new:{pages}:{i}": "x" for i in range(20)})
            if cursor == 0:
                break
        assert pages > 10
        assert stay <= seen
