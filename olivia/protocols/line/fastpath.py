"""The line protocol's fast path: GET and SET with nothing to decode.

Almost all traffic is untagged GET and SET of keys and values that contain
no ``%``.  Their wire form is already canonical, so a SET is stored and
echoed as it came and a GET's reply is a concatenation: no request object,
no result object.  This is an optimisation of the line front end, not a
second implementation: it calls the same keyspace operations as the verbs'
handlers (:meth:`Keyspace.set_plain`, :meth:`Keyspace.read`) and the same
reply-size rule, and for anything else (or anything wrong) it returns None
and the general path parses the line, wording the error if there is one.
``tests/test_fastpath.py`` checks, for any request line, that both paths
answer byte for byte the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from olivia.core.clock import STAMP_BYTES
from olivia.core.errors import ProtocolError
from olivia.core.keyspace import Keyspace, raise_if_too_large
from olivia.core.peers import RemoteFound
from olivia.core.registry import HOLDS_NOTHING, HOLDS_WRITES
from olivia.core.requests import MAX_KEY_BYTES
from olivia.core.values import HEADER_BYTES, needs_escape
from olivia.protocols.frontend import Pending
from olivia.protocols.line.escaping import COLON, COMMA, CR, PERCENT, encode_field
from olivia.protocols.line.replies import error_line

_GOT_NONE = b":GOT\n"


def plain_keys(args: bytes) -> list[bytes] | None:
    """The keys of ``GET`` arguments when none needs decoding, else None."""
    if PERCENT in args or CR in args or COLON in args:
        return None
    if COMMA not in args:  # one key: most requests
        return [args] if 0 < len(args) <= MAX_KEY_BYTES else None
    keys = args.split(b",")
    for key in keys:
        if not key or len(key) > MAX_KEY_BYTES:
            return None
    return keys


def plain_items(args: bytes) -> list[list[bytes]] | None:
    """``[key, value]`` pairs of ``SET`` arguments when none needs decoding, else None."""
    if PERCENT in args or CR in args:
        return None
    if COMMA not in args:  # one item: most requests
        pair = args.split(b":")
        if len(pair) == 2 and 0 < len(pair[0]) <= MAX_KEY_BYTES:
            return [pair]
        return None
    pairs = [item.split(b":") for item in args.split(b",")]
    for pair in pairs:
        if len(pair) != 2 or not pair[0] or len(pair[0]) > MAX_KEY_BYTES:
            return None
    return pairs


class FastPath:
    """The handlers the line front end tries first, by exact verb bytes."""

    def __init__(self, keyspace: Keyspace,
                 pending_reply: Callable[[asyncio.Future[bytes]], bytes],
                 acked_reply: Callable[[bytes], Callable[[asyncio.Future[Any]], bytes]]) -> None:
        self._keyspace = keyspace
        self._pending_reply = pending_reply
        self._acked_reply = acked_reply
        self._limit = keyspace.max_reply_bytes
        self._set_plain = keyspace.set_plain
        self._get_stored = keyspace.get_stored
        # What INFO counts (cmd_get, keyspace_hits...), for the requests
        # answered here: plain attribute increments, once a reply is certain.
        self.gets = 0  # GET requests
        self.sets = 0  # SET requests
        self.extra_keys = 0  # keys beyond the first of multi-key GETs
        self.misses = 0  # keys a GET found nowhere
        self.handlers: dict[bytes, Callable[[bytes], bytes | Pending | None]] = {
            b"GET": self.get,
            b"SET": self.set,
        }

    def set(self, args: bytes) -> bytes | Pending | None:
        """``SET`` of arguments that need no decoding: stored and echoed as sent."""
        pairs = plain_items(args)
        if pairs is None:
            return None
        acked = self._set_plain(pairs)
        self.sets += 1
        reply = b"".join((b":SAT ", args, b"\n"))
        if acked is None:
            return reply
        # Answered once the copies are stored; it holds back nothing else.
        return Pending(asyncio.ensure_future(acked), self._acked_reply(reply), HOLDS_NOTHING)

    def get(self, args: bytes) -> bytes | Pending | None:
        """``GET`` of keys that need no decoding."""
        keys = plain_keys(args)
        if keys is None:
            return None
        get = self._get_stored
        if len(keys) == 1:  # the hot path: kept flat
            stored = get(args)
            if stored is None:
                return self._miss(args, keys)
            if self._keyspace.touch is not None:  # lru/lfu eviction records reads
                self._keyspace.touch(args)
            value = stored[HEADER_BYTES:]
            if len(value) > self._limit:
                return None  # the general path words the error
            if stored[STAMP_BYTES]:  # the flag byte: the value needs escaping
                value = encode_field(value)
            self.gets += 1
            return b"".join((b":GOT ", args, b":", value, b"\n"))
        found = []
        size = 0
        for key in keys:
            stored = get(key)
            if stored is None:
                if self._keyspace.peers.has_alive_peer():
                    return None  # the general path asks the peers
                continue
            value = stored[HEADER_BYTES:]
            size += len(value)
            found.append(key + b":" + (encode_field(value) if needs_escape(stored) else value))
            if self._keyspace.touch is not None:
                self._keyspace.touch(key)
        if size > self._limit:
            return None
        self.gets += 1
        self.extra_keys += len(keys) - 1
        self.misses += len(keys) - len(found)
        return b":GOT " + b",".join(found) + b"\n" if found else _GOT_NONE

    def _miss(self, key: bytes, keys: list[bytes]) -> bytes | Pending:
        """A one-key GET that missed here: the keyspace asks the peers that may
        hold it, and their answer becomes the reply as soon as it comes."""
        future: asyncio.Future[bytes] | None = None

        def answered(found: RemoteFound) -> None:
            if future is not None and not future.done():  # else the client went away
                stored = found.get(key)
                self.misses += stored is None
                future.set_result(self._got_one(key, stored))

        self.gets += 1
        if not self._keyspace.read_remote(keys, answered):
            self.misses += 1
            return _GOT_NONE
        future = self._keyspace.new_future()
        return Pending(future, self._pending_reply, HOLDS_WRITES)

    def counted(self) -> tuple[int, int, int, int]:
        """(GETs, SETs, keyspace hits, keyspace misses) answered here."""
        return self.gets, self.sets, self.gets + self.extra_keys - self.misses, self.misses

    def _got_one(self, key: bytes, stored: bytes | None) -> bytes:
        if stored is None:
            return _GOT_NONE
        value = stored[HEADER_BYTES:]
        try:
            raise_if_too_large(len(value), self._limit, "GET")
        except ProtocolError as exc:
            return error_line(exc.message)
        if stored[STAMP_BYTES]:
            value = encode_field(value)
        return b"".join((b":GOT ", key, b":", value, b"\n"))
