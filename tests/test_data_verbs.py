"""The data verbs (contract section 6) against one real node: each verb's
reply forms, its errors (which change nothing), binary keys and values, and
SCAN while keys come and go."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from olivia.protocols.line.escaping import encode_field
from olivia.protocols.line.replies import decode_keys
from tests.helpers import LineClient, OliviaProcess, config_flag, running_node


@pytest.fixture(scope="module")
def node() -> Iterator[OliviaProcess]:
    with running_node() as started:
        yield started


@pytest.fixture
def client(node: OliviaProcess) -> Iterator[LineClient]:
    with node.client() as connected:
        yield connected


def test_incr_and_decr(client: LineClient) -> None:
    assert client.request("INCR c1") == b":INCRED c1:1"
    assert client.request("t:INCR c1:41,c2:-5,c1") == b"t:INCRED c1:42,c2:-5,c1:43"
    assert client.request("DECR c1:3,c3") == b":DECRED c1:40,c3:-1"
    assert client.request("INCR c1:+2") == b":INCRED c1:42"
    client.request("SETEX c4:10:100")
    assert client.request("INCR c4") == b":INCRED c4:11"
    assert client.request("TTL c4").startswith(b":TTL c4:")  # the TTL is kept
    assert client.request("TTL c4") != b":TTL c4:-1"


@pytest.mark.parametrize(("line", "start"), [
    ("INCR word", b":ERR NOTINT value of 'word' is not an integer"),
    ("INCR big", b":ERR NOTINT incrementing 'big' by 1 would overflow"),
    ("DECR small", b":ERR NOTINT incrementing 'small' by -1 would overflow"),
    ("INCR c9:1,word", b":ERR NOTINT value of 'word'"),
    ("INCR c9:x", b":ERR INCR item 'c9:x' has a bad amount 'x'"),
    ("INCR c9:99999999999999999999", b":ERR INCR item 'c9:99999999999999999999' has a bad"),
    ("INCR c9:1:2", b":ERR INCR item 'c9:1:2' needs key or key:n"),
    ("INCR", b":ERR INCR needs at least one item"),
])
def test_incr_errors_change_nothing(client: LineClient, line: str, start: bytes) -> None:
    client.request("SET word:abc,big:9223372036854775807,small:-9223372036854775808")
    reply = client.request(line)
    assert reply.startswith(start), reply
    assert client.request("GET word,big,small,c9") == (
        b":GOT word:abc,big:9223372036854775807,small:-9223372036854775808")


def test_setnx_writes_once(client: LineClient) -> None:
    assert client.request("SETNX n1:a,n2:b") == b":SATNX n1,n2"
    assert client.request("SETNX n1:c,n3:d,n3:e") == b":SATNX n3"
    assert client.request("SETNX n1:z") == b":SATNX"
    assert client.request("GET n1,n2,n3") == b":GOT n1:a,n2:b,n3:d"


def test_cas(client: LineClient) -> None:
    client.request("SETEX s1:old:100")
    assert client.request("CAS s1:old:new") == b":CASSED s1:new"
    assert client.request("CAS s1:old:other") == b":CASFAILED s1:new"
    assert client.request("CAS missing1:a:b") == b":CASFAILED missing1"
    assert client.request("TTL s1") != b":TTL s1:-1"  # kept
    client.request("SET s2:")
    assert client.request("CAS s2::full") == b":CASSED s2:full"  # the empty value
    assert client.request("CAS s1:a:b,s2:c:d").startswith(b":ERR CAS takes one")
    assert client.request("CAS s1:a").startswith(b":ERR CAS item 's1:a' needs key:old:new")


def test_delifeq_and_getdel(client: LineClient) -> None:
    client.request("SET d1:x,d2:y,d3:z")
    assert client.request("DELIFEQ d1:x,d2:nope,d4:x") == b":DELETED d1"
    assert client.request("GET d1,d2") == b":GOT d2:y"
    assert client.request("GETDEL d2,d4,d3") == b":GOT d2:y,d3:z"
    assert client.request("GETDEL d2") == b":GOT"
    assert client.request("EXISTS d1,d2,d3") == b":EXISTS"


def test_rename(client: LineClient) -> None:
    client.request("SETEX r1:v:100")
    client.request("SET r2:gone")
    assert client.request("RENAME r1:r2") == b":RENAMED r1:r2"
    assert client.request("GET r1,r2") == b":GOT r2:v"
    assert client.request("TTL r2").startswith(b":TTL r2:")
    assert client.request("TTL r2") != b":TTL r2:-1"
    assert client.request("RENAME r2:r2") == b":RENAMED r2:r2"
    assert client.request("RENAME r1:r3") == b":ERR NOKEY no key 'r1' to rename"
    assert client.request("RENAME r1").startswith(b":ERR RENAME item 'r1' needs old:new")


def test_exists_ttl_expire_persist(client: LineClient) -> None:
    client.request("SET e1:a,e2:b")
    assert client.request("EXISTS e2,nope,e1,e2") == b":EXISTS e2,e1"
    assert client.request("TTL e1,nope") == b":TTL e1:-1"
    assert client.request("EXPIRE e1:50,nope:5") == b":EXPIRY e1:50"
    ttl = client.request("TTL e1")
    assert ttl.startswith(b":TTL e1:4") or ttl == b":TTL e1:50", ttl
    assert 49 < float(ttl.rpartition(b":")[2]) <= 50
    assert client.request("PERSIST e1,e2") == b":PERSISTED e1"
    assert client.request("TTL e1") == b":TTL e1:-1"
    assert client.request("EXPIRE e1:0").startswith(b":ERR EXPIRE item 'e1:0' has a bad ttl")
    assert client.request("EXPIRE e1").startswith(b":ERR EXPIRE item 'e1' needs key:ttl")


def test_every_verb_with_binary_keys_and_values(client: LineClient) -> None:
    key = b"\x00k,:%\r\n\xff"
    value = b"v\x00,:%\r\n\xfe"
    k, v = encode_field(key), encode_field(value)
    assert client.request(b"SETNX " + k + b":" + v) == b":SATNX " + k
    assert client.request(b"CAS " + k + b":" + v + b":" + v + b"2") == (
        b":CASSED " + k + b":" + v + b"2")
    assert client.request(b"DELIFEQ " + k + b":nope") == b":DELETED"
    assert client.request(b"EXISTS " + k) == b":EXISTS " + k
    assert client.request(b"EXPIRE " + k + b":30") == b":EXPIRY " + k + b":30"
    assert client.request(b"PERSIST " + k) == b":PERSISTED " + k
    assert client.request(b"TTL " + k) == b":TTL " + k + b":-1"
    assert client.request(b"RENAME " + k + b":" + k + b"2") == b":RENAMED " + k + b":" + k + b"2"
    assert client.request(b"SCAN 0:1000:" + encode_field(b"\x00k*")) == (
        b":SCANNED 0 " + k + b"2")
    assert client.request(b"KEYS " + encode_field(b"\x00k*")) == b":KEYS " + k + b"2"
    assert client.request(b"GETDEL " + k + b"2") == b":GOT " + k + b"2:" + v + b"2"
    assert client.request(b"SET " + k + b":7") == b":SAT " + k + b":7"
    assert client.request(b"INCR " + k) == b":INCRED " + k + b":8"


def test_scan_returns_every_key_present_throughout_even_as_keys_come_and_go() -> None:
    with running_node() as node, node.client() as client:
        stay = [b"stay%d" % i for i in range(2000)]
        going = [b"going%d" % i for i in range(2000)]
        for chunk in range(0, 2000, 500):
            client.request(b"SET " + b",".join(k + b":x" for k in stay[chunk:chunk + 500]))
            client.request(b"SET " + b",".join(k + b":x" for k in going[chunk:chunk + 500]))
        seen: set[bytes] = set()
        deleted: set[bytes] = set()
        added: set[bytes] = set()
        cursor, pages = b"0", 0
        while True:
            reply = client.request(b"SCAN " + cursor + b":150")
            cursor, _, keys = reply[len(b":SCANNED "):].partition(b" ")
            page = decode_keys(keys)
            assert len(page) <= 150
            assert deleted.isdisjoint(page)  # gone before this page was asked for
            seen.update(page)
            pages += 1
            # Meanwhile: delete some keys, add new ones.
            gone = going[pages * 50:pages * 50 + 50]
            client.request(b"DEL " + b",".join(gone))
            deleted.update(gone)
            new = [b"new%d-%d" % (pages, i) for i in range(50)]
            client.request(b"SET " + b",".join(key + b":x" for key in new))
            added.update(new)
            if cursor == b"0":
                break
        assert pages > 10
        assert set(stay) <= seen
        assert seen <= set(stay) | set(going) | added
        assert client.request("COUNT") == b":COUNT %d" % (4000 - len(deleted) + len(added))


def test_scan_and_keys_errors(client: LineClient) -> None:
    assert client.request("SCAN").startswith(b":ERR SCAN needs a cursor")
    assert client.request("SCAN 0:0").startswith(b":ERR SCAN has a bad count '0'")
    assert client.request("SCAN 0:x").startswith(b":ERR SCAN has a bad count")
    assert client.request("SCAN nope").startswith(b":ERR SCAN has a bad cursor 'nope'")
    cursor = int(client.request("SCAN 0:1").split(b" ")[1])
    wrong = (cursor >> 32 << 32) | ((cursor + 1) & 0xFFFFFFFF or 1)  # a place never given
    assert client.request(b"SCAN %d" % wrong).startswith(
        b":ERR SCAN has a bad cursor: it has expired")
    assert client.request("SCAN 0,1").startswith(b":ERR SCAN takes one")
    assert client.request("KEYS a,b").startswith(b":ERR KEYS takes one pattern")


def test_keys_refuses_more_than_max_keys_reply(tmp_path: Path) -> None:
    with running_node(*config_flag(tmp_path, "max_keys_reply = 10\n")) as node, \
            node.client() as client:
        client.request("SET " + ",".join(f"k{i}:v" for i in range(11)))
        assert client.request("KEYS k1*") == b":KEYS k1,k10"
        assert client.request("KEYS").startswith(
            b":ERR TOOMANY KEYS would answer with more than max_keys_reply (10) keys; use SCAN")
        assert client.request("COUNT") == b":COUNT 11"


def test_info_counts_hits_misses_and_calls_per_verb() -> None:
    with running_node() as node, node.client() as client:
        for line in ["SET a:1", "GET a", "GET nope", "GET a,nope,b", "GET %61", "INCR n",
                     "INCR n", "KEYS", "t:COUNT"]:
            client.request(line)
        fields = dict(item.split("=", 1) for item in
                      client.request("INFO")[len(b":INFO "):].decode().split(","))
        assert (fields["keyspace_hits"], fields["keyspace_misses"]) == ("3", "3")
        assert (fields["cmd_get"], fields["cmd_set"], fields["cmd_incr"]) == ("4", "1", "2")
        assert (fields["cmd_keys"], fields["cmd_count"], fields["cmd_scan"]) == ("1", "1", "0")
