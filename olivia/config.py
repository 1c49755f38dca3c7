"""One :class:`Config` for a node: defaults, overridden by TOML, overridden by flags.

Each setting is declared once, as a dataclass field whose metadata carries its
TOML key, its one-line help and its validation.  The loader, the flag parser,
the error messages and the check that ``config.toml`` lists every key all read
that one declaration.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The environment variable naming the config file when --config is not given.
CONFIG_ENV = "OLIVIA_CONFIG"
#: The environment variable holding the client password when neither
#: auth.password nor auth.password_file is set (as --requirepass, off ps).
PASSWORD_ENV = "OLIVIA_REQUIREPASS"
_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_LOG_LEVELS = ("debug", "info", "warning", "error")
#: What a node may do when a write would take it over ``max_memory``.
EVICTION_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                     "volatile-lru", "volatile-ttl")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
               "g": 1000**3, "gb": 1024**3}
_SIZE_MATCH = re.compile(r"\s*([0-9]+)\s*([a-z]*)\s*\Z").match


class ConfigError(Exception):
    """A setting that cannot be used; the message is the one line to print."""


def _setting(default: Any, help: str, check: str = "", **limits: Any) -> Any:
    """A Config field: ``check`` names a validator in ``_CHECKS``."""
    metadata = {"help": help, "check": check, **limits}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Every setting of a node.  ``name`` and ``advertise`` left empty are
    derived from the listen address once the port is bound."""

    host: str = _setting("127.0.0.1", "address to listen on", "host")
    port: int = _setting(5454, "TCP port for clients and peers (0 picks a free one)", "int",
                         min=0, max=65535)
    name: str = _setting("", "node name, unique in the cluster; empty = HOST:PORT", "name")
    advertise: str = _setting("", "HOST:PORT peers dial back; empty = the listen address",
                              "address")
    peers: tuple[str, ...] = _setting((), "seed peers to join, as [\"HOST:PORT\", ...]",
                                      "addresses")
    log_level: str = _setting("info", "one of debug, info, warning, error", "log_level")
    max_line_bytes: int = _setting(1048576, "longest request line; longer ones close the "
                                   "connection", "int", min=64, max=1 << 30)
    max_reply_bytes: int = _setting(64 << 20, "largest reply a GET may build; larger ones get "
                                    "an error", "int", min=1 << 20, max=1 << 32)
    max_keys_reply: int = _setting(100_000, "most keys KEYS may answer with; more get ERR "
                                   "TOOMANY (SCAN has no limit)", "int", min=1,
                                   max=100_000_000)
    max_clients: int = _setting(10000, "open client connections at most; more are refused",
                                "int", min=1, max=1_000_000)
    lookup_timeout: float = _setting(1.0, "seconds a GET waits for a peer's answer before "
                                     "going on without it", "float", min=0.01, max=60.0)
    gossip_interval: float = _setting(0.1, "seconds between filter and invalidation pushes "
                                      "to peers", "float", min=0.01, max=10.0)
    heartbeat_interval: float = _setting(0.25, "seconds between heartbeats to each peer",
                                         "float", min=0.05, max=10.0)
    suspect_timeout: float = _setting(2.5, "seconds a silent peer stays suspect before it "
                                      "is marked down", "float", min=0.1, max=60.0)
    forget_after: float = _setting(3600.0, "seconds a peer may stay unreachable before it is "
                                   "forgotten (no longer redialled)", "float", min=1.0,
                                   max=1e8)
    max_peer_line_bytes: int = _setting(64 << 20, "longest line accepted from a peer (filters "
                                        "are large)", "int", min=1 << 20, max=1 << 31)
    bloom_capacity: int = _setting(1_000_000, "keys the filter is sized for; it grows past "
                                   "that", "int", min=1000, max=1 << 32, table="bloom")
    bloom_fp_rate: float = _setting(0.005, "target false-positive rate of the filter (0.005 keeps "
                                    "a GET at <= 1.05 probes with 8 full filters)", "float",
                                    min=0.0001, max=0.5, table="bloom")
    shutdown_timeout: float = _setting(3.0, "seconds to finish in-flight replies on "
                                       "SIGTERM before closing", "float", min=0.0, max=60.0)
    cluster_replicas: int = _setting(1, "copies of every key on other nodes besides one; 0 "
                                     "turns replication off", "int", min=0, max=8,
                                     table="cluster")
    cluster_tombstone_ttl: float = _setting(300.0, "seconds a delete is remembered, so that "
                                            "an older copy cannot come back", "float",
                                            min=1.0, max=1e7, table="cluster")
    cluster_max_tombstones: int = _setting(1_000_000, "deletes remembered at most (the oldest "
                                           "are forgotten first)", "int", min=1000,
                                           max=1 << 32, table="cluster")
    cluster_sync_interval: float = _setting(5.0, "seconds between anti-entropy rounds with "
                                            "every peer (membership changes start one at "
                                            "once)", "float", min=0.1, max=3600.0,
                                            table="cluster")
    cluster_secret: str = _setting("", "shared by the nodes of a cluster: a joining node proves "
                                   "it (HMAC challenge-response); empty = none", "secret",
                                   table="cluster")
    cluster_secret_file: str = _setting("", "file holding cluster.secret (its first line), so "
                                        "it need not be in this file", "path", table="cluster")
    auth_password: str = _setting("", "clients must send AUTH <password> first; empty = no "
                                  "password", "secret", table="auth")
    auth_password_file: str = _setting("", "file holding the password (its first line), so it "
                                       "need not be on the command line", "path", table="auth")
    protected_mode: bool = _setting(True, "with no password, refuse clients that are not on "
                                    "loopback (peers proving the cluster secret are let in)",
                                    "bool")
    tls_cert: str = _setting("", "PEM certificate (chain): clients and peers connect over TLS "
                             "when set", "path", table="tls")
    tls_key: str = _setting("", "PEM private key of tls.cert", "path", table="tls")
    tls_ca: str = _setting("", "PEM CA bundle: peers must present a certificate it signed "
                           "(mutual TLS), and so must the nodes this one dials", "path",
                           table="tls")
    resp_port: int = _setting(-1, "also speak RESP (any Redis client) on this port, over the "
                              "same data; -1 = off, 0 = any free port", "int", min=-1,
                              max=65535, table="resp")
    http_port: int = _setting(-1, "also serve HTTP (the key API, /metrics, /health) on this "
                              "port; -1 = off, 0 = any free port", "int", min=-1, max=65535,
                              table="http")
    max_memory: int = _setting(0, "bytes of data this node keeps at most (512mb-style units "
                               "allowed); 0 = no limit", "size", min=0, max=1 << 50)
    eviction_policy: str = _setting("noeviction", "at max_memory: noeviction (writes get ERR "
                                    "OOM), allkeys-lru, allkeys-lfu, allkeys-random, "
                                    "volatile-lru, volatile-ttl", "policy")
    max_client_output_bytes: int = _setting(64 << 20, "replies buffered for a client that does "
                                            "not read them, at most; then it is not read "
                                            "from until it catches up", "size",
                                            min=1 << 16, max=1 << 40)
    cluster_discovery: str = _setting("static", "how peers are found besides --peers: static, "
                                      "dns:NAME:PORT (every address NAME resolves to) or "
                                      "file:PATH (a HOST:PORT a line)", "discovery",
                                      table="cluster")
    cluster_discovery_interval: float = _setting(5.0, "seconds between resolutions of "
                                                 "cluster.discovery", "float", min=0.05,
                                                 max=3600.0, table="cluster")
    cluster_dns_server: str = _setting("", "HOST:PORT of the DNS server dns: discovery asks; "
                                       "empty = the system's resolver", "address",
                                       table="cluster")
    cluster_leave_timeout: float = _setting(60.0, "seconds a leaving node may spend handing "
                                            "its keys over before it exits", "float",
                                            min=0.0, max=3600.0, table="cluster")

    @classmethod
    def setting_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def password(self) -> str:
        """The client password: auth.password (or --requirepass), else the first
        line of auth.password_file, else $OLIVIA_REQUIREPASS (see load)."""
        return _secret_of(self.auth_password, self.auth_password_file, "auth.password_file")

    def secret(self) -> str:
        """The cluster secret: cluster.secret, else the first line of cluster.secret_file."""
        return _secret_of(self.cluster_secret, self.cluster_secret_file, "cluster.secret_file")

    def with_overrides(self, overrides: Mapping[str, Any], source: str) -> Config:
        """A copy with ``overrides`` applied, each validated; ``source`` names
        where they came from for error messages (a file, or 'flag')."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        checked = {}
        for key, value in overrides.items():
            spec = fields.get(key.replace(".", "_"))
            if spec is None or ("." in key) != ("table" in spec.metadata):
                raise ConfigError(f"{source}: unknown key '{key}'")
            checked[spec.name] = _check(spec, value, source)
        return dataclasses.replace(self, **checked)


def _secret_of(value: str, path: str, key: str) -> str:
    if value or not path:
        return value
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read '{path}': {why}") from None
    first = text.splitlines()[0].strip() if text.strip() else ""
    if not first:
        raise ConfigError(f"{key}: '{path}' is empty")
    return first


def _describe(spec: dataclasses.Field[Any]) -> str:
    check = spec.metadata["check"]
    lo, hi = spec.metadata.get("min"), spec.metadata.get("max")
    return {
        "int": f"an integer from {lo} to {hi}",
        "float": f"a number from {lo} to {hi}",
        "host": "a host name or IP address",
        "name": "1-64 characters of A-Z a-z 0-9 _ . : -",
        "address": "HOST:PORT (or empty)",
        "addresses": "a list of \"HOST:PORT\" strings",
        "log_level": "one of " + ", ".join(_LOG_LEVELS),
        "secret": "a string (keep it out of version control: see the *_file settings)",
        "path": "a file path (or empty)",
        "bool": "true or false",
        "size": f"a number of bytes from {lo} to {hi}, or a size such as \"512mb\"",
        "policy": "one of " + ", ".join(EVICTION_POLICIES),
        "discovery": "static, dns:NAME:PORT or file:PATH",
    }[check]


def parse_size(value: object) -> int | None:
    """Bytes from an int or a size such as ``"512mb"`` (kb, mb, gb are powers of
    1024, k, m, g of 1000, as in redis.conf); None if it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    match = _SIZE_MATCH(value.lower())
    if match is None or match.group(2) not in _SIZE_UNITS:
        return None
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _is_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)


