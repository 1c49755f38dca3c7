"""How long requests take, per port and verb, as histograms (``/metrics``).

A request is timed from the moment its front end hands it to the command
core until its reply is ready: the node's own service time, as Redis's
latency statistics measure it (the network and the client's queue are the
client's to measure).  A request that waits on peers (a remote lookup, a
forwarded INCR, a replicated write) is timed until its future is done.

The line and RESP ports time a sample: the first request of a connection's
first read, then of every TIME_EVERY-th read.  Reading the clock and filing
the figure cost about 0.6 µs, 8% of a whole GET at one request a read, so
timing them all would slow what it measures; one read in 16 costs under 1%
and still fills a histogram within a second at any load worth watching.
The HTTP port, where aiohttp's own work is 60 µs a request, times every one.
So the histograms' counts are timed requests, not all requests
(``olivia_cmd_*_total`` count those), and their quantiles are what to read.
"""

from __future__ import annotations

from bisect import bisect_left

#: Of a connection's reads, one in this many has its first request timed.
TIME_EVERY = 16

#: Upper bounds of the buckets, in seconds: 25 µs (a fast-path GET) to 2.5 s
#: (a lookup that waited out its timeout).
BOUNDS: tuple[float, ...] = (
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)


class Histogram:
    """Counts of durations per bucket (not cumulative), and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)  # the last one: over BOUNDS[-1]
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, count at or under it) per bucket, +Inf last."""
        running, buckets = 0, []
        for bound, count in zip((*BOUNDS, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets

    @property
    def count(self) -> int:
        return sum(self.counts)


class Latencies:
    """One histogram per (port, verb), made on first use."""

    def __init__(self) -> None:
        self.histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, port: str, verb: str, seconds: float) -> None:
        histogram = self.histograms.get((port, verb))
        if histogram is None:
            histogram = self.histograms[port, verb] = Histogram()
        histogram.observe(seconds)
