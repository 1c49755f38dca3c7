"""Several olivia processes on loopback behaving as one store (contract section 3)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    ClusterProcesses,
    OliviaProcess,
    free_port,
    info_of,
    no_replicas,
    peer_session,
    running_cluster,
    running_node,
    wait_until,
    with_secret,
)


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcesses]:
    """Three nodes shared by the tests of this module (each uses its own keys),
    with a cluster secret, so that a test can open a peer session."""
    with running_cluster(3, *with_secret(tmp_path_factory.mktemp("trio"))) as cluster:
        yield cluster


def counters(node: OliviaProcess) -> tuple[int, int, int]:
    with node.client() as client:
        info = info_of(client)
    return int(info["remote_lookups"]), int(info["remote_probes"]), int(info["remote_hits"])


# -- membership ---------------------------------------------------------------------


def test_five_nodes_form_a_cluster_and_a_sixth_joins_under_writes() -> None:
    with running_cluster(5) as cluster:
        first = cluster.nodes[0]
        written: list[bytes] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                with first.client() as client:
                    i = 0
                    while not stop.is_set():
                        key = b"join%d" % i
                        assert client.request(b"SET " + key + b":v") == b":SAT " + key + b":v"
                        written.append(key)
                        i += 1
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            sixth = cluster.add(seed=cluster.nodes[2])  # joins through any member
            started = time.monotonic()
            cluster.wait_formed(timeout=5)
            formation = time.monotonic() - started
        finally:
            stop.set()
            thread.join(10)
        assert not errors, errors
        assert formation < 3, f"6th node took {formation:.2f}s to be seen by everyone"
        assert len(written) > 10
        with sixth.client() as client:
            for keys in (written[:50], written[-50:]):  # from before it joined, and the last
                expected = b":GOT " + b",".join(k + b":v" for k in keys)
                wait_until(lambda ks=keys, e=expected:  # type: ignore[misc]
                           client.request(b"GET " + b",".join(ks)) == e,
                           timeout=0.5, what="the writes to be visible on the new node")
            peers = client.request("REQUEST PEERS")
        addresses = sorted(peers.removeprefix(b":FULFILLED ").decode().split(","))
        assert addresses == sorted(f"127.0.0.1:{n.port}" for n in cluster.nodes if n is not sixth)


# -- visibility, convergence, deletes, expiry ---------------------------------------------


def test_a_write_on_any_node_is_visible_on_every_node(trio: ClusterProcesses) -> None:
    for writer_index, writer in enumerate(trio.nodes):
        key = f"vis{writer_index}"
        with writer.client() as client:
            assert client.request(f"SET {key}:from-{writer_index}") == \
                f":SAT {key}:from-{writer_index}".encode()
        for reader in trio.nodes:
            with reader.client() as client:
                wait_until(lambda c=client, k=key, i=writer_index:  # type: ignore[misc]
                           c.request(f"GET {k}") == f":GOT {k}:from-{i}".encode(),
                           timeout=0.5, what=f"{key} visible on {reader.args[1]}")


def test_an_overwrite_elsewhere_replaces_the_old_copy(trio: ClusterProcesses) -> None:
    a, b, c = trio.nodes
    with a.client() as ca, b.client() as cb, c.client() as cc:
        ca.request("SET ow:old")
        wait_until(lambda: cb.request("GET ow") == b":GOT ow:old", timeout=0.5)
        cb.request("SET ow:new")
        for client in (ca, cb, cc):
            wait_until(lambda cl=client: cl.request("GET ow") == b":GOT ow:new",  # type: ignore[misc]
                       timeout=0.5, what="the newer value everywhere")


def test_concurrent_writers_converge(trio: ClusterProcesses) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(len(trio.nodes))

    def hammer(node: OliviaProcess, label: str) -> None:
        try:
            with node.client() as client:
                start.wait()
                for i in range(300):
                    assert client.request(f"SET race:{label}-{i}").startswith(b":SAT")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(node, f"w{i}"))
               for i, node in enumerate(trio.nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors

    def agreed() -> bool:
        replies = set()
        for node in trio.nodes:
            with node.client() as client:
                replies.add(client.request("GET race"))
        return len(replies) == 1 and replies.pop().startswith(b":GOT race:w")

    wait_until(agreed, timeout=1.0, what="every node to return the same value")


def test_del_on_another_node_removes_the_key_everywhere(trio: ClusterProcesses) -> None:
    a, b, c = trio.nodes
    with a.client() as ca, b.client() as cb, c.client() as cc:
        ca.request("SET gone1:x,gone2:y")
        wait_until(lambda: cb.request("GET gone1") == b":GOT gone1:x", timeout=0.5)
        assert cb.request("DEL gone1,gone2,never") == b":DELETED gone1,gone2"
        for client in (ca, cb, cc):
            assert client.request("GET gone1,gone2") == b":GOT"
        assert cc.request("DEL gone1") == b":DELETED"


def test_expired_keys_disappear_everywhere_and_leave_the_filters(
        trio: ClusterProcesses) -> None:
    a, b, _ = trio.nodes
    with a.client() as ca, b.client() as cb:
        ca.request("SETEX brief:x:0.3")
        wait_until(lambda: cb.request("GET brief") == b":GOT brief:x", timeout=0.3)
        wait_until(lambda: cb.request("GET brief") == ca.request("GET brief") == b":GOT",
                   timeout=3, what="expiry on every node")
        # Once a's filter update has arrived, b no longer asks a for the key.
        def no_probe() -> bool:
            _, before, _ = counters(b)
            cb.request("GET brief")
            _, after, _ = counters(b)
            return after == before
        wait_until(no_probe, timeout=1, what="the expired key to leave a's filter at b")


# -- routing efficiency ---------------------------------------------------------------------


def test_lookups_ask_only_the_peers_that_may_hold_the_key(trio: ClusterProcesses) -> None:
    a, b, _ = trio.nodes
    keys = [b"route%04d" % i for i in range(1000)]
    with a.client() as ca:
        for start in range(0, 1000, 100):
            batch = keys[start:start + 100]
            ca.request(b"SET " + b",".join(k + b":v" for k in batch))
    with b.client() as cb:
        wait_until(lambda: all(cb.request(b"GET " + key) == b":GOT " + key + b":v"
                               for key in keys), timeout=2, what="every key visible on b")
        # With a replica (the default), b holds the keys of the slots it is a
        # home of; every other one has copies on two nodes (a, and c when
        # it is a home), and is asked of one of them only.
        with peer_session(b) as peer:
            held_here = sum(peer.request(b"REQUEST LOOKUP " + key) != b":FULFILLED"
                            for key in keys)
        lookups0, probes0, hits0 = counters(b)
        for key in keys:
            assert cb.request(b"GET " + key) == b":GOT " + key + b":v"
        lookups1, probes1, hits1 = counters(b)
        assert lookups1 - lookups0 == 1000 - held_here >= 200
        assert hits1 - hits0 == lookups1 - lookups0
        assert (probes1 - probes0) / (lookups1 - lookups0) <= 1.05

        for i in range(1000):
            assert cb.request(b"GET absent%04d" % i) == b":GOT"
        lookups2, probes2, _ = counters(b)
        assert lookups2 - lookups1 == 1000
        assert (probes2 - probes1) / (lookups2 - lookups1) <= 0.05


def test_concurrent_remote_gets_share_peer_messages(trio: ClusterProcesses) -> None:
    a, b, _ = trio.nodes
    written = [b"co%03d" % i for i in range(600)]
    with a.client() as ca, b.client() as cb, b.client() as cb2:
        ca.request(b"SET " + b",".join(k + b":v" + k for k in written))
        wait_until(lambda: all(cb.request(b"GET " + k) == b":GOT " + k + b":v" + k
                               for k in written), timeout=2, what="every key visible on b")
        # The keys b holds no copy of (it is not a home of their slots).
        with peer_session(b) as peer:
            keys = [k for k in written if peer.request(b"REQUEST LOOKUP " + k) == b":FULFILLED"]
        assert len(keys) >= 100
        half = len(keys) // 2
        before = int(info_of(cb)["lookup_messages"])
        # One-key GETs from two connections at once: they miss locally
        # together, so they reach the peers in a handful of LOOKUPs, not one each.
        cb.send(b"".join(b"GET " + k + b"\n" for k in keys[:half]))
        cb2.send(b"".join(b"GET " + k + b"\n" for k in keys[half:]))
        replies = cb.read_lines(half) + cb2.read_lines(len(keys) - half)
        assert replies == [b":GOT " + k + b":v" + k for k in keys]
        messages = int(info_of(cb)["lookup_messages"]) - before
        assert 1 <= messages <= 10, messages


def test_multi_key_get_mixes_local_and_remote_in_request_order(trio: ClusterProcesses) -> None:
    a, b, c = trio.nodes
    with a.client() as ca, b.client() as cb, c.client() as cc:
        ca.request("SET mk1:a1")
        cb.request("SET mk2:b2")
        wait_until(lambda: cc.request("GET mk2,nope,mk1,mk2") == b":GOT mk2:b2,mk1:a1,mk2:b2",
                   timeout=0.5, what="a multi-key GET served from two peers")
        # A pipelined DEL that needs peers is not overtaken by the GET after it.
        cc.send(b"1:DEL mk1\n2:GET mk1\n")
        assert cc.read_lines(2) == [b"1:DELETED mk1", b"2:GOT"]


# -- failure ----------------------------------------------------------------------------------


def test_a_killed_node_is_seen_down_and_skipped_then_rejoins(tmp_path: Path) -> None:
    # Without replicas, so that the key is lost with its node and a GET of
    # it shows the dead node skipped (test_replication: what replicas keep).
    with running_cluster(3, *no_replicas(tmp_path)) as cluster:
        a, b, c = cluster.nodes
        with c.client() as cc:
            cc.request("SET onc:1")
        with a.client() as ca:
            wait_until(lambda: ca.request("GET onc") == b":GOT onc:1", timeout=0.5)
        assert c.proc is not None
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait(5)
        killed = time.monotonic()
        for survivor in (a, b):
            with survivor.client() as client:
                wait_until(lambda cl=client: info_of(cl)["peers"] == "1",  # type: ignore[misc]
                           timeout=5, what="the killed node to be seen down")
        assert time.monotonic() - killed < 5
        with a.client() as ca:
            started = time.monotonic()
            assert ca.request("GET onc") == b":GOT"
            assert time.monotonic() - started < 1.0  # lookup_timeout

        # Restart under the same name on the same port: it rejoins by itself.
        c.close()
        restarted = OliviaProcess(["--name", "n3", "--port", str(c.port),
                                   "--peers", f"127.0.0.1:{a.port}", *no_replicas(tmp_path)])
        cluster.nodes[2] = restarted
        restarted.start()
        cluster.wait_formed(timeout=5)


def test_a_paused_node_is_marked_down_and_found_again_when_it_resumes(tmp_path: Path) -> None:
    with running_cluster(2, *no_replicas(tmp_path)) as cluster:
        a, b = cluster.nodes
        with a.client() as ca, b.client() as cb:
            ca.request("SET quiet:1")
            wait_until(lambda: cb.request("GET quiet") == b":GOT quiet:1", timeout=0.5)
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        try:
            with b.client() as cb:
                wait_until(lambda: info_of(cb)["peers_down"] == "1", timeout=8,
                           what="the paused node to be marked down")
                assert cb.request("GET quiet") == b":GOT"  # skipped, not waited on
        finally:
            a.proc.send_signal(signal.SIGCONT)
        # It never restarted and wrote nothing new: b must still learn its
        # filter again and find the key.
        with b.client() as cb:
            wait_until(lambda: cb.request("GET quiet") == b":GOT quiet:1", timeout=8,
                       what="the resumed node's keys to be found again")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_node_that_leaves_is_forgotten_at_once(signum: int) -> None:
    with running_cluster(3) as cluster:
        a, _, c = cluster.nodes
        c.signal(signum)
        assert c.wait(5) == 0
        with a.client() as ca:
            wait_until(lambda: info_of(ca)["peers"] == "1", timeout=1,
                       what="the leave to be seen")
            assert info_of(ca)["peers_down"] == "0"  # it left: not down, gone


# -- bad peers ----------------------------------------------------------------------------------


@pytest.fixture
def fake_peer_listener() -> Iterator[socket.socket]:
    """A listening socket a fake peer advertises, so the node can dial back."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    with listener:
        yield listener


