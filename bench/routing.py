"""Routing benchmark: how many peer messages a GET costs, and what gossip costs.

Run from the repository root::

    python bench/routing.py [--nodes 3,8] [--keys 2000]

For each cluster size N it starts N Olivia nodes (``python -m olivia --port 0
--name nK --config F``, this working tree) on 127.0.0.1, every node
after the first seeded with the first one's address, and waits until every
node's INFO shows ``peers`` = N-1.  Then, reading the INFO counters before and
after each phase:

1. writes K keys at node 1 (pipelined ``SET`` lines of 100 keys) and waits
   until the last one is visible at node 2;
2. at node 2, K single-key GETs of those keys (each held by node 1 only):
   peer probes, LOOKUP messages and hits per GET; then K single-key GETs of
   keys no node holds: probes per GET;
3. gossip: writes K more keys at node 1 as one-key ``SET`` lines, waits for the
   gossip to settle, and reads ``gossip_bytes``/``gossip_messages`` summed over
   all nodes; the same again with 100-key ``SET`` lines;
4. compares with asking every peer (N-1 messages per GET).

The config file holds ``[cluster] replicas = 0`` (replication off: with the
default of one replica, node 1's keys would also be stored on other nodes,
and the GETs at node 2 would not all go to node 1); every other setting is
the built-in default.  ``--bloom-capacity C`` adds ``[bloom] capacity = C``
(with C = K, node 1's filter is at its design fp_rate during the GETs).

It prints a markdown table on stdout (details on stderr) and stops every node
it started (SIGTERM, then SIGKILL) whatever happens.  Only loopback traffic;
nodes are spoken to with ``olivia.Client``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script (python bench/routing.py): import this tree
    sys.path.insert(0, str(ROOT))

from bench.servers import (  # noqa: E402
    NO_REPLICAS,
    ServerError,
    ServerProcess,
    run_or_exit,
    start_olivia,
    wait_for,
)
from olivia import Client, OliviaError, Pipeline  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT = 15.0  # seconds for a node to print "listening on"
FORM_TIMEOUT = 20.0  # seconds for the cluster to form (the contract says 2 s)
VISIBLE_TIMEOUT = 10.0  # seconds for node 1's writes to become visible at node 2
SETTLE_QUIET = 0.3  # gossip counters unchanged this long = settled
SETTLE_MIN = 1.0  # ...but wait at least this long (10 gossip rounds at 0.1 s)
SETTLE_TIMEOUT = 15.0
SOCKET_TIMEOUT = 30.0
WINDOW = 100  # requests in flight on one connection
SUMMARY_CACHE = "25-60x"  # Fan et al., Summary Cache (SIGCOMM 1998 / ToN 2000)
_LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
T = TypeVar("T")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------


def start_node(name: str, workdir: Path, seed_port: int | None,
               config: Path) -> ServerProcess:
    """Start ``python -m olivia --name NAME --config CONFIG`` without waiting
    for it to listen: call its ``wait_listening()``."""
    args = ["--name", name, "--config", str(config)]
    if seed_port is not None:
        args += ["--peers", f"{HOST}:{seed_port}"]
    return start_olivia(*args, name=name, workdir=workdir, wait=False)


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------


def windowed(client: Client, queue: Callable[[Pipeline, T], object],
             items: Sequence[T]) -> list[Any]:
    """``queue(pipeline, item)`` for every item, WINDOW items per pipeline, each
    pipeline answered before the next is sent: at most WINDOW requests in
    flight.  The results in order (an error reply's exception in its place)."""
    results: list[Any] = []
    for start in range(0, len(items), WINDOW):
        pipe = client.pipeline()
        for item in items[start:start + WINDOW]:
            queue(pipe, item)
        results += pipe.execute()
    return results


def counters(info: dict[str, str], names: Iterable[str]) -> dict[str, int]:
    return {name: int(info[name]) for name in names}


GET_COUNTERS = ("remote_lookups", "remote_probes", "remote_hits", "lookup_messages")
GOSSIP_COUNTERS = ("gossip_bytes", "gossip_messages")


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in before}


def gossip_total(nodes: Sequence[ServerProcess]) -> dict[str, int]:
    """gossip_bytes and gossip_messages summed over all nodes."""
    total = dict.fromkeys(GOSSIP_COUNTERS, 0)
    for node in nodes:
        for name, value in counters(node.info(), GOSSIP_COUNTERS).items():
            total[name] += value
    return total


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def keys(prefix: str, count: int) -> list[bytes]:
    """Keys with no reserved bytes, so they need no percent-encoding."""
    return [f"{prefix}-{i:06d}".encode() for i in range(count)]


