"""Hosts on one machine: network namespaces joined by veth pairs, made and
removed by the tests themselves (root and iproute2's ``ip`` needed; tests
that use them skip with the reason otherwise).

Every address is in 10.77.0.0/16, on links that exist only between the
namespaces; nothing in them has a default route, so no traffic can leave.
Commands meant for a namespace are run inside it (``ip netns exec``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.helpers import DEADLINE


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
