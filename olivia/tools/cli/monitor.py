"""Commands that run again and again, as in redis-cli: ``-r N -i S`` repeats
a request, ``--stat`` prints a line of INFO figures each interval, and
``--latency`` measures PING round trips.  ``-r -1`` (the default of
--stat and --latency) runs until Ctrl-C, which ends them normally."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from olivia.client import Client
from olivia.tools.cli.output import ReplyPrinter
from olivia.tools.cli.request_lines import wire

FOREVER = -1
STAT_INTERVAL = 1.0
LATENCY_INTERVAL = 0.01  # as redis-cli --latency samples
STAT_HEADER_EVERY = 20  # lines, as redis-cli --stat repeats its header
STAT_COLUMNS = ("keys", "mem", "clients", "peers", "ops/s")


@dataclass(frozen=True)
class Schedule:
    """``count`` runs (FOREVER: no end), ``interval`` seconds apart."""

    count: int
    interval: float

    def runs(self) -> Iterator[int]:
        """The run numbers, sleeping the interval between two (not after the last)."""
        numbers = itertools.count() if self.count == FOREVER else iter(range(self.count))
        for number in numbers:
            if number and self.interval > 0:
                time.sleep(self.interval)  # the pause the user asked for with -i
            yield number


def run_command(client: Client, line: str, printer: ReplyPrinter, schedule: Schedule) -> int:
    """Send one request line ``schedule.count`` times, printing each reply;
    1 if any reply was an error."""
    request = wire(line)
    with client:
        try:
            for _ in schedule.runs():
                printer.show(request, client.raw(request))
        except KeyboardInterrupt:
            if schedule.count != FOREVER:
                raise  # interrupted: exit status 130
            _end_line()  # the way to end -r -1
    return 1 if printer.errors else 0


def _end_line() -> None:
    """After Ctrl-C at a terminal: the next prompt starts on a line of its own."""
    if sys.stdout.isatty():
        print(flush=True)


# -- --stat --------------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """``41.88M``: bytes in binary units with two decimals, as redis-cli shows memory."""
    for unit in ("B", "K", "M", "G", "T"):
        if count < 1024 or unit == "T":
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.2f}{unit}"
        count /= 1024
    raise AssertionError("unreachable")


class StatLine:
    """Turns successive INFO samples into ``--stat`` lines; ops/s comes from
    the change in total_commands_processed, less the INFO of each sample."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None

    def line(self, info: dict[str, str], now: float) -> str:
        total = int(info.get("total_commands_processed", "0"))
        rate = "-"
        if self._last is not None and now > self._last[0]:
            done = max(0, total - self._last[1] - 1)  # our own INFO is counted too
            rate = f"{done / (now - self._last[0]):,.0f}"
        self._last = (now, total)
        memory = human_bytes(int(info.get("used_memory", "0")))
        return _columns((f"{int(info.get('keys', '0')):,}", memory,
                         info.get("connected_clients", "-"), info.get("peers", "-"), rate))


def _columns(values: tuple[str, ...]) -> str:
    return " ".join(f"{value:<12}" for value in values).rstrip()


def run_stat(client: Client, schedule: Schedule) -> int:
    """A line per interval: keys, memory, clients, peers and ops/s."""
    stats = StatLine()
    with client:
        try:
            for number in schedule.runs():
                if number % STAT_HEADER_EVERY == 0:
                    print(_columns(STAT_COLUMNS))
                print(stats.line(client.info(), time.monotonic()), flush=True)
        except KeyboardInterrupt:
            _end_line()
    return 0


# -- --latency -----------------------------------------------------------------------


class Latency:
    """min, avg and max of the samples so far, in milliseconds."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = float("inf")
        self.high = 0.0

    def add(self, seconds: float) -> None:
        ms = seconds * 1000
        self.count += 1
        self.total += ms
        self.low = min(self.low, ms)
        self.high = max(self.high, ms)

    def line(self) -> str:
        if not self.count:
            return "min: -, avg: -, max: - ms (0 samples)"
        return (f"min: {self.low:.3f}, avg: {self.total / self.count:.3f}, "
                f"max: {self.high:.3f} ms ({self.count} samples)")


def run_latency(client: Client, schedule: Schedule) -> int:
    """PING round trips; at a terminal the line is updated after each one,
    otherwise it is printed once, at the end."""
    stats = Latency()
    live = sys.stdout.isatty()
    shown = 0  # width of the line on the screen, to blank what a shorter one leaves
    with client:
        client.connect()  # connecting is not part of the first round trip
        try:
            for _ in schedule.runs():
                started = time.perf_counter()
                client.raw(b"PING")
                stats.add(time.perf_counter() - started)
                if live:
                    text = stats.line()
                    sys.stdout.write("\r" + text.ljust(shown))
                    sys.stdout.flush()
                    shown = len(text)
        except KeyboardInterrupt:
            pass
    print(("" if live else stats.line()), flush=True)
    return 0
