"""OVO's REST API (github.com/maxzerbini/ovo) on the HTTP port, so OVO's
clients and scripts work against Olivia unchanged.  A translator only: each
route runs core verbs through the same registry as the other ports.

Routes, bodies and status codes follow OVO's server (server/server.go,
server/model/model.go) and its clients (ovoclient, ovodotnet); the mapping,
and where Olivia differs, is in docs/http.md ("OVO's REST API"):

* ``GET /ovo/keystorage`` (this node's key count), ``GET /ovo/keys``;
* ``POST|PUT /ovo/keystorage``, ``GET|DELETE /ovo/keystorage/{key}``;
* ``GET /ovo/keystorage/{key}/getandremove``;
* ``POST|PUT /ovo/keystorage/{key}/updatevalueifequal``,
  ``.../updatekeyvalueifequal``, ``.../updatekey``, ``.../deletevalueifequal``;
* ``POST /ovo/counters`` (set), ``PUT /ovo/counters`` (increment),
  ``GET|DELETE /ovo/counters/{key}``;
* ``GET /ovo/cluster``, ``GET /ovo/cluster/me``.

Every answer is OVO's envelope ``{"Status": "done"|"error", "Code": ...,
"Data": ...}``.  OVO's ``Data`` fields are Go ``[]byte``: base64 in JSON.
The bytes are stored as the key's value as they are, so what OVO's API
writes, ``GET k`` on the line port or ``redis-cli`` reads, and back.
Counters live beside the keys, under :data:`COUNTER_PREFIX`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from olivia.core.errors import ErrorCode, ProtocolError
from olivia.core.requests import (
    MAX_KEY_BYTES,
    MAX_TTL_SECONDS,
    Found,
    KeyList,
    KeyTtl,
    Numbers,
    Rename,
    Swap,
    Swapped,
    TtlItem,
    Values,
)
from olivia.core.session import Session
from olivia.core.values import HEADER_BYTES
from olivia.protocols.http.status import status_of

#: OVO keeps counters apart from the key storage; Olivia keeps a counter
#: named N as the integer key ``ovo:counter:N``, readable by every port.
COUNTER_PREFIX = b"ovo:counter:"
#: OVO's clients shard keys over 128 hash slots (cluster.MaxNodeNumber).
HASH_SLOTS = 128

# OVO's error codes (server/server.go); 106 and 107 are Olivia's own, for
# answers OVO's sources give no code for (docs/http.md).
BAD_REQUEST = "10"
NOT_FOUND = "101"
NOT_UPDATED = "103"
KEY_NOT_UPDATED = "104"
KEY_NOT_RENAMED = "105"
NOT_DELETED = "106"
NOT_A_COUNTER = "107"

Run = Callable[[str, Any], Awaitable[Any]]
Guarded = Callable[[Callable[[web.Request, Session], Awaitable[web.Response]]],
                   Callable[[web.Request], Awaitable[web.StreamResponse]]]


class OvoRoutes:
    """OVO's routes over ``run`` (a core verb's outcome, awaited)."""

    def __init__(self, run: Run, info: Callable[[], Sequence[tuple[str, str]]],
                 cluster_nodes: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        self._run = run
        self._info = info
        self._cluster_nodes = cluster_nodes

    def add_to(self, app: web.Application, guarded: Guarded) -> None:
        def route(method: str, path: str,
                  handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
            async def answered(request: web.Request, session: Session) -> web.Response:
                try:
                    return await handler(request)
                except ProtocolError as exc:
                    return _refused(exc)
            app.router.add_route(method, path, guarded(answered))

        route("GET", "/ovo/keystorage", self.count)
        route("GET", "/ovo/keys", self.keys)
        for method in ("POST", "PUT"):
            route(method, "/ovo/keystorage", self.put)
            route(method, "/ovo/keystorage/{key}/updatevalueifequal", self.update_value)
            route(method, "/ovo/keystorage/{key}/updatekeyvalueifequal",
                  self.update_key_and_value)
            route(method, "/ovo/keystorage/{key}/updatekey", self.update_key)
            route(method, "/ovo/keystorage/{key}/deletevalueifequal", self.delete_if_equal)
        route("GET", "/ovo/keystorage/{key}", self.get)
        route("DELETE", "/ovo/keystorage/{key}", self.delete)
        route("GET", "/ovo/keystorage/{key}/getandremove", self.get_and_remove)
        route("POST", "/ovo/counters", self.set_counter)
        route("PUT", "/ovo/counters", self.increment)
        route("GET", "/ovo/counters/{key}", self.get_counter)
        route("DELETE", "/ovo/counters/{key}", self.delete_counter)
        route("GET", "/ovo/cluster", self.topology)
        route("GET", "/ovo/cluster/me", self.me)

    # -- key storage --------------------------------------------------------------

    async def count(self, request: web.Request) -> web.Response:
        """OVO counts the objects of the node asked (copies included; its
        client adds the nodes up): this node's live keys, INFO ``keys``."""
        return _done(int(dict(self._info()).get("keys", "0")))

    async def keys(self, request: web.Request) -> web.Response:
        """Every key of the cluster (KEYS; OVO's client merges the nodes'
        lists), counters left out as OVO keeps them apart."""
        listed: KeyList = await self._run("KEYS", b"*")
        names = [key.decode("utf-8", "replace") for key in listed.keys
                 if not key.startswith(COUNTER_PREFIX)]
        return _done({"Keys": names})

    async def put(self, request: web.Request) -> web.Response:
        body = await _body(request)
        key = _key(_text(body, "Key"))
        value = _bytes(body, "Data")
        ttl = _ttl(body)
        if ttl:
            await self._run("SETEX", (TtlItem.of(key, value, ttl),))
        else:
            await self._run("SET", ((key, value),))
        return _done(None)

    async def get(self, request: web.Request) -> web.Response:
        key = _path_key(request)
        found: Found = await self._run("GET", (key,))
        if not found.pairs:
            return _error(404, NOT_FOUND)
        return _done(_item(key, found.pairs[0][1][HEADER_BYTES:]))

    async def delete(self, request: web.Request) -> web.Response:
        await self._run("DEL", (_path_key(request),))
        return _done(None)

    async def get_and_remove(self, request: web.Request) -> web.Response:
        key = _path_key(request)
        taken: Values = await self._run("GETDEL", (key,))
        if not taken.pairs:
            return _error(404, NOT_FOUND)
        return _done(_item(key, taken.pairs[0][1]))

    async def update_value(self, request: web.Request) -> web.Response:
        """OVO's UpdateValueIfEqual: the core's CAS (a missing key: not updated)."""
        key = _path_key(request)
        body = await _body(request)
        swap = Swap(key, _bytes(body, "Data"), _bytes(body, "NewData"))
        swapped: Swapped = await self._run("CAS", swap)
        return _done(None) if swapped.swapped else _error(403, NOT_UPDATED)

    async def update_key_and_value(self, request: web.Request) -> web.Response:
        """OVO's UpdateKeyAndValueIfEqual as two core requests: DELIFEQ takes
        the key only if it holds Data (one caller wins), then SET writes
        NewData under NewKey.  Not atomic together: between the two a reader
        finds neither key, and the old key's TTL is not carried over."""
        key = _path_key(request)
        body = await _body(request)
        old, new = _bytes(body, "Data"), _bytes(body, "NewData")
        new_key = _key(_text(body, "NewKey"))
        deleted: KeyList = await self._run("DELIFEQ", ((key, old),))
        if not deleted.keys:
            return _error(403, KEY_NOT_UPDATED)
        await self._run("SET", ((new_key, new),))
        return _done(None)

    async def update_key(self, request: web.Request) -> web.Response:
        key = _path_key(request)
        new_key = _key(_text(await _body(request), "NewKey"))
        try:
            await self._run("RENAME", Rename(key, new_key))
        except ProtocolError as exc:
            if exc.code is ErrorCode.NOKEY:
                return _error(403, KEY_NOT_RENAMED)
            raise
        return _done(None)

    async def delete_if_equal(self, request: web.Request) -> web.Response:
        """OVO's DeleteValueIfEqual: DELIFEQ; like OVO, a key that is not
        there counts as deleted."""
        key = _path_key(request)
        value = _bytes(await _body(request), "Data")
        deleted: KeyList = await self._run("DELIFEQ", ((key, value),))
        if deleted.keys:
            return _done(None)
        present: KeyList = await self._run("EXISTS", (key,))
        return _error(403, NOT_DELETED) if present.keys else _done(None)

    # -- counters -----------------------------------------------------------------

    async def set_counter(self, request: web.Request) -> web.Response:
        name, value, ttl = _counter(await _body(request))
        key = COUNTER_PREFIX + name
        text = str(value).encode()
        if ttl:
            await self._run("SETEX", (TtlItem.of(key, text, ttl),))
        else:
            await self._run("SET", ((key, text),))
        return _done(_counter_item(name, value))

    async def increment(self, request: web.Request) -> web.Response:
        """INCR, atomic at the key's home.  OVO gives a counter the request's
        TTL when the increment creates it; here: when the new value equals
        the amount (created, or it was 0)."""
        name, amount, ttl = _counter(await _body(request))
        key = COUNTER_PREFIX + name
        numbers: Numbers = await self._run("INCR", ((key, amount),))
        value = numbers.pairs[0][1]
        if ttl and value == amount:
            text = TtlItem.of(key, b"", ttl).ttl_text
            await self._run("EXPIRE", (KeyTtl(key, ttl, text),))
        return _done(_counter_item(name, value))

    async def get_counter(self, request: web.Request) -> web.Response:
        name = _path_key(request)
        found: Found = await self._run("GET", (COUNTER_PREFIX + name,))
        if not found.pairs:
            return _error(404, NOT_FOUND)
        try:
            value = int(found.pairs[0][1][HEADER_BYTES:])
        except ValueError:
            return _error(409, NOT_A_COUNTER, "the value is not an integer")
        return _done(_counter_item(name, value))

    async def delete_counter(self, request: web.Request) -> web.Response:
        await self._run("DEL", (COUNTER_PREFIX + _path_key(request),))
        return _done(None)

    # -- cluster ------------------------------------------------------------------

    async def topology(self, request: web.Request) -> web.Response:
        return _done({"Nodes": topology_nodes(await self._cluster_nodes())})

    async def me(self, request: web.Request) -> web.Response:
        nodes = await self._cluster_nodes()
        me = next(node["name"] for node in nodes if node["state"] == "self")
        return _done(next(node for node in topology_nodes(nodes) if node["Name"] == me))


