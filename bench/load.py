"""Bulk-load speed: ``olivia-cli --pipe`` and ``olivia-cli import`` against
``redis-cli --pipe``, loading the same keys into fresh local servers.

    python -m bench.load [--keys N] [--repeat R] [--dir DIR]

Writes the input files (16-byte values), then for each method starts a fresh
server (bench/servers.py), times the load from process start to exit (wall
clock), checks the key count (Olivia ``INFO keys``, Redis ``DBSIZE``) and
stops the server.  Prints a markdown table with the median of ``--repeat``
runs: seconds, keys/s, and the ratio to ``redis-cli --pipe``.

Methods:

- ``redis-cli --pipe``: RESP ``SET key value`` commands;
- ``olivia-cli --pipe``, multi-key lines: ``SET k1:v1,...,k100:v100``;
- ``olivia-cli --pipe``, one key a line: ``SET k:v``;
- ``olivia-cli import`` of a CSV file ``key,value``.

Client and server share the machine's cores, so numbers from a busy machine
are rough; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ServerProcess, olivia_server, redis_server
from olivia.protocols.resp.codec import command

PER_LINE = 100  # keys per multi-key SET line
VALUE_BYTES = 16
RUN_TIMEOUT = 600.0  # seconds for one load


def key_of(i: int) -> bytes:
    return b"key_%08d" % i


def value_of(i: int) -> bytes:
    return b"v%0*d" % (VALUE_BYTES - 1, i)


@dataclass
class Inputs:
    resp: Path
    multi: Path
    single: Path
    csv: Path


def write_inputs(directory: Path, keys: int) -> Inputs:
    """The four input files for ``keys`` keys, in ``directory``."""
    inputs = Inputs(directory / "load.resp", directory / "load-multi.txt",
                    directory / "load-single.txt", directory / "load.csv")
    step = 10_000
    with inputs.resp.open("wb") as resp, inputs.multi.open("wb") as multi, \
            inputs.single.open("wb") as single, inputs.csv.open("wb") as csv_file:
        csv_file.write(b"key,value\n")
        for start in range(0, keys, step):
            numbers = range(start, min(start + step, keys))
            pairs = [(key_of(i), value_of(i)) for i in numbers]
            resp.write(b"".join(command(b"SET", k, v) for k, v in pairs))
            single.write(b"".join(b"SET " + k + b":" + v + b"\n" for k, v in pairs))
            csv_file.write(b"".join(k + b"," + v + b"\n" for k, v in pairs))
            for i in range(0, len(pairs), PER_LINE):
                multi.write(b"SET " + b",".join(k + b":" + v for k, v in pairs[i:i + PER_LINE])
                            + b"\n")
    return inputs


def timed(cmd: list[str], stdin: Path | None) -> float:
    """Run a loader to completion; its wall-clock seconds."""
    with (stdin.open("rb") if stdin is not None else open(os.devnull, "rb")) as source:
        started = time.perf_counter()
        done = subprocess.run(cmd, stdin=source, capture_output=True, timeout=RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {done.returncode}:\n"
                         f"{done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}")
    return elapsed


@dataclass
class Method:
    name: str
    kind: str  # "redis" or "olivia"
    command: Callable[[ServerProcess], list[str]]
    stdin: Path | None


def methods(inputs: Inputs, redis_cli: str) -> list[Method]:
    cli = [sys.executable, "-m", "olivia.tools.cli"]

    def olivia(*args: str) -> Callable[[ServerProcess], list[str]]:
        return lambda server: [*cli, "-h", server.host, "-p", str(server.port), *args]

    return [
        Method("redis-cli --pipe", "redis",
               lambda s: [redis_cli, "-h", s.host, "-p", str(s.port), "--pipe"], inputs.resp),
        Method(f"olivia-cli --pipe ({PER_LINE} keys a line)", "olivia", olivia("--pipe"),
               inputs.multi),
        Method("olivia-cli --pipe (1 key a line)", "olivia", olivia("--pipe"), inputs.single),
        Method("olivia-cli import (CSV)", "olivia", olivia("import", str(inputs.csv)), None),
    ]


def run_once(method: Method, keys: int) -> float:
    """Load into a fresh server; check the count; the seconds it took."""
    with redis_server() if method.kind == "redis" else olivia_server() as server:
        seconds = timed(method.command(server), method.stdin)
        count = server.key_count()
    if count != keys:
        raise SystemExit(f"{method.name}: the server holds {count} keys, expected {keys}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys to load (1000000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per method; the median is shown (3)")
    parser.add_argument("--dir", type=Path, help="where to write the input files "
                        "(default: a temporary directory, removed at the end)")
    args = parser.parse_args(argv)
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        parser.error("redis-cli is not on PATH")
    if args.keys < 1 or args.repeat < 1:
        parser.error("--keys and --repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="olivia-load-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        print(f"writing input files for {args.keys} keys to {directory} ...", file=sys.stderr)
        inputs = write_inputs(directory, args.keys)
        results: list[tuple[str, float]] = []
        for method in methods(inputs, redis_cli):
            runs = []
            for run in range(args.repeat):
                seconds = run_once(method, args.keys)
                runs.append(seconds)
                print(f"{method.name}: run {run + 1}: {seconds:.2f} s", file=sys.stderr)
            results.append((method.name, statistics.median(runs)))

    baseline = results[0][1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.keys} keys, {VALUE_BYTES}-byte values, median of {args.repeat} runs, "
          f"{os.cpu_count()} CPUs, load average {load:.2f} at the end\n")
    print("| method | seconds | keys/s | ratio to redis-cli --pipe |")
    print("|---|---:|---:|---:|")
    for name, seconds in results:
        print(f"| {name} | {seconds:.2f} | {args.keys / seconds:,.0f} | "
              f"{seconds / baseline:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
