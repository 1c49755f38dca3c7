"""The read-modify-write verbs, carried out at each key's home, one at a time.

Plain writes are last-writer-wins: two nodes that SET a key at once both
succeed and the newer stamp stays.  A verb that reads before it writes
(INCR, SETNX, CAS, DELIFEQ, GETDEL, RENAME, EXPIRE, PERSIST) cannot work
that way: two INCRs read on two nodes would both write ``n+1``.  So each key
has one node where these verbs run, its **home** (the first of its slot's
homes among the alive members, olivia.cluster.placement), and every other
node forwards them there (:meth:`Peers.home`, :meth:`Peers.execute`).

At the home, a verb runs in one synchronous step of the event loop: read
the key, decide, write.  Nothing else runs between the read and the write,
so the verbs on one key are serialised without a lock.  What the step reads
is the newest version the home can know: its own copy (with replicas, every
acknowledged write is stored on the homes first), or, when it holds none,
the newest copy the peers whose filters may hold the key send back
(REQUEST FETCH), fetched before the step; a tombstone here newer than that
copy wins.  The write then goes out as any write does: stamped, replicated
to the homes before the reply, announced so older copies elsewhere go.

TTL shares the path (it needs the key's TTL, which the home's copy has).
Docs: docs/design.md, "Atomic verbs", for what happens while members change.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from olivia.core.errors import NoSuchKeyError, NotIntegerError
from olivia.core.keyspace import Keyspace
from olivia.core.requests import (
    Amounts,
    Copy,
    Expiries,
    KeyList,
    Keys,
    KeyTtls,
    Numbers,
    Outcome,
    Pairs,
    Rename,
    Renamed,
    Result,
    Swap,
    Swapped,
    Ttls,
    Values,
)
from olivia.core.values import stamp_of, value_of

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_INTEGER = re.compile(rb"-?[0-9]{1,19}\Z").match


class Held(NamedTuple):
    """A key's current version as a verb's step sees it."""

    value: bytes
    ttl: float | None  # seconds left; None: no TTL


def integer_of(key: bytes, value: bytes) -> int:
    """The stored value as a signed 64-bit integer, or NotIntegerError."""
    number = int(value) if _INTEGER(value) else None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise NotIntegerError(f"value of {_shown(key)} is not an integer (a signed 64-bit "
                              "decimal is needed); nothing was changed")
    return number


def added(key: bytes, number: int, amount: int) -> int:
    total = number + amount
    if not INT64_MIN <= total <= INT64_MAX:
        raise NotIntegerError(f"incrementing {_shown(key)} by {amount} would overflow a signed "
                              "64-bit integer; nothing was changed")
    return total


def _shown(key: bytes) -> str:
    text = key.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 60 else text[:57] + "...")


Step = Callable[[Any, "View"], Outcome]


class View:
    """What one step sees of its keys: the local copy, or what was fetched."""

    def __init__(self, keyspace: Keyspace, fetched: dict[bytes, Copy]) -> None:
        self._keyspace = keyspace
        self._fetched = fetched

    def held(self, key: bytes) -> Held | None:
        keyspace = self._keyspace
        stored = keyspace.get_stored(key)
        copy = self._fetched.get(key)
        if stored is not None and (copy is None or stamp_of(stored) >= copy.stamp):
            return Held(value_of(stored), keyspace.store.ttl(key))
        if copy is None or copy.value is None:
            return None
        tombstone = keyspace.tombstones.get(key)
        if tombstone is not None and tombstone >= copy.stamp:
            return None  # deleted here after the copy was made (a GETDEL just now)
        return Held(copy.value, copy.ttl)


class Atomics:
    """The read-modify-write verbs of one node (see the module docstring)."""

    def __init__(self, keyspace: Keyspace) -> None:
        self._keyspace = keyspace

    # -- routing -------------------------------------------------------------

    def run(self, verb: str, items: Sequence[Any], key_of: Callable[[Any], bytes],
            step: Step) -> Outcome:
        """Carry out ``items`` of ``verb``: here for the keys whose home this
        node is, forwarded for the others; the results merged in request order."""
        peers = self._keyspace.peers
        groups: dict[str | None, list[Any]] = {}
        for item in items:
            groups.setdefault(peers.home(key_of(item)), []).append(item)
        if list(groups) == [None]:
            return self.here(items, key_of, step)
        parts: list[Awaitable[Result]] = []
        for name, group in groups.items():
            if name is None:
                parts.append(_future_of(self.here(group, key_of, step)))
            else:
                parts.append(peers.execute(name, verb, group))
        return _gathered(parts, [key_of(item) for item in items])

    def here(self, items: Sequence[Any], key_of: Callable[[Any], bytes],
             step: Step) -> Outcome:
        """Carry ``items`` out at this node, whatever it thinks their home is
        (a forwarded request is never forwarded on: no loops while views differ)."""
        keyspace = self._keyspace
        missing = [key for key in dict.fromkeys(map(key_of, items))
                   if keyspace.get_stored(key) is None]
        fetching = keyspace.peers.fetch(missing) if missing else None
        if fetching is None:
            return step(items, View(keyspace, {}))
        return _chained(fetching, lambda copies: step(items, View(keyspace, _newest(copies))))

    # -- the steps: each runs in one go, from read to write ------------------------

    def incr(self, items: Amounts, view: View) -> Outcome:
        state: dict[bytes, Held] = {}
        numbers = []
        for key, amount in items:
            held = state.get(key) or view.held(key)
            total = added(key, 0 if held is None else integer_of(key, held.value), amount)
            state[key] = Held(str(total).encode(), None if held is None else held.ttl)
            numbers.append((key, total))
        return self._after(self._write(state, "INCR"), Numbers(numbers))

    def setnx(self, items: Pairs, view: View) -> Outcome:
        state: dict[bytes, Held] = {}
        for key, value in items:
            if key not in state and view.held(key) is None:
                state[key] = Held(value, None)
        return self._after(self._write(state, "SETNX"), KeyList(tuple(state)))

    def cas(self, swap: Swap, view: View) -> Outcome:
        held = view.held(swap.key)
        if held is None or held.value != swap.old:
            return Swapped(swap.key, False, None if held is None else held.value)
        written = self._write({swap.key: Held(swap.new, held.ttl)}, "CAS")
        return self._after(written, Swapped(swap.key, True, swap.new))

    def delifeq(self, items: Pairs, view: View) -> Outcome:
        equal = [key for key, value in items
                 if (held := view.held(key)) is not None and held.value == value]
        return self._deleted(list(dict.fromkeys(equal)), KeyList(tuple(dict.fromkeys(equal))))

    def getdel(self, keys: Keys, view: View) -> Outcome:
        taken: dict[bytes, bytes] = {}
        for key in keys:
            if key not in taken and (held := view.held(key)) is not None:
                taken[key] = held.value
        pairs = [(key, taken[key]) for key in keys if key in taken]
        return self._deleted(list(taken), Values(pairs))

    def rename(self, rename: Rename, view: View) -> Outcome:
        held = view.held(rename.old)
        if held is None:
            raise NoSuchKeyError(f"no key {_shown(rename.old)} to rename")
        result = Renamed(rename.old, rename.new)
        if rename.new == rename.old:
            return result
        written = self._write({rename.new: held}, "RENAME")
        return self._after(written, self._deleted([rename.old], result))

    def expire(self, items: KeyTtls, view: View) -> Outcome:
        state: dict[bytes, Held] = {}
        done = []
        for item in items:
            held = state.get(item.key) or view.held(item.key)
            if held is not None:
                state[item.key] = Held(held.value, item.ttl)
                done.append(item)
        return self._after(self._write(state, "EXPIRE"), Expiries(done))

    def persist(self, keys: Keys, view: View) -> Outcome:
        state = {key: Held(held.value, None) for key in dict.fromkeys(keys)
                 if (held := view.held(key)) is not None and held.ttl is not None}
        return self._after(self._write(state, "PERSIST"), KeyList(tuple(state)))

    def ttl(self, keys: Keys, view: View) -> Ttls:
        return Ttls([(key, held.ttl) for key in keys if (held := view.held(key)) is not None])

    # -- writing ---------------------------------------------------------------

    def _write(self, state: dict[bytes, Held], verb: str) -> Awaitable[None] | None:
        if not state:
            return None
        return self._keyspace.write_versions(
            [(key, held.value, held.ttl) for key, held in state.items()], verb)

    def _deleted(self, keys: list[bytes], result: Outcome) -> Outcome:
        if not keys:
            return result
        deleting = self._keyspace.delete(tuple(keys))
        return result if isinstance(deleting, set) else self._after(deleting, result)

    @staticmethod
    def _after(pending: Awaitable[Any] | None, result: Outcome) -> Outcome:
        """``result`` once ``pending`` (a write's copies, a delete) is done."""
        if pending is None:
            return result
        return _chained(pending, lambda _: result)


def _newest(copies: Sequence[Copy]) -> dict[bytes, Copy]:
    newest: dict[bytes, Copy] = {}
    for copy in copies:
        held = newest.get(copy.key)
        if held is None or copy.stamp > held.stamp:
            newest[copy.key] = copy
    return newest


def _future_of(outcome: Outcome) -> asyncio.Future[Result]:
    if isinstance(outcome, asyncio.Future):
        return outcome
    if isinstance(outcome, Awaitable):
        return asyncio.ensure_future(outcome)
    future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
    future.set_result(outcome)
    return future


def _chained(awaitable: Awaitable[Any], then: Callable[[Any], Outcome]) -> asyncio.Future[Any]:
    """A future of ``then(result)``, itself resolved if it is an awaitable."""
    async def chain() -> Result:
        outcome = then(await awaitable)
        if isinstance(outcome, Awaitable):
            return await outcome
        return outcome
    return asyncio.ensure_future(chain())


def _gathered(parts: list[Awaitable[Result]], keys: list[bytes]) -> asyncio.Future[Result]:
    async def gather() -> Result:
        return merged(keys, list(await asyncio.gather(*parts)))
    return asyncio.ensure_future(gather())


def merged(keys: Sequence[bytes], results: Sequence[Result]) -> Result:
    """One result from the results of a request's parts (each a group of
    its keys, carried out at their home), in the request's key order."""
    first: Any = results[0]
    every: list[Any] = list(results)
    if isinstance(first, KeyList):
        present = {key for result in every for key in result.keys}
        return KeyList(tuple(key for key in dict.fromkeys(keys) if key in present))
    if isinstance(first, Expiries):
        return Expiries(_ordered(keys, [(item.key, item) for result in every
                                        for item in result.items]))
    if isinstance(first, Numbers | Values | Ttls):
        pairs = _ordered(keys, [(pair[0], pair) for result in every for pair in result.pairs])
        return type(first)(pairs)
    assert len(results) == 1, f"{type(first).__name__} results do not merge"
    return first  # type: ignore[no-any-return]


def _ordered(keys: Sequence[bytes], keyed: list[tuple[bytes, Any]]) -> list[Any]:
    """The values of ``keyed`` in the order their keys come in ``keys``
    (a key that comes twice takes its values in turn)."""
    queues: dict[bytes, list[Any]] = {}
    for key, value in keyed:
        queues.setdefault(key, []).append(value)
    ordered = []
    for key in keys:
        queue = queues.get(key)
        if queue:
            ordered.append(queue.pop(0))
    return ordered