def value_of(key: bytes) -> bytes:
    return b"v-" + key


def write(client: Client, batch_keys: Sequence[bytes], per_line: int) -> float:
    """SET the keys (``per_line`` per SET line, pipelined); seconds taken."""
    started = time.perf_counter()
    lines = [batch_keys[i:i + per_line] for i in range(0, len(batch_keys), per_line)]
    # per_line is at most 100 short keys: Client.mset sends each as one line.
    results = windowed(client, lambda pipe, line: pipe.mset({k: value_of(k) for k in line}),
                       lines)
    for result in results:
        if isinstance(result, OliviaError):
            raise BenchError(f"unexpected SET reply: {result}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------
# One cluster size
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    nodes: int
    keys: int
    listening_s: float  # from starting nodes 2..N until all of them listened
    formation_s: float  # from then until every node had peers = N-1
    bloom_bits: int
    visible_s: float
    hit_gets: dict[str, int]  # counter deltas at node 2 over K hit GETs
    hits_seen: int  # GETs that returned the right value
    miss_gets: dict[str, int]  # counter deltas at node 2 over K miss GETs
    misses_seen: int  # GETs that returned nothing
    fp_estimate_node1: float
    gossip_1: dict[str, int]  # summed gossip deltas, 1-key SET lines
    gossip_100: dict[str, int]  # summed gossip deltas, 100-key SET lines
    write_1_s: float
    write_100_s: float
    settle_1_s: float
    settle_100_s: float
    keys_per_node: list[int]
    log_problems: list[str]
    seconds: float

    @property
    def broadcast(self) -> int:
        return self.nodes - 1

    def per_get(self, phase: dict[str, int], name: str) -> float:
        return phase[name] / self.keys

    @property
    def hit_msgs(self) -> float:
        return self.per_get(self.hit_gets, "lookup_messages")

    @property
    def miss_msgs(self) -> float:
        return self.per_get(self.miss_gets, "lookup_messages")


def settle(nodes: Sequence[ServerProcess], since: float) -> tuple[dict[str, int], float]:
    """Poll summed gossip counters until unchanged SETTLE_QUIET s (and SETTLE_MIN s
    after ``since``); the final totals and the seconds from ``since``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last = gossip_total(nodes)
    changed_at = time.monotonic()
    while True:
        time.sleep(0.05)
        now_total = gossip_total(nodes)
        now = time.monotonic()
        if now_total != last:
            last, changed_at = now_total, now
        elif now - changed_at >= SETTLE_QUIET and now - since >= SETTLE_MIN:
            return last, changed_at - since
        if now > deadline:
            raise BenchError(f"gossip counters still changing after {SETTLE_TIMEOUT:.0f}s")


def measure_gossip(nodes: Sequence[ServerProcess], client: Client, batch_keys: Sequence[bytes],
                   per_line: int) -> tuple[dict[str, int], float, float]:
    before = gossip_total(nodes)
    seconds = write(client, batch_keys, per_line)
    after, settled = settle(nodes, time.monotonic())
    return delta(before, after), seconds, settled


def get_phase(client: Client, batch_keys: Sequence[bytes],
              expect_hit: bool) -> tuple[dict[str, int], int]:
    """K single-key GETs at one node; counter deltas and how many matched ``expect_hit``."""
    before = counters(client.info(), GET_COUNTERS)
    results = windowed(client, lambda pipe, key: pipe.get(key), batch_keys)
    after = counters(client.info(), GET_COUNTERS)
    matched = 0
    for key, result in zip(batch_keys, results, strict=True):
        if isinstance(result, OliviaError):
            raise BenchError(f"unexpected GET reply: {result}")
        if result == (value_of(key) if expect_hit else None):
            matched += 1
    return delta(before, after), matched


def run_cluster(size: int, count: int, parent: Path, bloom_capacity: int | None) -> Result:
    started = time.monotonic()
    workdir = parent / f"cluster-{size}"
    workdir.mkdir()
    config = workdir / "bench.toml"
    text = NO_REPLICAS  # every key on its writer only: GETs at node 2 are remote
    if bloom_capacity is not None:
        text += f"\n[bloom]\ncapacity = {bloom_capacity}\n"
    config.write_text(text)
    nodes: list[ServerProcess] = []
    try:
        first = start_node("n1", workdir, None, config)
        nodes.append(first)
        seed = first.wait_listening(START_TIMEOUT)
        launched = time.monotonic()
        for index in range(2, size + 1):
            nodes.append(start_node(f"n{index}", workdir, seed, config))
        for node in nodes[1:]:
            node.wait_listening(START_TIMEOUT)
        all_listening = time.monotonic()
        listening = all_listening - launched

        def formed() -> bool:
            for node in nodes:
                node.check_running()
            return all(node.info()["peers"] == str(size - 1) for node in nodes)

        wait_for(formed, f"{size} nodes to see each other (peers = {size - 1})", FORM_TIMEOUT)
        formation = time.monotonic() - all_listening
        bloom_bits = int(first.info()["bloom_bits"])

        with first.client(SOCKET_TIMEOUT) as writer, \
                nodes[1].client(SOCKET_TIMEOUT) as reader:
            # 1. K keys at node 1, visible at node 2.
            held = keys(f"n{size}-held", count)
            write(writer, held, 100)
            written = time.monotonic()
            last = held[-1]
            wait_for(lambda: reader.get(last) == value_of(last),
                     "node 1's writes to be visible at node 2", VISIBLE_TIMEOUT)
            visible = time.monotonic() - written

            # 2. Hits and misses at node 2.
            hit_gets, hits_seen = get_phase(reader, held, expect_hit=True)
            miss_gets, misses_seen = get_phase(reader, keys(f"n{size}-absent", count),
                                               expect_hit=False)
            fp_estimate = float(writer.info()["bloom_fp_estimate"])

            # 3. Gossip per written key.
            gossip_1, write_1, settle_1 = measure_gossip(
                nodes, writer, keys(f"n{size}-gs", count), 1)
            gossip_100, write_100, settle_100 = measure_gossip(
                nodes, writer, keys(f"n{size}-gm", count), 100)
        keys_per_node = [node.key_count() for node in nodes]
        for node in nodes:
            node.check_running()
    finally:
        statuses = [node.stop() for node in nodes]
    problems = [f"{node.name}: {line}" for node in nodes
                for line in node.log().splitlines() if _LEVEL.search(line)]
    problems += [f"{node.name}: exit status {status} after SIGTERM"
                 for node, status in zip(nodes, statuses, strict=True) if status != 0]
    return Result(size, count, listening, formation, bloom_bits, visible, hit_gets, hits_seen,
                  miss_gets, misses_seen, fp_estimate, gossip_1, gossip_100, write_1,
                  write_100, settle_1, settle_100, keys_per_node, problems,
                  time.monotonic() - started)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def factor(broadcast: float, ours: float, gets: int) -> str:
    """broadcast / ours; with no message at all in ``gets`` GETs, a lower bound."""
    if ours > 0:
        return f"{broadcast / ours:.2f}x"
    return f"> {broadcast * gets:.0f}x (0 msgs)"


def table(results: Sequence[Result]) -> str:
    rows = [
        "| nodes | GET hits: probes/GET | GET misses: probes/GET | broadcast msgs/GET "
        "| factor (hits) | factor (misses) | factor (50/50) "
        "| gossip bytes/written key (1-key SETs) | gossip bytes/written key (100-key SETs) "
        "| gossip msgs/written key (1-key / 100-key SETs) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        mix = (r.hit_msgs + r.miss_msgs) / 2
        rows.append(
            f"| {r.nodes} "
            f"| {r.per_get(r.hit_gets, 'remote_probes'):.3f} "
            f"| {r.per_get(r.miss_gets, 'remote_probes'):.4f} "
            f"| {r.broadcast} "
            f"| {factor(r.broadcast, r.hit_msgs, r.keys)} "
            f"| {factor(r.broadcast, r.miss_msgs, r.keys)} "
            f"| {factor(r.broadcast, mix, 2 * r.keys)} "
            f"| {r.gossip_1['gossip_bytes'] / r.keys:.1f} "
            f"| {r.gossip_100['gossip_bytes'] / r.keys:.1f} "
            f"| {r.gossip_1['gossip_messages'] / r.keys:.4f} / "
            f"{r.gossip_100['gossip_messages'] / r.keys:.4f} |")
    return "\n".join(rows)


def details(r: Result) -> str:
    hit, miss = r.hit_gets, r.miss_gets
    lines = [
        f"N={r.nodes}: nodes 2..{r.nodes} listening {r.listening_s:.2f}s after they were "
        f"started, every node at peers={r.nodes - 1} {r.formation_s:.2f}s later; "
        f"bloom_bits {r.bloom_bits}; "
        f"writes visible at n2 {r.visible_s:.2f}s after the last :SAT; "
        f"run {r.seconds:.1f}s",
        f"  hits at n2: {r.hits_seen}/{r.keys} right values; counters: "
        + ", ".join(f"{k}={v}" for k, v in hit.items())
        + f"; hit rate {hit['remote_hits'] / r.keys:.3f}; "
        f"lookup msgs/GET {r.hit_msgs:.3f}",
        f"  misses at n2: {r.misses_seen}/{r.keys} empty; counters: "
        + ", ".join(f"{k}={v}" for k, v in miss.items())
        + f"; contract bound fp_rate x (N-1) = {0.01 * (r.nodes - 1):.2f} probes/GET "
        f"(n1 bloom_fp_estimate {r.fp_estimate_node1:.2e})",
        f"  gossip, 1-key SETs: {r.gossip_1['gossip_bytes']} B in "
        f"{r.gossip_1['gossip_messages']} msgs (write {r.write_1_s:.2f}s, "
        f"settled {r.settle_1_s:.2f}s after); per written key per peer "
        f"{r.gossip_1['gossip_bytes'] / r.keys / (r.nodes - 1):.1f} B",
        f"  gossip, 100-key SETs: {r.gossip_100['gossip_bytes']} B in "
        f"{r.gossip_100['gossip_messages']} msgs (write {r.write_100_s:.2f}s, "
        f"settled {r.settle_100_s:.2f}s after); per written key per peer "
        f"{r.gossip_100['gossip_bytes'] / r.keys / (r.nodes - 1):.1f} B",
        f"  keys per node at the end: {r.keys_per_node}",
        f"  node log lines at WARNING or above, and non-zero exits: {len(r.log_problems)}",
    ]
    lines += [f"    {line}" for line in r.log_problems[:20]]
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not sizes or any(not 2 <= size <= 16 for size in sizes):
        raise argparse.ArgumentTypeError("cluster sizes must be 2..16")
    return sizes


def run_all(sizes: Sequence[int], count: int, bloom_capacity: int | None) -> list[Result]:
    """One cluster per size, one after the other; details on stderr as each ends."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="olivia-routing-") as tmp:
        for size in sizes:
            print(f"running a {size}-node cluster ...", file=sys.stderr)
            result = run_cluster(size, count, Path(tmp), bloom_capacity)
            print(details(result), file=sys.stderr)
            results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--nodes", type=parse_sizes, default=[3, 8],
                        help="cluster sizes, comma-separated (default 3,8)")
    parser.add_argument("--keys", type=int, default=2000,
                        help="K: keys per phase (default 2000)")
    parser.add_argument("--bloom-capacity", type=int, default=None, metavar="C",
                        help="add [bloom] capacity = C to every node's config file "
                        "(default: the built-in capacity); --bloom-capacity "
                        "equal to --keys fills node 1's filter to its design fp_rate for the "
                        "miss phase")
    args = parser.parse_args(argv)
    if args.bloom_capacity is not None and args.bloom_capacity < 1000:
        parser.error("--bloom-capacity must be at least 1000 (olivia's minimum)")
    if not 100 <= args.keys <= 1_000_000:
        parser.error("--keys must be 100..1000000")
    started = time.monotonic()
    results = run_or_exit(lambda: run_all(args.nodes, args.keys, args.bloom_capacity),
                          (BenchError, ServerError, OliviaError), "routing benchmark failed",
                          "routing benchmark interrupted; its nodes were stopped")
    capacity = "built-in" if args.bloom_capacity is None else str(args.bloom_capacity)
    print(f"# Routing: {args.keys} keys per phase, replicas 0, bloom capacity {capacity}, "
          f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
          f"{platform.node()} ({os.cpu_count()} CPUs), Python {platform.python_version()}")
    print()
    print(table(results))
    print()
    print(f"broadcast = ask all N-1 peers on every local miss; factor = broadcast msgs / our "
          f"LOOKUP msgs. Summary Cache (Fan et al.) reports {SUMMARY_CACHE} fewer "
          f"inter-proxy messages than ICP's broadcast.")
    print(f"whole run: {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
