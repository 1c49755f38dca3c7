"""olivia-bench: a throughput and latency benchmark for Olivia, modelled on redis-benchmark.

It opens ``-c`` connections to a server, split over ``-j`` client processes,
and keeps each connection busy with batches of ``-P`` pipelined requests: a
connection sends its next batch as soon as every reply of the previous one has
arrived.  Keys are ``key_000000000042`` with the number uniform in
``[0, -r)``; values are ``-d`` random printable ASCII bytes.  Examples::

    olivia-bench                                 # SET and GET, 100000 requests each
    olivia-bench -p 5454 -c 50 -P 16 -t get --duration 5   # GET for 5 seconds
    olivia-bench -t set,get,mget,mixed --csv     # one CSV row per test
    olivia-bench -t ping,set,get -q              # one line per test
    olivia-bench --redis -p 6379 -P 16           # the same workload against redis-server

Tests (``-t``): ``ping`` (``PING``), ``set`` (``SET k:v``), ``get``
(``GET k``), ``setex`` (``SETEX k:v:ttl``), ``del`` (``DEL k``), ``mget``
(``GET k1,...,kN``), ``mixed`` (GETs and SETs, ``--mixed-ratio`` of them
GETs), ``incr`` (``INCR counter:k``: in a cluster, run at each key's home),
and ``populate`` (only write every key once, as ``--populate`` does).
With ``--redis`` the same workload is sent over RESP (PING, SET, GET, SETEX,
DEL, MGET, INCR).

Each test runs for ``-n`` requests or, with ``--duration``, for that many
seconds: the count or the time applies to each test, not to the whole run.

Before a test that reads (get, mget, mixed, del) every key ``0..r-1`` is
written once with large pipelined multi-key writes, so that reads hit
(``--no-populate`` skips that).

Per test it reports requests, seconds, requests per second, p50/p99/p99.9
latency (from sending a batch to receiving its last reply; every request of a
batch gets that sample, as in redis-benchmark) and the client's own CPU use.
If a client process used more than 90% of a core the result says
``client-bound``: the server may be faster than shown, so add ``-j`` or
pipeline deeper.

Exit status: 0 when every request succeeded, 1 when the server answered an
error or could not be reached (one line on stderr), 2 for bad flags.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import random
import select
import selectors
import socket
import ssl
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, NoReturn, Protocol

from olivia.core.errors import ProtocolError
from olivia.core.requests import TtlItem
from olivia.protocols.line.replies import parse_reply
from olivia.protocols.line.requests import keys_payload, pairs_payload, request_line, ttl_payload
from olivia.protocols.resp.codec import ReplyCounter as RespReplies
from olivia.protocols.resp.codec import RespError
from olivia.protocols.resp.codec import command as resp_command

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

TESTS = ("ping", "set", "get", "setex", "del", "mget", "mixed", "incr", "populate")
# Tests that should find the keys: the keyspace is written first.
READ_TESTS = frozenset({"get", "mget", "mixed", "del"})
CLIENT_BOUND_PCT = 90.0
CSV_FIELDS = ("test", "requests", "seconds", "ops_per_sec", "p50_ms", "p99_ms", "p999_ms",
              "client_cpu_pct", "client_bound", "max_worker_cpu_pct", "errors", "pipeline",
              "connections", "processes", "protocol")

# Printable ASCII without the bytes Olivia reserves (% , :), so a value needs
# no percent-encoding and a reply line never contains a raw ':' inside one.
VALUE_ALPHABET = bytes(b for b in range(0x20, 0x7F) if b not in b"%,:")
POOL_REQUESTS = 32768  # distinct pre-encoded requests per worker, cycled
POOL_MAX_BYTES = 64 << 20  # ...unless they would take more memory than this
POPULATE_KEYS_PER_REQUEST = 1000
POPULATE_WINDOW_BYTES = 4 << 20  # request bytes in flight while populating
RECV_BYTES = 65536
STALL_SECONDS = 10.0  # no reply for this long on a busy connection fails the run
READY_TIMEOUT = 120.0  # seconds a worker may take to connect and build requests


class BenchError(Exception):
    """The run cannot go on (server unreachable, connection lost): one line for stderr."""


# --------------------------------------------------------------------------
# Reply counting (sans I/O, so it can be tested on byte strings)
# --------------------------------------------------------------------------


class ReplyCounter(Protocol):
    errors: int
    first_error: str

    def feed(self, data: bytes) -> int:
        """Take received bytes; return how many replies they completed."""
        ...


class OliviaReplies:
    """Counts Olivia reply lines in a byte stream, and the ERR replies among them.

    Every reply is one LF-terminated line, and keys and values are
    percent-encoded, so counting LF bytes is exact.  An ``ERR`` reply contains
    ``:ERR`` (``TAG:ERR``); so may a ``GOT`` line whose value starts with
    ``ERR``, so lines with that marker are parsed to be sure.
    """

    __slots__ = ("_partial", "errors", "first_error")

    def __init__(self) -> None:
        self._partial = b""
        self.errors = 0
        self.first_error = ""

    def feed(self, data: bytes) -> int:
        if self._partial:
            data = self._partial + data
            self._partial = b""
        if data[-1:] != b"\n":  # a reply cut between two reads: keep its start
            cut = data.rfind(b"\n") + 1
            self._partial = data[cut:]
            data = data[:cut]
        if b":ERR" in data:
            self._find_errors(data)
        return data.count(b"\n")

    def _find_errors(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if b":ERR" not in line:
                continue
            try:
                reply = parse_reply(line)
            except ProtocolError:
                continue
            if reply.is_error:
                self.errors += 1
                if not self.first_error:
                    self.first_error = reply.payload.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# Workloads: pre-encoded request batches
# --------------------------------------------------------------------------


def key_of(index: int) -> bytes:
    """``key_000000000042``: no reserved byte, so no percent-encoding on either protocol."""
    return b"key_%012d" % index


@dataclass(frozen=True)
class Workload:
    """What every connection of one test sends; pickled to the worker processes."""

    test: str
    redis: bool
    pipeline: int
    keyspace: int
    value_size: int
    mget_keys: int
    ttl: float
    mixed_ratio: float


class _Values:
    """Random values as slices of one random blob: cheap to draw, all distinct enough."""

    def __init__(self, rng: random.Random, size: int) -> None:
        block = bytes(rng.choices(VALUE_ALPHABET, k=65536))
        length = max(len(block), 2 * size)
        self._blob = (block * (length // len(block) + 1))[:length]  # -d may be megabytes
        self._size = size
        self._rng = rng

    def draw(self) -> bytes:
        start = self._rng.randrange(len(self._blob) - self._size + 1)
        return self._blob[start:start + self._size]


def request_maker(work: Workload, rng: random.Random) -> Callable[[], bytes]:
    """A function returning one random request of ``work.test``, encoded."""
    values = _Values(rng, work.value_size)
    keyspace = work.keyspace
    randrange = rng.randrange
    ttl = work.ttl

    def key() -> bytes:
        return key_of(randrange(keyspace))

    if work.redis:
        # SETEX takes whole seconds; PSETEX milliseconds, for a fractional --ttl.
        setex = ((b"SETEX", b"%d" % ttl) if ttl == int(ttl)
                 else (b"PSETEX", b"%d" % max(1, round(ttl * 1000))))
        makers: dict[str, Callable[[], bytes]] = {
            "ping": lambda: resp_command(b"PING"),
            "set": lambda: resp_command(b"SET", key(), values.draw()),
            "get": lambda: resp_command(b"GET", key()),
            "setex": lambda: resp_command(setex[0], key(), setex[1], values.draw()),
            "del": lambda: resp_command(b"DEL", key()),
            "mget": lambda: resp_command(b"MGET", *(key() for _ in range(work.mget_keys))),
            "incr": lambda: resp_command(b"INCR", b"counter:" + key()),
        }
    else:
        makers = {
            "ping": lambda: request_line(b"PING"),
            "set": lambda: request_line(b"SET", pairs_payload(((key(), values.draw()),))),
            "get": lambda: request_line(b"GET", keys_payload((key(),))),
            "setex": lambda: request_line(
                b"SETEX", ttl_payload((TtlItem.of(key(), values.draw(), ttl),))),
            "del": lambda: request_line(b"DEL", keys_payload((key(),))),
            "mget": lambda: request_line(
                b"GET", keys_payload(key() for _ in range(work.mget_keys))),
            # Keys of their own: a populated key's value is no integer.
            "incr": lambda: request_line(b"INCR", keys_payload((b"counter:" + key(),))),
        }
    get, set_ = makers["get"], makers["set"]
    ratio = work.mixed_ratio
    makers["mixed"] = lambda: get() if rng.random() < ratio else set_()
    return makers[work.test]


def build_pool(work: Workload, rng: random.Random, batches_wanted: int) -> list[bytes]:
    """Pre-encoded batches of ``pipeline`` requests, each sent with one send()."""
    make = request_maker(work, rng)
    size = work.pipeline
    first = b"".join(make() for _ in range(size))
    keys_per_request = work.mget_keys if work.test == "mget" else 1
    count = max(64, POOL_REQUESTS // (size * keys_per_request))
    count = min(count, max(1, POOL_MAX_BYTES // len(first)))
    if batches_wanted > 0:
        count = min(count, batches_wanted)
    return [first, *(b"".join(make() for _ in range(size)) for _ in range(count - 1))]


# --------------------------------------------------------------------------
# One worker process: a tight epoll loop over non-blocking sockets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One worker's share of one test."""

    work: Workload
    host: str
    port: int
    connections: int
    batches: int  # batches to send in all (0: until the deadline)
    duration: float  # seconds; 0 when ``batches`` bounds the run
    seed: int
    access: Access = field(default_factory=lambda: Access())


