"""Servers for the bench scripts: Olivia nodes and redis-server as subprocesses.

Each server listens on a free port on 127.0.0.1 and is always stopped (SIGTERM,
then SIGKILL, by its PID) when the ``with`` block ends, even on an error::

    from bench.servers import olivia_server, redis_server

    with olivia_server() as a, olivia_server("--peers", a.address) as b, redis_server() as r:
        print(a.port, b.info()["peers"], r.rss_bytes())

An Olivia node runs this working tree (``python -m olivia``) with its working
directory in an empty temporary directory, so no ``config.toml`` is read and
the built-in defaults apply unless ``--config`` is passed (:func:`config_file`
writes one; the default is one replica of every key, ``NO_REPLICAS`` turns
that off).  Its stderr goes to a log file (``ServerProcess.log()``).  Linux
only for the RSS helpers (``/proc``).

Olivia is spoken to with :class:`olivia.Client`; Redis with
:class:`RedisConnection`, which moves the bytes of
:mod:`olivia.protocols.resp.codec` (the bench scripts parse no protocol).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from olivia import Client, OliviaError
from olivia.protocols.resp.codec import ErrorReply, Reply, ReplyReader, RespError, command

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 15.0  # seconds for a server to listen (a loaded 2-CPU machine is slow)
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
POLL = 0.02  # seconds between polls while waiting
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
T = TypeVar("T")


class ServerError(Exception):
    """A server did not start or died; the message says why (with its log tail)."""


def wait_for(condition: Callable[[], object], what: str,
             timeout: float = START_TIMEOUT) -> object:
    """Poll ``condition`` until truthy and return it; ServerError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (redis-server cannot pick its own)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_bytes(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{name}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise ServerError(f"no {name} in /proc/{pid}/status")
    return int(match.group(1)) * 1024


class RedisConnection:
    """A blocking connection to a Redis server: commands encoded and replies
    parsed by :mod:`olivia.protocols.resp.codec`, only the socket I/O here."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._reader = ReplyReader()
        self._replies: deque[Reply] = deque()

    def send(self, data: bytes) -> None:
        """Write encoded commands (pipelined: read their replies afterwards)."""
        self.sock.sendall(data)

    def read_reply(self) -> Reply:
        """The next reply, as :class:`~olivia.protocols.resp.codec.ReplyReader` parses it."""
        while not self._replies:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ServerError(f"redis closed the connection ({self._reader.buffered} "
                                  "bytes of a reply unread)")
            try:
                self._replies.extend(self._reader.feed(chunk))
            except RespError as exc:
                raise ServerError(f"redis sent a malformed reply: {exc}") from exc
        return self._replies.popleft()

    def call(self, *args: bytes) -> Reply:
        """Send one command and return its reply; ServerError for an error reply."""
        self.send(command(*args))
        reply = self.read_reply()
        if isinstance(reply, ErrorReply):
            raise ServerError(f"redis {args[0].decode()}: {reply.message}")
        return reply

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RedisConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redis_call(host: str, port: int, *args: bytes, timeout: float = 10.0) -> Reply:
    """Send one command on a new connection and return its reply (see RedisConnection.call)."""
    with RedisConnection(host, port, timeout) as conn:
        return conn.call(*args)


def redis_info_fields(text: bytes) -> dict[str, str]:
    """Redis INFO's ``name:value`` lines as a dict (``# Section`` lines skipped)."""
    return dict(line.split(":", 1) for line in text.decode("utf-8", "replace").splitlines()
                if ":" in line and not line.startswith("#"))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_or_exit(body: Callable[[], T], failures: tuple[type[BaseException], ...],
                failed: str, interrupted: str) -> T:
    """Run a script's ``body`` so that its servers are stopped however it ends.

    SIGTERM is made to unwind like Ctrl-C, so every ``with`` and ``finally``
    still stops what it started.  An exception in ``failures`` prints
    ``failed: <exception>`` and exits with status 1, an interrupt prints
    ``interrupted`` and exits with 130: one line, not a traceback.
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return body()
    except failures as exc:
        print(f"{failed}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        raise SystemExit(130) from None


@dataclass
class ServerProcess:
    """A running server: where it listens, its PID, its log."""

    kind: str  # "olivia" or "redis"
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    _final_log: str | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        """``HOST:PORT``, as ``--peers`` and olivia-bench ``-h``/``-p`` take it."""
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        """What the server wrote to stdout and stderr (kept after stop())."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_listening(self, timeout: float = START_TIMEOUT) -> int:
        """For an Olivia node started with ``wait=False``: wait for its
        "listening on" line, set host and port, and return the port."""
        def listening() -> re.Match[str] | None:
            self.check_running()
            return _LISTENING.search(self.log())

        match = wait_for(listening, f"{self.name} to print 'listening on'", timeout)
        assert isinstance(match, re.Match)
        self.host, self.port = match.group(1), int(match.group(2))
        return self.port

    def running(self) -> bool:
        return self.proc.poll() is None

    def check_running(self) -> None:
        """ServerError with the end of the log if the process has exited."""
        if self.proc.poll() is not None:
            raise ServerError(f"{self.name} (pid {self.pid}) exited with status "
                              f"{self.proc.returncode}; its log ends:\n{self.log()[-4000:]}")

    def rss_bytes(self) -> int:
        """Resident memory now (VmRSS)."""
        return proc_status_bytes(self.pid, "VmRSS")

    def peak_rss_bytes(self) -> int:
        """Peak resident memory (VmHWM)."""
        return proc_status_bytes(self.pid, "VmHWM")

    def client(self, timeout: float = 10.0) -> Client:
        """An :class:`olivia.Client` for this (Olivia) server."""
        return Client(self.host, self.port, timeout)

    def info(self) -> dict[str, str]:
        """The server's INFO fields (Olivia ``name=value``, Redis ``name:value``)."""
        if self.kind == "redis":
            text = redis_call(self.host, self.port, b"INFO")
            if not isinstance(text, bytes):
                raise ServerError(f"{self.name}: unexpected INFO reply {text!r}")
            return redis_info_fields(text)
        try:
            with self.client() as client:
                return client.info()
        except OliviaError as exc:  # one error type for the scripts to catch
            raise ServerError(f"{self.name}: INFO failed: {exc}") from exc

    def key_count(self) -> int:
        """How many keys the server holds (Olivia ``INFO keys``, Redis ``DBSIZE``)."""
        if self.kind == "olivia":
            return int(self.info()["keys"])
        count = redis_call(self.host, self.port, b"DBSIZE")
        if not isinstance(count, int):
            raise ServerError(f"{self.name}: unexpected DBSIZE reply {count!r}")
        return count

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps. The exit status."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    print(f"warning: {self.name} (pid {self.pid}) ignored SIGTERM for "
                          f"{timeout:.0f}s; sending SIGKILL", file=sys.stderr)
                    self.proc.kill()
                    self.proc.wait(timeout)
            return self.proc.returncode
        finally:
            if self._tmp is not None:
                self._final_log = self.log()
                self._tmp.cleanup()
                self._tmp = None


