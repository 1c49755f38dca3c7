"""olivia-bench: its reply counting (pure), and the tool run against a real node."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from olivia.protocols.resp.codec import ReplyCounter as RespReplies
from olivia.tools.bench.main import OliviaReplies, percentile
from tests.helpers import OliviaProcess, free_port, info_of, wait_until

BENCH_TIMEOUT = 60.0  # seconds for a whole olivia-bench run in a test


def feed_in_pieces(counter: OliviaReplies | RespReplies, stream: bytes, size: int) -> int:
    """Feed ``stream`` in pieces of ``size`` bytes; the replies counted in all."""
    return sum(counter.feed(stream[i:i + size]) for i in range(0, len(stream), size))


# --------------------------------------------------------------------------
# RESP reply scanner
# --------------------------------------------------------------------------

RESP_REPLIES = [
    b"+OK\r\n",
    b":1\r\n",
    b":-1\r\n",
    b"$5\r\nhello\r\n",
    b"$-1\r\n",  # nil
    b"$0\r\n\r\n",
    b"$6\r\na\r\nb\r\n\r\n",  # CR LF and '$' inside a bulk string
    b"$4\r\n*$-+\r\n",
    b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n",  # MGET with a nil
    b"*0\r\n",
    b"*-1\r\n",  # nil array
    b"*2\r\n*1\r\n:5\r\n$3\r\nx\r\n\r\n",  # nested
    b"-ERR wrong number of arguments\r\n",
    b"$16\r\nabcdefghijklmnop\r\n",
    b"$16\r\nqrstuvwxyzabcdef\r\n",
    b"$3\r\nabc\r\n",  # a different length after the cached one
]
RESP_STREAM = b"".join(RESP_REPLIES)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(RESP_STREAM)])
def test_resp_counts_every_reply_however_the_stream_is_cut(size: int) -> None:
    counter = RespReplies()
    assert feed_in_pieces(counter, RESP_STREAM, size) == len(RESP_REPLIES)
    assert counter.errors == 1
    assert counter.first_error == "ERR wrong number of arguments"


def test_resp_incomplete_reply_waits_for_the_rest() -> None:
    counter = RespReplies()
    assert counter.feed(b"+OK\r\n$10\r\n0123") == 1
    assert counter.feed(b"456789\r") == 0
    assert counter.feed(b"\n*2\r\n$1\r\na\r\n") == 1
    assert counter.feed(b"$-1\r\n") == 1


def test_resp_simple_replies_and_errors() -> None:
    counter = RespReplies()
    assert counter.feed(b"+OK\r\n" * 16) == 16
    assert counter.feed(b":0\r\n-ERR one\r\n+OK\r\n-WRONGTYPE two\r\n") == 4
    assert (counter.errors, counter.first_error) == (2, "ERR one")


def test_resp_garbage_is_an_error() -> None:
    from olivia.protocols.resp.codec import RespError

    with pytest.raises(RespError, match="unexpected RESP reply"):
        RespReplies().feed(b"$1\r\na\r\n?what\r\n")
    with pytest.raises(RespError, match="malformed RESP"):
        RespReplies().feed(b"$x\r\n")


# --------------------------------------------------------------------------
# Olivia reply counting
# --------------------------------------------------------------------------

OLIVIA_STREAM = (b":SAT key_000000000001:abc\n"
                 b":GOT key_000000000001:ERRnot an error\n"  # ':ERR' inside a GOT line
                 b":GOT\n"
                 b":ERR SET item 'x' needs key:value\n"
                 b":DELETED key_000000000001\n"
                 b"t1:ERR unknown verb 'FOO'\n")


@pytest.mark.parametrize("size", [1, 3, 4, 10, len(OLIVIA_STREAM)])
def test_olivia_counts_lines_with_partial_reads(size: int) -> None:
    counter = OliviaReplies()
    assert feed_in_pieces(counter, OLIVIA_STREAM, size) == 6
    assert counter.errors == 2
    assert counter.first_error == "SET item 'x' needs key:value"


def test_olivia_partial_line_is_not_counted_until_complete() -> None:
    counter = OliviaReplies()
    assert counter.feed(b":SAT a:b\n:GO") == 1
    assert counter.feed(b"T a:") == 0
    assert counter.feed(b"b\n:ER") == 1
    assert counter.errors == 0
    assert counter.feed(b"R bad\n") == 1
    assert counter.errors == 1


def test_percentile_nearest_rank() -> None:
    samples = list(range(1, 1001))
    assert percentile(samples, 0.5) == 500
    assert percentile(samples, 0.99) == 990
    assert percentile(samples, 0.999) == 999
    assert percentile([7], 0.999) == 7


# --------------------------------------------------------------------------
# The tool, as a subprocess
# --------------------------------------------------------------------------


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "olivia.tools.bench", *args],
                          capture_output=True, text=True, timeout=BENCH_TIMEOUT,
                          stdin=subprocess.DEVNULL)


def test_every_test_against_a_node(node: OliviaProcess) -> None:
    tests = ["set", "get", "mget", "del", "setex", "mixed"]
    done = bench("-p", str(node.port), "--duration", "0.3", "-c", "4", "-r", "1000",
                 "-t", ",".join(tests), "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["test"] for row in rows] == tests
    for row in rows:
        assert int(row["requests"]) > 0, row
        assert row["errors"] == "0", row
        assert float(row["ops_per_sec"]) > 0, row
        assert row["p50_ms"] and row["p999_ms"], row
        assert row["client_bound"] in ("yes", "no"), row
    assert "populated 1000 keys" in done.stderr
    with node.client() as client:
        assert int(info_of(client)["keys"]) > 0


def test_ping_test_and_quiet_lines(node: OliviaProcess) -> None:
    done = bench("-p", str(node.port), "-n", "400", "-c", "2", "-r", "100", "-t", "ping,set",
                 "-q")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["PING", "SET"]  # one line per test
    for line in lines:
        assert re.fullmatch(r"[A-Z]+: \d+\.\d\d requests per second, p50=\d+\.\d{3} msec"
                            r"(  \(client-bound: .*\))?", line), line
    assert done.stderr == ""  # no populate timing
    done = bench("-p", str(node.port), "-n", "100", "-c", "1", "-t", "ping", "--csv")
    (row,) = csv.DictReader(io.StringIO(done.stdout))
    assert (row["test"], row["requests"], row["errors"]) == ("ping", "100", "0")


def test_human_output_and_request_count(node: OliviaProcess) -> None:
    done = bench("-p", str(node.port), "-n", "2000", "-c", "3", "-P", "4", "-j", "2",
                 "-r", "100", "-t", "set")
    assert done.returncode == 0, done.stderr
    assert "====== SET ======" in done.stdout
    assert "2000 requests completed" in done.stdout
    assert "requests per second" in done.stdout


class _RefusingHandler(socketserver.StreamRequestHandler):
    """Answers PING, and every other request line with an ERR reply."""

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            for line in self.rfile:
                self.wfile.write(b":PONG\n" if line == b"PING\n" else b":ERR no thanks\n")


class _RefusingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


@pytest.fixture
def refusing_port() -> Iterator[int]:
    server = _RefusingServer(("127.0.0.1", 0), _RefusingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_error_replies_are_counted_and_exit_1(refusing_port: int) -> None:
    done = bench("-p", str(refusing_port), "-n", "40", "-c", "2", "-P", "2", "-t", "set",
                 "--csv")
    assert done.returncode == 1
    (row,) = csv.DictReader(io.StringIO(done.stdout))
    assert (row["requests"], row["errors"]) == ("40", "40")
    assert "40 error replies, the first: no thanks" in done.stderr


def test_error_reply_then_hang_up_exit_1(node: OliviaProcess) -> None:
    # A value over max_line_bytes: the node answers ERR and closes the connection.
    done = bench("-p", str(node.port), "-n", "4", "-c", "1", "-t", "set", "-r", "10",
                 "-d", str(2 << 20), "-q")
    assert done.returncode == 1
    assert done.stderr.startswith("olivia-bench: set: the server closed a connection")
    assert "line too long" in done.stderr


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_redis_workload() -> None:
    from bench.servers import redis_server

    tests = ["ping", "set", "get", "mget", "setex", "del", "mixed"]
    with redis_server() as redis:
        done = bench("--redis", "-p", str(redis.port), "--duration", "0.2", "-c", "4",
                     "-r", "1000", "-P", "3", "-t", ",".join(tests), "--csv")
        assert done.returncode == 0, done.stderr
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
        assert [row["test"] for row in rows] == tests
        assert all(int(row["requests"]) > 0 and row["errors"] == "0" for row in rows), rows
        assert int(redis.info()["used_memory"]) > 0
        assert "keys=" in redis.info().get("db0", "")


def test_bad_flags_exit_2() -> None:
    for args in (["-t", "frob"], ["-c", "0"], ["-n", "10", "--duration", "1"], ["--nope"]):
        done = bench(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_connection_refused_exit_1() -> None:
    done = bench("-p", str(free_port()), "-n", "10")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot connect" in lines[0]
    assert done.stdout == ""


def test_wrong_protocol_exit_1(node: OliviaProcess) -> None:
    done = bench("--redis", "-p", str(node.port), "-n", "10")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not +PONG" in done.stderr, done.stderr


def test_help_exits_0() -> None:
    done = bench("--help")
    assert done.returncode == 0
    assert "-P PIPELINE" in done.stdout and "--redis" in done.stdout
    duration = done.stdout[done.stdout.index("--duration SECONDS  "):].split("\n  -")[0]
    assert "each test" in " ".join(duration.split())


def process_state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = process_state(int(entry))
            if state is not None and state[1] == pid and state[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    state = process_state(pid)
    return state is not None and state[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_parent_is_killed(node: OliviaProcess) -> None:
    main = subprocess.Popen([sys.executable, "-m", "olivia.tools.bench", "-p", str(node.port),
                             "--duration", "1.5", "-c", "4", "-r", "1000", "-P", "16",
                             "-t", "get", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        wait_until(lambda: len(children_of(main.pid)) >= 2, what="the client processes")
        workers = children_of(main.pid)
        main.kill()
        main.wait(BENCH_TIMEOUT)
        # Each worker finishes its run, finds its pipe broken and exits.
        wait_until(lambda: not any(alive(pid) for pid in workers),
                   what="orphaned client processes to exit")
    finally:
        if main.poll() is None:
            main.kill()
            main.wait(BENCH_TIMEOUT)
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
