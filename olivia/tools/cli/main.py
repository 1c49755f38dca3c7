"""``olivia-cli``: talk to an Olivia node from a shell.

::

    olivia-cli [-h HOST] [-p PORT]                  interactive prompt (raw protocol lines)
    olivia-cli [-h HOST] [-p PORT] VERB ARGS...     one request, print its reply
    olivia-cli --pipe < FILE                        stream raw protocol lines, count replies
    olivia-cli import FILE [--format csv|jsonl|json]
    olivia-cli export [--format csv|jsonl|json] (--keys-from FILE | KEY...) > FILE

What is typed (or given as arguments) is sent as one raw protocol line, and
the reply line is printed exactly as the server sent it.  See docs/client.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import csv
import io
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, NoReturn

from olivia import __version__
from olivia.client import (
    DEFAULT_HOST,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_PORT,
    Client,
    is_error_reply,
)
from olivia.core.errors import ConnectionLostError, LineTooLongError, OliviaError
from olivia.core.requests import MAX_KEY_BYTES

PROG = "olivia-cli"
HISTORY_FILE = "~/.olivia_cli_history"
HISTORY_LENGTH = 1000
FORMATS = ("csv", "jsonl", "json")
PIPE_CHUNK = 1 << 20
EXPORT_BATCH = 10_000  # keys fetched per round trip by export

HELP_TEXT = """\
Type requests as protocol lines; the reply is printed as the server sends it.
Inside keys and values write % , : CR LF as %25 %2C %3A %0D %0A.
  SET key:value[,key:value...]      store values (clears their TTL)
  SETEX key:value:ttl[,...]         store values that expire after ttl seconds
  GET key[,key...]                  the values of the keys that exist
  DEL key[,key...]                  delete keys; lists those that existed
  PING [text]                       echo the text
  INFO                              node statistics, name=value,...
  REQUEST PEERS                     the peers this node sees alive
  QUIT                              close the connection and leave
  help                              this list; exit, quit or Ctrl-D leave
A TAG: prefix (t1:GET key) comes back on the reply. Reference: docs/protocol.md"""

USAGE = f"""\
{PROG} [-h HOST] [-p PORT] [-t SECONDS] [VERB ARGS... | --pipe]
              {PROG} [-h HOST] [-p PORT] import FILE [--format csv|jsonl|json]
              {PROG} [-h HOST] [-p PORT] export [--format F] (--keys-from FILE | KEY...)"""

DESCRIPTION = f"""\
With no VERB, an interactive prompt: each line typed is sent as a raw protocol
line and the reply printed as the server sent it (history in {HISTORY_FILE}).
With a VERB, the words are joined with spaces into one request line, its reply
is printed, and the exit status is 1 for an ERR reply.

  --pipe            send raw protocol lines from stdin as fast as possible and
                    count the replies (like redis-cli --pipe)
  import FILE       load key/value pairs from FILE ('-' for stdin): CSV rows
                    key,value (a first row 'key,value' is a header and skipped),
                    JSON lines {{"key": ..., "value": ...}} ("value_b64" and
                    "key_b64" for binary), or one JSON object {{"key": "value"}}
  export            write the values of the given keys to stdout in a format
                    import reads; the protocol cannot list keys yet, so name
                    them: --keys-from FILE (any import format, or one key per
                    line) or KEY arguments

