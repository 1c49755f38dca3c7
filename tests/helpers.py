"""Shared test tiers: a fake clock for pure tests, and real ``olivia``
processes on free ports spoken to over sockets, as a user would."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from olivia.cluster.handshake import DIAL, new_nonce, proof
from olivia.protocols.line.peer import parse_answer

DEADLINE = 10.0  # seconds any wait in a test may take before it fails
# Starting a process is not what any test measures; on a loaded 2-core CI
# machine the interpreter's start can take seconds, so allow it more.
START_DEADLINE = 30.0
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_RESP_LISTENING = re.compile(r"RESP listening on (\S+):(\d+)")


class FakeClock:
    """A clock tests move by hand: ``clock()`` reads it, ``advance`` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(condition: Callable[[], object], timeout: float = DEADLINE,
               interval: float = 0.01, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # poll interval, bounded by the deadline above


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LineClient:
    """A blocking socket client that sends raw lines and reads raw reply lines."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = DEADLINE) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """One reply line without its LF; AssertionError if the server hung up."""
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; unread: {self._buffer[:200]!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def read_lines(self, count: int) -> list[bytes]:
        return [self.read_line() for _ in range(count)]

    def request(self, line: bytes | str) -> bytes:
        """Send one request line (LF added) and return its reply line."""
        data = line.encode() if isinstance(line, str) else line
        self.send(data + b"\n")
        return self.read_line()

    def is_closed_by_server(self, timeout: float = DEADLINE) -> bool:
        """True once the server has closed the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self._buffer += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OliviaProcess:
    """An ``olivia`` daemon in a subprocess; its stderr goes to a file."""

    def __init__(self, args: Sequence[str] = (), cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, prefix: Sequence[str] = ()) -> None:
        self.args = list(args)
        self.prefix = list(prefix)  # e.g. ip netns exec NAME: run it in a namespace
        self.cwd = cwd
        self.env = dict(env or {})
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._final_log = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def start(self, wait: bool = True) -> OliviaProcess:
        cmd = [*self.prefix, sys.executable, "-m", "olivia", *self.args]
        if not any(a == "--port" or a.startswith("--port=") for a in self.args):
            cmd += ["--port", "0"]
        # faulthandler: a node that hangs can be asked where (SIGABRT, see _wait_listening)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **self.env}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, cwd=self.cwd, env=env)
        if wait:
            match = self._wait_listening()
            self.host, self.port = match.group(1), int(match.group(2))
        return self

    def _wait_listening(self) -> re.Match[str]:
        """The node's "listening on" line; on a timeout the failure shows its
        log and, through faulthandler, where every thread of it was."""
        try:
            match = wait_until(self._listening, timeout=START_DEADLINE, what="the node to listen")
        except AssertionError as exc:
            assert self.proc is not None
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
            raise AssertionError(f"{exc}; its log:\n{self.log()}") from None
        assert isinstance(match, re.Match)
        return match

    def _listening(self) -> re.Match[str] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"olivia exited with {self.proc.returncode}:\n{self.log()}")
        return _LISTENING.search(self.log())

    @property
    def resp_port(self) -> int:
        """The port of the node's RESP listener (started with --resp-port)."""
        match = wait_until(lambda: _RESP_LISTENING.search(self.log()), what="the RESP port")
        assert isinstance(match, re.Match)
        return int(match.group(2))

    def log(self) -> str:
        """Everything the node wrote to stderr (kept after close)."""
        if self._log.closed:
            return self._final_log
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def client(self) -> LineClient:
        return LineClient(self.port, self.host)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Terminate if still running (SIGTERM, then SIGKILL); always reaps."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._final_log = self.log()
        self._log.close()


