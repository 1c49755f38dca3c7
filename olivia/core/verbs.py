"""What each client verb means: one handler per verb, and the registry entries.

A handler takes the items of its verb's shape and returns a result
(:mod:`olivia.core.requests`) or an awaitable of one; it raises an
:class:`~olivia.core.errors.ProtocolError` for a request it cannot carry out.
No wire bytes here: the front ends translate.

To add a verb: a handler method here, an entry in :func:`core_verbs`, its
reply word in the line protocol (``olivia.protocols.line.replies``), a client
method (``olivia.client.commands``), a row in docs/protocol.md, and tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from olivia.core.help import VERB_HELP
from olivia.core.keyspace import Keyspace, StoredFound
from olivia.core.registry import HOLDS_ALL, HOLDS_NOTHING, HOLDS_WRITES, ItemsT, VerbSpec
from olivia.core.requests import (
    KEYS,
    NONE,
    PAIRS,
    TEXT,
    TTL_ITEMS,
    Ack,
    Bye,
    Done,
    Fields,
    Found,
    KeyList,
    Keys,
    Outcome,
    Pairs,
    Shape,
    Text,
    TtlItems,
)
from olivia.core.session import Guard, Session


class CoreVerbs:
    """The handlers of the client verbs, over one keyspace."""

    def __init__(self, keyspace: Keyspace, info: Callable[[], Sequence[tuple[str, str]]],
                 guard: Guard) -> None:
        self._keyspace = keyspace
        self._info = info
        self._guard = guard

    def auth(self, password: bytes, session: Session) -> Ack:
        self._guard.authenticate(session, password)
        return Ack()

    def set(self, pairs: Pairs) -> Outcome:
        return _done_when(self._keyspace.set_pairs(pairs))

    def setex(self, items: TtlItems) -> Outcome:
        return _done_when(self._keyspace.set_with_ttl(items))

    def get(self, keys: Keys) -> Outcome:
        found = self._keyspace.read(keys)
        if isinstance(found, dict):
            return self._found(keys, found)
        return _then(found, lambda stored: self._found(keys, stored))

    def _found(self, keys: Keys, stored: StoredFound) -> Found:
        """The keys found, in the order asked (a key asked twice, twice)."""
        pairs = [(key, stored[key]) for key in keys if key in stored]
        self._keyspace.check_reply_size(pairs, "GET")
        return Found(pairs)

    def delete(self, keys: Keys) -> Outcome:
        deleted = self._keyspace.delete(keys)
        if isinstance(deleted, set):
            return _listed(keys, deleted)
        return _then(deleted, lambda existed: _listed(keys, existed))

    def ping(self, text: bytes) -> Text:
        return Text(text)

    def info(self, _: None) -> Fields:
        return Fields(self._info())

    def quit(self, _: None) -> Bye:
        return Bye()


def _done_when(acked: Awaitable[None] | None) -> Outcome:
    """Done, now or once the write's copies are stored (replication)."""
    return Done() if acked is None else _then(acked, lambda _: Done())


def _listed(keys: Keys, present: set[bytes]) -> KeyList:
    """The keys of the request that are in ``present``, in request order, once each."""
    return KeyList(tuple(key for key in dict.fromkeys(keys) if key in present))


def _then(awaitable: Awaitable[Any], finish: Callable[[Any], Any]) -> asyncio.Future[Any]:
    """A future of ``finish(result)`` once ``awaitable`` (a future) is done;
    its exception, or ``finish``'s, becomes the future's."""
    source = asyncio.ensure_future(awaitable)
    result: asyncio.Future[Any] = source.get_loop().create_future()

    def done(_: asyncio.Future[Any]) -> None:
        if result.done():
            return  # cancelled: the client went away
        if source.cancelled():
            result.cancel()
            return
        error = source.exception()
        if error is None:
            try:
                result.set_result(finish(source.result()))
                return
            except Exception as exc:  # a ProtocolError from finish, or a bug
                error = exc
        result.set_exception(error)

    def cancelled(_: asyncio.Future[Any]) -> None:
        if result.cancelled() and not source.done():
            source.cancel()  # nobody waits for it any more

    source.add_done_callback(done)
    result.add_done_callback(cancelled)
    return result


def core_verbs(verbs: CoreVerbs) -> list[VerbSpec[Any]]:
    """The client verbs' registry entries, bound to ``verbs``."""
    return [
        _spec("SET", PAIRS, verbs.set, writes=True, needs_peers=True, holds=HOLDS_NOTHING),
        _spec("SETEX", TTL_ITEMS, verbs.setex, writes=True, needs_peers=True,
              holds=HOLDS_NOTHING),
        _spec("GET", KEYS, verbs.get, needs_peers=True, holds=HOLDS_WRITES),
        _spec("DEL", KEYS, verbs.delete, writes=True, needs_peers=True, holds=HOLDS_ALL),
        _spec("PING", TEXT, verbs.ping),
        _spec("INFO", NONE, verbs.info),
        _spec("QUIT", NONE, verbs.quit),
        _spec("AUTH", TEXT, verbs.auth, session=True),
    ]


def _spec(name: str, shape: Shape[ItemsT], handler: Callable[..., Outcome],
          **flags: Any) -> VerbSpec[ItemsT]:
    """A registry entry whose summary comes from the help table (olivia.core.help)."""
    return VerbSpec(name, shape, handler, summary=VERB_HELP[name].summary, **flags)
