"""Throughput benchmark: Olivia and Redis side by side, with the same client and workload.

Run from the repository root::

    python -m bench.compare [--quick] [--out docs/bench] [--duration 3] [-j N]

It starts one redis-server and one Olivia node (this working tree) on free
loopback ports and runs ``olivia-bench`` (``python -m olivia.tools.bench
--csv``) against each with identical flags: 50 connections, keyspace 100000,
16-byte values, SET and GET at pipeline depths 1, 2, 4, 8, 16 and 32, Olivia
and Redis runs interleaved so that a change in the machine's load hits both.
The keyspace is populated once per server before the first run.  Then it
starts a 2-node Olivia cluster (node B joined to node A) with replication off
(a config file holding ``[cluster] replicas = 0``: with the default of one
replica, every key written at A would also be stored at B), writes every key
at A only, and runs GET at B (every GET a remote lookup at A) at -P 1 and -P
16; then writes the keys at B and runs the same GETs again (local), for the
ratio remote/local.

It writes to ``--out``: ``throughput.csv`` (every run), ``results.md`` (the
table, the machine, the date and the exact commands; also printed on
stdout) and ``throughput_vs_pipeline.png``.  Progress goes to stderr.  Every
server it started is stopped when it ends, whatever happens.  The client runs
on the same machine as the server: see the client CPU and client-bound
columns before reading a ratio.  ``--quick`` runs everything about 10x
shorter, to try it out.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.machine import first_line, proc_field
from bench.servers import (
    NO_REPLICAS,
    ROOT,
    ServerError,
    ServerProcess,
    config_file,
    olivia_server,
    redis_binary,
    redis_server,
    run_or_exit,
    wait_for,
)
from olivia import OliviaError

PIPELINES = (1, 2, 4, 8, 16, 32)
TABLE_PIPELINES = (1, 16)
CONNECTIONS = 50
KEYSPACE = 100_000
VALUE_SIZE = 16
DURATION = 3.0  # seconds per run
QUICK_FACTOR = 10
BENCH_TIMEOUT_SLACK = 120.0  # seconds a run may take beyond its duration (setup, populate)
FORM_TIMEOUT = 20.0  # seconds for the 2-node cluster to see each other
SETTLE_QUIET = 1.0  # gossip counters unchanged this long: the cluster is idle
SETTLE_TIMEOUT = 30.0


class CompareError(Exception):
    """The comparison cannot go on; the message says why."""


@dataclass(frozen=True)
class Row:
    """One olivia-bench result row, labelled with where it ran."""

    scenario: str  # "single" (one server) or "remote"/"local" (GET at cluster node B)
    server: str  # "olivia" or "redis"
    test: str
    pipeline: int
    ops_per_sec: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    client_cpu_pct: float
    max_worker_cpu_pct: float
    client_bound: bool
    requests: int
    seconds: float

    @property
    def label(self) -> str:
        if self.scenario == "single":
            return self.server
        return f"olivia 2 nodes, {self.scenario} GET at B"


CSV_FIELDS = ("scenario", "server", "test", "pipeline", "ops_per_sec", "p50_ms", "p99_ms",
              "p999_ms", "client_cpu_pct", "max_worker_cpu_pct", "client_bound", "requests",
              "seconds")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """Runs olivia-bench as a subprocess and keeps the commands it ran, for the report."""

    def __init__(self, duration: float, processes: int | None, repeat: int = 1) -> None:
        self.duration = duration
        self.processes = processes
        self.repeat = repeat
        self.commands: list[str] = []

    def measure(self, port_name: str, port: int, redis: bool, test: str,
                pipeline: int) -> dict[str, str]:
        """One measured row: the run with the median ops/s of ``repeat`` runs
        (a 2-core machine shared by client and servers is noisy)."""
        runs = [self.run(port_name, port, redis, test, pipeline)[0] for _ in range(self.repeat)]
        runs.sort(key=lambda fields: float(fields["ops_per_sec"]))
        return runs[len(runs) // 2]

    def argv(self, port: int, redis: bool, tests: str, pipeline: int, populate: bool,
             duration: float | None) -> list[str]:
        args = ["-p", str(port)]
        if tests != "populate":
            args += ["-c", str(CONNECTIONS)]
        args += ["-r", str(KEYSPACE), "-d", str(VALUE_SIZE)]
        if tests != "populate":
            args += ["-P", str(pipeline)]
        args += ["-t", tests, "--csv"]
        if duration is not None:
            args += ["--duration", f"{duration:g}"]
        if not populate and tests != "populate":
            args.append("--no-populate")
        if redis:
            args.append("--redis")
        if self.processes is not None and tests != "populate":
            args += ["-j", str(self.processes)]
        return args

    def run(self, port_name: str, port: int, redis: bool, tests: str, pipeline: int = 1,
            record: bool = True, duration: float | None = -1.0) -> list[dict[str, str]]:
        """Run olivia-bench; its CSV rows.  In the report's list of commands the
        port is shown as ``port_name``, the pipeline depth as ``$P`` and a test
        of the sweep as ``$TEST``."""
        seconds = self.duration if duration == -1.0 else duration
        args = self.argv(port, redis, tests, pipeline, False, seconds)
        if record:
            shown = ["olivia-bench", *args]
            shown[shown.index("-p") + 1] = port_name
            if "-P" in shown:
                shown[shown.index("-P") + 1] = "$P"
            if tests in ("set", "get") and port_name != "$NODE_B_PORT":
                shown[shown.index("-t") + 1] = "$TEST"
            command = " ".join(shown)
            if command not in self.commands:
                self.commands.append(command)
        timeout = (seconds or 0) * len(tests.split(",")) + BENCH_TIMEOUT_SLACK
        done = subprocess.run([sys.executable, "-m", "olivia.tools.bench", *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise CompareError(f"olivia-bench {' '.join(args)} exited with {done.returncode}: "
                               f"{done.stderr.strip()[-2000:]}")
        return list(csv.DictReader(io.StringIO(done.stdout)))


def to_row(scenario: str, server: str, fields: dict[str, str]) -> Row:
    def number(name: str) -> float:
        return float(fields[name]) if fields[name] else float("nan")

    return Row(scenario, server, fields["test"], int(fields["pipeline"]),
               number("ops_per_sec"), number("p50_ms"), number("p99_ms"), number("p999_ms"),
               number("client_cpu_pct"), number("max_worker_cpu_pct"),
               fields["client_bound"] == "yes", int(fields["requests"]), number("seconds"))


def sweep(bench: Bench, olivia: ServerProcess, redis: ServerProcess,
          pipelines: Sequence[int]) -> list[Row]:
    """SET and GET at every pipeline depth on both servers, interleaved."""
    servers = (("olivia", olivia, "$OLIVIA_PORT"), ("redis", redis, "$REDIS_PORT"))
    for name, server, port_name in servers:
        progress(f"{name}: populating {KEYSPACE} keys and warming up ...")
        bench.run(port_name, server.port, name == "redis", "populate", duration=None)
        bench.run(port_name, server.port, name == "redis", "get", 1, record=False,
                  duration=max(0.2, bench.duration / 3))
    rows: list[Row] = []
    total = len(pipelines) * 2 * len(servers)
    for pipeline in pipelines:
        for test in ("set", "get"):
            for name, server, port_name in servers:
                row = to_row("single", name,
                             bench.measure(port_name, server.port, name == "redis", test, pipeline))
                rows.append(row)
                bound = " (client-bound)" if row.client_bound else ""
                progress(f"[{len(rows)}/{total}] {name} {test.upper()} -P {pipeline}: "
                         f"{row.ops_per_sec:,.0f} ops/s, p50 {row.p50_ms:.3f} ms, "
                         f"client CPU {row.client_cpu_pct:.0f}%{bound}")
    return rows


def wait_peers(nodes: Sequence[ServerProcess], count: int) -> None:
    def formed() -> bool:
        for node in nodes:
            node.check_running()
        return all(node.info().get("peers") == str(count) for node in nodes)

    wait_for(formed, f"{len(nodes)} nodes to see each other (INFO peers = {count})",
             FORM_TIMEOUT)


def wait_quiet(nodes: Sequence[ServerProcess]) -> None:
    """Until the nodes' gossip counters stop moving: the filter updates a
    populate causes must not run during a measurement."""
    def gossip() -> int:
        return sum(int(node.info().get("gossip_bytes", "0")) for node in nodes)

    last, quiet_since = gossip(), time.monotonic()
    deadline = quiet_since + SETTLE_TIMEOUT
    while time.monotonic() - quiet_since < SETTLE_QUIET:
        time.sleep(0.1)
        now = gossip()
        if now != last:
            last, quiet_since = now, time.monotonic()
        if time.monotonic() > deadline:
            raise CompareError(f"gossip still busy after {SETTLE_TIMEOUT:.0f}s")


def remote_and_local(bench: Bench, pipelines: Sequence[int]) -> tuple[list[Row], dict[str, int]]:
    """GET at node B of keys held by node A (remote), then of keys B holds (local).

    Replication is off (``[cluster] replicas = 0``), so a key lives on its writer only."""
    rows: list[Row] = []
    with config_file(NO_REPLICAS, "replicas0.toml") as config, \
            olivia_server("--name", "a", "--config", str(config), name="node-a") as a, \
            olivia_server("--name", "b", "--peers", a.address, "--config", str(config),
                          name="node-b") as b:
        progress("cluster: waiting for nodes a and b to see each other ...")
        wait_peers((a, b), 1)
        progress(f"cluster: populating {KEYSPACE} keys at node a ...")
        bench.run("$NODE_A_PORT", a.port, False, "populate", duration=None)
        last = b"key_%012d" % (KEYSPACE - 1)
        with b.client() as at_b:
            wait_for(lambda: at_b.get(last) is not None, "node b to find node a's keys",
                     FORM_TIMEOUT)
        wait_quiet((a, b))
        before = {k: int(v) for k, v in b.info().items() if k.startswith("remote_")}
        for pipeline in pipelines:
            rows.append(to_row("remote", "olivia",
                               bench.measure("$NODE_B_PORT", b.port, False, "get", pipeline)))
            progress(f"cluster: remote GET at b -P {pipeline}: {rows[-1].ops_per_sec:,.0f} ops/s")
        after = {k: int(v) for k, v in b.info().items() if k.startswith("remote_")}
        if int(b.info()["keys"]) != 0:
            raise CompareError("node b holds keys before the local run: remote GETs were not "
                               "all remote")
        progress(f"cluster: populating {KEYSPACE} keys at node b ...")
        bench.run("$NODE_B_PORT", b.port, False, "populate", duration=None)
        wait_quiet((a, b))
        for pipeline in pipelines:
            rows.append(to_row("local", "olivia",
                               bench.measure("$NODE_B_PORT", b.port, False, "get", pipeline)))
            progress(f"cluster: local GET at b -P {pipeline}: {rows[-1].ops_per_sec:,.0f} ops/s")
    return rows, {k: after[k] - before[k] for k in before}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def cpu_model() -> str:
    return proc_field("/proc/cpuinfo", "model name", platform.processor() or "unknown")


def machine(olivia_info: dict[str, str]) -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {cores} cores usable",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "olivia": f"{olivia_info.get('version', '?')}, event loop "
                  f"{olivia_info.get('event_loop', '?')}",
        "redis": first_line([redis_binary(), "--version"]),
    }


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "-"


def table(rows: Sequence[Row], table_pipelines: Sequence[int]) -> str:
    redis = {(r.test, r.pipeline): r.ops_per_sec for r in rows
             if r.server == "redis" and r.scenario == "single"}
    lines = [
        "| test | pipeline | server | ops/s | p50 ms | p99 ms | ratio to Redis | client CPU "
        "| client-bound |",
        "|---|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    shown = [r for r in rows if r.scenario != "single" or r.pipeline in table_pipelines]
    order = {"single": 0, "local": 1, "remote": 2}
    shown.sort(key=lambda r: (order[r.scenario], r.test != "set", r.pipeline, r.server))
    for r in shown:
        to_redis = ratio(r.ops_per_sec, redis.get((r.test, r.pipeline)))
        lines.append(
            f"| {r.test.upper()} | {r.pipeline} | {r.label} | {r.ops_per_sec:,.0f} "
            f"| {r.p50_ms:.3f} | {r.p99_ms:.3f} | {to_redis} "
            f"| {r.client_cpu_pct:.0f}% (max {r.max_worker_cpu_pct:.0f}%) "
            f"| {'yes' if r.client_bound else 'no'} |")
    return "\n".join(lines)


def remote_summary(rows: Sequence[Row], counters: dict[str, int]) -> list[str]:
    local = {r.pipeline: r.ops_per_sec for r in rows if r.scenario == "local"}
    lines = []
    for r in rows:
        if r.scenario == "remote" and local.get(r.pipeline):
            lines.append(f"- remote/local GET at node B, -P {r.pipeline}: "
                         f"{r.ops_per_sec / local[r.pipeline]:.2f}")
    if counters:
        lines.append("- node B counters over the remote runs: "
                     + ", ".join(f"{k}={v}" for k, v in sorted(counters.items())))
    return lines


def report(rows: Sequence[Row], counters: dict[str, int], info: dict[str, str],
           bench: Bench, args: argparse.Namespace, wall: float) -> str:
    setup = (f"{CONNECTIONS} connections, keyspace {KEYSPACE}, {VALUE_SIZE}-byte values, "
             f"{bench.duration:g} s per run, median of {bench.repeat} runs per row"
             + (f", {bench.processes} client processes" if bench.processes else
                ", 2 client processes (olivia-bench default)"))
    lines = [
        f"## Throughput: Olivia vs Redis ({info['date']})",
        "",
        f"{setup}.  Client and servers share the machine; client CPU is in % of one "
        "core for all client processes (max: the busiest one); client-bound means a "
        "client process used more than 90% of a core, so the server may be faster than "
        "shown.",
        "",
        table(rows, TABLE_PIPELINES),
        "",
        *remote_summary(rows, counters),
        f"- whole run: {wall:.0f} s{' (--quick: too short to quote)' if args.quick else ''}",
        "",
        "Machine:",
        "",
        *(f"- {name}: {value}" for name, value in info.items()),
        "",
        "Commands (ports are free ports picked at run time; $P is 1, 2, 4, 8, 16 and 32 and "
        "$TEST set and get for one server, interleaved with Redis; $P is 1 and 16 at node B; "
        "a short GET run before the measurements warms each server up):",
        "",
        "    python -m bench.compare" + (" --quick" if args.quick else "")
        + (f" -j {args.processes}" if args.processes else "")
        + (f" --duration {args.duration:g}" if args.duration else "")
        + (f" --repeat {args.repeat}" if args.repeat != 3 and not args.quick else ""),
        f"    {redis_binary()} --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no",
        "    python -m olivia --host 127.0.0.1 --port 0",
        "    printf '[cluster]\\nreplicas = 0\\n' > replicas0.toml   # the 2 nodes: no replica",
        "    python -m olivia --host 127.0.0.1 --port 0 --name a --config replicas0.toml  # node A",
        "    python -m olivia --host 127.0.0.1 --port 0 --name b --config replicas0.toml "
        "--peers 127.0.0.1:$NODE_A_PORT",
        *(f"    {command}" for command in bench.commands),
    ]
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for r in rows:
            writer.writerow([r.scenario, r.server, r.test, r.pipeline, f"{r.ops_per_sec:.1f}",
                             f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.p999_ms:.3f}",
                             f"{r.client_cpu_pct:.1f}", f"{r.max_worker_cpu_pct:.1f}",
                             "yes" if r.client_bound else "no", r.requests, f"{r.seconds:.3f}"])


def chart(rows: Sequence[Row], info: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    styles = {"olivia": "-", "redis": "--"}
    markers = {"set": "o", "get": "s"}
    for server in ("olivia", "redis"):
        for test in ("set", "get"):
            points = sorted((r.pipeline, r.ops_per_sec) for r in rows
                            if r.scenario == "single" and r.server == server and r.test == test)
            if points:
                xs, ys = zip(*points, strict=True)
                axes.plot(xs, ys, styles[server], marker=markers[test],
                          label=f"{server.capitalize()} {test.upper()}")
    pipelines = sorted({r.pipeline for r in rows if r.scenario == "single"})
    axes.set_xscale("log", base=2)
    axes.set_xticks(pipelines, [str(p) for p in pipelines])
    axes.set_xlabel("pipeline depth (requests in flight per connection)")
    axes.set_ylabel("requests per second")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda value, _: f"{value / 1000:,.0f}k"))
    axes.grid(True, which="major", alpha=0.3)
    axes.legend()
    axes.set_title(f"Throughput vs pipeline depth, {CONNECTIONS} connections, olivia-bench\n"
                   f"{info['cpu']}, {info['date']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def run_all(bench: Bench, out: Path) -> tuple[list[Row], dict[str, int], dict[str, str]]:
    """Every measurement: the rows, node B's counters and the machine's description."""
    out.mkdir(parents=True, exist_ok=True)
    with redis_server() as redis, olivia_server() as olivia:
        info = machine(olivia.info())
        progress(f"redis-server pid {redis.pid} port {redis.port}, olivia pid {olivia.pid} "
                 f"port {olivia.port}; {bench.duration:g} s per run")
        rows = sweep(bench, olivia, redis, PIPELINES)
    cluster_rows, counters = remote_and_local(bench, TABLE_PIPELINES)
    return rows + cluster_rows, counters, info


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Olivia vs redis-server throughput with olivia-bench; writes a CSV, a "
                    "markdown table and a chart.")
    parser.add_argument("--quick", action="store_true",
                        help=f"runs {QUICK_FACTOR}x shorter, to try it out")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench",
                        help="directory for throughput.csv, results.md and the chart "
                             "(default docs/bench)")
    parser.add_argument("--duration", type=float, default=None,
                        help=f"seconds per run (default {DURATION:g}, with --quick "
                             f"{DURATION / QUICK_FACTOR:g})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measured row; the median is reported (default 3, "
                             "with --quick 1)")
    parser.add_argument("-j", "--processes", type=int, default=None,
                        help="olivia-bench client processes (default: olivia-bench's, 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        _parser().error("--duration must be > 0")
    if shutil.which(redis_binary()) is None:
        print("bench.compare: redis-server not found", file=sys.stderr)
        return 1
    duration = args.duration or (DURATION / QUICK_FACTOR if args.quick else DURATION)
    bench = Bench(duration, args.processes, 1 if args.quick else args.repeat)
    started = time.monotonic()
    rows, counters, info = run_or_exit(
        lambda: run_all(bench, args.out),
        (CompareError, ServerError, OliviaError, OSError, subprocess.TimeoutExpired),
        "bench.compare", "bench.compare: interrupted; servers stopped")
    text = report(rows, counters, info, bench, args, time.monotonic() - started)
    write_csv(rows, args.out / "throughput.csv")
    (args.out / "results.md").write_text(text)
    try:
        chart(rows, info, args.out / "throughput_vs_pipeline.png")
    except ImportError:
        progress("matplotlib is not installed (pip install -e .[bench]): no chart")
    print(text, end="")
    progress(f"wrote {args.out}/throughput.csv, results.md, throughput_vs_pipeline.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
