"""Pure tests of the sans-IO protocol: parsing, encoding, framing."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from olivia import errors
from olivia.protocol import (
    MAX_KEY_BYTES,
    Bye,
    Command,
    Del,
    Deleted,
    ErrorReply,
    Fulfilled,
    Get,
    Got,
    Info,
    InfoReply,
    LineFramer,
    Ping,
    Pong,
    Quit,
    RequestBloomFilter,
    RequestPeers,
    Sat,
    SatEx,
    Set,
    SetEx,
    TtlItem,
    decode_field,
    encode_field,
    encode_reply,
    encode_request,
    error_line,
    got_line,
    join_found,
    parse_reply,
    parse_request,
    plain_items,
    plain_keys,
    split_found,
)

keys = st.binary(min_size=1, max_size=MAX_KEY_BYTES)
values = st.binary(max_size=300)


def error_of(line: bytes) -> errors.ProtocolError:
    with pytest.raises(errors.ProtocolError) as info:
        parse_request(line)
    return info.value


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
    assert parse_request(b"SET key1:value1,key2:value2,key3:value3") == Set(
        ((b"key1", b"value1"), (b"key2", b"value2"), (b"key3", b"value3")))


def test_verbs_are_case_insensitive_and_cr_is_dropped() -> None:
    assert parse_request(b"get a,b\r") == Get((b"a", b"b"))
    assert parse_request(b"dEl a") == Del((b"a",))


def test_tags_are_parsed_and_kept() -> None:
    assert parse_request(b"0:PING 1") == Ping(b"1", b"0")
    assert parse_request(b"req-1.a_B:GET k") == Get((b"k",), b"req-1.a_B")
    assert parse_request(b":GET k") == Get((b"k",))  # empty tag means none


def test_every_verb_parses() -> None:
    assert parse_request(b"SETEX k:v:0.25") == SetEx((TtlItem(b"k", b"v", 0.25, b"0.25"),))
    assert parse_request(b"PING") == Ping()
    assert parse_request(b"INFO") == Info()
    assert parse_request(b"QUIT") == Quit()
    assert parse_request(b"REQUEST PEERS") == RequestPeers()
    assert parse_request(b"request bloomfilter") == RequestBloomFilter()


def test_everything_after_the_first_space_is_args() -> None:
    assert parse_request(b"SET a:hello world,b: x") == Set(((b"a", b"hello world"), (b"b", b" x")))
    assert parse_request(b"PING hi there") == Ping(b"hi there")


def test_empty_lines_get_no_reply() -> None:
    assert parse_request(b"") is None
    assert parse_request(b"\r") is None


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
    (b"SETEX a:b:1e3", errors.BadItemError, "bad ttl '1e3'"),
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
    assert type(errors.error_from_reply(exc.message)) is cls


def test_errors_keep_the_request_tag() -> None:
    assert error_of(b"t1:FOO").tag == b"t1"
    assert error_of(b"t2:SET a").tag == b"t2"
    assert error_of(b"t3:GET a%zz").tag == b"t3"


def test_key_length_counts_decoded_bytes() -> None:
    key = b"%41" * MAX_KEY_BYTES  # 750 bytes on the wire, 250 decoded
    assert parse_request(b"GET " + key) == Get((b"A" * MAX_KEY_BYTES,))


def test_error_messages_are_one_printable_line() -> None:
    exc = error_of(b"SET \x01\x02\xff:" + b"v" * 5000 + b",bad")
    line = error_line(exc.message, exc.tag)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert len(line) < 400
    assert all(32 <= byte < 127 for byte in line[:-1])


# -- replies --------------------------------------------------------------------


def test_reply_formats() -> None:
    assert encode_reply(Sat(((b"k", b"v:1"),))) == b":SAT k:v%3A1\n"
    assert encode_reply(Got((), b"t")) == b"t:GOT\n"
    assert encode_reply(Deleted(())) == b":DELETED\n"
    assert encode_reply(Pong(b"1", b"0")) == b"0:PONG 1\n"
    assert encode_reply(Pong()) == b":PONG\n"
    assert encode_reply(Bye()) == b":BYE\n"
    assert encode_reply(ErrorReply("unknown verb 'FOO'")) == b":ERR unknown verb 'FOO'\n"
    assert encode_reply(Fulfilled(b"127.0.0.1:1")) == b":FULFILLED 127.0.0.1:1\n"
    assert encode_reply(InfoReply((("keys", "1"), ("name", "n")))) == b":INFO keys=1,name=n\n"
    ttl_item = TtlItem(b"k", b"v", 0.5, b".50")
    assert encode_reply(SatEx((ttl_item,))) == b":SATEX k:v:.50\n"


@pytest.mark.parametrize("reply", [
    Sat(((b"a,b", b"c:d"), (b"e", b""))),
    SatEx((TtlItem(b"k", b"v", 1.5, b"1.5"),), b"tag"),
    Got(((b"\x00", b"\r\n%"),)),
    Got(()),
    Deleted((b"x", b"y")),
    Deleted(()),
    Pong(b"hello there"),
    InfoReply((("keys", "3"),)),
    Fulfilled(b"a:1,b:2"),
    Bye(),
    ErrorReply("unknown verb 'X'", b"7"),
])
def test_reply_round_trip(reply: object) -> None:
    assert parse_reply(encode_reply(reply)) == reply  # type: ignore[arg-type]


def test_error_reply_maps_to_typed_exception() -> None:
    reply = parse_reply(b"9:ERR unknown verb 'FOO'\n")
    assert isinstance(reply, ErrorReply)
    exc = reply.exception()
    assert isinstance(exc, errors.UnknownVerbError) and exc.tag == b"9"
    assert type(ErrorReply("something new").exception()) is errors.ServerError


# -- property tests ---------------------------------------------------------------

commands = st.one_of(
    st.builds(Set, st.lists(st.tuples(keys, values), min_size=1, max_size=5).map(tuple)),
    st.builds(Get, st.lists(keys, min_size=1, max_size=5).map(tuple)),
    st.builds(Del, st.lists(keys, min_size=1, max_size=5).map(tuple)),
    st.builds(SetEx, st.lists(st.builds(
        TtlItem.of, keys, values,
        st.floats(min_value=0.001, max_value=1e6, allow_nan=False)), min_size=1, max_size=3,
    ).map(tuple)),
    st.builds(Ping, st.binary(max_size=50).filter(lambda b: b"\n" not in b and b"\r" not in b)),
)
tags = st.from_regex(r"\A[A-Za-z0-9_.-]{0,64}\Z").map(str.encode)


@given(commands, tags)
def test_any_command_round_trips_through_the_wire(command: Command, tag: bytes) -> None:
    tagged = dataclasses.replace(command, tag=tag)
    wire = encode_request(tagged)
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert parse_request(wire[:-1]) == tagged


@given(st.binary(max_size=400))
@example(b"SET %")
@example(b"GET \xff%0")
@example(b"a:b:c:SET x")
def test_arbitrary_bytes_raise_only_protocol_errors(line: bytes) -> None:
    try:
        parse_request(line)
    except errors.ProtocolError as exc:
        assert "\n" not in exc.message


verb_words = st.sampled_from([b"SET ", b"SETEX ", b"GET ", b"DEL ", b"PING ", b"set ", b"INFO"])
fields_bytes = st.lists(
    st.sampled_from([b"a", b":", b",", b"%", b"%2", b"%3A", b"1", b".", b"\xff"]), max_size=30,
).map(b"".join)


@given(verb_words, fields_bytes)
def test_near_miss_requests_raise_only_protocol_errors(verb: bytes, args: bytes) -> None:
    with contextlib.suppress(errors.ProtocolError):
        parse_request(verb + args)


# The plain lane must accept exactly what parse_request accepts, with the same meaning.
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
        return  # not plain: parse_request decides, whatever it is
    assert parse_request(b"SET " + args) == Set(tuple((k, v) for k, v in pairs))


@given(plain_args)
@example(b"k" * 250)
@example(b"k" * 251)
@example(b"a,,b")
def test_plain_keys_agree_with_the_parser(args: bytes) -> None:
    keys = plain_keys(args)
    if keys is None:
        return
    assert parse_request(b"GET " + args) == Get(tuple(keys))
    assert parse_request(b"DEL " + args) == Del(tuple(keys))


def test_plain_lane_takes_the_common_shapes() -> None:
    assert plain_items(b"a:1") == [[b"a", b"1"]]
    assert plain_items(b"a:1,b:") == [[b"a", b"1"], [b"b", b""]]
    assert plain_keys(b"a,b") == [b"a", b"b"]
    for not_plain in (b"a%3A:1", b"a:1:2", b"", b"a", b"a:1,", b"a:1\r"):
        assert plain_items(not_plain) is None
    for not_plain in (b"a%41", b"a:b", b"", b"a,", b"k" * 251):
        assert plain_keys(not_plain) is None


@given(st.lists(st.tuples(keys, values), max_size=5), tags)
def test_got_line_matches_the_reply_encoder(pairs: list[tuple[bytes, bytes]], tag: bytes) -> None:
    wire_values = [(k, encode_field(v)) for k, v in pairs]
    assert got_line(wire_values, tag) == encode_reply(Got(tuple(pairs), tag))


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
    assert split_found(join_found([(b"k,1", b"a%2Cb", stamp)])) == [(b"k,1", b"a%2Cb", stamp)]
    assert split_found(b"k:%2c:" + stamp.hex().encode()) == [(b"k", b"%2C", stamp)]
    for bad in (b"k:v:" + b"0" * 23 + b"g", b"k:v:" + b"00 " * 8, b"k:v:" + b"0" * 22,
                b"k:v:" + "é".encode() * 12, b"k:v", b"k:v:1:2"):
        with pytest.raises(errors.ProtocolError):
            split_found(bad)
