"""Pure tests of the peer state machine: every transition, backoff, and the
membership table.  Time is plain numbers passed as ``now``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from olivia.cluster.membership import TRANSITIONS, Membership, Peer, PeerEvent, PeerState, Timing

S, E = PeerState, PeerEvent
ADDRESS = ("127.0.0.1", 5001)
CONTRACT_SECONDS = 5.0  # a peer whose link is lost is DOWN within this


def state_of(peer: Peer) -> PeerState:
    """The peer's state, read through a call so mypy does not keep a narrowed type
    across apply()."""
    return peer.state


def peer_in(state: PeerState, **fields: float) -> Peer:
    peer = Peer("b", ADDRESS, incarnation=1, state=state, since=1.0, last_heard=1.0)
    for name, value in fields.items():
        setattr(peer, name, value)
    return peer


# -- the transition table ----------------------------------------------------------


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PeerState, PeerEvent)),
                         ids=lambda v: v.value)
def test_every_state_and_event(state: PeerState, event: PeerEvent) -> None:
    """The new state is TRANSITIONS' value, or no change when the pair is absent;
    ``since`` moves and apply() returns True exactly when the state changed."""
    peer = peer_in(state)
    expected = TRANSITIONS.get((state, event), state)
    changed = peer.apply(event, 9.0)
    assert peer.state is expected
    assert changed is (expected is not state)
    assert peer.since == (9.0 if changed else 1.0)


@pytest.mark.parametrize("state", [s for s in PeerState if s is not S.LEFT],
                         ids=lambda v: v.value)
def test_leave_from_any_state_goes_to_left(state: PeerState) -> None:
    peer = peer_in(state)
    assert peer.apply(E.LEAVE, 2.0) is True
    assert state_of(peer) is S.LEFT
    assert peer.since == 2.0


def test_left_is_final_for_every_event() -> None:
    for event in PeerEvent:
        peer = peer_in(S.LEFT)
        assert peer.apply(event, 2.0) is False
        assert state_of(peer) is S.LEFT
        assert peer.since == 1.0


def test_the_documented_edges_are_in_the_table() -> None:
    """The diagram in the module docstring, edge by edge."""
    documented = {
        (S.CONNECTING, E.HANDSHAKE_OK): S.ALIVE,
        (S.CONNECTING, E.DIAL_FAILED): S.DOWN,
        (S.ALIVE, E.HEARTBEAT_MISSED): S.SUSPECT,
        (S.ALIVE, E.LINK_LOST): S.SUSPECT,
        (S.SUSPECT, E.HEARTBEAT_OK): S.ALIVE,
        (S.SUSPECT, E.HANDSHAKE_OK): S.ALIVE,
        (S.SUSPECT, E.SUSPECT_TIMEOUT): S.DOWN,
        (S.DOWN, E.RETRY): S.CONNECTING,
    }
    for pair, target in documented.items():
        assert TRANSITIONS[pair] is target, pair
    assert all(TRANSITIONS[(s, E.LEAVE)] is S.LEFT for s in PeerState if s is not S.LEFT)
    assert not any(state is S.LEFT for state, _ in TRANSITIONS)  # nothing leaves LEFT


# -- Peer.apply's bookkeeping ---------------------------------------------------------


@pytest.mark.parametrize(("state", "event"), [
    (S.CONNECTING, E.HANDSHAKE_OK),
    (S.SUSPECT, E.HANDSHAKE_OK),
    (S.SUSPECT, E.HEARTBEAT_OK),
    (S.DOWN, E.HANDSHAKE_OK),
], ids=str)
def test_hearing_from_a_peer_sets_last_heard_and_resets_failures(
        state: PeerState, event: PeerEvent) -> None:
    peer = peer_in(state, failures=4)
    assert peer.apply(event, 7.5) is True
    assert state_of(peer) is S.ALIVE
    assert (peer.last_heard, peer.failures, peer.since) == (7.5, 0, 7.5)


@pytest.mark.parametrize("event", [E.HEARTBEAT_OK, E.HANDSHAKE_OK], ids=str)
def test_an_answered_heartbeat_of_an_alive_peer_refreshes_last_heard(event: PeerEvent) -> None:
    peer = peer_in(S.ALIVE, failures=2)
    assert peer.apply(event, 7.5) is False  # no state change
    assert state_of(peer) is S.ALIVE
    assert (peer.last_heard, peer.failures) == (7.5, 0)


def test_dial_failed_counts_consecutive_failures() -> None:
    peer = peer_in(S.CONNECTING)
    for expected in range(1, 4):
        assert peer.apply(E.DIAL_FAILED, 10.0 * expected) is True
        assert (peer.state, peer.failures) == (S.DOWN, expected)
        assert peer.apply(E.RETRY, 10.0 * expected + 1) is True
        assert state_of(peer) is S.CONNECTING
        assert peer.failures == expected  # a retry is not a success
    assert peer.apply(E.HANDSHAKE_OK, 50.0) is True
    assert peer.failures == 0


@pytest.mark.parametrize("state", list(PeerState), ids=lambda v: v.value)
def test_dial_failed_counts_in_every_state(state: PeerState) -> None:
    """A failed redial of a suspect (no state change) still counts for the backoff."""
    peer = peer_in(state, failures=2)
    peer.apply(E.DIAL_FAILED, 3.0)
    assert peer.failures == 3


@pytest.mark.parametrize("event", [e for e in PeerEvent
                                   if e not in (E.HANDSHAKE_OK, E.HEARTBEAT_OK, E.DIAL_FAILED)],
                         ids=str)
def test_other_events_leave_last_heard_and_failures_alone(event: PeerEvent) -> None:
    for state in PeerState:
        peer = peer_in(state, failures=2)
        peer.apply(event, 3.0)
        assert (peer.last_heard, peer.failures) == (1.0, 2), (state, event)


def test_address_text() -> None:
    assert Peer("b", ("10.0.0.7", 5454)).address_text == "10.0.0.7:5454"


# -- life cycles through Membership.due -------------------------------------------------


def test_full_life_cycle() -> None:
    members = Membership()
    timing = members.timing
    peer, is_new = members.admit("b", ADDRESS, 1, now=0.0)
    assert is_new and state_of(peer) is S.CONNECTING
    assert members.due(0.0) == []

    assert peer.apply(E.HANDSHAKE_OK, 0.1)
    assert state_of(peer) is S.ALIVE and members.alive() == [peer]

    assert peer.apply(E.LINK_LOST, 1.0)
    assert state_of(peer) is S.SUSPECT and members.alive() == []
    assert members.due(1.0 + timing.suspect_timeout - 0.001) == []
    lost = 1.0 + timing.suspect_timeout
    assert members.due(lost) == [(peer, E.SUSPECT_TIMEOUT)]
    assert peer.apply(E.SUSPECT_TIMEOUT, lost)
    assert state_of(peer) is S.DOWN

    members.schedule_retry(peer, lost)  # what the cluster does on DOWN
    assert peer.next_retry == lost + timing.retry_base
    assert members.due(peer.next_retry - 0.001) == []
    assert members.due(peer.next_retry) == [(peer, E.RETRY)]
    assert peer.apply(E.RETRY, peer.next_retry)
    assert state_of(peer) is S.CONNECTING
    assert members.due(peer.next_retry + 100) == []  # RETRY is due once, not again

    assert peer.apply(E.HANDSHAKE_OK, 5.0)
    assert state_of(peer) is S.ALIVE and members.alive() == [peer]
    assert members.due(100.0) == []


def test_failed_redials_back_off() -> None:
    members = Membership()
    peer, _ = members.admit("b", ADDRESS, 1, now=0.0)
    now = 0.0
    delays = []
    for _ in range(6):
        assert peer.apply(E.DIAL_FAILED, now)
        members.schedule_retry(peer, now)
        delays.append(peer.next_retry - now)
        assert members.due(peer.next_retry - 0.001) == []
        now = peer.next_retry
        assert members.due(now) == [(peer, E.RETRY)]
        assert peer.apply(E.RETRY, now)
    assert delays == pytest.approx([0.4, 0.8, 1.6, 2.0, 2.0, 2.0])


def test_suspect_recovers_before_the_timeout() -> None:
    members = Membership()
    peer, _ = members.admit("b", ADDRESS, 1, now=0.0)
    peer.apply(E.HANDSHAKE_OK, 0.0)
    assert peer.apply(E.HEARTBEAT_MISSED, 1.0)
    assert state_of(peer) is S.SUSPECT
    assert peer.apply(E.HEARTBEAT_OK, 1.0 + members.timing.suspect_timeout / 2)
    assert state_of(peer) is S.ALIVE
    assert peer.last_heard == 1.0 + members.timing.suspect_timeout / 2
    assert members.due(1000.0) == []  # no stale timeout fires later


def test_suspect_timeout_counts_from_becoming_suspect() -> None:
    """Missed heartbeats and redials while suspect do not restart the timeout."""
    members = Membership()
    peer, _ = members.admit("b", ADDRESS, 1, now=0.0)
    peer.apply(E.HANDSHAKE_OK, 0.0)
    peer.apply(E.LINK_LOST, 1.0)
    assert peer.apply(E.HEARTBEAT_MISSED, 1.5) is False
    assert peer.apply(E.RETRY, 2.0) is False  # redialling keeps the suspicion
    assert peer.since == 1.0
    assert members.due(1.0 + members.timing.suspect_timeout) == [(peer, E.SUSPECT_TIMEOUT)]


def test_due_only_fires_for_suspect_and_down_peers() -> None:
    members = Membership()
    for state in PeerState:
        peer, _ = members.admit(state.value, ("10.0.0.1", len(members.peers)), 1, now=0.0)
        peer.state, peer.since, peer.next_retry = state, 0.0, 0.0
    assert sorted((p.name, e.value) for p, e in members.due(1000.0)) == [
        ("down", "retry"), ("suspect", "suspect_timeout")]


# -- backoff ------------------------------------------------------------------------------


def test_default_retry_delays() -> None:
    timing = Timing()
    assert [timing.retry_delay(n) for n in range(7)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    assert timing.retry_delay(10**9) == timing.retry_max  # no overflow for huge counts


@given(st.floats(0.001, 10.0), st.floats(1.0, 1000.0), st.integers(0, 200))
def test_retry_delay_grows_exponentially_up_to_the_cap(base: float, factor: float,
                                                       failures: int) -> None:
    timing = Timing(retry_base=base, retry_max=base * factor)
    delay = timing.retry_delay(failures)
    assert timing.retry_delay(0) == base
    assert delay <= timing.retry_max
    assert timing.retry_delay(failures + 1) >= delay
    if failures < 16:  # exponent range the implementation doubles over
        assert timing.retry_delay(failures + 1) == pytest.approx(
            min(timing.retry_max, 2 * delay))
    if base * 2 ** failures >= timing.retry_max and failures <= 16:
        assert delay == timing.retry_max


@pytest.mark.parametrize("failures", [0, 1, 3, 20])
def test_schedule_retry_uses_the_backoff(failures: int) -> None:
    members = Membership(Timing(retry_base=1.0, retry_max=10.0))
    peer, _ = members.admit("b", ADDRESS, 1, now=0.0)
    peer.apply(E.DIAL_FAILED, 0.0)
    peer.failures = failures
    members.schedule_retry(peer, 100.0)
    assert peer.next_retry == 100.0 + min(10.0, 2.0 ** failures)
    assert members.due(peer.next_retry - 0.5) == []
    assert members.due(peer.next_retry) == [(peer, E.RETRY)]
    assert members.due(peer.next_retry + 1) == [(peer, E.RETRY)]  # until applied


# -- admit ----------------------------------------------------------------------------


def test_admit_a_new_name() -> None:
    members = Membership()
    peer, is_new = members.admit("b", ADDRESS, 7, now=3.0)
    assert is_new is True
    assert (peer.name, peer.address, peer.incarnation) == ("b", ADDRESS, 7)
    assert (peer.state, peer.since, peer.last_heard, peer.failures) == (S.CONNECTING, 3.0,
                                                                         3.0, 0)
    assert members.get("b") is peer and members.peers == {"b": peer}


def test_admit_the_same_incarnation_keeps_the_entry_and_updates_the_address() -> None:
    members = Membership()
    peer, _ = members.admit("b", ADDRESS, 7, now=3.0)
    peer.apply(E.HANDSHAKE_OK, 4.0)
    again, is_new = members.admit("b", ("10.0.0.9", 6000), 7, now=5.0)
    assert again is peer and is_new is False
    assert peer.address == ("10.0.0.9", 6000)
    assert (peer.state, peer.since) == (S.ALIVE, 4.0)  # state untouched
    assert members.by_address(ADDRESS) is None
    assert members.by_address(("10.0.0.9", 6000)) is peer


@pytest.mark.parametrize("new_incarnation", [8, 10**18], ids=["next", "much-later"])
def test_admit_a_restarted_node_replaces_its_entry(new_incarnation: int) -> None:
    members = Membership()
    old, _ = members.admit("b", ADDRESS, 7, now=3.0)
    old.apply(E.HANDSHAKE_OK, 4.0)
    old.failures = 3
    peer, is_new = members.admit("b", ADDRESS, new_incarnation, now=9.0)
    assert is_new is True and peer is not old
    assert (peer.incarnation, peer.state, peer.since, peer.failures) == (
        new_incarnation, S.CONNECTING, 9.0, 0)
    assert members.get("b") is peer and len(members.peers) == 1


@pytest.mark.parametrize("incarnation", [7, 8], ids=["same-incarnation", "new-incarnation"])
def test_admit_brings_a_left_peer_back(incarnation: int) -> None:
    members = Membership()
    old, _ = members.admit("b", ADDRESS, 7, now=3.0)
    old.apply(E.HANDSHAKE_OK, 4.0)
    old.apply(E.LEAVE, 5.0)
    assert old.state is S.LEFT
    peer, is_new = members.admit("b", ADDRESS, incarnation, now=9.0)
    assert is_new is True and peer is not old
    assert (peer.state, peer.since) == (S.CONNECTING, 9.0)
    assert members.get("b") is peer


# -- queries --------------------------------------------------------------------------------


def three_peers() -> tuple[Membership, Peer, Peer, Peer]:
    members = Membership()
    a, _ = members.admit("a", ("10.0.0.1", 1), 1, now=0.0)
    b, _ = members.admit("b", ("10.0.0.2", 2), 1, now=0.0)
    c, _ = members.admit("c", ("10.0.0.3", 3), 1, now=0.0)
    a.apply(E.HANDSHAKE_OK, 1.0)
    b.apply(E.HANDSHAKE_OK, 1.0)
    b.apply(E.LINK_LOST, 2.0)
    return members, a, b, c


def test_alive_lists_only_alive_peers() -> None:
    members, a, b, _ = three_peers()
    assert members.alive() == [a]
    b.apply(E.HEARTBEAT_OK, 3.0)
    assert members.alive() == [a, b]


def test_by_address() -> None:
    members, _, b, c = three_peers()
    assert members.by_address(("10.0.0.2", 2)) is b
    assert members.by_address(("10.0.0.3", 3)) is c
    assert members.by_address(("10.0.0.2", 3)) is None
    assert Membership().by_address(ADDRESS) is None


def test_counts_cover_every_state() -> None:
    members, _, _, _ = three_peers()
    assert members.counts() == {S.CONNECTING: 1, S.ALIVE: 1, S.SUSPECT: 1, S.DOWN: 0,
                                S.LEFT: 0}
    assert Membership().counts() == dict.fromkeys(PeerState, 0)


def test_forget() -> None:
    members, a, b, c = three_peers()
    members.forget("b")
    members.forget("unknown")  # no error
    assert members.get("b") is None
    assert list(members) == [a, c]
    assert members.by_address(b.address) is None
    assert sum(members.counts().values()) == 2


def test_iteration_is_a_snapshot_so_peers_can_be_forgotten_while_iterating() -> None:
    members, _, _, _ = three_peers()
    for peer in members:
        members.forget(peer.name)
    assert members.peers == {}


# -- the 5 s contract -------------------------------------------------------------------------


def test_default_timing_meets_the_five_second_contract_on_paper() -> None:
    timing = Timing()
    # the maintenance loop runs due() every heartbeat_interval, plus up to one
    # heartbeat_timeout spent waiting for answers
    tick = timing.heartbeat_interval + timing.heartbeat_timeout
    link_closed = timing.suspect_timeout + tick
    silent = tick + timing.suspect_timeout + tick  # noticed only by a missed heartbeat
    assert timing.heartbeat_interval + timing.suspect_timeout < CONTRACT_SECONDS / 2
    assert link_closed < silent < CONTRACT_SECONDS
    assert 0 < timing.retry_base <= timing.retry_max < CONTRACT_SECONDS


@pytest.mark.parametrize("phase", [0.0, 0.1, 0.3, 0.5, 0.74])
def test_default_timing_marks_a_lost_peer_down_within_five_seconds(phase: float) -> None:
    """Simulate the maintenance loop (worst case: every heartbeat times out)
    with the link dropping at an arbitrary moment between two ticks."""
    members = Membership()
    timing = members.timing
    tick = timing.heartbeat_interval + timing.heartbeat_timeout
    peer, _ = members.admit("b", ADDRESS, 1, now=0.0)
    peer.apply(E.HANDSHAKE_OK, 0.0)
    lost_at = 10.0 + phase
    peer.apply(E.LINK_LOST, lost_at)
    now = 10.0
    while state_of(peer) is not S.DOWN:
        now += tick
        assert now - lost_at < CONTRACT_SECONDS, "still not DOWN"
        for due_peer, event in members.due(now):
            due_peer.apply(event, now)
    assert state_of(peer) is S.DOWN
    assert now - lost_at <= timing.suspect_timeout + tick
