"""What AUTH, TLS and max_memory cost, and what a client that never reads costs.

Run from the repository root (on the 2-core bench machine, under the CPU lock)::

    flock /tmp/cpu.lock python -m bench.security   # about 3.5 minutes
    python -m bench.security [--duration 3] [--rounds 3] [-j 2]

Every configuration is a fresh Olivia node of this working tree on a free
loopback port (``bench/servers.py``), its config file holding only what is
named below.  ``olivia-bench`` (``python -m olivia.tools.bench --csv``) runs
SET and GET of random keys at pipeline depths 1 and 16, 50 connections, 2
client processes, ``--duration`` seconds a run; the keyspace is populated once
per node before the first run (``-t populate``, with the same access flags),
then the runs of the configurations of a group are interleaved round by
round (for each round, each test and depth: every configuration in turn) so
that a change in the machine's load hits them all; a row is the run with the
median ops/s of ``--rounds`` rounds.

1. AUTH (group "access", keyspace 100,000, 16-byte values): ``plain``, a node
   with the built-in defaults, against ``auth``, a node whose config holds
   ``[auth] password = "..."``, driven by ``olivia-bench -a PASSWORD`` (AUTH
   once per connection, before the measured requests).
2. TLS (same group, same load): ``tls``, a node with ``[tls] cert`` and
   ``key`` issued by a throwaway CA made in a temporary directory
   (``tests/certs.py``), driven by ``olivia-bench --tls --cacert CA``
   (the client verifies the server; no client certificate).
3. max_memory (group "eviction", keyspace 300,000, 1000-byte values: the
   node accounts about 1157 bytes a key, so the data is about 10x the limit):
   ``lru 32mb``, a node with ``max_memory = "32mb"`` and ``eviction_policy =
   "allkeys-lru"``, against ``no limit``, the same load on a node without
   max_memory.  Why 1000-byte values: each olivia-bench worker cycles through
   a pool of 32,768 pre-encoded requests, so a run SETs about 65,000
   distinct keys over and over.  32mb holds about 29,000 keys of 1000 bytes,
   fewer than that cycle, so (LRU against a cycle longer than the cache)
   every SET evicts, all run long; with 100-byte values 32mb holds about
   130,000 keys, the cycle fits and SETs stop evicting after its first pass.
   Evictions are counted per run (INFO ``evicted_keys`` before and after)
   and reported per SET.  Most GETs at the limited node miss (the key was
   evicted), which is part of what is measured.  At the end:
   ``evicted_keys``, ``keys`` and ``used_memory_dataset`` / ``max_memory``.
4. A slow client (a node with the built-in defaults, so
   ``max_client_output_bytes`` is 64 MiB): the node holds one 100,000-byte
   value ``big``; a raw socket sends 20,000 ``GET big`` lines (non-blocking:
   as much as the kernel takes) and never reads; meanwhile an
   :class:`olivia.Client` sends 1000 PINGs one at a time.  The PING round
   trips (p50, p99, max) are compared with 1000 PINGs before the slow client
   connected, and the node's RSS (``/proc/PID/status`` VmRSS) before, while
   the slow client is stalled, its peak (VmHWM), and after it disconnected.

Results are a markdown table and the slow-client lines on stdout; progress
on stderr.  Client CPU is of all client processes in % of one core (200% =
both cores of the bench machine); client-bound means one client process
used more than 90% of a core, so the node may be faster than shown.  Every
process it starts (nodes, olivia-bench) is stopped when it ends, even on an
error or Ctrl-C: SIGTERM, then SIGKILL, by PID.  Linux only (/proc).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import proc_field
from bench.servers import (
    ROOT,
    ServerError,
    ServerProcess,
    config_file,
    olivia_server,
    run_or_exit,
)
from olivia import Client, OliviaError
from tests.certs import Authority

CONNECTIONS = 50
DEPTHS = (1, 16)
TESTS = ("set", "get")
DURATION = 3.0  # seconds per olivia-bench run
ROUNDS = 3
PROCESSES = 2
KEYSPACE = 100_000
VALUE_SIZE = 16
EVICT_KEYSPACE = 300_000
EVICT_VALUE_SIZE = 1000
MAX_MEMORY = "32mb"
PASSWORD = "bench-security-password"
BIG_BYTES = 100_000
SLOW_LINES = 20_000
PINGS = 1000
WARMUP_PINGS = 100
BENCH_TIMEOUT_SLACK = 120.0  # seconds an olivia-bench run may take beyond its duration
QUIET = 0.5  # seconds of an unchanged total_commands_processed: the node is idle
QUIET_TIMEOUT = 30.0
SETTLE = 1.0  # seconds before reading RSS after the slow client disconnected
SOCKET_TIMEOUT = 30.0
MIB = 1 << 20


class SecurityBenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Configurations and olivia-bench runs
# --------------------------------------------------------------------------


@dataclass
class Target:
    """One configuration: its node and the olivia-bench flags that reach it."""

    name: str
    baseline: str  # the configuration its ratio is taken against
    server: ServerProcess
    keyspace: int
    value_size: int
    access: list[str] = field(default_factory=list)  # -a / --tls --cacert
    shown_access: str = ""  # the same flags as the report shows them
    client: Callable[[], Client] | None = None  # for INFO (password, TLS)
    count_evictions: bool = False  # INFO evicted_keys before and after each run

    def info(self) -> dict[str, str]:
        if self.client is None:
            return self.server.info()
        try:
            with self.client() as client:
                return client.info()
        except OliviaError as exc:
            raise ServerError(f"{self.name}: INFO failed: {exc}") from exc


@dataclass(frozen=True)
class Run:
    """One olivia-bench result row."""

    ops_per_sec: float
    p50_ms: float
    p99_ms: float
    client_cpu_pct: float
    max_worker_cpu_pct: float
    client_bound: bool
    errors: int
    requests: int


@dataclass
class Row:
    config: str
    baseline: str
    test: str
    depth: int
    runs: list[Run] = field(default_factory=list)
    evicted: int = 0  # keys evicted during its runs (targets that count them)

    @property
    def median(self) -> Run:
        """The run with the median ops/s (its latencies and CPU go with it)."""
        ordered = sorted(self.runs, key=lambda run: run.ops_per_sec)
        return ordered[len(ordered) // 2]


class Bench:
    """Runs olivia-bench as a subprocess; keeps the commands it ran, for the report."""

    def __init__(self, duration: float, processes: int) -> None:
        self.duration = duration
        self.processes = processes
        self.commands: list[str] = []

    def _run(self, target: Target, args: list[str], shown: list[str],
             timeout: float) -> list[dict[str, str]]:
        argv = ["-p", str(target.server.port), *args, *target.access, "--csv"]
        port_name = "$PORT_" + "".join(c if c.isalnum() else "_" for c in target.name.upper())
        command = " ".join(["olivia-bench", "-p", port_name, *shown,
                            *([target.shown_access] if target.shown_access else []), "--csv"])
        if command not in self.commands:
            self.commands.append(command)
        done = subprocess.run([sys.executable, "-m", "olivia.tools.bench", *argv],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SecurityBenchError(
                f"olivia-bench against {target.name} ({' '.join(args)}) exited with "
                f"{done.returncode}: {done.stderr.strip()[-2000:]}")
        return list(csv.DictReader(io.StringIO(done.stdout)))

    def populate(self, target: Target) -> float:
        args = ["-r", str(target.keyspace), "-d", str(target.value_size), "-t", "populate"]
        rows = self._run(target, args, args, BENCH_TIMEOUT_SLACK * 2)
        return float(rows[0]["seconds"])

    def measure(self, target: Target, test: str, depth: int) -> Run:
        args = ["-c", str(CONNECTIONS), "-P", str(depth), "-j", str(self.processes),
                "-r", str(target.keyspace), "-d", str(target.value_size), "-t", test,
                "--duration", f"{self.duration:g}", "--no-populate"]
        shown = [*args]
        shown[shown.index("-P") + 1] = "$P"
        shown[shown.index("-t") + 1] = "$TEST"
        rows = self._run(target, args, shown, self.duration + BENCH_TIMEOUT_SLACK)
        if len(rows) != 1:
            raise SecurityBenchError(f"olivia-bench printed {len(rows)} rows, not 1")
        fields = rows[0]

        def number(name: str) -> float:
            return float(fields[name]) if fields[name] else float("nan")

        return Run(number("ops_per_sec"), number("p50_ms"), number("p99_ms"),
                   number("client_cpu_pct"), number("max_worker_cpu_pct"),
                   fields["client_bound"] == "yes", int(fields["errors"] or 0),
                   int(fields["requests"]))


def interleaved(bench: Bench, targets: Sequence[Target], rounds: int,
                group: str) -> list[Row]:
    """Every test and depth on every target, round by round."""
    rows = {(t.name, test, depth): Row(t.name, t.baseline, test, depth)
            for test in TESTS for depth in DEPTHS for t in targets}
    total = rounds * len(rows)
    done = 0
    for number in range(1, rounds + 1):
        for test in TESTS:
            for depth in DEPTHS:
                for target in targets:
                    target.server.check_running()
                    row = rows[(target.name, test, depth)]
                    before = int(target.info()["evicted_keys"]) if target.count_evictions else 0
                    run = bench.measure(target, test, depth)
                    row.runs.append(run)
                    if target.count_evictions:
                        row.evicted += int(target.info()["evicted_keys"]) - before
                    done += 1
                    bound = " (client-bound)" if run.client_bound else ""
                    progress(f"[{group} {done}/{total}, round {number}] {target.name} "
                             f"{test.upper()} -P {depth}: {run.ops_per_sec:,.0f} ops/s, "
                             f"p50 {run.p50_ms:.3f} ms, client CPU "
                             f"{run.client_cpu_pct:.0f}%{bound}")
    return list(rows.values())


@contextmanager
def access_targets(workdir: Path) -> Iterator[list[Target]]:
    """Nodes plain, auth and tls (a throwaway CA in ``workdir``)."""
    authority = Authority(workdir, "bench")
    issued = authority.issue("node")
    ca = str(authority.ca)
    auth_text = f'[auth]\npassword = "{PASSWORD}"\n'
    tls_text = f'[tls]\ncert = "{issued.cert}"\nkey = "{issued.key}"\n'
    with ExitStack() as stack:
        auth_config = stack.enter_context(config_file(auth_text, "auth.toml"))
        tls_config = stack.enter_context(config_file(tls_text, "tls.toml"))
        plain = stack.enter_context(olivia_server(name="plain"))
        auth = stack.enter_context(olivia_server("--config", str(auth_config), name="auth"))
        tls = stack.enter_context(olivia_server("--config", str(tls_config), name="tls"))
        yield [
            Target("plain", "plain", plain, KEYSPACE, VALUE_SIZE),
            Target("auth", "plain", auth, KEYSPACE, VALUE_SIZE, ["-a", PASSWORD],
                   "-a $PASSWORD",
                   lambda: Client(auth.host, auth.port, SOCKET_TIMEOUT, password=PASSWORD)),
            Target("tls", "plain", tls, KEYSPACE, VALUE_SIZE, ["--tls", "--cacert", ca],
                   "--tls --cacert bench-ca.pem",
                   lambda: Client(tls.host, tls.port, SOCKET_TIMEOUT, ssl=True,
                                  ssl_ca_certs=ca)),
        ]


@contextmanager
def eviction_targets() -> Iterator[list[Target]]:
    """Nodes without and with max_memory (allkeys-lru)."""
    limit_text = f'max_memory = "{MAX_MEMORY}"\neviction_policy = "allkeys-lru"\n'
    with config_file(limit_text, "lru.toml") as limit_config, \
            olivia_server(name="no-limit") as unlimited, \
            olivia_server("--config", str(limit_config), name="lru") as limited:
        yield [
            Target("no limit", "no limit", unlimited, EVICT_KEYSPACE, EVICT_VALUE_SIZE,
                   count_evictions=True),
            Target(f"lru {MAX_MEMORY}", "no limit", limited, EVICT_KEYSPACE, EVICT_VALUE_SIZE,
                   count_evictions=True),
        ]


def populate_all(bench: Bench, targets: Sequence[Target]) -> None:
    for target in targets:
        seconds = bench.populate(target)
        progress(f"{target.name}: populated {target.keyspace:,} keys of "
                 f"{target.value_size} bytes in {seconds:.1f}s")


def memory_lines(targets: Sequence[Target], after_populate: dict[str, dict[str, str]],
                 rows: Sequence[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.evicted or row.config != row.baseline:
            requests = sum(run.requests for run in row.runs)
            lines.append(f"- {row.config} {row.test.upper()} -P {row.depth}: {row.evicted:,} "
                         f"keys evicted during the {len(row.runs)} runs, "
                         f"{row.evicted / requests:.2f} per request ({requests:,} requests)")
    for target in targets:
        info = target.info()
        used = int(info["used_memory_dataset"])
        limit = int(info["max_memory"])
        share = f" = {used / limit:.3f} of max_memory ({limit:,})" if limit else ""
        keys = int(info["keys"])
        lines.append(
            f"- {target.name}: at the end keys {keys:,} of {target.keyspace:,} (a GET of a "
            f"random key finds it with a chance of about {keys / target.keyspace:.0%}), "
            f"evicted_keys {int(info['evicted_keys']):,} (after the populate "
            f"{int(after_populate[target.name]['evicted_keys']):,}), used_memory_dataset "
            f"{used:,}{share}, RSS {target.server.rss_bytes() / MIB:.1f} MiB")
    return lines


# --------------------------------------------------------------------------
# 4. A slow client
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Slow:
    quiet: list[float]  # PING round trips without the slow client, seconds
    loaded: list[float]  # with it
    rss_before: int
    rss_stalled: int
    rss_peak: int
    rss_after: int
    sent: int  # request bytes the kernel took of the slow client's lines
    wanted: int
    processed: int  # GETs the node ran for the slow client (commands processed, less ours)
    clients: int  # connected_clients while it was stalled (ours included)


def pings(client: Client, count: int, between: Callable[[], None] | None = None) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.ping()
        samples.append(time.perf_counter() - started)
        if between is not None:
            between()
    return samples


def commands_processed(client: Client) -> int:
    return int(client.info()["total_commands_processed"])


def slow_client(server: ServerProcess) -> Slow:
    with server.client(SOCKET_TIMEOUT) as client:
        client.set(b"big", b"b" * BIG_BYTES)
        if client.get(b"big") != b"b" * BIG_BYTES:
            raise SecurityBenchError("GET big did not return the value just set")
        pings(client, WARMUP_PINGS)
        quiet = pings(client, PINGS)
        rss_before = server.rss_bytes()
        before = commands_processed(client)
        polls = 0  # INFO calls after ``before``: counted in total_commands_processed
        request = b"GET big\n" * SLOW_LINES
        sent = 0
        slow = socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT)
        try:
            slow.setblocking(False)

            def push() -> None:
                nonlocal sent
                if sent < len(request):
                    with suppress(BlockingIOError):
                        sent += slow.send(request[sent:sent + (1 << 20)])

            push()
            loaded = pings(client, PINGS, push)
            # Until the node stops executing the slow client's GETs (it is paused by
            # max_client_output_bytes or has run them all).
            last, quiet_since = commands_processed(client), time.monotonic()
            polls += 1
            deadline = quiet_since + QUIET_TIMEOUT
            while time.monotonic() - quiet_since < QUIET:
                push()
                time.sleep(0.05)
                now = commands_processed(client)
                polls += 1
                if now - last > 1:  # more than our own INFO
                    quiet_since = time.monotonic()
                last = now
                if time.monotonic() > deadline:
                    raise SecurityBenchError(f"the node still runs the slow client's GETs "
                                             f"{QUIET_TIMEOUT:.0f}s after the PINGs")
            processed = last - before - PINGS - polls
            rss_stalled, rss_peak = server.rss_bytes(), server.peak_rss_bytes()
            clients = int(client.info()["connected_clients"])  # ours and the slow one
        finally:
            slow.close()
        time.sleep(SETTLE)
        client.ping()  # the node still answers
        rss_after = server.rss_bytes()
    server.check_running()
    return Slow(quiet, loaded, rss_before, rss_stalled, rss_peak, rss_after, sent,
                len(request), processed, clients)


def ms(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index] * 1000


def slow_lines(s: Slow) -> list[str]:
    def latency(samples: Sequence[float]) -> str:
        return (f"p50 {ms(samples, 0.50):.3f} ms, p99 {ms(samples, 0.99):.3f} ms, "
                f"max {max(samples) * 1000:.3f} ms, mean {statistics.fmean(samples) * 1000:.3f} ms")

    return [
        f"- PING round trip, {PINGS} one at a time, no slow client: {latency(s.quiet)}",
        f"- PING round trip, {PINGS} one at a time, while the slow client is connected: "
        f"{latency(s.loaded)}",
        f"- slow client: {s.sent:,} of {s.wanted:,} request bytes ({SLOW_LINES:,} "
        f"`GET big` lines) taken by the kernel; the node ran {s.processed:,} of its GETs "
        f"({s.processed * BIG_BYTES / MIB:,.1f} MiB of values) and then stopped reading it; "
        f"INFO connected_clients {s.clients} (this client and the slow one)",
        f"- node RSS: {s.rss_before / MIB:.1f} MiB before, {s.rss_stalled / MIB:.1f} MiB with "
        f"the slow client stalled (+{(s.rss_stalled - s.rss_before) / MIB:.1f} MiB), peak "
        f"{s.rss_peak / MIB:.1f} MiB, {s.rss_after / MIB:.1f} MiB {SETTLE:g} s after it "
        f"disconnected",
    ]


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def table(rows: Sequence[Row]) -> str:
    ops = {(r.config, r.test, r.depth): r.median.ops_per_sec for r in rows}
    lines = [
        "| configuration | test | depth | ops/s | p50 ms | p99 ms | ratio to baseline "
        "| client CPU | client-bound | ops/s of the runs (min-max) |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for r in rows:
        m = r.median
        base = ops.get((r.baseline, r.test, r.depth))
        ratio = f"{m.ops_per_sec / base:.2f}" if base else "-"
        if r.baseline != r.config:
            ratio += f" (vs {r.baseline})"
        spread = [run.ops_per_sec for run in r.runs]
        errors = sum(run.errors for run in r.runs)
        lines.append(
            f"| {r.config} | {r.test.upper()} | {r.depth} | {m.ops_per_sec:,.0f} "
            f"| {m.p50_ms:.3f} | {m.p99_ms:.3f} | {ratio} "
            f"| {m.client_cpu_pct:.0f}% (max {m.max_worker_cpu_pct:.0f}%) "
            f"| {'yes' if m.client_bound else 'no'} "
            f"| {min(spread):,.0f}-{max(spread):,.0f}"
            + (f", {errors} error replies" if errors else "") + " |")
    return "\n".join(lines)


def ordered(rows: Sequence[Row]) -> list[Row]:
    configs = list(dict.fromkeys(r.config for r in rows))
    return sorted(rows, key=lambda r: (r.test != "set", r.depth, configs.index(r.config)))


def machine(info: dict[str, str]) -> list[str]:
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- cpus: {len(os.sched_getaffinity(0))} usable "
        f"({proc_field('/proc/cpuinfo', 'model name')}); load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
        f"- os: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- olivia: {info.get('version', '?')}, event loop {info.get('event_loop', '?')}",
    ]


def run(args: argparse.Namespace) -> str:
    bench = Bench(args.duration, args.processes)
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="olivia-security-") as tmp, \
            access_targets(Path(tmp)) as targets:
        info = targets[0].server.info()
        progress("access: " + ", ".join(f"{t.name} pid {t.server.pid} port {t.server.port}"
                                        for t in targets))
        populate_all(bench, targets)
        access_rows = interleaved(bench, targets, args.rounds, "access")
    with eviction_targets() as targets:
        progress("eviction: " + ", ".join(f"{t.name} pid {t.server.pid} port {t.server.port}"
                                          for t in targets))
        populate_all(bench, targets)
        after_populate = {t.name: t.info() for t in targets}
        evict_rows = interleaved(bench, targets, args.rounds, "eviction")
        evict_lines = memory_lines(targets, after_populate, ordered(evict_rows))
    progress("slow client ...")
    with olivia_server(name="slow") as node:
        slow = slow_client(node)
    setup = (f"{CONNECTIONS} connections, {args.processes} client processes, "
             f"{args.duration:g} s a run, median of {args.rounds} interleaved rounds")
    out += [
        f"### AUTH and TLS (keyspace {KEYSPACE:,}, {VALUE_SIZE}-byte values; {setup})", "",
        table(ordered(access_rows)), "",
        f"### max_memory {MAX_MEMORY}, allkeys-lru (keyspace {EVICT_KEYSPACE:,}, "
        f"{EVICT_VALUE_SIZE}-byte values; {setup})", "",
        table(ordered(evict_rows)), "", *evict_lines, "",
        f"### A client that never reads ({BIG_BYTES:,}-byte value, {SLOW_LINES:,} GETs, "
        "max_client_output_bytes 64 MiB, the default)", "",
        *slow_lines(slow), "",
        "Machine:", "", *machine(info), "",
        "Commands ($P is 1 and 16, $TEST set and get; ports are free ports picked at run "
        "time):", "",
        "    flock /tmp/cpu.lock python -m bench.security"
        + (f" --duration {args.duration:g}" if args.duration != DURATION else "")
        + (f" --rounds {args.rounds}" if args.rounds != ROUNDS else "")
        + (f" -j {args.processes}" if args.processes != PROCESSES else ""),
        "    python -m olivia --host 127.0.0.1 --port 0 [--config F]   # one node per "
        "configuration",
        f"    # auth: [auth] password = \"$PASSWORD\"; tls: [tls] cert, key (tests/certs.py); "
        f"lru: max_memory = \"{MAX_MEMORY}\", eviction_policy = \"allkeys-lru\"",
        *(f"    {command}" for command in bench.commands),
    ]
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.security",
        description="SET/GET throughput with AUTH, with TLS and at max_memory (allkeys-lru), "
                    "against the same load without; PING latency next to a client that "
                    "never reads.")
    parser.add_argument("--duration", type=float, default=DURATION,
                        help=f"seconds per olivia-bench run (default {DURATION:g})")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"interleaved rounds, the median is shown (default {ROUNDS})")
    parser.add_argument("-j", "--processes", type=int, default=PROCESSES,
                        help=f"olivia-bench client processes (default {PROCESSES})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration <= 0 or args.rounds < 1 or args.processes < 1:
        _parser().error("--duration, --rounds and -j must be positive")
    started = time.monotonic()
    text = run_or_exit(lambda: run(args), (SecurityBenchError, ServerError, OliviaError,
                                           OSError, subprocess.TimeoutExpired),
                       "bench.security", "bench.security: interrupted; servers stopped")
    print(text)
    print(f"\nwhole run: {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
