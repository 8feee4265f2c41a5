"""Latency statistics that cost one call per batch of replies, not per reply.

Replies that arrive in one read were sent together, or in a few batches, so
their latencies are recorded as (value, count) pairs into a log-bucketed
histogram. Buckets grow by `GROWTH` (1%), so any percentile read from the
histogram is within 1% of the exact nearest-rank percentile of the samples;
histograms from several worker processes merge by adding counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

GROWTH = 1.01
MIN_VALUE = 1e-6  # 1 microsecond: the first bucket holds everything below
MAX_VALUE = 1000.0  # seconds; the last bucket holds everything above
_LOG_GROWTH = math.log(GROWTH)
NBUCKETS = int(math.log(MAX_VALUE / MIN_VALUE) / _LOG_GROWTH) + 2


def _rank(p: float, n: int) -> int:
    """1-based nearest rank of percentile ``p`` among ``n`` values.

    Rounded before the ceiling so that float noise (99.9 / 100 * 1000 is
    999.0000000000001) does not push the rank one place up.
    """
    return max(1, math.ceil(round(p * n / 100, 9)))


def percentile(sorted_samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least p% at or below it."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = _rank(p, len(sorted_samples))
    return sorted_samples[rank - 1]


class Histogram:
    """Counts of latencies (seconds) in log-spaced buckets, plus exact min/max/sum."""

    __slots__ = ("counts", "total", "sum", "min", "max")

    def __init__(self) -> None:
        self.counts = [0] * NBUCKETS
        self.total = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = 0.0

    @staticmethod
    def bucket(value: float) -> int:
        if value <= MIN_VALUE:
            return 0
        i = int(math.log(value / MIN_VALUE) / _LOG_GROWTH) + 1
        return i if i < NBUCKETS else NBUCKETS - 1

    @staticmethod
    def bucket_bounds(i: int) -> tuple[float, float]:
        """The half-open range of values bucket ``i`` holds."""
        if i == 0:
            return 0.0, MIN_VALUE
        return MIN_VALUE * GROWTH ** (i - 1), MIN_VALUE * GROWTH**i

    def add(self, value: float, count: int = 1) -> None:
        if count <= 0:
            return
        if value < 0:
            value = 0.0
        i = 0 if value <= MIN_VALUE else int(math.log(value / MIN_VALUE) / _LOG_GROWTH) + 1
        self.counts[i if i < NBUCKETS else NBUCKETS - 1] += count
        self.total += count
        self.sum += value * count
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.total += other.total
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def mean(self) -> float:
        return self.sum / self.total if self.total else math.nan

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, reported as its bucket's geometric middle.

        The first and last ranks are the exact min and max, and the result is
        clamped to them, so a single-valued histogram reports that value.
        """
        if not self.total:
            return math.nan
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {p} outside 0..100")
        rank = _rank(p, self.total)
        if rank >= self.total:
            return self.max
        if rank == 1:
            return self.min
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                lo, hi = self.bucket_bounds(i)
                mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
                return min(max(mid, self.min), self.max)
        return self.max  # unreachable: counts sum to total

    def to_state(self) -> tuple[list[tuple[int, int]], int, float, float, float]:
        """A compact picklable form (sparse counts) to send between processes."""
        sparse = [(i, c) for i, c in enumerate(self.counts) if c]
        return sparse, self.total, self.sum, self.min, self.max

    @classmethod
    def from_state(cls, state: tuple[list[tuple[int, int]], int, float, float, float]) -> Histogram:
        h = cls()
        sparse, h.total, h.sum, h.min, h.max = state
        for i, c in sparse:
            h.counts[i] = c
        return h
