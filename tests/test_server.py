"""The daemon as a user meets it: a subprocess on a free port, over sockets."""

from __future__ import annotations

import json

import pytest

from olivia.protocols.line.escaping import encode_field
from tests.helpers import LineClient, OliviaProcess, wait_until


def info(client: LineClient) -> dict[str, str]:
    line = client.request("INFO")
    assert line.startswith(b":INFO ")
    return dict(field.split("=", 1) for field in line[6:].decode().split(","))


def test_seed_session_byte_for_byte(node: OliviaProcess) -> None:
    with node.client() as client:  # the raw socket: every byte as the server sent it
        client.sock.sendall(b"SET key1:value1,key2:value2,key3:value3\n")
        assert client.sock.recv(100) == b":SAT key1:value1,key2:value2,key3:value3\n"
        client.sock.sendall(b"GET key2\n")
        assert client.sock.recv(100) == b":GOT key2:value2\n"


def test_set_get_del(client: LineClient) -> None:
    assert client.request("SET sgd1:a,sgd2:b") == b":SAT sgd1:a,sgd2:b"
    assert client.request("GET sgd2,nope,sgd1") == b":GOT sgd2:b,sgd1:a"
    assert client.request("GET nope") == b":GOT"
    assert client.request("DEL sgd1,nope") == b":DELETED sgd1"
    assert client.request("DEL sgd1") == b":DELETED"
    assert client.request("GET sgd1,sgd2") == b":GOT sgd2:b"


def test_tags_and_case(client: LineClient) -> None:
    assert client.request("0:PING 1") == b"0:PONG 1"
    assert client.request("PING") == b":PONG"
    assert client.request("t-9:set tc:v") == b"t-9:SAT tc:v"
    assert client.request("x.y:gEt tc") == b"x.y:GOT tc:v"
    assert client.request("e1:FOO") == b"e1:ERR unknown verb 'FOO'"


def test_crlf_and_empty_lines(client: LineClient) -> None:
    client.send(b"\n\r\nSET crlf:v\r\n\nGET crlf\r\n")
    assert client.read_lines(2) == [b":SAT crlf:v", b":GOT crlf:v"]


def test_set_echoes_canonical_form_and_clears_ttl(client: LineClient) -> None:
    assert client.request("SET can%41:x%2cy%3A%7a") == b":SAT canA:x%2Cy%3Az"
    assert client.request("SETEX cttl:v:0.3,cmark:m:0.3") == b":SATEX cttl:v:0.3,cmark:m:0.3"
    assert client.request("SET cttl:w") == b":SAT cttl:w"
    # Once the marker with the same TTL has expired, the old TTL has passed too.
    wait_until(lambda: client.request("GET cmark") == b":GOT", timeout=3, what="cmark expiry")
    info(client)  # INFO runs the heap up to now, popping the stale entry
    assert client.request("GET cttl") == b":GOT cttl:w"


def test_values_with_spaces(client: LineClient) -> None:
    assert client.request("SET sp:hello world, again").startswith(b":ERR SET item ' again'")
    assert client.request("SET sp:hello world, again: x") == b":SAT sp:hello world, again: x"
    assert client.request("GET  again") == b":GOT  again: x"
    assert client.request("SET sp:hello world") == b":SAT sp:hello world"
    assert client.request("GET sp") == b":GOT sp:hello world"


def test_json_round_trips(client: LineClient) -> None:
    document = {"name": "Olivia", "tags": ["a,b", "c:d"], "nested": {"pct": "100%", "nl": "x\ny"}}
    raw = json.dumps(document).encode()
    assert client.request(b"SET doc:" + encode_field(raw)) == b":SAT doc:" + encode_field(raw)
    reply = client.request("GET doc")
    assert reply.startswith(b":GOT doc:")
    from olivia.protocols.line.escaping import decode_field
    assert json.loads(decode_field(reply[len(b":GOT doc:"):])) == document


def test_binary_round_trips_with_full_escaping(client: LineClient) -> None:
    blob = bytes(range(256)) * 4
    wire = b"".join(b"%%%02X" % byte for byte in blob)  # every byte escaped
    assert client.request(b"SET bin:" + wire) == b":SAT bin:" + encode_field(blob)
    assert client.request(b"GET bin") == b":GOT bin:" + encode_field(blob)


