"""A 3-node cluster split 1|2 by a network partition (hosts on a switch, one
unplugged): both sides keep serving, writes and deletes on both sides are
acknowledged, and after the heal every node returns the same value for every
key within 5 s, the later write winning (issue 12)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

from tests.helpers import OliviaProcess, wait_until
from tests.netns import Host, Switch, switched_hosts

PORT = 5454  # each namespace has its own ports
CONVERGE = 5.0  # the contract's bound, from the heal
PRE_SPLIT = [f"k{number:03}" for number in range(200)]

View = dict[str, str | None]  # key -> value, None for absent


@contextmanager
def node_on(host: Host, name: str, *args: str) -> Iterator[OliviaProcess]:
    # No secret and no password: peers on other hosts are admitted by dial-back.
    node = OliviaProcess(["--host", host.address, "--port", str(PORT), "--name", name,
                          "--protected-mode", "no", *args],
                         prefix=host.prefix())
    try:
        yield node.start()
    finally:
        node.close()


def info(host: Host) -> dict[str, str]:
    (line,) = host.talk(PORT, ["INFO"])
    assert line.startswith(":INFO "), line
    return dict(field.split("=", 1) for field in line[6:].split(","))


def peers_are(wanted: Mapping[Host, int]) -> Callable[[], bool]:
    return lambda: all(info(host)["peers"] == str(count) for host, count in wanted.items())


def settled(hosts: Sequence[Host], count: int) -> bool:
    """Whether the ``count`` keys are each on two nodes (replicas = 1), spread
    over all of them, with nothing left to repair: a node that joined just
    before the writes gets its homes' share by anti-entropy, and the node
    that took a write forgets its guest copies soon after."""
    infos = [info(host) for host in hosts]
    held = [int(fields["keys"]) for fields in infos]
    return (sum(held) == 2 * count and max(held) < count
            and all(fields["under_replicated_keys"] == "0" for fields in infos))


def read(host: Host, keys: Sequence[str]) -> View:
    """Every key as a client of ``host``'s node sees it (one GET each)."""
    view: View = {}
    for key, reply in zip(keys, host.talk(PORT, [f"GET {key}" for key in keys]), strict=True):
        assert reply == ":GOT" or reply.startswith(f":GOT {key}:"), (key, reply)
        view[key] = None if reply == ":GOT" else reply.split(":", 2)[2]
    return view


class Side:
    """One side of the partition: its hosts, and the values its clients
    should see (what it had at the split, then its own writes)."""

    def __init__(self, hosts: Sequence[Host], view: View) -> None:
        self.hosts = list(hosts)
        self.view = view

    def set(self, host: Host, items: Mapping[str, str]) -> None:
        lines = [f"SET {key}:{value}" for key, value in items.items()]
        assert host.talk(PORT, lines) == [f":SAT {key}:{value}" for key, value in items.items()]
        self.view.update(items)

    def delete(self, host: Host, keys: Sequence[str]) -> None:
        assert host.talk(PORT, [f"DEL {key}" for key in keys]) == [
            f":DELETED {key}" for key in keys]
        self.view.update(dict.fromkeys(keys))


def differences(got: Mapping[Host, View], expected: View) -> list[str]:
    return [f"{key}: {host.address} has {view[key]!r}, expected {value!r}"
            for host, view in got.items() for key, value in expected.items()
            if view[key] != value]


def test_a_split_cluster_serves_on_both_sides_and_converges_after_the_heal() -> None:
    with switched_hosts(3) as switch, ExitStack() as stack:
        h1, h2, h3 = switch.hosts
        seed = f"{h1.address}:{PORT}"
        nodes = {"n1": stack.enter_context(node_on(h1, "n1")),
                 "n2": stack.enter_context(node_on(h2, "n2", "--peers", seed)),
                 "n3": stack.enter_context(node_on(h3, "n3", "--peers", seed))}
        try:
            run_scenario(switch, h1, h2, h3)
        except BaseException:
            for name, node in nodes.items():  # shown by pytest with the failure
                print(f"----- log of {name} -----\n{node.log()}")
            raise