@dataclass
class WorkerResult:
    requests: int = 0
    errors: int = 0
    first_error: str = ""
    start_ns: int = 0
    end_ns: int = 0
    cpu_seconds: float = 0.0
    # One latency (ns) per completed batch; each stands for ``pipeline`` requests.
    latencies: array[int] = field(default_factory=lambda: array("q"))
    failure: str = ""  # the run broke off (connection lost, stalled): why


class _Poller:
    """epoll when there is one (a bound ``poll`` with no wrapper in the hot loop),
    else the selectors module."""

    def __init__(self) -> None:
        self.read_mask: int
        self.write_mask: int
        self.poll: Callable[[float], list[tuple[int, int]]]
        self.register: Callable[[int, int], None]
        self.modify: Callable[[int, int], None]
        self.close: Callable[[], None]
        if hasattr(select, "epoll"):
            epoll = select.epoll()
            self.read_mask, self.write_mask = select.EPOLLIN, select.EPOLLOUT
            self.poll = epoll.poll
            self.register, self.modify = epoll.register, epoll.modify
            self.close = epoll.close
        else:
            selector = selectors.DefaultSelector()
            self.read_mask, self.write_mask = selectors.EVENT_READ, selectors.EVENT_WRITE

            def poll(timeout: float) -> list[tuple[int, int]]:
                return [(key.fd, mask) for key, mask in selector.select(timeout)]

            def modify(fd: int, mask: int) -> None:
                selector.modify(fd, mask)

            def register(fd: int, mask: int) -> None:
                selector.register(fd, mask)

            self.poll, self.register, self.modify = poll, register, modify
            self.close = selector.close


