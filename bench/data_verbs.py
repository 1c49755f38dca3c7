"""What the data verbs cost: INCR on one node (against redis-server) and on
a 4-node cluster, SCAN of a million keys, COUNT at 8 nodes.

Run from the repository root (on the 2-core bench machine, under the CPU lock)::

    flock /tmp/cpu.lock python -m bench.data_verbs   # about 3 minutes
    python -m bench.data_verbs [--duration 3] [--rounds 3] [--scan-keys 1000000]

1. INCR, one node: ``olivia-bench -t incr`` (``INCR counter:<k>`` of random
   keys of a 100,000-key space; 50 connections, 2 client processes,
   ``--duration`` seconds a run, -P 1 and -P 16) against a fresh Olivia node
   and, interleaved run by run, the same workload over RESP against a fresh
   redis-server (``--save '' --appendonly no``); the median of ``--rounds``.
   SET on the same Olivia node, in the same rounds, is the reference: INCR
   takes the general path (parse, registry, handler), SET the fast path.
2. INCR, 4 nodes: a cluster of 4 fresh nodes (the defaults: replicas = 1),
   olivia-bench against the first one. With random keys about 3 in 4 have
   their home on another node: the request is forwarded (``REQUEST EXEC``),
   carried out there and its copy stored on the second home before the
   reply. SET on the same node and keys (stored here and on the keys' two
   homes) is the reference. The share of keys forwarded is worked out with
   the nodes' own placement (rendezvous hashing over their names).
3. SCAN: a node holding ``--scan-keys`` keys (loaded with ``olivia-bench -t
   populate``), scanned to the end by :meth:`olivia.Client.scan_iter` with
   ``count=10000`` (and 1000); keys per second of wall time, and the client
   process's CPU over that time. Then the same on a 4-node cluster holding
   the same keys (each listed once, by its first home).
4. COUNT at 8 nodes: 8 fresh nodes, 100,000 keys written at the first; then
   500 ``COUNT`` requests one at a time from one client, round trip p50, p99
   and max (each asks the 7 others).

Every process it starts is stopped when it ends, even on an error or Ctrl-C
(SIGTERM, then SIGKILL, by PID). Results: a markdown table on stdout,
progress on stderr.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from bench.servers import (
    ROOT,
    ServerError,
    ServerProcess,
    olivia_server,
    redis_server,
    run_or_exit,
    wait_for,
)
from olivia import Client
from olivia.tools.bench.main import key_of

CONNECTIONS = 50
PROCESSES = 2
DEPTHS = (1, 16)
KEYSPACE = 100_000
DURATION = 3.0
ROUNDS = 3
SCAN_KEYS = 1_000_000
COUNT_KEYS = 100_000
COUNT_REQUESTS = 500
COUNT_NODES = 8
CLUSTER_NODES = 4
TIMEOUT_SLACK = 120.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Row:
    what: str
    test: str
    depth: int
    runs: list[dict[str, str]] = field(default_factory=list)

    @property
    def median(self) -> dict[str, str]:
        return sorted(self.runs, key=lambda run: float(run["ops_per_sec"]))[len(self.runs) // 2]


def bench(server: ServerProcess, *args: str, redis: bool = False) -> dict[str, str]:
    argv = [sys.executable, "-m", "olivia.tools.bench", "-p", str(server.port), *args, "--csv"]
    if redis:
        argv.append("--redis")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT_SLACK * 3)
    if done.returncode != 0:
        raise RuntimeError(f"olivia-bench {' '.join(args)} exited {done.returncode}: "
                           f"{done.stderr.strip()[-1500:]}")
    return next(iter(csv.DictReader(io.StringIO(done.stdout))))


def load(server: ServerProcess, keys: int, redis: bool = False) -> None:
    bench(server, "-r", str(keys), "-t", "populate", redis=redis)


def measure(server: ServerProcess, test: str, depth: int, duration: float,
            redis: bool = False) -> dict[str, str]:
    return bench(server, "-c", str(CONNECTIONS), "-P", str(depth), "-j", str(PROCESSES),
                 "-r", str(KEYSPACE), "-t", test, "--duration", f"{duration:g}",
                 "--no-populate", redis=redis)


@contextmanager
def cluster(size: int, stack_name: str) -> Iterator[list[ServerProcess]]:
    with ExitStack() as stack:
        nodes: list[ServerProcess] = []
        for index in range(size):
            seed = ["--peers", nodes[0].address] if nodes else []
            nodes.append(stack.enter_context(olivia_server(
                "--name", f"{stack_name}{index + 1}", *seed, name=f"{stack_name}{index + 1}")))
        wait_for(lambda: all(node.info()["peers"] == str(size - 1) for node in nodes),
                 f"{size} nodes to see each other", timeout=60.0)
        yield nodes


def interleaved(targets: Sequence[tuple[str, ServerProcess, str, bool]], rounds: int,
                duration: float) -> list[Row]:
    rows = {(what, test, depth): Row(what, test, depth)
            for what, _, test, _ in targets for depth in DEPTHS}
    for number in range(1, rounds + 1):
        for depth in DEPTHS:
            for what, server, test, redis in targets:
                run = measure(server, test, depth, duration, redis)
                rows[(what, test, depth)].runs.append(run)
                progress(f"[round {number}] {what} {test.upper()} -P {depth}: "
                         f"{float(run['ops_per_sec']):,.0f} ops/s, client CPU "
                         f"{run['client_cpu_pct']}%")
    return list(rows.values())


def forwarded_share(nodes: Sequence[ServerProcess]) -> float:
    """Of the bench's keys, the share whose home is not the first node."""
    from olivia.cluster.placement import Placement
    from olivia.core.slots import slot_of
    names = [node.info()["name"] for node in nodes]
    placement = Placement(names[0], 1)
    placement.update(names[1:])
    keys = [b"counter:" + key_of(i) for i in range(KEYSPACE)]
    return sum(placement.homes(slot_of(key))[0] != names[0] for key in keys) / len(keys)