def test_error_changes_nothing(client: LineClient) -> None:
    assert client.request("SET ecn:1") == b":SAT ecn:1"
    reply = client.request("SET ecn:2,broken,other:3")
    assert reply.startswith(b":ERR SET item 'broken' needs key:value")
    assert b"%3A" in reply
    assert client.request("GET ecn,other") == b":GOT ecn:1"
    assert client.request("SETEX ecn:9:1,x:y").startswith(b":ERR SETEX item 'x:y'")
    assert client.request("DEL ecn,a%zz").startswith(b":ERR bad escape")
    assert client.request("GET ecn") == b":GOT ecn:1"


@pytest.mark.parametrize(("request_line", "reply_start"), [
    ("FOO", ":ERR unknown verb 'FOO'"),
    ("SETEX a:b", ":ERR SETEX item 'a:b' needs key:value:ttl"),
    ("SETEX a:b:0", ":ERR SETEX item 'a:b:0' has a bad ttl '0'"),
    ("SET a:b:c", ":ERR SET item 'a:b:c' needs key:value; write ':' inside a key or value as %3A"),
    ("SET a", ":ERR SET item 'a' needs key:value; write ':'"),
    ("GET a:b", ":ERR GET item 'a:b' needs a key only; write ':' inside a key as %3A"),
    ("GET", ":ERR GET needs at least one item"),
    ("SET :v", ":ERR empty key in SET item ':v'"),
    ("GET a,", ":ERR empty item in GET"),
    ("GET %zz", ":ERR bad escape '%zz'"),
    ("GET " + "k" * 251, ":ERR key too long in GET item"),
    ("bad/tag:PING", ":ERR invalid tag 'bad/tag'"),
    ("INFO x", ":ERR INFO takes no arguments"),
    ("REQUEST NOPE", ":ERR unknown verb 'REQUEST NOPE'"),
])
def test_error_replies(client: LineClient, request_line: str, reply_start: str) -> None:
    reply = client.request(request_line)
    assert reply.decode().startswith(reply_start)
    assert client.request("PING after") == b":PONG after"  # connection still usable


def test_binary_junk_gets_one_line_errors(client: LineClient) -> None:
    client.send(b"\x00\xff\xfe\x01\n\x80abc def\x00\n")
    first, second = client.read_lines(2)
    assert first.startswith(b":ERR unknown verb '\\x00")
    assert second.startswith(b":ERR unknown verb")
    assert client.request("PING") == b":PONG"


def test_key_of_250_bytes_is_accepted(client: LineClient) -> None:
    key = "k" * 250
    assert client.request(f"SET {key}:v") == f":SAT {key}:v".encode()


def test_ten_thousand_pipelined_requests_in_one_write(client: LineClient) -> None:
    n = 10_000
    batch = b"".join(b"p%d:SET pipe%d:v%d\n" % (i, i, i) for i in range(n))
    batch += b"".join(b"g%d:GET pipe%d\n" % (i, i) for i in range(n))
    client.send(batch)
    replies = client.read_lines(2 * n)
    assert replies[:n] == [b"p%d:SAT pipe%d:v%d" % (i, i, i) for i in range(n)]
    assert replies[n:] == [b"g%d:GOT pipe%d:v%d" % (i, i, i) for i in range(n)]


def test_expiry_with_ttl_0_2(client: LineClient) -> None:
    before = int(info(client)["expired_keys"])
    assert client.request("SETEX exp1:v:0.2,exp2:w:0.2") == b":SATEX exp1:v:0.2,exp2:w:0.2"
    assert client.request("GET exp1") == b":GOT exp1:v"
    # The heap evicts without any access to the keys: expired_keys counts them.
    wait_until(lambda: int(info(client)["expired_keys"]) >= before + 2, timeout=3,
               what="background expiry")
    assert client.request("GET exp1,exp2") == b":GOT"


