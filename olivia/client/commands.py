"""The one command set of every client: :class:`Commands`.

Each command is written once, as a method that builds its :class:`Call`
(request lines and how the replies become a result).  The :class:`command`
descriptor turns it into the right method for each class that inherits the
set, the way redis-py's command mixins sit over ``execute_command``:

* on :class:`~olivia.client.sync.Client`, it runs the call and returns the result;
* on :class:`~olivia.client.aio.AsyncClient`, it returns a coroutine of the result;
* on either pipeline, it queues the call and returns the pipeline, so calls chain.

Types follow: ``Client().get(k)`` is ``bytes | None``, ``AsyncClient().get(k)``
a coroutine of it, ``Pipeline.get(k)`` the pipeline.  A new command is one
method here (and its verb on the server); tests/test_client_commands.py
checks that all four classes expose the same set.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from olivia.client.calls import (
    Call,
    Data,
    DataMapping,
    ScanCursor,
    cas_call,
    dbsize_call,
    decoded,
    delete_call,
    delifeq_call,
    echo_call,
    exists_call,
    expire_call,
    get_call,
    getdel_call,
    incr_call,
    info_call,
    keys_call,
    mget_call,
    mset_call,
    persist_call,
    ping_call,
    raw_call,
    rename_call,
    scan_call,
    set_call,
    setex_call,
    setnx_call,
    ttl_call,
    ttls_call,
)

if TYPE_CHECKING:
    from olivia.client.aio import AsyncClient, AsyncPipeline
    from olivia.client.sync import Client, Pipeline

P = ParamSpec("P")
T = TypeVar("T")


class command(Generic[P, T]):
    """A client command: ``build(self, *args)`` returns its Call."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.name = build.__name__
        self.__doc__ = build.__doc__

        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            call = build(obj, *args, **kwargs)
            return obj._dispatch(decoded(call) if obj.decode_responses else call)

        # Made once; binding it per access costs what binding any method does.
        self._method = functools.update_wrapper(method, build)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> command[P, T]: ...
    @overload
    def __get__(self, obj: Client, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncClient, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, obj: Pipeline, owner: type) -> Callable[P, Pipeline]: ...
    @overload
    def __get__(self, obj: AsyncPipeline, owner: type) -> Callable[P, AsyncPipeline]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        return types.MethodType(self._method, obj)


def _flat(keys: tuple[Data | Iterable[Data], ...]) -> list[Data]:
    """Keys given as arguments, lists of them, or both (redis-py takes all)."""
    flat: list[Data] = []
    for key in keys:
        if isinstance(key, str | bytes | int | float):
            flat.append(key)
        else:
            flat.extend(key)
    return flat


def _keys_of(first: Data | Iterable[Data], more: tuple[Data, ...]) -> list[Data]:
    return _flat((first, *more))


def commands_of(cls: type) -> list[str]:
    """The names of the commands ``cls`` has (for tests and help texts)."""
    return sorted(name for klass in cls.__mro__ for name, value in vars(klass).items()
                  if isinstance(value, command))


