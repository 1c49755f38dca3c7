"""Memory benchmark: resident memory of Olivia vs Redis holding the same keys.

Run from the repository root::

    python bench/memory.py [--keys 1000000] [--value-size 16] [--batch 100]

In one run it starts an Olivia node (``python -m olivia --port 0``, this
working tree) and a ``redis-server`` (persistence off), both on 127.0.0.1
only, reads each process's RSS (``VmRSS`` in ``/proc/PID/status``), loads the
same keys ``key:0000000``, ``key:0000001``, ... with values of ``--value-size``
bytes into each over a pipelined connection (Olivia: ``SET k:v,...`` lines;
Redis: RESP ``MSET``), checks a sample of keys and the key counts, reads the
RSS again and prints a markdown table.  Both processes are stopped (SIGTERM,
then SIGKILL) whatever happens.  Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import signal
import socket
import subprocess
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

from bench.servers import (  # noqa: E402
    ServerError,
    ServerProcess,
    redis_binary,
    resp_command,
    start_olivia,
    start_redis,
)

HOST = "127.0.0.1"
MIB = 1024 * 1024
CHUNK_BYTES = 256 * 1024  # about this many request bytes per socket write


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --------------------------------------------------------------------------
# Sockets
# --------------------------------------------------------------------------


class BufferedSocket:
    """A blocking TCP connection to 127.0.0.1 with a read buffer."""

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self._buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise BenchError(f"server closed the connection; unread: {bytes(self._buffer[:200])!r}")
        self._buffer += chunk

    def read_line(self) -> bytes:
        """One line without its LF (nor a CR before it)."""
        while (end := self._buffer.find(b"\n")) < 0:
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line.removesuffix(b"\r")

    def read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def close(self) -> None:
        self.sock.close()


class OliviaClient(BufferedSocket):
    def __init__(self, port: int, timeout: float = 60.0) -> None:
        super().__init__(port, timeout)

    def request(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\n")
        return self.read_line()

    def __enter__(self) -> OliviaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RespClient(BufferedSocket):
    """Just enough RESP2 for PING, GET, DBSIZE and INFO."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        super().__init__(port, timeout)

    def command(self, *args: bytes) -> bytes | int | None:
        self.sock.sendall(resp_command(*args))
        return self.read_reply()

    def read_reply(self) -> bytes | int | None:
        line = self.read_line()
        kind, body = line[:1], line[1:]
        if kind == b"+":
            return body
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            data = self.read_exact(size + 2)
            return data[:-2]
        if kind == b"-":
            raise BenchError(f"redis error: {body.decode('utf-8', 'replace')}")
        raise BenchError(f"unexpected RESP reply {line[:80]!r}")

    def __enter__(self) -> RespClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    """``SET k:v,k:v,...`` lines, keys percent-encoded (``:`` as ``%3A``)."""
    from olivia.protocol import encode_field

    return chunked([
        b"SET " + b",".join(encode_field(data.key(i)) + b":" + encode_field(data.value(i))
                            for i in batch) + b"\n"
        for batch in data.batches()
    ])


def redis_requests(data: DataSet) -> list[bytes]:
    """One RESP ``MSET k v k v ...`` per batch."""
    commands = []
    for batch in data.batches():
        args = [b"MSET"]
        for i in batch:
            args += [data.key(i), data.value(i)]
        commands.append(resp_command(*args))
    return chunked(commands)


