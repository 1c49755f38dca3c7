"""Hosts on one machine: network namespaces joined by veth pairs, made and
removed by the tests themselves (root and iproute2's ``ip`` needed; tests
that use them skip with the reason otherwise).  Two hosts on one cable
(:func:`two_hosts`), or any number on a switch (:func:`switched_hosts`), one
of which can be cut off and plugged back in.

Every address is in 10.77.0.0/16, on links that exist only between the
namespaces; nothing in them has a default route, so no traffic can leave.
Commands meant for a namespace are run inside it (``ip netns exec``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import DEADLINE, OliviaProcess, config_flag

_uses = itertools.count()  # so two networks made by one process never share a name

# A client run inside a namespace (``python -c``): request lines from stdin,
# all sent at once (pipelined), one reply line printed for each.
_TALK = """
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lines = [line for line in sys.stdin.buffer.read().split(b"\\n") if line.strip(b"\\r")]
replies = b""
with socket.create_connection((host, port), timeout=timeout) as sock:
    sock.sendall(b"".join(line + b"\\n" for line in lines))
    while replies.count(b"\\n") < len(lines):
        chunk = sock.recv(65536)
        if not chunk:
            break
        replies += chunk
sys.stdout.buffer.write(replies)
"""


def skip_reason() -> str | None:
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's 'ip' is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=DEADLINE)


@dataclass(frozen=True)
class Host:
    """One namespace: its name and its address on the shared link."""

    namespace: str
    address: str

    def prefix(self) -> list[str]:
        """Put before a command to run it inside this host."""
        return ["ip", "netns", "exec", self.namespace]

    def run(self, command: Sequence[str], timeout: float = DEADLINE
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix(), *command], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def talk(self, port: int, lines: Sequence[str], to: Host | None = None,
             timeout: float = DEADLINE) -> list[str]:
        """Send request ``lines`` from inside this host to the node at
        ``to``'s address (this host's by default), all on one connection;
        their replies, one per line.  AssertionError if any is missing."""
        address = (to or self).address
        done = subprocess.run([*self.prefix(), sys.executable, "-c", _TALK, address, str(port),
                               str(timeout)], input="".join(f"{line}\n" for line in lines),
                              capture_output=True, text=True, timeout=timeout + DEADLINE)
        replies = done.stdout.splitlines()
        assert done.returncode == 0 and len(replies) == len(lines), (
            f"{len(replies)} replies to {len(lines)} lines from {address}:{port} "
            f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        return replies


@contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """Two namespaces on one veth pair: 10.77.N.1 and 10.77.N.2."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}"
    subnet = os.getpid() % 250 + 1
    names = (f"olv{tag}a", f"olv{tag}b")
    hosts = (Host(names[0], f"10.77.{subnet}.1"), Host(names[1], f"10.77.{subnet}.2"))
    made: list[str] = []
    try:
        try:
            for name in names:
                _ip("netns", "add", name)
                made.append(name)
            _ip("link", "add", names[0], "type", "veth", "peer", "name", names[1])
            for host in hosts:
                _ip("link", "set", host.namespace, "netns", host.namespace)
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev",
                    host.namespace)
                _ip("-n", host.namespace, "link", "set", host.namespace, "up")
                _ip("-n", host.namespace, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot make network namespaces here: {exc.stderr.decode().strip()}")
        yield hosts
    finally:
        for name in made:  # the veth ends go with their namespaces
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=DEADLINE)


def _tag() -> str:
    """A name part unique to this process and this use (names stay <= 15 bytes)."""
    return f"{os.getpid() % 100000}{chr(ord('a') + next(_uses) % 26)}"


class Switch:
    """Hosts 10.77.N.1, 10.77.N.2, ... each on a cable to one bridge, in a
    namespace of its own (the "switch").  A host can be unplugged
    (:meth:`unplug`: its port leaves the bridge and goes down, so nothing it
    sends reaches anyone) and plugged back in (:meth:`plug`)."""

    BRIDGE = "br0"

    def __init__(self, namespace: str, hosts: Sequence[Host]) -> None:
        self.namespace = namespace
        self.hosts = list(hosts)

    def port(self, host: Host) -> str:
        """The switch's end of ``host``'s cable."""
        return f"p{self.hosts.index(host) + 1}"

    def unplug(self, host: Host) -> None:
        _ip("-n", self.namespace, "link", "set", self.port(host), "nomaster")
        _ip("-n", self.namespace, "link", "set", self.port(host), "down")

    def plug(self, host: Host) -> None:
        _ip("-n", self.namespace, "link", "set", self.port(host), "master", self.BRIDGE)
        _ip("-n", self.namespace, "link", "set", self.port(host), "up")


@contextmanager
def switched_hosts(count: int) -> Iterator[Switch]:
    """``count`` namespaces on one switch, all deleted at the end (even on
    failure).  Each host has one interface, ``eth0``, with its address in
    10.77.N.0/24, and no default route: traffic goes over the cables only."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    tag = _tag()
    subnet = os.getpid() % 250 + 1
    switch = Switch(f"olv{tag}sw", [Host(f"olv{tag}h{number}", f"10.77.{subnet}.{number}")
                                    for number in range(1, count + 1)])
    made: list[str] = []
    try:
        try:
            _ip("netns", "add", switch.namespace)
            made.append(switch.namespace)
            _ip("-n", switch.namespace, "link", "add", Switch.BRIDGE, "type", "bridge")
            _ip("-n", switch.namespace, "link", "set", Switch.BRIDGE, "up")
            for host in switch.hosts:
                _ip("netns", "add", host.namespace)
                made.append(host.namespace)
                _ip("-n", host.namespace, "link", "add", "eth0", "type", "veth", "peer", "name",
                    switch.port(host), "netns", switch.namespace)
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                _ip("-n", host.namespace, "link", "set", "eth0", "up")
                _ip("-n", host.namespace, "link", "set", "lo", "up")
                switch.plug(host)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot make network namespaces here: {exc.stderr.decode().strip()}")
        yield switch
    finally:
        for name in made:  # the cables go with their namespaces
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=DEADLINE)


@contextmanager
def node_in(host: Host, port: int, toml: str, *args: str) -> Iterator[OliviaProcess]:
    """A node started inside ``host``, listening on every address at ``port``,
    with a config file holding ``toml``; stopped at the end of the block."""
    with tempfile.TemporaryDirectory() as directory:
        node = OliviaProcess(["--host", "0.0.0.0", "--port", str(port),
                              *config_flag(Path(directory), toml), *args],
                             prefix=host.prefix())
        try:
            yield node.start()
        finally:
            node.close()
