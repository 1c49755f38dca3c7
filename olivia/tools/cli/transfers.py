"""``olivia-cli import`` and ``export``: key/value files loaded with
pipelined multi-key SET lines, and named keys written out in a format
import reads."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from olivia.client import DEFAULT_MAX_LINE_BYTES, Client
from olivia.core.errors import ConnectionLostError, LineTooLongError, OliviaError
from olivia.tools.cli.errors import CliError, InputError, show
from olivia.tools.cli.import_readers import READERS, count_lines, guess_format, open_input
from olivia.tools.cli.request_lines import wire

EXPORT_BATCH = 10_000  # keys fetched per round trip by export
SCAN_PAGE = 1000  # keys a SCAN page asks for

def run_import(client: Client, path: str, fmt: str | None) -> int:
    """Load a csv, jsonl or json file with pipelined multi-key SET lines."""
    fmt = fmt or guess_format(path)
    opened = open_input(path)
    show_bar = sys.stderr.isatty()
    total = None
    if show_bar and opened.size is not None and fmt in ("csv", "jsonl"):
        total = count_lines(path)  # about one key a line: close enough for an ETA
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
            _store_expiring(client, reader.expiring, stored)
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


def _store_expiring(client: Client, items: list[tuple[bytes, bytes, float]],
                    stored: Callable[[int], None]) -> None:
    """The records that carry a TTL, with pipelined SETEX."""
    for start in range(0, len(items), EXPORT_BATCH):
        pipeline = client.pipeline()
        for key, value, ttl in items[start:start + EXPORT_BATCH]:
            pipeline.setex(key, ttl, value)
        pipeline.execute(raise_on_error=True)
        stored(len(items[start:start + EXPORT_BATCH]))


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
    """Write keys, their values and TTLs to stdout: the named keys, or with
    none named every key of the cluster (SCAN).  Missing keys are skipped."""
    named: dict[bytes, None] = {wire(key): None for key in options.keys}
    if options.keys_from:
        fmt = options.keys_format or guess_format(options.keys_from, default="lines")
        opened = open_input(options.keys_from)
        try:
            for key, _ in READERS[fmt](opened.stream):
                named[key] = None
        except InputError as exc:
            raise CliError(f"{opened.name}:{exc.line}: {exc.what}") from None
        finally:
            opened.close()
    writer = _WRITERS[options.format](sys.stdout.buffer)
    exported = asked = dropped_ttls = 0
    with client:
        batches = (_batches_of(list(named)) if named or options.keys_from
                   else _scanned(client, options.pattern))
        for names in batches:
            asked += len(names)
            found = client.mget(names)
            ttls = client.ttls([name for name in names if name in found])
            for key in names:
                if key in found:
                    ttl = ttls.get(key)
                    dropped_ttls += ttl is not None and not writer.keeps_ttls
                    writer.write(key, found[key], ttl)
                    exported += 1
    writer.close()
    missing = asked - exported
    print(f"exported {exported} key{'' if exported == 1 else 's'}"
          + (f" ({missing} not found)" if missing else ""), file=sys.stderr)
    if dropped_ttls:
        print(f"{dropped_ttls} TTLs were not written: a JSON object cannot hold them "
              "(--format jsonl or csv keep them)", file=sys.stderr)
    return 0


def _batches_of(names: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(names), EXPORT_BATCH):
        yield names[start:start + EXPORT_BATCH]


def _scanned(client: Client, pattern: str | None) -> Iterator[list[bytes]]:
    """Every key of the cluster (matching ``pattern``), once each, in batches."""
    seen: set[bytes] = set()
    batch: list[bytes] = []
    for key in client.scan_iter(match=None if pattern is None else wire(pattern),
                                count=SCAN_PAGE):
        if key not in seen:
            seen.add(key)
            batch.append(key)
            if len(batch) >= EXPORT_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def run_scan(client: Client, pattern: str | None) -> int:
    """Every key of the cluster, one a line (as redis-cli --scan prints them)."""
    out = sys.stdout.buffer
    with client:
        for batch in _scanned(client, pattern):
            out.write(b"".join(key + b"\n" for key in batch))
            out.flush()
    return 0


def _ttl_text(ttl: float) -> str:
    return f"{ttl:.3f}".rstrip("0").rstrip(".") or "0.001"


class _CsvWriter:
    """CSV with a ``key,value,ttl`` header (ttl empty for none, else seconds
    left); bytes that are not UTF-8 are written as is."""

    keeps_ttls = True

    def __init__(self, out: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape",
                                      newline="", write_through=False)
        self._csv = csv.writer(self._text)
        self._csv.writerow(("key", "value", "ttl"))

    def write(self, key: bytes, value: bytes, ttl: float | None = None) -> None:
        self._csv.writerow((key.decode("utf-8", "surrogateescape"),
                            value.decode("utf-8", "surrogateescape"),
                            "" if ttl is None else _ttl_text(ttl)))

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _JsonlWriter:
    """One JSON object a line; ``key_b64``/``value_b64`` for bytes that are
    not UTF-8; ``ttl`` (seconds left) for a key that has one."""

    keeps_ttls = True

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, key: bytes, value: bytes, ttl: float | None = None) -> None:
        record: dict[str, str | float] = {}
        for name, data in (("key", key), ("value", value)):
            try:
                record[name] = data.decode()
            except UnicodeDecodeError:
                record[name + "_b64"] = base64.b64encode(data).decode()
        if ttl is not None:
            record["ttl"] = float(_ttl_text(ttl))
        self._out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        self._out.flush()


class _JsonWriter:
    """One JSON object, a pair a line; keys and values must be UTF-8 text (no TTLs)."""

    keeps_ttls = False

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._first = True

    def write(self, key: bytes, value: bytes, ttl: float | None = None) -> None:
        try:
            pair = json.dumps(key.decode(), ensure_ascii=False) + ": " + json.dumps(
                value.decode(), ensure_ascii=False)
        except UnicodeDecodeError:
            raise CliError(f"key {show(key)} or its value is not UTF-8 text, which a JSON "
                           "object cannot hold: use --format jsonl (value_b64)") from None
        self._out.write((("{\n  " if self._first else ",\n  ") + pair).encode())
        self._first = False

    def close(self) -> None:
        self._out.write(b"{}\n" if self._first else b"\n}\n")
        self._out.flush()


_WRITERS: dict[str, Callable[[IO[bytes]], _CsvWriter | _JsonlWriter | _JsonWriter]] = {
    "csv": _CsvWriter, "jsonl": _JsonlWriter, "json": _JsonWriter,
}