options:
  -h, --host HOST   server host (default $OLIVIA_HOST or {DEFAULT_HOST})
  -p, --port PORT   server port (default $OLIVIA_PORT or {DEFAULT_PORT})
  -t, --timeout S   seconds to wait for the server (default 10; 0 waits forever)
  --help            show this help and exit
  --version         show the version and exit"""


class CliError(Exception):
    """A failure reported as one line ``olivia-cli: <message>``, exit status 1."""


class InputError(Exception):
    """Bad input at a line of an import file."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _env_port() -> int:
    value = os.environ.get("OLIVIA_PORT", "")
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError:
        _fail(f"OLIVIA_PORT must be a port number, not {value!r}", status=2)


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, usage=USAGE, description=DESCRIPTION, add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-h", "--host", default=os.environ.get("OLIVIA_HOST") or DEFAULT_HOST,
                        help=argparse.SUPPRESS)
    parser.add_argument("-p", "--port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("-t", "--timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--pipe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--help", action="help", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                        help=argparse.SUPPRESS)
    parser.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} import",
                                     description="Load key/value pairs from a file.")
    parser.add_argument("file", help="the file to load, '-' for stdin")
    parser.add_argument("--format", choices=FORMATS,
                        help="csv, jsonl or json (default: from the file's extension)")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} export",
        description="Write the values of the given keys to stdout, in a format import reads. "
                    "The protocol has no verb that lists keys, so the keys must be named.")
    parser.add_argument("keys", nargs="*", metavar="KEY", help="keys to export")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="output format (default csv)")
    parser.add_argument("--keys-from", metavar="FILE",
                        help="read the keys from FILE ('-' for stdin): a csv, jsonl or json "
                             "file as import reads (values ignored), or one key per line")
    parser.add_argument("--keys-format", choices=(*FORMATS, "lines"),
                        help="format of --keys-from (default: from its extension; lines "
                             "otherwise)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``olivia-cli`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    port = args.port if args.port is not None else _env_port()
    timeout = args.timeout if args.timeout > 0 else None
    try:
        if args.pipe:
            if args.words:
                _fail("--pipe reads its requests from stdin; give no VERB", status=2)
            return run_pipe(args.host, port, timeout)
        words: list[str] = args.words
        if words and words[0] == "import":
            options = _import_parser().parse_args(words[1:])
            return run_import(Client(args.host, port, timeout), options.file, options.format)
        if words and words[0] == "export":
            options = _export_parser().parse_args(words[1:])
            return run_export(Client(args.host, port, timeout), options)
        if words:
            return run_one_shot(Client(args.host, port, timeout), " ".join(words))
        return run_interactive(Client(args.host, port, timeout))
    except CliError as exc:
        _fail(str(exc))
    except OliviaError as exc:  # connection lost, or an ERR reply to a command of ours
        _fail(str(exc))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (olivia-cli export | head): not an error to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _wire(text: str) -> bytes:
    """What the user typed, as bytes (undecodable terminal bytes kept)."""
    return text.encode("utf-8", "surrogateescape")


def _print_reply(reply: bytes) -> None:
    sys.stdout.buffer.write(reply + b"\n")
    sys.stdout.buffer.flush()


# ---------------------------------------------------------------------------
# One-shot and interactive
# ---------------------------------------------------------------------------


def run_one_shot(client: Client, line: str) -> int:
    """Send one request line; print the reply; 1 if it is an ERR reply."""
    with client:
        reply = client.raw(_wire(line))
    _print_reply(reply)
    return 1 if is_error_reply(reply) else 0


def run_interactive(client: Client) -> int:
    """The prompt (a terminal), or one request per stdin line (no terminal)."""
    with client:
        client.connect()
        if sys.stdin.isatty():
            return _prompt_loop(client)
        for raw_line in sys.stdin.buffer:
            line = raw_line.rstrip(b"\n")
            if line.rstrip(b"\r") and _send_typed(client, line):
                break
        return 0


def _prompt_loop(client: Client) -> int:
    import readline  # only for a terminal: it may write escape codes

    history = os.path.expanduser(HISTORY_FILE)
    with contextlib.suppress(OSError):  # no history yet, or unreadable: start without
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_LENGTH)
    prompt = f"{client.address}> "
    try:
        while True:
            try:
                text = input(prompt)
            except EOFError:
                print()
                break
            except KeyboardInterrupt:
                print("^C")
                continue
            stripped = text.strip()
            if not stripped:
                continue
            if stripped.lower() == "exit":
                break
            if stripped.lower() == "help":
                print(HELP_TEXT, flush=True)
                continue
            if _send_typed(client, _wire(text)):
                break
    finally:
        with contextlib.suppress(OSError):  # a read-only home must not make leaving fail
            readline.write_history_file(history)
    return 0


def _send_typed(client: Client, line: bytes) -> bool:
    """Send one typed line and print its reply; True once the server said BYE."""
    try:
        reply = client.raw(line)
    except ConnectionLostError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return False
    _print_reply(reply)
    return reply.partition(b":")[2] == b"BYE"


# ---------------------------------------------------------------------------
# --pipe
# ---------------------------------------------------------------------------

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
             source: IO[bytes] | None = None) -> int:
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

class Reader:
    """Pairs (key, value) from a file, checked one by one.

    Iterating yields the pairs; a bad record raises :class:`InputError` with
    its line number.  ``line`` is the line reached so far.
    """

    _line = 0

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    @property
    def line(self) -> int:
        """The line reached so far (1-based)."""
        return self._line

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError


