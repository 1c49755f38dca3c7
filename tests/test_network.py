"""Nodes on two hosts (network namespaces joined by a veth pair), as on a
real network (a password for clients, a secret for peers, as the README's
"Running on a network" says): a node listening on every address advertises
one peers can dial, they find each other's keys, and operators' verbs stay
local."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.helpers import SECRET, OliviaProcess, wait_until
from tests.netns import Host, two_hosts
from tests.netns import node_in as netns_node

PORT = 5454  # each namespace has its own ports: no clash with anything
PASSWORD = "network-password"
NETWORK_TOML = f'[auth]\npassword = "{PASSWORD}"\n[cluster]\nsecret = "{SECRET}"\n'


def cli(host: Host, to: Host, *words: str) -> str:
    """olivia-cli run inside ``host``, talking to the node of ``to``."""
    done = host.run([sys.executable, "-m", "olivia.tools.cli", "-h", to.address,
                     "-p", str(PORT), "-a", PASSWORD, *words])
    return done.stdout.strip() + done.stderr.strip()


def info(host: Host) -> dict[str, str]:
    line = cli(host, host, "INFO")
    assert line.startswith(":INFO "), line
    return dict(field.split("=", 1) for field in line[6:].split(","))


@contextmanager
def node_in(host: Host, *args: str) -> Iterator[OliviaProcess]:
    with netns_node(host, PORT, NETWORK_TOML, *args) as node:
        yield node


def test_nodes_on_every_address_advertise_one_peers_can_dial() -> None:
    with two_hosts() as (a, b), node_in(a, "--name", "a"), \
            node_in(b, "--name", "b", "--peers", f"{a.address}:{PORT}") as node_b:
        wait_until(lambda: info(a)["peers"] == info(b)["peers"] == "1",
                   what="the two hosts to see each other")
        assert cli(b, b, "REQUEST", "PEERS") == f":FULFILLED {a.address}:{PORT}"
        assert cli(a, a, "REQUEST", "PEERS") == f":FULFILLED {b.address}:{PORT}"
        assert f"advertising {b.address}:{PORT}" in node_b.log()
        assert cli(a, a, "SET", "across:the-wire") == ":SAT across:the-wire"
        wait_until(lambda: cli(b, b, "GET", "across") == ":GOT across:the-wire",
                   timeout=0.5, what="a key of host a to be found from host b")


def test_operators_verbs_are_refused_from_another_host() -> None:
    with two_hosts() as (a, b), node_in(a, "--name", "a"), \
            node_in(b, "--name", "b", "--peers", f"{a.address}:{PORT}"):
        wait_until(lambda: info(a)["peers"] == "1", what="a to see b")
        refused = cli(b, a, "FORGET", "b")  # from host b to a's address
        assert refused.startswith(":ERR DENIED FORGET is accepted only from a client")
        assert info(a)["peers_known"] == "1"
        done = a.run([sys.executable, "-m", "olivia.tools.cli", "-h", "127.0.0.1",
                      "-p", str(PORT), "-a", PASSWORD, "FORGET", "b"])
        assert done.stdout.strip() == ":FORGOTTEN"  # on a's own loopback: done
