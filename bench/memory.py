"""Memory benchmark: resident memory of Olivia vs Redis holding the same keys.

Run from the repository root::

    python bench/memory.py [--keys 1000000] [--value-size 16] [--batch 100]

In one run it starts an Olivia node (``python -m olivia --port 0``, this
working tree) and a ``redis-server`` (persistence off), both on 127.0.0.1
only, reads each process's RSS (``VmRSS`` in ``/proc/PID/status``), loads the
same keys ``key:0000000``, ``key:0000001``, ... with values of ``--value-size``
bytes into each over a pipelined connection (Olivia: ``SET k:v,...`` lines
through an ``olivia.Client`` pipeline; Redis: RESP ``MSET`` encoded by
``olivia.protocols.resp.codec``), checks a sample of keys and the key counts,
reads the RSS again and prints a markdown table.  Both processes are stopped
(SIGTERM, then SIGKILL) whatever happens.  Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script (python bench/memory.py): import this tree
    sys.path.insert(0, str(ROOT))

from bench.machine import first_line, proc_field  # noqa: E402
from bench.servers import (  # noqa: E402
    RedisConnection,
    ServerError,
    ServerProcess,
    redis_binary,
    redis_info_fields,
    run_or_exit,
    start_olivia,
    start_redis,
)
from olivia import Client, OliviaError  # noqa: E402
from olivia.protocols.line.requests import pairs_payload, request_line  # noqa: E402
from olivia.protocols.resp.codec import command  # noqa: E402

HOST = "127.0.0.1"
MIB = 1024 * 1024
CHUNK_BYTES = 256 * 1024  # about this many RESP bytes per socket write (Redis load)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --------------------------------------------------------------------------
# The data set and the load
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    keys: int
    value_size: int
    batch: int

    @property
    def width(self) -> int:
        return max(7, len(str(self.keys - 1)))

    def key(self, index: int) -> bytes:
        """``key:0000042``: the raw key bytes as stored."""
        return b"key:%0*d" % (self.width, index)

    def value(self, index: int) -> bytes:
        """``value_size`` bytes, distinct per key (no reserved bytes)."""
        return (b"v%d" % index).ljust(self.value_size, b".")[: self.value_size]

    def batches(self) -> list[range]:
        return [range(start, min(start + self.batch, self.keys))
                for start in range(0, self.keys, self.batch)]

    def sample(self) -> list[int]:
        return sorted({0, self.keys // 2, self.keys - 1})


def chunked(lines: list[bytes]) -> list[bytes]:
    """Join request lines into chunks of about CHUNK_BYTES, one socket write each."""
    chunks: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        chunks.append(b"".join(pending))
    return chunks


def olivia_requests(data: DataSet) -> list[bytes]:
    """One ``SET k:v,k:v,...`` line per batch, keys percent-encoded (``:`` as ``%3A``).

    Built here rather than by ``Client.mset``, which bounds its lines at 1000
    items and 64 KiB: ``--batch`` keys per request is what this measures.
    """
    return [request_line(b"SET", pairs_payload([(data.key(i), data.value(i)) for i in batch]))
            for batch in data.batches()]


def redis_requests(data: DataSet) -> list[bytes]:
    """One RESP ``MSET k v k v ...`` per batch."""
    commands = []
    for batch in data.batches():
        args = [b"MSET"]
        for i in batch:
            args += [data.key(i), data.value(i)]
        commands.append(command(*args))
    return chunked(commands)


def load_olivia(port: int, lines: list[bytes], timeout: float) -> float:
    """Send the SET lines as one pipeline; the seconds from the first write to
    the last reply (queueing the lines and connecting come before the clock)."""
    with Client(HOST, port, timeout) as client:
        pipe = client.pipeline()
        for line in lines:
            if len(line) - 1 > client.max_line_bytes:  # refused, and the server hangs up
                raise BenchError(f"a SET line of {len(line) - 1} bytes is over the server's "
                                 f"max_line_bytes ({client.max_line_bytes}): lower --batch")
            pipe.raw(line)
        client.connect()
        started = time.perf_counter()
        replies: list[bytes] = pipe.execute()
        elapsed = time.perf_counter() - started
    for reply in replies:
        if not reply.startswith(b":SAT "):
            raise BenchError(f"unexpected reply during load: {reply[:200]!r}")
    return elapsed


def load_redis(port: int, chunks: list[bytes], replies: int, timeout: float) -> float:
    """Write ``chunks`` from a thread while reading ``replies`` replies here.

    Every reply must be ``+OK``.  Returns the seconds from the first write to
    the last reply.
    """
    conn = RedisConnection(HOST, port, timeout)
    try:
        def write_all() -> None:
            for chunk in chunks:
                conn.send(chunk)

        with ThreadPoolExecutor(max_workers=1) as pool:
            started = time.perf_counter()
            writer = pool.submit(write_all)
            try:
                for _ in range(replies):
                    reply = conn.read_reply()
                    if reply != b"OK":
                        raise BenchError(f"unexpected reply during load: {reply!r:.200}")
            except BaseException:
                # The server stops reading once its replies back up, which
                # would leave the writer blocked in sendall: unblock it now.
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
                raise
            elapsed = time.perf_counter() - started
            writer.result()  # re-raises a write error
        return elapsed
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def check_olivia(port: int, data: DataSet) -> dict[str, str]:
    """GET a sample of keys and INFO; return the INFO fields."""
    sample = data.sample()
    try:
        with Client(HOST, port, 60.0) as client:
            found = client.mget([data.key(i) for i in sample])
            fields = client.info()
    except OliviaError as exc:
        raise BenchError(f"olivia check failed: {exc}") from exc
    expected = {data.key(i): data.value(i) for i in sample}
    if found != expected:
        raise BenchError(f"olivia GET sample: expected {expected!r}, got {found!r}")
    if fields.get("keys") != str(data.keys):
        raise BenchError(f"olivia INFO keys={fields.get('keys')}, expected {data.keys}")
    return fields


def check_redis(port: int, data: DataSet) -> dict[str, str]:
    """GET a sample of keys and DBSIZE; return the INFO fields."""
    with RedisConnection(HOST, port, 60.0) as conn:
        for i in data.sample():
            value = conn.call(b"GET", data.key(i))
            if value != data.value(i):
                raise BenchError(f"redis GET {data.key(i)!r}: expected {data.value(i)!r}, "
                                 f"got {value!r}")
        size = conn.call(b"DBSIZE")
        if size != data.keys:
            raise BenchError(f"redis DBSIZE={size!r}, expected {data.keys}")
        info = conn.call(b"INFO")
    if not isinstance(info, bytes):
        raise BenchError(f"redis INFO: unexpected reply {info!r}")
    return redis_info_fields(info)


# --------------------------------------------------------------------------
# Measuring and reporting
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    server: str
    version: str
    rss_before: int
    rss_after: int
    rss_peak: int
    load_seconds: float
    notes: str = ""

    @property
    def delta(self) -> int:
        return self.rss_after - self.rss_before


def measure(process: ServerProcess, load: Callable[[], float], data: DataSet, settle: float,
            check: Callable[[int, DataSet], dict[str, str]]) -> tuple[int, int, int, float,
                                                                       dict[str, str]]:
    """Load one server with ``load()`` (its seconds); return RSS before, after,
    peak, load seconds and its INFO."""
    before = process.rss_bytes()
    try:
        seconds = load()
    except (OSError, OliviaError, ServerError, BenchError) as exc:
        process.check_running()  # a crash is the better message
        raise BenchError(f"loading {process.name} failed: {exc!r}") from exc
    time.sleep(settle)  # let the server drop connection buffers, finish rehashing
    after, peak = process.rss_bytes(), process.peak_rss_bytes()
    info = check(process.port, data)
    process.check_running()
    return before, after, peak, seconds, info


def mib(size: int) -> str:
    return f"{size / MIB:.1f}"


def render_table(results: Sequence[Result], keys: int) -> str:
    reference = results[-1].rss_after
    rows = [
        "| server | version | RSS before (MiB) | RSS after (MiB) | delta (MiB) | bytes/key "
        "| peak RSS (MiB) | load (s) | RSS after vs Redis |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        rows.append(
            f"| {r.server} | {r.version} | {mib(r.rss_before)} | {mib(r.rss_after)} "
            f"| {mib(r.delta)} | {r.delta / keys:.0f} | {mib(r.rss_peak)} "
            f"| {r.load_seconds:.3f} | {r.rss_after / reference:.2f}x |")
    return "\n".join(rows)


def machine_info() -> list[str]:
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- cpus: nproc={len(os.sched_getaffinity(0))} "
        f"({proc_field('/proc/cpuinfo', 'model name')})",
        f"- memory: {proc_field('/proc/meminfo', 'MemTotal')}",
        f"- os: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"- redis: {first_line([redis_binary(), '--version'])}",
    ]


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def _positive(text: str) -> int:
    number = int(text)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="RSS of Olivia vs redis-server holding the same keys (Linux only).")
    parser.add_argument("--keys", type=_positive, default=1_000_000,
                        help="keys to load into each server (default 1000000)")
    parser.add_argument("--value-size", type=_positive, default=16,
                        help="bytes per value (default 16)")
    parser.add_argument("--batch", type=_positive, default=100,
                        help="keys per SET / MSET request (default 100)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after the load before reading RSS (default 1)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="socket timeout in seconds during the load (default 120)")
    return parser


def run(args: argparse.Namespace) -> list[Result]:
    data = DataSet(args.keys, args.value_size, args.batch)
    print(f"building requests for {data.keys} keys ...", file=sys.stderr)
    olivia_lines = olivia_requests(data)
    redis_chunks = redis_requests(data)
    replies = len(data.batches())
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="olivia-bench-") as tmp:
        processes: list[ServerProcess] = []
        try:
            olivia = start_olivia(workdir=Path(tmp))
            olivia_port = olivia.port
            processes.append(olivia)
            redis = start_redis(workdir=Path(tmp))
            redis_port = redis.port
            processes.append(redis)

            print(f"loading olivia (pid {olivia.pid}, port {olivia_port}) ...", file=sys.stderr)
            before, after, peak, seconds, info = measure(
                olivia, lambda: load_olivia(olivia_port, olivia_lines, args.timeout), data,
                args.settle, check_olivia)
            results.append(Result(
                "olivia", f"{info.get('version', '?')} ({info.get('event_loop', '?')})",
                before, after, peak, seconds,
                f"INFO used_memory={mib(int(info.get('used_memory', '0')))} MiB"))

            print(f"loading redis (pid {redis.pid}, port {redis_port}) ...", file=sys.stderr)
            before, after, peak, seconds, info = measure(
                redis, lambda: load_redis(redis_port, redis_chunks, replies, args.timeout), data,
                args.settle, check_redis)
            results.append(Result(
                "redis", info.get("redis_version", "?"), before, after, peak, seconds,
                f"INFO used_memory={mib(int(info.get('used_memory', '0')))} MiB, "
                f"mem_fragmentation_ratio={info.get('mem_fragmentation_ratio', '?')}, "
                f"allocator={info.get('mem_allocator', '?')}"))
        finally:
            for process in reversed(processes):
                status = process.stop()
                if status != 0:
                    print(f"note: {process.name} exited with status {status}", file=sys.stderr)
    return results


def report(results: Sequence[Result], args: argparse.Namespace, wall: float) -> str:
    olivia, redis = results
    ratio = olivia.rss_after / redis.rss_after
    delta_ratio = olivia.delta / redis.delta if redis.delta > 0 else float("nan")
    verdict = "met" if ratio <= 2.0 else "NOT met"
    lines = [
        f"## Memory: {args.keys:,} keys, {args.value_size}-byte values",
        "",
        render_table(results, args.keys),
        "",
        f"- Olivia/Redis RSS after load: {ratio:.2f}x (target <= 2x: {verdict}); "
        f"ratio of deltas: {delta_ratio:.2f}x",
        *(f"- {r.server}: {r.notes}" for r in results if r.notes),
        f"- batch {args.batch} keys per request, settle {args.settle:g}s; "
        f"script wall time {wall:.1f}s",
        "",
        "Machine:",
        "",
        *machine_info(),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    results = run_or_exit(lambda: run(args), (BenchError, ServerError), "bench/memory.py",
                          "bench/memory.py: interrupted; servers stopped")
    print(report(results, args, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
