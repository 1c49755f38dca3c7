"""Authentication, the peer handshake and what a plain client cannot do
through the peer dialect (CONTRACT section 8), against real nodes."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from olivia import Client, WrongPassError
from olivia.cluster.handshake import DIAL, new_nonce, proof
from olivia.core.errors import NoAuthError
from olivia.protocols.line.peer import parse_answer
from tests.helpers import (
    LineClient,
    OliviaProcess,
    config_flag,
    info_of,
    peer_session,
    running_cluster,
    running_node,
    wait_until,
    with_secret,
)

PASSWORD = "s3cret pass, with: punctuation"
FAKE_NONCE = "ab" * 16
# Every peer verb but the handshake and the two that only read, with a
# well-formed argument: each changes data, membership or memory if accepted.
GATED = [
    "REQUEST DISCONNECT {peer}",
    "REQUEST LOOKUP greeting",
    "REQUEST DELETE ffffffffffffffffffffffff greeting",
    "REQUEST INVALIDATE greeting:ffffffffffffffffffffffff",
    "REQUEST FILTER {peer} FULL 99 800 3 0 eJxjYBgFAAAI9AAB",
    "REQUEST REPLICATE greeting:forged:ffffffffffffffffffffffff:-",
    "REQUEST REPAIR greeting:forged:ffffffffffffffffffffffff:-",
    "REQUEST DIGESTS 1:0000000000000000",
    "REQUEST VERSIONS 1",
    "REQUEST FETCH greeting",
    "REQUEST OFFER greeting:ffffffffffffffffffffffff:v",
]


def password_flags(directory: Path, extra: str = "") -> list[str]:
    return config_flag(directory, f'[auth]\npassword = "{PASSWORD}"\n{extra}', "auth.toml")


@pytest.fixture(params=["no secret", "secret"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[OliviaProcess]]:
    """Two joined nodes, with or without a cluster secret; n1 holds 'greeting'."""
    flags = with_secret(tmp_path) if request.param == "secret" else []
    with running_cluster(2, *flags) as cluster:
        with cluster.nodes[0].client() as client:
            assert client.request("SET greeting:hello") == b":SAT greeting:hello"
        yield cluster.nodes


def test_a_plain_client_can_use_no_peer_verb_that_changes_anything(
        pair: list[OliviaProcess]) -> None:
    n1, n2 = pair
    with n1.client() as client:
        before = info_of(client)
        for template in GATED:
            line = template.format(peer="n2")
            reply = client.request(line)
            assert reply.startswith(b":ERR DENIED "), (line, reply)
            assert b"peer handshake" in reply
        # Nothing changed: the key, the peer, the filters.
        assert client.request("GET greeting") == b":GOT greeting:hello"
        after = info_of(client)
        assert after["peers"] == after["peers_known"] == "1"
        assert int(after["used_memory"]) < int(before["used_memory"]) + (8 << 20)
        # The read-only peer verbs stay open, as the contract says.
        assert client.request("REQUEST PEERS").startswith(b":FULFILLED 127.0.0.1:")
        assert client.request("REQUEST BLOOMFILTER").startswith(b":FULFILLED FULL ")
    with n2.client() as client:
        assert client.request("GET greeting") == b":GOT greeting:hello"
        assert info_of(client)["peers"] == "1"


def handshake_as(node: OliviaProcess, name: str, address: str, incarnation: int,
                 key: bytes = b"") -> bytes:
    """Try the handshake as ``name`` at ``address``; the reply to PROVE."""
    with node.client() as client:
        nonce = new_nonce()
        reply = client.request(f"REQUEST CONNECT {name} {address} {incarnation} ".encode()
                               + nonce)
        assert reply.startswith(b":FULFILLED "), reply
        answer = parse_answer(reply.partition(b" ")[2])
        return client.request(b"REQUEST PROVE " + proof(key, DIAL, nonce, answer.nonce, name,
                                                        answer.identity.name))


def incarnation_of(node: OliviaProcess) -> int:
    """Anyone can learn it: the first half of the handshake says it."""
    with node.client() as client:
        reply = client.request(f"REQUEST CONNECT spy 127.0.0.1:1 1 {FAKE_NONCE}")
    return parse_answer(reply.partition(b" ")[2]).identity.incarnation


def test_a_client_cannot_take_over_a_live_peers_name(tmp_path: Path) -> None:
    with running_cluster(2) as cluster:  # no secret: the weakest case
        n1, n2 = cluster.nodes
        real = incarnation_of(n2)
        dead = f"127.0.0.1:{n2.port + 1}" if n2.port < 65535 else "127.0.0.1:1"
        # The name at an address where nothing answers, with a new incarnation.
        assert handshake_as(n1, "n2", dead, real + 1).startswith(b":ERR DENIED dialled back")
        # The name, the real address and the real incarnation: n2 was not
        # dialling n1, so it does not vouch for this connection.
        assert handshake_as(n1, "n2", f"127.0.0.1:{n2.port}", real).startswith(
            b":ERR DENIED dialled back")
        with n1.client() as client:
            info = info_of(client)
            assert info["peers"] == "1" and int(info["auth_failures"]) >= 2
        assert "lost link to n2" not in n1.log()
        assert "did not vouch" in n1.log()


def test_without_the_secret_a_node_cannot_join_and_with_it_it_can(tmp_path: Path) -> None:
    right = with_secret(tmp_path)
    wrong = config_flag(tmp_path, '[cluster]\nsecret = "another secret"\n', "wrong.toml")
    with running_node("--name", "a", *right) as a:
        seed = ["--peers", f"127.0.0.1:{a.port}"]
        with running_node("--name", "b", *seed, *wrong) as b:
            wait_until(lambda: "it does not prove our cluster.secret" in b.log(),
                       what="b to refuse a")
            with a.client() as client:
                assert info_of(client)["peers_known"] == "0"
        with running_node("--name", "c", *seed) as c:  # no secret at all
            wait_until(lambda: "not joining a" in c.log(), what="c to refuse a")
        # A forged proof: refused, counted, the connection closed.
        reply = handshake_as(a, "mallory", "127.0.0.1:1", 1, b"guess")
        assert reply.startswith(b":ERR DENIED wrong proof")
        with a.client() as client:
            info = info_of(client)
            assert info["peers_known"] == "0" and int(info["auth_failures"]) >= 1
        with running_node("--name", "d", *seed, *right) as d, d.client() as client:
            wait_until(lambda: info_of(client)["peers"] == "1", what="d to join a")
        assert "authentication failed from" in a.log()


def test_a_peer_pushes_its_own_filter_only_and_of_its_size(tmp_path: Path) -> None:
    with running_cluster(2, *with_secret(tmp_path)) as cluster:
        n1, _ = cluster.nodes
        with peer_session(n1, "probe") as peer:
            # Under another node's name: refused, that node's filter untouched.
            reply = peer.request("REQUEST FILTER n2 FULL 99 800 3 0 eJxjYBgFAAAI9AAB")
            assert reply.startswith(b":ERR DENIED a peer pushes its own filter only")
        with peer_session(n1, "probe") as peer:
            # 60 MiB of zeros (compressed to a few KB): out of proportion to
            # the keys it holds (none), so refused, and the peer dropped.
            bits = 500_000_000
            data = base64.b64encode(zlib.compress(bytes(bits // 8), 9))
            reply = peer.request(b"REQUEST FILTER probe FULL 1 %d 5 0 " % bits + data)
            assert reply.startswith(b":ERR filter size 500000000 bits is out of proportion")


def test_password_noauth_wrongpass_and_auth(tmp_path: Path) -> None:
    with running_node(*password_flags(tmp_path)) as node, node.client() as client:
        for line in ("GET k", "SET k:v", "INFO", "PING", "DEL k", "REQUEST PEERS"):
            reply = client.request(line)
            assert reply.startswith(b":ERR NOAUTH "), (line, reply)
        assert client.request("REQUEST LOOKUP k").startswith(b":ERR NOAUTH ")
        assert client.request("t1:AUTH wrong") == b"t1:ERR WRONGPASS invalid password"
        assert client.request("AUTH " + PASSWORD) == b":AUTHED"
        assert client.request("SET k:v") == b":SAT k:v"
        assert client.request("GET k") == b":GOT k:v"
        assert client.request("REQUEST LOOKUP k").startswith(b":ERR DENIED ")  # still no peer
        assert info_of(client)["auth_failures"] == "1"
        with node.client() as other:  # each connection authenticates for itself
            assert other.request("GET k").startswith(b":ERR NOAUTH")
            assert other.request("QUIT") == b":BYE"
        assert "authentication failed from 127.0.0.1" in node.log()
        assert PASSWORD not in node.log()


def test_the_python_client_and_cli_send_the_password(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    flags = config_flag(tmp_path, f'[auth]\npassword_file = "{tmp_path / "pw"}"\n')
    with running_node(*flags) as node:
        with Client(node.host, node.port, password=PASSWORD) as db:
            db.set("a", "1")
            assert db.get("a") == b"1"
        with pytest.raises(WrongPassError), Client(node.host, node.port, password="no") as db:
            db.get("a")
        with pytest.raises(NoAuthError), Client(node.host, node.port) as db:
            db.get("a")
        cli = [sys.executable, "-m", "olivia.tools.cli", "-p", str(node.port), "GET", "a"]
        done = subprocess.run([*cli[:5], "-a", PASSWORD, *cli[5:]], capture_output=True,
                              text=True, timeout=10)
        assert done.stdout.strip() == ":GOT a:1", done
        env = {**os.environ, "OLIVIA_PASSWORD": PASSWORD}
        done = subprocess.run(cli, capture_output=True, text=True, timeout=10, env=env)
        assert done.stdout.strip() == ":GOT a:1", done


def test_nodes_with_a_password_and_no_secret_prove_the_password(tmp_path: Path) -> None:
    flags = password_flags(tmp_path)
    with running_node("--name", "a", *flags) as a, \
            running_node("--name", "b", "--peers", f"127.0.0.1:{a.port}", *flags) as b:
        with Client(b.host, b.port, password=PASSWORD) as db_b:
            wait_until(lambda: db_b.info()["peers"] == "1", what="b to join a")
            with Client(a.host, a.port, password=PASSWORD) as db_a:
                db_a.set("shared", "yes")
            wait_until(lambda: db_b.get("shared") == b"yes", timeout=1)
        with running_node("--name", "c", "--peers", f"127.0.0.1:{a.port}") as c:
            wait_until(lambda: "not joining a" in c.log(), what="c, with no password, to "
                       "refuse a")


def test_sigusr1_rereads_a_rotated_password_file(tmp_path: Path) -> None:
    """systemd's ExecReload: a rotated credential takes effect for new
    connections; a reload that cannot read the file changes nothing."""
    password_file = tmp_path / "pw"
    password_file.write_text("first\n")
    flags = config_flag(tmp_path, f'[auth]\npassword_file = "{password_file}"\n')
    with running_node(*flags) as node, node.client() as before:
        assert before.request("AUTH first") == b":AUTHED"
        password_file.write_text("second\n")
        node.signal(signal.SIGUSR1)
        wait_until(lambda: "SIGUSR1 received: password re-read" in node.log(),
                   what="the reload")
        with node.client() as after:
            assert after.request("AUTH first").startswith(b":ERR WRONGPASS")
            assert after.request("AUTH second") == b":AUTHED"
        assert before.request("PING") == b":PONG"  # authenticated connections stay so
        password_file.unlink()
        node.signal(signal.SIGUSR1)
        wait_until(lambda: "reload failed, settings unchanged" in node.log(),
                   what="the failed reload")
        with node.client() as later:
            assert later.request("AUTH second") == b":AUTHED"
        assert node.proc is not None and node.proc.poll() is None


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, f'[auth]\npassword_file = "{tmp_path / "missing"}"\n')
    done = subprocess.run([sys.executable, "-m", "olivia", *flags], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 2
    assert done.stderr.startswith("olivia: auth.password_file: cannot read")
    assert "Traceback" not in done.stderr


def test_a_line_client_as_a_peer_without_secret_is_dialled_back(tmp_path: Path) -> None:
    """peer_session's handshake needs the secret: without one configured the
    same proof (empty key) passes, and the dial-back is what refuses it."""
    with running_node("--name", "solo") as node:
        reply = handshake_as(node, "probe", "127.0.0.1:1", 1)
        assert reply.startswith(b":ERR DENIED dialled back 127.0.0.1:1")
        with LineClient(node.port) as client:
            assert info_of(client)["peers_known"] == "0"


def test_the_password_from_the_environment(tmp_path: Path) -> None:
    with running_node(env={"OLIVIA_REQUIREPASS": "envpass"}) as node, \
            node.client() as client:
        assert client.request("GET k").startswith(b":ERR NOAUTH")
        assert client.request("AUTH envpass") == b":AUTHED"


def test_requirepass_on_the_command_line_and_olivia_bench(tmp_path: Path) -> None:
    with running_node("--requirepass", "flagpass") as node, node.client() as client:
        assert client.request("PING").startswith(b":ERR NOAUTH")
        bench = [sys.executable, "-m", "olivia.tools.bench", "-p", str(node.port), "-n", "2000",
                 "-t", "set,get", "-c", "4", "-j", "1", "-q"]
        done = subprocess.run([*bench, "-a", "flagpass"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and "GET:" in done.stdout, done
        done = subprocess.run(bench, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "needs a password" in done.stderr, done
