"""How soon a key written on node A is found from node B, right after a bulk load on A.

A bulk load leaves A with a backlog of gossip for B (an invalidation per
key, INFO ``invalidations_pending``) and, past the filter's capacity, a
filter growth.  The contract says a write is visible from every node 0.5 s
after its reply; this script measures it where it is hardest::

    python -m bench.visibility                 # 1,000,000 keys, 5 runs
    python -m bench.visibility --keys 300000 --runs 10
    python -m bench.visibility --replicas 1    # with a replica (the node default)

Each run starts a fresh 2-node cluster (B joined to A), both nodes with a
config file holding ``[cluster] replicas = R`` (``--replicas``, default 0:
the key lives on A only and reaches B by gossip, which is what this
measures; with 1, A stores every write on B before it answers), loads ``--keys``
keys of 16 bytes into A with ``olivia.Client.mset``, then writes one new key
on A and polls ``GET`` on B every millisecond until it answers, reporting the
delay from A's ``:SAT`` and A's pending invalidations at that moment.  Then
it does the same for a second new key 0.2 s later.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

from bench.servers import ServerError, config_file, olivia_server, wait_for
from olivia import Client

VALUE = b"v" * 16


def seen_after(writer: Client, reader: Client, key: bytes, timeout: float = 10.0) -> float:
    """Seconds from the write's reply on ``writer`` to ``reader`` finding the key."""
    writer.set(key, b"1")
    started = time.monotonic()
    while reader.get(key) != b"1":
        if time.monotonic() - started > timeout:
            raise ServerError(f"{key!r} not visible after {timeout:.0f}s")
        time.sleep(0.001)
    return time.monotonic() - started


def one_run(keys: int, replicas: int) -> tuple[float, float, int, float]:
    with config_file(f"[cluster]\nreplicas = {replicas}\n") as config, \
            olivia_server("--name", "a", "--config", str(config)) as a, \
            olivia_server("--name", "b", "--peers", a.address, "--config", str(config)) as b:
        wait_for(lambda: a.info()["peers"] == "1" == b.info()["peers"], "the nodes to meet")
        with Client(a.host, a.port) as at_a, Client(b.host, b.port) as at_b:
            started = time.monotonic()
            at_a.mset({b"bulk%09d" % i: VALUE for i in range(keys)})
            load_s = time.monotonic() - started
            first = seen_after(at_a, at_b, b"fresh-1")
            pending = int(a.info().get("invalidations_pending", "-1"))  # -1: an older node
            time.sleep(0.2)  # a second key, a moment later (the pause is the scenario)
            second = seen_after(at_a, at_b, b"fresh-2")
    return first, second, pending, load_s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.visibility", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys loaded into A")
    parser.add_argument("--runs", type=int, default=5, help="fresh clusters to measure")
    parser.add_argument("--replicas", type=int, default=0, choices=range(0, 2),
                        help="[cluster] replicas of both nodes (default 0: no replica)")
    args = parser.parse_args(argv)
    firsts, seconds = [], []
    try:
        for run in range(1, args.runs + 1):
            first, second, pending, load_s = one_run(args.keys, args.replicas)
            firsts.append(first)
            seconds.append(second)
            print(f"run {run}: loaded {args.keys:,} keys in {load_s:.2f} s; first key visible "
                  f"at B after {first * 1000:.0f} ms ({pending:,} invalidations still "
                  f"pending), second after {second * 1000:.0f} ms", flush=True)
    except (ServerError, OSError) as exc:
        print(f"bench.visibility: {exc}", file=sys.stderr)
        return 1
    both = firsts + seconds
    print(f"| {args.keys:,} (replicas {args.replicas}) | {args.runs} | "
          f"{statistics.median(firsts) * 1000:.0f} | "
          f"{max(firsts) * 1000:.0f} | {statistics.median(seconds) * 1000:.0f} | "
          f"{max(both) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
