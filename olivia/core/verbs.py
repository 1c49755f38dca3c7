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

from olivia.core.atomic import Atomics, View
from olivia.core.errors import TooManyError
from olivia.core.help import VERB_HELP
from olivia.core.keyspace import Keyspace, StoredFound
from olivia.core.registry import HOLDS_ALL, HOLDS_NOTHING, HOLDS_WRITES, ItemsT, VerbSpec
from olivia.core.requests import (
    AMOUNTS,
    KEY_TTLS,
    KEYS,
    NONE,
    PAIRS,
    PATTERN,
    RENAME,
    SCAN_ARGS,
    SWAP,
    TEXT,
    TTL_ITEMS,
    Ack,
    Amounts,
    Bye,
    Count,
    Done,
    Fields,
    Found,
    KeyList,
    Keys,
    Outcome,
    Pairs,
    ScanArgs,
    ScanPage,
    Shape,
    Text,
    TtlItems,
)
from olivia.core.scan import (
    START,
    Cursor,
    first_at_or_after,
    member_hash,
    next_member,
    parse_cursor,
    scan_order,
)
from olivia.core.session import Guard, Session
from olivia.observe.stats import Stats

#: Keys a KEYS request asks each node for per page.
KEYS_PAGE = 10_000


class CoreVerbs:
    """The handlers of the client verbs, over one keyspace."""

    def __init__(self, keyspace: Keyspace, info: Callable[[], Sequence[tuple[str, str]]],
                 guard: Guard, max_keys_reply: int = 100_000, stats: Stats | None = None) -> None:
        self._keyspace = keyspace
        self._stats = stats if stats is not None else Stats(0.0)
        self._info = info
        self._guard = guard
        self.atomics = Atomics(keyspace)
        self._max_keys_reply = max_keys_reply

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
        self._stats.keyspace_hits += len(pairs)
        self._stats.keyspace_misses += len(keys) - len(pairs)
        return Found(pairs)

    def delete(self, keys: Keys) -> Outcome:
        deleted = self._keyspace.delete(keys)
        if isinstance(deleted, set):
            return _listed(keys, deleted)
        return _then(deleted, lambda existed: _listed(keys, existed))

    def exists(self, keys: Keys) -> Outcome:
        found = self._keyspace.read(keys)
        if isinstance(found, dict):
            return _listed(keys, set(found))
        return _then(found, lambda stored: _listed(keys, set(stored)))

    # -- SCAN, KEYS, COUNT: the whole cluster (olivia.core.scan) -------------------

    def scan(self, args: ScanArgs) -> Outcome:
        peers = self._keyspace.peers
        order = scan_order(peers.members())
        cursor = parse_cursor(args.cursor)
        if cursor is None:
            name, position = order[0], START
        else:
            at = first_at_or_after(order, cursor.member)
            if at is None:
                return ScanPage(START, ())
            name, same = at
            position = cursor.position if same else START
        if name == peers.name:
            return _page(order, name, *self._keyspace.scan_here(position, args.size,
                                                               args.pattern))
        remote = peers.scan_page(name, position, args.size, args.pattern)
        return _then(remote, lambda page: _page(order, name, *page))

    def keys(self, pattern: bytes) -> Outcome:
        return asyncio.ensure_future(self._all_keys(pattern or b"*"))

    async def _all_keys(self, pattern: bytes) -> KeyList:
        found: dict[bytes, None] = {}
        cursor = START
        while True:
            outcome: Any = self.scan(ScanArgs(cursor, KEYS_PAGE, pattern))
            page = outcome if isinstance(outcome, ScanPage) else await outcome
            assert isinstance(page, ScanPage)
            found.update(dict.fromkeys(page.keys))
            if len(found) > self._max_keys_reply:
                raise TooManyError(f"KEYS would answer with more than max_keys_reply "
                                   f"({self._max_keys_reply}) keys; use SCAN")
            cursor = page.cursor
            if cursor == START:
                return KeyList(tuple(found))

    def count(self, _: None) -> Outcome:
        keyspace = self._keyspace
        here = keyspace.count_listed(keyspace.peers.lists_slot)
        elsewhere = keyspace.peers.count_elsewhere()
        if elsewhere is None:
            return Count(here)
        return _then(elsewhere, lambda count: Count(here + count))

    def ping(self, text: bytes) -> Text:
        return Text(text)

    def info(self, _: None) -> Fields:
        return Fields(self._info())

    def quit(self, _: None) -> Bye:
        return Bye()


