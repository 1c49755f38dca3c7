"""The RESP port's fast path: plain GET and SET, the bulk of what clients send.

As the line protocol's (olivia.protocols.line.fastpath), an optimisation of
the front end, not a second implementation: it calls the same keyspace
operations the core verbs call (:meth:`Keyspace.get_stored`,
:meth:`Keyspace.set_pairs`) and declines (returns None) anything else —
options, a key the core would refuse, a miss that must ask the peers, a
value over the reply limit — so the general path handles it and words any
error.  ``tests/test_resp_fastpath.py`` checks both paths answer alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from olivia.core.errors import ProtocolError
from olivia.core.keyspace import Keyspace
from olivia.core.registry import HOLDS_NOTHING
from olivia.core.requests import MAX_KEY_BYTES
from olivia.core.values import HEADER_BYTES, NEEDS_ESCAPE
from olivia.protocols.frontend import Pending, result_of
from olivia.protocols.resp.replies import NIL2, NIL3, OK, error_of


class RespFastPath:
    """GET and SET of one key, by the command's exact bytes."""

    def __init__(self, keyspace: Keyspace) -> None:
        self._keyspace = keyspace
        self._get_stored = keyspace.get_stored
        self._limit = keyspace.max_reply_bytes
        self._set_plain = keyspace.set_plain
        self._set_pairs = keyspace.set_pairs
        self.gets = self.sets = self.misses = 0  # what INFO counts (cmd_get...)
        handlers: dict[bytes, Callable[[list[bytes], bool], bytes | Pending | None]] = {
            b"GET": self.get, b"SET": self.set}
        self.handlers = {**handlers, **{name.lower(): handler
                                        for name, handler in handlers.items()}}

    def get(self, frame: list[bytes], resp3: bool) -> bytes | Pending | None:
        if len(frame) != 2:
            return None
        key = frame[1]
        if not 0 < len(key) <= MAX_KEY_BYTES:
            return None
        stored = self._get_stored(key)
        if stored is None:
            if self._keyspace.peers.has_alive_peer():
                return None  # the general path asks the peers
            self.gets += 1
            self.misses += 1
            return NIL3 if resp3 else NIL2
        value = stored[HEADER_BYTES:]
        if len(value) > self._limit:
            return None
        if self._keyspace.touch is not None:
            self._keyspace.touch(key)
        self.gets += 1
        return b"$%d\r\n%s\r\n" % (len(value), value)

    def set(self, frame: list[bytes], resp3: bool) -> bytes | Pending | None:
        if len(frame) != 3:
            return None  # options: the general path
        key = frame[1]
        if not 0 < len(key) <= MAX_KEY_BYTES:
            return None
        value = frame[2]
        # A value with no byte the line protocol escapes takes the store's
        # plain path (one header per batch), as the line fast path's SETs do.
        acked = (self._set_plain if NEEDS_ESCAPE(value) is None else self._set_pairs)(
            ((key, value),))
        self.sets += 1
        if acked is None:
            return OK
        return Pending(asyncio.ensure_future(acked), _acked, HOLDS_NOTHING)


def _acked(future: asyncio.Future[Any]) -> bytes:
    """+OK once a SET's copies are stored, or the error that stopped them."""
    try:
        result_of(future)
    except ProtocolError as exc:
        return error_of(exc)
    return OK