def test_setex_then_set_keeps_the_newer_value(client: LineClient) -> None:
    client.request("SETEX ov:old:0.2,ov2:old:0.2,ovmark:m:0.2")
    client.request("SETEX ov2:new:30")
    client.request("SET ov:new")
    # Once the marker set with the same TTL is gone, the stale heap entries of
    # ov and ov2 have been popped too; they must not have removed the new values.
    wait_until(lambda: client.request("GET ovmark") == b":GOT", timeout=3, what="marker expiry")
    info(client)  # INFO runs the heap up to now, popping the stale entries
    assert client.request("GET ov,ov2") == b":GOT ov:new,ov2:new"


def test_info_fields(node: OliviaProcess, client: LineClient) -> None:
    fields = info(client)
    for name in ("name", "version", "uptime_s", "keys", "peers", "connected_clients",
                 "used_memory", "expired_keys", "remote_lookups", "remote_probes",
                 "remote_hits", "bloom_bits", "bloom_hashes", "bloom_fp_estimate"):
        assert name in fields, name
    assert fields["name"] == f"127.0.0.1:{node.port}"
    assert int(fields["used_memory"]) > 1_000_000
    assert int(fields["connected_clients"]) >= 1
    assert fields["peers"] == "0"
    assert 0 <= float(fields["bloom_fp_estimate"]) <= 1


def test_info_counts_keys_and_clients(node: OliviaProcess) -> None:
    with node.client() as first:
        start = info(first)
        with node.client() as second:
            second.request("SET ick1:a,ick2:b,ick3:c")
            now = info(first)
            assert int(now["connected_clients"]) == int(start["connected_clients"]) + 1
        assert int(now["keys"]) >= 3
        wait_until(lambda: info(first)["connected_clients"] == start["connected_clients"],
                   what="the closed connection to be counted out")


def test_request_peers_on_a_single_node(client: LineClient) -> None:
    assert client.request("REQUEST PEERS") == b":FULFILLED"


def test_quit_says_bye_and_closes(client: LineClient) -> None:
    client.send(b"PING\nQUIT\nPING\n")
    assert client.read_lines(2) == [b":PONG", b":BYE"]
    assert client.is_closed_by_server()


def test_oversized_line_is_refused_and_closed(node: OliviaProcess) -> None:
    with node.client() as client:
        client.send(b"PING first\n")
        client.send(b"SET big:" + b"x" * (1024 * 1024 + 10) + b"\n")
        assert client.read_line() == b":PONG first"
        assert client.read_line() == b":ERR line too long (limit 1048576 bytes)"
        assert client.is_closed_by_server()
    with node.client() as client:
        assert client.request("GET big") == b":GOT"


def test_unterminated_oversized_line_is_refused(node: OliviaProcess) -> None:
    with node.client() as client:
        # The server reads and discards the rest rather than resetting the
        # connection, so the whole send succeeds and the error is not lost.
        client.send(b"x" * (4 * 1024 * 1024))
        assert client.read_line() == b":ERR line too long (limit 1048576 bytes)"
        assert client.is_closed_by_server()


def test_client_that_disconnects_mid_reply_does_no_harm(node: OliviaProcess) -> None:
    value = "v" * 100_000
    with node.client() as client:
        client.request(f"SET midreply:{value}")
    for _ in range(20):
        with node.client() as leaving:
            leaving.send(b"GET midreply\n" * 50)  # and hang up without reading
    with node.client() as client:
        assert client.request("GET midreply") == f":GOT midreply:{value}".encode()
        wait_until(lambda: info(client)["connected_clients"] == "1",
                   what="aborted connections to be released")


def test_a_slow_reader_does_not_stall_other_clients(node: OliviaProcess) -> None:
    with node.client() as slow, node.client() as other:
        slow.request("SET slowval:" + "s" * 10_000)
        # Many large replies the slow client never reads; the server stops reading
        # its requests (backpressure) but keeps serving everyone else.
        slow.sock.setblocking(False)
        try:
            for _ in range(2000):
                slow.sock.send(b"GET slowval\n" * 100)
        except BlockingIOError:
            pass
        assert other.request("PING still") == b":PONG still"
        assert other.request("GET slowval").startswith(b":GOT slowval:")