@dataclass(frozen=True)
class Access:
    """How to reach the server: a password (sent first: AUTH), TLS.  Plain
    values, so that a Job pickles; the TLS context is made in each worker."""

    password: str | None = None
    tls: bool = False
    cacert: str | None = None
    insecure: bool = False
    redis: bool = False

    def context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.cacert)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def connect(host: str, port: int, timeout: float = 10.0,
            access: Access | None = None) -> socket.socket:
    """A connection with Nagle off (pipelined batches go out at once), over
    TLS and authenticated as ``access`` says."""
    access = access or Access()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        context = access.context()
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
    except OSError as exc:
        raise BenchError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if access.password is not None:
        _authenticate(sock, access)
    return sock


def _authenticate(sock: socket.socket, access: Access) -> None:
    password = (access.password or "").encode()
    sock.sendall(resp_command(b"AUTH", password) if access.redis else b"AUTH " + password + b"\n")
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise BenchError("the server closed the connection after AUTH")
        data += chunk
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if line not in (b":AUTHED", b"+OK"):
        raise BenchError(f"AUTH refused: {line.decode('utf-8', 'replace')[:120]}")


def _io_of(sock: socket.socket) -> tuple[Callable[[int], bytes], Callable[[bytes], int]]:
    """recv and send that raise BlockingIOError when they cannot go on now,
    over TLS as over TCP (a TLS socket says SSLWantRead/WriteError, and may
    hold decrypted bytes the poller does not see: drained at once)."""
    if not isinstance(sock, ssl.SSLSocket):
        return sock.recv, sock.send
    tls = sock

    def recv(size: int) -> bytes:
        try:
            data = tls.recv(size)
            while tls.pending():
                data += tls.recv(size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None
        return data

    def send(data: bytes) -> int:
        try:
            return tls.send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None

    return recv, send


def drive(socks: Sequence[socket.socket], pool: Sequence[bytes], counters: Sequence[ReplyCounter],
          pipeline: int, batches: int, duration: float) -> WorkerResult:
    """Keep every connection busy with one batch in flight until ``batches`` were
    sent or ``duration`` seconds passed; return what was measured.

    The loop is written for speed: per ready socket one recv, one count, and
    when the batch is complete one latency sample and one send.
    """
    result = WorkerResult()
    poller = _Poller()
    top = max(s.fileno() for s in socks) + 1
    recv: list[Callable[[int], bytes]] = [bytes] * top  # placeholders, filled below
    send: list[Callable[[bytes], int]] = [len] * top
    feed: list[Callable[[bytes], int]] = [len] * top
    waiting = [0] * top  # replies still due for the batch in flight
    sent_at = [0] * top
    cursor = [0] * top  # next pool index per connection
    unsent: dict[int, bytes] = {}  # the rest of a batch the socket did not take at once
    pool_len = len(pool)
    for index, (sock, counter) in enumerate(zip(socks, counters, strict=True)):
        sock.setblocking(False)
        fd = sock.fileno()
        (recv[fd], send[fd]), feed[fd] = _io_of(sock), counter.feed
        cursor[fd] = index * pool_len // len(socks)
        poller.register(fd, poller.read_mask)
    latencies: list[int] = []
    record = latencies.append
    clock = time.perf_counter_ns
    read_mask, write_mask = poller.read_mask, poller.write_mask
    poll, modify = poller.poll, poller.modify
    stall_ns = int(STALL_SECONDS * 1e9)

    cpu_start = time.process_time()
    start = clock()
    deadline = start + int(duration * 1e9) if duration > 0 else 0
    sent = 0
    active = 0

    def send_batch(fd: int, now: int) -> None:
        index = cursor[fd]
        batch = pool[index]
        cursor[fd] = index + 1 if index + 1 < pool_len else 0
        waiting[fd] = pipeline
        sent_at[fd] = now
        try:
            done = send[fd](batch)
        except BlockingIOError:
            done = 0
        if done < len(batch):
            unsent[fd] = batch[done:]
            modify(fd, read_mask | write_mask)

    try:
        for sock in socks:
            if batches and sent >= batches:
                break
            send_batch(sock.fileno(), clock())
            sent += 1
            active += 1
        last_progress = clock()
        while active:
            events = poll(1.0)
            if not events:
                if clock() - last_progress > stall_ns:
                    raise BenchError(f"no reply for {STALL_SECONDS:.0f}s")
                continue
            for fd, mask in events:
                if mask & write_mask:
                    rest = unsent.pop(fd, b"")
                    try:
                        done = send[fd](rest)
                    except BlockingIOError:
                        done = 0
                    if done < len(rest):
                        unsent[fd] = rest[done:]
                    else:
                        modify(fd, read_mask)
                    if not mask & ~write_mask:
                        continue
                try:
                    data = recv[fd](RECV_BYTES)
                except BlockingIOError:
                    continue
                if not data:
                    raise BenchError("the server closed a connection")
                left = waiting[fd] - feed[fd](data)
                if left > 0:
                    waiting[fd] = left
                    continue
                if left < 0:
                    raise BenchError("the server sent more replies than requests")
                now = clock()
                record(now - sent_at[fd])
                last_progress = now
                if (batches and sent >= batches) or (deadline and now >= deadline):
                    waiting[fd] = 0
                    active -= 1
                    continue
                send_batch(fd, now)
                sent += 1
    except (BenchError, RespError, OSError) as exc:
        result.failure = str(exc) if isinstance(exc, (BenchError, RespError)) else (
            f"connection error: {exc.strerror or exc}")
    finally:
        result.end_ns = clock()
        result.cpu_seconds = time.process_time() - cpu_start
        poller.close()
    result.start_ns = start
    result.requests = len(latencies) * pipeline
    result.latencies = array("q", latencies)
    result.errors = sum(c.errors for c in counters)
    result.first_error = next((c.first_error for c in counters if c.first_error), "")
    return result


def _counter(redis: bool) -> ReplyCounter:
    return RespReplies() if redis else OliviaReplies()


def run_job(job: Job, ready: Callable[[], bool]) -> WorkerResult:
    """Connect, build the requests, call ``ready`` (False: give up), then drive."""
    work = job.work
    pool = build_pool(work, random.Random(job.seed), job.batches)
    socks: list[socket.socket] = []
    try:
        for _ in range(job.connections):
            socks.append(connect(job.host, job.port, access=job.access))
        if not ready():
            return WorkerResult(failure="cancelled")
        counters = [_counter(work.redis) for _ in socks]
        return drive(socks, pool, counters, work.pipeline, job.batches, job.duration)
    finally:
        for sock in socks:
            sock.close()


def worker_main(conn: Connection, siblings: Sequence[Connection] = ()) -> None:
    """A client process: runs the jobs the parent sends until it sends None.

    ``siblings`` are the parent's ends of this worker's pipe and of those of
    the workers forked before it, inherited by fork: closed at once, so that
    when the parent dies every worker's pipe breaks and no worker waits
    forever on a full one.
    """
    for sibling in siblings:
        sibling.close()
    try:
        while True:
            job = conn.recv()
            if job is None:
                return

            def ready() -> bool:
                conn.send(("ready", None))
                go: bool = conn.recv()  # the parent starts every worker's clock together
                return go

            try:
                result = run_job(job, ready)
            except BenchError as exc:
                result = WorkerResult(failure=str(exc))
            conn.send(("done", result))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return  # the parent went away or Ctrl-C: nothing left to report


class Workers:
    """``count`` client processes, kept for all the tests of one run."""

    def __init__(self, count: int) -> None:
        # fork starts a worker in milliseconds; spawn works too (worker_main is
        # top level and everything sent to it pickles).
        forking = "fork" in multiprocessing.get_all_start_methods()
        context = (multiprocessing.get_context("fork") if forking
                   else multiprocessing.get_context("spawn"))
        self._pipes: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent, child = context.Pipe()
            inherited = [*self._pipes, parent] if forking else []
            proc = context.Process(target=worker_main, args=(child, inherited), daemon=True,
                                   name=f"olivia-bench-{index}")
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)

    def run(self, jobs: Sequence[Job]) -> list[WorkerResult]:
        pipes = self._pipes[:len(jobs)]
        for pipe, job in zip(pipes, jobs, strict=True):
            pipe.send(job)
        early: dict[int, WorkerResult] = {}
        for index, pipe in enumerate(pipes):
            if not pipe.poll(READY_TIMEOUT):
                raise BenchError(f"client process {index} did not get ready")
            kind, payload = pipe.recv()
            if kind == "done":  # it failed before it was ready
                early[index] = payload
        go = not early
        for index, pipe in enumerate(pipes):
            if index not in early:
                pipe.send(go)
        results = []
        for index, pipe in enumerate(pipes):
            if index in early:
                results.append(early[index])
                continue
            try:
                kind, payload = pipe.recv()
            except EOFError:
                raise BenchError(f"client process {index} died") from None
            results.append(payload)
        return results

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self._procs:
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
        for pipe in self._pipes:
            pipe.close()


