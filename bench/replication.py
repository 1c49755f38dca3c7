"""Replication benchmarks: what a replica costs, and how fast copies are repaired.

Run from the repository root (each flag picks one measurement; none: all four)::

    python -m bench.replication --throughput   # a. SET, replicas 0 and 1, against Redis
    python -m bench.replication --repair       # b. repair after a SIGKILL, 100k and 1M keys
    python -m bench.replication --rejoin       # c. a paused node rejoins, 1% of keys changed
    python -m bench.replication --memory       # d. resident memory per key, replicas 0 and 1

Every cluster is 3 nodes on 127.0.0.1 (``python -m olivia --name a|b|c
--config F``, b and c seeded with a's address) whose config file holds only
``[cluster] replicas = R``; everything else is the built-in default
(sync_interval 5 s, suspect_timeout 2.5 s, heartbeats every 0.25 s).  Keys are
``key_00000000`` style with 16-byte values, loaded "spread": key i is written
at node i mod 3, by one ``olivia-cli --pipe`` per node running at once (SET
lines of 1000 keys).  "Settled" means: every node sees the 2 others, reports
``under_replicated_keys=0``, and holds exactly the keys placement gives it
(``INFO keys`` = the keys of the slots it is a home of, computed here with
``olivia.cluster.placement``; guest copies handed over and dropped).

a. ``--throughput``: a replicas=0 cluster, a replicas=1 cluster and one
   redis-server, all running at once; ``olivia-bench`` (50 connections,
   keyspace 100,000, 16-byte values, ``--duration``, ``-j``) SETs against node
   a of each cluster (or, with ``--spread``, one olivia-bench per node at
   once, the 50 connections split), and against Redis with ``--redis``, at
   -P 1 and -P 16, interleaved; each row is the median of ``--repeat`` runs.
   The keyspace is populated first; before every run the cluster is settled
   again.  It reports the client's CPU (as ``bench.compare``) and the CPU the
   server processes used (all 3 nodes, from /proc/PID/stat).
b. ``--repair``: for each N of ``--repair-keys``: a settled replicas=1 cluster
   with N keys; SIGKILL node c; the time until a and b both report
   ``peers=1`` (detection), then until both report ``under_replicated_keys=0``
   and ``keys`` = N (repair).  Then ``REQUEST LOOKUP`` (answered from the
   node's own store only) of every key, or of ``--sample`` random keys, at a
   and at b checks values.
c. ``--rejoin``: a settled replicas=1 cluster with ``--rejoin-keys`` keys;
   SIGSTOP node c until a and b report ``peers_down=1``; overwrite 1% of the
   keys (every 100th, alternately at a and b); wait for a and b to settle
   (each holds every key); SIGCONT c.  Then the time until GET of every
   changed key returns the new value at every node, c's own store holds the
   new value of each changed key it is a home of, and every node reports
   ``under_replicated_keys=0``, and the bytes moved meanwhile (``sync_bytes``
   + ``gossip_bytes``, summed over the 3 nodes), against the size of a full
   copy of what c holds.
d. ``--memory``: for replicas=0 and replicas=1, a fresh cluster, the RSS of
   each node (``INFO used_memory``) before and after loading
   ``--memory-keys`` keys of ``bench/memory.py`` (same keys, same 16-byte
   values, 100 keys a SET line), settled, 1 s pause; bytes per key of the sum
   over the nodes.  Then a redis-server with the same keys (as bench/memory.py).

Every process it starts (nodes, redis-server, olivia-cli, olivia-bench) is
stopped when it ends, even on an error or Ctrl-C: SIGTERM, then SIGKILL, by
PID (a node it paused gets SIGCONT first).  Results are markdown tables on
stdout; progress and details (counters, time series, node log lines at
WARNING or above) on stderr.  Linux only (/proc).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script (python bench/replication.py): import this tree
    sys.path.insert(0, str(ROOT))

from bench.machine import first_line, proc_field  # noqa: E402
from bench.memory import DataSet, check_redis, load_redis, olivia_requests, redis_requests  # noqa: E402
from bench.servers import (  # noqa: E402
    ServerError,
    ServerProcess,
    cpu_seconds,
    redis_binary,
    run_or_exit,
    start_olivia,
    start_redis,
    wait_for,
)
from olivia import Client, OliviaError  # noqa: E402
from olivia.cluster.handshake import DIAL, new_nonce, proof  # noqa: E402
from olivia.cluster.placement import Placement  # noqa: E402
from olivia.core.slots import slot_of  # noqa: E402
from olivia.protocols.line.escaping import decode_field  # noqa: E402
from olivia.protocols.line.peer import lookup_payload, parse_answer  # noqa: E402
from olivia.protocols.line.replies import parse_reply  # noqa: E402
from olivia.protocols.line.requests import pairs_payload, request_line  # noqa: E402

NAMES = ("a", "b", "c")
VALUE_BYTES = 16
PER_LINE = 1000  # keys per SET line of a load
SECRET = "bench-replication"  # the clusters' cluster.secret, for peer_handshake
LOOKUP_BATCH = 2000  # keys per REQUEST LOOKUP line (what a node sends itself)
CONNECTIONS = 50
KEYSPACE = 100_000
TABLE_PIPELINES = (1, 16)
POLL = 0.02  # seconds between INFO polls while timing
RESULT_POLL = 0.05  # between polls that also read values (rejoin)
FORM_TIMEOUT = 30.0
SETTLE_TIMEOUT = 300.0  # seconds for a loaded cluster to settle (1M keys on 2 CPUs)
REPAIR_TIMEOUT = 300.0
LOAD_TIMEOUT = 600.0
QUIET = 1.0  # gossip_bytes unchanged this long: the cluster is idle
QUIET_TIMEOUT = 60.0
SOCKET_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
COUNTERS = ("keys", "replicated_keys", "repair_keys_sent", "repair_keys_received",
            "sync_bytes", "gossip_bytes", "gossip_messages", "handoff_keys")
_LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def key_of(i: int) -> bytes:
    return b"key_%08d" % i


def value_of(i: int, generation: int = 0) -> bytes:
    """16 bytes, distinct per key; generation 1 is the overwritten value."""
    return (b"v%015d" if generation == 0 else b"w%015d") % i


def home_counts(replicas: int, keys: Iterable[bytes]) -> dict[str, int]:
    """Keys per node once settled: the keys of the slots it is a home of."""
    placement = Placement(NAMES[0], replicas)
    placement.update(NAMES[1:])
    counts = dict.fromkeys(NAMES, 0)
    for slot, count in Counter(slot_of(key) for key in keys).items():
        for home in placement.homes(slot):
            counts[home] += count
    return counts


def homed_at(name: str, replicas: int, keys: Iterable[bytes]) -> list[bytes]:
    """The keys of ``keys`` whose slot has node ``name`` among its homes (all 3 alive)."""
    placement = Placement(NAMES[0], replicas)
    placement.update(NAMES[1:])
    return [key for key in keys if name in placement.homes(slot_of(key))]


def write_set_files(directory: Path, tag: str, lines: Sequence[bytes],
                    parts: int = len(NAMES)) -> list[Path]:
    """Request line i goes to file i mod ``parts``: one file per node."""
    paths = [directory / f"{tag}-{NAMES[part]}.txt" for part in range(parts)]
    for part, path in enumerate(paths):
        path.write_bytes(b"".join(lines[part::parts]))
    return paths


def spread_lines(count: int) -> list[bytes]:
    """SET lines of PER_LINE keys for keys 0..count-1; line j to node j mod 3
    (so each node writes a third of the keys, spread over the keyspace)."""
    return [request_line(b"SET", pairs_payload([(key_of(i), value_of(i))
                                               for i in range(start, min(start + PER_LINE,
                                                                         count))]))
            for start in range(0, count, PER_LINE)]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT, by PID; reaps it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)



@dataclass
class Cluster:
    """Three nodes of one config; ``killed`` and ``paused`` name the nodes a
    measurement SIGKILLed or SIGSTOPped."""

    replicas: int
    nodes: list[ServerProcess]
    killed: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def node(self, name: str) -> ServerProcess:
        return self.nodes[NAMES.index(name)]


@contextmanager
def cluster(replicas: int, workdir: Path, problems: list[str]) -> Iterator[Cluster]:
    """Start nodes a, b, c with ``[cluster] replicas``, wait until each sees
    the other two; stop them all when the block ends (WARNING+ log lines and
    unexpected exit statuses go to ``problems``)."""
    config = workdir / f"replicas-{replicas}.toml"
    config.write_text(f'[cluster]\nreplicas = {replicas}\nsecret = "{SECRET}"\n')
    group = Cluster(replicas, [])
    try:
        for name in NAMES:
            seed = ["--peers", group.nodes[0].address] if group.nodes else []
            group.nodes.append(start_olivia("--name", name, "--config", str(config), *seed,
                                            name=name, wait=False))
            if len(group.nodes) == 1:
                group.nodes[0].wait_listening()
        for node in group.nodes[1:]:
            node.wait_listening()
        wait_formed(group.nodes)
        yield group
    finally:
        for node in group.nodes:
            if node.name in group.paused and node.running():
                with suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM
        # What the nodes log once the others are being stopped ("lost link") is not news.
        measured = [len(node.log()) for node in group.nodes]
        statuses = [node.stop() for node in group.nodes]
        for node, status, end in zip(group.nodes, statuses, measured, strict=True):
            lines = [line for line in node.log()[:end].splitlines() if _LEVEL.search(line)]
            problems += [f"replicas={replicas} {node.name}: {line}" for line in lines]
            if status != 0 and node.name not in group.killed:
                problems.append(f"replicas={replicas} {node.name}: exit status {status}")


def wait_formed(nodes: Sequence[ServerProcess], timeout: float = FORM_TIMEOUT) -> None:
    def formed() -> bool:
        for node in nodes:
            node.check_running()
        return all(node.info()["peers"] == str(len(nodes) - 1) for node in nodes)

    wait_for(formed, f"{len(nodes)} nodes to see each other", timeout)


def wait_settled(nodes: Sequence[ServerProcess], expected: dict[str, int] | int,
                 timeout: float = SETTLE_TIMEOUT) -> float:
    """Until every node sees the others, reports under_replicated_keys=0 and
    holds exactly ``expected[name]`` keys (an int: that many keys in all over
    the nodes); the seconds it took."""
    started = time.monotonic()
    last: list[str] = []

    def settled() -> bool:
        nonlocal last
        infos = []
        for node in nodes:
            node.check_running()
            infos.append(node.info())
        last = [f"{n.name}: keys={i['keys']} peers={i['peers']} "
                f"under_replicated_keys={i['under_replicated_keys']}"
                for n, i in zip(nodes, infos, strict=True)]
        last.append(f"wanted keys {expected}")
        if isinstance(expected, int):
            counts = sum(int(i["keys"]) for i in infos) == expected
        else:
            counts = all(int(i["keys"]) == expected[n.name]
                         for n, i in zip(nodes, infos, strict=True))
        return counts and all(i["peers"] == str(len(nodes) - 1)
                              and i["under_replicated_keys"] == "0" for i in infos)

    try:
        wait_for(settled, "the cluster to settle", timeout)
    except ServerError as exc:
        raise BenchError(f"{exc}; last INFO: {'; '.join(last)}") from None
    return time.monotonic() - started


def wait_quiet(nodes: Sequence[ServerProcess]) -> None:
    """Until the summed gossip_bytes have not moved for QUIET seconds."""
    def total() -> int:
        return sum(int(node.info()["gossip_bytes"]) for node in nodes)

    last, since = total(), time.monotonic()
    deadline = since + QUIET_TIMEOUT
    while time.monotonic() - since < QUIET:
        time.sleep(0.1)
        now = total()
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"gossip still busy after {QUIET_TIMEOUT:.0f}s")


def counters(node: ServerProcess) -> dict[str, int]:
    info = node.info()
    return {name: int(info.get(name, "-1")) for name in COUNTERS}


def summed(before: Sequence[dict[str, int]], after: Sequence[dict[str, int]]) -> dict[str, int]:
    return {name: sum(a[name] - b[name] for a, b in zip(after, before, strict=True))
            for name in COUNTERS}


def pipe_load(targets: Sequence[tuple[ServerProcess, Path]]) -> float:
    """One ``olivia-cli --pipe`` per (node, file), all at once; the seconds
    from starting the first to the exit of the last."""
    procs: list[subprocess.Popen[bytes]] = []
    sources: list[IO[bytes]] = []
    try:
        started = time.perf_counter()
        for node, path in targets:
            sources.append(path.open("rb"))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "olivia.tools.cli", "-h", node.host, "-p",
                 str(node.port), "--pipe"], stdin=sources[-1], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=ROOT))
        deadline = time.monotonic() + LOAD_TIMEOUT
        outputs = [proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                   for proc in procs]
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            stop_process(proc)
        for source in sources:
            source.close()
    for (node, _), proc, (out, err) in zip(targets, procs, outputs, strict=True):
        if proc.returncode != 0:
            raise BenchError(f"olivia-cli --pipe into {node.name} exited with "
                             f"{proc.returncode}: {(out + err).decode()[-2000:]}")
    return elapsed


# --------------------------------------------------------------------------
# What a node holds itself
# --------------------------------------------------------------------------


def peer_handshake(client: Client, name: str) -> None:
    """Complete the peer handshake with the cluster's SECRET on ``client``'s
    connection: the peer dialect (REQUEST LOOKUP) is refused to others."""
    nonce = new_nonce()
    reply = parse_reply(client.raw(f"REQUEST CONNECT {name} 127.0.0.1:1 1 ".encode() + nonce))
    if reply.word != b"FULFILLED":
        raise BenchError(f"REQUEST CONNECT answered {reply}")
    answer = parse_answer(reply.payload)
    mine = proof(SECRET.encode(), DIAL, nonce, answer.nonce, name, answer.identity.name)
    reply = parse_reply(client.raw(b"REQUEST PROVE " + mine))
    if reply.word != b"FULFILLED":
        raise BenchError(f"REQUEST PROVE answered {reply}")


def lookup(node: ServerProcess, keys: Sequence[bytes]) -> dict[bytes, bytes]:
    """key -> value of those of ``keys`` that ``node`` holds in its own store
    (``REQUEST LOOKUP`` asks no peer)."""
    found: dict[bytes, bytes] = {}
    with node.client(SOCKET_TIMEOUT) as client:
        peer_handshake(client, "bench-probe")
        pipe = client.pipeline()
        for start in range(0, len(keys), LOOKUP_BATCH):
            pipe.raw(request_line(b"REQUEST", lookup_payload(keys[start:start + LOOKUP_BATCH])))
        for line in pipe.execute():
            if not isinstance(line, bytes):
                raise BenchError(f"{node.name}: REQUEST LOOKUP failed: {line}")
            reply = parse_reply(line)
            if reply.word != b"FULFILLED":
                raise BenchError(f"{node.name}: REQUEST LOOKUP answered {line[:200]!r}")
            for item in reply.payload.split(b",") if reply.payload else ():
                key, value, _stamp = item.split(b":")
                found[decode_field(key)] = decode_field(value)
        client.raw(b"REQUEST DISCONNECT bench-probe")
    return found


def check_held(node: ServerProcess, indices: Sequence[int], generation: int = 0) -> int:
    """How many of the keys ``indices`` ``node`` does NOT hold with the right value."""
    keys = [key_of(i) for i in indices]
    found = lookup(node, keys)
    return sum(1 for i, key in zip(indices, keys, strict=True)
               if found.get(key) != value_of(i, generation))


# --------------------------------------------------------------------------
# a. Throughput
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One olivia-bench measurement (summed over processes with --spread)."""

    target: str
    pipeline: int
    ops_per_sec: float
    p50_ms: float
    p99_ms: float
    client_cpu_pct: float
    max_worker_cpu_pct: float
    client_bound: bool
    server_cpu_pct: float  # all server processes of the target, % of one core
    seconds: float
    counters: dict[str, int]  # summed INFO deltas over the target's nodes


