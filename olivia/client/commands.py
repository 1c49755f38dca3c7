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
    delete_call,
    get_call,
    info_call,
    mget_call,
    mset_call,
    ping_call,
    raw_call,
    set_call,
    setex_call,
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
            return obj._dispatch(build(obj, *args, **kwargs))

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


def commands_of(cls: type) -> list[str]:
    """The names of the commands ``cls`` has (for tests and help texts)."""
    return sorted(name for klass in cls.__mro__ for name, value in vars(klass).items()
                  if isinstance(value, command))


class Commands:
    """Every client command.  ``max_line_bytes`` is the server's request line
    limit: a command that cannot fit raises LineTooLongError before anything
    is sent."""

    max_line_bytes: int

    @command
    def get(self, key: Data) -> Call[bytes | None]:
        """The value of ``key``, or None if it does not exist."""
        return get_call(key)

    @command
    def mget(self, keys: Iterable[Data]) -> Call[dict[bytes, bytes]]:
        """The values of the keys that exist, as ``{key: value}`` (bytes keys)."""
        return mget_call(keys, self.max_line_bytes)

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
    def setex(self, key: Data, value: Data, ttl: float) -> Call[None]:
        """Store ``value`` under ``key`` for ``ttl`` seconds (> 0, decimals allowed)."""
        return setex_call(key, value, ttl, self.max_line_bytes)

    @command
    def delete(self, *keys: Data) -> Call[int]:
        """Delete keys; returns how many of them existed."""
        return delete_call(keys, self.max_line_bytes)

    @command
    def ping(self, text: Data = b"") -> Call[bytes]:
        """Round trip to the server; returns ``text`` as echoed."""
        return ping_call(text)

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
