"""The line protocol's fast path is an optimisation, not a second
implementation: for any request line, in any sequence, a front end with the
fast path answers byte for byte what one without it answers."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from olivia.core.clock import HybridClock
from olivia.core.keyspace import Keyspace
from olivia.core.registry import Registry
from olivia.core.session import Guard
from olivia.core.store import Store
from olivia.core.verbs import CoreVerbs, core_verbs
from olivia.observe.info import InfoBoard
from olivia.observe.stats import Stats
from olivia.protocols.line.frontend import LineFrontEnd, LineProtocol
from tests.helpers import FakeClock

REPLY_LIMIT = 12  # bytes of values a reply may carry: small, so the limit is exercised


def front_end(fast_path: bool) -> LineFrontEnd:
    keyspace = Keyspace(Store(FakeClock()), HybridClock("unit"), REPLY_LIMIT)
    stats = Stats(started_at=0.0)
    registry = Registry(core_verbs(CoreVerbs(keyspace, InfoBoard().fields,
                                             Guard("", True, stats))))
    return LineProtocol(registry, keyspace, stats, 1 << 20, 1 << 20,
                        fast_path=fast_path).connection("127.0.0.1:1")


verbs = st.sampled_from([b"GET", b"SET", b"DEL", b"get", b"Set", b"t1:GET", b"t2:SET",
                         b"SETEX", b"PING", b"GET"])
pieces = st.sampled_from([b"k", b"k2", b"v", b":", b",", b"%", b"%2C", b"%3a", b"%41", b"\r",
                          b" ", b"x" * 250, b"y" * 9, b"\xff", b"1", b"0.5"])
lines = st.tuples(verbs, st.sampled_from([b" ", b""]),
                  st.lists(pieces, max_size=8).map(b"".join)).map(b"".join)


@settings(max_examples=400)
@given(st.lists(lines, min_size=1, max_size=12))
@example([b"SET k:v", b"GET k"])
@example([b"SET k:a%2Cb", b"GET k", b"GET k,k2"])
@example([b"SET k:" + b"y" * 13, b"GET k", b"GET k,k"])
@example([b"SET " + b"x" * 250 + b":v", b"GET " + b"x" * 250])
def test_the_fast_path_answers_exactly_as_the_general_path(requests: list[bytes]) -> None:
    fast, general = front_end(True), front_end(False)
    for line in requests:
        assert fast.execute(line, False) == general.execute(line, False), line


def test_the_fast_path_takes_the_common_requests() -> None:
    front = front_end(True)
    handlers = front._protocol.fast_handlers  # the fast path itself is under test
    assert handlers[b"SET"](b"a:1,b:2") == b":SAT a:1,b:2\n"
    assert handlers[b"GET"](b"a") == b":GOT a:1\n"
    assert handlers[b"GET"](b"a,b,c") == b":GOT a:1,b:2\n"
    for not_fast in (b"a%41:1", b"a:1:2", b"a"):
        assert handlers[b"SET"](not_fast) is None
