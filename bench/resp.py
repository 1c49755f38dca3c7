"""Olivia's RESP port against redis-server, both driven by redis-benchmark.

Run from the repository root (on the 2-core bench machine, under the CPU lock)::

    flock /tmp/cpu.lock python -m bench.resp          # about 2 minutes
    python -m bench.resp [--requests 200000] [--rounds 3]

One fresh Olivia node (the defaults, ``--resp-port``) and one fresh
redis-server (``--save '' --appendonly no``) on free loopback ports.  For
each round, each test (SET, GET) and each depth (-P 1, -P 16): ``redis-benchmark
-p PORT -t TEST -n N -c 50 -P DEPTH -r 100000 -q --csv`` against Olivia, then
against Redis, so a change in the machine's load hits both.  A row is the
round with the median requests/s.  The CPU of each process (redis-benchmark
from its rusage, the server from /proc/PID/stat) is in % of one core over
the run's wall time: with 2 cores and one redis-benchmark thread, a
redis-benchmark near 100% means the client is the bottleneck, a server near
100% that the server is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.servers import (
    ServerError,
    ServerProcess,
    cpu_seconds,
    olivia_server,
    redis_server,
    run_or_exit,
)

REQUESTS = 200_000
ROUNDS = 3
TESTS = ("set", "get")
DEPTHS = (1, 16)
CLIENTS = 50
KEYSPACE = 100_000


@dataclass
class Run:
    rps: float
    p50_ms: float
    client_cpu: float
    server_cpu: float


@dataclass
class Row:
    server: str
    test: str
    depth: int
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda run: run.rps)[len(self.runs) // 2]



def run_benchmark(binary: str, server: ServerProcess, port: int, test: str, depth: int,
                  requests: int) -> Run:
    before_server = cpu_seconds(server.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([binary, "-p", str(port), "-t", test, "-n", str(requests), "-c",
                           str(CLIENTS), "-P", str(depth), "-r", str(KEYSPACE), "-q", "--csv"],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = (cpu_seconds(server.pid) - before_server) / elapsed * 100
    if done.returncode != 0:
        raise RuntimeError(f"redis-benchmark -t {test} exited {done.returncode}: "
                           f"{done.stderr.strip()[-500:]}")
    line = [row for row in done.stdout.splitlines() if row.startswith('"')][-1]
    fields = [value.strip('"') for value in line.split(",")]
    client_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) \
        / elapsed * 100
    return Run(float(fields[1]), float(fields[5]), client_cpu, server_cpu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resp")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise RuntimeError("redis-benchmark not found (Debian: apt-get install redis-tools)")
    rows: dict[tuple[str, str, int], Row] = {}
    with olivia_server("--resp-port", "0", name="olivia") as olivia, redis_server(
            "--save", "", "--appendonly", "no") as redis:
        resp_port = _resp_port(olivia)
        targets = (("olivia", olivia, resp_port), ("redis", redis, redis.port))
        for number in range(1, args.rounds + 1):
            for test in TESTS:
                for depth in DEPTHS:
                    for name, server, port in targets:
                        run = run_benchmark(binary, server, port, test, depth, args.requests)
                        rows.setdefault((name, test, depth), Row(name, test, depth)).runs.append(
                            run)
                        print(f"[round {number}] {name} {test.upper()} -P {depth}: "
                              f"{run.rps:,.0f} rps, redis-benchmark CPU {run.client_cpu:.0f}%, "
                              f"server CPU {run.server_cpu:.0f}%", file=sys.stderr, flush=True)
    out = [f"# bench.resp, {dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
           f"Python {platform.python_version()}, {args.requests:,} requests a run, "
           f"median of {args.rounds}", "",
           "| test | -P | Olivia rps | Redis rps | ratio | Olivia p50 ms | Redis p50 ms | "
           "redis-benchmark CPU (Olivia / Redis) | server CPU (Olivia / Redis) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for test in TESTS:
        for depth in DEPTHS:
            mine, theirs = rows[("olivia", test, depth)].median, rows[("redis", test, depth)].median
            out.append(f"| {test.upper()} | {depth} | {mine.rps:,.0f} | {theirs.rps:,.0f} | "
                       f"{mine.rps / theirs.rps:.2f}x | {mine.p50_ms:.3f} | {theirs.p50_ms:.3f} | "
                       f"{mine.client_cpu:.0f}% / {theirs.client_cpu:.0f}% | "
                       f"{mine.server_cpu:.0f}% / {theirs.server_cpu:.0f}% |")
    spread = {key: statistics.pstdev([r.rps for r in row.runs]) / statistics.mean(
        [r.rps for r in row.runs]) for key, row in rows.items()}
    out += ["", "Spread of the rounds (stdev/mean): " + ", ".join(
        f"{name} {test.upper()} -P{depth} {value:.0%}" for (name, test, depth), value
        in spread.items())]
    print("\n".join(out))
    return 0


def _resp_port(server: ServerProcess) -> int:
    for line in server.log().splitlines():
        if "RESP listening on" in line:
            return int(line.rsplit(":", 1)[1])
    raise ServerError("the node did not say where RESP listens")


if __name__ == "__main__":
    sys.exit(run_or_exit(lambda: main(), (RuntimeError, OSError, ServerError),
                         "bench.resp failed", "bench.resp interrupted"))
