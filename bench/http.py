"""The HTTP port's throughput beside the line protocol's, on the same node,
and whether an idle HTTP port slows the line port.

Run from the repository root (on the 2-core bench machine, under the CPU lock)::

    flock /tmp/cpu.lock python -m bench.http          # about 3 minutes
    python -m bench.http [--duration 5] [--rounds 3]

Needs ``wrk`` (Debian: ``apt-get install wrk``), the well-known HTTP load
tool: one C process, ``-t 2`` threads, ``-c 50`` keep-alive connections,
a Lua script drawing keys at random from the ``-r 10000`` keys loaded first.

1. One node with ``--http-port 0``.  Per round: ``GET /v1/keys/{key}`` and
   ``PUT /v1/keys/{key}`` (16-byte bodies) with wrk, then the line
   protocol's GET and SET with ``olivia-bench -c 50 -P 1 -j 2`` on the same
   node, so a change in the machine's load hits both.
2. An idle HTTP port: two nodes, one with ``--http-port 0`` (nothing talks
   to it) and one without; per round olivia-bench SET and GET at -P 1 and
   -P 16 against each, alternating.

A row is the round with the median requests/s.  CPU is in % of one core over
the run's wall time (the client's from its rusage, the node's from
/proc/PID/stat): a node near 100% is the bottleneck, a client near 200% (2
cores) would be.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import (
    ROOT,
    ServerError,
    ServerProcess,
    cpu_seconds,
    olivia_server,
    run_or_exit,
)

CONNECTIONS = 50
KEYSPACE = 10_000
VALUE_BYTES = 16
_HTTP_LISTENING = re.compile(r"HTTP listening on \S+:(\d+)")
_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_P50 = re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")

# wrk's Lua: a random loaded key a request (the same names olivia-bench uses).
_SCRIPT = """
math.randomseed(os.time())
local keys, method, body = {keys}, "{method}", {body}
request = function()
  local path = string.format("/v1/keys/key_%012d", math.random(0, keys - 1))
  return wrk.format(method, path, nil, body)
end
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    client_cpu: float
    server_cpu: float