def _check_key(key: bytes, line: int) -> bytes:
    if not key:
        raise InputError(line, "empty key")
    if len(key) > MAX_KEY_BYTES:
        raise InputError(line, f"key {_show(key)} is {len(key)} bytes long "
                               f"(limit {MAX_KEY_BYTES})")
    return key


def _show(data: bytes) -> str:
    text = data[:40].decode("utf-8", "backslashreplace")
    return repr(text + ("..." if len(data) > 40 else ""))


def _breaks(text: str) -> int:
    """Line breaks inside a field, as the csv module counts lines."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class CsvReader(Reader):
    """CSV rows ``key,value`` (RFC 4180 quoting); a first row ``key,value``
    is a header and skipped; blank lines are skipped.  Text is UTF-8, and
    any other bytes are kept as they are (so export output re-imports)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        # utf-8-sig: a byte-order mark (as Excel writes) is not part of the first key.
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape",
                                      newline="")
        self._csv = csv.reader(self._text, strict=True)

    @property
    def line(self) -> int:
        return self._csv.line_num

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        rows = self._csv
        try:
            first = next(rows, None)
            if first is None:
                return
            head = () if first == ["key", "value"] else (first,)
            for row in chain(head, rows):
                if len(row) == 2:  # the fast path: a good row
                    key = row[0].encode("utf-8", "surrogateescape")
                    if 0 < len(key) <= MAX_KEY_BYTES:
                        yield key, row[1].encode("utf-8", "surrogateescape")
                        continue
                if not row:
                    continue
                # The line where the record starts, for the message.
                line = rows.line_num - sum(_breaks(field) for field in row)
                if len(row) != 2:
                    raise InputError(line, f"expected 2 fields (key,value), got {len(row)}; "
                                           "quote a value that contains a comma: \"a,b\"")
                _check_key(row[0].encode("utf-8", "surrogateescape"), line)
        except csv.Error as exc:
            raise InputError(rows.line_num, f"malformed CSV: {exc}") from None
        finally:
            self._text.detach()