def pipelined_load(port: int, chunks: list[bytes], replies: int, ok_prefix: bytes,
                   timeout: float) -> float:
    """Write ``chunks`` from a thread while reading ``replies`` reply lines here.

    Every reply must start with ``ok_prefix``.  Returns the seconds from the
    first write to the last reply.
    """
    conn = BufferedSocket(port, timeout)
    try:
        def write_all() -> None:
            for chunk in chunks:
                conn.sock.sendall(chunk)

        with ThreadPoolExecutor(max_workers=1) as pool:
            started = time.perf_counter()
            writer = pool.submit(write_all)
            try:
                for _ in range(replies):
                    line = conn.read_line()
                    if not line.startswith(ok_prefix):
                        raise BenchError(f"unexpected reply during load: {line[:200]!r}")
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
    from olivia.errors import ProtocolError
    from olivia.protocol import Got, InfoReply, encode_field, parse_reply

    sample = data.sample()
    with OliviaClient(port) as client:
        try:
            reply = parse_reply(client.request(
                b"GET " + b",".join(encode_field(data.key(i)) for i in sample)))
            info = parse_reply(client.request(b"INFO"))
        except ProtocolError as exc:
            raise BenchError(f"olivia sent a malformed reply: {exc}") from exc
    expected = tuple((data.key(i), data.value(i)) for i in sample)
    if not isinstance(reply, Got) or reply.items != expected:
        raise BenchError(f"olivia GET sample: expected {expected!r}, got {reply!r}")
    if not isinstance(info, InfoReply):
        raise BenchError(f"olivia INFO: unexpected reply {info!r}")
    fields = info.as_dict()
    if fields.get("keys") != str(data.keys):
        raise BenchError(f"olivia INFO keys={fields.get('keys')}, expected {data.keys}")
    return fields


def parse_redis_info(text: bytes) -> dict[str, str]:
    fields = {}
    for line in text.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[name] = value
    return fields


def check_redis(port: int, data: DataSet) -> dict[str, str]:
    """GET a sample of keys and DBSIZE; return the INFO fields."""
    with RespClient(port) as client:
        for i in data.sample():
            value = client.command(b"GET", data.key(i))
            if value != data.value(i):
                raise BenchError(f"redis GET {data.key(i)!r}: expected {data.value(i)!r}, "
                                 f"got {value!r}")
        size = client.command(b"DBSIZE")
        if size != data.keys:
            raise BenchError(f"redis DBSIZE={size!r}, expected {data.keys}")
        info = client.command(b"INFO")
    if not isinstance(info, bytes):
        raise BenchError(f"redis INFO: unexpected reply {info!r}")
    return parse_redis_info(info)


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


def measure(process: ServerProcess, port: int, data: DataSet, chunks: list[bytes],
            ok_prefix: bytes, settle: float, timeout: float,
            check: Callable[[int, DataSet], dict[str, str]]) -> tuple[int, int, int, float,
                                                                       dict[str, str]]:
    """Load one server; return RSS before, after, peak, load seconds and its INFO."""
    before = process.rss_bytes()
    try:
        seconds = pipelined_load(port, chunks, len(data.batches()), ok_prefix, timeout)
    except (OSError, BenchError) as exc:
        process.check_running()  # a crash is the better message
        raise BenchError(f"loading {process.name} failed: {exc!r}") from exc
    time.sleep(settle)  # let the server drop connection buffers, finish rehashing
    after, peak = process.rss_bytes(), process.peak_rss_bytes()
    info = check(port, data)
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


def first_line(cmd: Sequence[str]) -> str:
    """The first line a command prints, for version strings."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unavailable"


def proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return "unknown"


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
    olivia_chunks = olivia_requests(data)
    redis_chunks = redis_requests(data)
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
                olivia, olivia_port, data, olivia_chunks, b":SAT ", args.settle, args.timeout,
                check_olivia)
            results.append(Result(
                "olivia", f"{info.get('version', '?')} ({info.get('event_loop', '?')})",
                before, after, peak, seconds,
                f"INFO used_memory={mib(int(info.get('used_memory', '0')))} MiB"))

            print(f"loading redis (pid {redis.pid}, port {redis_port}) ...", file=sys.stderr)
            before, after, peak, seconds, info = measure(
                redis, redis_port, data, redis_chunks, b"+OK", args.settle, args.timeout,
                check_redis)
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so run()'s finally still stops the servers.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    try:
        results = run(args)
    except (BenchError, ServerError) as exc:
        print(f"bench/memory.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/memory.py: interrupted; servers stopped", file=sys.stderr)
        return 130
    print(report(results, args, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