# --------------------------------------------------------------------------
# Populating the keyspace
# --------------------------------------------------------------------------


def populate_requests(redis: bool, keyspace: int, value_size: int,
                      rng: random.Random) -> Iterator[bytes]:
    """Large multi-key writes of every key 0..keyspace-1 (Olivia SET, Redis MSET)."""
    values = _Values(rng, value_size)
    for start in range(0, keyspace, POPULATE_KEYS_PER_REQUEST):
        keys = range(start, min(start + POPULATE_KEYS_PER_REQUEST, keyspace))
        if redis:
            args = [b"MSET"]
            for i in keys:
                args += (key_of(i), values.draw())
            yield resp_command(*args)
        else:
            yield request_line(b"SET", pairs_payload(tuple((key_of(i), values.draw())
                                                         for i in keys)))


def populate(host: str, port: int, redis: bool, keyspace: int, value_size: int,
             seed: int, access: Access | None = None) -> float:
    """Write every key once over one pipelined connection; the seconds it took."""
    requests = list(populate_requests(redis, keyspace, value_size, random.Random(seed)))
    counter = _counter(redis)
    started = time.perf_counter()
    with connect(host, port, access=access) as sock, \
            selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        recv, send = _io_of(sock)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        pending = iter(requests)
        out = b""
        in_flight = 0  # request bytes sent whose replies have not all arrived
        sizes: list[int] = []
        replies = 0
        last_progress = time.monotonic()
        while replies < len(requests):
            want_write = bool(out) or (in_flight < POPULATE_WINDOW_BYTES
                                       and len(sizes) < len(requests))
            selector.modify(sock, selectors.EVENT_READ
                            | (selectors.EVENT_WRITE if want_write else 0))
            events = selector.select(1.0)
            if not events and time.monotonic() - last_progress > STALL_SECONDS:
                raise BenchError(f"populate: no reply for {STALL_SECONDS:.0f}s")
            for _, mask in events:
                if mask & selectors.EVENT_WRITE:
                    if not out:
                        request = next(pending, b"")
                        if request:
                            sizes.append(len(request))
                            in_flight += len(request)
                        out = request
                    if out:
                        with contextlib.suppress(BlockingIOError):
                            out = out[send(out):]
                if mask & selectors.EVENT_READ:
                    try:
                        data = recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise BenchError("populate: the server closed the connection")
                    got = counter.feed(data)
                    if replies + got > len(sizes):
                        raise BenchError("populate: more replies than requests")
                    for _ in range(got):
                        in_flight -= sizes[replies]
                        replies += 1
                    last_progress = time.monotonic()
    if counter.errors:
        raise BenchError(f"populate: {counter.errors} error replies, the first: "
                         f"{counter.first_error}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    test: str
    requests: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    client_cpu_pct: float  # all client processes together, in % of one core
    max_worker_cpu_pct: float  # the busiest client process, in % of one core
    errors: int
    first_error: str
    pipeline: int
    connections: int
    processes: int
    protocol: str

    @property
    def ops_per_sec(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_bound(self) -> bool:
        return self.max_worker_cpu_pct > CLIENT_BOUND_PCT

    def csv_row(self) -> dict[str, str]:
        def ms(value: float | None) -> str:
            return "" if value is None else f"{value:.3f}"

        return {
            "test": self.test, "requests": str(self.requests), "seconds": f"{self.seconds:.3f}",
            "ops_per_sec": f"{self.ops_per_sec:.1f}", "p50_ms": ms(self.p50_ms),
            "p99_ms": ms(self.p99_ms), "p999_ms": ms(self.p999_ms),
            "client_cpu_pct": f"{self.client_cpu_pct:.1f}",
            "client_bound": "yes" if self.client_bound else "no",
            "max_worker_cpu_pct": f"{self.max_worker_cpu_pct:.1f}",
            "errors": str(self.errors), "pipeline": str(self.pipeline),
            "connections": str(self.connections), "processes": str(self.processes),
            "protocol": self.protocol,
        }


def percentile(ordered: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted samples."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def merge(test: str, results: Sequence[WorkerResult], jobs: Sequence[Job]) -> TestResult:
    samples = sorted(s for r in results for s in r.latencies)
    start = min(r.start_ns for r in results)
    end = max(r.end_ns for r in results)
    seconds = (end - start) / 1e9
    cpu = sum(r.cpu_seconds for r in results)
    busiest = max((r.cpu_seconds / ((r.end_ns - r.start_ns) / 1e9)
                   for r in results if r.end_ns > r.start_ns), default=0.0)

    def ms(fraction: float) -> float | None:
        return percentile(samples, fraction) / 1e6 if samples else None

    work = jobs[0].work
    return TestResult(
        test=test, requests=sum(r.requests for r in results), seconds=seconds,
        p50_ms=ms(0.50), p99_ms=ms(0.99), p999_ms=ms(0.999),
        client_cpu_pct=100 * cpu / seconds if seconds > 0 else 0.0,
        max_worker_cpu_pct=100 * busiest, errors=sum(r.errors for r in results),
        first_error=next((r.first_error for r in results if r.first_error), ""),
        pipeline=work.pipeline, connections=sum(j.connections for j in jobs),
        processes=len(jobs), protocol="redis" if work.redis else "olivia")


def human(result: TestResult, value_size: int, keyspace: int, quiet: bool) -> str:
    """A redis-benchmark style block (or its one-line ``-q`` form)."""
    name = result.test.upper()
    p50 = "-" if result.p50_ms is None else f"{result.p50_ms:.3f}"
    bound = (f"client-bound: the client used {result.max_worker_cpu_pct:.0f}% of a core; "
             "the server may be faster than shown")
    if quiet:
        line = f"{name}: {result.ops_per_sec:.2f} requests per second, p50={p50} msec"
        return line + (f"  ({bound})" if result.client_bound else "")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"====== {name} ======",
        f"  {result.requests} requests completed in {result.seconds:.2f} seconds",
        f"  {result.connections} parallel clients in {result.processes} processes, "
        f"pipeline {result.pipeline}",
        f"  {value_size} bytes payload, keyspace {keyspace}, {result.protocol} protocol",
        "",
        "Summary:",
        f"  throughput summary: {result.ops_per_sec:.2f} requests per second",
        "  latency summary (msec):",
        f"  {'p50':>9} {'p99':>9} {'p99.9':>9}",
        f"  {ms(result.p50_ms):>9} {ms(result.p99_ms):>9} {ms(result.p999_ms):>9}",
        f"  client CPU: {result.client_cpu_pct:.0f}% of a core in all, busiest process "
        f"{result.max_worker_cpu_pct:.0f}%",
    ]
    if result.client_bound:
        lines.append(f"  {bound}")
    if result.errors:
        lines.append(f"  ERRORS: {result.errors}, the first: {result.first_error}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"olivia-bench: {message} (see olivia-bench --help)\n")


def _number(kind: Callable[[str], Any], low: float, high: float = math.inf
            ) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            bound = f"from {low:g}" + ("" if high == math.inf else f" to {high:g}")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


def _tests(text: str) -> list[str]:
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TESTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown test {', '.join(unknown) or repr(text)}; choose from {', '.join(TESTS)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="olivia-bench", add_help=False,
        description="Throughput and latency of an Olivia node (or redis-server, --redis), "
                    "in the manner of redis-benchmark.",
        epilog=f"tests: {', '.join(TESTS)}.  Exit status: 0 ok, 1 request errors or server "
               "unreachable, 2 bad flags.")
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("-h", dest="host", default="127.0.0.1", metavar="HOST",
                   help="server host (default 127.0.0.1)")
    p.add_argument("-p", dest="port", type=_number(int, 1, 65535), default=5454, metavar="PORT",
                   help="server port (default 5454)")
    p.add_argument("-c", dest="connections", type=_number(int, 1, 10000), default=50,
                   metavar="CONNECTIONS", help="parallel connections (default 50)")
    p.add_argument("-P", dest="pipeline", type=_number(int, 1, 100000), default=1,
                   metavar="PIPELINE", help="requests per batch in flight on a connection "
                   "(default 1: no pipelining)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("-n", dest="requests", type=_number(int, 1), default=100000,
                        metavar="REQUESTS", help="requests of each test (default 100000)")
    amount.add_argument("--duration", type=_number(float, 0.01, 86400), metavar="SECONDS",
                        help="run each test for SECONDS (each test, not the whole run) "
                             "instead of -n requests")
    p.add_argument("-r", dest="keyspace", type=_number(int, 1, 10**12), default=100000,
                   metavar="KEYSPACE", help="keys are drawn from 0..KEYSPACE-1 (default 100000)")
    p.add_argument("-d", dest="value_size", type=_number(int, 0, 64 << 20), default=16,
                   metavar="VALUE_SIZE", help="value size in bytes (default 16)")
    p.add_argument("-t", dest="tests", type=_tests, default=["set", "get"], metavar="TESTS",
                   help=f"comma-separated tests (default set,get): {','.join(TESTS)}")
    p.add_argument("-j", "--processes", type=_number(int, 1, 256), default=2, metavar="N",
                   help="client processes sharing the connections (default 2)")
    p.add_argument("--csv", action="store_true",
                   help="print a CSV header and one row per test instead of the summary")
    p.add_argument("--redis", action="store_true",
                   help="talk RESP to a redis-server at -h/-p with the same workload")
    p.add_argument("--populate", action=argparse.BooleanOptionalAction, default=True,
                   help="write every key once before tests that read (default on)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--mget-keys", type=_number(int, 1, 100000), default=10, metavar="N",
                   help="keys per MGET request (default 10)")
    p.add_argument("--ttl", type=_number(float, 0.001, 3153600000), default=60.0,
                   metavar="SECONDS", help="TTL of the setex test (default 60)")
    p.add_argument("--mixed-ratio", type=_number(float, 0.0, 1.0), default=0.9,
                   metavar="FRACTION", help="share of GETs in the mixed test (default 0.9)")
    p.add_argument("-a", dest="password", default=os.environ.get("OLIVIA_PASSWORD") or None,
                   metavar="PASSWORD", help="send AUTH PASSWORD on every connection first "
                   "(default $OLIVIA_PASSWORD)")
    p.add_argument("--tls", action="store_true", help="connect over TLS")
    p.add_argument("--cacert", metavar="FILE", help="CA (PEM) of the server's certificate "
                   "(implies --tls)")
    p.add_argument("--insecure", action="store_true",
                   help="over TLS, do not verify the server's certificate")
    p.add_argument("-q", dest="quiet", action="store_true",
                   help="quiet, as redis-benchmark -q: one line per test ('SET: N requests "
                        "per second, p50=X msec'), no populate timing")
    return p


def probe(host: str, port: int, redis: bool, access: Access | None = None) -> None:
    """PING the server in the protocol chosen: fail fast, with one line, if nobody
    listens or the other protocol answers (replies would be miscounted)."""
    where = f"{host}:{port}"
    with connect(host, port, access=access) as sock:
        sock.settimeout(10.0)
        sock.sendall(resp_command(b"PING") if redis else b"PING\n")
        data = b""
        try:
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    raise BenchError(f"{where} closed the connection after PING")
                data += chunk
        except OSError as exc:
            raise BenchError(f"{where} did not answer PING: {exc.strerror or exc}") from None
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if redis and line != b"+PONG":
        raise BenchError(f"{where} answered a RESP PING with {line[:60]!r}, not +PONG; "
                         "is it an Olivia node? (drop --redis)")
    if line.startswith((b":ERR NOAUTH", b"-NOAUTH")):
        raise BenchError(f"{where} needs a password: give it with -a (or $OLIVIA_PASSWORD)")
    if not redis and line != b":PONG":
        raise BenchError(f"{where} answered PING with {line[:60]!r}, not :PONG; "
                         "is it a Redis server? (add --redis)")


def plan_jobs(args: argparse.Namespace, work: Workload, processes: int,
              seed: int) -> list[Job]:
    """Split connections and batches over the client processes."""
    total_batches = 0 if args.duration else math.ceil(args.requests / args.pipeline)
    conns = [args.connections // processes + (i < args.connections % processes)
             for i in range(processes)]
    jobs = []
    done = 0  # connections of the processes before this one
    for index, count in enumerate(conns):
        batches = 0
        if total_batches:
            # In proportion to connections, so that every connection does about the same.
            batches = max(1, total_batches * (done + count) // args.connections
                          - total_batches * done // args.connections)
        done += count
        jobs.append(Job(work, args.host, args.port, count, batches, args.duration or 0.0,
                        seed * 1000003 + index, access_of(args)))
    return jobs


def access_of(args: argparse.Namespace) -> Access:
    return Access(args.password, bool(args.tls or args.cacert or args.insecure), args.cacert,
                  args.insecure, args.redis)


def run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """Run every test; print results through ``out``; the exit status."""
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    probe(args.host, args.port, args.redis, access_of(args))
    processes = min(args.processes, args.connections)
    protocol = "redis" if args.redis else "olivia"
    status = EXIT_OK
    if args.csv:
        out(",".join(CSV_FIELDS))
    populated = False
    workers: Workers | None = None
    try:
        for number, test in enumerate(args.tests):
            if test == "populate" or (test in READ_TESTS and args.populate and not populated):
                seconds = populate(args.host, args.port, args.redis, args.keyspace,
                                   args.value_size, seed, access_of(args))
                populated = True
                if not args.quiet:
                    print(f"populated {args.keyspace} keys in {seconds:.2f}s "
                          f"({args.keyspace / seconds:.0f} keys/s)", file=sys.stderr)
                if test == "populate":
                    result = TestResult("populate", args.keyspace, seconds, None, None, None,
                                        0.0, 0.0, 0, "", POPULATE_KEYS_PER_REQUEST, 1, 1,
                                        protocol)
                    out(",".join(result.csv_row()[f] for f in CSV_FIELDS) if args.csv
                        else human(result, args.value_size, args.keyspace, args.quiet))
                    continue
            if test == "del":
                populated = False
            work = Workload(test, args.redis, args.pipeline, args.keyspace, args.value_size,
                            args.mget_keys, args.ttl, args.mixed_ratio)
            jobs = plan_jobs(args, work, processes, seed + number)
            if workers is None:
                workers = Workers(processes)
            results = workers.run(jobs)
            # A worker stopped because another failed says "cancelled": that one's reason first.
            failures = sorted((r.failure for r in results if r.failure),
                              key=lambda why: why == "cancelled")
            if failures:
                first = next((r.first_error for r in results if r.first_error), "")
                raise BenchError(f"{test}: {failures[0]}"
                                 + (f" (after the error reply: {first})" if first else ""))
            result = merge(test, results, jobs)
            out(",".join(result.csv_row()[f] for f in CSV_FIELDS) if args.csv
                else human(result, args.value_size, args.keyspace, args.quiet))
            if result.errors:
                print(f"olivia-bench: {test}: {result.errors} error replies, the first: "
                      f"{result.first_error}", file=sys.stderr)
                status = EXIT_FAILED
    finally:
        if workers is not None:
            workers.close()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args, lambda text: print(text, flush=True))
    except BenchError as exc:
        print(f"olivia-bench: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("olivia-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
