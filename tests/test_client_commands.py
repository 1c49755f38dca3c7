"""One command set for every client: Client, AsyncClient and both pipelines
expose the same commands, and each behaves as its class says (a result, a
coroutine, the pipeline itself)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from olivia import AsyncClient, AsyncPipeline, Client, Pipeline
from olivia.client.commands import Commands, command, commands_of

CLASSES = (Client, AsyncClient, Pipeline, AsyncPipeline)
# Arguments that build every command's request without touching a socket.
ARGS: dict[str, tuple[object, ...]] = {
    "get": ("k",), "mget": (["a", "b"],), "set": ("k", "v"), "mset": ({"a": "1"},),
    "setex": ("k", 1.5, "v"), "delete": ("a", "b"), "ping": (), "echo": ("hi",), "info": (),
    "raw": ("PING",), "incr": ("n",), "incrby": ("n", 2), "decr": ("n",), "decrby": ("n", 2),
    "setnx": ("k", "v"), "cas": ("k", "a", "b"), "delifeq": ("k", "v"), "getdel": ("k",),
    "rename": ("a", "b"), "exists": ("a", "b"), "expire": ("k", 5), "ttl": ("k",),
    "pttl": ("k",), "ttls": (["a", "b"],), "persist": ("k",), "keys": ("a*",),
    "scan": (0, "a*", 10), "dbsize": (),
}


def test_all_four_classes_expose_the_same_commands() -> None:
    names = commands_of(Commands)
    assert names == sorted(ARGS)
    for cls in CLASSES:
        assert commands_of(cls) == names, cls
        for name in names:
            assert isinstance(inspect.getattr_static(cls, name), command), (cls, name)


def test_commands_keep_their_signature_and_doc() -> None:
    client = Client()
    assert list(inspect.signature(client.setex).parameters) == ["name", "time", "value"]
    assert client.get.__doc__ == Commands.__dict__["get"].__doc__
    assert "value of ``key``" in (client.get.__doc__ or "")


@pytest.mark.parametrize("name", sorted(ARGS))
def test_a_pipeline_queues_and_chains(name: str) -> None:
    pipeline = Client().pipeline()
    assert getattr(pipeline, name)(*ARGS[name]) is pipeline
    assert len(pipeline) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(ARGS))
async def test_the_async_client_returns_coroutines_and_its_pipeline_chains(name: str) -> None:
    client = AsyncClient(port=1)  # nothing listens there: the coroutine is not awaited
    pending = getattr(client, name)(*ARGS[name])
    assert asyncio.iscoroutine(pending)
    pending.close()
    pipeline = client.pipeline()
    assert getattr(pipeline, name)(*ARGS[name]) is pipeline
