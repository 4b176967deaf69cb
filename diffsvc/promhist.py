"""Prometheus histograms kept as Redis hash fields: one field per bucket, holding the count of
observations in that bucket alone (not cumulative), so an observation costs one bisect and one
increment of an in-process Counter, flushed with the other counters. The metrics collector
turns them into cumulative `le` buckets at scrape time. Pure: no sockets, no Redis."""

from __future__ import annotations

from bisect import bisect_left
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


def field_for(fields: tuple[str, ...], bounds_ms: Sequence[float], value_ms: float) -> str:
    """The field counting one observation of `value_ms` (bucket upper bounds are inclusive)."""
    return fields[bisect_left(bounds_ms, value_ms)]


UPSTREAMS = ("primary", "candidate", "secondary")
LATENCY_FIELDS = {u: bucket_fields(f"latency:{u}", LATENCY_BUCKETS_MS) for u in UPSTREAMS}
DURATION_FIELDS = bucket_fields("duration", DURATION_BUCKETS_MS)
DURATION_SUM_US = "duration:sum_us"


def cumulative(counts: Mapping[str, int], fields: tuple[str, ...],
               bounds_ms: Sequence[float]) -> list[tuple[str, int]]:
    """[(le, cumulative count)], ending with ('+Inf', total), from per-bucket hash counts."""
    out = []
    running = 0
    labels = [le_label(b) for b in bounds_ms] + ["+Inf"]
    for name, label in zip(fields, labels, strict=True):
        running += int(counts.get(name, 0))
        out.append((label, running))
    return out