@dataclass
class Row:
    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda run: run.rps)[len(self.runs) // 2]



def measured(server: ServerProcess, argv: list[str], parse: Callable[[str], tuple[float, float]],
             timeout: float) -> Run:
    """Run a load tool against ``server``: its (rps, p50 ms) and both CPUs."""
    before_server = cpu_seconds(server.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    rps, p50 = parse(done.stdout)
    client = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / elapsed
    server_cpu = (cpu_seconds(server.pid) - before_server) / elapsed
    return Run(rps, p50, client * 100, server_cpu * 100)


def wrk_run(server: ServerProcess, http_port: int, method: str, duration: float,
            scripts: Path) -> Run:
    body = f'"{"v" * VALUE_BYTES}"' if method == "PUT" else "nil"
    script = scripts / f"{method.lower()}.lua"
    script.write_text(_SCRIPT.replace("{keys}", str(KEYSPACE)).replace("{method}", method)
                      .replace("{body}", body))
    argv = [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(CONNECTIONS), "-d",
            f"{duration:g}s", "--latency", "-s", str(script), f"http://127.0.0.1:{http_port}/"]
    return measured(server, argv, _wrk_figures, duration * 4 + 30)


def _wrk_figures(out: str) -> tuple[float, float]:
    errors = _WRK_ERRORS.search(out)
    if errors:
        raise RuntimeError(f"wrk saw errors: {errors.group(0)}")
    rps, p50 = _WRK_RPS.search(out), _WRK_P50.search(out)
    if rps is None or p50 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return float(rps.group(1)), float(p50.group(1)) * scale


def line_run(server: ServerProcess, test: str, depth: int, duration: float) -> Run:
    argv = [sys.executable, "-m", "olivia.tools.bench", "-p", str(server.port), "-c",
            str(CONNECTIONS), "-P", str(depth), "-j", "2", "-r", str(KEYSPACE), "-d",
            str(VALUE_BYTES), "-t", test, "--duration", f"{duration:g}", "--no-populate",
            "--csv"]
    return measured(server, argv, _bench_figures, duration * 4 + 60)


def _bench_figures(out: str) -> tuple[float, float]:
    row = next(iter(csv.DictReader(io.StringIO(out))))
    if row["errors"] != "0":
        raise RuntimeError(f"olivia-bench saw {row['errors']} errors")
    return float(row["ops_per_sec"]), float(row["p50_ms"])


def load(server: ServerProcess) -> None:
    subprocess.run([sys.executable, "-m", "olivia.tools.bench", "-p", str(server.port), "-r",
                    str(KEYSPACE), "-d", str(VALUE_BYTES), "-t", "populate", "-q"],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)


def http_port_of(server: ServerProcess) -> int:
    match = _HTTP_LISTENING.search(server.log())
    if match is None:
        raise ServerError("the node did not say where HTTP listens")
    return int(match.group(1))


def beside(rounds: int, duration: float) -> list[Row]:
    """HTTP GET/PUT with wrk and line GET/SET with olivia-bench, one node."""
    rows = {label: Row(label) for label in
            ("HTTP GET /v1/keys", "HTTP PUT /v1/keys", "line GET", "line SET")}
    with olivia_server("--http-port", "0", name="olivia") as node, \
            tempfile.TemporaryDirectory() as scripts:
        load(node)
        port = http_port_of(node)
        loads: list[tuple[str, Callable[[], Run]]] = [
            ("HTTP GET /v1/keys", lambda: wrk_run(node, port, "GET", duration, Path(scripts))),
            ("HTTP PUT /v1/keys", lambda: wrk_run(node, port, "PUT", duration, Path(scripts))),
            ("line GET", lambda: line_run(node, "get", 1, duration)),
            ("line SET", lambda: line_run(node, "set", 1, duration)),
        ]
        for number in range(1, rounds + 1):
            for label, run in loads:
                result = run()
                rows[label].runs.append(result)
                _progress(number, label, result)
    return list(rows.values())


def idle_port(rounds: int, duration: float) -> list[Row]:
    """olivia-bench on a node with an idle HTTP port and on one without."""
    rows: dict[str, Row] = {}
    with olivia_server("--http-port", "0", name="with-http") as with_http, \
            olivia_server(name="without-http") as without:
        for node in (with_http, without):
            load(node)
        for number in range(1, rounds + 1):
            for test in ("set", "get"):
                for depth in (1, 16):
                    for name, node in (("idle HTTP port", with_http), ("no HTTP port", without)):
                        label = f"{name}: line {test.upper()} -P {depth}"
                        result = line_run(node, test, depth, duration)
                        rows.setdefault(label, Row(label)).runs.append(result)
                        _progress(number, label, result)
    return list(rows.values())


def _progress(number: int, label: str, run: Run) -> None:
    print(f"[round {number}] {label}: {run.rps:,.0f} rps, p50 {run.p50_ms:.3f} ms, client CPU "
          f"{run.client_cpu:.0f}%, node CPU {run.server_cpu:.0f}%", file=sys.stderr, flush=True)


def table(rows: Sequence[Row]) -> list[str]:
    out = ["| load | requests/s | p50 ms | client CPU | node CPU |", "|---|---|---|---|---|"]
    for row in rows:
        run = row.median
        out.append(f"| {row.label} | {run.rps:,.0f} | {run.p50_ms:.3f} | {run.client_cpu:.0f}% "
                   f"| {run.server_cpu:.0f}% |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http")
    parser.add_argument("--duration", type=int, default=5,
                        help="whole seconds a run (wrk takes no fractions)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found (Debian: apt-get install wrk)")
    together = beside(args.rounds, args.duration)
    idle = idle_port(args.rounds, args.duration)
    out = [f"# bench.http, {dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
           f"Python {platform.python_version()}, {args.duration:g} s a run, median of "
           f"{args.rounds}, {CONNECTIONS} connections, {VALUE_BYTES}-byte values, "
           f"{KEYSPACE:,} keys", "", *table(together), "", *table(idle)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(run_or_exit(lambda: main(), (RuntimeError, OSError, ServerError,
                                          subprocess.SubprocessError),
                         "bench.http failed", "bench.http interrupted"))
