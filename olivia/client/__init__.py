"""Python clients for Olivia: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

Both speak the line protocol of docs/protocol.md through
:mod:`olivia.protocols.line`, and share one command set
(:mod:`olivia.client.commands`) over one sans-IO core
(:mod:`olivia.client.calls`); each only moves bytes.

Keys and values may be ``str`` (sent as UTF-8) or ``bytes``; results are
``bytes``.  ``ERR`` replies raise the typed exceptions of
:mod:`olivia.core.errors` (``KeyTooLongError``, ``BadItemError``, ...).  A
broken connection, a timeout or a reply that makes no sense raises
:class:`ConnectionLostError` (a timeout: :class:`ConnectionTimeoutError`, also
a ``TimeoutError``); the connection is then dropped, so a late reply can never
be taken for the answer to a later command, and the next command connects
again.

Multi-key commands are split into request lines of at most
:data:`MAX_BATCH_ITEMS` items and :data:`MAX_BATCH_BYTES` bytes of keys and
values, written together (pipelined) and answered together.  They are
therefore not atomic: if one line fails, the lines before it were applied.
"""

from olivia.client.aio import AsyncClient, AsyncPipeline
from olivia.client.calls import (
    DEFAULT_MAX_LINE_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    is_error_reply,
    set_lines,
)
from olivia.client.sync import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT, Client, Pipeline

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ITEMS",
    "AsyncClient",
    "AsyncPipeline",
    "Client",
    "Pipeline",
    "is_error_reply",
    "set_lines",
]
