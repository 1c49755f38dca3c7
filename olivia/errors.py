"""The one error hierarchy of Olivia.

Every error a request can cause is an :class:`OliviaError`.  Server side, a
:class:`ProtocolError` carries the one-line message that goes back to the
client as ``TAG:ERR <message>``.  Client side, an ``ERR`` reply is turned back
into the most specific subclass by :func:`error_from_reply`, which matches the
message against a table (the way redis-py maps error prefixes).
"""

from __future__ import annotations

import re


class OliviaError(Exception):
    """Base class of every error Olivia raises on purpose."""


class ProtocolError(OliviaError):
    """A request (or reply) that breaks the wire protocol.

    ``message`` is the plain-English line sent to the client after ``ERR``;
    ``tag`` is the request's tag, echoed so a pipelining client can match the
    error to its request.
    """

    def __init__(self, message: str, tag: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.tag = tag

    def with_tag(self, tag: bytes) -> ProtocolError:
        """The same error re-raised for a request whose tag is now known."""
        return type(self)(self.message, tag)


class UnknownVerbError(ProtocolError):
    """The verb is not one the server knows."""


class BadItemError(ProtocolError):
    """An item has the wrong number of fields, an empty key or a bad TTL."""


class BadEncodingError(ProtocolError):
    """A ``%`` escape is malformed or a reserved byte is sent raw."""


class KeyTooLongError(ProtocolError):
    """A key is longer than 250 bytes after decoding."""


class BadTagError(ProtocolError):
    """The request tag is not 1..64 of ``[A-Za-z0-9_.-]``."""


class LineTooLongError(ProtocolError):
    """A request line exceeded ``max_line_bytes``; the server hangs up."""


class ReplyTooLargeError(ProtocolError):
    """The reply would exceed ``max_reply_bytes``; nothing was sent."""


class ServerError(OliviaError):
    """An ``ERR`` reply whose message matches no more specific class."""


class ConnectionLostError(OliviaError):
    """The connection broke or timed out before a full reply arrived."""


class ConnectionTimeoutError(ConnectionLostError, TimeoutError):
    """No progress for ``timeout`` seconds while connecting, sending or reading.

    Also a :class:`TimeoutError`, so ``except TimeoutError`` catches it.
    """


# How each server message begins, mapped to the class a client raises.  The
# server raises these same classes, so the table and the messages change
# together (tests/test_protocol.py checks that every message maps back).
ERROR_PATTERNS: tuple[tuple[re.Pattern[str], type[ProtocolError]], ...] = (
    (re.compile(r"(unknown|missing) verb"), UnknownVerbError),
    (re.compile(r"line too long "), LineTooLongError),
    (re.compile(r"invalid tag "), BadTagError),
    (re.compile(r"(bad escape |raw CR )"), BadEncodingError),
    (re.compile(r"key too long"), KeyTooLongError),
    (re.compile(r"[A-Z]+ reply too large"), ReplyTooLargeError),
    (re.compile(r"((REQUEST )?[A-Z]+ (item |needs |takes |has a bad )|empty (key|item))"),
     BadItemError),
)


def error_from_reply(message: str, tag: bytes = b"") -> OliviaError:
    """The exception a client raises for an ``ERR <message>`` reply."""
    for pattern, cls in ERROR_PATTERNS:
        if pattern.match(message):
            return cls(message, tag)
    return ServerError(message)
