"""The HTTP port against real nodes, with the standard library's HTTP
client: the native key API (binary keys and values, TTLs, ETag and
If-Match, SCAN, counters), /health, /metrics read back with
prometheus_client's own parser, /v1/cluster, and the password."""

from __future__ import annotations

import base64
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import (
    DEADLINE,
    OliviaProcess,
    config_flag,
    no_replicas,
    running_cluster,
    running_node,
    wait_until,
)

_HTTP_LISTENING = re.compile(r"HTTP listening on (\S+):(\d+)")


def http_port(node: OliviaProcess) -> int:
    match = wait_until(lambda: _HTTP_LISTENING.search(node.log()), what="the HTTP port")
    assert isinstance(match, re.Match)
    return int(match.group(2))


class Http:
    """Requests to one node's HTTP port: (status, headers, body)."""

    def __init__(self, node: OliviaProcess, token: str | None = None) -> None:
        self.base = f"http://127.0.0.1:{http_port(node)}"
        self.token = token

    def __call__(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=dict(headers or {}))
        if self.token is not None:
            request.add_header("Authorization", self.token)
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, body: bytes | None = None) -> tuple[int, object]:
        status, _, data = self(method, path, body)
        return status, json.loads(data)


@pytest.fixture(scope="module")
def node() -> Iterator[OliviaProcess]:
    with running_node("--http-port", "0") as started:
        yield started


@pytest.fixture
def http(node: OliviaProcess) -> Http:
    return Http(node)


def _path(key: bytes) -> str:
    return "/v1/keys/" + quote_from_bytes(key, safe="")


def test_binary_keys_and_values_round_trip(http: Http) -> None:
    key, value = b"bin/\x00\r\n:,%\xff", bytes(range(256))
    status, headers, _ = http("PUT", _path(key), value)
    assert status == 204 and headers["ETag"]
    status, headers, body = http("GET", _path(key))
    assert status == 200 and body == value
    assert headers["Content-Type"] == "application/octet-stream"
    assert http("DELETE", _path(key))[0] == 204
    status, missing = http.json("GET", _path(key))
    assert status == 404 and missing == {"error": "no such key", "key": "bin/\x00\r\n:,%\ufffd"}
    assert http("DELETE", _path(key))[0] == 404


def test_ttl_and_bad_requests(http: Http) -> None:
    assert http("PUT", "/v1/keys/short?ttl=0.3", b"v")[0] == 204
    assert http("GET", "/v1/keys/short")[0] == 200
    wait_until(lambda: http("GET", "/v1/keys/short")[0] == 404, what="the TTL to pass")
    for bad in ("/v1/keys/k?ttl=0", "/v1/keys/k?ttl=soon", "/v1/keys/" + "k" * 251):
        status, body = http.json("PUT", bad, b"v")
        assert status == 400 and "error" in body, (bad, body)  # type: ignore[operator]
    assert http("GET", "/v1/keys/k")[0] == 404  # nothing was stored


def test_if_match_is_compare_and_set(http: Http) -> None:
    http("PUT", "/v1/keys/doc", b"v1")
    etag = http("GET", "/v1/keys/doc")[1]["ETag"]
    assert http("PUT", "/v1/keys/doc", b"v2", {"If-Match": etag})[0] == 204
    assert http("PUT", "/v1/keys/doc", b"v3", {"If-Match": etag})[0] == 412  # stale
    assert http("GET", "/v1/keys/doc")[2] == b"v2"


def test_counters_and_scan(http: Http) -> None:
    assert http.json("POST", "/v1/counters/visits?by=5") == (200, {"key": "visits", "value": 5})
    assert http.json("POST", "/v1/counters/visits") == (200, {"key": "visits", "value": 6})
    http("PUT", "/v1/keys/text", b"abc")
    status, body = http.json("POST", "/v1/counters/text")
    assert status == 409 and body["code"] == "NOTINT"  # type: ignore[index]
    for i in range(30):
        http("PUT", f"/v1/keys/sc-{i}", b"x")
    http("PUT", "/v1/keys/" + quote_from_bytes(b"sc-\xff"), b"x")
    seen: set[str] = set()
    binary: set[str] = set()
    cursor = "0"
    while True:
        status, page = http.json("GET", f"/v1/keys?pattern=sc-*&count=7&cursor={cursor}")
        assert status == 200
        assert isinstance(page, dict)
        seen.update(page["keys"])
        binary.update(page.get("keys_b64", []))
        cursor = page["cursor"]
        if cursor == "0":
            break
    assert seen == {f"sc-{i}" for i in range(30)}
    assert binary == {base64.b64encode(b"sc-\xff").decode()}


