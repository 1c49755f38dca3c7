"""The INFO fields as Prometheus metrics, in its text format, written by the
official ``prometheus_client`` library.

Every numeric INFO field becomes a metric named ``olivia_<field>`` with a
``node`` label: monotonic counts (requests, connections, keys expired...) as
counters (``olivia_<field>_total``), the rest as gauges; the text fields
(version, event loop, eviction policy) as labels of ``olivia_info``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: INFO fields that only grow while the node runs.
COUNTERS = frozenset({
    "total_connections_received", "rejected_connections", "auth_failures",
    "total_commands_processed", "expired_keys", "evicted_keys", "remote_lookups",
    "remote_probes", "remote_hits", "invalidated_keys", "lookup_messages", "gossip_messages",
    "gossip_bytes", "replicated_keys", "repair_keys_sent", "repair_keys_received",
    "handoff_keys", "sync_bytes", "keyspace_hits", "keyspace_misses",
})
TEXT = ("version", "event_loop", "eviction_policy")


class _InfoCollector(Collector):
    def __init__(self, fields: Sequence[tuple[str, str]]) -> None:
        self._fields = fields

    def collect(self) -> Iterator[Metric]:
        values = dict(self._fields)
        node = values.get("name", "")
        info = GaugeMetricFamily("olivia_info", "the node's version and settings",
                                 labels=["node", *TEXT])
        info.add_metric([node, *(values.get(name, "") for name in TEXT)], 1)
        yield info
        for name, text in self._fields:
            try:
                number = float(text)
            except ValueError:
                continue
            if name in COUNTERS or name.startswith("cmd_"):
                family: Metric = CounterMetricFamily(f"olivia_{name}", _help(name),
                                                     labels=["node"])
            else:
                family = GaugeMetricFamily(f"olivia_{name}", _help(name), labels=["node"])
            family.add_metric([node], number)  # type: ignore[attr-defined]
            yield family


def _help(name: str) -> str:
    if name.startswith("cmd_"):
        return f"requests of the {name[4:].upper()} verb"
    return f"INFO field {name} (docs/protocol.md section 5)"


def metrics_text(fields: Sequence[tuple[str, str]]) -> bytes:
    """The Prometheus text exposition of ``fields`` (one node's INFO)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_InfoCollector(fields))
    return generate_latest(registry)
