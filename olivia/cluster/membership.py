"""Peer states and every transition between them, in one place.

::

    CONNECTING --handshake_ok--> ALIVE --heartbeat_missed / link_lost--> SUSPECT
        ^  |                     ^ ^                                     |  |
        |  +--dial_failed,------ | +--------heartbeat_ok / handshake_ok--+  |
        |     link_lost--> DOWN -+ handshake_ok (it dialled us)             |
        |                   |                                               |
        +------retry--------+ <--------------suspect_timeout----------------+

    any state --leave--> LEFT (the peer said goodbye; removed, not redialled)

Nothing here does I/O or reads a clock: the cluster code feeds events and the
current time in, and acts on the state that comes out.  Tests drive it with
plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field


class PeerState(enum.Enum):
    CONNECTING = "connecting"  # dialling or handshaking; not used for lookups
    ALIVE = "alive"  # link up, heartbeats answered: used for lookups
    SUSPECT = "suspect"  # link lost or heartbeats missed: not used; redialled
    DOWN = "down"  # suspect too long or unreachable: redialled with backoff
    LEFT = "left"  # announced its departure: forgotten


class PeerEvent(enum.Enum):
    HANDSHAKE_OK = "handshake_ok"
    DIAL_FAILED = "dial_failed"
    HEARTBEAT_OK = "heartbeat_ok"
    HEARTBEAT_MISSED = "heartbeat_missed"
    LINK_LOST = "link_lost"
    SUSPECT_TIMEOUT = "suspect_timeout"
    RETRY = "retry"
    LEAVE = "leave"


S, E = PeerState, PeerEvent
TRANSITIONS: dict[tuple[PeerState, PeerEvent], PeerState] = {
    (S.CONNECTING, E.HANDSHAKE_OK): S.ALIVE,
    (S.CONNECTING, E.DIAL_FAILED): S.DOWN,
    (S.CONNECTING, E.LINK_LOST): S.DOWN,
    (S.ALIVE, E.HEARTBEAT_MISSED): S.SUSPECT,
    (S.ALIVE, E.LINK_LOST): S.SUSPECT,
    (S.SUSPECT, E.HEARTBEAT_OK): S.ALIVE,
    (S.SUSPECT, E.HANDSHAKE_OK): S.ALIVE,
    (S.SUSPECT, E.SUSPECT_TIMEOUT): S.DOWN,
    (S.DOWN, E.RETRY): S.CONNECTING,
    (S.DOWN, E.HANDSHAKE_OK): S.ALIVE,  # it dialled us first
}
for _state in PeerState:
    if _state is not PeerState.LEFT:
        TRANSITIONS[(_state, E.LEAVE)] = S.LEFT
del _state, S, E


@dataclass
class Peer:
    """What this node knows of one other node."""

    name: str
    address: tuple[str, int]
    incarnation: int = 0
    state: PeerState = PeerState.CONNECTING
    since: float = 0.0  # when the current state began
    last_heard: float = 0.0  # last handshake or answered heartbeat
    failures: int = 0  # consecutive failed dials, for backoff
    next_retry: float = 0.0

    @property
    def address_text(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def apply(self, event: PeerEvent, now: float) -> bool:
        """Apply ``event``; True if the state changed.  Events that mean
        nothing in the current state are ignored."""
        new = TRANSITIONS.get((self.state, event))
        heard = event in (PeerEvent.HANDSHAKE_OK, PeerEvent.HEARTBEAT_OK)
        if heard and self.state is not PeerState.LEFT:
            self.last_heard = now
            self.failures = 0
        if event is PeerEvent.DIAL_FAILED:
            self.failures += 1
        if new is None or new is self.state:
            return False
        self.state = new
        self.since = now
        return True


@dataclass(frozen=True)
class Timing:
    """How fast failures are noticed; defaults meet the contract's 5 s."""

    heartbeat_interval: float = 0.25
    heartbeat_timeout: float = 0.5
    suspect_timeout: float = 1.5
    retry_base: float = 0.2
    retry_max: float = 2.0

    def retry_delay(self, failures: int) -> float:
        """Exponential backoff for redialling: base, 2x base, ... up to max."""
        return min(self.retry_max, self.retry_base * float(2 ** min(failures, 16)))


@dataclass
class Membership:
    """Every known peer by name: the single source of who is alive."""

    timing: Timing = field(default_factory=Timing)
    peers: dict[str, Peer] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self.peers.values()))

    def get(self, name: str) -> Peer | None:
        return self.peers.get(name)

    def by_address(self, address: tuple[str, int]) -> Peer | None:
        for peer in self.peers.values():
            if peer.address == address:
                return peer
        return None

    def alive(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.state is PeerState.ALIVE]

    def admit(self, name: str, address: tuple[str, int], incarnation: int,
              now: float) -> tuple[Peer, bool]:
        """Record a peer that introduced itself; returns (peer, is_new).

        A known name with a new incarnation is a restarted node: its old
        entry is replaced (is_new is True), so its old link and filter go.
        """
        peer = self.peers.get(name)
        same = peer is not None and peer.incarnation == incarnation
        if peer is not None and same and peer.state is not PeerState.LEFT:
            peer.address = address
            return peer, False
        peer = Peer(name, address, incarnation, since=now, last_heard=now)
        self.peers[name] = peer
        return peer, True

    def forget(self, name: str) -> None:
        self.peers.pop(name, None)

    def due(self, now: float) -> list[tuple[Peer, PeerEvent]]:
        """Timer-driven events that are due: suspects that timed out, and
        down peers whose backoff has run out."""
        events = []
        timing = self.timing
        for peer in self.peers.values():
            if peer.state is PeerState.SUSPECT and now - peer.since >= timing.suspect_timeout:
                events.append((peer, PeerEvent.SUSPECT_TIMEOUT))
            elif peer.state is PeerState.DOWN and now >= peer.next_retry:
                events.append((peer, PeerEvent.RETRY))
        return events

    def unheard_for(self, now: float, seconds: float) -> list[Peer]:
        """Peers that cannot be reached (down, or being redialled) and have not
        been heard from for ``seconds``: the ones to forget."""
        return [p for p in self.peers.values()
                if p.state in (PeerState.DOWN, PeerState.CONNECTING)
                and now - p.last_heard >= seconds]

    def schedule_retry(self, peer: Peer, now: float) -> None:
        peer.next_retry = now + self.timing.retry_delay(peer.failures)

    def counts(self) -> dict[PeerState, int]:
        counts = dict.fromkeys(PeerState, 0)
        for peer in self.peers.values():
            counts[peer.state] += 1
        return counts
