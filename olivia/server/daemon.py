"""The ``olivia`` command: flags, config, logging, event loop, signals.

Exit status: 0 after a clean shutdown, 2 for a configuration error, 1 for a
runtime error such as a port already in use.  Errors print one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from olivia import __version__
from olivia.config import Config, ConfigError, load
from olivia.protocols.frontend import is_loopback
from olivia.server.addresses import NoRoutableAddress
from olivia.server.lifecycle import NodeServer

log = logging.getLogger("olivia")

EXIT_RUNTIME = 1
EXIT_CONFIG = 2


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other configuration error (no usage dump).
        self.exit(EXIT_CONFIG, f"olivia: {message} (see olivia --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="olivia",
        description="Olivia: a distributed in-memory key/value daemon.",
        epilog="Settings come from built-in defaults, then the config file, then these flags.",
    )
    parser.add_argument("--version", action="version", version=f"olivia {__version__}")
    parser.add_argument("--config", metavar="PATH", type=Path,
                        help="TOML config file (default: $OLIVIA_CONFIG if set, else "
                             "built-in defaults)")
    parser.add_argument("--host", metavar="H", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", metavar="P", help="TCP port (default 5454; 0 picks a free one)")
    parser.add_argument("--resp-port", metavar="P",
                        help="also speak RESP (Redis clients) on port P (default: off; 0 "
                             "picks a free one)")
    parser.add_argument("--http-port", metavar="P",
                        help="also serve HTTP (key API, /metrics, /health) on port P "
                             "(default: off; 0 picks a free one)")
    parser.add_argument("--peers", metavar="H:P[,H:P...]", help="seed peers to join")
    parser.add_argument("--name", metavar="NAME", help="node name (default HOST:PORT)")
    parser.add_argument("--advertise", metavar="H:P",
                        help="address peers dial back (default: the listen address)")
    parser.add_argument("--requirepass", metavar="PASS",
                        help="clients must send AUTH PASS first (auth.password; a flag shows "
                             "in ps: prefer auth.password_file or $OLIVIA_REQUIREPASS)")
    parser.add_argument("--protected-mode", choices=("yes", "no"),
                        help="with no password, refuse clients not on loopback (default yes)")
    parser.add_argument("--log-level", metavar="LEVEL",
                        help="debug, info, warning or error (default info)")
    return parser


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags that were given, converted to the types the config expects
    (an unconvertible value is passed on as is, for Config to reject)."""
    flags: dict[str, Any] = {}
    for name in ("host", "name", "advertise", "log_level"):
        if getattr(args, name) is not None:
            flags[name] = getattr(args, name)
    if args.protected_mode is not None:
        flags["protected_mode"] = args.protected_mode == "yes"
    if args.requirepass is not None:
        flags["auth.password"] = args.requirepass
    if args.port is not None:
        flags["port"] = int(args.port) if args.port.strip().isdigit() else args.port
    if args.http_port is not None:
        flags["http.port"] = (int(args.http_port) if args.http_port.strip().isdigit()
                              else args.http_port)
    if args.resp_port is not None:
        flags["resp.port"] = (int(args.resp_port) if args.resp_port.strip().isdigit()
                              else args.resp_port)
    if args.peers is not None:
        flags["peers"] = [p.strip() for p in args.peers.split(",") if p.strip()]
    return flags


class _NodeNameFilter(logging.Filter):
    """Stamps every record with the node name, known only once bound."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.node_name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node_name
        return True


def _configure_logging(config: Config) -> _NodeNameFilter:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s.%(msecs)03d %(levelname)s %(node)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    name_filter = _NodeNameFilter(config.name or f"{config.host}:{config.port}")
    handler.addFilter(name_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    return name_filter


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# SIGHUP too: closing the terminal that runs a node must stop it like
# SIGTERM (leave the cluster, drain, exit 0), not kill it without a word.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Re-read what can change while running (NodeServer.reload): systemd's
#: ExecReload sends it.  Not SIGHUP, which stops the node (above).
RELOAD_SIGNAL = signal.SIGUSR1


def plural(count: int, noun: str) -> str:
    """``1 client connection``, ``2 client connections``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _Signals:
    """SIGTERM, SIGINT or SIGHUP: the first asks for a graceful stop, a second
    one (impatience, or a stuck drain) for an exit now."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reload: Callable[[], None]) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self._loop = loop
        self._reload = reload
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._received, signum)
        loop.add_signal_handler(RELOAD_SIGNAL, self._reloading)

    def _reloading(self) -> None:
        try:
            self._reload()
        except ConfigError as exc:
            log.error("%s received: reload failed, settings unchanged: %s",
                      RELOAD_SIGNAL.name, exc)
        else:
            log.info("%s received: password re-read, discovery resolving now",
                     RELOAD_SIGNAL.name)

    def _received(self, signum: int) -> None:
        if not self.stop.is_set():
            log.info("%s received: shutting down", signal.Signals(signum).name)
            self.stop.set()
        else:
            log.warning("%s received again: exiting now, without draining",
                        signal.Signals(signum).name)
            self.force.set()

    def close(self) -> None:
        for signum in (*STOP_SIGNALS, RELOAD_SIGNAL):
            self._loop.remove_signal_handler(signum)


def _warn_if_exposed(config: Config, host: str, has_password: bool) -> None:
    """Say so at start-up when clients off this machine can reach the port
    with no password (or are refused by protected mode)."""
    if has_password or is_loopback(f"{host}:0"):
        return
    if config.protected_mode:
        log.warning("listening on %s with no password: protected mode refuses every client "
                    "that is not on loopback; set auth.password (and cluster.secret for "
                    "peers), see the README's 'Running on a network'", host)
    else:
        log.warning("listening on %s with no password and protected_mode = false: anyone who "
                    "can reach this port can read and change every key", host)


async def serve(config: Config, name_filter: _NodeNameFilter) -> int:
    """Run a node until SIGTERM, SIGINT or SIGHUP; return the exit status."""
    try:
        node = NodeServer(config)
    except ConfigError as exc:
        print(f"olivia: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        host, port = await node.start()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (
            exc.strerror or str(exc))
        print(f"olivia: cannot listen on {config.host}:{config.port}: {reason}", file=sys.stderr)
        return EXIT_RUNTIME
    except NoRoutableAddress as exc:
        print(f"olivia: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    name_filter.node_name = node.name
    signals = _Signals(asyncio.get_running_loop(), node.reload)
    log.info("olivia %s listening on %s:%d as %s, advertising %s (event loop: %s, pid %d)",
             __version__, host, port, node.name, node.advertise, node.event_loop_name,
             os.getpid())
    if node.resp.port:
        log.info("RESP listening on %s:%d", host, node.resp.port)
    if node.http is not None:
        log.info("HTTP listening on %s:%d", host, node.http.port)
    _warn_if_exposed(config, host, node.guard.has_password)
    try:
        await signals.stop.wait()
        log.info("shutting down: %s to drain", plural(node.connections, "client connection"))
        shutdown = asyncio.ensure_future(node.shutdown())
        forced = asyncio.ensure_future(signals.force.wait())
        await asyncio.wait((shutdown, forced), return_when=asyncio.FIRST_COMPLETED)
        if not shutdown.done():
            shutdown.cancel()
            node.abort()
            await asyncio.wait((shutdown,), timeout=1.0)
            return EXIT_RUNTIME
        forced.cancel()
        shutdown.result()
    finally:
        signals.close()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(args.config, _flag_overrides(args))
    except ConfigError as exc:
        print(f"olivia: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    name_filter = _configure_logging(config)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve(config, name_filter))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 0
