"""The verb registry: one entry per verb, and the dispatcher over it.

A :class:`VerbSpec` says everything a front end needs to know of a verb:
its name, the shape of its items, whether it changes data (so a connection
never lets it overtake an earlier request still waiting on peers), whether
it may have to ask peers (so its result may be an awaitable), and the
handler that carries it out.  Front ends look verbs up by name and never
dispatch on anything else.

The entries are built per node (:func:`olivia.core.verbs.core_verbs`, and
the cluster's peer verbs), bound to that node's objects; a registry is made
once, at start-up, and not changed after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from olivia.core.requests import Outcome, Request, Shape

ItemsT = TypeVar("ItemsT")


# What a reply that waits on peers holds back on its connection, until it
# resolves (plain ints: compared for every pending reply).
HOLDS_NOTHING = 0  # only the order of replies (a write waiting for its copies)
HOLDS_WRITES = 1  # later writes wait (a read: what it sees must not change under it)
HOLDS_ALL = 2  # every later request waits (a DEL: nothing may see the key meanwhile)


@dataclass(frozen=True, slots=True)
class VerbSpec(Generic[ItemsT]):
    """One verb.  ``name`` is upper case (``GET``, ``REQUEST LOOKUP``)."""

    name: str
    shape: Shape[ItemsT]
    # handler(items) -> Outcome; with ``session``, handler(items, session).
    handler: Callable[..., Outcome]
    writes: bool = False
    needs_peers: bool = False
    peer: bool = False  # part of the peer dialect (nodes speak it to each other)
    local_only: bool = False  # accepted only from a client on loopback (operators' verbs)
    holds: int = HOLDS_ALL  # what its reply holds back while it waits on peers
    # The handler also takes the connection's Session (olivia.core.session):
    # AUTH and the peer handshake change what the connection may do.
    session: bool = False
    summary: str = ""  # one line for help texts
    # The read-modify-write verbs run at their keys' home (olivia.core.atomic):
    # ``handler`` forwards there; ``here`` is what a forwarded request runs.
    here: Callable[..., Outcome] | None = None


class Registry:
    """The verbs a node serves, by name."""

    def __init__(self, specs: Iterable[VerbSpec[Any]]) -> None:
        self._by_name: dict[str, VerbSpec[Any]] = {}
        for spec in specs:
            if spec.name != spec.name.upper() or not spec.name:
                raise ValueError(f"verb name {spec.name!r} must be upper case")
            if spec.name in self._by_name:
                raise ValueError(f"verb {spec.name} registered twice")
            self._by_name[spec.name] = spec

    def get(self, name: str) -> VerbSpec[Any] | None:
        return self._by_name.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[VerbSpec[Any]]:
        return iter(self._by_name.values())

    def names(self, prefix: str = "") -> list[str]:
        """Verb names starting with ``prefix``, in registration order."""
        return [name for name in self._by_name if name.startswith(prefix)]


def execute(request: Request) -> Outcome:
    """Carry out one request: its result, or an awaitable of it."""
    spec: VerbSpec[Any] = request.verb
    return spec.handler(request.items)