def bench_argv(port: int, redis: bool, test: str, pipeline: int, connections: int,
               duration: float, processes: int | None) -> list[str]:
    args = ["-p", str(port), "-r", str(KEYSPACE), "-d", str(VALUE_BYTES), "-t", test, "--csv"]
    if test != "populate":
        args += ["-c", str(connections), "-P", str(pipeline), "--duration", f"{duration:g}",
                 "--no-populate"]
        if processes is not None:
            args += ["-j", str(processes)]
    if redis:
        args.append("--redis")
    return args


def run_benches(argvs: Sequence[list[str]], timeout: float) -> list[dict[str, str]]:
    """Run olivia-bench processes at once; one CSV row each."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv in argvs:
            procs.append(subprocess.Popen([sys.executable, "-m", "olivia.tools.bench", *argv],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, cwd=ROOT))
        deadline = time.monotonic() + timeout
        outputs = [proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                   for proc in procs]
    finally:
        for proc in procs:
            stop_process(proc)
    rows = []
    for argv, proc, (out, err) in zip(argvs, procs, outputs, strict=True):
        if proc.returncode != 0:
            raise BenchError(f"olivia-bench {' '.join(argv)} exited with {proc.returncode}: "
                             f"{err.decode()[-2000:]}")
        rows += list(csv.DictReader(io.StringIO(out.decode())))
    return rows


class Throughput:
    """SET runs against the targets, settled before each run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.duration: float = args.duration
        self.repeat: int = args.repeat
        self.processes: int | None = args.processes
        self.spread: bool = args.spread
        self.commands: list[str] = []

    def _record(self, argv: Sequence[str], port_name: str) -> None:
        shown = ["olivia-bench", *argv]
        shown[shown.index("-p") + 1] = port_name
        if "-P" in shown:
            shown[shown.index("-P") + 1] = "$P"
        command = " ".join(shown)
        if command not in self.commands:
            self.commands.append(command)

    @staticmethod
    def port_name(target: str, node: ServerProcess, redis: bool) -> str:
        """How the report shows a port: ``$REPLICAS1_NODE_A_PORT``, ``$REDIS_PORT``."""
        if redis:
            return "$REDIS_PORT"
        return f"${target.replace(' ', '').upper()}_NODE_{node.name.upper()}_PORT"

    def populate(self, target: str, node: ServerProcess, redis: bool) -> None:
        argv = bench_argv(node.port, redis, "populate", 1, CONNECTIONS, self.duration, None)
        self._record(argv, self.port_name(target, node, redis))
        run_benches([argv], LOAD_TIMEOUT)

    def once(self, target: str, nodes: Sequence[ServerProcess], redis: bool,
             pipeline: int) -> Run:
        entry = nodes if self.spread and not redis else nodes[:1]
        shares = [CONNECTIONS // len(entry) + (1 if i < CONNECTIONS % len(entry) else 0)
                  for i in range(len(entry))]
        processes = self.processes
        if len(entry) > 1 and processes is None:
            processes = 1  # one client process per node: 3 in all on 2 CPUs
        argvs = [bench_argv(node.port, redis, "set", pipeline, share, self.duration, processes)
                 for node, share in zip(entry, shares, strict=True)]
        for node, argv in zip(entry, argvs, strict=True):
            self._record(argv, self.port_name(target, node, redis))
        before = [] if redis else [counters(node) for node in nodes]
        cpu_before = [cpu_seconds(node.pid) for node in nodes]
        started = time.monotonic()
        rows = run_benches(argvs, self.duration + 120.0)
        wall = time.monotonic() - started
        cpu = sum(cpu_seconds(node.pid) for node in nodes) - sum(cpu_before)
        after = [] if redis else [counters(node) for node in nodes]
        seconds = max(float(row["seconds"]) for row in rows)
        return Run(
            target, pipeline,
            sum(float(row["ops_per_sec"]) for row in rows),
            max(float(row["p50_ms"]) for row in rows),
            max(float(row["p99_ms"]) for row in rows),
            sum(float(row["client_cpu_pct"]) for row in rows),
            max(float(row["max_worker_cpu_pct"]) for row in rows),
            any(row["client_bound"] == "yes" for row in rows),
            100.0 * cpu / wall, seconds,
            summed(before, after) if not redis else {})


