"""The report as plain data, built from the counters workers keep in Redis."""

from __future__ import annotations

from typing import Any

from redis import Redis

from diffsvc.report import quality
from diffsvc.report.noise import Margins
from diffsvc.storage import store

TOP_FIELDS = 20


def endpoint_entry(name: str, stats: dict[str, Any], top: int = TOP_FIELDS) -> dict[str, Any]:
    compared = stats["matches"] + stats["mismatches"]
    fields = sorted(stats["fields"].items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "endpoint": name,
        "pairs": stats["pairs"],
        "matches": stats["matches"],
        "mismatches": stats["mismatches"],
        "errors": stats["errors"],
        "mismatch_rate": quality.rate(stats["mismatches"], compared),
        "fields": [{"path": path, "mismatches": n, "rate": quality.rate(n, compared)}
                   for path, n in fields],
    }


def build(r: Redis, endpoint: str | None = None, *, samples: int = 0,
          margins: Margins | None = None) -> dict[str, Any]:
    """{"endpoints": [...]}, sorted by mismatch rate (highest first), then by name.

    `mismatches`/`mismatch_rate` are effective figures: see `quality` (raw, noise, groups)."""
    all_stats = store.endpoint_stats(r)
    entries = [endpoint_entry(name, stats) for name, stats in all_stats.items()
               if endpoint is None or name == endpoint]
    quality.annotate(r, entries, all_stats, margins)
    examples = store.examples(r, [e["endpoint"] for e in entries])
    for entry in entries:  # what each template stands for: a few raw request targets
        entry["examples"] = examples[entry["endpoint"]]
    if samples:
        for entry in entries:
            entry["samples"] = store.samples(r, entry["endpoint"], samples)
    entries.sort(key=lambda e: (-e["mismatch_rate"], e["endpoint"]))
    totals = {k: sum(e[k] for e in entries) for k in ("pairs", "matches", "mismatches", "errors")}
    return {"endpoints": entries, "totals": totals, "gateway": store.gateway_counters(r)}
