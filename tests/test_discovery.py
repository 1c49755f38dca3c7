"""Discovery (contract section 11) with real nodes: a file of addresses
picked up when it is edited, and DNS answered by a small DNS server of the
test's own on loopback (dnslib), adding and then removing a node."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSHandler, DNSRecord, DNSServer

from tests.helpers import LineClient, OliviaProcess, config_flag, free_port, info_of, wait_until

LOOPBACKS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def peers_of(node: OliviaProcess) -> int:
    with node.client() as client:
        return int(info_of(client)["peers"])


@contextmanager
def started(*args: str) -> Iterator[OliviaProcess]:
    node = OliviaProcess(args)
    try:
        yield node.start()
    finally:
        node.close()


def test_file_discovery_picks_up_an_edited_file(tmp_path: Path) -> None:
    listing = tmp_path / "peers.txt"
    listing.write_text("# nobody yet\n")
    toml = (f'[cluster]\ndiscovery = "file:{listing}"\ndiscovery_interval = 0.1\n')
    with started("--name", "a") as a, started("--name", "b", *config_flag(tmp_path, toml)) as b:
        assert peers_of(b) == 0
        listing.write_text(f"# the seed\n127.0.0.1:{a.port}\n")
        wait_until(lambda: peers_of(a) == 1 and peers_of(b) == 1, what="b to join a")
        listing.write_text("not an address\n")
        wait_until(lambda: "not HOST:PORT" in b.log(), what="the bad line to be reported")
        assert peers_of(b) == 1  # a vanished address is left to the failure detector


def test_sigusr1_resolves_discovery_at_once(tmp_path: Path) -> None:
    listing = tmp_path / "peers.txt"
    listing.write_text("")
    toml = f'[cluster]\ndiscovery = "file:{listing}"\ndiscovery_interval = 3600\n'
    with started("--name", "a") as a, started("--name", "b", *config_flag(tmp_path, toml)) as b:
        listing.write_text(f"127.0.0.1:{a.port}\n")
        b.signal(signal.SIGUSR1)  # else the next look would be in an hour
        wait_until(lambda: peers_of(a) == 1 and peers_of(b) == 1, what="b to join a")


class _Answers(BaseResolver):  # type: ignore[misc]
    """A records for one name, changed by the test as it goes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.addresses: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        qname = request.q.qname
        if str(qname).rstrip(".") == self.name and request.q.qtype == QTYPE.A:
            with self.lock:
                for address in self.addresses:
                    reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=0))
        return reply


def _shared_port() -> int:
    """A port free on every loopback address the DNS test uses."""
    for _ in range(50):
        port = free_port()
        try:
            for host in LOOPBACKS:
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return port
    pytest.skip("no port free on 127.0.0.2-4")


def test_dns_discovery_adds_and_removes_nodes(tmp_path: Path) -> None:
    answers = _Answers("olivia.test")
    dns_port = free_port()
    server = DNSServer(answers, port=dns_port, address="127.0.0.1", tcp=False)
    server.start_thread()
    port = _shared_port()
    toml = (f'[cluster]\ndiscovery = "dns:olivia.test:{port}"\ndiscovery_interval = 0.1\n'
            f'dns_server = "127.0.0.1:{dns_port}"\n')
    flags = config_flag(tmp_path, toml)
    try:
        answers.addresses = [LOOPBACKS[0]]
        with started("--name", "d1", "--host", LOOPBACKS[0], "--port", str(port), *flags) as d1, \
                started("--name", "d2", "--host", LOOPBACKS[1], "--port", str(port), *flags) as d2:
            wait_until(lambda: peers_of(d1) == 1 and peers_of(d2) == 1, what="d2 to find d1")
            answers.addresses = list(LOOPBACKS)
            with started("--name", "d3", "--host", LOOPBACKS[2], "--port", str(port),
                         *flags) as d3:
                wait_until(lambda: all(peers_of(n) == 2 for n in (d1, d2, d3)),
                           what="all three to find each other")
                answers.addresses = list(LOOPBACKS[:2])
            # d3 stopped and left the DNS answer: the other two carry on as two.
            wait_until(lambda: peers_of(d1) == 1 and peers_of(d2) == 1, what="d3 to go")
            with LineClient(port, LOOPBACKS[0]) as client:
                assert client.request("SET found:1") == b":SAT found:1"
    finally:
        server.stop()
        server.server.server_close()  # stop() leaves the socket open