def _page(order: Sequence[str], name: str, position: bytes, keys: Sequence[bytes]) -> ScanPage:
    """A cluster page from member ``name``'s page: where the scan goes next."""
    if position:
        return ScanPage(Cursor(member_hash(name), position).encode(), keys)
    after = next_member(order, member_hash(name))
    return ScanPage(START if after is None else Cursor(member_hash(after), START).encode(), keys)


def _negated(items: Amounts) -> Amounts:
    return tuple((key, -amount) for key, amount in items)


def _first(item: Sequence[bytes]) -> bytes:
    return item[0]


def _itself(key: bytes) -> bytes:
    return key


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
        *atomic_verbs(verbs.atomics),
        _spec("EXISTS", KEYS, verbs.exists, needs_peers=True, holds=HOLDS_WRITES),
        _spec("SCAN", SCAN_ARGS, verbs.scan, needs_peers=True, holds=HOLDS_NOTHING),
        _spec("KEYS", PATTERN, verbs.keys, needs_peers=True, holds=HOLDS_NOTHING),
        _spec("COUNT", NONE, verbs.count, needs_peers=True, holds=HOLDS_NOTHING),
        _spec("PING", TEXT, verbs.ping),
        _spec("INFO", NONE, verbs.info),
        _spec("QUIT", NONE, verbs.quit),
        _spec("AUTH", TEXT, verbs.auth, session=True),
    ]


def atomic_verbs(atomics: Atomics) -> list[VerbSpec[Any]]:
    """The read-modify-write verbs: each runs at its keys' home (``handler``
    forwards; ``here`` is what a forwarded request runs)."""
    def entry(name: str, shape: Shape[Any], key_of: Callable[[Any], bytes],
              step: Callable[[Any, View], Outcome], single: bool = False,
              forward_as: str = "", adapt: Callable[[Any], Any] = _itself,
              writes: bool = True) -> VerbSpec[Any]:
        verb = forward_as or name

        def items_of(items: Any) -> Any:
            return (adapt(items),) if single else adapt(items)

        def run(items: Any) -> Outcome:
            return atomics.run(verb, items_of(items), key_of, step)

        def here(items: Any) -> Outcome:
            return atomics.here(items_of(items), key_of, step)

        return _spec(name, shape, run, here=here, writes=writes, needs_peers=True,
                     holds=HOLDS_ALL if writes else HOLDS_WRITES)

    def one(step: Callable[[Any, View], Outcome]) -> Callable[[Any, View], Outcome]:
        return lambda items, view: step(items[0], view)

    return [
        entry("INCR", AMOUNTS, _first, atomics.incr),
        entry("DECR", AMOUNTS, _first, atomics.incr, forward_as="INCR", adapt=_negated),
        entry("SETNX", PAIRS, _first, atomics.setnx),
        entry("CAS", SWAP, lambda swap: swap.key, one(atomics.cas), single=True),
        entry("DELIFEQ", PAIRS, _first, atomics.delifeq),
        entry("GETDEL", KEYS, _itself, atomics.getdel),
        entry("RENAME", RENAME, lambda rename: rename.old, one(atomics.rename), single=True),
        entry("EXPIRE", KEY_TTLS, lambda item: item.key, atomics.expire),
        entry("PERSIST", KEYS, _itself, atomics.persist),
        entry("TTL", KEYS, _itself, atomics.ttl, writes=False),
    ]


def _spec(name: str, shape: Shape[ItemsT], handler: Callable[..., Outcome],
          **flags: Any) -> VerbSpec[ItemsT]:
    """A registry entry whose summary comes from the help table (olivia.core.help)."""
    return VerbSpec(name, shape, handler, summary=VERB_HELP[name].summary, **flags)
