"""The files ``olivia-cli import`` reads (and ``export --keys-from``): each
reader yields checked (key, value) pairs and raises InputError, with the
line number, at the first bad record."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO

from olivia.core.requests import MAX_KEY_BYTES, MAX_TTL_SECONDS
from olivia.tools.cli.errors import CliError, InputError, show

FORMATS = ("csv", "jsonl", "json")


class Reader:
    """Pairs (key, value) from a file, checked one by one.

    Iterating yields the pairs; a bad record raises :class:`InputError` with
    its line number.  ``line`` is the line reached so far.
    """

    _line = 0

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        #: Records with a TTL (an export's): (key, value, seconds), stored
        #: after the plain pairs, with SETEX; they are not yielded.
        self.expiring: list[tuple[bytes, bytes, float]] = []

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
        raise InputError(line, f"key {show(key)} is {len(key)} bytes long "
                               f"(limit {MAX_KEY_BYTES})")
    return key


def _breaks(text: str) -> int:
    """Line breaks inside a field, as the csv module counts lines."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class CsvReader(Reader):
    """CSV rows ``key,value`` or ``key,value,ttl`` (RFC 4180 quoting; an empty
    ttl: none); a first row ``key,value[,ttl]`` is a header and skipped;
    blank lines are skipped.  Text is UTF-8, and
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
            head = () if first in (["key", "value"], ["key", "value", "ttl"]) else (first,)
            for row in chain(head, rows):
                if len(row) == 2 or (len(row) == 3 and not row[2]):  # the fast path
                    key = row[0].encode("utf-8", "surrogateescape")
                    if 0 < len(key) <= MAX_KEY_BYTES:
                        yield key, row[1].encode("utf-8", "surrogateescape")
                        continue
                if not row:
                    continue
                # The line where the record starts, for the message.
                line = rows.line_num - sum(_breaks(field) for field in row)
                if len(row) not in (2, 3):
                    raise InputError(line, f"expected 2 fields (key,value) or 3 (key,value,ttl),"
                                           f" got {len(row)}; quote a value that contains a "
                                           "comma: \"a,b\"")
                key = _check_key(row[0].encode("utf-8", "surrogateescape"), line)
                self.expiring.append((key, row[1].encode("utf-8", "surrogateescape"),
                                      _ttl_of(row[2], line, key)))
        except csv.Error as exc:
            raise InputError(rows.line_num, f"malformed CSV: {exc}") from None
        finally:
            self._text.detach()


def _ttl_of(value: object, line: int, key: bytes) -> float:
    """A record's TTL: seconds, a number (or its text in CSV) > 0."""
    try:
        seconds = float(value) if isinstance(value, str | int | float) and \
            not isinstance(value, bool) else -1.0
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise InputError(line, f"bad ttl {value!r} of key {show(key)}: need seconds, more "
                               f"than 0 and at most {MAX_TTL_SECONDS:.0f}")
    return seconds


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
    (standard base64) instead for binary data; an optional ``"ttl"`` (seconds).
    Blank lines are skipped."""

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
            ttl = record.pop("ttl", None)
            key, value = self._pair(record, line)
            if ttl is None:
                yield key, value
            else:
                self.expiring.append((key, value, _ttl_of(ttl, line, key)))

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
                                   f"(key {show(key)})")
        if len(record) != 2:
            extra = sorted(set(record) - {"key", "key_b64", "value", "value_b64"})
            raise InputError(line, f"unexpected field {extra[0]!r} (key {show(key)})")
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
                yield kb, _json_text(value, line, f"the value of key {show(kb)}")
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
class Opened:
    stream: IO[bytes]
    name: str
    size: int | None  # bytes, when it is a regular file

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def open_input(path: str) -> Opened:
    if path == "-":
        return Opened(sys.stdin.buffer, "<stdin>", None)
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = os.fstat(stream.fileno()).st_size if os.path.isfile(path) else None
    return Opened(stream, path, size)


def count_lines(path: str) -> int:
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
    return count

