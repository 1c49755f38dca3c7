"""Joining and dialling: seeds, the handshake, dial-back and peer exchange.

A node dials every peer it learns of (one outgoing :class:`PeerLink` each,
used only for this node's own requests).  The handshake (``REQUEST CONNECT``
then ``REQUEST PROVE``, olivia.cluster.handshake) proves the cluster's key
both ways; a node that is dialled dials back, so each pair ends with a link
each way.  Once linked, a node asks the other whom it sees (``REQUEST
PEERS``) and dials the ones it does not know.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

from olivia.cluster.handshake import (
    ANSWER,
    DIAL,
    NO_VOUCH,
    new_nonce,
    proof,
    proof_matches,
    vouch,
)
from olivia.cluster.links import PeerLink, PeerUnavailableError
from olivia.cluster.membership import Peer, PeerEvent, PeerState
from olivia.cluster.peer_table import PeerTable, parse_address
from olivia.config import Config
from olivia.core.errors import OliviaError, ProtocolError
from olivia.core.requests import Hello
from olivia.core.tasks import TaskSet
from olivia.protocols.line.peer import (
    PEERS_PAYLOAD,
    connect_payload,
    parse_answer,
    peer_line,
    prove_payload,
)

log = logging.getLogger(__name__)

# A dial's nonce is kept this long, to vouch for it when dialled back.
NONCE_SECONDS = 30.0


@dataclass(frozen=True)
class PeerSecurity:
    """How this node proves itself to peers and checks them."""

    key: bytes = b""  # cluster.secret, else auth.password, else empty
    secret: bool = False  # the key is a cluster secret (no dial-back needed)
    ssl: ssl.SSLContext | None = None  # for dialling peers over TLS
    needs_certificate: bool = False  # peers must present a certificate tls.ca signed


class _Refused(Exception):
    """A handshake failed (already logged); the message says why, for INFO."""


class Dialer:
    """Opens links to peers and keeps the seeds dialled until they answer."""

    def __init__(self, config: Config, table: PeerTable, tasks: TaskSet,
                 security: PeerSecurity | None = None) -> None:
        self._config = config
        self._table = table
        self._tasks = tasks
        security = security or PeerSecurity()
        self.key = security.key
        self.secret = security.secret
        self.needs_certificate = security.needs_certificate
        self._ssl = security.ssl
        # The nonces of our handshakes under way, by the peer's address and
        # name (olivia.cluster.handshake: a dial-back probe asks for them).
        self._nonces: dict[str, tuple[bytes, float]] = {}
        self._dialing: set[str] = set()  # names or addresses being dialled
        self._unreachable: set[str] = set()  # seeds whose last dial failed
        self._last_failure: dict[str, str] = {}  # address -> why its last dial failed
        self.me = Hello("", "", 0)
        self.running = False

    def start(self, me: Hello) -> None:
        self.me = me
        self.running = True
        for seed in self._config.peers:
            if seed != me.address:
                self._tasks.spawn(self._dial_seed(seed), f"dial seed {seed}")

    def dial(self, peer: Peer, what: str = "dial") -> None:
        """Dial ``peer`` (in the background) unless that is under way."""
        if peer.name not in self._dialing:
            self._tasks.spawn(self._dial(peer), f"{what} {peer.name}")

    def dial_back(self, peer: Peer) -> None:
        if peer.name not in self._table.links:
            self.dial(peer)

    def exchange_with(self, name: str) -> None:
        self._tasks.spawn(self._exchange_peers(name), f"peer exchange with {name}")

    def discovered(self, address: str) -> None:
        """An address discovery found (olivia.cluster.discovery): dialled once
        unless it is ours, known alive, or being dialled; the next resolution
        tries again if it does not answer."""
        if address == self.me.address or address in self._dialing or not self.running:
            return
        try:
            known = self._table.membership.by_address(parse_address(address))
        except ValueError:
            return
        if known is None or known.state in (PeerState.DOWN, PeerState.LEFT):
            self._dialing.add(address)
            self._tasks.spawn(self._connect_once(address), f"dial discovered {address}")

    def seeds_unreachable(self) -> int:
        """Seeds whose last dial failed (INFO ``seeds_unreachable``)."""
        return len(self._unreachable)

    async def _dial_seed(self, address: str) -> None:
        """Dial a seed until it answers (it may start after us).  A seed that
        does not answer is worth a warning, the first time and then with
        backoff (after 1, 2, 4, 8... failures): a wrong --peers is otherwise
        silent, the node just alone."""
        timing = self._table.membership.timing
        delay = timing.retry_base
        failures = 0
        while self.running:
            known = self._table.membership.by_address(parse_address(address))
            if known is not None and known.name in self._table.links:
                break
            if await self._connect(address):
                break
            failures += 1
            self._unreachable.add(address)
            if failures & (failures - 1) == 0:
                log.warning("seed %s does not answer (%s; %d attempt%s so far): check --peers; "
                            "still trying", address, self._last_failure.get(address, "?"),
                            failures, "" if failures == 1 else "s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, timing.retry_max)
        if address in self._unreachable:
            self._unreachable.discard(address)
            log.info("seed %s answered after %d failed attempts", address, failures)

    async def _dial(self, peer: Peer) -> None:
        if peer.name in self._dialing:
            return
        self._dialing.add(peer.name)
        try:
            if not await self._connect(peer.address_text, expected=peer.name):
                membership = self._table.membership
                if membership.get(peer.name) is peer:
                    peer.apply(PeerEvent.DIAL_FAILED, time.monotonic())
                    membership.schedule_retry(peer, time.monotonic())
        finally:
            self._dialing.discard(peer.name)

    # -- the handshake, dialling side (olivia.cluster.handshake) --------------------

    def vouch_for(self, hello: Hello) -> bytes:
        """What to answer a CONNECT from ``hello``: if we are dialling that node,
        proof that we know our nonce (it may be a dial-back probe)."""
        now = time.monotonic()
        for label in (hello.name, hello.address):
            held = self._nonces.get(label)
            if held is not None and now - held[1] < NONCE_SECONDS:
                return vouch(held[0], hello.nonce)
        return NO_VOUCH

    async def probe(self, hello: Hello) -> bool:
        """Dial ``hello``'s address back: True if the node there has that name
        and incarnation and vouches for ``hello.nonce`` (it sent it)."""
        host, port = parse_address(hello.address)
        timeout = self._config.lookup_timeout
        try:
            link = await PeerLink.open(host, port, hello.address, self._config.max_peer_line_bytes,
                                       timeout, ssl=self._ssl)
        except PeerUnavailableError as exc:
            log.warning("dial-back of %s at %s failed: %s", hello.name, hello.address, exc)
            return False
        probe_nonce = new_nonce()
        try:
            reply = await link.request(peer_line(connect_payload(self.me, probe_nonce)), timeout)
            answer = parse_answer(reply.payload)
        except (OliviaError, ValueError) as exc:
            log.warning("dial-back of %s at %s failed: %s", hello.name, hello.address, exc)
            return False
        finally:
            link.close()
        them = answer.identity
        return (them.name == hello.name and them.incarnation == hello.incarnation
                and proof_matches(answer.vouch, vouch(hello.nonce, probe_nonce)))

    async def _connect(self, address: str, expected: str | None = None) -> bool:
        """Open a link, prove ourselves, check who answered; True on success."""
        host, port = parse_address(address)
        timeout = self._config.lookup_timeout
        table = self._table
        try:
            link = await PeerLink.open(host, port, expected or address,
                                       self._config.max_peer_line_bytes, timeout,
                                       table.link_lost, ssl=self._ssl)
        except PeerUnavailableError as exc:
            log.debug("%s", exc)
            self._last_failure[address] = str(exc)
            return False
        nonce = new_nonce()
        self._remember_nonce(address, nonce)
        try:
            them = await self._handshake(link, address, nonce)
        except _Refused as exc:
            self._last_failure[address] = str(exc)
            link.close()
            return False
        finally:
            self._forget_nonce(address, nonce)
        if them is None:
            link.close()  # we dialled ourselves (a seed list naming this node)
            return True
        peer, _ = table.admit(them.name, them.address, them.incarnation)
        table.set_link(them.name, link)
        if peer.apply(PeerEvent.HANDSHAKE_OK, time.monotonic()):
            log.info("peer %s is %s", them.name, peer.state.value)
            table.state_changed()  # placement now, not at the next tick
        self.exchange_with(them.name)
        return True

    async def _handshake(self, link: PeerLink, address: str, nonce: bytes) -> Hello | None:
        """CONNECT and PROVE on ``link``; who answered (None: ourselves).
        Raises _Refused, logged, if the handshake fails either way."""
        timeout = self._config.lookup_timeout
        me = self.me
        try:
            reply = await link.request(peer_line(connect_payload(me, nonce)), timeout)
            answer = parse_answer(reply.payload)
        except (OliviaError, ValueError) as exc:
            log.warning("handshake with %s failed: %s", address, exc)
            raise _Refused(f"handshake failed: {exc}") from None
        them = answer.identity
        if them.name == me.name:
            return None
        self._remember_nonce(them.name, nonce)
        expected = proof(self.key, ANSWER, nonce, answer.nonce, me.name, them.name)
        if not proof_matches(answer.proof, expected):
            log.error("not joining %s at %s: it does not prove our cluster.secret (or, without "
                      "one, auth.password): the two nodes are configured differently",
                      them.name, address)
            raise _Refused("it does not know our cluster secret")
        try:
            self._table.check_node_id(them.name)
        except ProtocolError as exc:
            log.error("not joining %s: %s", them.name, exc.message)
            raise _Refused(exc.message) from None
        mine = proof(self.key, DIAL, nonce, answer.nonce, me.name, them.name)
        try:
            # Without a secret it dials us back first: two round trips more.
            await link.request(peer_line(prove_payload(mine)), 3 * timeout + 0.5)
        except OliviaError as exc:
            log.error("%s at %s refused us: %s", them.name, address, exc)
            raise _Refused(f"refused: {exc}") from None
        finally:
            self._nonces.pop(them.name, None)
        return them

    def _remember_nonce(self, label: str, nonce: bytes) -> None:
        now = time.monotonic()
        for old, (_, since) in list(self._nonces.items()):
            if now - since >= NONCE_SECONDS:
                del self._nonces[old]
        self._nonces[label] = (nonce, now)

    def _forget_nonce(self, label: str, nonce: bytes) -> None:
        if self._nonces.get(label, (b"", 0.0))[0] == nonce:
            del self._nonces[label]

    async def _exchange_peers(self, name: str) -> None:
        """Ask a peer whom it sees alive; dial the ones we do not know."""
        link = self._table.links.get(name)
        if link is None:
            return
        try:
            reply = await link.request(peer_line(PEERS_PAYLOAD), self._config.lookup_timeout)
        except OliviaError:
            return
        if not reply.payload:
            return
        for address in reply.payload.decode("ascii", "replace").split(","):
            if address == self.me.address or address in self._dialing:
                continue
            try:
                known = self._table.membership.by_address(parse_address(address))
            except ValueError:
                continue
            if known is None or known.state in (PeerState.DOWN, PeerState.LEFT):
                self._dialing.add(address)
                self._tasks.spawn(self._connect_once(address), f"dial {address}")

    async def _connect_once(self, address: str) -> None:
        try:
            await self._connect(address)
        finally:
            self._dialing.discard(address)
