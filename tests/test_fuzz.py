"""Random abuse from several connections at once: the node must keep serving
everyone and keep every byte of the data written before the storm."""

from __future__ import annotations

import contextlib
import random
import threading

from tests.helpers import LineClient, OliviaProcess, wait_until

LINES_PER_CONNECTION = 3500
CONNECTIONS = 4  # 14,000 random lines sent; at least 10,000 must be served
VERBS = [b"SET", b"SETEX", b"GET", b"DEL", b"PING", b"INFO", b"REQUEST", b"set", b"GeT",
         b"FOO", b"", b"t:SET", b"x/y:GET", b"0:DEL"]
PIECES = [b"a", b"key", b":", b",", b"%", b"%2", b"%zz", b"%3A", b"%25", b"\r", b" ", b"\x00",
          b"\xff\xfe", b"1", b"0.1", b"-1", b"nan", b"\xe2\x82", b"k" * 300, b"PEERS",
          b"BLOOMFILTER"]


def random_line(rng: random.Random) -> bytes:
    """Random bytes, random verbs with random items, broken escapes."""
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80))).replace(b"\n", b"")
    verb = rng.choice(VERBS)
    args = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
    # Fuzz keys never start with 'keep', so the data written below is never hit.
    return verb + b" " + args.replace(b"keep", b"kxep") if args else verb


def read_until(client: LineClient, marker: bytes) -> None:
    """Read replies until the line ``marker`` (or EOF, after a QUIT)."""
    with contextlib.suppress(AssertionError):  # the server hung up: EOF
        while client.read_line() != marker:
            pass


def storm(port: int, seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        sent = 0
        while sent < LINES_PER_CONNECTION:
            with LineClient(port) as client:
                for _ in range(rng.randint(1, 10)):
                    batch = [random_line(rng) for _ in range(rng.randint(1, 200))]
                    sent += len(batch)
                    if rng.random() < 0.05:
                        # Hang up abruptly while replies are still coming.
                        client.send(b"\n".join(batch) + b"\n")
                        break
                    quit_now = rng.random() < 0.05
                    ending = b"\nQUIT\n" if quit_now else b"\nsync:PING\n"
                    client.send(b"\n".join(batch) + ending)
                    read_until(client, b":BYE" if quit_now else b"sync:PONG")
                    if quit_now:
                        break
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def info_field(client: LineClient, name: bytes) -> int:
    fields = dict(f.split(b"=", 1) for f in client.request("INFO")[6:].split(b","))
    return int(fields[name])


def test_random_lines_from_several_connections(node: OliviaProcess) -> None:
    keep = {f"keep{i}".encode(): f"value-{i}-%2C%3A".encode() for i in range(500)}
    with node.client() as client:
        client.request(b"SET " + b",".join(k + b":" + v for k, v in keep.items()))
        before = info_field(client, b"total_commands_processed")
        errors: list[BaseException] = []
        threads = [threading.Thread(target=storm, args=(node.port, seed, errors))
                   for seed in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert not any(thread.is_alive() for thread in threads)

        assert info_field(client, b"total_commands_processed") - before >= 10_000

        # The node still answers, on the old connection and on new ones.
        assert client.request("PING alive") == b":PONG alive"
        with LineClient(node.port) as fresh:
            assert fresh.request("PING") == b":PONG"
        reply = client.request(b"GET " + b",".join(keep))
        expected = b":GOT " + b",".join(k + b":" + v for k, v in keep.items())
        assert reply == expected
        wait_until(lambda: b"connected_clients=1," in client.request("INFO"),
                   what="fuzz connections to be released")
    assert node.proc is not None and node.proc.poll() is None
    assert "Traceback" not in node.log()
    assert "internal error" not in node.log()