class Commands:
    """Every client command.  ``max_line_bytes`` is the server's request line
    limit: a command that cannot fit raises LineTooLongError before anything
    is sent."""

    max_line_bytes: int
    decode_responses: bool = False  # results as str (UTF-8) instead of bytes

    @command
    def get(self, key: Data) -> Call[bytes | None]:
        """The value of ``key``, or None if it does not exist."""
        return get_call(key)

    @command
    def mget(self, keys: Data | Iterable[Data], *more: Data) -> Call[dict[bytes, bytes]]:
        """The values of the keys that exist, as ``{key: value}`` (bytes keys);
        the keys as a list or as arguments, as redis-py takes them."""
        return mget_call(_keys_of(keys, more), self.max_line_bytes)

    @command
    def set(self, key: Data, value: Data) -> Call[None]:
        """Store ``value`` under ``key`` (clearing any TTL the key had)."""
        return set_call(key, value, self.max_line_bytes)

    @command
    def mset(self, mapping: DataMapping) -> Call[None]:
        """Store every pair of ``mapping``; large mappings go in several lines.

        Not atomic across lines: if one line is refused, the lines before it
        were stored, and its error is raised after all replies are read.
        """
        return mset_call(mapping, self.max_line_bytes)

    @command
    def setex(self, name: Data, time: float, value: Data) -> Call[None]:
        """Store ``value`` under ``name`` for ``time`` seconds (> 0, decimals
        allowed): redis-py's order of arguments."""
        return setex_call(name, value, time, self.max_line_bytes)

    @command
    def delete(self, *keys: Data | Iterable[Data]) -> Call[int]:
        """Delete keys (as arguments, or lists of them); how many existed."""
        return delete_call(_flat(keys), self.max_line_bytes)

    @command
    def ping(self) -> Call[bool]:
        """Round trip to the server; True when it answers."""
        return ping_call()

    @command
    def echo(self, text: Data) -> Call[bytes]:
        """PING with ``text``; returns it as echoed."""
        return echo_call(text)

    # -- the data verbs: atomic at each key's home, on the whole cluster --------

    @command
    def incr(self, name: Data, amount: int = 1) -> Call[int]:
        """Add ``amount`` to the integer at ``name`` (0 if missing); the new
        value.  NotIntegerError if the value is not a 64-bit integer."""
        return incr_call(name, amount, self.max_line_bytes)

    @command
    def incrby(self, name: Data, amount: int = 1) -> Call[int]:
        """The same as incr (redis-py has both)."""
        return incr_call(name, amount, self.max_line_bytes)

    @command
    def decr(self, name: Data, amount: int = 1) -> Call[int]:
        """Subtract ``amount``; the new value."""
        return incr_call(name, -amount, self.max_line_bytes)

    @command
    def decrby(self, name: Data, amount: int = 1) -> Call[int]:
        """The same as decr."""
        return incr_call(name, -amount, self.max_line_bytes)

    @command
    def setnx(self, name: Data, value: Data) -> Call[bool]:
        """Store ``value`` only if ``name`` exists on no node; True if stored."""
        return setnx_call(name, value, self.max_line_bytes)

    @command
    def cas(self, name: Data, old: Data, new: Data) -> Call[bool]:
        """Replace the value by ``new`` only if it is ``old``; True if it was."""
        return cas_call(name, old, new, self.max_line_bytes)

    @command
    def delifeq(self, name: Data, value: Data) -> Call[bool]:
        """Delete ``name`` only if its value is ``value``; True if deleted."""
        return delifeq_call(name, value, self.max_line_bytes)

    @command
    def getdel(self, name: Data) -> Call[bytes | None]:
        """The value of ``name`` (None if missing), which is deleted."""
        return getdel_call(name)

    @command
    def rename(self, src: Data, dst: Data) -> Call[bool]:
        """Move the value and TTL of ``src`` to ``dst``; True.  NoSuchKeyError
        if ``src`` does not exist."""
        return rename_call(src, dst, self.max_line_bytes)

    @command
    def exists(self, *names: Data) -> Call[int]:
        """How many of ``names`` exist (a name given twice counts twice)."""
        return exists_call(names, self.max_line_bytes)

    @command
    def expire(self, name: Data, time: float) -> Call[bool]:
        """Give ``name`` a TTL of ``time`` seconds; True if it exists."""
        return expire_call(name, time, self.max_line_bytes)

    @command
    def ttl(self, name: Data) -> Call[int]:
        """Seconds left (rounded), -1 if ``name`` has no TTL, -2 if it does not exist."""
        return ttl_call(name, 1.0)

    @command
    def pttl(self, name: Data) -> Call[int]:
        """Milliseconds left, -1 if no TTL, -2 if it does not exist."""
        return ttl_call(name, 1000.0)

    @command
    def ttls(self, names: Iterable[Data]) -> Call[dict[bytes, float | None]]:
        """Seconds left of each of ``names`` that exists, None for no TTL (one
        round trip for many keys: what an export needs)."""
        return ttls_call(names, self.max_line_bytes)

    @command
    def persist(self, name: Data) -> Call[bool]:
        """Remove the TTL of ``name``; True if it had one."""
        return persist_call(name)

    @command
    def keys(self, pattern: Data = "*") -> Call[list[bytes]]:
        """Every key of the cluster matching the glob ``pattern`` (TooManyError
        past the node's max_keys_reply: use scan_iter)."""
        return keys_call(pattern)

    @command
    def scan(self, cursor: ScanCursor = 0, match: Data | None = None,
             count: int | None = None) -> Call[tuple[ScanCursor, list[bytes]]]:
        """One page of a cluster-wide scan: (next cursor, keys); the cursor is
        0 when the scan is over (start with 0).  A key may come twice."""
        return scan_call(cursor, match, count)

    @command
    def dbsize(self) -> Call[int]:
        """The live keys of the whole cluster, each counted once (COUNT)."""
        return dbsize_call()

    @command
    def info(self) -> Call[dict[str, str]]:
        """The node's INFO fields (``keys``, ``peers``, ``used_memory``...)."""
        return info_call()

    @command
    def raw(self, line: Data) -> Call[bytes]:
        """Send one raw protocol line (e.g. ``"SET a:1,b:2"``); return the
        reply line exactly as sent by the server, without its LF.  Keys and
        values must already be percent-encoded; ``ERR`` replies are returned,
        not raised."""
        return raw_call(line)
