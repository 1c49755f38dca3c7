"""Pure tests of the sans-IO line protocol: parsing, encoding, framing."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from olivia.config import Config
from olivia.core import errors
from olivia.core.requests import (
    MAX_KEY_BYTES,
    Bye,
    Done,
    Fields,
    Found,
    KeyList,
    Payload,
    Request,
    Text,
    TtlItem,
)
from olivia.core.values import pack
from olivia.protocols.line.escaping import decode_field, encode_field
from olivia.protocols.line.fastpath import plain_items, plain_keys
from olivia.protocols.line.framing import LineFramer
from olivia.protocols.line.peer import found_payload, split_found
from olivia.protocols.line.replies import (
    decode_fields,
    decode_keys,
    decode_pairs,
    decode_ttl_items,
    encode_result,
    error_line,
    parse_reply,
)
from olivia.protocols.line.requests import (
    keys_payload,
    pairs_payload,
    request_line,
    text_payload,
    ttl_payload,
)
from olivia.server.lifecycle import NodeServer

keys = st.binary(min_size=1, max_size=MAX_KEY_BYTES)
values = st.binary(max_size=300)
NODE = NodeServer(Config())  # not started: its registry and parser are all these tests need
PARSER = NODE.line.parser


def parse(line: bytes) -> tuple[bytes, str, Any] | None:
    """(tag, verb name, items) of a request line, or None for an empty one."""
    parsed = PARSER.parse(line)
    if parsed is None:
        return None
    tag, request = parsed
    return tag, request.verb.name, request.items


def error_of(line: bytes) -> errors.ProtocolError:
    with pytest.raises(errors.ProtocolError) as info:
        PARSER.parse(line)
    return info.value


def request(verb: str, items: Any) -> Request:
    spec = NODE.registry.get(verb)
    assert spec is not None
    return Request(spec, items)


# -- encoding ---------------------------------------------------------------


@pytest.mark.parametrize(("raw", "wire"), [
    (b"plain", b"plain"),
    (b"a%b,c:d\re\nf", b"a%25b%2Cc%3Ad%0De%0Af"),
    (b"%%", b"%25%25"),
    (b"", b""),
    (b'{"a": [1, 2]}', b'{"a"%3A [1%2C 2]}'),
])
def test_encode_field_escapes_exactly_the_reserved_bytes(raw: bytes, wire: bytes) -> None:
    assert encode_field(raw) == wire
    assert decode_field(wire) == raw


def test_decode_accepts_any_escape_in_either_case() -> None:
    assert decode_field(b"%41%62%2c%2C%00%ff%FF") == b"Ab,,\x00\xff\xff"


@pytest.mark.parametrize("bad", [b"%", b"%4", b"a%zz", b"%+1", b"% 1", b"x%g0"])
def test_malformed_escape_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(errors.BadEncodingError, match="bad escape"):
        decode_field(bad)


@given(st.binary())
def test_field_round_trip(data: bytes) -> None:
    wire = encode_field(data)
    assert not set(wire) & set(b",:\r\n")
    assert decode_field(wire) == data


# -- requests -----------------------------------------------------------------


def test_seed_set() -> None:
    assert parse(b"SET key1:value1,key2:value2,key3:value3") == (b"", "SET", (
        (b"key1", b"value1"), (b"key2", b"value2"), (b"key3", b"value3")))


def test_verbs_are_case_insensitive_and_cr_is_dropped() -> None:
    assert parse(b"get a,b\r") == (b"", "GET", (b"a", b"b"))
    assert parse(b"dEl a") == (b"", "DEL", (b"a",))


def test_tags_are_parsed_and_kept() -> None:
    assert parse(b"0:PING 1") == (b"0", "PING", b"1")
    assert parse(b"req-1.a_B:GET k") == (b"req-1.a_B", "GET", (b"k",))
    assert parse(b":GET k") == (b"", "GET", (b"k",))  # empty tag means none


def test_every_verb_parses() -> None:
    assert parse(b"SETEX k:v:0.25") == (b"", "SETEX", (TtlItem(b"k", b"v", 0.25, b"0.25"),))
    assert parse(b"PING") == (b"", "PING", b"")
    assert parse(b"INFO") == (b"", "INFO", None)
    assert parse(b"QUIT") == (b"", "QUIT", None)
    assert parse(b"REQUEST PEERS") == (b"", "REQUEST PEERS", None)
    assert parse(b"request bloomfilter") == (b"", "REQUEST BLOOMFILTER", None)


def test_every_registered_verb_has_a_reply_word_or_is_a_peer_verb() -> None:
    from olivia.protocols.line.replies import REPLY_WORDS
    for spec in NODE.registry:
        assert spec.peer or spec.name in REPLY_WORDS, spec.name


def test_everything_after_the_first_space_is_args() -> None:
    assert parse(b"SET a:hello world,b: x") == (b"", "SET", (
        (b"a", b"hello world"), (b"b", b" x")))
    assert parse(b"PING hi there") == (b"", "PING", b"hi there")


def test_empty_lines_get_no_reply() -> None:
    assert parse(b"") is None
    assert parse(b"\r") is None


@pytest.mark.parametrize(("line", "cls", "message"), [
    (b"FOO", errors.UnknownVerbError, "unknown verb 'FOO'"),
    (b"SETEX a:b", errors.BadItemError, "SETEX item 'a:b' needs key:value:ttl"),
    (b"SETEX a:b:1:2", errors.BadItemError, "write ':' inside a key or value as %3A"),
    (b"SET a", errors.BadItemError, "SET item 'a' needs key:value; write ':' inside"),
    (b"SET a:b:c", errors.BadItemError, "%3A"),
    (b"GET a:b", errors.BadItemError, "GET item 'a:b' needs a key only; write ':' inside a key"),
    (b"DEL a:b", errors.BadItemError, "DEL item 'a:b'"),
    (b"SET", errors.BadItemError, "SET needs at least one item"),
    (b"GET ", errors.BadItemError, "GET needs at least one item"),
    (b"GET a,,b", errors.BadItemError, "empty item in GET"),
    (b"GET %41,%", errors.BadEncodingError, "bad escape '%'"),
    (b"SET :v", errors.BadItemError, "empty key in SET item ':v'"),
    (b"SET a:1,", errors.BadItemError, "empty item in SET (a stray ','?"),
    (b"SET greeting:hello, world", errors.BadItemError, "',' as %2C"),
    (b" GET a", errors.UnknownVerbError, "missing verb"),
    (b"REQUEST", errors.UnknownVerbError, "missing verb after REQUEST"),
    (b"SETEX a:b:0", errors.BadItemError, "bad ttl '0'"),
    (b"SETEX a:b:-1", errors.BadItemError, "bad ttl '-1'"),
    (b"SETEX a:b:1e3", errors.BadItemError,
     "bad ttl '1e3': need a number of seconds written as digits with an optional decimal"),
    (b"SETEX a:b:nan", errors.BadItemError, "bad ttl 'nan'"),
    (b"SETEX a:b:9999999999", errors.BadItemError, "at most"),
    (b"GET " + b"k" * 251, errors.KeyTooLongError, "251 bytes (limit 250)"),
    (b"SET a%zz:b", errors.BadEncodingError, "bad escape '%zz'"),
    (b"SET a:b\rc", errors.BadEncodingError, "raw CR"),
    (b"bad/tag:GET a", errors.BadTagError, "invalid tag 'bad/tag'"),
    (b"x" * 65 + b":GET a", errors.BadTagError, "invalid tag"),
    (b"INFO all", errors.BadItemError, "INFO takes no arguments"),
    (b"QUIT now", errors.BadItemError, "QUIT takes no arguments"),
    (b"REQUEST FOO", errors.UnknownVerbError, "unknown verb 'REQUEST FOO'"),
    (b"\x00\xff\xfe", errors.UnknownVerbError, "unknown verb '\\x00\\xff\\xfe'"),
])
def test_bad_requests(line: bytes, cls: type[errors.ProtocolError], message: str) -> None:
    exc = error_of(line)
    assert type(exc) is cls
    assert message in exc.message
    # Every message maps back to the same class on the client side.
    assert type(errors.error_from_message(exc.message)) is cls


def test_errors_keep_the_request_tag() -> None:
    assert error_of(b"t1:FOO").tag == b"t1"
    assert error_of(b"t2:SET a").tag == b"t2"
    assert error_of(b"t3:GET a%zz").tag == b"t3"


def test_key_length_counts_decoded_bytes() -> None:
    key = b"%41" * MAX_KEY_BYTES  # 750 bytes on the wire, 250 decoded
    assert parse(b"GET " + key) == (b"", "GET", (b"A" * MAX_KEY_BYTES,))


def test_error_messages_are_one_printable_line() -> None:
    exc = error_of(b"SET \x01\x02\xff:" + b"v" * 5000 + b",bad")
    line = error_line(exc.message, exc.tag)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert len(line) < 400
    assert all(32 <= byte < 127 for byte in line[:-1])


# -- replies --------------------------------------------------------------------


def stored(value: bytes) -> bytes:
    return pack(bytes(12), value)


def test_reply_formats() -> None:
    assert encode_result(request("SET", ((b"k", b"v:1"),)), Done()) == b":SAT k:v%3A1\n"
    assert encode_result(request("GET", (b"k",)), Found(()), b"t") == b"t:GOT\n"
    assert encode_result(request("GET", (b"k",)), Found(((b"k", stored(b"a,b")),))) \
        == b":GOT k:a%2Cb\n"
    assert encode_result(request("DEL", (b"k",)), KeyList(())) == b":DELETED\n"
    assert encode_result(request("PING", b"1"), Text(b"1"), b"0") == b"0:PONG 1\n"
    assert encode_result(request("PING", b""), Text(b"")) == b":PONG\n"
    assert encode_result(request("QUIT", None), Bye()) == b":BYE\n"
    assert error_line("unknown verb 'FOO'") == b":ERR unknown verb 'FOO'\n"
    assert encode_result(request("REQUEST PEERS", None), Payload(b"127.0.0.1:1")) \
        == b":FULFILLED 127.0.0.1:1\n"
    assert encode_result(request("INFO", None), Fields((("keys", "1"), ("name", "n")))) \
        == b":INFO keys=1,name=n\n"
    ttl_item = TtlItem(b"k", b"v", 0.5, b".50")
    assert encode_result(request("SETEX", (ttl_item,)), Done()) == b":SATEX k:v:.50\n"


def test_reply_payloads_round_trip() -> None:
    pairs = ((b"a,b", b"c:d"), (b"e", b""), (b"\x00", b"\r\n%"))
    assert decode_pairs(pairs_payload(pairs)) == pairs
    assert decode_keys(keys_payload((b"x", b"y,z"))) == (b"x", b"y,z")
    assert decode_keys(b"") == () and decode_pairs(b"") == ()
    item = TtlItem(b"k", b"v", 1.5, b"1.5")
    assert decode_ttl_items(ttl_payload((item,))) == (item,)
    assert decode_fields(b"keys=3,name=a") == (("keys", "3"), ("name", "a"))
    line = parse_reply(b"7:ERR unknown verb 'X'\n")
    assert (line.tag, line.word, line.payload, line.is_error) == (
        b"7", b"ERR", b"unknown verb 'X'", True)
    for bad in (b"no colon", b":lower", b":G0T x"):
        with pytest.raises(errors.ProtocolError):
            parse_reply(bad)


def test_error_reply_maps_to_typed_exception() -> None:
    exc = parse_reply(b"9:ERR unknown verb 'FOO'\n").error()
    assert isinstance(exc, errors.UnknownVerbError) and exc.tag == b"9"
    assert type(errors.error_from_message("something new")) is errors.ServerError


# -- property tests ---------------------------------------------------------------

tags = st.from_regex(r"\A[A-Za-z0-9_.-]{0,64}\Z").map(str.encode)
pings = st.binary(max_size=50).filter(lambda b: b"\n" not in b and b"\r" not in b)
ttl_items = st.lists(st.builds(TtlItem.of, keys, values, st.floats(
    min_value=0.001, max_value=1e6, allow_nan=False)), min_size=1, max_size=3).map(tuple)
encoded_requests = st.one_of(
    st.lists(st.tuples(keys, values), min_size=1, max_size=5).map(
        lambda pairs: ("SET", tuple(pairs), pairs_payload(pairs))),
    st.lists(keys, min_size=1, max_size=5).map(lambda ks: ("GET", tuple(ks), keys_payload(ks))),
    st.lists(keys, min_size=1, max_size=5).map(lambda ks: ("DEL", tuple(ks), keys_payload(ks))),
    ttl_items.map(lambda items: ("SETEX", items, ttl_payload(items))),
    pings.map(lambda text: ("PING", text, text_payload(text))),
)


@given(encoded_requests, tags)
def test_any_request_round_trips_through_the_wire(encoded: tuple[str, Any, bytes],
                                                  tag: bytes) -> None:
    verb, items, payload = encoded
    wire = request_line(verb.encode(), payload, tag)
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert parse(wire[:-1]) == (tag, verb, items)


@given(st.binary(max_size=400))
@example(b"SET %")
@example(b"GET \xff%0")
@example(b"a:b:c:SET x")
def test_arbitrary_bytes_raise_only_protocol_errors(line: bytes) -> None:
    try:
        PARSER.parse(line)
    except errors.ProtocolError as exc:
        assert "\n" not in exc.message


verb_words = st.sampled_from([b"SET ", b"SETEX ", b"GET ", b"DEL ", b"PING ", b"set ", b"INFO"])
fields_bytes = st.lists(
    st.sampled_from([b"a", b":", b",", b"%", b"%2", b"%3A", b"1", b".", b"\xff"]), max_size=30,
).map(b"".join)


@given(verb_words, fields_bytes)
def test_near_miss_requests_raise_only_protocol_errors(verb: bytes, args: bytes) -> None:
    with contextlib.suppress(errors.ProtocolError):
        PARSER.parse(verb + args)


# The fast path's splitters must accept only what the parser accepts, with the same meaning.
plain_args = st.one_of(
    fields_bytes,
    st.lists(st.sampled_from([b"k", b"v", b":", b",", b"x" * 250, b"y", b"\r", b"%41"]),
             max_size=8).map(b"".join),
)


@given(plain_args)
@example(b"k" * 250 + b":v")
@example(b"k" * 251 + b":v")
@example(b"a:b,c:d")
@example(b":v")
def test_plain_items_agree_with_the_parser(args: bytes) -> None:
    pairs = plain_items(args)
    if pairs is None:
        return  # not plain: the parser decides, whatever it is
    assert parse(b"SET " + args) == (b"", "SET", tuple((k, v) for k, v in pairs))


@given(plain_args)
@example(b"k" * 250)
@example(b"k" * 251)
@example(b"a,,b")
def test_plain_keys_agree_with_the_parser(args: bytes) -> None:
    keys = plain_keys(args)
    if keys is None:
        return
    assert parse(b"GET " + args) == (b"", "GET", tuple(keys))
    assert parse(b"DEL " + args) == (b"", "DEL", tuple(keys))


def test_plain_lane_takes_the_common_shapes() -> None:
    assert plain_items(b"a:1") == [[b"a", b"1"]]
    assert plain_items(b"a:1,b:") == [[b"a", b"1"], [b"b", b""]]
    assert plain_keys(b"a,b") == [b"a", b"b"]
    for not_plain in (b"a%3A:1", b"a:1:2", b"", b"a", b"a:1,", b"a:1\r"):
        assert plain_items(not_plain) is None
    for not_plain in (b"a%41", b"a:b", b"", b"a,", b"k" * 251):
        assert plain_keys(not_plain) is None


# -- framing ----------------------------------------------------------------


def test_framer_splits_and_keeps_partial_lines() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"GET a\nGET") == [b"GET a"]
    assert framer.feed(b" b") == []
    assert framer.feed(b"\n\nPING\r\n") == [b"GET b", b"", b"PING\r"]
    assert framer.buffered == 0


@given(st.lists(st.binary(max_size=20).filter(lambda b: b"\n" not in b), max_size=20),
       st.data())
def test_framer_is_independent_of_chunking(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = LineFramer(1000)
    got: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += framer.feed(stream[start:cut])
        start = cut
    assert got == lines


def test_framer_overflow_on_unterminated_line() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"PING\n" + b"x" * 12) == [b"PING"]
    assert framer.overflowed
    assert framer.feed(b"PING\n") == []
    assert framer.buffered == 0


def test_framer_overflow_on_long_complete_line_keeps_earlier_lines() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"PING\n" + b"y" * 11 + b"\nPING\n") == [b"PING"]
    assert framer.overflowed


def test_framer_overflow_across_chunks() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 6) == []
    assert not framer.overflowed
    assert framer.feed(b"x" * 6) == []
    assert framer.overflowed


def test_framer_accepts_a_line_of_exactly_the_limit() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 10 + b"\n") == [b"x" * 10]
    assert framer.feed(b"x" * 10 + b"\r\n") == [b"x" * 10 + b"\r"]  # CR is not counted
    assert framer.feed(b"y" * 10 + b"\r") == []
    assert framer.feed(b"\n") == [b"y" * 10 + b"\r"]
    assert not framer.overflowed
    assert framer.feed(b"z" * 11 + b"\r\n") == []
    assert framer.overflowed


def test_lookup_replies_are_checked_item_by_item() -> None:
    stamp = bytes(range(12))
    assert split_found(found_payload([(b"k,1", pack(stamp, b"a,b"))])) == {
        b"k,1": pack(stamp, b"a,b")}
    assert split_found(b"k:%2c:" + stamp.hex().encode()) == {b"k": pack(stamp, b",")}
    assert split_found(b"k:%41:" + stamp.hex().encode()) == {b"k": pack(stamp, b"A")}
    for bad in (b"k:v:" + b"0" * 23 + b"g", b"k:v:" + b"00 " * 8, b"k:v:" + b"0" * 22,
                b"k:v:" + "é".encode() * 12, b"k:v", b"k:v:1:2"):
        with pytest.raises(errors.ProtocolError):
            split_found(bad)