def _json_text(value: object, line: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(line, f"{what} must be a string, not {_json_type(value)}")
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise InputError(line, f"{what} is not valid Unicode (a lone surrogate?)") from None


def _json_type(value: object) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", bool: "a boolean",
                              int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _b64(value: object, line: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(line, f"{what} must be a base64 string, not {_json_type(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(line, f"{what} is not valid base64") from None


class JsonlReader(Reader):
    """JSON lines ``{"key": ..., "value": ...}``; ``key_b64``/``value_b64``
    (standard base64) instead for binary data.  Blank lines are skipped."""

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for line, raw in enumerate(self.stream, 1):
            self._line = line
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                raise InputError(line, f"bad JSON: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(line, "expected a JSON object {\"key\": ..., \"value\": ...}, "
                                       f"got {_json_type(record)}")
            yield self._pair(record, line)

    @staticmethod
    def _pair(record: dict[str, object], line: int) -> tuple[bytes, bytes]:
        if "key" in record and "key_b64" not in record:
            key = _json_text(record["key"], line, "\"key\"")
        elif "key_b64" in record and "key" not in record:
            key = _b64(record["key_b64"], line, "\"key_b64\"")
        else:
            raise InputError(line, "need exactly one of \"key\" and \"key_b64\"")
        if "value" in record and "value_b64" not in record:
            value = _json_text(record["value"], line, "\"value\"")
        elif "value_b64" in record and "value" not in record:
            value = _b64(record["value_b64"], line, "\"value_b64\"")
        else:
            raise InputError(line, "need exactly one of \"value\" and \"value_b64\" "
                                   f"(key {_show(key)})")
        if len(record) != 2:
            extra = sorted(set(record) - {"key", "key_b64", "value", "value_b64"})
            raise InputError(line, f"unexpected field {extra[0]!r} (key {_show(key)})")
        return _check_key(key, line), value


_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


class JsonReader(Reader):
    """One JSON object ``{"key": "value", ...}`` of strings.  The file is
    read whole, but each pair is checked in order, with its line number."""

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        data = self.stream.read()
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            raise InputError(data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
        decoder = json.JSONDecoder()
        pos = _skip_space(text, 0)
        if text[pos:pos + 1] != "{":
            raise InputError(self._at(text, pos), "expected one JSON object "
                                                  "{\"key\": \"value\", ...}")
        pos = _skip_space(text, pos + 1)
        if text[pos:pos + 1] == "}":
            pos += 1
        else:
            while True:
                line = self._at(text, pos)
                if text[pos:pos + 1] != "\"":
                    raise InputError(line, "expected a string key in double quotes")
                try:
                    key, pos = decoder.raw_decode(text, pos)
                    pos = _skip_space(text, pos)
                    if text[pos:pos + 1] != ":":
                        raise InputError(self._at(text, pos), "expected ':' after the key")
                    value, pos = decoder.raw_decode(text, _skip_space(text, pos + 1))
                except json.JSONDecodeError as exc:
                    raise InputError(exc.lineno, f"bad JSON: {exc.msg}") from None
                kb = _check_key(_json_text(key, line, "a key"), line)
                yield kb, _json_text(value, line, f"the value of key {_show(kb)}")
                pos = _skip_space(text, pos)
                if text[pos:pos + 1] == ",":
                    pos = _skip_space(text, pos + 1)
                elif text[pos:pos + 1] == "}":
                    pos += 1
                    break
                else:
                    raise InputError(self._at(text, pos), "expected ',' or '}' after a value")
        if text[_skip_space(text, pos):]:
            raise InputError(self._at(text, pos), "unexpected data after the JSON object")

    _pos = 0

    def _at(self, text: str, pos: int) -> int:
        """The line of ``pos``; positions only grow, so this is linear overall."""
        if pos > self._pos:
            self._line = (self._line or 1) + text.count("\n", self._pos, pos)
            self._pos = pos
        return self._line or 1


class LinesReader(Reader):
    """One key per line (for ``export --keys-from``); blank lines are skipped."""

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for line, raw in enumerate(self.stream, 1):
            self._line = line
            key = raw.rstrip(b"\n").rstrip(b"\r")
            if key:
                yield _check_key(key, line), b""


READERS: dict[str, type[Reader]] = {
    "csv": CsvReader, "jsonl": JsonlReader, "json": JsonReader, "lines": LinesReader,
}


def guess_format(path: str, default: str | None = None) -> str:
    """The format named by a file's extension (.csv, .jsonl/.ndjson, .json)."""
    suffix = Path(path).suffix.lower()
    fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}.get(suffix)
    if fmt is None:
        if default is not None:
            return default
        raise CliError(f"cannot tell the format of {path!r} from its name: "
                       "use --format csv, jsonl or json")
    return fmt


@dataclass
class _Opened:
    stream: IO[bytes]
    name: str
    size: int | None  # bytes, when it is a regular file

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def _open_input(path: str) -> _Opened:
    if path == "-":
        return _Opened(sys.stdin.buffer, "<stdin>", None)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = os.fstat(stream.fileno()).st_size if os.path.isfile(path) else None
    return _Opened(stream, path, size)


def _count_lines(path: str) -> int:
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
    return count


# ---------------------------------------------------------------------------
# import and export
# ---------------------------------------------------------------------------


def run_import(client: Client, path: str, fmt: str | None) -> int:
    """Load a csv, jsonl or json file with pipelined multi-key SET lines."""
    fmt = fmt or guess_format(path)
    opened = _open_input(path)
    show_bar = sys.stderr.isatty()
    total = None
    if show_bar and opened.size is not None and fmt in ("csv", "jsonl"):
        total = _count_lines(path)  # about one key a line: close enough for an ETA
    with client:
        info = client.info()  # checks the server first, and learns its line limit
        client.max_line_bytes = int(info.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES))
        bar = _progress(total) if show_bar else None
        reader = READERS[fmt](opened.stream)
        imported = 0

        def stored(count: int) -> None:
            nonlocal imported
            imported += count
            if bar is not None:
                bar.update(count)

        started = time.perf_counter()
        try:
            client.mset_iter(reader, on_stored=stored)
        except InputError as exc:
            _close_bar(bar, failed=True)
            raise CliError(f"{opened.name}:{exc.line}: {exc.what} (stopped: {imported} keys "
                           f"before line {exc.line} were imported, nothing from that line on)"
                           ) from None
        except LineTooLongError as exc:  # ours: a pair that cannot fit in one request line
            _close_bar(bar, failed=True)
            raise CliError(f"{opened.name}: near line {reader.line}: {exc} (stopped: "
                           f"{imported} keys were imported, none of that line's batch)"
                           ) from None
        except OliviaError as exc:
            _close_bar(bar, failed=True)
            if isinstance(exc, ConnectionLostError):
                raise CliError(f"{exc} ({imported} keys were imported)") from None
            raise CliError(f"{opened.name}: the server refused a request: {exc} (stopped near "
                           f"line {reader.line}; {imported} keys were imported)") from None
        finally:
            opened.close()
        elapsed = time.perf_counter() - started
        _close_bar(bar, failed=False)
    rate = imported / elapsed if elapsed > 0 else 0.0
    print(f"imported {imported} keys in {elapsed:.2f} s ({rate:,.0f} keys/s), 0 errors",
          file=sys.stderr)
    return 0


def _progress(total: int | None) -> Any:
    from tqdm import tqdm  # only for a terminal

    try:
        sized = os.get_terminal_size(sys.stderr.fileno()).lines > 0
    except OSError:
        sized = False
    # tqdm draws nothing on a terminal that reports no size (0x0): assume 80x24.
    return tqdm(total=total, unit=" keys", unit_scale=True, file=sys.stderr, smoothing=0.1,
                desc="importing", dynamic_ncols=sized, ncols=None if sized else 80,
                nrows=None if sized else 24)


def _close_bar(bar: Any, failed: bool) -> None:
    if bar is None:
        return
    if not failed and bar.total is not None and bar.n != bar.total:
        bar.total = bar.n  # the line count was an estimate
        bar.refresh()
    bar.close()


def run_export(client: Client, options: argparse.Namespace) -> int:
    """Write the values of the named keys to stdout (missing keys are skipped)."""
    keys: dict[bytes, None] = {_wire(key): None for key in options.keys}
    if options.keys_from:
        fmt = options.keys_format or guess_format(options.keys_from, default="lines")
        opened = _open_input(options.keys_from)
        try:
            for key, _ in READERS[fmt](opened.stream):
                keys[key] = None
        except InputError as exc:
            raise CliError(f"{opened.name}:{exc.line}: {exc.what}") from None
        finally:
            opened.close()
    if not keys and not options.keys_from:
        raise CliError("export needs the keys to export (--keys-from FILE or KEY...): the "
                       "protocol has no verb that lists a node's keys yet")
    writer = _WRITERS[options.format](sys.stdout.buffer)
    exported = 0
    with client:
        names = list(keys)
        for start in range(0, len(names), EXPORT_BATCH):
            found = client.mget(names[start:start + EXPORT_BATCH])
            for key in names[start:start + EXPORT_BATCH]:
                if key in found:
                    writer.write(key, found[key])
                    exported += 1
    writer.close()
    missing = len(keys) - exported
    print(f"exported {exported} keys" + (f" ({missing} not found)" if missing else ""),
          file=sys.stderr)
    return 0


class _CsvWriter:
    """CSV with a ``key,value`` header; bytes that are not UTF-8 are written as is."""

    def __init__(self, out: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape",
                                      newline="", write_through=False)
        self._csv = csv.writer(self._text)
        self._csv.writerow(("key", "value"))

    def write(self, key: bytes, value: bytes) -> None:
        self._csv.writerow((key.decode("utf-8", "surrogateescape"),
                            value.decode("utf-8", "surrogateescape")))

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _JsonlWriter:
    """One JSON object a line; ``key_b64``/``value_b64`` for bytes that are not UTF-8."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, key: bytes, value: bytes) -> None:
        record: dict[str, str] = {}
        for name, data in (("key", key), ("value", value)):
            try:
                record[name] = data.decode()
            except UnicodeDecodeError:
                record[name + "_b64"] = base64.b64encode(data).decode()
        self._out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        self._out.flush()


class _JsonWriter:
    """One JSON object, a pair a line; keys and values must be UTF-8 text."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._first = True

    def write(self, key: bytes, value: bytes) -> None:
        try:
            pair = json.dumps(key.decode(), ensure_ascii=False) + ": " + json.dumps(
                value.decode(), ensure_ascii=False)
        except UnicodeDecodeError:
            raise CliError(f"key {_show(key)} or its value is not UTF-8 text, which a JSON "
                           "object cannot hold: use --format jsonl (value_b64)") from None
        self._out.write((("{\n  " if self._first else ",\n  ") + pair).encode())
        self._first = False

    def close(self) -> None:
        self._out.write(b"{}\n" if self._first else b"\n}\n")
        self._out.flush()


_WRITERS: dict[str, Callable[[IO[bytes]], _CsvWriter | _JsonlWriter | _JsonWriter]] = {
    "csv": _CsvWriter, "jsonl": _JsonlWriter, "json": _JsonWriter,
}


if __name__ == "__main__":
    sys.exit(main())
