"""Replication, repair, tombstones and graceful leave, on real node processes
(contract section 7).  The partition test is in test_partition.py."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.helpers import (
    SECRET_TOML,
    ClusterProcesses,
    LineClient,
    OliviaProcess,
    config_flag,
    info_of,
    peer_session,
    running_cluster,
    wait_until,
    with_secret,
)

CONVERGE = 5.0  # seconds: the contract's bound for every node to agree
REPAIR = 30.0  # seconds: the contract's bound for copies to be restored


class Writer(threading.Thread):
    """SETs unique keys (and overwrites one counter key) on one node until
    stopped or its node dies; remembers what was acknowledged."""

    def __init__(self, node: OliviaProcess, prefix: str) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.prefix = prefix
        self.acked: dict[bytes, bytes] = {}
        # The write that got no answer (its node died): it may or may not
        # have been stored, so its counter value is allowed too.
        self.unanswered: dict[bytes, bytes] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        counter = f"{self.prefix}-counter".encode()
        try:
            with self.node.client() as client:
                for n in range(10**9):
                    if self.stop.is_set():
                        return
                    key, value = f"{self.prefix}-{n}".encode(), b"v%d" % n
                    self.unanswered = {counter: value}
                    if client.request(b"SET %s:%s,%s:%s" % (key, value, counter, value)) \
                            != b":SAT %s:%s,%s:%s" % (key, value, counter, value):
                        return
                    self.acked[key] = self.acked[counter] = value
                    self.unanswered = {}
        except (OSError, AssertionError):  # its node was killed: what was acked stays acked
            return


Expected = dict[bytes, bytes | set[bytes | None] | None]  # key -> value, or the values allowed


def write_for(nodes: list[OliviaProcess], seconds: float,
              during: Iterable[tuple[float, OliviaProcess]] = ()) -> Expected:
    """Three writers, one per node, for ``seconds``; SIGKILL each node of
    ``during`` at its time; every acknowledged key -> its last acknowledged
    value (or a set with the value of a write that got no answer)."""
    writers = [Writer(node, f"w{index}") for index, node in enumerate(nodes)]
    for writer in writers:
        writer.start()
    started = time.monotonic()
    for at, node in sorted(during, key=lambda item: item[0]):
        time.sleep(max(0.0, started + at - time.monotonic()))
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(5)
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    for writer in writers:
        writer.stop.set()
        writer.join(10)
    acked: Expected = {}
    for writer in writers:
        acked.update(writer.acked)
        for key, value in writer.unanswered.items():
            acked[key] = {writer.acked.get(key), value}
    return acked


def values_on(node: OliviaProcess, keys: list[bytes]) -> dict[bytes, bytes]:
    """What a GET on ``node`` returns for ``keys`` (absent keys left out)."""
    found: dict[bytes, bytes] = {}
    with node.client() as client:
        for start in range(0, len(keys), 200):
            reply = client.request(b"GET " + b",".join(keys[start:start + 200]))
            if reply.startswith(b":GOT "):
                for item in reply[5:].split(b","):
                    key, _, value = item.partition(b":")
                    found[key] = value
    return found


def _allowed(value: bytes | None, expected: bytes | set[bytes | None] | None) -> bool:
    return value in expected if isinstance(expected, set) else value == expected


def all_agree(nodes: list[OliviaProcess], expected: Expected) -> bool:
    """Every node returns the same value for every key, and it is the
    expected one (None: the key is absent everywhere)."""
    keys = list(expected)
    seen = [values_on(node, keys) for node in nodes]
    return all(seen[0] == other for other in seen[1:]) and all(
        _allowed(seen[0].get(key), expected[key]) for key in keys)


def info(node: OliviaProcess) -> dict[str, str]:
    with node.client() as client:
        return info_of(client)


def held_by_all(nodes: list[OliviaProcess], keys: list[bytes]) -> bool:
    """Every key has a copy on every node (REQUEST LOOKUP reads only the node's own)."""
    for node in nodes:
        with peer_session(node) as client:
            for start in range(0, len(keys), 200):
                chunk = keys[start:start + 200]
                if len(held_of(client, chunk)) != len(chunk):
                    return False
    return True


def held_of(client: LineClient, keys: list[bytes]) -> list[bytes]:
    """The keys of which the node behind ``client`` holds a copy itself."""
    reply = client.request(b"REQUEST LOOKUP " + b",".join(keys))
    assert reply.startswith(b":FULFILLED"), reply
    return [item.split(b":", 1)[0] for item in reply[len(b":FULFILLED "):].split(b",") if item]


def test_info_reports_replication() -> None:
    with running_cluster(2) as cluster:
        fields = info(cluster.nodes[0])
        for name in ("replicas", "under_replicated_keys", "tombstones", "repair_keys_sent",
                     "repair_keys_received", "handoff_keys"):
            assert name in fields
        assert fields["replicas"] == "1"


def test_a_write_is_stored_on_a_replica_before_it_is_acknowledged(tmp_path: Path) -> None:
    with running_cluster(3, *with_secret(tmp_path)) as cluster:
        a = cluster.nodes[0]
        keys = [b"rep%03d" % i for i in range(300)]
        with a.client() as client:
            assert client.request(b"SET " + b",".join(k + b":x" for k in keys)).startswith(b":SAT")
        # At once (no waiting): every key is on two nodes at least.
        copies = dict.fromkeys(keys, 0)
        for node in cluster.nodes:
            with peer_session(node) as client:
                for key in held_of(client, keys):
                    copies[key] += 1
        assert min(copies.values()) >= 2, sorted(copies.items(), key=lambda kv: kv[1])[:5]


def test_no_acknowledged_write_is_lost_when_a_node_is_killed(tmp_path: Path) -> None:
    with running_cluster(3, *with_secret(tmp_path)) as cluster:
        a, b, c = cluster.nodes
        acked = write_for([a, b, c], 3.0, during=[(1.5, c)])
        assert len(acked) > 300
        expected: Expected = dict(acked)
        wait_until(lambda: all_agree([a, b], expected), timeout=CONVERGE,
                   what="every acknowledged key on every survivor")
        wait_until(lambda: all(info(node)["under_replicated_keys"] == "0" for node in (a, b)),
                   timeout=REPAIR, what="under_replicated_keys back to 0")
        wait_until(lambda: held_by_all([a, b], list(acked)), timeout=REPAIR,
                   what="two copies of every key again")


def test_a_node_restarted_empty_converges_and_deletes_hold() -> None:
    with running_cluster(3) as cluster:
        a, b, c = cluster.nodes
        acked = write_for([a, b, c], 2.0, during=[(1.0, c)])
        expected: Expected = dict(acked)
        doomed = sorted(acked)[::7]
        with a.client() as client:  # deleted while c is down
            for start in range(0, len(doomed), 100):
                assert client.request(b"DEL " + b",".join(doomed[start:start + 100])) \
                    .startswith(b":DELETED")
        expected.update(dict.fromkeys(doomed))
        restarted = restart(cluster, 2)
        wait_until(lambda: all_agree([a, b, restarted], expected), timeout=CONVERGE,
                   what="the restarted node to converge, deletes included")
        wait_until(lambda: info(restarted)["under_replicated_keys"] == "0", timeout=REPAIR,
                   what="no key under-replicated")


def restart(cluster: ClusterProcesses, index: int) -> OliviaProcess:
    """Start the node at ``index`` again, empty, under its name and port;
    returns it once the cluster has formed again."""
    old = cluster.nodes[index]
    old.close()
    seed = cluster.nodes[0]
    node = OliviaProcess([*old.args[:2], "--port", str(old.port), "--peers",
                          f"127.0.0.1:{seed.port}"])
    cluster.nodes[index] = node
    node.start()
    cluster.wait_formed(timeout=CONVERGE)
    return node


def test_a_paused_node_converges_when_it_resumes_and_deletes_hold() -> None:
    with running_cluster(3) as cluster:
        a, b, c = cluster.nodes
        keys = [b"paused%03d" % i for i in range(300)]
        with c.client() as client:
            client.request(b"SET " + b",".join(k + b":old" for k in keys))
        expected: Expected = {}
        assert c.proc is not None
        c.proc.send_signal(signal.SIGSTOP)
        try:
            paused = time.monotonic()
            with a.client() as ca, b.client() as cb:
                for index, key in enumerate(keys):
                    client = ca if index % 2 else cb
                    if index % 3 == 0:
                        assert client.request(b"DEL " + key).startswith(b":DELETED")
                        expected[key] = None
                    elif index % 3 == 1:
                        assert client.request(b"SET " + key + b":new") == b":SAT " + key + b":new"
                        expected[key] = b"new"
                    else:
                        expected[key] = b"old"
            time.sleep(max(0.0, paused + 4.0 - time.monotonic()))  # the pause the issue sets
        finally:
            c.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: all_agree([a, b, c], expected), timeout=CONVERGE,
                   what="the resumed node to converge, deletes included")


