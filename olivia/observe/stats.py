"""Counters behind INFO, and the process's resident memory (the lowest layer:
every other one increments these, and this imports nothing of Olivia but
the latency histograms beside it)."""

from __future__ import annotations

import os
import resource
import sys
from collections import Counter
from dataclasses import dataclass, field

from olivia.observe.latency import Latencies


@dataclass
class Stats:
    """Plain attribute increments on the hot path; INFO reads them."""

    started_at: float
    connected_clients: int = 0
    total_connections: int = 0
    total_commands: int = 0
    rejected_connections: int = 0  # max_clients reached, or protected mode
    auth_failures: int = 0  # wrong passwords, and peers failing the handshake
    remote_lookups: int = 0  # keys missed locally and looked up on peers
    remote_probes: int = 0  # (peer, key) lookups sent
    remote_hits: int = 0  # remote lookups that found the key
    invalidated_keys: int = 0  # local copies dropped for a newer write elsewhere
    lookup_messages: int = 0  # LOOKUP/DELETE requests sent (one per peer and batch)
    gossip_messages: int = 0  # FILTER and INVALIDATE requests sent
    gossip_bytes: int = 0  # bytes of those requests
    replicated_keys: int = 0  # copies of this node's writes stored on other nodes
    repair_keys_sent: int = 0  # versions sent by anti-entropy (values and deletes)
    repair_keys_received: int = 0  # versions taken from anti-entropy and hand-overs
    handoff_keys: int = 0  # versions handed over when leaving
    sync_bytes: int = 0  # bytes of anti-entropy requests sent and their replies
    # Keys GET asked for and found (anywhere) or not, and requests per verb,
    # counted by the general path; the line fast path keeps its own counts
    # (olivia.protocols.line.fastpath.FastPath) and INFO adds them up.
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    latencies: Latencies = field(default_factory=Latencies)

    def info_fields(self) -> list[tuple[str, object]]:
        return [
            ("connected_clients", self.connected_clients),
            ("used_memory", resident_memory()),
            ("remote_lookups", self.remote_lookups),
            ("remote_probes", self.remote_probes),
            ("remote_hits", self.remote_hits),
            ("total_connections_received", self.total_connections),
            ("rejected_connections", self.rejected_connections),
            ("auth_failures", self.auth_failures),
            ("total_commands_processed", self.total_commands),
            ("invalidated_keys", self.invalidated_keys),
            ("lookup_messages", self.lookup_messages),
            ("gossip_messages", self.gossip_messages),
            ("gossip_bytes", self.gossip_bytes),
            ("replicated_keys", self.replicated_keys),
            ("repair_keys_sent", self.repair_keys_sent),
            ("repair_keys_received", self.repair_keys_received),
            ("handoff_keys", self.handoff_keys),
            ("sync_bytes", self.sync_bytes),
        ]


def resident_memory() -> int:
    """Resident set size of this process in bytes (peak RSS where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
