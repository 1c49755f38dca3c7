"""Protected mode on a real network (two network namespaces on a veth
pair): with no password, clients from another host are refused and told
why; a peer proving the cluster secret is let in; a password opens it."""

from __future__ import annotations

from contextlib import AbstractContextManager

from tests.helpers import SECRET_TOML, OliviaProcess, wait_until
from tests.netns import Host, two_hosts
from tests.netns import node_in as netns_node

PORT = 5454  # each namespace has its own ports


def node_in(host: Host, toml: str, *args: str) -> AbstractContextManager[OliviaProcess]:
    return netns_node(host, PORT, toml, *args)


def test_clients_off_the_machine_are_refused_and_secret_peers_let_in() -> None:
    with two_hosts() as (a, b), node_in(a, SECRET_TOML, "--name", "a") as node_a, \
            node_in(b, SECRET_TOML, "--name", "b", "--peers", f"{a.address}:{PORT}"):
        assert "protected mode refuses every client that is not on loopback" in node_a.log()
        # From host b to a's address: refused, with the settings to change.
        (reply,) = b.talk(PORT, ["GET k"], to=a)
        assert reply.startswith(":ERR DENIED protected mode")
        assert "auth.password" in reply and "protected_mode" in reply
        # The peers proved the secret from the other host: joined both ways.
        wait_until(lambda: "peers=1," in info_line(a) and "peers=1," in info_line(b),
                   what="a and b to see each other")
        assert "rejected_connections=1," in info_line(a)


def info_line(host: Host) -> str:
    """INFO of the host's node, asked on its own loopback (always allowed)."""
    (line,) = host.talk(PORT, ["INFO"], to=Host(host.namespace, "127.0.0.1"))
    return line


def test_without_a_secret_a_peer_off_the_machine_cannot_join() -> None:
    with two_hosts() as (a, b), node_in(a, "", "--name", "a") as node_a, \
            node_in(b, "", "--name", "b", "--peers", f"{a.address}:{PORT}") as node_b:
        wait_until(lambda: "protected mode" in node_b.log(), what="b to be refused")
        assert "peers_known=0," in info_line(a)
        assert "refused" in node_a.log()


def test_with_a_password_clients_off_the_machine_authenticate() -> None:
    toml = '[auth]\npassword = "pw"\n'
    with two_hosts() as (a, b), node_in(a, toml, "--name", "a") as node_a:
        assert "protected mode" not in node_a.log()
        replies = b.talk(PORT, ["GET k", "AUTH pw", "SET k:v", "GET k"], to=a)
        assert replies[0].startswith(":ERR NOAUTH")
        assert replies[1:] == [":AUTHED", ":SAT k:v", ":GOT k:v"]


RESP_PORT = 6380


def test_the_resp_port_has_the_same_protected_mode_and_password() -> None:
    with two_hosts() as (a, b), node_in(a, "", "--name", "a", "--resp-port",
                                        str(RESP_PORT)):
        (reply,) = b.talk(RESP_PORT, ["GET k"], to=a)  # an inline command, as typed into nc
        assert reply.startswith("-DENIED protected mode") and "auth.password" in reply
    toml = '[auth]\npassword = "pw"\n'
    with two_hosts() as (a, b), node_in(a, toml, "--name", "a", "--resp-port",
                                        str(RESP_PORT)):
        replies = b.talk(RESP_PORT, ["GET k", "AUTH wrong", "AUTH pw", "SET k v", "EXISTS k"],
                         to=a)
        assert replies[0].startswith("-NOAUTH") and replies[1].startswith("-WRONGPASS")
        assert replies[2:] == ["+OK", "+OK", ":1"]
