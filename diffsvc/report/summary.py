"""The endpoints summary over a time window, from the per-minute buckets workers write
(`keys.minute`: counters, `keys.latency`: latency histograms), plus a spark line per endpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from redis import Redis

from diffsvc.config import parse_duration
from diffsvc.core import latency
from diffsvc.errors import ConfigError
from diffsvc.report import data
from diffsvc.report.model import rate
from diffsvc.report.verdict import Criteria, effective_in, judge_counts
from diffsvc.storage import builds, store
from diffsvc.storage import quality as diffq

DEFAULT_WINDOW = 3600.0
MAX_WINDOW = 2 * 86400.0
SPARK_POINTS = 30


@dataclass(frozen=True)
class Window:
    since: float
    until: float

    @property
    def minutes(self) -> list[int]:
        return list(range(int(self.since // 60), int(self.until // 60) + 1))

    def to_dict(self) -> dict[str, Any]:
        return {"since": round(self.since, 3), "until": round(self.until, 3),
                "seconds": round(self.until - self.since, 3)}


def parse_time(key: str, value: str) -> float:
    """Epoch seconds, or an ISO 8601 time (UTC unless it names an offset)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(key, "expected epoch seconds or an ISO 8601 time", value) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_window(query: dict[str, str], now: float | None = None) -> Window:
    """From `window` (e.g. 15m), `since` and `until`; default: the last hour."""
    now = time.time() if now is None else now
    until = parse_time("until", query["until"]) if query.get("until") else now
    if query.get("since"):
        if query.get("window"):
            raise ConfigError("window", "give either since or window, not both")
        since = parse_time("since", query["since"])
    else:
        since = until - parse_duration("window", query.get("window") or DEFAULT_WINDOW)
    if since >= until:
        raise ConfigError("since", "must be before until", query.get("since"))
    if until - since > MAX_WINDOW:
        raise ConfigError("window", f"at most {MAX_WINDOW / 3600:g} hours",
                          query.get("window") or query.get("since"))
    return Window(since, until)


def spark(buckets: list[dict[str, int]], points: int = SPARK_POINTS,
          counted: Collection[str] | None = None) -> list[float | None]:
    """The (effective: `counted` signatures only) mismatch rate over the window in at most
    `points` steps (None: no traffic)."""
    size = max(1, math.ceil(len(buckets) / points))
    out: list[float | None] = []
    for i in range(0, len(buckets), size):
        chunk = buckets[i:i + size]
        mm = sum(effective_in(b, counted) for b in chunk)
        compared = sum(b.get("mismatches", 0) + b.get("matches", 0) for b in chunk)
        out.append(rate(mm, compared) if compared else None)
    return out


def endpoint_summary(name: str, buckets: list[dict[str, int]],
                     histograms: list[dict[str, int]], criteria: Criteria,
                     counted: Collection[str] | None = None) -> dict[str, Any]:
    """Counters (matches, mismatches and their rate effective: noise excluded, as in the
    report; `raw_mismatches` beside), noise (primary vs secondary, measured only with a
    secondary) and latency over the window, from the per-minute buckets."""
    totals: dict[str, int] = {}
    for b in buckets:
        for k, v in b.items():
            totals[k] = totals.get(k, 0) + v
    merged = latency.merge(histograms)
    entry: dict[str, Any] = {"endpoint": name}
    entry.update({k: totals.get(k, 0) for k in store.COUNTER_FIELDS})
    failing, effective, judged = judge_counts(name, totals, criteria, 0.0, counted)
    # matches / mismatches / mismatch_rate are effective (noise excluded), as in the report
    compared = entry["matches"] + entry["mismatches"]
    entry["raw_mismatches"] = entry["mismatches"]
    entry["mismatches"], entry["matches"] = effective, compared - effective
    entry["mismatch_rate"] = rate(effective, compared)
    entry["candidate_errors"] = totals.get("cand_errors", 0)
    entry["error_kinds"] = diffq.error_kinds(totals)
    entry["noise"] = totals.get("noise_mismatches", 0)
    entry["noise_pairs"] = totals.get("noise_pairs", 0)
    entry["noise_rate"] = rate(entry["noise"], entry["noise_pairs"])
    entry["latency_ms"] = {
        side: {"p50": latency.percentile(merged[key], 0.5),
               "p99": latency.percentile(merged[key], 0.99)}
        for side, key in (("primary", "p"), ("candidate", "c"))}
    entry["spark"] = spark(buckets, counted=counted)
    entry["failure"] = failing
    entry["classification"] = (judged.label if effective or judged.regression
                               else "noise" if entry["raw_mismatches"] else "clean")
    return entry


def build(r: Redis, criteria: Criteria, window: Window,
          build: str | None = None) -> dict[str, Any]:
    """{"window", "totals", "endpoints", "build", "builds"} of one candidate build (default:
    the newest): failing endpoints first, then by mismatch rate."""
    chosen = builds.select(r, build)
    stored = builds.of_build(store.endpoint_names(r), chosen)
    buckets = store.minute_buckets(r, list(stored.values()), window.minutes)
    counted = data.counted_signatures(r, criteria, chosen)
    entries = [endpoint_summary(n, *buckets[key], criteria, counted.get(n, ()))
               for n, key in stored.items()]
    entries.sort(key=lambda e: (e["failure"] is None, -e["mismatch_rate"], -e["pairs"],
                                e["endpoint"]))
    totals: dict[str, Any] = {k: sum(e[k] for e in entries)
                              for k in (*store.COUNTER_FIELDS, "raw_mismatches", "candidate_errors",
                                        "noise")}
    totals["mismatch_rate"] = rate(totals["mismatches"], totals["mismatches"] + totals["matches"])
    return {"window": window.to_dict(), "totals": totals, "endpoints": entries,
            "build": chosen or None, "builds": builds.known(r)}
