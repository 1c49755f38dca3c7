"""The one error hierarchy of Olivia, with a stable code on every error.

Every error a request can cause is an :class:`OliviaError`.  A
:class:`ProtocolError` is one the server reports: it carries an
:class:`ErrorCode`, the one-line message that goes back to the client, and
the request's tag (set by the front end that knows it).

Codes the contract names (NOAUTH, WRONGPASS, DENIED, OOM, NOTINT, NOKEY,
TOOMANY) are written as the first word of the message, so every front end
and every client can read them (``ERR NOTINT value of 'n' is not an
integer``; the RESP port sends ``-NOTINT ...`` or Redis's own wording).  The
older errors keep the messages the protocol has always had (``unknown verb
'FOO'``); their code is known from the start of the message, one rule per
code in :data:`LEGACY_FORMS`.  Either way a client maps a reply to an
exception class with :func:`error_from_message`, through the table
:data:`EXCEPTIONS`, the way redis-py maps error prefixes.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable


class ErrorCode(enum.Enum):
    """Why a request failed.  ``named`` codes are the message's first word on the wire."""

    UNKNOWN_VERB = "UNKNOWN_VERB"
    BAD_ITEM = "BAD_ITEM"
    BAD_ENCODING = "BAD_ENCODING"
    KEY_TOO_LONG = "KEY_TOO_LONG"
    BAD_TAG = "BAD_TAG"
    LINE_TOO_LONG = "LINE_TOO_LONG"
    REPLY_TOO_LARGE = "REPLY_TOO_LARGE"
    MAX_CLIENTS = "MAX_CLIENTS"
    BAD_FILTER = "BAD_FILTER"
    FILTER_VERSION = "FILTER_VERSION"
    NOT_READY = "NOT_READY"
    PEER_REFUSED = "PEER_REFUSED"
    NO_PEER = "NO_PEER"
    INTERNAL = "INTERNAL"
    # Named by the contract: written as the first word of the message.
    NOAUTH = "NOAUTH"
    WRONGPASS = "WRONGPASS"
    DENIED = "DENIED"
    OOM = "OOM"
    NOTINT = "NOTINT"
    NOKEY = "NOKEY"
    TOOMANY = "TOOMANY"

    @property
    def named(self) -> bool:
        return self in _NAMED


_NAMED = frozenset({ErrorCode.NOAUTH, ErrorCode.WRONGPASS, ErrorCode.DENIED, ErrorCode.OOM,
                    ErrorCode.NOTINT, ErrorCode.NOKEY, ErrorCode.TOOMANY})


class OliviaError(Exception):
    """Base class of every error Olivia raises on purpose."""


class ProtocolError(OliviaError):
    """An error the server reports for a request (or a reply that breaks the protocol).

    ``message`` is the plain-English line sent after ``ERR``; for a named
    code it starts with the code (added here, so raise ``NotIntegerError("value
    of 'n' ...")``).  ``tag`` is the request's tag, echoed so a pipelining
    client can match the error to its request.
    """

    code: ErrorCode = ErrorCode.BAD_ITEM
    #: The server hangs up after sending it (protected mode, a broken peer).
    closes: bool = False

    def __init__(self, message: str, tag: bytes = b"") -> None:
        if self.code.named and not message.startswith(self.code.value):
            message = f"{self.code.value} {message}"
        super().__init__(message)
        self.message = message
        self.tag = tag

    def with_tag(self, tag: bytes) -> ProtocolError:
        """The same error for a request whose tag is now known."""
        tagged = copy.copy(self)
        tagged.tag = tag
        return tagged


class UnknownVerbError(ProtocolError):
    """The verb is not one the server knows."""

    code = ErrorCode.UNKNOWN_VERB


class BadItemError(ProtocolError):
    """An item has the wrong number of fields, an empty key or a bad TTL."""

    code = ErrorCode.BAD_ITEM


class BadEncodingError(ProtocolError):
    """A ``%`` escape is malformed or a reserved byte is sent raw."""

    code = ErrorCode.BAD_ENCODING


class KeyTooLongError(ProtocolError):
    """A key is longer than 250 bytes after decoding."""

    code = ErrorCode.KEY_TOO_LONG


class BadTagError(ProtocolError):
    """The request tag is not 1..64 of ``[A-Za-z0-9_.-]``."""

    code = ErrorCode.BAD_TAG


class LineTooLongError(ProtocolError):
    """A request line exceeded ``max_line_bytes``; the server hangs up."""

    code = ErrorCode.LINE_TOO_LONG


class ReplyTooLargeError(ProtocolError):
    """The reply would exceed ``max_reply_bytes``; nothing was sent."""

    code = ErrorCode.REPLY_TOO_LARGE


class MaxClientsError(ProtocolError):
    """The server has ``max_clients`` connections open and hung up on this one."""

    code = ErrorCode.MAX_CLIENTS


class NotReadyError(ProtocolError):
    """The node cannot do this yet (it is not serving a cluster)."""

    code = ErrorCode.NOT_READY


class PeerRefusedError(ProtocolError):
    """A peer cannot join as it introduced itself (e.g. its node id collides)."""

    code = ErrorCode.PEER_REFUSED


class NoSuchPeerError(ProtocolError):
    """No peer has that name."""

    code = ErrorCode.NO_PEER


