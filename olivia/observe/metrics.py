"""The INFO fields as Prometheus metrics, in its text format, written by the
official ``prometheus_client`` library.

Every numeric INFO field becomes a metric named ``olivia_<field>`` with a
``node`` label: monotonic counts (requests, connections, keys expired...) as
counters (``olivia_<field>_total``), the rest as gauges; the text fields
(version, event loop, eviction policy) as labels of ``olivia_info``.

Request latency is ``olivia_request_duration_seconds``, a histogram per
``port`` (line, resp, http, peer) and ``verb`` (olivia.observe.latency says
what is timed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from olivia.observe.latency import Latencies

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
    def __init__(self, fields: Sequence[tuple[str, str]], latencies: Latencies) -> None:
        self._fields = fields
        self._latencies = latencies

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
        yield self._durations(node)

    def _durations(self, node: str) -> Metric:
        family = HistogramMetricFamily(
            "olivia_request_duration_seconds",
            "time from a request reaching the command core to its reply being ready",
            labels=["node", "port", "verb"])
        for (port, verb), histogram in sorted(self._latencies.histograms.items()):
            buckets = [(_bound(bound), count) for bound, count in histogram.cumulative()]
            family.add_metric([node, port, verb], buckets, histogram.total)
        return family


def _help(name: str) -> str:
    if name.startswith("cmd_"):
        return f"requests of the {name[4:].upper()} verb"
    return f"INFO field {name} (docs/protocol.md section 5)"


def _bound(seconds: float) -> str:
    return "+Inf" if seconds == float("inf") else repr(seconds)


def metrics_text(fields: Sequence[tuple[str, str]], latencies: Latencies) -> bytes:
    """The Prometheus text exposition of ``fields`` (one node's INFO) and of
    its request latencies."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_InfoCollector(fields, latencies))
    return generate_latest(registry)
