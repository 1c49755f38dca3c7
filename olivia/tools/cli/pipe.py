"""``olivia-cli --pipe``: raw request lines from stdin streamed to the
server as fast as they come, like ``redis-cli --pipe``, while a second
thread counts the replies and prints the errors."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from typing import IO

from olivia.tools.cli.errors import PROG, CliError

PIPE_CHUNK = 1 << 20

_ERROR_LINE = re.compile(rb"^[A-Za-z0-9_.-]*:ERR(?: [^\n]*)?$", re.MULTILINE)
_BYE_LINE = re.compile(rb"^[A-Za-z0-9_.-]*:BYE$", re.MULTILINE)


def count_requests(block: bytes) -> int:
    """Request lines in ``block`` (whole lines, each ending in LF) that get a
    reply: every line that is not empty after removing a trailing CR."""
    lines = block.count(b"\n")
    if b"\n\n" in block or b"\n\r\n" in block or block[:1] == b"\n" or block[:2] == b"\r\n":
        lines -= sum(1 for line in block.split(b"\n")[:-1] if line in (b"", b"\r"))
    return lines


class _ReplyCounter(threading.Thread):
    """Reads the server's replies while the main thread writes: counts lines
    and ERR replies (printed to stderr), until the server closes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(name="olivia-cli-replies", daemon=True)
        self.sock = sock
        self.replies = 0
        self.errors = 0
        self.bye = False
        self.failure: str | None = None

    def run(self) -> None:
        carry = b""  # an unfinished last line, scanned with the rest of it
        try:
            while data := self.sock.recv(PIPE_CHUNK):
                self.replies += data.count(b"\n")
                block = carry + data if carry else data
                cut = block.rfind(b"\n") + 1
                if cut and (b":ERR" in block or b":BYE" in block):
                    self._scan(block[:cut])
                # Its start is enough to tell an ERR or BYE line (both are short), so a
                # long line in many pieces (a big GET reply) is not copied again and again.
                carry = block[cut:cut + 4096]
        except OSError as exc:
            self.failure = exc.strerror or str(exc)

    def _scan(self, block: bytes) -> None:
        if b":ERR" in block:
            errors = _ERROR_LINE.findall(block)
            self.errors += len(errors)
            sys.stderr.buffer.write(b"".join(line + b"\n" for line in errors))
            sys.stderr.buffer.flush()
        if b":BYE" in block and _BYE_LINE.search(block):
            self.bye = True


def _connect_socket(host: str, port: int, timeout: float | None) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise CliError(f"timed out connecting to {host}:{port}") from None
    except OSError as exc:
        raise CliError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.settimeout(None)  # the reader waits as long as the server works
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run_pipe(host: str, port: int, timeout: float | None,
             source: IO[bytes] | None = None, password: str | None = None) -> int:
    """Stream raw request lines from stdin to the server; count the replies.

    A reader thread counts replies while this thread writes, so neither side
    waits on the other.  A last line without LF gets one (the server would
    drop it).  After the input, our side of the connection is shut, and the
    server answers every line it got and closes.
    """
    fd = (source or sys.stdin.buffer).fileno()
    with _connect_socket(host, port, timeout) as sock:
        counter = _ReplyCounter(sock)
        counter.start()
        expected = 0
        carry = b""
        closed_early = False
        try:
            if password is not None:  # its reply is counted with the others
                sock.sendall(b"AUTH " + password.encode() + b"\n")
                expected += 1
            while chunk := os.read(fd, PIPE_CHUNK):
                sock.sendall(chunk)
                block = carry + chunk if carry else chunk
                cut = block.rfind(b"\n") + 1
                if cut:
                    expected += count_requests(block[:cut])
                carry = block[cut:]
            if carry:
                sock.sendall(b"\n")
                expected += count_requests(carry + b"\n")
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            closed_early = True
        print("All data transferred. Waiting for the last reply...", flush=True)
        counter.join()
    print("Last reply received from server.")
    print(f"errors: {counter.errors}, replies: {counter.replies}", flush=True)
    if counter.replies < expected and not counter.bye:
        why = counter.failure or ("it stopped reading" if closed_early else "it closed early")
        print(f"{PROG}: {expected} requests sent but {counter.replies} replies received: {why}",
              file=sys.stderr)
        return 1
    return 1 if counter.errors else 0


# ---------------------------------------------------------------------------
# Import readers: each yields (key, value) pairs and raises InputError
# ---------------------------------------------------------------------------