def _workdir(workdir: Path | None, prefix: str
             ) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    if workdir is not None:
        return workdir, None
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    return Path(tmp.name), tmp


def _has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _spawn(cmd: Sequence[str], name: str, workdir: Path,
           env: dict[str, str] | None) -> tuple[subprocess.Popen[bytes], Path]:
    fd, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=workdir)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir, env=env)
    return proc, Path(log_name)


def start_olivia(*args: str, name: str = "olivia", workdir: Path | None = None,
                 timeout: float = START_TIMEOUT, wait: bool = True) -> ServerProcess:
    """Start a node of this working tree and (unless ``wait`` is False) wait until it
    listens; with ``wait=False`` call ``wait_listening()`` before using its port.

    ``args`` go to ``python -m olivia`` (``--peers H:P``, ``--name N``,
    ``--config PATH``); ``--host 127.0.0.1 --port 0`` are added unless given.
    The caller must ``stop()`` it; prefer :func:`olivia_server`.
    """
    cmd = [sys.executable, "-m", "olivia", *args]
    if not _has_flag(args, "--host"):
        cmd += ["--host", HOST]
    if not _has_flag(args, "--port"):
        cmd += ["--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    where, tmp = _workdir(workdir, "olivia-bench-")
    try:
        proc, log_path = _spawn(cmd, name, where, env)
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise
    server = ServerProcess("olivia", name, HOST, 0, proc, log_path, tmp)
    if wait:
        try:
            server.wait_listening(timeout)
        except BaseException:
            server.stop()
            raise
    return server


#: A node config that turns replication off (``[cluster] replicas``, default 1):
#: each key then lives on its writer only, as the remote-GET and routing
#: measurements need.
NO_REPLICAS = "[cluster]\nreplicas = 0\n"


@contextmanager
def config_file(text: str, name: str = "bench.toml") -> Iterator[Path]:
    """A TOML config file holding ``text``, for ``--config PATH``; removed when
    the block ends."""
    with tempfile.TemporaryDirectory(prefix="olivia-config-") as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        yield path


def redis_binary() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def start_redis(*args: str, name: str = "redis-server", workdir: Path | None = None,
                timeout: float = START_TIMEOUT) -> ServerProcess:
    """Start redis-server on a free loopback port, persistence off, and wait for PING.

    The caller must ``stop()`` it; prefer :func:`redis_server`.
    """
    where, tmp = _workdir(workdir, "redis-bench-")
    try:
        # Another process may take the free port before redis binds it: retry.
        for attempt in range(3):
            port = free_port()
            cmd = [redis_binary(), "--port", str(port), "--bind", HOST, "--protected-mode", "yes",
                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(where),
                   "--logfile", "", "--unixsocket", "", *args]
            proc, log_path = _spawn(cmd, name, where, None)
            server = ServerProcess("redis", name, HOST, port, proc, log_path, None)

            def answers_ping(server: ServerProcess = server) -> bool:
                server.check_running()
                try:
                    return redis_call(server.host, server.port, b"PING", timeout=1.0) == b"PONG"
                except OSError:  # not listening yet
                    return False

            try:
                wait_for(answers_ping, f"{name} to answer PING", timeout)
            except ServerError:
                server.stop()
                if attempt < 2 and "Address already in use" in server.log():
                    continue
                raise
            except BaseException:
                server.stop()
                raise
            server._tmp = tmp
            return server
        raise ServerError("redis-server found no free port")  # not reached: the loop raises
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise


@contextmanager
def olivia_server(*args: str, name: str = "olivia",
                  workdir: Path | None = None) -> Iterator[ServerProcess]:
    """A started Olivia node (see :func:`start_olivia`), stopped when the block ends."""
    server = start_olivia(*args, name=name, workdir=workdir)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_server(*args: str, name: str = "redis-server",
                 workdir: Path | None = None) -> Iterator[ServerProcess]:
    """A started redis-server (see :func:`start_redis`), stopped when the block ends."""
    server = start_redis(*args, name=name, workdir=workdir)
    try:
        yield server
    finally:
        server.stop()
