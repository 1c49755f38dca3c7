"""What the atomic verbs, SCAN and COUNT ask of other nodes.

* **Homes**: the read-modify-write verbs on a key run at one node, the
  first of its slot's homes among the alive members (olivia.core.atomic);
  a node that is not it forwards the request there as ``REQUEST EXEC
  <client line>`` and reads the client reply back out of the answer.
* **Fetch**: a home that holds no copy of a key asks the peers whose
  filters may hold one for theirs (``REQUEST FETCH``), with TTLs.
* **Scan and count**: each key is listed and counted by one node (with
  replicas its first home, without them the one node that holds it);
  ``REQUEST SCAN`` is one page of a peer's own scan, ``REQUEST COUNT`` the
  number of keys it lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from olivia.cluster.peer_table import PeerTable
from olivia.cluster.placement import Placement
from olivia.cluster.replication import replicate_timeout
from olivia.config import Config
from olivia.core.errors import NotReadyError, OliviaError, ProtocolError
from olivia.core.requests import Copy, Result
from olivia.core.slots import slot_of
from olivia.protocols.line.peer import peer_line, split_copies
from olivia.protocols.line.replies import ReplyLine, decode_result, decode_scan_page, parse_reply
from olivia.protocols.line.requests import FORWARDED, keys_payload, scan_payload

#: Keys per REQUEST FETCH line.
FETCH_BATCH = 2000
#: Seconds a SCAN page or a COUNT may wait for a member: a member busy with
#: repair after a large load answers slowly, and a scan should not fail for it.
LISTING_TIMEOUT = 10.0


class Forwarding:
    """One node's side of the atomic verbs, SCAN and COUNT across the cluster."""

    def __init__(self, config: Config, table: PeerTable, placement: Placement) -> None:
        self._config = config
        self._table = table
        self._placement = placement

    def home(self, key: bytes) -> str | None:
        home = self._placement.homes(slot_of(key))[0]
        return None if home == self._placement.me else home

    def lists_slot(self, slot: int) -> bool:
        """With replicas, the slot's first home lists its keys (the other
        homes hold the same ones; a copy outside the homes is a guest, handed
        on).  Without, a key lives where it was written: each node lists its own."""
        placement = self._placement
        return not placement.replicas or placement.homes(slot)[0] == placement.me

    async def execute(self, name: str, verb: str, items: Any) -> Result:
        """``verb`` on ``items`` carried out at ``name`` (their home)."""
        line = verb.encode() + b" " + FORWARDED[verb](items)
        # The home may fetch a copy, then wait for its write's copies.
        timeout = 2 * self._config.lookup_timeout + replicate_timeout(self._config)
        answer = await self._ask(name, b"EXEC " + line, name, timeout)
        try:
            inner = parse_reply(answer.payload)
        except ProtocolError:
            raise NotReadyError(f"peer node {name} sent a malformed answer; retry") from None
        return decode_result(inner)

    def fetch(self, keys: Collection[bytes]) -> asyncio.Future[list[Copy]] | None:
        """The copies the peers whose filters match hold (None: no peer may)."""
        table = self._table
        by_peer: dict[str, list[bytes]] = {}
        alive = [(peer.name, table.filter_of(peer.name)) for peer, _ in table.alive_linked()]
        for key in keys:
            for name, replica in alive:
                if key in replica:
                    by_peer.setdefault(name, []).append(key)
        if not by_peer:
            return None
        return asyncio.ensure_future(self._fetch(by_peer))

    async def _fetch(self, by_peer: dict[str, list[bytes]]) -> list[Copy]:
        asks = [self._ask(name, b"FETCH " + keys_payload(keys[start:start + FETCH_BATCH]),
                          name)
                for name, keys in by_peer.items()
                for start in range(0, len(keys), FETCH_BATCH)]
        copies: list[Copy] = []
        for answer in await asyncio.gather(*asks):
            copies.extend(split_copies(answer.payload))
        return copies

    async def scan_page(self, name: str, position: bytes, count: int,
                        pattern: bytes) -> tuple[bytes, list[bytes]]:
        answer = await self._ask(name, b"SCAN " + scan_payload(position, count, pattern), name,
                                 max(LISTING_TIMEOUT, self._config.lookup_timeout))
        page = decode_scan_page(answer.payload)
        return (b"" if page.cursor == b"0" else page.cursor), list(page.keys)

    def count_elsewhere(self) -> asyncio.Future[int] | None:
        names = [peer.name for peer, _ in self._table.alive_linked()]
        if not names:
            return None
        return asyncio.ensure_future(self._count(names))

    async def _count(self, names: list[str]) -> int:
        timeout = max(LISTING_TIMEOUT, self._config.lookup_timeout)
        answers = await asyncio.gather(*(self._ask(name, b"COUNT", name, timeout)
                                         for name in names))
        total = 0
        for name, answer in zip(names, answers, strict=True):
            if not answer.payload.isdigit():
                raise NotReadyError(f"peer node {name} sent a malformed COUNT answer; retry")
            total += int(answer.payload)
        return total

    async def _ask(self, name: str, payload: bytes, who: str,
                   timeout: float | None = None) -> ReplyLine:
        """The peer's answer; a peer that cannot answer is an error the
        client is told of (a forwarded write may or may not have been done)."""
        link = self._table.links.get(name)
        if link is None:
            raise NotReadyError(f"peer node {who} cannot be reached now; retry in a moment")
        try:
            answer = await link.request(peer_line(payload),
                                        timeout or self._config.lookup_timeout)
        except OliviaError as exc:
            raise NotReadyError(f"peer node {who} did not answer ({exc}); a forwarded write "
                                "may or may not have been carried out") from None
        if answer.is_error:
            raise NotReadyError(f"peer node {who} refused: "
                                f"{answer.payload.decode('utf-8', 'replace')}")
        return answer
