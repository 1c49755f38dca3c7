"""INFO in Redis's sectioned text form, from the node's INFO fields.

Monitoring tools that read Redis's INFO (redis-cli --stat, exporters) find
the fields they know under the names and sections Redis uses; Olivia's own
fields (peers, the filter, replication) are in a ``# Cluster`` section, under
their line-protocol names.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (section, Redis field, Olivia INFO field or None when worked out below).
_MAPPED: tuple[tuple[str, str, str], ...] = (
    ("server", "process_id", "pid"),
    ("server", "uptime_in_seconds", "uptime_s"),
    ("clients", "connected_clients", "connected_clients"),
    ("memory", "used_memory", "used_memory_dataset"),
    ("memory", "used_memory_rss", "used_memory"),
    ("memory", "used_memory_dataset", "used_memory_dataset"),
    ("memory", "maxmemory", "max_memory"),
    ("memory", "maxmemory_policy", "eviction_policy"),
    ("stats", "total_connections_received", "total_connections_received"),
    ("stats", "total_commands_processed", "total_commands_processed"),
    ("stats", "rejected_connections", "rejected_connections"),
    ("stats", "expired_keys", "expired_keys"),
    ("stats", "evicted_keys", "evicted_keys"),
    ("stats", "keyspace_hits", "keyspace_hits"),
    ("stats", "keyspace_misses", "keyspace_misses"),
)
_TAKEN = {olivia for _, _, olivia in _MAPPED} | {"name", "version", "keys"}
SECTIONS = ("server", "clients", "memory", "stats", "cluster", "keyspace")


def info_text(fields: Sequence[tuple[str, str]], wanted: Sequence[str], port: int,
              volatile_keys: int, compatibility: str) -> str:
    """The text of ``INFO [section ...]`` (none, ``all``, ``default``: every section)."""
    values = dict(fields)
    chosen = [s for s in SECTIONS
              if not wanted or set(wanted) & {"all", "everything", "default"} or s in wanted]
    lines: dict[str, list[str]] = {section: [] for section in SECTIONS}
    lines["clients"].append("blocked_clients:0")  # no blocking commands
    lines["server"] += [f"redis_version:{compatibility}", f"olivia_version:{values['version']}",
                        "redis_mode:standalone", f"tcp_port:{port}",
                        f"run_id:{values['name']}"]
    for section, redis_name, olivia_name in _MAPPED:
        lines[section].append(f"{redis_name}:{values.get(olivia_name, '0')}")
    uptime = int(values.get("uptime_s", "0"))
    lines["server"].append(f"uptime_in_days:{uptime // 86400}")
    lines["memory"].append(f"used_memory_human:{_human(int(values['used_memory_dataset']))}")
    lines["cluster"] = [f"{name}:{value}" for name, value in fields
                        if name not in _TAKEN and not name.startswith("cmd_")]
    lines["stats"] += [f"{name}:{value}" for name, value in fields if name.startswith("cmd_")]
    keys = int(values.get("keys", "0"))
    if keys:
        lines["keyspace"].append(f"db0:keys={keys},expires={volatile_keys},avg_ttl=0")
    out = []
    for section in chosen:
        out.append(f"# {section.capitalize()}")
        out += lines[section]
        out.append("")
    return "\r\n".join(out)


def _human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"