def test_a_peer_whose_node_id_collides_is_refused() -> None:
    # CRC-32 of these two names is equal; their stamps could tie.
    with running_node("--name", "plumless") as node, node.client() as client:
        reply = client.request("REQUEST CONNECT buckeroo 127.0.0.1:9 1 " + "ab" * 16)
        assert reply.startswith(b":ERR node name 'buckeroo' has the same id")
        assert info_of(client)["peers_known"] == "0"


def test_garbage_and_bad_filters_from_a_peer_do_no_harm(
        fake_peer_listener: socket.socket, tmp_path: Path) -> None:
    with running_cluster(2, *with_secret(tmp_path)) as cluster:
        a, b = cluster.nodes
        port = fake_peer_listener.getsockname()[1]
        bad_requests = [
            b"REQUEST FILTER fake FULL 1 64 3 0 !!notbase64",
            b"REQUEST FILTER fake FULL 1 99999999999 3 0 AAAA",  # oversized
            b"REQUEST FILTER fake FULL 1 800 3 0 eJwDAAAAAAE=",  # truncated
            b"\x00\xff garbage",
            b"REQUEST LOOKUP",
            b"REQUEST INVALIDATE x:zz",
        ]
        address = f"127.0.0.1:{port}"
        for bad in bad_requests:
            # Each is answered with an error, logged, and the peer is dropped.
            with peer_session(a, "fake", address=address) as fake:
                assert fake.request(bad).startswith(b":ERR "), bad
                assert fake.is_closed_by_server()
        # A delta from the wrong version is normal (the sender then sends a
        # full copy): an error, but the peer stays connected.
        with peer_session(a, "fake", address=address) as fake:
            assert fake.request("REQUEST FILTER fake DELTA 5 6 - -").startswith(b":ERR ")
            assert fake.request("PING") == b":PONG"
        assert a.log().count("dropping peer fake") == len(bad_requests)
        with a.client() as ca, b.client() as cb:
            ca.request("SET safe:1")
            wait_until(lambda: cb.request("GET safe") == b":GOT safe:1", timeout=0.5)


