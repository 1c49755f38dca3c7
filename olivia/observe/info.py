"""INFO: the fields every component reports, gathered in one stable order.

Each component that has something to report registers a source (a function
returning ``(name, value)`` pairs) with the node's :class:`InfoBoard`; INFO
asks them all.  :data:`FIELD_ORDER` fixes where each field goes, so adding a
field is one line in its component and one here, and the output keeps the
contract's fields first whatever the order of registration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

InfoSource = Callable[[], Iterable[tuple[str, object]]]

#: Where each field goes; fields not listed follow in registration order.
FIELD_ORDER = (
    # the contract's fields (docs/protocol.md, INFO)
    "name", "version", "uptime_s", "keys", "peers", "connected_clients", "used_memory",
    "expired_keys", "remote_lookups", "remote_probes", "remote_hits", "bloom_bits",
    "bloom_hashes", "bloom_fp_estimate",
    # Olivia's own
    "pid", "event_loop", "total_connections_received", "rejected_connections",
    "total_commands_processed", "max_line_bytes", "bloom_keys", "bloom_version",
    "invalidated_keys", "invalidations_pending", "lookup_messages", "gossip_messages",
    "gossip_bytes", "peers_known", "peers_suspect", "peers_down", "seeds_unreachable",
    "replicas", "under_replicated_keys", "tombstones", "replicated_keys", "repair_keys_sent",
    "repair_keys_received", "handoff_keys", "sync_bytes",
)
_RANK = {name: rank for rank, name in enumerate(FIELD_ORDER)}


class InfoBoard:
    """The INFO sources of one node."""

    def __init__(self) -> None:
        self._sources: list[InfoSource] = []

    def add(self, source: InfoSource) -> None:
        self._sources.append(source)

    def fields(self) -> list[tuple[str, str]]:
        """Every field as text, in FIELD_ORDER."""
        gathered: dict[str, str] = {}
        for source in self._sources:
            for name, value in source():
                gathered[name] = str(value)
        ranked = sorted(gathered, key=lambda name: _RANK.get(name, len(_RANK)))
        return [(name, gathered[name]) for name in ranked]
