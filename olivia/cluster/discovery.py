"""Finding peers besides ``--peers``: ``cluster.discovery`` (contract section 11).

* ``static``: the peers list only (the default);
* ``dns:NAME:PORT``: every address NAME resolves to (A and AAAA records), as
  a Kubernetes headless service gives one per pod;
* ``file:PATH``: one ``HOST:PORT`` a line (``#`` comments), re-read when the
  file changes.

Every ``discovery_interval`` seconds the source is resolved again and each
address not known alive is dialled (the handshake decides whether it is a
member).  An address that vanishes is left to the failure detector: a node
is not dropped because a DNS answer or a file lost it.  DNS uses dnspython,
with ``cluster.dns_server`` for a server of one's own (tests run one on
loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from olivia.config import Config
from olivia.core.tasks import TaskSet

log = logging.getLogger(__name__)


class Discovery:
    """Re-resolves the discovery source and hands new addresses to the dialer."""

    def __init__(self, config: Config, found: Callable[[str], None], tasks: TaskSet) -> None:
        self._config = config
        self._found = found
        self._tasks = tasks
        self.kind, _, self._source = config.cluster_discovery.partition(":")
        self._file_state: tuple[float, int] | None = None  # (mtime, size) last read
        self._file_addresses: list[str] = []
        self._last_error = ""
        self.addresses: list[str] = []  # what the last resolution found
        self.running = False
        self._woken = asyncio.Event()

    def start(self) -> None:
        if self.kind == "static":
            return
        self.running = True
        self._tasks.spawn(self._run(), f"discovery {self._config.cluster_discovery}")

    async def _run(self) -> None:
        while self.running:
            try:
                self.addresses = await self.resolve()
                self._last_error = ""
            except (OSError, ValueError, RuntimeError) as exc:
                self._complain(f"{type(exc).__name__}: {exc}")
            else:
                for address in self.addresses:
                    self._found(address)
            with contextlib.suppress(TimeoutError):  # the interval is up
                await asyncio.wait_for(self._woken.wait(),
                                       self._config.cluster_discovery_interval)
            self._woken.clear()

    def wake(self) -> None:
        """Resolve again now rather than at the next interval (a reload)."""
        self._woken.set()

    def _complain(self, why: str) -> None:
        """Log a failed resolution once per distinct reason (it is retried)."""
        if why != self._last_error:
            log.warning("discovery %s failed: %s (retrying every %gs)",
                        self._config.cluster_discovery, why,
                        self._config.cluster_discovery_interval)
            self._last_error = why

    async def resolve(self) -> list[str]:
        if self.kind == "dns":
            return await self._resolve_dns()
        return self._read_file()

    async def _resolve_dns(self) -> list[str]:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        name, _, port = self._source.rpartition(":")
        resolver = dns.asyncresolver.Resolver(configure=not self._config.cluster_dns_server)
        if self._config.cluster_dns_server:
            host, _, server_port = self._config.cluster_dns_server.rpartition(":")
            resolver.nameservers = [host]
            resolver.port = int(server_port)
        resolver.lifetime = max(1.0, self._config.cluster_discovery_interval)
        addresses: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(name, kind)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                raise RuntimeError(f"DNS: {exc}") from None
            for record in answer:
                host = record.to_text()
                addresses.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return sorted(addresses)

    def _read_file(self) -> list[str]:
        """The file's addresses, read again only when it changed."""
        path = self._source
        stat = os.stat(path)
        state = (stat.st_mtime, stat.st_size)
        if state != self._file_state:
            with open(path, encoding="utf-8") as file:
                lines = [line.split("#", 1)[0].strip() for line in file]
            addresses = [line for line in lines if line]
            bad = [line for line in addresses if not _is_address(line)]
            if bad:
                raise ValueError(f"{path}: not HOST:PORT: {bad[0]!r}")
            self._file_addresses = addresses
            self._file_state = state
        return list(self._file_addresses)


def _is_address(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)
