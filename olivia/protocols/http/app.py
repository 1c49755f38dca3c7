"""The HTTP port as a front end: a native key API, metrics and health,
through the command core (aiohttp moves the bytes; no verb's meaning here).

Routes (docs/http.md):

* ``GET|PUT|DELETE /v1/keys/{key}``: the raw value; ``?ttl=`` seconds on PUT;
  an ``ETag`` on GET, and ``If-Match`` on PUT for compare-and-set (CAS);
* ``GET /v1/keys?pattern=&cursor=&count=``: one page of the cluster SCAN;
* ``POST /v1/counters/{key}?by=n``: INCR;
* ``GET /v1/cluster``: every node of the cluster and its figures;
* ``GET /metrics``: the INFO fields in Prometheus's text format;
* ``GET /health``: 200 while the node serves, with its peer count;
* ``GET /``: the admin page (``admin.html``);
* ``/ovo/...``: OVO's REST API (olivia.protocols.http.ovo).

Keys in paths are percent-encoded bytes (``/v1/keys/a%2Fb``, ``%00``...),
read from the raw path, so any key round-trips.  The password is the line
port's, as HTTP Basic (any user name) or Bearer; protected mode applies.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

from olivia.core.errors import (
    ProtocolError,
    WrongPassError,
)
from olivia.core.registry import Registry
from olivia.core.requests import (
    MAX_KEY_BYTES,
    MAX_TTL_SECONDS,
    Found,
    KeyList,
    Numbers,
    ScanArgs,
    ScanPage,
    Swap,
    Swapped,
    TtlItem,
)
from olivia.core.session import Guard, Session
from olivia.core.values import HEADER_BYTES
from olivia.observe.metrics import metrics_text
from olivia.observe.stats import Stats
from olivia.protocols.frontend import is_loopback, timed
from olivia.protocols.http.ovo import OvoRoutes
from olivia.protocols.http.status import status_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The admin page at ``/``: one self-contained file (no CDN) that reads
#: ``/v1/cluster`` once a second.
ADMIN_PAGE = resources.files(__package__).joinpath("admin.html").read_bytes()


class HttpFrontEnd:
    """The HTTP routes of one node, over its registry."""

    def __init__(self, registry: Registry, guard: Guard, stats: Stats,
                 info: Callable[[], Sequence[tuple[str, str]]],
                 cluster_nodes: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        self._registry = registry
        self._calls = stats.calls
        self._latencies = stats.latencies
        self._guard = guard
        self._info = info
        self._cluster_nodes = cluster_nodes

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.router.add_get("/", self._guarded(self.admin_page))
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self._guarded(self.metrics))
        app.router.add_get("/v1/cluster", self._guarded(self.cluster))
        app.router.add_get("/v1/keys", self._guarded(self.scan))
        for method in ("GET", "PUT", "DELETE"):
            app.router.add_route(method, "/v1/keys/{key:[\\s\\S]+}", self._guarded(self.key))
        app.router.add_post("/v1/counters/{key:[\\s\\S]+}", self._guarded(self.counter))
        OvoRoutes(self._run, self._info, self._cluster_nodes).add_to(app, self._guarded)
        return app

    # -- access -----------------------------------------------------------------

    def _guarded(self, handler: Callable[[web.Request, Session], Awaitable[web.Response]]
                 ) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            return await handler(request, self._session(request))
        return guarded

    def _session(self, request: web.Request) -> Session:
        """The request's standing: the password from Authorization (Basic,
        any user, or Bearer), protected mode for clients off this machine."""
        where, loopback = _where(request.remote or "?")
        session = self._guard.session(where, loopback)
        password = _password_of(request.headers.get("Authorization", ""))
        if password is not None:
            self._guard.authenticate(session, password)
        self._guard.check(session, "GET", False)  # NoAuth or protected mode
        return session

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProtocolError as exc:
            status = status_of(exc.code)
            headers = {"WWW-Authenticate": 'Basic realm="olivia"'} if status == 401 else {}
            return web.json_response({"error": exc.message, "code": exc.code.value},
                                     status=status, headers=headers)

    # -- core verbs -------------------------------------------------------------

    async def _run(self, verb: str, items: Any) -> Any:
        spec = self._registry.get(verb)
        assert spec is not None, verb
        self._calls[verb] += 1
        began = time.perf_counter()
        outcome = spec.handler(items)
        timed(self._latencies, "http", verb, began, outcome)
        return await outcome if isinstance(outcome, Awaitable) else outcome

    # -- routes -----------------------------------------------------------------

    async def admin_page(self, request: web.Request, session: Session) -> web.Response:
        return web.Response(body=ADMIN_PAGE, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def health(self, request: web.Request) -> web.Response:
        fields = dict(self._info())
        return web.json_response({"status": "ok", "name": fields.get("name"),
                                  "peers": int(fields.get("peers", "0"))})

    async def metrics(self, request: web.Request, session: Session) -> web.Response:
        return web.Response(body=metrics_text(self._info(), self._latencies),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def cluster(self, request: web.Request, session: Session) -> web.Response:
        nodes = await self._cluster_nodes()
        return web.json_response({"nodes": [{**node, **node_figures(node.get("info"))}
                                            for node in nodes]})

    async def key(self, request: web.Request, session: Session) -> web.Response:
        key = _key_of(request)
        if request.method == "GET":
            found: Found = await self._run("GET", (key,))
            if not found.pairs:
                return _missing(key)
            value = found.pairs[0][1][HEADER_BYTES:]
            return web.Response(body=value, content_type="application/octet-stream",
                                headers={"ETag": _etag(value)})
        if request.method == "DELETE":
            deleted: KeyList = await self._run("DEL", (key,))
            return web.Response(status=204) if deleted.keys else _missing(key)
        return await self._put(request, key)

    async def _put(self, request: web.Request, key: bytes) -> web.Response:
        value = await request.read()
        expected = request.headers.get("If-Match")
        if expected is not None:
            return await self._put_if_match(key, value, expected)
        ttl = _ttl_of(request)
        if ttl is None:
            await self._run("SET", ((key, value),))
        else:
            await self._run("SETEX", (TtlItem.of(key, value, ttl),))
        return web.Response(status=204, headers={"ETag": _etag(value)})

    async def _put_if_match(self, key: bytes, value: bytes, expected: str) -> web.Response:
        """Compare-and-set: the current value must have the ETag given; the
        swap is the core's CAS against that value, so nothing changes if it
        moved meanwhile."""
        found: Found = await self._run("GET", (key,))
        current = found.pairs[0][1][HEADER_BYTES:] if found.pairs else None
        if current is None or _etag(current) != expected.strip():
            return web.json_response({"error": "the value does not match If-Match"},
                                     status=412)
        swapped: Swapped = await self._run("CAS", Swap(key, current, value))
        if not swapped.swapped:
            return web.json_response({"error": "the value changed meanwhile"}, status=412)
        return web.Response(status=204, headers={"ETag": _etag(value)})

    async def scan(self, request: web.Request, session: Session) -> web.Response:
        query = request.rel_url.query
        cursor = query.get("cursor", "0").encode()
        count = _number(query.get("count", "100"), "count", 1, 1_000_000)
        pattern = query.get("pattern", "*").encode("utf-8", "surrogateescape")
        page: ScanPage = await self._run("SCAN", ScanArgs(cursor, count, pattern))
        text, binary = [], []
        for key in page.keys:
            try:
                text.append(key.decode())
            except UnicodeDecodeError:
                binary.append(base64.b64encode(key).decode())
        body: dict[str, Any] = {"cursor": page.cursor.decode(), "keys": text}
        if binary:
            body["keys_b64"] = binary
        return web.json_response(body)

    async def counter(self, request: web.Request, session: Session) -> web.Response:
        key = _key_of(request)
        by = _number(request.rel_url.query.get("by", "1"), "by", -(1 << 63), (1 << 63) - 1)
        numbers: Numbers = await self._run("INCR", ((key, by),))
        return web.json_response({"key": key.decode("utf-8", "replace"),
                                  "value": numbers.pairs[0][1]})


@functools.lru_cache(maxsize=4096)
def _where(peer: str) -> tuple[str, bool]:
    """A client's address as sessions name it, and whether it is on loopback
    (cached: parsing the address each request cost 5% of a GET)."""
    where = f"{peer}:0" if ":" not in peer else f"[{peer}]:0"
    return where, is_loopback(where)


#: INFO fields lifted to the top of each ``/v1/cluster`` node, as numbers.
NODE_FIGURES = ("keys", "used_memory", "used_memory_dataset", "bloom_fill",
                "bloom_fp_estimate", "remote_lookups", "remote_probes")


def node_figures(info: dict[str, Any] | None) -> dict[str, float | int | None]:
    """The figures an operator compares across nodes, from one node's INFO
    (None for a node that did not answer): ``probes_per_lookup`` is
    remote_probes / remote_lookups, how many peers a miss asked on average."""
    if info is None:
        return {name: None for name in (*NODE_FIGURES, "probes_per_lookup")}
    figures: dict[str, float | int | None] = {}
    for name in NODE_FIGURES:
        figures[name] = _figure(info.get(name))
    lookups, probes = figures["remote_lookups"], figures["remote_probes"]
    figures["probes_per_lookup"] = (round(probes / lookups, 3)
                                    if lookups and probes is not None else 0.0)
    return figures


def _figure(text: object) -> float | int | None:
    if text is None:
        return None
    try:
        return int(str(text))
    except ValueError:
        try:
            return float(str(text))
        except ValueError:
            return None


def _key_of(request: web.Request) -> bytes:
    raw = request.raw_path.partition("?")[0]
    prefix = "/v1/keys/" if raw.startswith("/v1/keys/") else "/v1/counters/"
    key = unquote_to_bytes(raw[len(prefix):])
    if not 0 < len(key) <= MAX_KEY_BYTES:
        raise _BadRequest(f"a key is 1 to {MAX_KEY_BYTES} bytes (percent-encoded in the path)")
    return key


def _ttl_of(request: web.Request) -> float | None:
    text = request.rel_url.query.get("ttl")
    if text is None:
        return None
    try:
        ttl = float(text)
    except ValueError:
        ttl = -1.0
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_SECONDS):
        raise _BadRequest(f"ttl must be seconds, more than 0 and at most {MAX_TTL_SECONDS:.0f}")
    return ttl


def _number(text: str, name: str, low: int, high: int) -> int:
    try:
        number = int(text)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise _BadRequest(f"{name} must be a whole number from {low} to {high}")
    return number


def _etag(value: bytes) -> str:
    return '"' + hashlib.sha256(value).hexdigest()[:32] + '"'


def _missing(key: bytes) -> web.Response:
    return web.json_response({"error": "no such key", "key": key.decode("utf-8", "replace")},
                             status=404)


def _password_of(header: str) -> bytes | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip().encode()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise WrongPassError("malformed Basic credentials") from None
        return decoded.partition(b":")[2]
    return None


class _BadRequest(ProtocolError):
    """A request the HTTP API cannot read (400)."""