def scan_rate(server: ServerProcess, count: int) -> tuple[int, float, float]:
    """(keys, keys/s, client CPU %) of one full scan_iter."""
    with Client(server.host, server.port, timeout=60.0) as client:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        seen = set(client.scan_iter(count=count))
        elapsed = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / elapsed * 100
    return len(seen), len(seen) / elapsed, cpu


def _settled(nodes: Sequence[ServerProcess], copies: int) -> bool:
    infos = [node.info() for node in nodes]
    return (sum(int(info["keys"]) for info in infos) == copies
            and all(info["under_replicated_keys"] == "0" for info in infos))


def count_latency(nodes: Sequence[ServerProcess]) -> tuple[float, float, float, int]:
    with Client(nodes[0].host, nodes[0].port, timeout=30.0) as client:
        times = []
        for _ in range(COUNT_REQUESTS):
            started = time.perf_counter()
            total = client.dbsize()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return (statistics.median(times), times[int(len(times) * 0.99) - 1], times[-1], total)


def table(rows: Sequence[Row], baselines: dict[str, tuple[str, str]]) -> list[str]:
    by = {(row.what, row.test, row.depth): row for row in rows}
    lines = ["| setup | test | -P | ops/s | p50 ms | p99 ms | client CPU | vs |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        median = row.median
        ops = float(median["ops_per_sec"])
        base_what, base_test = baselines.get(f"{row.what}/{row.test}", ("", ""))
        ratio = ""
        if base_what:
            base = float(by[(base_what, base_test, row.depth)].median["ops_per_sec"])
            ratio = f"{ops / base:.2f}x {base_what} {base_test.upper()}"
        lines.append(f"| {row.what} | {row.test.upper()} | {row.depth} | {ops:,.0f} | "
                     f"{float(median['p50_ms']):.3f} | {float(median['p99_ms']):.3f} | "
                     f"{median['client_cpu_pct']}% | {ratio} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data_verbs")
    parser.add_argument("--duration", type=float, default=DURATION)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--scan-keys", type=int, default=SCAN_KEYS)
    args = parser.parse_args(argv)
    out: list[str] = [f"# bench.data_verbs, {dt.date.today()}, {platform.machine()}, "
                      f"{os.cpu_count()} cores, Python {platform.python_version()}", ""]
    baselines: dict[str, tuple[str, str]] = {}
    with olivia_server(name="single") as single, redis_server(
            "--save", "", "--appendonly", "no") as redis:
        load(single, KEYSPACE)
        rows = interleaved([("1 node", single, "set", False), ("1 node", single, "incr", False),
                            ("redis", redis, "incr", True)], args.rounds, args.duration)
        baselines["1 node/incr"] = ("redis", "incr")
    with cluster(CLUSTER_NODES, "c") as nodes:
        share = forwarded_share(nodes)
        load(nodes[0], KEYSPACE)
        rows += interleaved([("4 nodes", nodes[0], "set", False),
                             ("4 nodes", nodes[0], "incr", False)], args.rounds, args.duration)
        baselines["4 nodes/incr"] = ("1 node", "incr")
    out += [*table(rows, baselines), "",
            f"4 nodes: {share:.0%} of the INCR keys have their home on another node than "
            "the one asked (forwarded)."]
    scans = []
    with olivia_server(name="scan") as node:
        load(node, args.scan_keys)
        for count in (10_000, 1000):
            keys, rate, cpu = scan_rate(node, count)
            scans.append(f"| 1 node | {count} | {keys:,} | {rate:,.0f} | {cpu:.0f}% |")
            progress(scans[-1])
    with cluster(CLUSTER_NODES, "s") as nodes:
        load(nodes[0], args.scan_keys)
        # Until every key has its two copies and no more (guests handed on).
        wait_for(lambda: _settled(nodes, 2 * args.scan_keys), "the copies", timeout=300.0)
        keys, rate, cpu = scan_rate(nodes[1], 10_000)
        scans.append(f"| 4 nodes | 10000 | {keys:,} | {rate:,.0f} | {cpu:.0f}% |")
        progress(scans[-1])
    out += ["", "| SCAN of | count | keys returned | keys/s | client CPU |",
            "|---|---|---|---|---|", *scans]
    with cluster(COUNT_NODES, "n") as nodes:
        load(nodes[0], COUNT_KEYS)
        p50, p99, worst, total = count_latency(nodes)
    out += ["", f"COUNT at {COUNT_NODES} nodes holding {COUNT_KEYS:,} keys (answer {total:,}): "
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {worst:.3f} ms over {COUNT_REQUESTS} "
            "requests one at a time"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(run_or_exit(lambda: main(), (RuntimeError, OSError, ServerError),
                         "bench.data_verbs failed", "bench.data_verbs interrupted"))