def test_a_peer_that_stops_reading_is_dropped_and_stalls_nothing(
        fake_peer_listener: socket.socket, tmp_path: Path) -> None:
    with running_cluster(2, *with_secret(tmp_path)) as cluster:
        a, b = cluster.nodes
        address = f"127.0.0.1:{fake_peer_listener.getsockname()[1]}"
        with peer_session(a, "mute", address=address):
            # a dials back to the fake peer, which accepts and never reads or answers.
            fake_peer_listener.settimeout(5)
            mute, _ = fake_peer_listener.accept()
            with mute, a.client() as ca:
                wait_until(lambda: info_of(ca)["peers_known"] == "2", timeout=2)
                wait_until(lambda: info_of(ca)["peers"] == "1", timeout=5,
                           what="the mute peer to stop counting as alive")
                started = time.monotonic()
                ca.request("SET stall:1")
                with b.client() as cb:
                    wait_until(lambda: cb.request("GET stall") == b":GOT stall:1", timeout=1)
                assert time.monotonic() - started < 1.5



# -- operators: wrong seeds, decommissioned peers ---------------------------------------------


def test_a_seed_that_does_not_answer_is_logged_and_counted() -> None:
    port = free_port()
    with running_node("--peers", f"127.0.0.1:{port}") as node, node.client() as client:
        wait_until(lambda: f"seed 127.0.0.1:{port} does not answer" in node.log(),
                   what="the warning about the seed")
        assert info_of(client)["seeds_unreachable"] == "1"
        with running_node("--port", str(port)):  # the seed comes up after all
            wait_until(lambda: info_of(client)["seeds_unreachable"] == "0"
                       and info_of(client)["peers"] == "1", what="the late seed to be joined")
        assert f"seed 127.0.0.1:{port} answered after" in node.log()


def test_a_peer_unreachable_for_forget_after_is_forgotten(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("forget_after = 1.0\n")
    with running_cluster(2, "--config", str(tmp_path / "c.toml")) as cluster:
        a, b = cluster.nodes
        b.proc.kill()  # type: ignore[union-attr]
        b.wait()
        with a.client() as client:
            wait_until(lambda: info_of(client)["peers_known"] == "0",
                       what="the dead peer to be forgotten")
        assert "peer n2 forgotten: unreachable for" in a.log()


def test_an_operator_forgets_a_peer_at_once() -> None:
    with running_cluster(2) as cluster:
        a, b = cluster.nodes
        b.proc.kill()  # type: ignore[union-attr]
        b.wait()
        with a.client() as client:
            wait_until(lambda: info_of(client)["peers"] == "0", what="the kill to be seen")
            assert info_of(client)["peers_known"] == "1"  # down, and redialled
            assert client.request("FORGET n2") == b":FORGOTTEN"
            assert info_of(client)["peers_known"] == "0"
            assert client.request("FORGET n2") \
                == b":ERR no peer named 'n2' (REQUEST PEERS lists the alive ones)"
        assert "peer n2 forgotten by an operator" in a.log()