def topology_nodes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Olivia's cluster view as OVO's topology: the nodes with an HTTP port
    (the one OVO's clients talk to), ACTIVE when they answer; OVO's 128
    hash slots split in runs over the active ones in name order (any node
    serves any key, so this only spreads a smart client's load), and every
    other active node as a twin (where its client retries)."""
    shown = []
    for node in nodes:
        info = node.get("info") or {}
        port = int(info.get("http_port", "-1"))
        if port <= 0:
            continue
        active = node["state"] in ("self", "alive") and node.get("info") is not None
        host = str(node["address"]).rpartition(":")[0].strip("[]")
        shown.append({"Name": node["name"], "HashRange": [], "Host": host, "Port": port,
                      "State": "ACTIVE" if active else "INACTIVE", "Twins": []})
    active_nodes = sorted((node for node in shown if node["State"] == "ACTIVE"),
                          key=lambda node: str(node["Name"]))
    for index, node in enumerate(active_nodes):
        node["HashRange"] = _slots(index, len(active_nodes))
        node["Twins"] = [other["Name"] for other in active_nodes if other is not node]
    return shown


def _slots(index: int, count: int) -> list[int]:
    """OVO's partition: runs of 128 // count, the first 128 % count one longer."""
    size, extra = divmod(HASH_SLOTS, count)
    start = index * size + min(index, extra)
    return list(range(start, start + size + (1 if index < extra else 0)))


# -- OVO's envelope ----------------------------------------------------------------

def _done(data: Any) -> web.Response:
    return web.json_response({"Status": "done", "Code": "0", "Data": data})


def _error(status: int, code: str, message: str | None = None) -> web.Response:
    return web.json_response({"Status": "error", "Code": code, "Data": message}, status=status)


def _refused(exc: ProtocolError) -> web.Response:
    """A core error in OVO's envelope: the HTTP status of docs/http.md's
    table, Olivia's error code and message in Data (a body OVO's API cannot
    read: 400 with OVO's code 10)."""
    if isinstance(exc, BadOvoRequest):
        return _error(400, BAD_REQUEST, exc.message)
    return _error(status_of(exc.code), exc.code.value, exc.message)


def _item(key: bytes, value: bytes) -> dict[str, str]:
    return {"Key": key.decode("utf-8", "replace"), "Data": base64.b64encode(value).decode()}


def _counter_item(name: bytes, value: int) -> dict[str, Any]:
    return {"Key": name.decode("utf-8", "replace"), "Value": value}


# -- reading OVO's request bodies ----------------------------------------------------

class BadOvoRequest(ProtocolError):
    """A body OVO's API cannot read: 400 with OVO's code 10."""


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadOvoRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadOvoRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadOvoRequest(f"{name} must be a string")
    return value


def _bytes(body: dict[str, Any], name: str) -> bytes:
    """A Go []byte field: base64 text (null or missing: empty, as in Go)."""
    value = body.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BadOvoRequest(f"{name} must be base64 text (a Go []byte)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadOvoRequest(f"{name} is not valid base64") from None


def _ttl(body: dict[str, Any]) -> int:
    """OVO's TTL: whole seconds, 0 (or missing) for none."""
    ttl = body.get("TTL", 0)
    if ttl is None:
        return 0
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise BadOvoRequest(f"TTL must be whole seconds from 0 to {MAX_TTL_SECONDS:.0f}")
    return ttl


def _counter(body: dict[str, Any]) -> tuple[bytes, int, int]:
    name = _key(_text(body, "Key"))
    value = body.get("Value", 0)
    if not isinstance(value, int) or isinstance(value, bool) or \
            not -(1 << 63) <= value < (1 << 63):
        raise BadOvoRequest("Value must be a 64-bit integer")
    if len(COUNTER_PREFIX) + len(name) > MAX_KEY_BYTES:
        raise BadOvoRequest(f"a counter name is at most {MAX_KEY_BYTES - len(COUNTER_PREFIX)} "
                            "bytes")
    return name, value, _ttl(body)


def _key(text: str) -> bytes:
    key = text.encode("utf-8", "surrogateescape")
    if not 0 < len(key) <= MAX_KEY_BYTES:
        raise BadOvoRequest(f"a key is 1 to {MAX_KEY_BYTES} bytes")
    return key


def _path_key(request: web.Request) -> bytes:
    return _key(request.match_info["key"])