class InternalError(ProtocolError):
    """A bug on the server: the request may not have been carried out."""

    code = ErrorCode.INTERNAL


class NoAuthError(ProtocolError):
    """``NOAUTH``: the connection must send ``AUTH password`` first."""

    code = ErrorCode.NOAUTH


class WrongPassError(ProtocolError):
    """``WRONGPASS``: the password is not the node's."""

    code = ErrorCode.WRONGPASS


class DeniedError(ProtocolError):
    """``DENIED``: not allowed from this connection (protected mode, peer verbs)."""

    code = ErrorCode.DENIED


class OutOfMemoryError(ProtocolError):
    """``OOM``: the write would exceed ``max_memory``; nothing changed."""

    code = ErrorCode.OOM


class NotIntegerError(ProtocolError):
    """``NOTINT``: a value or argument is not a signed 64-bit decimal integer."""

    code = ErrorCode.NOTINT


class NoSuchKeyError(ProtocolError):
    """``NOKEY``: the key does not exist."""

    code = ErrorCode.NOKEY


class TooManyError(ProtocolError):
    """``TOOMANY``: the answer would be too large (use SCAN)."""

    code = ErrorCode.TOOMANY


class FilterError(ProtocolError):
    """A peer's filter update is malformed, oversized or inconsistent."""

    code = ErrorCode.BAD_FILTER


class FilterVersionError(FilterError):
    """A delta's base version is not the replica's version: send a full copy."""

    code = ErrorCode.FILTER_VERSION


class ServerError(OliviaError):
    """An ``ERR`` reply whose message matches no more specific class."""


class ConnectionLostError(OliviaError):
    """The connection broke or timed out before a full reply arrived."""


class ConnectionTimeoutError(ConnectionLostError, TimeoutError):
    """No progress for ``timeout`` seconds while connecting, sending or reading.

    Also a :class:`TimeoutError`, so ``except TimeoutError`` catches it.
    """


#: The exception class for each code: the one table clients read.
EXCEPTIONS: dict[ErrorCode, type[ProtocolError]] = {
    cls.code: cls for cls in (
        UnknownVerbError, BadItemError, BadEncodingError, KeyTooLongError, BadTagError,
        LineTooLongError, ReplyTooLargeError, MaxClientsError, NotReadyError,
        PeerRefusedError, NoSuchPeerError, InternalError, FilterError, FilterVersionError,
        NoAuthError, WrongPassError, DeniedError, OutOfMemoryError, NotIntegerError,
        NoSuchKeyError, TooManyError)
}


def _verb_then(*words: str) -> Callable[[str], bool]:
    """A message that starts with an upper-case verb (``SET``, ``REQUEST
    CONNECT``) followed by one of ``words``: the item errors."""
    def match(message: str) -> bool:
        head, _, rest = message.partition(" ")
        if head == "REQUEST":
            _, _, rest = rest.partition(" ")
        elif not (head.isupper() and head.isalpha()):
            return False
        return rest.startswith(words)
    return match


def _starts(*prefixes: str) -> Callable[[str], bool]:
    return lambda message: message.startswith(prefixes)


#: How the errors without a named code are recognised: the stable start of
#: their messages, which the protocol has always sent (docs/protocol.md).
#: tests/test_errors.py checks that every message the server words maps back.
LEGACY_FORMS: tuple[tuple[Callable[[str], bool], ErrorCode], ...] = (
    (_starts("unknown verb", "missing verb"), ErrorCode.UNKNOWN_VERB),
    (_starts("line too long "), ErrorCode.LINE_TOO_LONG),
    (_starts("invalid tag "), ErrorCode.BAD_TAG),
    (_starts("bad escape ", "raw CR "), ErrorCode.BAD_ENCODING),
    (_starts("key too long"), ErrorCode.KEY_TOO_LONG),
    (_verb_then("reply too large"), ErrorCode.REPLY_TOO_LARGE),
    (_starts("max clients reached"), ErrorCode.MAX_CLIENTS),
    (_starts("internal error"), ErrorCode.INTERNAL),
    (_starts("filter delta is based on"), ErrorCode.FILTER_VERSION),
    (_starts("filter "), ErrorCode.BAD_FILTER),
    (_starts("node name "), ErrorCode.PEER_REFUSED),
    (_starts("no peer named "), ErrorCode.NO_PEER),
    (_starts("this node is not serving", "peer node "), ErrorCode.NOT_READY),
    (_verb_then("item ", "needs ", "takes ", "has a bad "), ErrorCode.BAD_ITEM),
    (_starts("empty key", "empty item"), ErrorCode.BAD_ITEM),
)


def code_of(message: str) -> ErrorCode | None:
    """The code of an ``ERR`` message, or None if it has none we know."""
    first = message.partition(" ")[0]
    if first.isupper():
        try:
            code = ErrorCode(first)
        except ValueError:
            code = None
        if code is not None and code.named:
            return code
    for matches, legacy in LEGACY_FORMS:
        if matches(message):
            return legacy
    return None


def error_from_message(message: str, tag: bytes = b"") -> OliviaError:
    """The exception a client raises for an ``ERR <message>`` reply."""
    code = code_of(message)
    if code is None:
        return ServerError(message)
    return EXCEPTIONS[code](message, tag)