def run_scenario(switch: Switch, h1: Host, h2: Host, h3: Host) -> None:
    every = [h1, h2, h3]
    wait_until(peers_are(dict.fromkeys(every, 2)), what="the three nodes to see each other")

    before = {key: f"v0-{key}" for key in PRE_SPLIT}
    Side(every, {}).set(h1, before)
    wait_until(lambda: all(read(host, PRE_SPLIT) == before for host in every),
               what="the keys written before the split to be visible everywhere")
    started = time.monotonic()
    wait_until(lambda: settled(every, len(before)), what="every key to be on its two homes only")
    print(f"\nkeys on their homes {time.monotonic() - started:.2f} s after being visible")

    started = time.monotonic()
    switch.unplug(h3)
    wait_until(peers_are({h1: 1, h2: 1, h3: 0}),
               what="n3 to see nobody, and n1 and n2 to see only each other")
    print(f"partition detected after {time.monotonic() - started:.2f} s")

    # With nobody else alive, n3 reads only its own store: the pre-split keys
    # of the slots it is a home of.  It deletes only keys it holds (so the
    # delete finds the key and is acknowledged as such).
    minority = Side([h3], read(h3, PRE_SPLIT))
    majority = Side([h1, h2], dict(before))
    held = [key for key in PRE_SPLIT if minority.view[key] is not None]
    assert len(held) >= 40, f"n3 holds only {len(held)} of {len(PRE_SPLIT)} keys"
    print(f"n3 holds {len(held)} of the {len(PRE_SPLIT)} keys")
    picked = set(held[:30])  # n3 deletes among these, with the majority's writes around them
    others = [key for key in PRE_SPLIT if key not in picked]
    min_del, maj_set_min_del, min_del_maj_set = held[0:10], held[10:20], held[20:30]
    min_wins, maj_wins, maj_del = others[0:10], others[10:20], others[20:30]
    min_set_maj_del, maj_del_min_set = others[30:40], others[40:50]
    maj_new = [f"maj{number:02}" for number in range(10)]
    min_new = [f"min{number:02}" for number in range(10)]
    both_min_wins = [f"both{number:02}" for number in range(10)]
    both_maj_wins = [f"both{number:02}" for number in range(10, 20)]

    def values(keys: Sequence[str], label: str) -> dict[str, str]:
        return {key: f"{label}-{key}" for key in keys}

    # 1. The majority first (through n1) ...
    majority.set(h1, values(min_wins + maj_set_min_del + maj_new + both_min_wins, "maj-early"))
    majority.delete(h1, maj_del + maj_del_min_set)
    # 2. ... then the minority: some writes after the majority's, some before ...
    minority.set(h3, values(min_wins + maj_del_min_set + both_min_wins, "min-late"))
    minority.delete(h3, maj_set_min_del)
    minority.set(h3, values(maj_wins + min_set_maj_del + min_new + both_maj_wins, "min-early"))
    minority.delete(h3, min_del + min_del_maj_set)
    # 3. ... and the majority again (through n2), after the minority.
    majority.set(h2, values(maj_wins + min_del_maj_set + both_maj_wins, "maj-late"))
    majority.delete(h2, min_set_maj_del)

    keys = [*PRE_SPLIT, *maj_new, *min_new, *both_min_wins, *both_maj_wins]
    for side in (majority, minority):  # each side reads its own writes
        side.view.update({key: None for key in keys if key not in side.view})
        for host in side.hosts:
            got = read(host, keys)
            assert got == side.view, differences({host: got}, side.view)[:20]

    # Later write wins, by the order of the operations above.
    expected: View = {key: before.get(key) for key in keys}
    expected.update(values(min_wins + maj_del_min_set + both_min_wins, "min-late"))
    expected.update(values(maj_wins + min_del_maj_set + both_maj_wins, "maj-late"))
    expected.update(values(min_new, "min-early"))
    expected.update(values(maj_new, "maj-early"))
    expected.update(dict.fromkeys(maj_del + min_del + maj_set_min_del + min_set_maj_del))

    healed = time.monotonic()
    switch.plug(h3)
    wait_until(peers_are(dict.fromkeys(every, 2)), what="the three nodes to see each other again")
    formed = time.monotonic()
    last: dict[Host, View] = {}

    def converged() -> bool:
        last.update({host: read(host, keys) for host in every})
        return all(view == expected for view in last.values())

    try:
        wait_until(converged, timeout=CONVERGE, interval=0.05, what="the nodes to converge")
    except AssertionError:
        shown = differences(last, expected)
        stats = {host.address: {field: value for field, value in info(host).items()
                                if field.startswith(("peers", "under_", "tomb", "repair"))}
                 for host in every}
        raise AssertionError(f"not converged {time.monotonic() - formed:.2f} s after the "
                             f"nodes re-formed: {len(shown)} differences:\n"
                             + "\n".join(shown[:40]) + f"\nINFO: {stats}") from None
    done = time.monotonic()
    print(f"heal -> re-formed {formed - healed:.2f} s, re-formed -> converged "
          f"{done - formed:.2f} s, heal -> converged {done - healed:.2f} s")
    assert done - formed <= CONVERGE
