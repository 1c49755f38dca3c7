"""OVO's REST API on real nodes, with the bodies OVO's own clients send
(ovodotnet's Session, ovoclient): every endpoint, success and failure, and
the data it writes read back through the line protocol on another node."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import OliviaProcess, config_flag, running_cluster, running_node, wait_until
from tests.test_http import Http


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Ovo:
    """JSON requests as OVO's clients make them: (status, envelope)."""

    def __init__(self, node: OliviaProcess, token: str | None = None) -> None:
        self.http = Http(node, token)

    def __call__(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        status, _, answer = self.http(method, path, data,
                                      {"Content-Type": "application/json"} if data else None)
        return status, json.loads(answer)


@pytest.fixture(scope="module")
def ovo_node() -> Iterator[OliviaProcess]:
    with running_node("--http-port", "0") as node:
        yield node


@pytest.fixture
def ovo(ovo_node: OliviaProcess) -> Ovo:
    return Ovo(ovo_node)


def put(ovo: Ovo, key: str, data: bytes, ttl: int = 0, method: str = "POST") -> None:
    # OvoKVRequest, as ovodotnet's PutRawData posts it
    body = {"Key": key, "Data": b64(data), "Collection": "", "TTL": ttl, "Hash": 17}
    assert ovo(method, "/ovo/keystorage", body) == (
        200, {"Status": "done", "Code": "0", "Data": None})


def test_put_get_delete_with_binary_data(ovo: Ovo) -> None:
    blob = bytes(range(256))
    put(ovo, "ovo:blob", blob)
    status, answer = ovo("GET", "/ovo/keystorage/ovo:blob")
    assert status == 200 and answer == {"Status": "done", "Code": "0",
                                        "Data": {"Key": "ovo:blob", "Data": b64(blob)}}
    put(ovo, "ovo:blob", b"second", method="PUT")  # PUT is POST
    assert ovo("GET", "/ovo/keystorage/ovo:blob")[1]["Data"]["Data"] == b64(b"second")
    assert ovo("DELETE", "/ovo/keystorage/ovo:blob") == (
        200, {"Status": "done", "Code": "0", "Data": None})
    assert ovo("GET", "/ovo/keystorage/ovo:blob") == (
        404, {"Status": "error", "Code": "101", "Data": None})
    assert ovo("DELETE", "/ovo/keystorage/ovo:blob")[0] == 200  # as OVO: no error


def test_ttl_in_seconds(ovo: Ovo, ovo_node: OliviaProcess) -> None:
    put(ovo, "ovo:short", b"x", ttl=1)
    with ovo_node.client() as client:
        assert client.request("TTL ovo%3Ashort").startswith(b":TTL ovo%3Ashort:")
    wait_until(lambda: ovo("GET", "/ovo/keystorage/ovo:short")[0] == 404, timeout=5,
               what="the key to expire")


def test_count_and_keys(ovo: Ovo) -> None:
    for number in range(3):
        put(ovo, f"ovo:listed{number}", b"v")
    ovo("PUT", "/ovo/counters", {"Key": "listed", "Value": 1, "TTL": 0, "Hash": 1})
    status, answer = ovo("GET", "/ovo/keys")
    assert status == 200 and answer["Status"] == "done"
    keys = answer["Data"]["Keys"]
    assert {f"ovo:listed{n}" for n in range(3)} <= set(keys)
    assert not any(key.startswith("ovo:counter:") for key in keys)  # counters apart
    status, answer = ovo("GET", "/ovo/keystorage")
    assert status == 200 and isinstance(answer["Data"], int) and answer["Data"] >= 3


def test_get_and_remove(ovo: Ovo) -> None:
    put(ovo, "ovo:once", b"only once")
    assert ovo("GET", "/ovo/keystorage/ovo:once/getandremove") == (
        200, {"Status": "done", "Code": "0", "Data": {"Key": "ovo:once",
                                                     "Data": b64(b"only once")}})
    assert ovo("GET", "/ovo/keystorage/ovo:once/getandremove") == (
        404, {"Status": "error", "Code": "101", "Data": None})


def test_update_value_if_equal(ovo: Ovo) -> None:
    put(ovo, "ovo:cas", b"old")
    # OvoKVUpdateRequest, as ovodotnet's UpdateValueIfEqual sends it
    body = {"Key": "ovo:cas", "NewKey": "ovo:cas", "Data": b64(b"old"),
            "NewData": b64(b"new"), "Hash": 3, "NewHash": 3}
    path = "/ovo/keystorage/ovo:cas/updatevalueifequal"
    assert ovo("POST", path, body) == (200, {"Status": "done", "Code": "0", "Data": None})
    assert ovo("PUT", path, body) == (403, {"Status": "error", "Code": "103", "Data": None})
    assert ovo("GET", "/ovo/keystorage/ovo:cas")[1]["Data"]["Data"] == b64(b"new")
    assert ovo("POST", "/ovo/keystorage/ovo:nothing/updatevalueifequal", body)[0] == 403


def test_update_key_and_value_if_equal(ovo: Ovo) -> None:
    put(ovo, "ovo:from", b"v1")
    body = {"Key": "ovo:from", "NewKey": "ovo:to", "Data": b64(b"v1"),
            "NewData": b64(b"v2"), "Hash": 1, "NewHash": 2}
    path = "/ovo/keystorage/ovo:from/updatekeyvalueifequal"
    assert ovo("POST", path, body) == (200, {"Status": "done", "Code": "0", "Data": None})
    assert ovo("GET", "/ovo/keystorage/ovo:from")[0] == 404
    assert ovo("GET", "/ovo/keystorage/ovo:to")[1]["Data"]["Data"] == b64(b"v2")
    assert ovo("POST", path, body) == (403, {"Status": "error", "Code": "104", "Data": None})


def test_update_key(ovo: Ovo) -> None:
    put(ovo, "ovo:name1", b"v")
    body = {"Key": "ovo:name1", "NewKey": "ovo:name2", "Hash": 1, "NewHash": 2}
    assert ovo("POST", "/ovo/keystorage/ovo:name1/updatekey", body)[0] == 200
    assert ovo("GET", "/ovo/keystorage/ovo:name2")[1]["Data"]["Data"] == b64(b"v")
    assert ovo("POST", "/ovo/keystorage/ovo:name1/updatekey", body) == (
        403, {"Status": "error", "Code": "105", "Data": None})


def test_delete_value_if_equal(ovo: Ovo) -> None:
    put(ovo, "ovo:soda", b'{"id":1000}')
    path = "/ovo/keystorage/ovo:soda/deletevalueifequal"
    other = {"Key": "ovo:soda", "Data": b64(b'{"id":1001}'), "Hash": 9}
    assert ovo("POST", path, other) == (403, {"Status": "error", "Code": "106", "Data": None})
    same = {"Key": "ovo:soda", "Data": b64(b'{"id":1000}'), "Hash": 9}
    assert ovo("POST", path, same) == (200, {"Status": "done", "Code": "0", "Data": None})
    assert ovo("GET", "/ovo/keystorage/ovo:soda")[0] == 404
    assert ovo("POST", path, same)[0] == 200  # gone already: deleted, as OVO answers


def test_counters(ovo: Ovo, ovo_node: OliviaProcess) -> None:
    def counter(body: dict[str, object], method: str) -> tuple[int, Any]:
        return ovo(method, "/ovo/counters", {"TTL": 0, "Hash": 4, **body})

    assert ovo("GET", "/ovo/counters/visits") == (
        404, {"Status": "error", "Code": "101", "Data": None})
    assert counter({"Key": "visits", "Value": 10}, "POST") == (
        200, {"Status": "done", "Code": "0", "Data": {"Key": "visits", "Value": 10}})
    assert counter({"Key": "visits", "Value": 5}, "PUT")[1]["Data"]["Value"] == 15
    assert counter({"Key": "visits", "Value": -20}, "PUT")[1]["Data"]["Value"] == -5
    assert ovo("GET", "/ovo/counters/visits")[1] == {
        "Status": "done", "Code": "0", "Data": {"Key": "visits", "Value": -5}}
    with ovo_node.client() as client:  # a counter is a plain integer key
        assert client.request("INCR ovo%3Acounter%3Avisits") == \
            b":INCRED ovo%3Acounter%3Avisits:-4"
    assert ovo("DELETE", "/ovo/counters/visits") == (
        200, {"Status": "done", "Code": "0", "Data": None})
    assert ovo("GET", "/ovo/counters/visits")[0] == 404
    assert counter({"Key": "brief", "Value": 1, "TTL": 1}, "PUT")[0] == 200  # created: TTL
    wait_until(lambda: ovo("GET", "/ovo/counters/brief")[0] == 404, timeout=5,
               what="the counter to expire")


def test_bad_bodies_get_400_and_change_nothing(ovo: Ovo, ovo_node: OliviaProcess) -> None:
    for body in ([1, 2], {"Data": b64(b"x")}, {"Key": "", "Data": ""},
                 {"Key": "ovo:bad", "Data": "not base64!"},
                 {"Key": "ovo:bad", "Data": "", "TTL": "soon"},
                 {"Key": "ovo:bad", "Data": "", "TTL": -1}):
        status, answer = ovo("POST", "/ovo/keystorage", body)
        assert status == 400 and answer["Status"] == "error" and answer["Code"] == "10", body
    status, _, answer = ovo.http("POST", "/ovo/keystorage", b"{not json")
    assert status == 400 and json.loads(answer)["Code"] == "10"
    status, answer = ovo("PUT", "/ovo/counters", {"Key": "c", "Value": "many"})
    assert status == 400 and answer["Code"] == "10"
    assert ovo("GET", "/ovo/keystorage/ovo:bad")[0] == 404
    with ovo_node.client() as client:
        assert client.request("SET ovo%3Acounter%3Atext:abc").startswith(b":SAT")
    status, answer = ovo("GET", "/ovo/counters/text")
    assert status == 409 and answer["Status"] == "error"


def test_cluster_topology_on_three_nodes() -> None:
    with running_cluster(3, "--http-port", "0") as cluster:
        ovo = Ovo(cluster.nodes[0])
        wait_until(lambda: len(ovo("GET", "/ovo/cluster")[1]["Data"]["Nodes"]) == 3,
                   what="every node's HTTP port in the topology")
        status, answer = ovo("GET", "/ovo/cluster")
        assert status == 200 and answer["Status"] == "done"
        nodes = answer["Data"]["Nodes"]
        assert {node["Name"] for node in nodes} == {"n1", "n2", "n3"}
        assert all(node["State"] == "ACTIVE" and node["Host"] == "127.0.0.1" for node in nodes)
        slots = sorted(slot for node in nodes for slot in node["HashRange"])
        assert slots == list(range(128))  # OVO's 128 hash slots, each on one node
        assert sorted(len(node["HashRange"]) for node in nodes) == [42, 43, 43]
        by_name = {node["Name"]: node for node in nodes}
        assert sorted(by_name["n1"]["Twins"]) == ["n2", "n3"]
        for process in cluster.nodes:  # each Port is that node's HTTP port
            me = Ovo(process)("GET", "/ovo/cluster/me")[1]["Data"]
            assert Http(process).base.endswith(f":{me['Port']}")
            assert by_name[me["Name"]]["HashRange"] == me["HashRange"]
        # written through OVO's API on one node, read on another's line port
        put(Ovo(cluster.nodes[1]), "ovo:shared", b"across")
        with cluster.nodes[2].client() as client:
            wait_until(lambda: client.request("GET ovo%3Ashared") == b":GOT ovo%3Ashared:across",
                       what="the OVO write to be read on n3")


def test_the_password_applies(tmp_path: Path) -> None:
    flags = config_flag(tmp_path, '[auth]\npassword = "ovopass"\n')
    with running_node("--http-port", "0", *flags) as node:
        status, _ = Ovo(node)("GET", "/ovo/keystorage")
        assert status == 401
        token = "Basic " + b64(b"ovo:ovopass")
        assert Ovo(node, token)("GET", "/ovo/keystorage")[0] == 200