def _is_discovery(value: str) -> bool:
    kind, _, rest = value.partition(":")
    if kind == "static":
        return not rest
    if kind == "dns":
        return _is_address(rest)
    return kind == "file" and bool(rest) and "\n" not in rest and "\0" not in rest


def _check(spec: dataclasses.Field[Any], value: Any, source: str) -> Any:
    check = spec.metadata["check"]
    lo: Any = spec.metadata.get("min")
    hi: Any = spec.metadata.get("max")
    ok = False
    if check == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    elif check == "float":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and lo <= value <= hi)
        value = float(value) if ok else value
    elif check == "host":
        ok = isinstance(value, str) and bool(value) and " " not in value and len(value) < 256
    elif check == "name":
        ok = isinstance(value, str) and (value == "" or bool(_NAME_RE.match(value)))
    elif check == "address":
        ok = value == "" or _is_address(value)
    elif check == "addresses":
        ok = isinstance(value, (list, tuple)) and all(_is_address(v) for v in value)
        value = tuple(value) if ok else value
    elif check == "log_level":
        ok = value in _LOG_LEVELS
    elif check in ("secret", "path"):
        ok = isinstance(value, str) and "\n" not in value and "\0" not in value
    elif check == "bool":
        ok = isinstance(value, bool)
    elif check == "size":
        size = parse_size(value)
        ok = size is not None and lo <= size <= hi
        value = size if ok else value
    elif check == "policy":
        ok = value in EVICTION_POLICIES
    elif check == "discovery":
        ok = isinstance(value, str) and _is_discovery(value)
    if not ok:
        table = spec.metadata.get("table")
        shown = f"{table}.{spec.name.removeprefix(table + '_')}" if table else spec.name
        raise ConfigError(f"{source}: '{shown}' must be {_describe(spec)}, got {value!r}")
    return value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML tables become dotted names: ``[bloom] fp_rate`` -> ``bloom.fp_rate``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def load_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file into setting-name -> raw value."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    return _flatten(data)


