"""How a reply is printed, in one of three modes.

- ``wire``: the reply line exactly as the server sent it.  The default when
  stdout is not a terminal, because scripts read it.
- ``human``: decoded for reading, the way redis-cli shows its replies
  (quoted strings, numbered lists, ``(error) ...``).  The default at a
  terminal.
- ``raw`` (``--raw``): the decoded bytes, one item a line, as
  ``redis-cli --raw`` prints them; errors go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO

from olivia.core.errors import ProtocolError
from olivia.protocols.line.escaping import decode_field
from olivia.protocols.line.replies import (
    ReplyLine,
    decode_fields,
    decode_keys,
    decode_pairs,
    parse_reply,
)
from olivia.tools.cli.request_lines import SentRequest, parse_sent

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def default_mode() -> str:
    return "human" if sys.stdout.isatty() else "wire"


def quote(data: bytes) -> str:
    """``"..."`` with bytes that are not printable text escaped (``\\x00``);
    UTF-8 text is shown as its characters."""
    return '"' + escape(data) + '"'


def escape(data: bytes) -> str:
    text = data.decode("utf-8", "surrogateescape")
    return "".join(_ESCAPES.get(char) or (char if char.isprintable() else _hex(char))
                   for char in text)


def _hex(char: str) -> str:
    if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8, kept by surrogateescape
        return f"\\x{ord(char) - 0xDC00:02x}"
    return "".join(f"\\x{byte:02x}" for byte in char.encode())


# -- human ---------------------------------------------------------------------------


def human_lines(request: SentRequest, reply: ReplyLine) -> list[str]:
    """The reply as redis-cli would show it; a tagged reply starts with ``[tag]``."""
    lines = _HUMAN.get(reply.word, _human_other)(request, reply.payload)
    if reply.tag:
        lines[0] = f"[{escape(reply.tag)}] {lines[0]}"
    return lines


def _human_error(request: SentRequest, payload: bytes) -> list[str]:
    return [f"(error) {escape(payload)}"]


def _human_ok(request: SentRequest, payload: bytes) -> list[str]:
    return ["OK"]


def _human_got(request: SentRequest, payload: bytes) -> list[str]:
    pairs = decode_pairs(payload)
    if not pairs:
        return ["(nil)"]
    if request.item_count == 1:
        return [quote(pairs[0][1])]
    return _numbered([f"{quote(key)} => {quote(value)}" for key, value in pairs])


def _human_deleted(request: SentRequest, payload: bytes) -> list[str]:
    keys = decode_keys(payload)
    return [" ".join([f"(deleted {len(keys)})", ", ".join(quote(key) for key in keys)]).rstrip()]


def _human_pong(request: SentRequest, payload: bytes) -> list[str]:
    return [quote(payload) if payload else "PONG"]


def _human_info(request: SentRequest, payload: bytes) -> list[str]:
    return [f"{name}={value}" for name, value in decode_fields(payload)] or ["(empty)"]


def _human_fulfilled(request: SentRequest, payload: bytes) -> list[str]:
    if request.verb == "REQUEST PEERS":
        return _numbered([escape(peer) for peer in payload.split(b",")]) if payload else [
            "(no peers)"]
    return [escape(payload)] if payload else ["OK"]


def _human_other(request: SentRequest, payload: bytes) -> list[str]:
    return [escape(payload) or "OK"]


def _human_keys(request: SentRequest, payload: bytes) -> list[str]:
    """A list of keys (SATNX, EXISTS, PERSISTED, KEYS), as redis-cli shows a list."""
    keys = decode_keys(payload)
    return _numbered([quote(key) for key in keys]) if keys else ["(empty list)"]


def _human_numbers(request: SentRequest, payload: bytes) -> list[str]:
    """INCRED, DECRED, TTL, EXPIRY: ``(integer) n`` for one key, else numbered."""
    pairs = decode_pairs(payload)
    if not pairs:
        return ["(empty list)"]
    if len(pairs) == 1:
        return [f"(integer) {escape(pairs[0][1])}"]
    return _numbered([f"{quote(key)} => (integer) {escape(value)}" for key, value in pairs])


def _human_cas_failed(request: SentRequest, payload: bytes) -> list[str]:
    _, sep, current = payload.partition(b":")
    shown = quote(decode_field(current)) if sep else "(nil)"
    return [f"(failed) the value is {shown}"]


def _human_scanned(request: SentRequest, payload: bytes) -> list[str]:
    cursor, _, keys = payload.partition(b" ")
    return [f"cursor {escape(cursor)}", *_human_keys(request, keys)]


def _human_count(request: SentRequest, payload: bytes) -> list[str]:
    return [f"(integer) {escape(payload)}"]


def _numbered(items: list[str]) -> list[str]:
    width = len(str(len(items)))
    return [f"{number:>{width}}) {item}" for number, item in enumerate(items, 1)]


_HUMAN: dict[bytes, Callable[[SentRequest, bytes], list[str]]] = {
    b"ERR": _human_error, b"SAT": _human_ok, b"SATEX": _human_ok, b"GOT": _human_got,
    b"DELETED": _human_deleted, b"PONG": _human_pong, b"INFO": _human_info,
    b"FULFILLED": _human_fulfilled, b"BYE": lambda request, payload: ["BYE"],
    b"INCRED": _human_numbers, b"DECRED": _human_numbers, b"TTL": _human_numbers,
    b"EXPIRY": _human_numbers, b"SATNX": _human_keys, b"EXISTS": _human_keys,
    b"PERSISTED": _human_keys, b"KEYS": _human_keys, b"CASSED": _human_ok,
    b"CASFAILED": _human_cas_failed, b"RENAMED": _human_ok, b"SCANNED": _human_scanned,
    b"COUNT": _human_count,
}


# -- raw -----------------------------------------------------------------------------


def raw_items(request: SentRequest, reply: ReplyLine) -> list[bytes]:
    """What ``--raw`` prints for a reply that is not an error, one item a line."""
    payload = reply.payload
    if not payload:
        return []
    if reply.word == b"GOT":
        return [value for _, value in decode_pairs(payload)]
    if reply.word in (b"DELETED", b"SATNX", b"EXISTS", b"PERSISTED", b"KEYS"):
        return list(decode_keys(payload))
    if reply.word in (b"INCRED", b"DECRED", b"TTL", b"EXPIRY"):
        return [value for _, value in decode_pairs(payload)]
    if reply.word == b"SCANNED":
        cursor, _, keys = payload.partition(b" ")
        return [cursor, *decode_keys(keys)]
    if reply.word in (b"SAT", b"SATEX"):
        return [b":".join(_decode_item(item)) for item in payload.split(b",")]
    if reply.word == b"INFO":
        return [f"{name}={value}".encode() for name, value in decode_fields(payload)]
    if reply.word == b"FULFILLED" and request.verb == "REQUEST PEERS":
        return payload.split(b",")
    return [payload]


def _decode_item(item: bytes) -> list[bytes]:
    return [decode_field(field) for field in item.split(b":")]


# -- printing ------------------------------------------------------------------------


class ReplyPrinter:
    """Prints replies in one mode and remembers whether any was an error."""

    def __init__(self, mode: str, out: IO[bytes] | None = None,
                 err: IO[bytes] | None = None) -> None:
        self.mode = mode
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr.buffer
        self.errors = 0

    def show(self, line: bytes, reply: bytes) -> bool:
        """Print the reply to the request ``line``; True if it is an error."""
        try:
            parsed: ReplyLine | None = parse_reply(reply)
        except ProtocolError:
            parsed = None  # not a reply line: print what came
        failed = parsed is not None and parsed.is_error
        self.errors += failed
        if self.mode == "wire" or parsed is None or not self._decoded(parse_sent(line), parsed):
            self._write(self.out, reply + b"\n")
        return failed

    def _decoded(self, request: SentRequest, reply: ReplyLine) -> bool:
        """Print the reply decoded; False if it cannot be (print it as it came)."""
        try:
            if self.mode == "human":
                text = "".join(line + "\n" for line in human_lines(request, reply))
                self._write(self.out, text.encode(_encoding(), "backslashreplace"))
            elif reply.is_error:
                self._write(self.err, b"(error) " + reply.payload + b"\n")
            else:
                self._write(self.out, b"".join(item + b"\n" for item in raw_items(request, reply)))
        except ProtocolError:  # a payload of the wrong shape, or a bad escape in it
            return False
        return True

    @staticmethod
    def _write(stream: IO[bytes], data: bytes) -> None:
        stream.write(data)
        stream.flush()


def _encoding() -> str:
    return getattr(sys.stdout, "encoding", None) or "utf-8"