@pytest.mark.parametrize("replicas", [0, 1])
def test_a_node_that_leaves_hands_its_keys_over(tmp_path: Path, replicas: int) -> None:
    flags = with_secret(tmp_path, f"{SECRET_TOML}replicas = {replicas}\n")
    with running_cluster(3, *flags) as cluster:
        a, b, c = cluster.nodes
        expected: Expected = {}
        for index, node in enumerate(cluster.nodes):
            keys = [b"leave%d-%04d" % (index, i) for i in range(2000)]
            with node.client() as client:
                for start in range(0, len(keys), 500):
                    chunk = keys[start:start + 500]
                    client.request(b"SET " + b",".join(k + b":" + k for k in chunk))
            expected.update((key, key) for key in keys)
        c.signal(signal.SIGTERM)
        assert c.wait(30) == 0
        log = c.log()
        if replicas == 0:  # every key it held went somewhere
            handed = sum(int(n) for n in re.findall(r"handed (\d+) keys over to", log))
            assert handed >= 2000, log[-2000:]
        wait_until(lambda: all_agree([a, b], expected), timeout=CONVERGE,
                   what="every key on the nodes that stay")
        if replicas:
            assert held_by_all([a, b], list(expected))


def test_tombstones_are_counted_and_expire(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, "[cluster]\ntombstone_ttl = 1.0\nsync_interval = 0.2\n")
    with running_cluster(2, *flags) as cluster:
        a, b = cluster.nodes
        with a.client() as client:
            client.request("SET t1:x,t2:x,t3:x")
            assert client.request("DEL t1,t2,t3") == b":DELETED t1,t2,t3"
        assert info(a)["tombstones"] == "3"
        wait_until(lambda: info(b)["tombstones"] == "3", timeout=1, what="tombstones on b")
        wait_until(lambda: info(a)["tombstones"] == info(b)["tombstones"] == "0",
                   timeout=CONVERGE, what="tombstones to expire after tombstone_ttl")
