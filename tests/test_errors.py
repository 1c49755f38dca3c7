"""Error codes: every error has one; the named ones lead the message on the
wire; a client maps any message the server words back to its class."""

from __future__ import annotations

import pytest

from olivia.core import errors
from olivia.core.errors import EXCEPTIONS, ErrorCode, code_of, error_from_message


def test_every_code_has_exactly_one_exception_class() -> None:
    assert set(EXCEPTIONS) == set(ErrorCode)
    for code, cls in EXCEPTIONS.items():
        assert cls.code is code


@pytest.mark.parametrize("code", [c for c in ErrorCode if c.named])
def test_named_codes_are_the_first_word(code: ErrorCode) -> None:
    exc = EXCEPTIONS[code]("value of 'n' is not an integer")
    assert exc.message == f"{code.value} value of 'n' is not an integer"
    assert code_of(exc.message) is code
    back = error_from_message(exc.message, b"t")
    assert type(back) is type(exc) and back.tag == b"t"
    assert back.message == exc.message  # no second prefix


@pytest.mark.parametrize(("message", "code"), [
    ("unknown verb 'FOO'", ErrorCode.UNKNOWN_VERB),
    ("missing verb after REQUEST: one of PEERS", ErrorCode.UNKNOWN_VERB),
    ("line too long (limit 10 bytes)", ErrorCode.LINE_TOO_LONG),
    ("invalid tag 'x/y': use ...", ErrorCode.BAD_TAG),
    ("bad escape '%zz' in 'a%zz'", ErrorCode.BAD_ENCODING),
    ("raw CR inside a request; write it as %0D", ErrorCode.BAD_ENCODING),
    ("key too long in GET item 'kkk': 251 bytes", ErrorCode.KEY_TOO_LONG),
    ("GET reply too large: 9 bytes of values", ErrorCode.REPLY_TOO_LARGE),
    ("max clients reached (limit 1)", ErrorCode.MAX_CLIENTS),
    ("internal error; the request may not have been carried out", ErrorCode.INTERNAL),
    ("filter delta is based on version 3 but we hold none", ErrorCode.FILTER_VERSION),
    ("filter size 9 bits exceeds the limit of 8", ErrorCode.BAD_FILTER),
    ("node name 'a' has the same id as 'b'", ErrorCode.PEER_REFUSED),
    ("no peer named 'n2' (REQUEST PEERS lists the alive ones)", ErrorCode.NO_PEER),
    ("this node is not serving a cluster yet", ErrorCode.NOT_READY),
    ("SET item 'a' needs key:value", ErrorCode.BAD_ITEM),
    ("REQUEST CONNECT has a bad address 'x'", ErrorCode.BAD_ITEM),
    ("INFO takes no arguments", ErrorCode.BAD_ITEM),
    ("empty item in GET", ErrorCode.BAD_ITEM),
    ("something nobody words", None),
    ("NOTACODE but upper case", None),
])
def test_the_older_messages_keep_their_codes(message: str, code: ErrorCode | None) -> None:
    assert code_of(message) is code
    exc = error_from_message(message)
    if code is None:
        assert type(exc) is errors.ServerError
    else:
        assert type(exc) is EXCEPTIONS[code]
