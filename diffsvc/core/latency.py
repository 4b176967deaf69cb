"""Latency histograms with log-spaced buckets (about 5 % wide), small enough to keep one per
endpoint and minute in Redis and merge over any window. Pure: no sockets, no Redis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GROWTH = 1.05          # each bucket is 5 % wider than the one below
FLOOR_MS = 0.01        # latencies below this share the lowest bucket
_LOG = math.log(GROWTH)


def bucket(ms: float) -> int:
    return int(math.ceil(math.log(max(ms, FLOOR_MS) / FLOOR_MS) / _LOG))


def upper(b: int) -> float:
    """The upper bound (ms) of bucket `b`: the value a percentile in it is reported as."""
    return FLOOR_MS * GROWTH ** b


def field(side: str, ms: float) -> str:
    """The hash field counting one latency of `side` ('p' primary, 'c' candidate)."""
    return f"{side}:{bucket(ms)}"


def merge(hashes: Iterable[Mapping[str, int]]) -> dict[str, dict[int, int]]:
    """{'p': {bucket: n}, 'c': {bucket: n}} from per-minute hashes of `field` -> count."""
    out: dict[str, dict[int, int]] = {"p": {}, "c": {}}
    for h in hashes:
        for name, n in h.items():
            side, _, b = name.partition(":")
            if side in out and b.lstrip("-").isdigit():
                out[side][int(b)] = out[side].get(int(b), 0) + int(n)
    return out


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 1) in ms, rounded to 3 significant digits; None if empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for b in sorted(histogram):
        seen += histogram[b]
        if seen >= rank:
            return float(f"{upper(b):.3g}")
    return float(f"{upper(max(histogram)):.3g}")  # pragma: no cover - rank <= total
