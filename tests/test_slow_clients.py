"""A client that does not read its replies costs the node a bounded amount
of memory (max_client_output_bytes), and the other clients are served
meanwhile."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

from tests.helpers import (
    DEADLINE,
    OliviaProcess,
    config_flag,
    info_of,
    running_cluster,
    wait_until,
)

BIG = 100_000  # bytes of the value the slow client asks for


class Flood:
    """Writes ``lines`` from a thread, never reading the replies."""

    def __init__(self, port: int, lines: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.stalled = threading.Event()  # a write timed out: the node stopped reading
        self._stop = threading.Event()
        self._lines = lines
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        view = memoryview(self._lines)
        self.sock.settimeout(0.2)
        while view and not self._stop.is_set():
            try:
                view = view[self.sock.send(view[:1 << 16]):]
            except TimeoutError:
                self.stalled.set()
            except OSError:
                return

    def wait_sent(self) -> bool:
        """Until every line is with the kernel or the node stopped reading them."""
        self._thread.join(DEADLINE)
        return self.stalled.is_set() or not self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self.sock.close()


def rss_and_commands(node: OliviaProcess) -> tuple[int, int]:
    with node.client() as client:
        info = info_of(client)
    return int(info["used_memory"]), int(info["total_commands_processed"])


def pings_answered(node: OliviaProcess, count: int = 50) -> float:
    """PING ``count`` times on a second connection; the slowest round trip."""
    slowest = 0.0
    with node.client() as client:
        for _ in range(count):
            started = time.monotonic()
            assert client.request("PING") == b":PONG"
            slowest = max(slowest, time.monotonic() - started)
    return slowest


def test_a_client_that_reads_nothing_costs_a_bounded_buffer(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, "max_client_output_bytes = 4194304\n[cluster]\nreplicas = 0\n")
    with running_cluster(2, *flags) as cluster:
        near, far = cluster.nodes
        with near.client() as client:
            assert client.request(f"SET big:{'b' * BIG}").startswith(b":SAT big:")
        with far.client() as client:
            assert client.request("SET remote:r") == b":SAT remote:r"
        with near.client() as client:  # near has far's filter with it: it will ask far
            wait_until(lambda: client.request("GET remote") == b":GOT remote:r")
        before, commands = rss_and_commands(near)
        # Case 1: GETs of 100 KB (20 GB of replies), none read: more than the
        # socket buffers hold, so the sender stalls once the node stops reading.
        slow = Flood(near.port, b"GET big\n" * 200_000)
        try:
            assert pings_answered(near) < DEADLINE
            assert slow.wait_sent()
            assert pings_answered(near) < DEADLINE
            grown, done = rss_and_commands(near)
            # It executed a few MiB of replies' worth and stopped reading.
            assert done - commands < 2_000 and grown - before < 48 << 20
        finally:
            slow.close()
        # Case 2: the first GET waits on a peer that does not answer, so the
        # replies of the GETs behind it queue up in the node, not the socket.
        far.signal(signal.SIGSTOP)
        slow = Flood(near.port, b"GET remote\n" + b"GET big\n" * 200_000)
        try:
            assert slow.wait_sent()
            grown, done2 = rss_and_commands(near)
            assert done2 - done < 2_000 and grown - before < 48 << 20
            assert pings_answered(near, 5) < DEADLINE
        finally:
            slow.close()
            far.signal(signal.SIGCONT)