@contextmanager
def running_node(*args: str, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Iterator[OliviaProcess]:
    """A started node, stopped at the end of the block even if the test fails."""
    node = OliviaProcess(args, cwd=cwd, env=env)
    try:
        yield node.start()
    finally:
        node.close()


def run_olivia(*args: str, cwd: Path | None = None, timeout: float = DEADLINE,
               env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``olivia`` to completion (for flags and errors that exit at once)."""
    return subprocess.run([sys.executable, "-m", "olivia", *args], cwd=cwd, timeout=timeout,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def info_of(client: LineClient) -> dict[str, str]:
    """The INFO fields of the node behind ``client``."""
    line = client.request("INFO")
    assert line.startswith(b":INFO "), line
    return dict(field.split("=", 1) for field in line[6:].decode().split(","))


class ClusterProcesses:
    """Several nodes on loopback, each joined through the first one."""

    def __init__(self) -> None:
        self.nodes: list[OliviaProcess] = []

    def add(self, *args: str, seed: OliviaProcess | None = None) -> OliviaProcess:
        seed = seed or (self.nodes[0] if self.nodes else None)
        name = f"n{len(self.nodes) + 1}"
        extra = ["--peers", f"127.0.0.1:{seed.port}"] if seed is not None else []
        node = OliviaProcess(["--name", name, *extra, *args])
        self.nodes.append(node)
        return node.start()

    def wait_formed(self, timeout: float = DEADLINE) -> None:
        """Until every running node sees every other one alive."""
        running = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

        def formed() -> bool:
            for node in running:
                with node.client() as client:
                    if info_of(client)["peers"] != str(len(running) - 1):
                        return False
            return True

        wait_until(formed, timeout=timeout, what=f"{len(running)} nodes to see each other")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def config_flag(directory: Path, toml: str, name: str = "olivia.toml") -> list[str]:
    """``--config PATH`` of a config file holding ``toml``, written in ``directory``."""
    path = directory / name
    path.write_text(toml)
    return ["--config", str(path)]


#: The cluster secret of test clusters that need one (see peer_session).
SECRET = "test-cluster-secret"
SECRET_TOML = f'[cluster]\nsecret = "{SECRET}"\n'


def with_secret(directory: Path, toml: str = SECRET_TOML) -> list[str]:
    """The flags of a node whose cluster has SECRET (``toml`` may add to the [cluster] table)."""
    return config_flag(directory, toml, "secret.toml")


@contextmanager
def peer_session(node: OliviaProcess, name: str = "probe", secret: str = SECRET,
                 address: str = "127.0.0.1:1") -> Iterator[LineClient]:
    """A connection that completed the peer handshake with ``secret``, so it may
    use the peer dialect (``REQUEST LOOKUP`` reads what the node itself holds).
    The node counts it as a peer (at ``address``, which does not answer) until
    the block ends and it says goodbye."""
    client = node.client()
    try:
        nonce = new_nonce()
        reply = client.request(f"REQUEST CONNECT {name} {address} 1 ".encode() + nonce)
        assert reply.startswith(b":FULFILLED "), reply
        answer = parse_answer(reply.partition(b" ")[2])
        mine = proof(secret.encode(), DIAL, nonce, answer.nonce, name, answer.identity.name)
        reply = client.request(b"REQUEST PROVE " + mine)
        assert reply == b":FULFILLED", reply
        yield client
        with contextlib.suppress(AssertionError, OSError):  # it may have been dropped
            client.request(f"REQUEST DISCONNECT {name}")
    finally:
        client.close()


def no_replicas(directory: Path) -> list[str]:
    """The flags of a node that keeps no replicas (``[cluster] replicas = 0``)."""
    return config_flag(directory, "[cluster]\nreplicas = 0\n", "no-replicas.toml")


@contextmanager
def running_cluster(size: int, *args: str) -> Iterator[ClusterProcesses]:
    """``size`` nodes that have all seen each other; all stopped at the end."""
    cluster = ClusterProcesses()
    try:
        for _ in range(size):
            cluster.add(*args)
        cluster.wait_formed()
        yield cluster
    finally:
        cluster.close()


@contextmanager
def fake_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A listener on a free loopback port whose connections, one at a time,
    are passed to ``handle`` on a thread (and closed after); yields the port.

    For servers that misbehave in ways a real node never does.  The thread
    and the listener are stopped when the block ends, even on failure.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)  # so the thread sees stop
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            # A client hanging up on a fake is fine (OSError).
            with conn, contextlib.suppress(OSError):
                conn.settimeout(DEADLINE)
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(DEADLINE)
