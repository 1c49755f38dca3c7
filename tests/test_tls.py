"""TLS for clients and peers, with mutual certificates among nodes (tls.ca)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from olivia import Client, ConnectionLostError
from tests.certs import Authority
from tests.helpers import SECRET, config_flag, running_node, wait_until


def tls_toml(cert: Path, key: Path, ca: Path | None, extra: str = "") -> str:
    ca_line = f'ca = "{ca}"\n' if ca is not None else ""
    return (f'[tls]\ncert = "{cert}"\nkey = "{key}"\n{ca_line}'
            f'[cluster]\nsecret = "{SECRET}"\n{extra}')


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path, "cluster")


def test_clients_speak_tls_and_plain_tcp_is_refused(tmp_path: Path,
                                                     authority: Authority) -> None:
    issued = authority.issue("node")
    flags = config_flag(tmp_path, tls_toml(issued.cert, issued.key, authority.ca))
    with running_node(*flags) as node:
        with Client(node.host, node.port, ssl=True, ssl_ca_certs=str(authority.ca)) as db:
            db.set("secure", "yes")
            assert db.get("secure") == b"yes"
            with db.pipeline() as pipe:
                for i in range(2000):
                    pipe.set(f"k{i}", "v" * 100)
            assert db.get("k1999") == b"v" * 100
        with pytest.raises(ConnectionLostError), Client(node.host, node.port, timeout=2) as db:
            db.get("secure")  # plain TCP to a TLS port: the handshake fails
        other = Authority(tmp_path, "other")
        with pytest.raises(ConnectionLostError, match="CERTIFICATE_VERIFY_FAILED"), \
                Client(node.host, node.port, ssl=True, ssl_ca_certs=str(other.ca)) as db:
            db.get("secure")  # a server this client's CA did not sign
        cli = [sys.executable, "-m", "olivia.tools.cli", "-p", str(node.port), "--tls",
               "--cacert", str(authority.ca), "GET", "secure"]
        done = subprocess.run(cli, capture_output=True, text=True, timeout=10)
        assert done.stdout.strip() == ":GOT secure:yes", done


def test_peers_with_certificates_of_the_cluster_ca_join(tmp_path: Path,
                                                        authority: Authority) -> None:
    a_cert, b_cert = authority.issue("a"), authority.issue("b")
    a_flags = config_flag(tmp_path, tls_toml(a_cert.cert, a_cert.key, authority.ca), "a.toml")
    b_flags = config_flag(tmp_path, tls_toml(b_cert.cert, b_cert.key, authority.ca), "b.toml")
    context = ssl.create_default_context(cafile=str(authority.ca))
    with running_node("--name", "a", *a_flags) as a, \
            running_node("--name", "b", "--peers", f"127.0.0.1:{a.port}", *b_flags) as b, \
            Client(a.host, a.port, ssl=context) as da, Client(b.host, b.port, ssl=context) as db:
        wait_until(lambda: da.info()["peers"] == db.info()["peers"] == "1",
                   what="two TLS nodes to join")
        da.set("across", "tls")
        wait_until(lambda: db.get("across") == b"tls", timeout=1)


def test_a_peer_with_a_certificate_from_another_ca_is_refused(
        tmp_path: Path, authority: Authority) -> None:
    good = authority.issue("good")
    rogue_ca = Authority(tmp_path, "rogue")
    rogue = rogue_ca.issue("rogue")
    good_flags = config_flag(tmp_path, tls_toml(good.cert, good.key, authority.ca), "g.toml")
    # It trusts the cluster's CA, so it can check the node; its own
    # certificate is what the node refuses.
    rogue_flags = config_flag(tmp_path, tls_toml(rogue.cert, rogue.key, authority.ca), "r.toml")
    with running_node("--name", "good", *good_flags) as node, \
            running_node("--name", "rogue", "--peers", f"127.0.0.1:{node.port}",
                         *rogue_flags) as intruder:
        wait_until(lambda: "does not answer" in intruder.log(), what="the rogue to fail")
        with Client(node.host, node.port, ssl=True, ssl_ca_certs=str(authority.ca)) as db:
            assert db.info()["peers_known"] == "0"
        assert "handshake failed" in intruder.log()
    # A client with no certificate at all cannot do the handshake over TLS.
    with running_node(*good_flags) as node:
        context = ssl.create_default_context(cafile=str(authority.ca))
        with context.wrap_socket(socket.create_connection(("127.0.0.1", node.port)),
                                 server_hostname="127.0.0.1") as sock:
            sock.sendall(b"REQUEST CONNECT mallory 127.0.0.1:1 1 " + b"ab" * 16 + b"\n")
            reply = sock.recv(4096)
        assert reply.startswith(b":ERR DENIED REQUEST CONNECT over TLS needs a client cert")


def test_a_bad_certificate_path_is_a_config_error(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, f'[tls]\ncert = "{tmp_path / "nope.pem"}"\n')
    done = subprocess.run([sys.executable, "-m", "olivia", *flags], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 2, done
    assert done.stderr.startswith("olivia: tls.cert / tls.key: cannot load")


def test_without_a_ca_nodes_encrypt_and_olivia_bench_speaks_tls(
        tmp_path: Path, authority: Authority) -> None:
    issued = authority.issue("node")
    flags = config_flag(tmp_path, tls_toml(issued.cert, issued.key, None))
    with running_node("--name", "a", *flags) as a, \
            running_node("--name", "b", "--peers", f"127.0.0.1:{a.port}", *flags) as b, \
            Client(b.host, b.port, ssl=True, ssl_ca_certs=str(authority.ca)) as db:
        wait_until(lambda: db.info()["peers"] == "1", what="two TLS nodes without a CA")
        bench = [sys.executable, "-m", "olivia.tools.bench", "-p", str(a.port), "-n", "2000",
                 "-t", "set,get", "-c", "4", "-j", "1", "-P", "4", "-q", "--tls",
                 "--cacert", str(authority.ca)]
        done = subprocess.run(bench, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "GET:" in done.stdout, done