def test_health_and_metrics(http: Http, node: OliviaProcess) -> None:
    status, health = http.json("GET", "/health")
    assert status == 200 and health == {"status": "ok", "name": f"127.0.0.1:{node.port}",
                                        "peers": 0}
    http("GET", "/v1/keys/metrics-miss")
    status, headers, body = http("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert families["olivia_keyspace_misses"].type == "counter"
    assert families["olivia_keys"].type == "gauge"
    (sample,) = families["olivia_keys"].samples
    assert sample.labels == {"node": f"127.0.0.1:{node.port}"} and sample.value >= 0
    assert families["olivia_cmd_get"].samples[0].value >= 1
    (info,) = families["olivia_info"].samples
    assert info.labels["event_loop"] in ("uvloop", "asyncio")


def test_metrics_has_a_latency_histogram_per_port_and_verb() -> None:
    with running_node("--http-port", "0", "--resp-port", "0") as fresh:
        for number in range(5):  # a connection's first read is timed (then one in 16)
            with fresh.client() as client:
                assert client.request(f"SET lat{number}:v").startswith(b":SAT")
        for _ in range(3):
            with fresh.client() as client:
                assert client.request("INCR hits").startswith(b":INCRED")
        with fresh.client() as client:  # 32 reads: the 1st and the 17th timed
            for number in range(32):
                assert client.request(f"GET lat{number % 5}").startswith(b":GOT")
        with socket.create_connection(("127.0.0.1", fresh.resp_port), timeout=DEADLINE) as resp:
            resp.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nlat0\r\n")
            assert resp.recv(64) == b"$1\r\nv\r\n"
        http = Http(fresh)
        http("GET", "/v1/keys/lat1")
        _, _, body = http("GET", "/metrics")
    (family,) = [f for f in text_string_to_metric_families(body.decode())
                 if f.name == "olivia_request_duration_seconds"]
    assert family.type == "histogram"
    counts = {(s.labels["port"], s.labels["verb"]): s.value
              for s in family.samples if s.name.endswith("_count")}
    assert counts == {("line", "SET"): 5, ("line", "INCR"): 3, ("line", "GET"): 2,
                      ("resp", "GET"): 1, ("http", "GET"): 1}
    buckets = [s for s in family.samples if s.name.endswith("_bucket")
               and s.labels["verb"] == "SET"]
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 5


def test_cluster_lists_every_node(tmp_path: Path) -> None:
    with running_cluster(3, "--http-port", "0", *no_replicas(tmp_path)) as cluster:
        http = Http(cluster.nodes[0])
        status, body = http.json("GET", "/v1/cluster")
        assert status == 200 and isinstance(body, dict)
        nodes = body["nodes"]
        assert [n["state"] for n in nodes] == ["self", "alive", "alive"]
        assert {n["name"] for n in nodes} == {"n1", "n2", "n3"}
        assert all(int(n["info"]["peers"]) == 2 for n in nodes)
        assert Http(cluster.nodes[1])("PUT", "/v1/keys/far", b"away")[0] == 204
        wait_until(lambda: http("GET", "/v1/keys/far")[0] == 200)  # once n2's filter arrived
        _, body = http.json("GET", "/v1/cluster")
        assert isinstance(body, dict)
        me, *_ = body["nodes"]
        assert me["keys"] == 0 and me["used_memory"] > 0 and me["remote_lookups"] >= 1
        assert 0 < me["probes_per_lookup"] <= 2 and 0 <= me["bloom_fp_estimate"] < 1
        holder = next(n for n in body["nodes"] if n["name"] == "n2")
        assert holder["keys"] == 1 and isinstance(holder["bloom_fill"], float)
        assert sum(n["keys"] for n in body["nodes"]) == 1


def test_the_password_as_basic_or_bearer(tmp_path: Path) -> None:
    toml = '[auth]\npassword = "s3cret"\n'
    with running_node("--http-port", "0", *config_flag(tmp_path, toml)) as secured:
        anonymous = Http(secured)
        status, headers, _ = anonymous("GET", "/v1/keys/k")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert anonymous("GET", "/health")[0] == 200  # for load balancers and orchestrators
        assert anonymous("GET", "/metrics")[0] == 401
        wrong = Http(secured, "Bearer nope")
        assert wrong("GET", "/v1/keys/k")[0] == 401
        basic = "Basic " + base64.b64encode(b"anyone:s3cret").decode()
        assert Http(secured, basic)("PUT", "/v1/keys/k", b"v")[0] == 204
        assert Http(secured, "Bearer s3cret")("GET", "/v1/keys/k")[2] == b"v"
