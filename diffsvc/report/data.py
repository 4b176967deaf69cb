"""The report, built once from what workers keep in Redis: `build` returns the typed
`model.Report` every format, the API, the gates and the notifier read."""

from __future__ import annotations

from typing import Any

from redis import Redis

from diffsvc.core import signatures
from diffsvc.report import quality
from diffsvc.report.model import Report
from diffsvc.report.verdict import Criteria
from diffsvc.storage import builds, examples, store, volatility
from diffsvc.storage import quality as diffq

TOP_FIELDS = 20
SUSPECT_SAMPLES = 20
ERROR_SAMPLES = 20
REASONS_SHOWN = 5


def _counts(r: Redis, stored: dict[str, str], all_stats: dict[str, dict[str, Any]]) -> dict[
        str, quality.Counts]:
    """Per endpoint ({endpoint: stored name} of one build): its counts. Volatility learned
    from production is per endpoint, whatever the build."""
    q_all = diffq.quality_stats(r, list(stored.values()))
    learned = volatility.learned(r, list(stored))
    out = {}
    for name, key in stored.items():
        q = q_all[key]
        groups = {sig: ([(d["path"], d["kind"]) for d in signatures.from_json(text)], n)
                  for sig, (text, n) in q["groups"].items()}
        out[name] = quality.Counts.from_store(all_stats[key], q, groups, learned[name])
    return out


def counted_signatures(r: Redis, criteria: Criteria,
                       build: str | None = None) -> dict[str, set[str]]:
    """Per endpoint of the build (default: the newest), the signatures whose mismatches count
    (the report's field classification), to judge a window the way the report does."""
    all_stats = store.endpoint_stats(r)
    stored = builds.of_build(list(all_stats), builds.select(r, build))
    return {name: quality.counted_signatures(c, criteria)
            for name, c in _counts(r, stored, all_stats).items()}


def effective_mismatches(r: Redis, criteria: Criteria,
                         build: str | None = None) -> dict[str, int]:
    """Per endpoint of the build (default: the newest), its effective mismatches: what the
    report counts (noise excluded), for /metrics."""
    all_stats = store.endpoint_stats(r)
    stored = builds.of_build(list(all_stats), builds.select(r, build))
    return {name: quality.counted_mismatches(c, quality.counted(c, quality.fields(c, criteria)))
            for name, c in _counts(r, stored, all_stats).items()}


def build(r: Redis, criteria: Criteria, endpoint: str | None = None, *,
          of_build: str | None = None, samples: int = 0,
          suspect_samples: int = SUSPECT_SAMPLES) -> Report:
    """Every endpoint (or one) of one candidate build (default: the newest), highest
    effective mismatch rate first, then by name."""
    all_stats = store.endpoint_stats(r)
    chosen = builds.select(r, of_build)
    stored = {n: key for n, key in builds.of_build(list(all_stats), chosen).items()
              if endpoint is None or n == endpoint}
    templates = examples.load(r, list(stored))  # what each template stands for
    entries = []
    for name, counts in _counts(r, stored, all_stats).items():
        key = stored[name]
        groups = counts.groups
        top = sorted(groups, key=lambda s: (-groups[s][1], s))[:quality.GROUPS_SHOWN]
        kept = [c for c in store.load_comparisons(r, store.samples(r, key, suspect_samples))
                if c]
        error_ids = diffq.error_samples(r, key, ERROR_SAMPLES)
        reasons: list[str] = []
        for c in store.load_comparisons(r, error_ids):
            if c is not None and c.error and c.error not in reasons:
                reasons.append(c.error)
        entries.append(quality.endpoint(
            name, counts, criteria,
            group_samples={sig: diffq.group_samples(r, key, sig) for sig in top},
            comparisons=kept, error_reasons=reasons[:REASONS_SHOWN],
            error_ids=error_ids, samples=store.samples(r, key, samples) if samples else (),
            examples=templates[name]))
    entries.sort(key=lambda e: (-e.mismatch_rate, e.endpoint))
    return Report(tuple(entries), store.gateway_counters(r), criteria, TOP_FIELDS, chosen,
                  tuple(builds.known(r)))
