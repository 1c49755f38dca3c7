"""Olivia: a distributed in-memory key/value daemon speaking a line protocol."""

__version__ = "0.1.0"

# Imported after __version__: olivia.node reads it from here.
from olivia.client import AsyncClient, AsyncPipeline, Client, Pipeline
from olivia.errors import (
    BadEncodingError,
    BadItemError,
    BadTagError,
    ConnectionLostError,
    ConnectionTimeoutError,
    KeyTooLongError,
    LineTooLongError,
    OliviaError,
    ProtocolError,
    ReplyTooLargeError,
    ServerError,
    UnknownVerbError,
)

__all__ = [
    "AsyncClient",
    "AsyncPipeline",
    "BadEncodingError",
    "BadItemError",
    "BadTagError",
    "Client",
    "ConnectionLostError",
    "ConnectionTimeoutError",
    "KeyTooLongError",
    "LineTooLongError",
    "OliviaError",
    "Pipeline",
    "ProtocolError",
    "ReplyTooLargeError",
    "ServerError",
    "UnknownVerbError",
    "__version__",
]