def measure_throughput(args: argparse.Namespace, workdir: Path,
                       problems: list[str]) -> tuple[list[Run], Throughput]:
    bench = Throughput(args)
    runs: list[Run] = []
    redis = start_redis(workdir=workdir)
    try:
        with cluster(0, workdir, problems) as r0, cluster(1, workdir, problems) as r1:
            keys = [b"key_%012d" % i for i in range(KEYSPACE)]  # olivia-bench's keys
            # replicas 0: a key lives on its last writer (each key on one node);
            # replicas 1: on its slot's 2 homes, the writer's guest copy dropped.
            expected: dict[str, dict[str, int] | int] = {"replicas 0": KEYSPACE,
                                                          "replicas 1": home_counts(1, keys)}
            targets: list[tuple[str, list[ServerProcess], bool]] = [
                ("replicas 0", r0.nodes, False), ("replicas 1", r1.nodes, False),
                ("redis", [redis], True)]
            for target, nodes, is_redis in targets:
                progress(f"throughput: populating {KEYSPACE} keys at {target} ...")
                bench.populate(target, nodes[0], is_redis)
            for target, nodes, is_redis in targets:
                if not is_redis:
                    waited = wait_settled(nodes, expected[target])
                    progress(f"throughput: {target} settled in {waited:.1f}s")
            for pipeline in TABLE_PIPELINES:
                results: dict[str, list[Run]] = {target: [] for target, _, _ in targets}
                for attempt in range(bench.repeat):
                    for target, nodes, is_redis in targets:
                        if not is_redis:
                            waited = wait_settled(nodes, expected[target])
                            wait_quiet(nodes)
                        run = bench.once(target, nodes, is_redis, pipeline)
                        results[target].append(run)
                        progress(f"throughput -P {pipeline} run {attempt + 1}: {target}: "
                                 f"{run.ops_per_sec:,.0f} SET/s, p99 {run.p99_ms:.3f} ms, "
                                 f"client CPU {run.client_cpu_pct:.0f}%, servers "
                                 f"{run.server_cpu_pct:.0f}%"
                                 + (f", settled {waited:.1f}s before" if not is_redis else "")
                                 + (f"; {run.counters}" if run.counters else ""))
                for target, _, _ in targets:
                    ordered = sorted(results[target], key=lambda r: r.ops_per_sec)
                    runs.append(ordered[len(ordered) // 2])
    finally:
        redis.stop()
    return runs, bench


def throughput_table(runs: Sequence[Run], spread: bool) -> str:
    redis = {r.pipeline: r.ops_per_sec for r in runs if r.target == "redis"}
    plain = {r.pipeline: r.ops_per_sec for r in runs if r.target == "replicas 0"}
    where = "at nodes a, b, c at once" if spread else "at node a"
    lines = [
        "| test | pipeline | server | ops/s | p50 ms | p99 ms | ratio to Redis "
        "| vs replicas 0 | client CPU | servers' CPU | client-bound |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in sorted(runs, key=lambda r: (r.pipeline, ["replicas 0", "replicas 1",
                                                       "redis"].index(r.target))):
        label = "redis" if r.target == "redis" else f"olivia 3 nodes, {r.target}, SET {where}"
        versus = (f"{r.ops_per_sec / plain[r.pipeline]:.2f}" if r.target != "redis"
                  and plain.get(r.pipeline) else "-")
        lines.append(
            f"| SET | {r.pipeline} | {label} | {r.ops_per_sec:,.0f} | {r.p50_ms:.3f} "
            f"| {r.p99_ms:.3f} | {r.ops_per_sec / redis[r.pipeline]:.2f} | {versus} "
            f"| {r.client_cpu_pct:.0f}% (max {r.max_worker_cpu_pct:.0f}%) "
            f"| {r.server_cpu_pct:.0f}% | {'yes' if r.client_bound else 'no'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# b. Repair after a SIGKILL
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    keys: int
    load_s: float
    settle_s: float
    down_s: float  # SIGKILL -> both survivors at peers=1
    peers_down_s: float  # SIGKILL -> both survivors at peers_down=1
    keys_s: float  # SIGKILL -> both survivors hold every key
    done_s: float  # SIGKILL -> peers=1, keys=N, under_replicated_keys=0 on both
    max_under: int  # highest summed under_replicated_keys seen
    checked: int  # keys looked up on each survivor
    wrong: dict[str, int]  # survivor -> keys missing or with a wrong value
    deltas: dict[str, int]  # summed counter deltas over the survivors
    series: list[str]  # changes of (peers, keys, under_replicated) over time


def load_spread(group: Cluster, workdir: Path, count: int, tag: str) -> tuple[float, float]:
    """Load keys 0..count-1 spread over the nodes and wait until settled; the
    load's seconds and the settling's."""
    files = write_set_files(workdir, tag, spread_lines(count))
    load_s = pipe_load(list(zip(group.nodes, files, strict=True)))
    for path in files:
        path.unlink()
    expected = home_counts(group.replicas, (key_of(i) for i in range(count)))
    settle_s = wait_settled(group.nodes, expected)
    wait_quiet(group.nodes)
    return load_s, settle_s


def measure_repair(count: int, sample: int, workdir: Path, problems: list[str]) -> Repair:
    with cluster(1, workdir, problems) as group:
        progress(f"repair: loading {count:,} keys spread over a, b, c ...")
        load_s, settle_s = load_spread(group, workdir, count, f"repair-{count}")
        progress(f"repair: loaded in {load_s:.2f}s, settled {settle_s:.2f}s later")
        survivors = group.nodes[:2]
        victim = group.node("c")
        before = [counters(node) for node in survivors]
        series: list[str] = []
        killed_at = time.monotonic()
        victim.proc.kill()  # SIGKILL, by PID
        group.killed.add(victim.name)
        victim.proc.wait(STOP_TIMEOUT)
        down = peers_down = keys_done = None
        max_under = 0
        last_state: tuple[str, ...] = ()
        while True:
            infos = [node.info() for node in survivors]
            now = time.monotonic() - killed_at
            state = tuple(f"{n.name}: peers={i['peers']} peers_down={i['peers_down']} "
                          f"keys={i['keys']} under_replicated={i['under_replicated_keys']}"
                          for n, i in zip(survivors, infos, strict=True))
            if state != last_state:
                series.append(f"{now:7.3f}s " + "; ".join(state))
                last_state = state
            under = [int(i["under_replicated_keys"]) for i in infos]
            max_under = max(max_under, sum(under))
            if down is None and all(i["peers"] == "1" for i in infos):
                down = now
            if peers_down is None and all(i["peers_down"] == "1" for i in infos):
                peers_down = now
            if keys_done is None and all(int(i["keys"]) == count for i in infos):
                keys_done = now
            if down is not None and keys_done is not None and not any(under) \
                    and all(int(i["keys"]) == count and i["peers"] == "1" for i in infos):
                done = now
                break
            if now > REPAIR_TIMEOUT:
                raise BenchError(f"repair of {count} keys not done {REPAIR_TIMEOUT:.0f}s after "
                                 f"the SIGKILL; last INFO: {'; '.join(state)}")
            time.sleep(POLL)
        if peers_down is None:
            wait_for(lambda: all(n.info()["peers_down"] == "1" for n in survivors),
                     "the survivors to mark c down", REPAIR_TIMEOUT)
            peers_down = time.monotonic() - killed_at
        after = [counters(node) for node in survivors]
        progress(f"repair: done {done:.2f}s after the SIGKILL; checking with REQUEST LOOKUP ...")
        indices = list(range(count)) if sample >= count else \
            sorted(random.Random(count).sample(range(count), sample))
        wrong = {node.name: check_held(node, indices) for node in survivors}
        for node in survivors:
            node.check_running()
    assert down is not None and keys_done is not None
    return Repair(count, load_s, settle_s, down, peers_down, keys_done, done, max_under,
                  len(indices), wrong, summed(before, after), series)


def repair_table(results: Sequence[Repair]) -> str:
    lines = [
        "| keys | load (s) | detection: both at peers=1 (s) | both at peers_down=1 (s) "
        "| repair: from detection to every key on both (s) | to under_replicated_keys=0 "
        "on both (s) | SIGKILL to repaired (s) | keys moved | sync MB | checked per "
        "survivor | missing or wrong |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        moved = r.deltas["repair_keys_received"]
        wrong = ", ".join(f"{name} {count}" for name, count in r.wrong.items())
        lines.append(
            f"| {r.keys:,} | {r.load_s:.2f} | {r.down_s:.2f} | {r.peers_down_s:.2f} "
            f"| {r.keys_s - r.down_s:.2f} | {r.done_s - r.down_s:.2f} | {r.done_s:.2f} "
            f"| {moved:,} | {r.deltas['sync_bytes'] / 1e6:.1f} | {r.checked:,} | {wrong} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# c. A paused node rejoins
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejoin:
    keys: int
    changed: int
    held_c: int  # keys c holds
    full_raw: int  # key + value bytes of what c holds
    full_wire: int  # the same as REPAIR items (key:value:stamp:ttl,)
    down_s: float  # SIGSTOP -> a and b at peers_down=1
    write_s: float
    survivors_s: float  # writes -> a and b settled without c
    values_s: float  # SIGCONT -> every node GETs every new value
    c_current_s: float  # SIGCONT -> c's store holds every new value it is a home of
    under_s: float  # SIGCONT -> under_replicated_keys=0 and peers=2 everywhere
    clean_s: float  # SIGCONT -> every node holds exactly its homes' keys
    stale_at_c: int  # changed keys c's GET answered with the old value at the first poll
    after_cont: dict[str, int]  # summed deltas, SIGCONT -> done (all three done conditions)
    after_cont_clean: dict[str, int]  # summed deltas, SIGCONT -> clean
    while_down: dict[str, int]  # summed deltas of a and b, SIGSTOP -> SIGCONT
    idle: dict[str, int]  # summed deltas over IDLE seconds before the SIGSTOP
    idle_s: float
    series: list[str]


def measure_rejoin(count: int, changes: int, idle_window: float, workdir: Path,
                   problems: list[str]) -> Rejoin:
    with cluster(1, workdir, problems) as group:
        a, b, c = group.nodes
        progress(f"rejoin: loading {count:,} keys spread over a, b, c ...")
        load_s, settle_s = load_spread(group, workdir, count, f"rejoin-{count}")
        progress(f"rejoin: loaded in {load_s:.2f}s, settled {settle_s:.2f}s later")
        all_keys = [key_of(i) for i in range(count)]
        held = lookup(c, all_keys)
        full_raw = sum(len(k) + len(v) for k, v in held.items())
        full_wire = sum(len(k) + len(v) + 29 for k, v in held.items())  # k:v:<24 hex>:-,
        step = max(1, count // changes)
        changed = list(range(0, count, step))[:changes]
        changed_keys = [key_of(i) for i in changed]
        new_values = {key_of(i): value_of(i, 1) for i in changed}
        c_homes = set(homed_at("c", 1, changed_keys))
        expected = home_counts(1, all_keys)

        idle_before = [counters(node) for node in group.nodes]
        idle_started = time.monotonic()
        time.sleep(idle_window)  # a measurement window: the background rate of a quiet cluster
        idle_after = [counters(node) for node in group.nodes]
        idle_s = time.monotonic() - idle_started

        at_stop = [counters(node) for node in group.nodes]
        stopped_at = time.monotonic()
        os.kill(c.pid, signal.SIGSTOP)
        group.paused.add(c.name)
        wait_for(lambda: all(n.info()["peers_down"] == "1" for n in (a, b)),
                 "a and b to mark c down", FORM_TIMEOUT)
        down_s = time.monotonic() - stopped_at
        progress(f"rejoin: c marked down {down_s:.2f}s after SIGSTOP; overwriting "
                 f"{len(changed):,} keys ...")
        started = time.monotonic()
        with a.client(SOCKET_TIMEOUT) as at_a, b.client(SOCKET_TIMEOUT) as at_b:
            at_a.mset({key: new_values[key] for key in changed_keys[0::2]})
            at_b.mset({key: new_values[key] for key in changed_keys[1::2]})
        write_s = time.monotonic() - started
        started = time.monotonic()
        wait_settled((a, b), {"a": count, "b": count})
        survivors_s = time.monotonic() - started
        at_cont = [counters(a), counters(b), at_stop[2]]  # c has not run since its reading
        progress(f"rejoin: a and b settled {survivors_s:.2f}s after the writes; SIGCONT c ...")

        series: list[str] = []
        values_at: dict[str, float] = {}
        c_current = under = clean = None
        done: list[dict[str, int]] | None = None
        stale_at_c = -1
        resumed_at = time.monotonic()
        os.kill(c.pid, signal.SIGCONT)
        group.paused.discard(c.name)
        last_state = ""
        while True:
            now = time.monotonic() - resumed_at
            for node in group.nodes:
                if node.name not in values_at:
                    with node.client(SOCKET_TIMEOUT) as client:
                        got = client.mget(changed_keys)
                    stale = sum(1 for k in changed_keys if got.get(k) != new_values[k])
                    if node is c and stale_at_c < 0:
                        stale_at_c = stale
                    if not stale:
                        values_at[node.name] = now
            infos = [node.info() for node in group.nodes]
            if c_current is None and int(infos[2]["keys"]) == expected["c"]:
                found = lookup(c, sorted(c_homes))
                if all(found.get(k) == new_values[k] for k in c_homes):
                    c_current = now
            if under is None and all(i["under_replicated_keys"] == "0" and i["peers"] == "2"
                                     for i in infos) and c_current is not None:
                under = now
            if clean is None and all(int(i["keys"]) == expected[n.name] and i["peers"] == "2"
                                     for n, i in zip(group.nodes, infos, strict=True)):
                clean = now
            state = "; ".join(f"{n.name}: peers={i['peers']} keys={i['keys']} under_replicated="
                              f"{i['under_replicated_keys']}"
                              for n, i in zip(group.nodes, infos, strict=True))
            state += f"; new values at {sorted(values_at)}"
            if state != last_state:
                series.append(f"{now:7.3f}s {state}")
                last_state = state
            if done is None and under is not None and len(values_at) == len(NAMES):
                done = [{name: int(i.get(name, "-1")) for name in COUNTERS} for i in infos]
            if done is not None and clean is not None:
                break
            if now > REPAIR_TIMEOUT:
                raise BenchError(f"c not reconciled {REPAIR_TIMEOUT:.0f}s after SIGCONT; "
                                 f"last: {state}")
            time.sleep(RESULT_POLL)
        at_clean = [{name: int(i.get(name, "-1")) for name in COUNTERS} for i in infos]
        for node in group.nodes:
            node.check_running()
    assert c_current is not None and under is not None and clean is not None
    return Rejoin(count, len(changed), len(held), full_raw, full_wire, down_s, write_s,
                  survivors_s, max(values_at.values()), c_current, under, clean, stale_at_c,
                  summed(at_cont, done), summed(at_cont, at_clean),
                  summed(at_stop[:2], at_cont[:2]), summed(idle_before, idle_after), idle_s,
                  series)


def rejoin_table(r: Rejoin) -> str:
    done = max(r.values_s, r.c_current_s, r.under_s)
    moved = r.after_cont["sync_bytes"] + r.after_cont["gossip_bytes"]
    clean = r.after_cont_clean["sync_bytes"] + r.after_cont_clean["gossip_bytes"]
    idle_rate = (r.idle["sync_bytes"] + r.idle["gossip_bytes"]) / r.idle_s
    lines = [
        "| keys | changed | keys c holds | full copy of c (key+value / as REPAIR items) "
        "| SIGCONT to new values at every node (s) | to c's store current (s) "
        "| to under_replicated_keys=0 everywhere (s) | reconciled (s) "
        "| sync + gossip bytes to reconciled | vs full copy (key+value) "
        "| to guests dropped (s) / bytes |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        f"| {r.keys:,} | {r.changed:,} | {r.held_c:,} | {r.full_raw:,} / {r.full_wire:,} B "
        f"| {r.values_s:.2f} | {r.c_current_s:.2f} | {r.under_s:.2f} | {done:.2f} "
        f"| {moved:,} (sync {r.after_cont['sync_bytes']:,}, gossip "
        f"{r.after_cont['gossip_bytes']:,}) | {moved / r.full_raw:.2f}x "
        f"| {r.clean_s:.2f} / {clean:,} |",
    ]
    lines += [
        "",
        f"- c marked down {r.down_s:.2f}s after SIGSTOP; {r.changed:,} keys overwritten in "
        f"{r.write_s:.2f}s; a and b settled (every key on both) {r.survivors_s:.2f}s later, "
        f"moving {r.while_down['sync_bytes']:,} sync bytes and "
        f"{r.while_down['gossip_bytes']:,} gossip bytes, "
        f"{r.while_down['repair_keys_received']:,} keys received by repair",
        f"- at the first poll after SIGCONT, GET at c answered {r.stale_at_c:,} of the "
        f"{r.changed:,} changed keys with the old value (or nothing)",
        f"- SIGCONT to reconciled: repair_keys_sent {r.after_cont['repair_keys_sent']:,}, "
        f"repair_keys_received {r.after_cont['repair_keys_received']:,}, gossip_messages "
        f"{r.after_cont['gossip_messages']:,}",
        f"- background of the quiet cluster before the SIGSTOP: {idle_rate:,.0f} sync + "
        f"gossip bytes/s (over {r.idle_s:.1f}s: sync {r.idle['sync_bytes']:,}, gossip "
        f"{r.idle['gossip_bytes']:,})",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# d. Memory per key
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    server: str
    copies: int
    before: list[int]
    after: list[int]
    peak: list[int]
    load_s: float
    settle_s: float

    @property
    def delta(self) -> int:
        return sum(self.after) - sum(self.before)


def measure_memory(data: DataSet, settle: float, workdir: Path,
                   problems: list[str]) -> list[Memory]:
    lines = olivia_requests(data)
    keys = [data.key(i) for i in range(data.keys)]
    results = []
    for replicas in (0, 1):
        with cluster(replicas, workdir, problems) as group:
            wait_quiet(group.nodes)
            before = [int(node.info()["used_memory"]) for node in group.nodes]
            files = write_set_files(workdir, f"memory-{replicas}", lines)
            progress(f"memory: loading {data.keys:,} keys, replicas={replicas} ...")
            load_s = pipe_load(list(zip(group.nodes, files, strict=True)))
            if replicas == 0:  # each key stays on the node that wrote it
                expected = {name: sum(len(batch) for batch in data.batches()[part::len(NAMES)])
                            for part, name in enumerate(NAMES)}
            else:
                expected = home_counts(replicas, keys)
            for path in files:
                path.unlink()
            settle_s = wait_settled(group.nodes, expected)
            wait_quiet(group.nodes)
            time.sleep(settle)  # as bench/memory.py: let the nodes drop connection buffers
            after = [int(node.info()["used_memory"]) for node in group.nodes]
            peak = [node.peak_rss_bytes() for node in group.nodes]
            sample = {data.key(i): data.value(i) for i in data.sample()}
            for node in group.nodes:
                with node.client(SOCKET_TIMEOUT) as client:
                    if client.mget(list(sample)) != sample:
                        raise BenchError(f"memory: GET of a sample at {node.name} is wrong")
            results.append(Memory(f"olivia, replicas {replicas}", replicas + 1, before, after,
                                  peak, load_s, settle_s))
            progress(f"memory: replicas={replicas}: {sum(after) / 2**20:.1f} MiB after, "
                     f"{sum(before) / 2**20:.1f} before (settled {settle_s:.1f}s after the load)")
    redis = start_redis(workdir=workdir)
    try:
        chunks = redis_requests(data)
        before_one = redis.rss_bytes()
        seconds = load_redis(redis.port, chunks, len(data.batches()), SOCKET_TIMEOUT)
        time.sleep(settle)
        after_one, peak_one = redis.rss_bytes(), redis.peak_rss_bytes()
        check_redis(redis.port, data)
    finally:
        redis.stop()
    results.append(Memory("redis", 1, [before_one], [after_one], [peak_one], seconds, 0.0))
    return results


def memory_table(results: Sequence[Memory], keys: int) -> str:
    redis = results[-1].delta / keys
    mib = 2 ** 20
    lines = [
        "| server | copies of a key | RSS before, sum (MiB) | RSS after, sum (MiB) "
        "| per node after (MiB) | delta (MiB) | bytes/key | bytes/copy | peak RSS, sum (MiB) "
        "| load (s) | bytes/key vs Redis |",
        "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        per_node = " / ".join(f"{value / mib:.1f}" for value in r.after)
        lines.append(
            f"| {r.server} | {r.copies} | {sum(r.before) / mib:.1f} | {sum(r.after) / mib:.1f} "
            f"| {per_node} | {r.delta / mib:.1f} | {r.delta / keys:.0f} "
            f"| {r.delta / keys / r.copies:.0f} | {sum(r.peak) / mib:.1f} | {r.load_s:.2f} "
            f"| {r.delta / keys / redis:.2f}x |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def machine() -> list[str]:
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- cpus: nproc={len(os.sched_getaffinity(0))} "
        f"({proc_field('/proc/cpuinfo', 'model name')}); load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
        f"- memory: {proc_field('/proc/meminfo', 'MemTotal')}",
        f"- os: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- redis: {first_line([redis_binary(), '--version'])}",
    ]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError("key counts must be at least 1000")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replication",
        description="Replication on a 3-node cluster: SET throughput with and without a "
                    "replica (vs Redis), repair after a SIGKILL, a paused node's rejoin, "
                    "memory per key. No measurement flag: all four.")
    parser.add_argument("--throughput", action="store_true", help="a. SET -P 1 and -P 16")
    parser.add_argument("--repair", action="store_true", help="b. repair after a SIGKILL")
    parser.add_argument("--rejoin", action="store_true", help="c. a paused node rejoins")
    parser.add_argument("--memory", action="store_true", help="d. RSS per key")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="a: seconds per olivia-bench run (default 3)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="a: runs per row, the median is shown (default 3)")
    parser.add_argument("-j", "--processes", type=int, default=None,
                        help="a: olivia-bench client processes (default olivia-bench's, 2; "
                             "with --spread 1 per node)")
    parser.add_argument("--spread", action="store_true",
                        help="a: SET at the 3 nodes at once (one olivia-bench each) instead "
                             "of at node a")
    parser.add_argument("--repair-keys", type=_sizes, default=[100_000, 1_000_000],
                        help="b: key counts, comma-separated (default 100000,1000000)")
    parser.add_argument("--sample", type=int, default=20_000,
                        help="b: keys checked with REQUEST LOOKUP on each survivor when N is "
                             "larger (default 20000; every key up to that)")
    parser.add_argument("--rejoin-keys", type=int, default=100_000,
                        help="c: keys in the cluster (default 100000)")
    parser.add_argument("--changes", type=int, default=1000,
                        help="c: keys overwritten while c is stopped (default 1000)")
    parser.add_argument("--idle-window", type=float, default=5.0,
                        help="c: seconds of a quiet cluster measured for its background "
                             "traffic (default 5, one sync interval)")
    parser.add_argument("--memory-keys", type=int, default=1_000_000,
                        help="d: keys (default 1000000)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="d: seconds to wait before reading RSS (default 1)")
    return parser


def run(args: argparse.Namespace) -> str:
    every = not (args.throughput or args.repair or args.rejoin or args.memory)
    problems: list[str] = []
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="olivia-replication-") as tmp:
        workdir = Path(tmp)
        if every or args.throughput:
            runs, bench = measure_throughput(args, workdir, problems)
            out += [f"## a. SET throughput, 3 nodes, replicas 0 and 1, vs Redis "
                    f"({CONNECTIONS} connections, keyspace {KEYSPACE:,}, {VALUE_BYTES}-byte "
                    f"values, {args.duration:g} s a run, median of {args.repeat})", "",
                    throughput_table(runs, args.spread), ""]
            for one in runs:
                if one.counters:
                    out.append(f"- {one.target} -P {one.pipeline} (the median run), summed "
                               "over the nodes: " + ", ".join(
                                   f"{k} {v:,}" for k, v in one.counters.items() if k != "keys"))
            out += ["", "Commands:", "", *(f"    {c}" for c in bench.commands), ""]
        if every or args.repair:
            results = []
            for count in args.repair_keys:
                result = measure_repair(count, args.sample, workdir, problems)
                progress(f"repair of {count:,} keys, INFO of a and b after the SIGKILL:")
                for line in result.series:
                    progress(f"  {line}")
                results.append(result)
            out += ["## b. Repair after a SIGKILL (3 nodes, replicas 1, node c killed)", "",
                    repair_table(results), ""]
            for r in results:
                out.append(f"- {r.keys:,} keys: settled {r.settle_s:.2f}s after the load; "
                           f"highest under_replicated_keys (a + b) seen {r.max_under:,}; "
                           "summed over a and b: " + ", ".join(
                               f"{k} {v:,}" for k, v in r.deltas.items() if k != "keys"))
            out.append("")
        if every or args.rejoin:
            rejoin = measure_rejoin(args.rejoin_keys, args.changes, args.idle_window, workdir,
                                    problems)
            progress("rejoin, INFO of a, b, c after the SIGCONT:")
            for line in rejoin.series:
                progress(f"  {line}")
            out += ["## c. A paused node rejoins (3 nodes, replicas 1, node c SIGSTOPped)", "",
                    rejoin_table(rejoin), ""]
        if every or args.memory:
            data = DataSet(args.memory_keys, VALUE_BYTES, 100)
            results_m = measure_memory(data, args.settle, workdir, problems)
            out += [f"## d. Memory, {args.memory_keys:,} keys, {VALUE_BYTES}-byte values", "",
                    memory_table(results_m, args.memory_keys), ""]
    out += ["Node log lines at WARNING or above, and unexpected exit statuses: "
            f"{len(problems)}", *(f"    {line}" for line in problems[:40]), "",
            "Machine:", "", *machine()]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration <= 0 or args.repeat < 1 or args.changes < 1:
        _parser().error("--duration, --repeat and --changes must be positive")
    started = time.monotonic()
    text = run_or_exit(lambda: run(args), (BenchError, ServerError, OliviaError, OSError,
                                           subprocess.TimeoutExpired),
                       "bench.replication", "bench.replication: interrupted; servers stopped")
    print(text)
    print(f"\nwhole run: {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
