"""Prometheus histograms kept as Redis hash fields: one field per bucket, holding the count of
observations in that bucket alone (not cumulative), plus the sum of observations in
microseconds, so an observation costs one bisect and two increments of an in-process Counter, flushed with the other counters. The metrics collector
turns them into cumulative `le` buckets at scrape time. Pure: no sockets, no Redis."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence

# Bounds in milliseconds (what Reply.elapsed_ms and perf_counter deltas give), labelled in
# seconds as Prometheus expects.
LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                      10000.0)
DURATION_BUCKETS_MS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0)


def bucket_fields(prefix: str, bounds_ms: Sequence[float]) -> tuple[str, ...]:
    """Hash field names, one per bucket and a last one for +Inf: `prefix:le=0.005`."""
    return tuple(f"{prefix}:le={le_label(b)}" for b in bounds_ms) + (f"{prefix}:le=+Inf",)


def le_label(bound_ms: float) -> str:
    return repr(round(bound_ms / 1000.0, 9))


class Histogram:
    """One histogram's hash fields: a count per bucket and the sum of observations (µs)."""

    def __init__(self, prefix: str, bounds_ms: Sequence[float]) -> None:
        self.bounds_ms = tuple(bounds_ms)
        self.fields = bucket_fields(prefix, self.bounds_ms)
        self.sum_field = f"{prefix}:sum_us"

    def observe(self, counts: Counter[str], value_ms: float) -> None:
        """Count one observation (bucket upper bounds are inclusive) and add it to the sum."""
        counts[self.fields[bisect_left(self.bounds_ms, value_ms)]] += 1
        counts[self.sum_field] += int(value_ms * 1000)

    def cumulative(self, counts: Mapping[str, int]) -> list[tuple[str, int]]:
        """[(le, cumulative count)], ending with ('+Inf', total), from per-bucket counts."""
        out = []
        running = 0
        labels = [le_label(b) for b in self.bounds_ms] + ["+Inf"]
        for name, label in zip(self.fields, labels, strict=True):
            running += int(counts.get(name, 0))
            out.append((label, running))
        return out

    def sum_seconds(self, counts: Mapping[str, int]) -> float:
        return int(counts.get(self.sum_field, 0)) / 1e6


UPSTREAMS = ("primary", "candidate", "secondary")
LATENCY = {u: Histogram(f"latency:{u}", LATENCY_BUCKETS_MS) for u in UPSTREAMS}
DURATION = Histogram("duration", DURATION_BUCKETS_MS)