def load(config_path: Path | None, flags: Mapping[str, Any],
         environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the config file (``--config``, else ``$OLIVIA_CONFIG``;
    never a file found in the working directory: a ``config.toml`` there may
    belong to another tool), then the flags that were given."""
    config = Config()
    environ = os.environ if environ is None else environ
    if config_path is None:
        named = environ.get(CONFIG_ENV, "")
        config_path = Path(named) if named else None
    if config_path is not None:
        config = config.with_overrides(load_file(config_path), f"config file '{config_path}'")
    config = config.with_overrides(flags, "command line")
    from_env = environ.get(PASSWORD_ENV, "")
    if from_env and not (config.auth_password or config.auth_password_file):
        config = config.with_overrides({"auth.password": from_env}, f"${PASSWORD_ENV}")
    return config


def default_toml() -> str:
    """The documented default config, as written to the repository's config.toml."""
    lines = ["# Olivia node configuration: every key with its default value.",
             "# Flags given on the command line override these.", ""]
    defaults = Config()
    # Top-level keys first: in TOML, every key after a [table] belongs to it.
    fields = sorted(dataclasses.fields(Config), key=lambda f: f.metadata.get("table", ""))
    table = ""
    for spec in fields:
        if spec.metadata.get("table", "") != table:
            table = spec.metadata["table"]
            lines.append(f"[{table}]")
        key = spec.name.removeprefix(f"{table}_") if table else spec.name
        lines.append(f"# {spec.metadata['help']}")
        lines.append(f"{key} = {_toml_value(getattr(defaults, spec.name))}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
