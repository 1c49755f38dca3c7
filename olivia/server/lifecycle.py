"""One node, assembled: the one owner of every part's start and stop.

:class:`NodeServer` builds the parts in dependency order (store, filter,
keyspace, cluster, verbs, registry, front ends, listeners), starts them
(:meth:`start`: bind first, so a port in use fails before anything runs),
and shuts them down in order (:meth:`shutdown`): stop accepting, let every
connection finish what it received (up to ``shutdown_timeout``), hand keys
over to the nodes that take this one's place (up to ``leave_timeout``), tell
the peers we are leaving, then stop the timers and tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from olivia import __version__
from olivia.cluster.bloom import BloomFilter
from olivia.cluster.cluster import Cluster
from olivia.cluster.dialer import PeerSecurity
from olivia.cluster.own_filter import OwnFilter
from olivia.config import Config
from olivia.core.clock import HybridClock
from olivia.core.expiry import ExpiryTimer
from olivia.core.keyspace import Keyspace
from olivia.core.registry import Registry
from olivia.core.session import Guard
from olivia.core.store import Store
from olivia.core.tombstones import Tombstones
from olivia.core.verbs import CoreVerbs, core_verbs
from olivia.observe.info import InfoBoard
from olivia.observe.stats import Stats
from olivia.protocols.line.frontend import LineProtocol
from olivia.protocols.line.replies import error_line
from olivia.protocols.resp.frontend import RespProtocol
from olivia.protocols.resp.replies import error as resp_error
from olivia.server.addresses import WILDCARDS, advertised_address
from olivia.server.listener import Listener

if TYPE_CHECKING:
    from olivia.server.http_listener import HttpListener
from olivia.server.tls import peer_context, server_context

log = logging.getLogger(__name__)


def _line_refusal(limit: int) -> bytes:
    return error_line(f"max clients reached (limit {limit})")


def _resp_refusal(limit: int) -> bytes:
    return resp_error(f"ERR max number of clients reached (limit {limit})")


class NodeServer:
    """One Olivia node: its data, its cluster, its ports."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        """Raises ConfigError for a password file, secret file or certificate
        that cannot be read."""
        self.config = config
        self.name = config.name or f"{config.host}:{config.port}"
        self.stats = Stats(started_at=time.monotonic())
        self.store = store if store is not None else Store()
        self.bloom = BloomFilter(config.bloom_capacity, config.bloom_fp_rate)
        self.own_filter = OwnFilter(self.bloom, self.store)
        self.keyspace = Keyspace(self.store, HybridClock(self.name), config.max_reply_bytes,
                                 Tombstones(config.cluster_tombstone_ttl,
                                            config.cluster_max_tombstones),
                                 config.max_memory, config.eviction_policy)
        self.expiry = ExpiryTimer(self.store)
        self.keyspace.on_deadline = self.expiry.deadline_added
        password, secret = config.password(), config.secret()
        self.guard = Guard(password, config.protected_mode, self.stats)
        security = PeerSecurity(key=(secret or password).encode(), secret=bool(secret),
                                ssl=peer_context(config), needs_certificate=bool(config.tls_ca))
        self.cluster = Cluster(config, self.keyspace, self.own_filter, self.stats, self.guard,
                               security)
        self.info = InfoBoard()
        self.registry = Registry(core_verbs(CoreVerbs(self.keyspace, self.info_fields,
                                                      self.guard, config.max_keys_reply,
                                                      self.stats))
                                 + self.cluster.specs())
        self.line = LineProtocol(self.registry, self.keyspace, self.stats,
                                 config.max_line_bytes, config.max_peer_line_bytes,
                                 guard=self.guard)
        self.cluster.verbs.execute_here = self.line.execute_forwarded
        self.resp = RespProtocol(self.registry, self.keyspace, self.stats, self.guard,
                                 config.max_line_bytes,
                                 self.info_fields, self.store.volatile_count, self._redis_config)
        self.listeners = [Listener("line protocol", config.host, config.port,
                                   self.line.connection, _line_refusal, self.stats,
                                   config.max_clients, config.max_client_output_bytes,
                                   server_context(config))]
        if config.resp_port >= 0:
            self.listeners.append(Listener(
                "RESP", config.host, config.resp_port, self.resp.connection, _resp_refusal,
                self.stats, config.max_clients, config.max_client_output_bytes,
                server_context(config)))
        self.http = self._http_listener(config)
        self.event_loop_name = "none"
        for source in (self._node_fields, self._store_fields, self.stats.info_fields,
                       self.own_filter.info_fields, self.cluster.info_fields,
                       self._command_fields):
            self.info.add(source)

    def _http_listener(self, config: Config) -> HttpListener | None:
        """The HTTP port, when configured (aiohttp is imported only then)."""
        if config.http_port < 0:
            return None
        from olivia.protocols.http.app import HttpFrontEnd
        from olivia.server.http_listener import HttpListener
        front = HttpFrontEnd(self.registry, self.guard, self.stats, self.info_fields,
                             self.cluster_nodes)
        return HttpListener(front, config.host, config.http_port, server_context(config))

    async def cluster_nodes(self) -> list[dict[str, object]]:
        """This node and every peer it knows, with the INFO fields of those
        that answer (HTTP ``/v1/cluster``)."""
        me = {"name": self.name, "address": self.advertise, "state": "self",
              "info": dict(self.info_fields())}
        return [me, *await self.cluster.peer_infos(self.config.lookup_timeout)]

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Bind every port (OSError if one is taken), then start serving and
        join the cluster; returns the line protocol's bound address.  Raises
        NoRoutableAddress for a wildcard host with nothing to advertise."""
        for listener in self.listeners:
            await listener.start()
        host, port = self.listeners[0].host, self.listeners[0].port
        if len(self.listeners) > 1:
            self.resp.port = self.listeners[1].port
        if self.http is not None:
            await self.http.start()
        advertise = advertised_address(host, port, self.config.advertise)
        self.name = self.config.name or (f"{host}:{port}" if host not in WILDCARDS else advertise)
        loop = asyncio.get_running_loop()
        self.event_loop_name = type(loop).__module__.split(".")[0]
        self.keyspace.start(loop, HybridClock(self.name), self.cluster)
        self.own_filter.attach(loop)
        self.expiry.start(loop)
        self.cluster.start(self.name, advertise)
        self.advertise = advertise
        return host, port

    def reload(self) -> None:
        """SIGUSR1 (systemd's ExecReload): read the password again (a rotated
        auth.password_file or credential) and resolve discovery now.  Raises
        ConfigError if the password file cannot be read; nothing changes then."""
        self.guard.change_password(self.config.password())
        self.cluster.discovery.wake()

    @property
    def connections(self) -> int:
        return sum(len(listener.connections) for listener in self.listeners)

    async def shutdown(self) -> None:
        """Stop accepting, drain (writes still get their copies), hand the
        keys that would lose a copy over, leave the cluster, stop everything."""
        for listener in self.listeners:
            listener.stop_accepting()
        await asyncio.gather(*(listener.drain(self.config.shutdown_timeout)
                               for listener in self.listeners))
        if self.http is not None:
            await self.http.stop(self.config.shutdown_timeout)
        await self.cluster.hand_over(self.config.cluster_leave_timeout)
        await self.cluster.stop()
        self.expiry.stop()
        self.own_filter.attach(None)
        self.keyspace.stop()

    def abort(self) -> None:
        """Drop every connection at once (a second signal: exit now)."""
        for listener in self.listeners:
            listener.stop_accepting()
            for connection in list(listener.connections):
                connection.abort()

    # -- INFO -------------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, str]]:
        """The INFO fields, after evicting due keys (so ``keys`` counts live
        keys only) and putting this turn's new keys in the filter."""
        self.expiry.evict_due(limit=None)
        self.own_filter.flush()
        return self.info.fields()

    def _node_fields(self) -> list[tuple[str, object]]:
        return [
            ("name", self.name),
            ("version", __version__),
            ("uptime_s", int(time.monotonic() - self.stats.started_at)),
            ("pid", os.getpid()),
            ("event_loop", self.event_loop_name),
            ("max_line_bytes", self.config.max_line_bytes),
            # Where this node's other ports listen (-1: off), so a peer can
            # name them: OVO's topology (GET /ovo/cluster) lists HTTP ports.
            ("resp_port", self.resp.port or -1),
            ("http_port", self.http.port if self.http is not None else -1),
        ]

    def _redis_config(self) -> dict[bytes, bytes]:
        """What RESP's CONFIG GET answers: settings under Redis's names."""
        config = self.config
        return {b"save": b"", b"appendonly": b"no", b"databases": b"1",
                b"maxmemory": b"%d" % config.max_memory,
                b"maxmemory-policy": config.eviction_policy.encode(),
                b"maxclients": b"%d" % config.max_clients,
                b"port": b"%d" % self.resp.port}

    def _command_fields(self) -> list[tuple[str, object]]:
        """keyspace_hits and _misses (keys GET found or not), and cmd_<verb>:
        the requests of each client verb, whichever path answered them."""
        gets, sets, hits, misses = self.line.fast.counted()
        resp = self.resp.fast
        gets, sets = gets + resp.gets, sets + resp.sets
        hits, misses = hits + resp.gets - resp.misses, misses + resp.misses
        calls = self.stats.calls
        fast = {"GET": gets, "SET": sets}
        return [("keyspace_hits", self.stats.keyspace_hits + hits),
                ("keyspace_misses", self.stats.keyspace_misses + misses),
                *((f"cmd_{spec.name.lower()}", calls[spec.name] + fast.get(spec.name, 0))
                  for spec in self.registry if not spec.peer and " " not in spec.name)]

    def _store_fields(self) -> list[tuple[str, object]]:
        return [
            ("keys", len(self.store)),
            ("expired_keys", self.store.expired_count),
            ("max_memory", self.config.max_memory),
            ("used_memory_dataset", self.store.memory()),
            ("eviction_policy", self.config.eviction_policy),
            ("evicted_keys", self.keyspace.evictor.evicted_count),
        ]
